"""S3 breakout: joins strong breaks of the recent range, confirmed by volume and momentum.

Long when the close exceeds the prior ``breakout_period``-bar high (Nautilus ``DonchianChannel``
over the bars *before* this one) by at least ``breakout_threshold`` ATRs::

    close >= prior_high + breakout_threshold · ATR

and, with ``volume_confirmation``, the bar's volume is at least ``volume_multiple`` times the
mean volume of the prior ``volume_period`` bars, and the momentum (rate of change over
``momentum_period`` bars) is above ``min_momentum``. Short is the mirror image below the prior
low (with ``allow_short``).

The position rides a trailing stop (chandelier: highest high since entry minus
``trailing_atr_multiple · ATR``) inside a bracket whose target is ``risk_reward_ratio`` times the
initial stop distance. Regime: trending (bull and bear affinity 1, sideways 0).

Bars without volume (close-only data) cannot confirm a breakout: the strategy logs it once and
stays flat; set ``volume_confirmation: false`` for such data.

The rule is :func:`breakout_entry`, a pure function of values every decision records, so that
deterministic replay (``grodt.forensics.decision_replay``) recomputes it through the same code.
"""

from collections.abc import Mapping

import msgspec
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import DonchianChannel
from nautilus_trader.indicators import RateOfChange
from nautilus_trader.model.data import Bar

from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig
from strategies.decisions import DecisionInputs
from strategies.indicators import WindowMean

__all__ = ["S3Breakout", "S3BreakoutConfig", "breakout_entry", "entry_from_record"]


class S3BreakoutConfig(RegimeAwareStrategyConfig, frozen=True):
    """Configuration for :class:`S3Breakout` (plus every base field).

    Parameters
    ----------
    breakout_period : int, default 20
        N of the N-bar high/low, in bars (excluding the signal bar).
    breakout_threshold : float, default 1.5
        Distance beyond the N-bar high/low, in ATR multiples.
    volume_confirmation : bool, default True
        Require volume >= ``volume_multiple`` × the prior ``volume_period``-bar mean.
    volume_period : int, default 20
    volume_multiple : float, default 1.5
    momentum_period : int, default 10
        Rate-of-change period, in bars.
    min_momentum : float, default 0.0
        Minimum rate of change (fraction of price) in the breakout's direction.
    risk_reward_ratio : float, default 2.0
    stop_atr_multiple : float, default 2.0
    trailing_stop : bool, default True
    trailing_atr_multiple : float, default 3.0
    regime_affinity : dict, default {bull: 1, bear: 1, sideways: 0}
    """

    breakout_period: PositiveInt = 20
    breakout_threshold: NonNegativeFloat = 1.5
    volume_confirmation: bool = True
    volume_period: PositiveInt = 20
    volume_multiple: PositiveFloat = 1.5
    momentum_period: PositiveInt = 10
    min_momentum: NonNegativeFloat = 0.0
    risk_reward_ratio: PositiveFloat = 2.0
    stop_atr_multiple: PositiveFloat = 2.0
    trailing_stop: bool = True
    trailing_atr_multiple: PositiveFloat | None = 3.0
    regime_affinity: dict[str, float] = msgspec.field(
        default_factory=lambda: {"bull": 1.0, "bear": 1.0, "sideways": 0.0},
    )


def breakout_entry(
    *,
    close: float,
    prior_high: float,
    prior_low: float,
    atr: float,
    momentum: float,
    volume: float,
    volume_average: float,
    config: S3BreakoutConfig,
) -> EntrySignal | None:
    """The S3 rule (module docstring) on one bar: prices and ``atr`` in price units,
    ``momentum`` a rate of change, ``volume_average`` the prior bars' mean volume (0 without
    volume data: no confirmation possible)."""
    reach = config.breakout_threshold * atr
    if close >= prior_high + reach:
        direction = 1
    elif close <= prior_low - reach:
        direction = -1
    else:
        return None
    if direction * momentum <= config.min_momentum:
        return None
    if config.volume_confirmation and not (
        volume_average > 0.0 and volume >= config.volume_multiple * volume_average
    ):
        return None
    reason = "breakout_high" if direction > 0 else "breakout_low"
    return EntrySignal(direction, reason)


class S3Breakout(RegimeAwareStrategy):
    """Range breakout with volume and momentum confirmation; see the module docstring."""

    def __init__(self, config: S3BreakoutConfig) -> None:
        super().__init__(config)
        # Lagged: during entry_signal(bar_t) they describe bars up to t-1.
        self.channel = self.add_indicator(DonchianChannel(config.breakout_period), lagged=True)
        self.momentum = self.add_indicator(RateOfChange(config.momentum_period))
        # Fed each bar's volume after the decision: the mean of the prior volume_period bars.
        # WindowMean: Nautilus' SimpleMovingAverage bit for bit, without its numpy array per bar.
        self.volume_average = self.add_indicator(
            WindowMean(config.volume_period),
            manual=True,
        )
        self.volume_ratio = 0.0  # this bar's volume over the prior mean (0 without volume data)
        self._warned_no_volume = False

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        config = self.config
        average = self.volume_average.value
        if config.volume_confirmation and average <= 0.0 and not self._warned_no_volume:
            self._warned_no_volume = True
            self.log.warning(
                f"{config.bar_type} carries no volume: breakouts cannot be confirmed "
                "(set volume_confirmation: false for close-only data)",
            )
        return breakout_entry(
            close=bar.close.as_double(),
            prior_high=self.channel.upper,
            prior_low=self.channel.lower,
            atr=self.atr.value,
            momentum=self.momentum.value,
            volume=bar.volume.as_double(),
            volume_average=average,
            config=config,
        )

    def features(self) -> dict[str, float]:
        return {
            "prior_high": self.channel.upper,
            "prior_low": self.channel.lower,
            "momentum": self.momentum.value,
            "volume_ratio": self.volume_ratio,
            "volume_average": self.volume_average.value,
        }

    def pre_bar(self, bar: Bar) -> None:
        # Before post_bar feeds this bar's volume: the ratio is over the prior bars' mean.
        average = self.volume_average.value if self.volume_average.initialized else 0.0
        self.volume_ratio = bar.volume.as_double() / average if average > 0.0 else 0.0

    def post_bar(self, bar: Bar) -> None:
        self.volume_average.update_raw(bar.volume.as_double())

    def on_reset(self) -> None:
        super().on_reset()
        self.volume_ratio = 0.0
        self._warned_no_volume = False


def entry_from_record(
    features: Mapping[str, float],
    inputs: DecisionInputs,
    config: S3BreakoutConfig,
) -> EntrySignal | None:
    """:func:`breakout_entry` on a decision record's features and inputs (replay)."""
    return breakout_entry(
        close=features["close"],
        prior_high=features["prior_high"],
        prior_low=features["prior_low"],
        atr=features["atr"],
        momentum=features["momentum"],
        volume=inputs.bar_volume,
        volume_average=features["volume_average"],
        config=config,
    )
