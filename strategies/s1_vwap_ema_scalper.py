"""S1 VWAP/EMA scalper: trades pullbacks to the EMA in the direction of the trend.

Long when the bar closes above the VWAP, the EMA rises (``EMA_t > EMA_{t-1}``), the previous
close was above the previous EMA, and this bar pulled back to the EMA — its low came within
``pullback_atr_multiple`` ATRs of the EMA — and closed back above it. Short is the mirror image
(close below the VWAP, falling EMA, high within reach of the EMA, close back below it), taken
only with ``allow_short``.

The VWAP is the session VWAP on intraday bars and a rolling VWAP on daily bars (``vwap_mode``).
Exits are the base's bracket (ATR stop, ``risk_reward_ratio`` target), plus its time stop and
session flattening when configured. Regime: trending (bull and bear affinity 1, sideways 0).

The rule is :func:`pullback_entry`, a pure function of values every decision records, so that
deterministic replay (``grodt.forensics.decision_replay``) recomputes it through the same code.
"""

import math
from collections.abc import Mapping

import msgspec
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.data import Bar

from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig
from strategies.decisions import DecisionInputs

__all__ = ["S1VwapEmaScalper", "S1VwapEmaScalperConfig", "entry_from_record", "pullback_entry"]


def pullback_entry(
    *,
    close: float,
    low: float,
    high: float,
    ema: float,
    previous_ema: float,
    previous_close: float,
    vwap: float,
    atr: float,
    pullback_atr_multiple: float,
) -> EntrySignal | None:
    """The S1 rule (module docstring) on one bar: prices in price units, ``atr`` in price
    units, ``pullback_atr_multiple`` in ATRs."""
    reach = pullback_atr_multiple * atr
    uptrend = ema > previous_ema and previous_close > previous_ema
    downtrend = ema < previous_ema and previous_close < previous_ema
    if uptrend and close > vwap and close > ema and low <= ema + reach:
        return EntrySignal(1, "vwap_ema_pullback_long")
    if downtrend and close < vwap and close < ema and high >= ema - reach:
        return EntrySignal(-1, "vwap_ema_pullback_short")
    return None


class S1VwapEmaScalperConfig(RegimeAwareStrategyConfig, frozen=True):
    """Configuration for :class:`S1VwapEmaScalper` (plus every base field).

    Parameters
    ----------
    ema_period : int, default 9
        EMA period, in bars.
    pullback_atr_multiple : float, default 0.25
        How close (in ATRs) the bar's low (long) or high (short) must come to the EMA.
    risk_reward_ratio : float, default 1.5
    stop_atr_multiple : float, default 1.0
    regime_affinity : dict, default {bull: 1, bear: 1, sideways: 0}
    """

    ema_period: PositiveInt = 9
    pullback_atr_multiple: NonNegativeFloat = 0.25
    risk_reward_ratio: PositiveFloat = 1.5
    stop_atr_multiple: PositiveFloat = 1.0
    regime_affinity: dict[str, float] = msgspec.field(
        default_factory=lambda: {"bull": 1.0, "bear": 1.0, "sideways": 0.0},
    )


class S1VwapEmaScalper(RegimeAwareStrategy):
    """Trend pullback scalper on VWAP and EMA; see the module docstring."""

    def __init__(self, config: S1VwapEmaScalperConfig) -> None:
        super().__init__(config)
        self.ema = self.add_indicator(ExponentialMovingAverage(config.ema_period))
        self.vwap = self.add_indicator(self.create_vwap())
        # EMA and close of the previous bar (NaN until the EMA is initialised).
        self.previous_ema = float("nan")
        self.previous_close = float("nan")

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        return pullback_entry(
            close=bar.close.as_double(),
            low=bar.low.as_double(),
            high=bar.high.as_double(),
            ema=self.ema.value,
            previous_ema=self.previous_ema,
            previous_close=self.previous_close,
            vwap=self.vwap.value,
            atr=self.atr.value,
            pullback_atr_multiple=self.config.pullback_atr_multiple,
        )

    def features(self) -> dict[str, float]:
        return {
            "ema": self.ema.value,
            "previous_ema": self.previous_ema,
            "previous_close": self.previous_close,
            "vwap": self.vwap.value,
        }

    def post_bar(self, bar: Bar) -> None:
        if self.ema.initialized:
            self.previous_ema = self.ema.value
            self.previous_close = bar.close.as_double()

    def on_reset(self) -> None:
        super().on_reset()
        self.previous_ema = float("nan")
        self.previous_close = float("nan")


def entry_from_record(
    features: Mapping[str, float],
    inputs: DecisionInputs,
    config: S1VwapEmaScalperConfig,
) -> EntrySignal | None:
    """:func:`pullback_entry` on a decision record's features and inputs (replay)."""
    return pullback_entry(
        close=features["close"],
        low=inputs.bar_low,
        high=inputs.bar_high,
        ema=features["ema"],
        previous_ema=features["previous_ema"],
        previous_close=features.get("previous_close", math.nan),
        vwap=features["vwap"],
        atr=features["atr"],
        pullback_atr_multiple=config.pullback_atr_multiple,
    )
