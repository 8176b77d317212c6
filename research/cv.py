"""Cross-validation that respects label overlap (AFML ch. 7 and 12), scikit-learn splitter API.

Every splitter here has ``split(X, y=None, groups=None)`` yielding ``(train, test)`` arrays of
row positions and ``get_n_splits(X=None, y=None, groups=None)``, so it can be passed as ``cv=`` to
``cross_val_score``, ``GridSearchCV`` and friends (hence the upper-case ``X``, scikit-learn's
name).

Overlap: the label of row i spans the closed interval ``[t0_i, t1_i]`` where ``t0_i`` is the row's
index entry and ``t1_i = t1.iloc[i]`` its end (:func:`research.labels.get_events`). A training row
is *purged* when its interval intersects the interval of any test row. *Embargo*: after each
contiguous block of test rows, the ``embargo`` rows that follow the purged zone (the first rows
starting after the block's last label end) are dropped from training too, as in AFML snippets
7.2–7.3; with labels that end where they start (``t1 == t0``) that is the ``embargo`` rows right
after the block.

- :class:`PurgedKFold` — k contiguous test blocks, purged and embargoed training sets;
- :class:`CombinatorialPurgedKFold` — every choice of ``n_test_folds`` of ``n_folds`` groups as
  the test set, with the backtest paths they recombine into;
- :class:`WalkForwardSplit` — train then test windows by row count, sliding or expanding;
- :func:`time_walk_forward` — the same by calendar durations ("3y", "6m", "30d").

skfolio's ``CombinatorialPurgedCV`` and ``WalkForward`` purge a fixed number of rows
(``purged_size``); these purge by each label's actual end time, so a label set with horizons of
varying length loses only the rows that really overlap (docs/research.md).
"""

import math
import re
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "CombinatorialPurgedKFold",
    "PurgedKFold",
    "WalkForwardSplit",
    "parse_duration",
    "time_walk_forward",
]

Split = tuple[np.ndarray, np.ndarray]


