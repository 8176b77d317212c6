"""Close vs SMA: the textbook reference strategy of the fill-timing checks (docs/fills.md).

Long a fixed quantity while the bar's close is above (not equal to) the simple moving average of
the last ``period`` closes (the bar's own close included), flat otherwise. Decisions are taken on
each bar's close; when the order fills is the venue's ``fill_at``. A fixed quantity (not a
fraction of equity) keeps the strategy reproducible by a few lines of pandas: nothing depends on a
fill price the strategy cannot know when it decides.
"""

from decimal import Decimal

from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

__all__ = ["TIE_TOLERANCE", "CloseVsSma", "CloseVsSmaConfig"]

TIE_TOLERANCE = 1e-9
"""Relative margin by which a close must exceed the SMA (far below one tick over the mean of
``period`` prices, far above float rounding)."""


class CloseVsSmaConfig(StrategyConfig, frozen=True):
    """Configuration for :class:`CloseVsSma`.

    Parameters
    ----------
    instrument_id : InstrumentId
        The traded instrument.
    bar_type : BarType
        The bars the SMA is computed on (their closes).
    period : int, default 15
        SMA length, in bars.
    quantity : str, default "100"
        Units held while long (a decimal string, rounded to the instrument's size precision).
    """

    instrument_id: InstrumentId
    bar_type: BarType
    period: PositiveInt = 15
    quantity: str = "100"


class CloseVsSma(Strategy):
    """Long ``quantity`` while close > SMA(period), flat otherwise (market orders)."""

    def __init__(self, config: CloseVsSmaConfig) -> None:
        super().__init__(config)
        self.sma = SimpleMovingAverage(config.period)
        self.long = False
        """Whether the last order sent was a buy (orders may fill later: fill_at next_open)."""

    def on_start(self) -> None:
        self.register_indicator_for_bars(self.config.bar_type, self.sma)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not self.sma.initialized:
            return
        # A close equal to the SMA is not above it: the indicator's float mean can land a hair
        # below an exact tie (68.7 → 68.69999999999999), so "above" must clear float noise.
        wants_long = bar.close.as_double() > self.sma.value * (1.0 + TIE_TOLERANCE)
        if wants_long == self.long:
            return
        instrument = self.cache.instrument(self.config.instrument_id)
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY if wants_long else OrderSide.SELL,
            quantity=instrument.make_qty(Decimal(self.config.quantity)),
        )
        self.submit_order(order)
        self.long = wants_long

    def on_reset(self) -> None:
        self.sma.reset()
        self.long = False
