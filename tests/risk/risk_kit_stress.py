"""A deliberately aggressive strategy for gate tests: random (seeded) market, limit and bracket
orders far above any sensible size, flips, and reduce-only closes, on several instruments."""

import random

from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from grodt.core.records import make_trace_id
from grodt.core.records import trace_tag


class StressStrategyConfig(StrategyConfig, frozen=True):
    """Configuration for :class:`StressStrategy`.

    Parameters
    ----------
    bar_types : list[BarType]
        One bar type per traded instrument.
    seed : int
        Random seed (runs are reproducible).
    order_probability : float
        Chance of an action at each bar of each instrument.
    max_equity_fraction : float
        Largest order notional as a fraction of equity (well above 1 on purpose).
    """

    bar_types: list[BarType]
    seed: int = 1
    order_probability: PositiveFloat = 0.05
    max_equity_fraction: PositiveFloat = 1.5


class StressStrategy(Strategy):
    """Throws random, oversized orders at the risk gate."""

    def __init__(self, config: StressStrategyConfig) -> None:
        super().__init__(config)
        self.rng = random.Random(config.seed)
        self.denied = 0
        self.resized = 0
        self.decisions = 0

    def on_start(self) -> None:
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)

    def on_stop(self) -> None:
        for bar_type in self.config.bar_types:
            self.close_all_positions(bar_type.instrument_id)

    def on_order_denied(self, event: OrderDenied) -> None:
        self.denied += 1

    def on_order_updated(self, event: OrderUpdated) -> None:
        self.resized += 1

    def on_bar(self, bar: Bar) -> None:
        if self.rng.random() >= self.config.order_probability:
            return
        instrument_id: InstrumentId = bar.bar_type.instrument_id
        instrument = self.cache.instrument(instrument_id)
        account = self.portfolio.account(instrument_id.venue)
        equity = account.balance_total().as_double()
        price = bar.close.as_double()
        units = int(equity * self.rng.uniform(0.01, self.config.max_equity_fraction) / price)
        if units < 1:
            return
        side = OrderSide.BUY if self.rng.random() < 0.5 else OrderSide.SELL
        self.decisions += 1
        tags = [trace_tag(make_trace_id(str(self.id), bar.ts_event, self.decisions))]
        action = self.rng.random()
        if action < 0.35:
            order = self.order_factory.market(
                instrument_id,
                side,
                Quantity(units, instrument.size_precision),
                tags=tags,
            )
            self.submit_order(order)
        elif action < 0.55:
            offset = self.rng.uniform(-0.01, 0.01)
            order = self.order_factory.limit(
                instrument_id,
                side,
                Quantity(units, instrument.size_precision),
                instrument.make_price(price * (1 + offset)),
                tags=tags,
            )
            self.submit_order(order)
        elif action < 0.85:
            distance = price * self.rng.uniform(0.002, 0.03)
            sign = 1 if side == OrderSide.BUY else -1
            order_list = self.order_factory.bracket(
                instrument_id,
                side,
                Quantity(units, instrument.size_precision),
                sl_trigger_price=instrument.make_price(price - sign * distance),
                tp_price=instrument.make_price(price + sign * 2 * distance),
                tp_post_only=False,
                entry_tags=tags,
            )
            self.submit_order_list(order_list)
        else:
            for position in self.cache.positions_open(
                instrument_id=instrument_id,
                strategy_id=self.id,
            ):
                self.close_position(position, tags=tags)