def _check_t1(t1: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """``(t0, t1)`` as int64 nanoseconds after checking that ``t1`` is a Series on a sorted
    DatetimeIndex with an end at or after every start."""
    if not isinstance(t1, pd.Series):
        raise ValueError(f"t1 must be a pandas Series of label end times, got {type(t1).__name__}")
    if not isinstance(t1.index, pd.DatetimeIndex):
        raise ValueError("t1 must be indexed by the label start times (a DatetimeIndex)")
    if not t1.index.is_monotonic_increasing:
        raise ValueError("t1's index (label start times) must be sorted ascending")
    ends = pd.DatetimeIndex(t1.to_numpy())
    if ends.isna().any():
        position = int(np.argmax(ends.isna()))
        raise ValueError(
            f"t1 has no end time at row {position} ({t1.index[position]}); drop or close open "
            "labels before cross-validating"
        )
    if (ends.tz is None) != (t1.index.tz is None):
        raise ValueError("t1's values and index must both be timezone-aware or both naive")
    # asi8 of an aware index is UTC nanoseconds, so mixed zones still compare correctly.
    starts_ns = t1.index.asi8
    ends_ns = ends.asi8
    before = ends_ns < starts_ns
    if before.any():
        position = int(np.argmax(before))
        raise ValueError(
            f"t1 at row {position} ({t1.index[position]}) ends at {ends[position]}, before it "
            "starts"
        )
    return starts_ns, ends_ns


def _n_samples(data: Any, t1: pd.Series) -> int:
    """Rows of ``data``; it must be as long as ``t1`` and, when it has an index, share it."""
    n_samples = len(data)
    if n_samples != len(t1):
        raise ValueError(f"X has {n_samples} rows but t1 has {len(t1)}")
    index = getattr(data, "index", None)
    if isinstance(index, pd.Index) and not index.equals(t1.index):
        raise ValueError("X and t1 must have the same index (row i of X is the label t1.iloc[i])")
    return n_samples


def _purged_train(
    test_blocks: list[np.ndarray], starts: np.ndarray, ends: np.ndarray, embargo: int
) -> np.ndarray:
    """Positions of the rows not in any test block, not overlapping any test label and not in the
    embargo after any block.

    Exact for any set of test rows: sorted by start, a training interval [a, b] meets a test
    interval iff among the test rows starting at or before b the latest end is at or after a.
    """
    n_samples = len(starts)
    keep = np.ones(n_samples, dtype=bool)
    test = np.concatenate(test_blocks)
    keep[test] = False
    test_starts = starts[test]
    order = np.argsort(test_starts, kind="stable")
    sorted_starts = test_starts[order]
    running_end = np.maximum.accumulate(ends[test][order])
    reach = np.searchsorted(sorted_starts, ends, side="right")
    overlaps = (reach > 0) & (running_end[np.maximum(reach, 1) - 1] >= starts)
    keep &= ~overlaps
    if embargo:
        for block in test_blocks:
            block_end = ends[block].max()
            first_after = int(np.searchsorted(starts, block_end, side="right"))
            keep[first_after : first_after + embargo] = False
    return np.flatnonzero(keep)


def _check_embargo(embargo: int) -> int:
    if isinstance(embargo, bool) or not isinstance(embargo, int | np.integer) or embargo < 0:
        raise ValueError(f"embargo is a number of rows (an int >= 0), got {embargo!r}")
    return int(embargo)


class PurgedKFold:
    """K-fold over contiguous blocks (no shuffling) with purging and embargo (AFML snippet 7.3).

    Test block i is the i-th of ``n_splits`` near-equal contiguous chunks of rows
    (``np.array_split``); every row is in exactly one test block. Training rows are all others,
    less the purged and embargoed ones (module docstring).

    Parameters
    ----------
    n_splits : int
        Number of folds, at least 2.
    t1 : pd.Series
        Label end time of each row, indexed by its start time (sorted), aligned with ``X``.
    embargo : int
        Rows dropped from training after each test block, beyond the purge.
    """

    def __init__(self, n_splits: int, t1: pd.Series, embargo: int = 0) -> None:
        if n_splits < 2:
            raise ValueError(f"n_splits must be at least 2, got {n_splits}")
        self.n_splits = n_splits
        self.t1 = t1
        self.embargo = _check_embargo(embargo)
        self._starts, self._ends = _check_t1(t1)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:  # noqa: N803
        """The number of folds."""
        return self.n_splits

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:  # noqa: N803
        """Yield ``(train, test)`` row positions per fold, test blocks in time order."""
        n_samples = _n_samples(X, self.t1)
        if n_samples < self.n_splits:
            raise ValueError(f"{n_samples} rows cannot make {self.n_splits} folds")
        for test in np.array_split(np.arange(n_samples), self.n_splits):
            yield _purged_train([test], self._starts, self._ends, self.embargo), test


class CombinatorialPurgedKFold:
    """Combinatorial purged cross-validation, CPCV (AFML ch. 12).

    The rows are cut into ``n_folds`` contiguous groups (``np.array_split``). Each split tests on
    one choice of ``n_test_folds`` groups (``itertools.combinations`` order) and trains on the
    rest, purged and embargoed around every test group. There are ``C(N, k)`` splits; each group
    is tested in ``C(N-1, k-1)`` of them, which recombine into ``n_paths = k/N · C(N, k)``
    backtest paths, each covering every group exactly once.

    Attributes
    ----------
    test_groups : list[tuple[int, ...]]
        The test groups of each split.
    path_splits : np.ndarray
        Shape (n_paths, n_folds): ``path_splits[p, g]`` is the split whose test predictions on
        group g form path p's segment g (the j-th path takes the j-th split, in order, that
        tests group g).
    """

    def __init__(self, n_folds: int, n_test_folds: int, t1: pd.Series, embargo: int = 0) -> None:
        if n_folds < 2:
            raise ValueError(f"n_folds must be at least 2, got {n_folds}")
        if not 1 <= n_test_folds < n_folds:
            raise ValueError(
                f"n_test_folds must be between 1 and n_folds - 1 = {n_folds - 1}, "
                f"got {n_test_folds}"
            )
        self.n_folds = n_folds
        self.n_test_folds = n_test_folds
        self.t1 = t1
        self.embargo = _check_embargo(embargo)
        self._starts, self._ends = _check_t1(t1)
        self.test_groups = list(combinations(range(n_folds), n_test_folds))
        self.path_splits = np.empty((self.n_paths, n_folds), dtype=int)
        for group in range(n_folds):
            testing = [s for s, chosen in enumerate(self.test_groups) if group in chosen]
            self.path_splits[:, group] = testing

    @property
    def n_paths(self) -> int:
        """Backtest paths: ``C(N-1, k-1) = k/N · C(N, k)``."""
        return math.comb(self.n_folds - 1, self.n_test_folds - 1)

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:  # noqa: N803
        """The number of splits, ``C(n_folds, n_test_folds)``."""
        return math.comb(self.n_folds, self.n_test_folds)

    def group_positions(self, n_samples: int) -> list[np.ndarray]:
        """Row positions of each group for ``n_samples`` rows."""
        if n_samples < self.n_folds:
            raise ValueError(f"{n_samples} rows cannot make {self.n_folds} groups")
        return np.array_split(np.arange(n_samples), self.n_folds)

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:  # noqa: N803
        """Yield ``(train, test)`` row positions per split; ``test`` is its groups' rows in time
        order."""
        n_samples = _n_samples(X, self.t1)
        positions = self.group_positions(n_samples)
        for chosen in self.test_groups:
            blocks = [positions[group] for group in chosen]
            train = _purged_train(blocks, self._starts, self._ends, self.embargo)
            yield train, np.concatenate(blocks)

    def path_segments(self, X: Any) -> list[list[tuple[int, np.ndarray]]]:  # noqa: N803
        """For each path, its segments in time order: ``(split index, row positions of the
        group)``. Stitching each segment's out-of-sample predictions from that split gives the
        path's backtest over every row."""
        positions = self.group_positions(_n_samples(X, self.t1))
        return [
            [
                (int(self.path_splits[path, group]), positions[group])
                for group in range(self.n_folds)
            ]
            for path in range(self.n_paths)
        ]


class WalkForwardSplit:
    """Walk-forward by row count: train on ``train_size`` rows, test on the next ``test_size``.

    Fold j tests rows ``[train_size + j·step, train_size + j·step + test_size)``; its training
    window is the ``train_size`` rows before (sliding) or every row before (``expanding``). Only
    whole test windows are yielded. With ``t1`` (label end times, as for :class:`PurgedKFold`),
    training rows whose label reaches into the test window are purged, so the training window
    is shortened rather than shifted (skfolio's ``WalkForward(purged_size=h)`` shifts it: it
    matches ``train_size + h`` here with labels h rows long).

    Parameters
    ----------
    train_size, test_size : int
        Rows per window.
    step : int | None
        Rows between consecutive test windows; None: ``test_size`` (test windows tile).
    expanding : bool
        Train from the first row in every fold.
    t1 : pd.Series | None
        Label end times for purging; None: no purge.
    """

    def __init__(
        self,
        train_size: int,
        test_size: int,
        step: int | None = None,
        expanding: bool = False,
        *,
        t1: pd.Series | None = None,
    ) -> None:
        if train_size < 1 or test_size < 1:
            raise ValueError(
                f"train_size and test_size must be positive, got {train_size}, {test_size}"
            )
        if step is not None and step < 1:
            raise ValueError(f"step must be positive, got {step}")
        self.train_size = train_size
        self.test_size = test_size
        self.step = step if step is not None else test_size
        self.expanding = expanding
        self.t1 = t1
        self._spans = _check_t1(t1) if t1 is not None else None

    def get_n_splits(self, X: Any = None, y: Any = None, groups: Any = None) -> int:  # noqa: N803
        """The number of folds for ``X`` (it needs ``X``: the count depends on its length)."""
        if X is None:
            raise ValueError("WalkForwardSplit.get_n_splits needs X: folds depend on its length")
        return sum(1 for _ in self._windows(len(X)))

    def _windows(self, n_samples: int) -> Iterator[tuple[int, int, int]]:
        """``(train_start, test_start, test_end)`` of each whole fold."""
        test_start = self.train_size
        while test_start + self.test_size <= n_samples:
            train_start = 0 if self.expanding else test_start - self.train_size
            yield train_start, test_start, test_start + self.test_size
            test_start += self.step

    def split(self, X: Any, y: Any = None, groups: Any = None) -> Iterator[Split]:  # noqa: N803
        """Yield ``(train, test)`` row positions per fold, in time order."""
        n_samples = _n_samples(X, self.t1) if self.t1 is not None else len(X)
        for train_start, test_start, test_end in self._windows(n_samples):
            test = np.arange(test_start, test_end)
            train = np.arange(train_start, test_start)
            if self._spans is not None:
                starts, ends = self._spans
                # Training rows precede the test window: purge those whose label reaches it.
                train = train[ends[train] < starts[test_start]]
            yield train, test


_DURATION = re.compile(r"^\s*(\d+)\s*(y|m|w|d|h|min)\s*$")


def parse_duration(text: str) -> pd.DateOffset:
    """A calendar duration: an integer and a unit, ``y`` years, ``m`` months, ``w`` weeks,
    ``d`` days, ``h`` hours, ``min`` minutes ("3y", "6m", "30d", "15min")."""
    match = _DURATION.match(str(text))
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"duration {text!r} is not a positive <integer><unit> with unit y, m (months), w, d, "
            "h or min (e.g. '3y', '6m', '30d')"
        )
    amount, unit = int(match.group(1)), match.group(2)
    keyword = {
        "y": "years",
        "m": "months",
        "w": "weeks",
        "d": "days",
        "h": "hours",
        "min": "minutes",
    }[unit]
    return pd.DateOffset(**{keyword: amount})


