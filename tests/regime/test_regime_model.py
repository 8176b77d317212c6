"""The HMM estimator: labels from parameters, degenerate inputs, save/load and versions."""

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_info
from threadpoolctl import threadpool_limits

from grodt.core.errors import ConfigError
from models.regime.features import FeatureExtractor
from models.regime.hmm import GaussianRegimeHMM
from models.regime.hmm import RegimeFitError
from models.regime.hmm import _single_threaded
from models.regime.labels import assign_labels

LABELS = np.array(["bull", "bear", "sideways"])


@pytest.fixture(scope="module")
def training(series) -> tuple[np.ndarray, np.ndarray]:
    """Valid feature rows of the first 1,600 bars and the true labels of those rows."""
    closes, states = series
    features = FeatureExtractor(GaussianRegimeHMM().features).transform(closes[:1600])
    valid = np.isfinite(features).all(axis=1)
    return features[valid], LABELS[states[:1600][valid]]


@pytest.fixture(scope="module")
def model(training) -> GaussianRegimeHMM:
    return GaussianRegimeHMM(n_init=2, n_iter=100).fit(training[0])


def test_states_get_the_labels_of_the_regimes_they_capture(model, training):
    rows, truth = training
    predicted = LABELS[model.filter_proba(rows).argmax(axis=1)]
    assert sorted(model.state_labels_) == ["bear", "bull", "sideways"]
    assert (predicted == truth).mean() > 0.6
    for label in ("bull", "bear", "sideways"):
        # the state labelled X is where regime X spends most of its time
        assert (predicted[truth == label] == label).mean() > 0.5


def test_labels_do_not_depend_on_state_order(model, training):
    """Refits from other initialisations number states differently; the labels follow the
    states, so the label probabilities agree."""
    rows, _ = training
    other = GaussianRegimeHMM(n_init=2, n_iter=100, random_state=17).fit(rows)
    a, b = model.filter_proba(rows), other.filter_proba(rows)
    assert np.mean(a.argmax(axis=1) == b.argmax(axis=1)) > 0.95


def test_label_rule():
    # significant drifts decide; the most volatile state is bear when none is; the best
    # remaining positive drift is bull; the rest sideways
    assert assign_labels(np.array([5.0, -4.0, 0.0]), np.array([1.0, 3.0, 2.0])) == (
        "bull",
        "bear",
        "sideways",
    )
    assert assign_labels(np.array([0.5, -1.0, 1.5]), np.array([1.0, 3.0, 2.0])) == (
        "sideways",
        "bear",
        "bull",
    )
    # a window without a falling market: the most volatile state rises significantly, so no
    # state is bear (the weakest state is not called bear just for being the weakest)
    assert assign_labels(np.array([6.0, 0.2, 0.1]), np.array([3.0, 1.0, 2.0])) == (
        "bull",
        "sideways",
        "sideways",
    )
    # two states: up and down
    assert assign_labels(np.array([0.5, -0.2]), np.array([1.0, 2.0])) == ("bull", "bear")
    # more states than labels: several states share one
    assert assign_labels(np.array([4.0, 5.0, -0.1, 0.2]), np.array([1.0, 2.0, 3.0, 0.5])) == (
        "bull",
        "bull",
        "bear",
        "sideways",
    )


def test_too_few_rows_is_a_clear_error(training):
    with pytest.raises(RegimeFitError, match=r"too few bars to fit: 100 rows.*at least 165"):
        GaussianRegimeHMM().fit(training[0][:100])


def test_a_constant_feature_is_reported_not_fatal(training):
    rows = training[0][:600].copy()
    rows[:, 1] = 0.004
    model = GaussianRegimeHMM(n_init=1).fit(rows)
    assert any("constant in the training window" in w for w in model.fit_warnings_)
    assert np.isfinite(model.filter_proba(rows)).all()


def test_degenerate_covariance_is_clamped_to_min_covar_with_a_warning(training):
    rows = training[0][:600].copy()
    rows[:, 2] = rows[:, 0] * 0.5 + 1e-9  # perfectly collinear: singular covariances
    model = GaussianRegimeHMM(n_init=1, min_covar=1e-3).fit(rows)
    assert any("degenerate covariance" in w for w in model.fit_warnings_)
    for cov in model.covars_:
        assert np.linalg.eigvalsh(cov).min() >= 1e-3 * (1 - 1e-9)
    assert np.isfinite(model.filter_proba(rows)).all()


def test_fits_are_deterministic_and_versions_are_content_hashes(model, training):
    again = GaussianRegimeHMM(n_init=2, n_iter=100).fit(training[0])
    assert again.version_ == model.version_
    other = GaussianRegimeHMM(n_init=2, n_iter=100).fit(training[0][:-50])
    assert other.version_ != model.version_
    assert model.version_.startswith("hmm-") and len(model.version_) == 16


