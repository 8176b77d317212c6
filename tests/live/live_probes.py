"""Strategies used by the live-node tests (importable as ``live_probes:<Name>``)."""

from decimal import Decimal

from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy


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
