"""Statistical features over log returns of the close (and of a reference instrument's close).

Returns: ``r_t = log(close_t / close_{t-1})``. A window of ``w`` returns needs ``w + 1`` bars.
The batch side reduces sliding windows (:func:`~research.features.base.rolling_rows`), the
streaming side the same reduction over a ring window, so both run the same arithmetic.

- ``log_return(periods)``: ``log(close_t / close_{t-periods})``.
- ``volatility(window)``: sample standard deviation (ddof=1) of the last ``window`` returns,
  per bar (not annualised).
- ``correlation(reference, window)``, ``beta(reference, window)``: Pearson correlation and
  ``cov / var(reference)`` of the last ``window`` returns of the instrument and of the reference
  bar type, both sampled on the instrument's bars (the reference's latest close at or before
  each bar; streaming: update the reference's bar first when both close at the same time).
- ``value_at_risk(window, level)``: ``-quantile(returns, 1 - level)`` (linear interpolation
  between order statistics, numpy's default), a positive number is a loss;
  ``conditional_value_at_risk(window, level)``: minus the mean of the returns at or below that
  quantile.
- ``drawdown(window)``: ``close / max(close over the window) - 1`` (<= 0).
"""

import math
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any
from typing import ClassVar

import numpy as np

from research.features.base import BarArrays
from research.features.base import BarValues
from research.features.base import FeatureDefinition
from research.features.base import FeatureDefinitionError
from research.features.base import FeatureStream
from research.features.base import RingWindow
from research.features.base import quantile_rows
from research.features.base import rolling_rows
from research.features.base import row_mean
from research.features.base import safe_divide

__all__ = [
    "BetaFeature",
    "ConditionalValueAtRiskFeature",
    "CorrelationFeature",
    "DrawdownFeature",
    "LogReturnFeature",
    "ValueAtRiskFeature",
    "VolatilityFeature",
    "log_returns",
]

Reduce = Callable[..., np.ndarray]


def log_returns(close: np.ndarray) -> np.ndarray:
    """``log(close_t / close_{t-1})``, shape (n,), NaN at position 0."""
    out = np.full(close.shape[0], math.nan)
    if close.shape[0] > 1:
        out[1:] = np.log(close[1:] / close[:-1])
    return out


class LogReturnFeature(FeatureDefinition):
    kind = "log_return"
    defaults: ClassVar[Mapping[str, Any]] = {"periods": 1}

    def validate(self) -> None:
        self._positive("periods")

    @property
    def warm_up(self) -> int:
        return int(self.params["periods"]) + 1

    def batch(self, bars: BarArrays) -> np.ndarray:
        periods = self.params["periods"]
        out = np.full(len(bars), math.nan)
        if len(bars) > periods:
            out[periods:] = np.log(bars.close[periods:] / bars.close[:-periods])
        return self._mask_warm_up(out)

    def stream(self) -> FeatureStream:
        return _LogReturnStream(self.params["periods"])


class _LogReturnStream(FeatureStream):
    def __init__(self, periods: int) -> None:
        self._closes = RingWindow(periods + 1)

    def update(self, bar: BarValues) -> tuple[float, ...]:
        self._closes.push(bar.close)
        if not self._closes.full:
            return (math.nan,)
        rows = self._closes.rows()
        return (float(np.log(rows[:, -1:] / rows[:, :1])[0, 0]),)


class _ReturnWindowStream(FeatureStream):
    """Ring windows of the instrument's (and optionally a reference's) returns."""

    def __init__(self, window: int, reduce: Reduce, reference: str | None = None) -> None:
        self._reduce = reduce
        self._reference = reference
        self._returns = RingWindow(window)
        self._reference_returns = RingWindow(window) if reference else None
        self._previous = math.nan
        self._previous_reference = math.nan

    def update(self, bar: BarValues) -> tuple[float, ...]:
        self._returns.push(float(np.log(np.array([bar.close / self._previous]))[0]))
        self._previous = bar.close
        windows = [self._returns]
        if self._reference_returns is not None:
            reference = bar.references.get(self._reference, math.nan)  # type: ignore[arg-type]
            ratio = np.array([reference / self._previous_reference])
            self._reference_returns.push(float(np.log(ratio)[0]))
            self._previous_reference = reference
            windows.append(self._reference_returns)
        if not self._returns.full:
            return (math.nan,)
        return (float(self._reduce(*(w.rows() for w in windows))[0]),)