def test_save_and_load_round_trip(model, training, tmp_path):
    path = model.save(tmp_path / "m" / "regime.json")
    loaded = GaussianRegimeHMM.load(path)
    assert loaded.version_ == model.version_
    assert loaded.state_labels_ == model.state_labels_
    rows = training[0][:300]
    np.testing.assert_array_equal(loaded.filter_proba(rows), model.filter_proba(rows))
    data = json.loads(path.read_text())
    assert data["training"]["n_samples"] == len(training[0])
    assert data["hyperparameters"]["features"] == ["log_return", "realized_vol:20", "trend:50"]


def test_an_edited_model_file_is_rejected(model, tmp_path):
    path = model.save(tmp_path / "regime.json")
    data = json.loads(path.read_text())
    data["means"][0][0] += 0.1
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="does not match the stored version"):
        GaussianRegimeHMM.load(path)
    data["format"] = "something"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="not a grodt regime model"):
        GaussianRegimeHMM.load(path)
    with pytest.raises(ConfigError, match="model file not found"):
        GaussianRegimeHMM.load(tmp_path / "missing.json")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_states": 1}, "n_states: must be at least 2"),
        ({"covariance_type": "banana"}, "covariance_type: must be"),
        ({"min_covar": 0.0}, "min_covar: must be positive"),
        ({"label_z": -1.0}, "label_z: must be positive"),
        ({"features": ("realized_vol:20",)}, "needs a drift feature"),
    ],
)
def test_bad_hyperparameters_name_the_field(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        GaussianRegimeHMM(**kwargs)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe{\x00}", "not UTF-8 text"),
        (b"{not json", "not valid JSON"),
        (b"[1, 2, 3]", "the JSON is a list, expected an object"),
        (b'"regime"', "the JSON is a str, expected an object"),
        (b"null", "the JSON is a NoneType, expected an object"),
        (b"[" * 100_000, "not valid JSON"),
    ],
)
def test_a_model_file_that_is_not_a_json_object_is_a_config_error_naming_it(
    tmp_path, content, message
):
    path = tmp_path / "broken.json"
    path.write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        GaussianRegimeHMM.load(path)
    assert str(path) in str(caught.value)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(hyperparameters=[1, 2]), "hyperparameters must be an object"),
        (lambda d: d.update(training="yesterday"), "training must be an object"),
        (lambda d: d["hyperparameters"].update(n_states=1), "hyperparameters.n_states"),
        (lambda d: d["hyperparameters"].update(colour="red"), "hyperparameters: .*colour"),
        (lambda d: d.pop("means"), "missing field 'means'"),
        (lambda d: d.update(means="wide"), "could not convert"),
        (lambda d: d.update(means=[[1.0]]), "means has shape"),
        (lambda d: d.update(state_labels=7), "not iterable"),
        (lambda d: d["training"].update(n_samples="many"), "invalid literal"),
    ],
)
def test_a_model_file_with_the_wrong_schema_is_a_config_error_naming_it(
    model, tmp_path, edit, message
):
    path = model.save(tmp_path / "regime.json")
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match=message) as caught:
        GaussianRegimeHMM.load(path)
    assert str(path) in str(caught.value)


def test_save_to_an_unwritable_place_names_the_file(model, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write the model file") as caught:
        model.save(blocker / "regime.json")
    assert str(blocker / "regime.json") in str(caught.value)
    path = model.save(tmp_path / "regime.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "regime.json"]
    assert GaussianRegimeHMM.load(path).version_ == model.version_


def test_an_em_run_scores_and_weighs_states_as_hmmlearn_does(training):
    # fit() takes the log-likelihood and the occupancy from one score_samples pass of the
    # winning run: it must equal hmmlearn's score(z) and predict_proba(z), bit for bit.
    x = training[0]
    z = (x - x.mean(axis=0)) / x.std(axis=0)
    model = GaussianRegimeHMM(n_init=1, n_iter=30)
    errors: list[str] = []
    [(score, hmm, posteriors)] = GaussianRegimeHMM._run_em([model._cold_model(0)], z, errors)
    assert not errors
    with np.errstate(all="ignore"):
        assert score == float(hmm.score(z))
        assert np.array_equal(posteriors, hmm.predict_proba(z))


def test_em_runs_single_threaded():
    # The pools are found once per process (a cached controller): the limit must still apply at
    # every fit, whatever the pools were set to in between.
    for _ in range(2):
        with threadpool_limits(limits=2), _single_threaded():
            pools = threadpool_info()
            assert pools and all(pool["num_threads"] == 1 for pool in pools)
