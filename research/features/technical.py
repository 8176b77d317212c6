"""Technical indicators: the streaming side runs NautilusTrader's indicator, the batch side runs
the same indicator over the arrays or a vectorised formula with the same arithmetic.

Every indicator is fed with ``update_raw`` from floats, never ``handle_bar``, so both sides see
the same inputs. Values are in price units unless stated.

- ``sma(period)``, ``ema(period)``: moving averages of the close.
- ``rsi(period)``: Nautilus' RSI (exponential averages of gains and losses), in [0, 1].
- ``macd(fast, slow)``: EMA(fast) - EMA(slow) of the close (Nautilus' MACD line; no signal line).
- ``bollinger_width(period, k)``: (upper - lower) / middle of Nautilus' Bollinger bands over the
  typical price (high + low + close) / 3, population standard deviation; dimensionless.
- ``atr(period)``: simple average of the true range (previous close included).
- ``obv(period)``: Nautilus' on-balance volume over the last ``period`` bars (the sign is close
  against the bar's own open); volume units. ``period`` must be >= 1: Nautilus' unbounded
  version re-sums its whole history on every bar.
- ``vwap()``: Nautilus' VWAP of the typical price (close + high + low) / 3, reset when the UTC
  day of the month changes; a day's zero-volume bars keep the value (the day's first typical
  price until volume arrives).
- ``volume_zscore(window)``: (volume - mean) / std (population) of the last ``window`` volumes,
  NaN when the window's volume is constant. Nautilus has no such indicator.
"""

import datetime as dt
import itertools
import math
from collections.abc import Mapping
from typing import Any
from typing import ClassVar

import numpy as np
import pandas as pd
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.indicators import BollingerBands
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.indicators import MovingAverageConvergenceDivergence
from nautilus_trader.indicators import OnBalanceVolume
from nautilus_trader.indicators import RelativeStrengthIndex
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.indicators import VolumeWeightedAveragePrice

from research.features.base import BarArrays
from research.features.base import BarValues
from research.features.base import FeatureDefinition
from research.features.base import FeatureDefinitionError
from research.features.base import FeatureStream
from research.features.base import RingWindow
from research.features.base import rolling_rows
from research.features.base import row_mean
from research.features.base import safe_divide

__all__ = [
    "AverageTrueRangeFeature",
    "BollingerWidthFeature",
    "ExponentialMovingAverageFeature",
    "MacdFeature",
    "OnBalanceVolumeFeature",
    "RelativeStrengthIndexFeature",
    "SimpleMovingAverageFeature",
    "VolumeWeightedAveragePriceFeature",
    "VolumeZScoreFeature",
]


class _CountingStream(FeatureStream):
    """NaN until ``warm_up`` bars were seen, then what ``compute`` returns."""

    def __init__(self, warm_up: int) -> None:
        self._warm_up = warm_up
        self._seen = 0

    def update(self, bar: BarValues) -> tuple[float, ...]:
        self._seen += 1
        value = self.compute(bar)
        return (value if self._seen >= self._warm_up else math.nan,)

    def compute(self, bar: BarValues) -> float:
        raise NotImplementedError


class _CloseIndicatorStream(_CountingStream):
    """A Nautilus indicator fed the close."""

    def __init__(self, warm_up: int, indicator: object) -> None:
        super().__init__(warm_up)
        self._indicator = indicator

    def compute(self, bar: BarValues) -> float:
        self._indicator.update_raw(bar.close)  # type: ignore[attr-defined]
        return float(self._indicator.value)  # type: ignore[attr-defined]


def _indicator_over_closes(indicator: object, close: np.ndarray) -> np.ndarray:
    """The indicator's value after each close: the streaming side's exact arithmetic."""
    update = indicator.update_raw  # type: ignore[attr-defined]
    out = np.empty(close.shape[0])
    for position, value in enumerate(close.tolist()):
        update(value)
        out[position] = indicator.value  # type: ignore[attr-defined]
    return out


class _PeriodFeature(FeatureDefinition):
    """A feature over a trailing window of ``period`` bars: its warm-up is the period."""

    def validate(self) -> None:
        self._positive("period")

    @property
    def warm_up(self) -> int:
        return int(self.params["period"])


class SimpleMovingAverageFeature(_PeriodFeature):
    kind = "sma"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 20}

    def batch(self, bars: BarArrays) -> np.ndarray:
        return self._mask_warm_up(rolling_rows((bars.close,), self.warm_up, row_mean))

    def stream(self) -> FeatureStream:
        return _CloseIndicatorStream(self.warm_up, SimpleMovingAverage(self.params["period"]))


