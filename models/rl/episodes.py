"""Episode windows over a bar array, and their sampling weights by regime.

A window ``(start, end)`` (bar indices, ``start < end``) is one episode: the policy decides on
bars ``start .. end−1`` and the last decision is marked at bar ``end``'s close, so an episode
has ``end − start`` steps. Several instruments can share one array (their rows concatenated):
``segments`` lists each instrument's usable range ``(first, last)`` (inclusive; ``first`` past
the feature set's warm-up) and no window crosses a segment.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["fixed_windows", "regime_window_weights", "session_windows"]


def _segments(n_bars: int, segments: Sequence[tuple[int, int]] | None) -> list[tuple[int, int]]:
    chosen = [(0, n_bars - 1)] if segments is None else [(int(a), int(b)) for a, b in segments]
    for first, last in chosen:
        if not (0 <= first <= last < n_bars):
            raise ValueError(f"segment ({first}, {last}) is outside the {n_bars} bars")
    return chosen


def fixed_windows(
    n_bars: int,
    length: int,
    stride: int | None = None,
    segments: Sequence[tuple[int, int]] | None = None,
) -> np.ndarray:
    """Windows of ``length`` steps every ``stride`` bars (default: ``length``, no overlap) in
    each segment (default: all bars); int64, shape (n_windows, 2). Daily bars use these."""
    if length < 1:
        raise ValueError(f"episode length must be at least 1 step, was {length}")
    stride = length if stride is None else stride
    if stride < 1:
        raise ValueError(f"window stride must be at least 1 bar, was {stride}")
    rows = [
        (start, start + length)
        for first, last in _segments(n_bars, segments)
        for start in range(first, last - length + 1, stride)
    ]
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def session_windows(
    ts: np.ndarray,
    timezone: str = "UTC",
    segments: Sequence[tuple[int, int]] | None = None,
    min_steps: int = 1,
) -> np.ndarray:
    """One window per trading day (intraday bars): the bars of each local calendar date of
    ``ts`` (int64 ns, UTC bar closes) in ``timezone``; a day with fewer than ``min_steps`` steps
    is skipped. int64, shape (n_windows, 2)."""
    ts = np.asarray(ts, dtype=np.int64)
    days = pd.DatetimeIndex(ts, tz="UTC").tz_convert(timezone).normalize().asi8
    rows = []
    for first, last in _segments(len(ts), segments):
        day = days[first : last + 1]
        change = np.flatnonzero(np.diff(day)) + 1
        starts = np.concatenate([[0], change]) + first
        ends = np.concatenate([change, [len(day)]]) + first - 1
        rows.extend((s, e) for s, e in zip(starts, ends, strict=True) if e - s >= min_steps)
    return np.asarray(rows, dtype=np.int64).reshape(-1, 2)


def regime_window_weights(probabilities: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Sampling weight of each window for one regime's specialist: the mean of that regime's
    causal probability over the window's decision bars, normalised to sum to 1.

    ``probabilities``: shape (n_bars,), p(regime_t | bars_1..t) from the forward filter (never
    smoothed: the filter's value at t uses bars up to t only). NaN counts as 0. A regime with
    zero weight everywhere gives uniform weights.
    """
    p = np.nan_to_num(np.asarray(probabilities, dtype=np.float64), nan=0.0)
    cumulative = np.concatenate([[0.0], np.cumsum(p)])
    starts, ends = windows[:, 0], windows[:, 1]
    weights = (cumulative[ends] - cumulative[starts]) / np.maximum(ends - starts, 1)
    total = weights.sum()
    if not total > 0.0:
        return np.full(len(windows), 1.0 / max(len(windows), 1))
    return weights / total
