"""Causal bar features for the regime model: every value at bar t uses closes up to t only.

Features are named by short specs, ``"kind"`` or ``"kind:window"``, so they read the same in YAML,
on the command line and in a saved model::

    log_return          ln(c_t / c_{t-1})                                  (per-bar log return)
    log_return:5        ln(c_t / c_{t-5})                                  (5-bar log return)
    realized_vol:20     sqrt(mean(r_{t-19..t}^2))                          (per-bar log-return RMS)
    log_realized_vol:20 ln(realized_vol:20)                                (−inf on flat prices)
    trend:50            ln(c_t / c_{t-50}) / 50                            (mean per-bar drift)
    efficiency:50       ln(c_t / c_{t-50}) / sum(|r_{t-49..t}|)            (signed, in [-1, 1])

where ``r_t = ln(c_t / c_{t-1})``. One implementation, :class:`FeatureExtractor`, serves the
online path (one O(1) ``update`` per bar in the actor) and the batch path (``transform`` runs the
same updates over an array), so the actor and ``grodt regime infer`` compute identical numbers.
"""

import math
from collections import deque
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from grodt.core.errors import ConfigError

FeatureKind = Literal[
    "log_return",
    "realized_vol",
    "log_realized_vol",
    "trend",
    "efficiency",
]

FEATURE_KINDS: tuple[str, ...] = (
    "log_return",
    "realized_vol",
    "log_realized_vol",
    "trend",
    "efficiency",
)
DRIFT_KINDS: frozenset[str] = frozenset({"log_return", "trend", "efficiency"})
"""Kinds whose sign says up or down: the regime labels are ranked on them."""
VOLATILITY_KINDS: frozenset[str] = frozenset({"realized_vol", "log_realized_vol"})

_DEFAULT_WINDOWS: dict[str, int | None] = {
    "log_return": 1,
    "realized_vol": None,
    "log_realized_vol": None,
    "trend": None,
    "efficiency": None,
}
_MAX_WINDOW = 100_000
_RESYNC_EVERY = 4096  # re-sum rolling windows exactly this often (bounds float drift)

DEFAULT_FEATURES: tuple[str, ...] = ("log_return", "realized_vol:20", "trend:50")


@dataclass(frozen=True)
class FeatureSpec:
    """One feature: its kind and window (in bars)."""

    kind: str
    window: int

    @classmethod
    def parse(cls, text: str) -> "FeatureSpec":
        """Parse ``"kind"`` or ``"kind:window"``; raises ValueError naming what is wrong."""
        kind, sep, window_text = str(text).strip().partition(":")
        if kind not in FEATURE_KINDS:
            raise ValueError(f"unknown feature kind {kind!r} (known: {', '.join(FEATURE_KINDS)})")
        if sep:
            try:
                window = int(window_text)
            except ValueError:
                raise ValueError(f"window of {text!r} must be an integer") from None
        else:
            default = _DEFAULT_WINDOWS[kind]
            if default is None:
                raise ValueError(f"feature {kind!r} needs a window, e.g. '{kind}:20'")
            window = default
        if not 1 <= window <= _MAX_WINDOW:
            raise ValueError(f"window of {text!r} must be in [1, {_MAX_WINDOW}]")
        if kind in ("realized_vol", "log_realized_vol", "efficiency") and window < 2:
            raise ValueError(f"window of {text!r} must be at least 2")
        return cls(kind=kind, window=window)

    def __str__(self) -> str:
        if self.kind == "log_return" and self.window == 1:
            return "log_return"
        return f"{self.kind}:{self.window}"

    @property
    def lookback(self) -> int:
        """Closes needed before the first value (the bar itself included)."""
        return self.window + 1


def parse_features(specs: Iterable[str], field: str = "features") -> tuple[FeatureSpec, ...]:
    """Parse feature specs; raises :class:`ConfigError` naming ``field[index]``.

    At least one drift feature (``log_return``, ``trend`` or ``efficiency``) is required: the
    regime labels are assigned by ranking the states' drift.
    """
    parsed: list[FeatureSpec] = []
    items = [specs] if isinstance(specs, str) else list(specs)
    if not items:
        raise ConfigError(f"{field}: at least one feature is required")
    for index, text in enumerate(items):
        try:
            spec = FeatureSpec.parse(text)
        except ValueError as e:
            raise ConfigError(f"{field}[{index}]: {e}") from None
        if spec in parsed:
            raise ConfigError(f"{field}[{index}]: duplicate feature {str(spec)!r}")
        parsed.append(spec)
    if not any(spec.kind in DRIFT_KINDS for spec in parsed):
        raise ConfigError(
            f"{field}: needs a drift feature (log_return, trend or efficiency) to tell bull from "
            f"bear; got {[str(s) for s in parsed]}",
        )
    return tuple(parsed)


