"""research.cv: purging and embargo by label end times, CPCV paths, walk-forward windows; checked
by hand, against a brute-force definition, against skfolio where both should agree, and through
scikit-learn's own cross_val_score."""

import math
from itertools import pairwise

import numpy as np
import pandas as pd
import pytest
from skfolio.model_selection import CombinatorialPurgedCV
from skfolio.model_selection import WalkForward
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score

from research.cv import CombinatorialPurgedKFold
from research.cv import PurgedKFold
from research.cv import WalkForwardSplit
from research.cv import parse_duration
from research.cv import time_walk_forward


def bars(n: int) -> pd.DatetimeIndex:
    return pd.date_range("2024-01-01", periods=n, freq="D", tz="UTC")


def labels_spanning(n: int, length: int) -> pd.Series:
    """Row i's label ends ``length`` bars later (at the last bar near the end)."""
    index = bars(n)
    return pd.Series(index[np.minimum(np.arange(n) + length, n - 1)], index=index)


def brute_force_train(t1: pd.Series, test: np.ndarray, embargo: int) -> np.ndarray:
    """The definition, O(n²): not in test, no closed-interval overlap with any test label, not
    among the ``embargo`` rows after the first row starting past each test block's last end."""
    starts, ends = t1.index, pd.DatetimeIndex(t1.to_numpy())
    keep = []
    blocks = np.split(test, np.flatnonzero(np.diff(test) > 1) + 1)
    embargoed: set[int] = set()
    for block in blocks:
        first_after = next((i for i in range(len(t1)) if starts[i] > ends[block].max()), len(t1))
        embargoed.update(range(first_after, first_after + embargo))
    for i in range(len(t1)):
        overlaps = any(starts[i] <= ends[j] and starts[j] <= ends[i] for j in test)
        if i not in set(test) and not overlaps and i not in embargoed:
            keep.append(i)
    return np.array(keep, dtype=int)


def test_purging_by_hand():
    # Labels span 3 bars ([d_i, d_i+2]). Fold 2 of 5 tests rows 4-5, i.e. [d4, d7]; rows 2-3
    # end inside it and rows 6-7 start inside it: purged. Train = 0, 1, 8, 9.
    t1 = labels_spanning(10, 2)
    folds = list(PurgedKFold(5, t1).split(np.zeros((10, 1))))
    train, test = folds[2]
    assert list(test) == [4, 5]
    assert list(train) == [0, 1, 8, 9]
    # The last fold (rows 8-9): rows 6-7 reach into it.
    assert list(folds[4][0]) == [0, 1, 2, 3, 4, 5]


def test_embargo_drops_rows_after_each_test_block():
    # Labels that end where they start: no purge, the embargo alone drops rows 6-7.
    t1 = labels_spanning(10, 0)
    train, test = list(PurgedKFold(5, t1, embargo=2).split(np.zeros(10)))[2]
    assert list(test) == [4, 5]
    assert list(train) == [0, 1, 2, 3, 8, 9]
    # With 3-bar labels the embargo counts after the purged zone: rows 2-7 purged, 8 embargoed.
    train, _ = list(PurgedKFold(5, labels_spanning(10, 2), embargo=1).split(np.zeros(10)))[2]
    assert list(train) == [0, 1, 9]


def test_purge_matches_the_definition_on_random_labels():
    rng = np.random.default_rng(1)
    n = 60
    index = bars(n)
    t1 = pd.Series(index[np.minimum(np.arange(n) + rng.integers(0, 7, n), n - 1)], index=index)
    for train, test in PurgedKFold(6, t1, embargo=2).split(np.zeros(n)):
        np.testing.assert_array_equal(train, brute_force_train(t1, test, 2))
    cpcv = CombinatorialPurgedKFold(5, 2, t1, embargo=1)
    for train, test in cpcv.split(np.zeros(n)):
        np.testing.assert_array_equal(train, brute_force_train(t1, test, 1))


def test_every_row_is_tested_exactly_once():
    t1 = labels_spanning(103, 3)
    tests = [test for _, test in PurgedKFold(5, t1).split(np.zeros(103))]
    np.testing.assert_array_equal(np.sort(np.concatenate(tests)), np.arange(103))
    assert PurgedKFold(5, t1).get_n_splits() == 5 == len(tests)


