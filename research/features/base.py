"""The contract every feature kind implements: one definition, computed in batch and per bar.

A kind (``sma``, ``log_return``, ``regime`` ...) is a :class:`FeatureDefinition` subclass. Its
:meth:`~FeatureDefinition.batch` turns whole arrays into columns; its
:meth:`~FeatureDefinition.stream` returns a :class:`FeatureStream` that takes one bar at a time.
Both give the same value on every bar after the warm-up (``tests/research/test_features_parity.py``
checks it to 1e-9 for every kind), and both give NaN before it.

Inputs are float64 prices and volumes; timestamps are int64 ns UTC bar closes.
"""

import functools
import hashlib
import inspect
import json
import math
import sys
from abc import ABC
from abc import abstractmethod
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import ClassVar

import nautilus_trader
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from grodt.core.errors import GrodtError

__all__ = [
    "REGIME_COLUMNS",
    "BarArrays",
    "BarValues",
    "FeatureDefinition",
    "FeatureDefinitionError",
    "FeatureStream",
    "RingWindow",
    "quantile_rows",
    "rolling_rows",
    "row_mean",
    "safe_divide",
]

REGIME_COLUMNS: tuple[str, ...] = ("bull", "bear", "sideways")
"""Regime probability outputs, in :data:`grodt.core.messages.REGIME_LABELS` order."""

_CHUNK_ROWS = 1 << 16
"""Rows of a sliding-window view reduced at once: bounds the temporaries to ~chunk x window."""


class FeatureDefinitionError(GrodtError):
    """A feature's kind or parameters are invalid (the message names the feature and field)."""


@dataclass(frozen=True)
class BarArrays:
    """One instrument's bars as arrays, shape (n,) each, in time order.

    Attributes
    ----------
    ts : np.ndarray
        int64 ns UTC bar-close times.
    open, high, low, close, volume : np.ndarray
        float64.
    references : Mapping[str, np.ndarray]
        Reference bar type → its latest close at or before each ``ts`` (NaN before its first bar).
    regimes : np.ndarray | None
        (n, 3) probabilities (bull, bear, sideways) of the latest regime record at or before each
        ``ts`` (NaN rows before the first record); None when none were given.
    """

    ts: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    references: Mapping[str, np.ndarray] = field(default_factory=dict)
    regimes: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ts.shape[0])


@dataclass(slots=True)
class BarValues:
    """One bar as floats, with what the streaming side knows at that bar.

    Attributes
    ----------
    ts : int
        Bar close, ns UTC.
    open, high, low, close, volume : float
    references : Mapping[str, float]
        Reference bar type → its latest close seen so far (NaN if none yet).
    regime : tuple[float, float, float] | None
        The latest regime record's (bull, bear, sideways) probabilities, None if none yet.
    """

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    references: Mapping[str, float] = field(default_factory=dict)
    regime: tuple[float, float, float] | None = None


class FeatureStream(ABC):
    """Per-instrument state of one feature, updated once per bar."""

    @abstractmethod
    def update(self, bar: BarValues) -> tuple[float, ...]:
        """The feature's outputs at ``bar`` (NaN while warming up), in ``outputs`` order."""