class FeatureExtractor:
    """Online, causal feature computation: one O(1) :meth:`update` per bar close.

    Parameters
    ----------
    specs : Sequence[FeatureSpec]
        The features, in output column order.

    Notes
    -----
    A close that is not a positive finite number is not admitted: :meth:`update` returns
    ``None`` and the state is unchanged (the next return spans the gap). Values can still be
    non-finite (``log_realized_vol`` on flat prices); callers check ``math.isfinite``.
    """

    def __init__(self, specs: Sequence[FeatureSpec]) -> None:
        if not specs:
            raise ValueError("FeatureExtractor needs at least one feature")
        self.specs: tuple[FeatureSpec, ...] = tuple(specs)
        self.n_features: int = len(self.specs)
        self.warmup_bars: int = max(spec.lookback for spec in self.specs)
        """Valid closes needed before the first feature vector."""
        self._return_window = max(
            (s.window for s in self.specs if s.kind not in ("log_return", "trend")),
            default=0,
        )
        self._sq_windows: list[int] = sorted(
            {s.window for s in self.specs if s.kind in ("realized_vol", "log_realized_vol")},
        )
        self._abs_windows: list[int] = sorted(
            {s.window for s in self.specs if s.kind == "efficiency"},
        )
        # Per feature: (kind code, window, index of its rolling sum); the per-bar loop reads
        # these plain tuples instead of dispatching on strings.
        codes = {kind: i for i, kind in enumerate(FEATURE_KINDS)}
        self._plan: list[tuple[int, int, int]] = [
            (
                codes[s.kind],
                s.window,
                self._abs_windows.index(s.window)
                if s.kind == "efficiency"
                else self._sq_windows.index(s.window)
                if s.kind in VOLATILITY_KINDS
                else -1,
            )
            for s in self.specs
        ]
        self.reset()

    def reset(self) -> None:
        """Forget all history."""
        self._log_closes: deque[float] = deque(maxlen=self.warmup_bars)
        self._returns: deque[float] = deque(maxlen=max(self._return_window, 1))
        self._sq_sums: list[float] = [0.0] * len(self._sq_windows)
        self._abs_sums: list[float] = [0.0] * len(self._abs_windows)
        self._since_resync = 0
        self.count = 0
        """Valid closes seen."""

    @property
    def ready(self) -> bool:
        """Whether the next valid close yields a feature vector."""
        return self.count + 1 >= self.warmup_bars

    def update(self, close: float) -> tuple[float, ...] | None:
        """Admit one bar close.

        Returns
        -------
        tuple[float, ...] | None
            The feature vector (length ``n_features``) at this bar, or ``None`` while warming up
            or when ``close`` is not a positive finite number.
        """
        if not (close > 0.0 and math.isfinite(close)):
            return None
        log_close = math.log(close)
        closes = self._log_closes
        if closes and self._return_window:
            r = log_close - closes[-1]
            returns = self._returns
            n = len(returns)
            sq, ab = self._sq_sums, self._abs_sums
            for i, w in enumerate(self._sq_windows):
                sq[i] += r * r
                if n >= w:
                    old = returns[-w]
                    sq[i] -= old * old
            for i, w in enumerate(self._abs_windows):
                ab[i] += abs(r)
                if n >= w:
                    ab[i] -= abs(returns[-w])
            returns.append(r)
            self._since_resync += 1
            if n == returns.maxlen and self._since_resync >= _RESYNC_EVERY:
                self._resync()
        closes.append(log_close)
        self.count += 1
        if self.count < self.warmup_bars:
            return None
        values: list[float] = []
        for code, w, i in self._plan:
            if code == 0:  # log_return
                values.append(log_close - closes[-1 - w])
            elif code == 3:  # trend
                values.append((log_close - closes[-1 - w]) / w)
            elif code == 1:  # realized_vol
                mean_square = self._sq_sums[i] / w
                values.append(math.sqrt(mean_square) if mean_square > 0.0 else 0.0)
            elif code == 2:  # log_realized_vol
                mean_square = self._sq_sums[i] / w
                values.append(0.5 * math.log(mean_square) if mean_square > 0.0 else -math.inf)
            else:  # efficiency
                path = self._abs_sums[i]
                values.append((log_close - closes[-1 - w]) / path if path > 0.0 else 0.0)
        return tuple(values)

    def _resync(self) -> None:
        values = list(self._returns)
        for i, w in enumerate(self._sq_windows):
            self._sq_sums[i] = math.fsum(v * v for v in values[-w:])
        for i, w in enumerate(self._abs_windows):
            self._abs_sums[i] = math.fsum(abs(v) for v in values[-w:])
        self._since_resync = 0

    def transform(self, closes: Iterable[float]) -> np.ndarray:
        """Features of a whole close series, computed with the online updates on a fresh state.

        Parameters
        ----------
        closes : Iterable[float]
            Bar closes in time order, length N.

        Returns
        -------
        np.ndarray
            Shape (N, n_features); rows are NaN during warm-up and at invalid closes.
        """
        fresh = FeatureExtractor(self.specs)
        values = [float(c) for c in closes]
        out = np.full((len(values), self.n_features), np.nan)
        for i, close in enumerate(values):
            row = fresh.update(close)
            if row is not None:
                out[i] = row
        return out