@pytest.mark.parametrize(("n_folds", "n_test_folds"), [(6, 2), (5, 1), (7, 3), (10, 8)])
def test_cpcv_split_and_path_counts(n_folds, n_test_folds):
    n = 70
    cpcv = CombinatorialPurgedKFold(n_folds, n_test_folds, labels_spanning(n, 1))
    n_splits = math.comb(n_folds, n_test_folds)
    assert cpcv.get_n_splits() == n_splits == len(list(cpcv.split(np.zeros(n))))
    assert cpcv.n_paths * n_folds == n_test_folds * n_splits
    assert cpcv.path_splits.shape == (cpcv.n_paths, n_folds)


def test_each_cpcv_path_covers_every_group_once():
    n = 60
    cpcv = CombinatorialPurgedKFold(6, 2, labels_spanning(n, 2), embargo=1)
    splits = list(cpcv.split(np.zeros(n)))
    used: list[tuple[int, int]] = []
    for segments in cpcv.path_segments(np.zeros(n)):
        rows = np.concatenate([positions for _, positions in segments])
        np.testing.assert_array_equal(rows, np.arange(n))  # every row once, in time order
        for group, (split, positions) in enumerate(segments):
            assert group in cpcv.test_groups[split]
            assert np.isin(positions, splits[split][1]).all()
            assert not np.isin(positions, splits[split][0]).any()
            used.append((split, group))
    # Every (split, tested group) feeds exactly one path.
    expected = sorted((s, g) for s, groups in enumerate(cpcv.test_groups) for g in groups)
    assert sorted(used) == expected


def test_cpcv_agrees_with_skfolio_for_fixed_length_labels():
    # Labels exactly h bars long are what skfolio's fixed purged_size assumes: with h = 2 and
    # an embargo of 1 both purge 2 rows before each test block and 2 + 1 after it.
    n, h = 60, 2
    ours = CombinatorialPurgedKFold(6, 2, labels_spanning(n, h), embargo=1)
    theirs = CombinatorialPurgedCV(n_folds=6, n_test_folds=2, purged_size=h, embargo_size=1)
    pairs = list(zip(ours.split(np.zeros(n)), theirs.split(np.zeros((n, 1))), strict=True))
    assert len(pairs) == 15
    for (train, test), (their_train, their_tests) in pairs:
        np.testing.assert_array_equal(train, their_train)
        np.testing.assert_array_equal(test, np.concatenate(their_tests))


def test_cpcv_purges_less_than_a_fixed_count_when_labels_vary():
    # One long label among one-bar ones: a fixed purge wide enough for it would cost every
    # block that many rows; by end times only the rows that really overlap go.
    n = 60
    index = bars(n)
    t1 = pd.Series(index, index=index)
    t1.iloc[25] = index[33]  # row 25's label reaches 8 bars into the next group
    cpcv = CombinatorialPurgedKFold(6, 1, t1)
    train, test = next(
        (tr, te) for tr, te in cpcv.split(np.zeros(n)) if te[0] == 30
    )  # group 3 = rows 30-39
    assert set(range(60)) - set(train) - set(test) == {25}


def test_walk_forward_by_count_agrees_with_skfolio():
    n = 50
    rows = np.zeros((n, 1))
    for expanding in (False, True):
        ours = list(WalkForwardSplit(10, 5, expanding=expanding).split(rows))
        theirs = list(WalkForward(test_size=5, train_size=10, expand_train=expanding).split(rows))
        assert len(ours) == len(theirs) == 8
        for (train, test), (their_train, their_test) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(train, their_train)
            np.testing.assert_array_equal(test, their_test)
        # Purging 2-bar labels shortens our window; skfolio shifts its window instead.
        t1 = labels_spanning(n, 2)
        ours = list(WalkForwardSplit(12, 5, expanding=expanding, t1=t1).split(rows))
        skfolio_purged = WalkForward(
            test_size=5, train_size=10, purged_size=2, expand_train=expanding
        )
        theirs = list(skfolio_purged.split(rows))
        assert len(ours) == len(theirs)
        for (train, test), (their_train, their_test) in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(train, their_train)
            np.testing.assert_array_equal(test, their_test)