class FeatureDefinition(ABC):
    """A feature kind with its parameters. Subclasses declare ``kind`` and ``defaults``.

    Parameters are validated at construction: unknown names and values of the wrong type raise
    :class:`FeatureDefinitionError` naming the kind and field.
    """

    kind: ClassVar[str]
    defaults: ClassVar[Mapping[str, Any]]
    """Every parameter with its default (``None``: required)."""

    def __init__(self, **params: Any) -> None:
        unknown = sorted(set(params) - set(self.defaults))
        if unknown:
            raise FeatureDefinitionError(
                f"feature kind {self.kind!r}: unknown parameter(s) {unknown}; "
                f"known: {sorted(self.defaults)}"
            )
        merged = {**self.defaults, **params}
        missing = sorted(name for name, value in merged.items() if value is None)
        if missing:
            raise FeatureDefinitionError(f"feature kind {self.kind!r}: {missing} required")
        for name, default in self.defaults.items():
            if default is None:
                continue
            value = merged[name]
            expected = type(default)
            if expected is float and isinstance(value, int) and not isinstance(value, bool):
                merged[name] = float(value)
            elif not isinstance(value, expected) or isinstance(value, bool) != isinstance(
                default, bool
            ):
                raise FeatureDefinitionError(
                    f"feature kind {self.kind!r}: {name} must be {expected.__name__}, got {value!r}"
                )
        self.params: dict[str, Any] = merged
        self.validate()

    def validate(self) -> None:  # noqa: B027 - an optional hook: most kinds check ranges
        """Raise :class:`FeatureDefinitionError` for out-of-range parameters."""

    def _positive(self, *names: str, minimum: int = 1) -> None:
        for name in names:
            if self.params[name] < minimum:
                raise FeatureDefinitionError(
                    f"feature kind {self.kind!r}: {name} must be >= {minimum}, "
                    f"got {self.params[name]}"
                )

    @property
    def outputs(self) -> tuple[str, ...]:
        """Output suffixes: ``("",)`` for a single column named like the feature."""
        return ("",)

    @property
    def references(self) -> tuple[str, ...]:
        """Bar types whose closes this feature needs beside its own instrument's bars."""
        return ()

    @property
    def needs_regime(self) -> bool:
        return False

    @property
    @abstractmethod
    def warm_up(self) -> int:
        """Bars (the current one included) before the first value."""

    @abstractmethod
    def batch(self, bars: BarArrays) -> np.ndarray:
        """Values on every bar: shape (n, len(outputs)), NaN before the warm-up."""

    @abstractmethod
    def stream(self) -> FeatureStream:
        """Fresh per-instrument state for bar-by-bar updates."""

    def version(self) -> str:
        """16 hex digits of SHA-256 over the source of the module defining the kind and of this
        module (the kind's class, its helpers and the shared reductions), the kind, its
        parameters and the NautilusTrader version: any change to the definition gives a new
        version (so does an unrelated edit of those modules: safe, never stale)."""
        payload = json.dumps(
            {
                "kind": self.kind,
                "params": self.params,
                "source": _module_source(type(self).__module__),
                "base": _module_source(__name__),
                "nautilus_trader": nautilus_trader.__version__,
            },
            sort_keys=True,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def _mask_warm_up(self, values: np.ndarray) -> np.ndarray:
        """``values`` (n,) or (n, k) as (n, k) with the warm-up rows set to NaN."""
        out = values.reshape(values.shape[0], -1).astype(np.float64, copy=False)
        out[: max(self.warm_up - 1, 0)] = math.nan
        return out


@functools.cache
def _module_source(module_name: str) -> str:
    return inspect.getsource(sys.modules[module_name])


class RingWindow:
    """The last ``size`` values of a stream, readable as one contiguous array without copying.

    Every value is written twice (at i and i + size), so the window oldest → newest is always
    the slice ``[i, i + size)`` of a buffer of 2 x size.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.count = 0
        self._buffer = np.full(2 * size, math.nan)
        self._next = 0

    def push(self, value: float) -> None:
        self._buffer[self._next] = value
        self._buffer[self._next + self.size] = value
        self._next = (self._next + 1) % self.size
        self.count += 1

    @property
    def full(self) -> bool:
        return self.count >= self.size

    def rows(self) -> np.ndarray:
        """The window as shape (1, size), oldest first: the layout :func:`rolling_rows` feeds to
        the same reduction in batch."""
        return self._buffer[self._next : self._next + self.size].reshape(1, self.size)

    def newest(self, back: int = 0) -> float:
        """The value pushed ``back`` pushes ago (0: the latest)."""
        return float(self._buffer[self._next + self.size - 1 - back])


def rolling_rows(
    columns: tuple[np.ndarray, ...],
    window: int,
    reduce: Callable[..., np.ndarray],
) -> np.ndarray:
    """``reduce`` over every trailing window of ``columns``, in chunks.

    Parameters
    ----------
    columns : tuple of np.ndarray
        Equal-length float64 arrays, shape (n,).
    window : int
        Values per window.
    reduce : callable
        Takes one (m, window) view per column (rows oldest → newest) and returns shape (m,);
        the streaming side calls the same function on (1, window) windows.

    Returns
    -------
    np.ndarray
        Shape (n,): ``reduce`` of the window ending at each position, NaN for the first
        ``window - 1``.
    """
    n = columns[0].shape[0]
    out = np.full(n, math.nan)
    if n < window:
        return out
    views = [sliding_window_view(column, window) for column in columns]
    rows = views[0].shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        for start in range(0, rows, _CHUNK_ROWS):
            stop = min(start + _CHUNK_ROWS, rows)
            out[window - 1 + start : window - 1 + stop] = reduce(
                *(view[start:stop] for view in views)
            )
    return out


def row_mean(rows: np.ndarray) -> np.ndarray:
    """Mean of each row of (m, w), shape (m,) (a sum and a division: cheap on one window)."""
    return rows.sum(axis=1) / rows.shape[1]


def safe_divide(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """``numerator / denominator``, NaN where the denominator is 0, without a warning."""
    out = np.full(np.shape(numerator), math.nan)
    return np.divide(numerator, denominator, out=out, where=denominator != 0)


def quantile_rows(rows: np.ndarray, q: float) -> np.ndarray:
    """The ``q`` quantile of each row of (m, w), linear interpolation between order statistics
    (numpy's default method): ``x[lo] + (x[lo + 1] - x[lo]) * frac`` with ``lo + frac =
    q * (w - 1)``. Partial sorts, so a window costs O(w). NaN rows give NaN."""
    width = rows.shape[1]
    position = q * (width - 1)
    lo = min(math.floor(position), width - 1)
    hi = min(lo + 1, width - 1)
    frac = position - lo
    part = np.partition(rows, (lo, hi) if hi != lo else lo, axis=1)
    below, above = part[:, lo], part[:, hi]
    value = below + (above - below) * frac
    return np.where(np.isnan(rows).any(axis=1), math.nan, value)
