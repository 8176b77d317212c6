"""Strategies and actors used by the live-node tests (importable as ``live_kit_probes:<Name>``)."""

import json
from decimal import Decimal
from pathlib import Path

import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from grodt.core.topics import KILL_SWITCH_TOPIC


class OrderProbeConfig(StrategyConfig, frozen=True):
    """Buy on every ``every``-th bar, sell on the following one: many orders, many fills.

    Parameters
    ----------
    instrument_id : InstrumentId
    bar_type : BarType
    every : int, default 5
        Bars between entries.
    quantity : int, default 10
        Units per order.
    close_positions_on_stop : bool, default True
    raise_on_bar : int, default 0
        Raise a RuntimeError on this bar (0 = never): a component failing inside the engine.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    every: PositiveInt = 5
    quantity: PositiveInt = 10
    close_positions_on_stop: bool = True
    raise_on_bar: int = 0


class OrderProbe(Strategy):
    """Trades on a fixed bar schedule; counts what the cache holds at ``OrderInitialized``."""

    def __init__(self, config: OrderProbeConfig) -> None:
        super().__init__(config)
        self.bars_seen = 0
        self.initialized_in_cache = 0
        self.initialized_missing = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars_seen += 1
        if self.bars_seen == self.config.raise_on_bar:
            raise RuntimeError(f"probe failure on bar {self.bars_seen}")
        if self.bars_seen % self.config.every == 0:
            side = OrderSide.BUY
        elif self.bars_seen % self.config.every == 1 and self.bars_seen > 1:
            side = OrderSide.SELL
        else:
            return
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=Quantity(Decimal(self.config.quantity), 0),
        )
        self.submit_order(order)

    def on_order_event(self, event: OrderEvent) -> None:
        if isinstance(event, OrderInitialized):
            if self.cache.order(event.client_order_id) is None:
                self.initialized_missing += 1
            else:
                self.initialized_in_cache += 1

    def on_stop(self) -> None:
        self.log.info(
            f"initialized_in_cache={self.initialized_in_cache} "
            f"initialized_missing={self.initialized_missing}",
        )
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.config.instrument_id)


class ScriptProbeConfig(StrategyConfig, frozen=True):
    """Orders on a fixed script, for the operations tests.

    Parameters
    ----------
    instrument_id : InstrumentId
    bar_type : BarType
    orders : tuple[str, ...]
        Market orders ``"BAR:SIDE:QTY"`` (``":R"`` appended: reduce-only); bar 0 is ``on_start``.
    limits : tuple[str, ...]
        Limit orders ``"BAR:SIDE:QTY:PRICE"`` (``":E"`` appended: emulated, last-price trigger).
    halt_on_bar : int, default 0
        Publish a kill-switch halt (source ``"probe"``) on this bar (0 = never).
    reenter_quantity : int, default 0
        Buy this many again whenever the strategy's position closes (0 = never).
    request_every : int, default 0
        Request the bar history (catalog, up to the replay clock) every this many bars.
    close_positions_on_stop : bool, default False
    """

    instrument_id: InstrumentId
    bar_type: BarType
    orders: tuple[str, ...] = ()
    limits: tuple[str, ...] = ()
    halt_on_bar: int = 0
    reenter_quantity: int = 0
    request_every: int = 0
    close_positions_on_stop: bool = False


class ScriptProbe(Strategy):
    """Sends the scripted orders; records denials and what bar-history requests returned."""

    def __init__(self, config: ScriptProbeConfig) -> None:
        super().__init__(config)
        self.bars_seen = 0
        self.last_bar_ts = 0
        self.denied: list[str] = []
        self.history_responses = 0
        self.future_bars = 0  # history bars later than the last bar this strategy had seen

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)
        self._send(0)

    def on_bar(self, bar: Bar) -> None:
        self.bars_seen += 1
        self.last_bar_ts = max(self.last_bar_ts, bar.ts_init)
        if self.bars_seen == self.config.halt_on_bar:
            self.msgbus.publish(
                KILL_SWITCH_TOPIC,
                {"action": "halt", "reason": "probe halt", "source": "probe"},
            )
        every = self.config.request_every
        if every and self.bars_seen % every == 0:
            self.request_bars(self.config.bar_type, start=pd.Timestamp(0, tz="UTC"))
        self._send(self.bars_seen)

    def on_historical_data(self, data: object) -> None:
        if isinstance(data, Bar):
            self.history_responses += 1
            if data.ts_init > self.last_bar_ts:
                self.future_bars += 1

    def _send(self, bar: int) -> None:
        for entry in self.config.orders:
            parts = entry.split(":")
            if int(parts[0]) != bar:
                continue
            order = self.order_factory.market(
                instrument_id=self.config.instrument_id,
                order_side=OrderSide[parts[1]],
                quantity=Quantity(Decimal(parts[2]), 0),
                reduce_only=len(parts) > 3 and parts[3] == "R",
            )
            self.submit_order(order)
        for entry in self.config.limits:
            parts = entry.split(":")
            if int(parts[0]) != bar:
                continue
            emulated = len(parts) > 4 and parts[4] == "E"
            order = self.order_factory.limit(
                instrument_id=self.config.instrument_id,
                order_side=OrderSide[parts[1]],
                quantity=Quantity(Decimal(parts[2]), 0),
                price=Price.from_str(parts[3]),
                emulation_trigger=TriggerType.LAST_PRICE if emulated else TriggerType.NO_TRIGGER,
            )
            self.submit_order(order)

    def on_order_denied(self, event: OrderDenied) -> None:
        self.denied.append(event.reason)

    def on_position_closed(self, event: PositionClosed) -> None:
        if self.config.reenter_quantity:
            order = self.order_factory.market(
                instrument_id=self.config.instrument_id,
                order_side=OrderSide.BUY,
                quantity=Quantity(Decimal(self.config.reenter_quantity), 0),
            )
            self.submit_order(order)

    def on_stop(self) -> None:
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.config.instrument_id)


class QueuedOrderWitnessConfig(ActorConfig, frozen=True):
    """Watches, at every bar of ``bar_types``, for orders still waiting to leave.

    Parameters
    ----------
    bar_types : tuple[BarType, ...]
    out : str
        JSON file written at stop: bars seen, bars at which some order was still
        ``INITIALIZED`` (created on an earlier record, not yet handed to the execution
        client), and how many such sightings.
    """

    bar_types: tuple[BarType, ...]
    out: str


class QueuedOrderWitness(Actor):
    """Subscribes before every strategy (actors start first), so at each bar it sees the orders
    that earlier records caused; an ``INITIALIZED`` one is still in the risk or execution
    engine's queue while the node handles another record."""

    def __init__(self, config: QueuedOrderWitnessConfig) -> None:
        super().__init__(config)
        self.bars = 0
        self.bars_with_waiting = 0
        self.waiting = 0

    def on_start(self) -> None:
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        waiting = sum(o.status == OrderStatus.INITIALIZED for o in self.cache.orders())
        if waiting:
            self.bars_with_waiting += 1
            self.waiting += waiting

    def on_stop(self) -> None:
        Path(self.config.out).write_text(
            json.dumps(
                {
                    "bars": self.bars,
                    "bars_with_waiting_orders": self.bars_with_waiting,
                    "waiting_orders": self.waiting,
                    "orders": len(self.cache.orders()),
                },
            ),
        )