class _ReturnWindowFeature(FeatureDefinition):
    """A reduction over the last ``window`` returns."""

    def validate(self) -> None:
        self._positive("window", minimum=2)

    @property
    def warm_up(self) -> int:
        return int(self.params["window"]) + 1

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def batch(self, bars: BarArrays) -> np.ndarray:
        columns = [log_returns(bars.close)]
        for reference in self.references:
            columns.append(log_returns(bars.references[reference]))
        return self._mask_warm_up(rolling_rows(tuple(columns), self.params["window"], self.reduce))

    def stream(self) -> FeatureStream:
        reference = self.references[0] if self.references else None
        return _ReturnWindowStream(self.params["window"], self.reduce, reference)


class VolatilityFeature(_ReturnWindowFeature):
    kind = "volatility"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 20}

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        deviation = _centered(rows[0])
        return np.sqrt((deviation * deviation).sum(axis=1) / (rows[0].shape[1] - 1))


class _ReferenceFeature(_ReturnWindowFeature):
    @property
    def references(self) -> tuple[str, ...]:
        return (str(self.params["reference"]),)


def _centered(rows: np.ndarray) -> np.ndarray:
    return rows - row_mean(rows)[:, None]


class CorrelationFeature(_ReferenceFeature):
    kind = "correlation"
    defaults: ClassVar[Mapping[str, Any]] = {"reference": None, "window": 60}

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        x, y = _centered(rows[0]), _centered(rows[1])
        return safe_divide((x * y).sum(axis=1), np.sqrt((x * x).sum(axis=1) * (y * y).sum(axis=1)))


class BetaFeature(_ReferenceFeature):
    kind = "beta"
    defaults: ClassVar[Mapping[str, Any]] = {"reference": None, "window": 60}

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        x, y = _centered(rows[0]), _centered(rows[1])
        return safe_divide((x * y).sum(axis=1), (y * y).sum(axis=1))


class _TailFeature(_ReturnWindowFeature):
    def validate(self) -> None:
        super().validate()
        if not 0.5 < self.params["level"] < 1.0:
            raise FeatureDefinitionError(
                f"feature kind {self.kind!r}: level must be in (0.5, 1), got {self.params['level']}"
            )


class ValueAtRiskFeature(_TailFeature):
    kind = "value_at_risk"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 100, "level": 0.95}

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        return -quantile_rows(rows[0], 1.0 - self.params["level"])


class ConditionalValueAtRiskFeature(_TailFeature):
    kind = "conditional_value_at_risk"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 100, "level": 0.95}

    def reduce(self, *rows: np.ndarray) -> np.ndarray:
        quantile = quantile_rows(rows[0], 1.0 - self.params["level"])
        tail = rows[0] <= quantile[:, None]
        return -safe_divide(np.where(tail, rows[0], 0.0).sum(axis=1), tail.sum(axis=1))


class DrawdownFeature(FeatureDefinition):
    kind = "drawdown"
    defaults: ClassVar[Mapping[str, Any]] = {"window": 60}

    def validate(self) -> None:
        self._positive("window")

    @property
    def warm_up(self) -> int:
        return int(self.params["window"])

    @staticmethod
    def reduce(rows: np.ndarray) -> np.ndarray:
        return rows[:, -1] / rows.max(axis=1) - 1.0

    def batch(self, bars: BarArrays) -> np.ndarray:
        return self._mask_warm_up(rolling_rows((bars.close,), self.warm_up, self.reduce))

    def stream(self) -> FeatureStream:
        return _CloseWindowStream(self.warm_up, self.reduce)


class _CloseWindowStream(FeatureStream):
    def __init__(self, window: int, reduce: Reduce) -> None:
        self._closes = RingWindow(window)
        self._reduce = reduce

    def update(self, bar: BarValues) -> tuple[float, ...]:
        self._closes.push(bar.close)
        if not self._closes.full:
            return (math.nan,)
        return (float(self._reduce(self._closes.rows())[0]),)