def time_walk_forward(
    index: pd.DatetimeIndex,
    train: str,
    test: str,
    step: str | None = None,
    expanding: bool = False,
) -> list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]]:
    """Walk-forward windows by calendar time over the timestamps of ``index``.

    Windows are half-open: ``[train_start, train_end)`` then ``[test_start, test_end)`` with
    ``test_start = train_end``. The first training window starts at ``index[0]``; each fold moves
    the test window by ``step`` (default ``test``); the training window slides with it, or keeps
    starting at ``index[0]`` when ``expanding``. A fold is kept while its test window ends at or
    before the last timestamp (no partial last window) and both of its windows hold at least
    one timestamp of ``index``.

    Parameters
    ----------
    index : pd.DatetimeIndex
        Sorted bar timestamps.
    train, test, step : str
        Durations, :func:`parse_duration` ("3y", "6m", "30d").
    expanding : bool
        Expanding training window.

    Returns
    -------
    list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]]
        ``(train_start, train_end, test_start, test_end)`` per fold, in time order.
    """
    index = pd.DatetimeIndex(index)
    if len(index) == 0:
        raise ValueError("time_walk_forward needs a non-empty index")
    if not index.is_monotonic_increasing:
        raise ValueError("time_walk_forward needs a sorted index")
    train_offset = parse_duration(train)
    test_offset = parse_duration(test)
    step_offset = parse_duration(step) if step is not None else test_offset
    first, last = index[0], index[-1]
    folds: list[tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]] = []
    fold = 0
    while True:
        # Offsets from the first timestamp (not chained) so month ends do not drift.
        test_start = first + train_offset + step_offset * fold
        test_end = test_start + test_offset
        if test_end > last:
            return folds
        train_start = first if expanding else first + step_offset * fold
        counts = index.searchsorted([train_start, test_start, test_end])
        if counts[1] > counts[0] and counts[2] > counts[1]:
            folds.append((train_start, test_start, test_start, test_end))
        fold += 1
