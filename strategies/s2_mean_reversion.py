"""S2 mean reversion: fades deviations from the VWAP in ranging markets.

The deviation of the close from the VWAP is measured in rolling standard deviations::

    z = (close - VWAP) / σ,   σ = standard deviation of the close over the last
                                  ``mean_reversion_period`` bars, this bar included (Nautilus
                                  ``BollingerBands`` with k = 1, fed closes: its
                                  bit-identical twin :class:`~strategies.indicators.WindowBands`)

Long when ``z <= -vwap_deviation_threshold``, short (with ``allow_short``) when
``z >= vwap_deviation_threshold``. The size scales with the deviation — signal strength
``min(1, |z| / full_size_deviation)`` — and inversely with the ATR through the base's risk sizing
(stop ``stop_atr_multiple · ATR``). The position exits at market when the close reaches the VWAP
again (``exit_signal``), or by its bracket: ATR stop, take profit at ``risk_reward_ratio`` times the
stop distance, whichever comes first. Regime: ranging (sideways affinity 1, bull and bear 0).

The rules are :func:`mean_reversion_entry` and :func:`vwap_exit`, pure functions of values every
decision records, so that deterministic replay (``grodt.forensics.decision_replay``) recomputes
them through the same code.
"""

from collections.abc import Mapping

import msgspec
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar

from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig
from strategies.decisions import DecisionInputs
from strategies.indicators import WindowBands

__all__ = [
    "S2MeanReversion",
    "S2MeanReversionConfig",
    "entry_from_record",
    "exit_from_record",
    "mean_reversion_entry",
    "vwap_exit",
]


def mean_reversion_entry(
    deviation_z: float,
    threshold: float,
    full_size_deviation: float,
) -> EntrySignal | None:
    """The S2 entry (module docstring): fade ``|z| >= threshold`` (standard deviations) with
    strength ``min(1, |z| / full_size_deviation)``."""
    if abs(deviation_z) < threshold:
        return None
    strength = min(1.0, abs(deviation_z) / full_size_deviation)
    if deviation_z < 0.0:
        return EntrySignal(1, "below_vwap", strength=strength)
    return EntrySignal(-1, "above_vwap", strength=strength)


def vwap_exit(close: float, vwap: float, direction: int) -> str | None:
    """The S2 exit: ``vwap_reached`` once the close is back at the VWAP (``direction`` +1
    long, -1 short)."""
    if (direction > 0 and close >= vwap) or (direction < 0 and close <= vwap):
        return "vwap_reached"
    return None


class S2MeanReversionConfig(RegimeAwareStrategyConfig, frozen=True):
    """Configuration for :class:`S2MeanReversion` (plus every base field).

    Parameters
    ----------
    mean_reversion_period : int, default 20
        Window of the rolling standard deviation, in bars.
    vwap_deviation_threshold : float, default 2.0
        Entry threshold on ``|z|``, in standard deviations.
    full_size_deviation : float, default 4.0
        ``|z|`` at which the signal strength reaches 1 (must be >= the threshold).
    risk_reward_ratio : float, default 1.2
    stop_atr_multiple : float, default 1.5
    regime_affinity : dict, default {bull: 0, bear: 0, sideways: 1}
    """

    mean_reversion_period: PositiveInt = 20
    vwap_deviation_threshold: PositiveFloat = 2.0
    full_size_deviation: PositiveFloat = 4.0
    risk_reward_ratio: PositiveFloat = 1.2
    stop_atr_multiple: PositiveFloat = 1.5
    regime_affinity: dict[str, float] = msgspec.field(
        default_factory=lambda: {"bull": 0.0, "bear": 0.0, "sideways": 1.0},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.full_size_deviation < self.vwap_deviation_threshold:
            raise ValueError(
                f"full_size_deviation ({self.full_size_deviation}) must be >= "
                f"vwap_deviation_threshold ({self.vwap_deviation_threshold})",
            )


class S2MeanReversion(RegimeAwareStrategy):
    """VWAP deviation fader; see the module docstring."""

    def __init__(self, config: S2MeanReversionConfig) -> None:
        super().__init__(config)
        self.vwap = self.add_indicator(self.create_vwap())
        # Fed closes (not the typical price) so that z compares like with like. WindowBands:
        # Nautilus' BollingerBands bit for bit, without its two numpy arrays per bar.
        self.bands = self.add_indicator(
            WindowBands(config.mean_reversion_period, 1.0),
            manual=True,
        )
        self.deviation = 0.0  # z of the last bar, in standard deviations

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        config = self.config
        return mean_reversion_entry(
            self.deviation,
            config.vwap_deviation_threshold,
            config.full_size_deviation,
        )

    def exit_signal(self, bar: Bar, direction: int) -> str | None:
        return vwap_exit(bar.close.as_double(), self.vwap.value, direction)

    def features(self) -> dict[str, float]:
        return {
            "vwap": self.vwap.value,
            "deviation_z": self.deviation,
            "sigma": self.bands.upper - self.bands.middle,
        }

    def pre_bar(self, bar: Bar) -> None:
        # The bands include this bar's close, like the VWAP registered for the bars.
        close = bar.close.as_double()
        self.bands.update_raw(close, close, close)
        sigma = self.bands.upper - self.bands.middle
        vwap = self.vwap.value
        self.deviation = (close - vwap) / sigma if sigma > 0.0 else 0.0

    def on_reset(self) -> None:
        super().on_reset()
        self.deviation = 0.0


def entry_from_record(
    features: Mapping[str, float],
    inputs: DecisionInputs,
    config: S2MeanReversionConfig,
) -> EntrySignal | None:
    """:func:`mean_reversion_entry` on a decision record's features (replay)."""
    return mean_reversion_entry(
        features["deviation_z"],
        config.vwap_deviation_threshold,
        config.full_size_deviation,
    )


def exit_from_record(
    features: Mapping[str, float],
    inputs: DecisionInputs,
    config: S2MeanReversionConfig,
    direction: int,
) -> str | None:
    """:func:`vwap_exit` on a decision record's features (replay)."""
    return vwap_exit(features["close"], features["vwap"], direction)