class ExponentialMovingAverageFeature(_PeriodFeature):
    """Seeded with the first close (Nautilus); keeps memory of every bar since the first."""

    kind = "ema"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 20}

    def batch(self, bars: BarArrays) -> np.ndarray:
        indicator = ExponentialMovingAverage(self.params["period"])
        return self._mask_warm_up(_indicator_over_closes(indicator, bars.close))

    def stream(self) -> FeatureStream:
        return _CloseIndicatorStream(self.warm_up, ExponentialMovingAverage(self.params["period"]))


class RelativeStrengthIndexFeature(_PeriodFeature):
    kind = "rsi"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 14}

    def batch(self, bars: BarArrays) -> np.ndarray:
        indicator = RelativeStrengthIndex(self.params["period"])
        return self._mask_warm_up(_indicator_over_closes(indicator, bars.close))

    def stream(self) -> FeatureStream:
        return _CloseIndicatorStream(self.warm_up, RelativeStrengthIndex(self.params["period"]))


class MacdFeature(FeatureDefinition):
    kind = "macd"
    defaults: ClassVar[Mapping[str, Any]] = {"fast": 12, "slow": 26}

    def validate(self) -> None:
        self._positive("fast", "slow")
        if self.params["fast"] >= self.params["slow"]:
            raise FeatureDefinitionError(
                f"feature kind 'macd': fast ({self.params['fast']}) must be below slow "
                f"({self.params['slow']})"
            )

    @property
    def warm_up(self) -> int:
        return int(self.params["slow"])

    def _indicator(self) -> MovingAverageConvergenceDivergence:
        return MovingAverageConvergenceDivergence(self.params["fast"], self.params["slow"])

    def batch(self, bars: BarArrays) -> np.ndarray:
        return self._mask_warm_up(_indicator_over_closes(self._indicator(), bars.close))

    def stream(self) -> FeatureStream:
        return _CloseIndicatorStream(self.warm_up, self._indicator())


class BollingerWidthFeature(_PeriodFeature):
    kind = "bollinger_width"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 20, "k": 2.0}

    def batch(self, bars: BarArrays) -> np.ndarray:
        # Nautilus: typical = (h + l + c) / 3; middle = mean; std = sqrt(sum((x - middle)^2) / n)
        typical = (bars.high + bars.low + bars.close) / 3.0
        k = self.params["k"]

        def width(rows: np.ndarray) -> np.ndarray:
            middle = row_mean(rows)
            std = np.sqrt(((rows - middle[:, None]) ** 2).sum(axis=1) / rows.shape[1])
            return ((middle + k * std) - (middle - k * std)) / middle

        return self._mask_warm_up(rolling_rows((typical,), self.warm_up, width))

    def stream(self) -> FeatureStream:
        return _BollingerStream(
            self.warm_up, BollingerBands(self.params["period"], self.params["k"])
        )


class _BollingerStream(_CountingStream):
    def __init__(self, warm_up: int, indicator: BollingerBands) -> None:
        super().__init__(warm_up)
        self._indicator = indicator

    def compute(self, bar: BarValues) -> float:
        self._indicator.update_raw(bar.high, bar.low, bar.close)
        return (self._indicator.upper - self._indicator.lower) / self._indicator.middle


class AverageTrueRangeFeature(_PeriodFeature):
    kind = "atr"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 14}

    def batch(self, bars: BarArrays) -> np.ndarray:
        previous = np.concatenate([bars.close[:1], bars.close[:-1]])
        true_range = np.maximum(previous, bars.high) - np.minimum(bars.low, previous)
        return self._mask_warm_up(rolling_rows((true_range,), self.warm_up, row_mean))

    def stream(self) -> FeatureStream:
        return _AtrStream(self.warm_up, AverageTrueRange(self.params["period"]))


class _AtrStream(_CountingStream):
    def __init__(self, warm_up: int, indicator: AverageTrueRange) -> None:
        super().__init__(warm_up)
        self._indicator = indicator

    def compute(self, bar: BarValues) -> float:
        self._indicator.update_raw(bar.high, bar.low, bar.close)
        return float(self._indicator.value)