def test_walk_forward_windows_never_overlap_their_training():
    rows = np.zeros(100)
    for splitter in (WalkForwardSplit(30, 10, step=7), WalkForwardSplit(30, 10, expanding=True)):
        folds = list(splitter.split(rows))
        assert len(folds) == splitter.get_n_splits(rows)
        for train, test in folds:
            assert train.max() < test.min()
            assert len(test) == 10
        starts = [train[0] for train, _ in folds]
        # Test windows start at 30 + 7k (sliding) or 30 + 10k (expanding) and must end by 100.
        if splitter.expanding:
            assert starts == [0] * 7
        else:
            assert starts == [7 * k for k in range(9)]


def test_time_walk_forward_windows():
    index = pd.date_range("2000-01-01", "2003-12-31", freq="D", tz="UTC")
    folds = time_walk_forward(index, train="1y", test="6m")
    ts = pd.Timestamp
    test_starts = [
        ts(day, tz="UTC")
        for day in ("2001-01-01", "2001-07-01", "2002-01-01", "2002-07-01", "2003-01-01")
    ]
    assert [fold[2] for fold in folds] == test_starts
    for train_start, train_end, test_start, test_end in folds:
        assert train_end == test_start == train_start + pd.DateOffset(years=1)
        assert test_end == test_start + pd.DateOffset(months=6)
    for (_, _, _, previous_end), (_, _, next_start, _) in pairwise(folds):
        assert previous_end == next_start  # test windows tile the span
    expanding = time_walk_forward(index, train="1y", test="6m", step="3m", expanding=True)
    assert {fold[0] for fold in expanding} == {index[0]}
    assert [fold[2] for fold in expanding][:3] == [
        ts("2001-01-01", tz="UTC"),
        ts("2001-04-01", tz="UTC"),
        ts("2001-07-01", tz="UTC"),
    ]
    assert all(fold[3] <= index[-1] for fold in expanding)


def test_time_walk_forward_skips_windows_without_bars():
    # A half-year hole in 2001: the fold testing it and the fold training on it are left out.
    index = pd.date_range("2000-01-01", "2000-12-31", freq="D").append(
        pd.date_range("2001-07-01", "2002-12-31", freq="D")
    )
    folds = time_walk_forward(index, train="6m", test="6m")
    assert [fold[2] for fold in folds] == [pd.Timestamp("2000-07-01"), pd.Timestamp("2002-01-01")]


def test_bad_inputs_are_named():
    for bad in ("3x", "0y", "3 years"):
        with pytest.raises(ValueError, match=f"duration '{bad}' is not a positive"):
            parse_duration(bad)
    assert parse_duration("30d") == pd.DateOffset(days=30)
    t1 = labels_spanning(10, 1)
    with pytest.raises(ValueError, match="X has 9 rows but t1 has 10"):
        list(PurgedKFold(2, t1).split(np.zeros(9)))
    with pytest.raises(ValueError, match="same index"):
        list(PurgedKFold(2, t1).split(pd.DataFrame({"x": range(10)})))
    backwards = t1.copy()
    backwards.iloc[4] = t1.index[2]
    with pytest.raises(ValueError, match="row 4"):
        PurgedKFold(2, backwards)
    with pytest.raises(ValueError, match="embargo"):
        PurgedKFold(2, t1, embargo=0.01)


def test_splitters_drive_scikit_learn():
    rng = np.random.default_rng(0)
    n = 120
    index = bars(n)
    features = pd.DataFrame({"signal": rng.normal(size=n)}, index=index)
    y = (features["signal"] + rng.normal(scale=0.5, size=n) > 0).astype(int)
    t1 = labels_spanning(n, 3)
    model = LogisticRegression()
    purged = cross_val_score(model, features, y, cv=PurgedKFold(4, t1, embargo=2))
    combinatorial = cross_val_score(model, features, y, cv=CombinatorialPurgedKFold(5, 2, t1))
    walk_forward = cross_val_score(model, features, y, cv=WalkForwardSplit(40, 20, t1=t1))
    assert (len(purged), len(combinatorial), len(walk_forward)) == (4, 10, 4)
    # The signal is real: out-of-sample accuracy well above a coin flip in every fold.
    assert min(purged.min(), combinatorial.min(), walk_forward.min()) > 0.6
