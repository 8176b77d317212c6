"""research.features.matrix: built once per (catalog, feature set), memory-mapped, equal to the
batch features."""

import numpy as np
import pytest
from rl_kit import BAR_TYPES
from rl_kit import FEATURES
from rl_kit import synthetic_catalog

from catalogs.reader import read_bars_frame
from research.features import FeatureSet
from research.features import FeatureSpec
from research.features import compute_batch
from research.features.base import FeatureDefinitionError
from research.features.matrix import build_feature_matrix
from research.features.matrix import open_feature_matrix


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    return synthetic_catalog(tmp_path_factory.mktemp("rl_matrix"), days=2)


def _set() -> FeatureSet:
    specs = [FeatureSpec.create(**f) for f in FEATURES["features"]]
    return FeatureSet(tuple(specs), name="rl_test")


def test_matrix_rows_equal_the_batch_features_and_reopen_memory_mapped(catalog, tmp_path):
    feature_set = _set()
    built = build_feature_matrix(catalog, feature_set, tmp_path, BAR_TYPES)
    assert not built.reused
    assert built.columns == feature_set.columns
    start = 0
    for bar_type in BAR_TYPES:
        bars = read_bars_frame(catalog, bar_type)
        expected = compute_batch(bars, feature_set).to_numpy()
        first, stop = built.ranges[bar_type]
        assert (first, stop) == (start, start + len(bars))
        np.testing.assert_array_equal(built.features[first:stop], expected)
        np.testing.assert_array_equal(built.bars["close"][first:stop], bars["close"].to_numpy())
        start = stop
    again = build_feature_matrix(catalog, feature_set, tmp_path, BAR_TYPES)
    assert again.reused and again.key == built.key
    assert isinstance(again.features, np.memmap) and not again.features.flags.writeable
    opened = open_feature_matrix(built.path)
    np.testing.assert_array_equal(opened.ts, built.ts)
    other = build_feature_matrix(catalog, feature_set, tmp_path, BAR_TYPES[:1])
    assert other.key != built.key  # another selection, another matrix


def test_segments_skip_the_warm_up_and_respect_the_period(catalog, tmp_path):
    matrix = build_feature_matrix(catalog, _set(), tmp_path, BAR_TYPES)
    whole = matrix.segments_between()
    assert len(whole) == 2
    first, last = whole[0]
    assert first == matrix.warm_up - 1 and last == matrix.ranges[BAR_TYPES[0]][1] - 1
    assert np.isfinite(matrix.features[first]).all()
    assert not np.isfinite(matrix.features[first - 1]).all()
    day_one = matrix.segments_between(end="2024-01-03")
    assert all(
        matrix.ts[b] < np.datetime64("2024-01-03", "ns").astype(np.int64) for _, b in day_one
    )
    assert matrix.segments_between(start="2030-01-01") == []


def test_unknown_bar_types_are_named(catalog, tmp_path):
    with pytest.raises(FeatureDefinitionError, match=r"NOPE\.XSYN"):
        build_feature_matrix(catalog, _set(), tmp_path, ["NOPE.XSYN-1-MINUTE-LAST-EXTERNAL"])