class OnBalanceVolumeFeature(_PeriodFeature):
    kind = "obv"
    defaults: ClassVar[Mapping[str, Any]] = {"period": 20}

    def batch(self, bars: BarArrays) -> np.ndarray:
        signed = np.where(
            bars.close > bars.open, bars.volume, np.where(bars.close < bars.open, -bars.volume, 0.0)
        )
        return self._mask_warm_up(rolling_rows((signed,), self.warm_up, _row_sum))

    def stream(self) -> FeatureStream:
        return _ObvStream(self.warm_up, OnBalanceVolume(self.params["period"]))


def _row_sum(rows: np.ndarray) -> np.ndarray:
    return rows.sum(axis=1)


class _ObvStream(_CountingStream):
    def __init__(self, warm_up: int, indicator: OnBalanceVolume) -> None:
        super().__init__(warm_up)
        self._indicator = indicator

    def compute(self, bar: BarValues) -> float:
        self._indicator.update_raw(bar.open, bar.close, bar.volume)
        return float(self._indicator.value)


class VolumeWeightedAveragePriceFeature(FeatureDefinition):
    kind = "vwap"
    defaults: ClassVar[Mapping[str, Any]] = {}

    @property
    def warm_up(self) -> int:
        return 1

    def batch(self, bars: BarArrays) -> np.ndarray:
        n = len(bars)
        if n == 0:
            return np.empty((0, 1))
        typical = (bars.close + bars.high + bars.low) / 3.0
        day = pd.DatetimeIndex(bars.ts.view("datetime64[ns]")).day.to_numpy()
        starts = np.flatnonzero(np.concatenate([[True], day[1:] != day[:-1]]))
        marks = np.zeros(n, dtype=np.int64)
        marks[starts] = 1
        session = np.cumsum(marks) - 1
        weighted = np.where(bars.volume == 0, 0.0, typical * bars.volume)
        volume = np.where(bars.volume == 0, 0.0, bars.volume)
        # Running sums restart each session; Nautilus adds in bar order, so does cumsum.
        cum_pv = _session_cumsum(weighted, starts)
        cum_v = _session_cumsum(volume, starts)
        first_typical = typical[starts][session]
        with np.errstate(divide="ignore", invalid="ignore"):
            values = np.where(cum_v > 0, cum_pv / cum_v, first_typical)
        return self._mask_warm_up(values)

    def stream(self) -> FeatureStream:
        return _VwapStream(self.warm_up, VolumeWeightedAveragePrice())


def _session_cumsum(values: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Cumulative sums restarting at each index of ``starts`` (summed left to right)."""
    out = np.empty_like(values)
    bounds = [*starts.tolist(), values.shape[0]]
    for begin, end in itertools.pairwise(bounds):
        np.cumsum(values[begin:end], out=out[begin:end])
    return out


class _VwapStream(_CountingStream):
    def __init__(self, warm_up: int, indicator: VolumeWeightedAveragePrice) -> None:
        super().__init__(warm_up)
        self._indicator = indicator

    def compute(self, bar: BarValues) -> float:
        typical = (bar.close + bar.high + bar.low) / 3.0
        # Nautilus only reads the day of month; a datetime is cheaper to build than a Timestamp.
        stamp = dt.datetime.fromtimestamp(bar.ts // 1_000_000_000, tz=dt.UTC)
        self._indicator.update_raw(typical, bar.volume, stamp)
        return float(self._indicator.value)


class VolumeZScoreFeature(FeatureDefinition):
    kind = "volume_zscore"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 20}

    def validate(self) -> None:
        self._positive("window", minimum=2)

    @property
    def warm_up(self) -> int:
        return int(self.params["window"])

    def batch(self, bars: BarArrays) -> np.ndarray:
        return self._mask_warm_up(rolling_rows((bars.volume,), self.warm_up, _zscore_last))

    def stream(self) -> FeatureStream:
        return _WindowStream(self.warm_up, _zscore_last)


def _zscore_last(rows: np.ndarray) -> np.ndarray:
    mean = row_mean(rows)
    deviation = rows - mean[:, None]
    std = np.sqrt((deviation * deviation).sum(axis=1) / rows.shape[1])
    return safe_divide(rows[:, -1] - mean, std)


class _WindowStream(FeatureStream):
    """The batch reduction applied to a ring window of volumes."""

    def __init__(self, window: int, reduce: object) -> None:
        self._window = RingWindow(window)
        self._reduce = reduce

    def update(self, bar: BarValues) -> tuple[float, ...]:
        self._window.push(bar.volume)
        if not self._window.full:
            return (math.nan,)
        return (float(self._reduce(self._window.rows())[0]),)  # type: ignore[operator]
