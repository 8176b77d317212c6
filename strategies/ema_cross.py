"""EMA cross: the Foundation's end-to-end demo strategy (long, or long/short on a margin venue).

A plain trend follower that the demo runs on the real S&P 500 sample: go long when the fast EMA
crosses above the slow EMA, flatten (or reverse, with ``allow_short``) when it crosses below.
Position size is a fraction of the account's equity at the signal bar's close.
"""

from decimal import Decimal

from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy


class EMACrossConfig(StrategyConfig, kw_only=True, frozen=True):
    """Configuration for :class:`EMACross`.

    Parameters
    ----------
    instrument_id : InstrumentId
        The traded instrument.
    bar_type : BarType
        The bars the EMAs are computed on.
    fast_ema_period : int, default 20
        Fast EMA period, in bars.
    slow_ema_period : int, default 50
        Slow EMA period, in bars; must exceed ``fast_ema_period``.
    equity_fraction : float, default 0.95
        Target position notional as a fraction of account equity (cash + open PnL), in (0, 1].
    allow_short : bool, default False
        Reverse into a short on a down-cross (needs a venue and account that allow shorting).
    close_positions_on_stop : bool, default True
        Flatten this strategy's position when it stops.
    oms_type : str, default "NETTING"
        One position per (instrument, strategy), as :class:`strategies.base.RegimeAwareStrategy`:
        on a HEDGING venue a reversal would otherwise open a new hedge position each time
        (growing the open-position book, and the cost of every fill, with the run's length).
    """

    instrument_id: InstrumentId
    bar_type: BarType
    fast_ema_period: PositiveInt = 20
    slow_ema_period: PositiveInt = 50
    equity_fraction: PositiveFloat = 0.95
    allow_short: bool = False
    close_positions_on_stop: bool = True
    oms_type: str | None = "NETTING"

    def __post_init__(self) -> None:
        if self.fast_ema_period >= self.slow_ema_period:
            raise ValueError(
                f"fast_ema_period ({self.fast_ema_period}) must be less than "
                f"slow_ema_period ({self.slow_ema_period})",
            )
        if self.equity_fraction > 1.0:
            raise ValueError(f"equity_fraction must be in (0, 1], was {self.equity_fraction}")
        if str(self.oms_type).upper() != "NETTING":
            raise ValueError(
                f"oms_type: EMACross keeps one position per instrument and needs NETTING, "
                f"was {self.oms_type!r}",
            )


class EMACross(Strategy):
    """Long (or long/short) on EMA crosses, sized from equity."""

    def __init__(self, config: EMACrossConfig) -> None:
        super().__init__(config)
        self.instrument: Instrument | None = None
        self.fast_ema = ExponentialMovingAverage(config.fast_ema_period)
        self.slow_ema = ExponentialMovingAverage(config.slow_ema_period)
        # Sign of (fast - slow) at the previous bar: +1 above, -1 below, 0 before warm-up.
        self.previous_trend = 0

    def on_start(self) -> None:
        self.instrument = self.cache.instrument(self.config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Instrument {self.config.instrument_id} not found in the cache")
            self.stop()
            return
        self.register_indicator_for_bars(self.config.bar_type, self.fast_ema)
        self.register_indicator_for_bars(self.config.bar_type, self.slow_ema)
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        if not (self.fast_ema.initialized and self.slow_ema.initialized):
            return
        trend = 1 if self.fast_ema.value > self.slow_ema.value else -1
        crossed = self.previous_trend != 0 and trend != self.previous_trend
        self.previous_trend = trend
        if not crossed:
            return
        position_quantity = self._signed_position_quantity()
        if trend > 0:
            target = self._target_quantity(bar)
        else:
            target = -self._target_quantity(bar) if self.config.allow_short else Decimal(0)
        self._trade_towards(target, position_quantity)

    def on_stop(self) -> None:
        if self.config.close_positions_on_stop:
            self.close_all_positions(self.config.instrument_id)
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        self.fast_ema.reset()
        self.slow_ema.reset()
        self.previous_trend = 0

    def _signed_position_quantity(self) -> Decimal:
        """This strategy's net position in the instrument (+long / -short), in units."""
        signed = Decimal(0)
        for position in self.cache.positions_open(
            instrument_id=self.config.instrument_id,
            strategy_id=self.id,
        ):
            signed += Decimal(position.signed_qty)
        return signed

    def _target_quantity(self, bar: Bar) -> Decimal:
        """Units worth ``equity_fraction`` of equity at the bar's close, rounded down to the lot."""
        assert self.instrument is not None
        venue = self.config.instrument_id.venue
        account = self.portfolio.account(venue)
        currency = self.instrument.quote_currency
        equity = account.balance_total(currency).as_decimal()
        unrealized = self.portfolio.unrealized_pnl(self.config.instrument_id)
        if unrealized is not None:
            equity += unrealized.as_decimal()
        price = bar.close.as_decimal() * self.instrument.multiplier.as_decimal()
        lot = self.instrument.lot_size.as_decimal() if self.instrument.lot_size else Decimal(1)
        units = equity * Decimal(str(self.config.equity_fraction)) / price
        return (units / lot).to_integral_value(rounding="ROUND_FLOOR") * lot

    def _trade_towards(self, target: Decimal, current: Decimal) -> None:
        assert self.instrument is not None
        delta = target - current
        if delta == 0:
            return
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=OrderSide.BUY if delta > 0 else OrderSide.SELL,
            quantity=Quantity(abs(delta), self.instrument.size_precision),
            time_in_force=TimeInForce.GTC,
        )
        self.submit_order(order)
