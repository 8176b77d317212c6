"""ObservationSpec: the observation contract shared by the env and the strategy."""

import math

import numpy as np
import pytest

from models.rl.observation import ObservationSpec


def test_build_normalises_clips_and_appends_the_position():
    spec = ObservationSpec(("a", "b", "c"), mean=(1.0, 0.0, 10.0), scale=(2.0, 1.0, 0.5), clip=5.0)
    obs = spec.build([3.0, math.nan, 100.0], position=-0.25)
    assert obs.dtype == np.float32
    assert obs.shape == (spec.n_obs,) == (4,)
    # (3-1)/2 = 1; NaN -> 0 (the training mean); (100-10)/0.5 = 180 clipped to 5
    np.testing.assert_array_equal(obs, np.array([1.0, 0.0, 5.0, -0.25], dtype=np.float32))


def test_without_position_and_without_normalisation_the_row_passes_through():
    spec = ObservationSpec(("a", "b"), include_position=False)
    np.testing.assert_array_equal(spec.build([0.5, -2.0], position=1.0), [0.5, -2.0])
    assert spec.n_obs == 2


def test_fit_uses_finite_training_rows_only():
    rows = np.array([[1.0, 5.0, math.nan], [3.0, 5.0, math.nan], [math.nan, 5.0, math.nan]])
    fitted = ObservationSpec(("a", "b", "c")).fit(rows)
    assert fitted.mean == (2.0, 5.0, 0.0)
    assert fitted.scale == (1.0, 1.0, 1.0)  # std of [1, 3] is 1; constant and empty columns: 1
    np.testing.assert_array_equal(fitted.build([4.0, 5.0, 7.0], 0.0), [2.0, 0.0, 7.0, 0.0])


def test_batch_normalisation_equals_per_row_build():
    rng = np.random.default_rng(3)
    rows = rng.normal(size=(50, 4)) * [1.0, 10.0, 0.1, 100.0]
    spec = ObservationSpec(("w", "x", "y", "z")).fit(rows)
    batch = spec.normalise(rows)
    for t in (0, 17, 49):
        np.testing.assert_array_equal(spec.build(rows[t], 0.5)[:-1], batch[t])


def test_dict_round_trip_and_mapping_build():
    spec = ObservationSpec(("a", "b"), "default", "abc123", (0.0, 1.0), (1.0, 2.0), 3.0)
    again = ObservationSpec.from_dict(spec.to_dict())
    assert again == spec
    obs = again.build_from_mapping({"b": 5.0, "a": 1.0, "extra": 9.0}, position=1.0)
    np.testing.assert_array_equal(obs, [1.0, 2.0, 1.0])
    with pytest.raises(KeyError, match="'b'"):
        again.build_from_mapping({"a": 1.0}, position=0.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"feature_names": ()}, "empty"),
        ({"feature_names": ("a", "a")}, "repeats"),
        ({"feature_names": ("a",), "mean": (0.0,)}, "both mean and scale"),
        ({"feature_names": ("a", "b"), "mean": (0.0,), "scale": (1.0,)}, "mean has 1 values"),
        ({"feature_names": ("a",), "mean": (0.0,), "scale": (0.0,)}, r"\['a'\]"),
        ({"feature_names": ("a",), "clip": -1.0}, "clip"),
    ],
)
def test_bad_specs_are_refused_naming_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ObservationSpec(**kwargs)


def test_a_row_of_the_wrong_width_is_refused():
    with pytest.raises(ValueError, match="expected 2 features"):
        ObservationSpec(("a", "b")).build([1.0, 2.0, 3.0], 0.0)
    with pytest.raises(ValueError, match="unknown key"):
        ObservationSpec.from_dict({"feature_names": ["a"], "window": 5})
