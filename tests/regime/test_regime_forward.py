"""The forward filter: equal to hmmlearn's forward pass, causal, numerically stable."""

import math

import numpy as np
import pytest

from models.regime.features import FeatureExtractor
from models.regime.forward import ForwardFilter
from models.regime.hmm import GaussianRegimeHMM

CUTS = (1, 2, 57, 300, 811, 1499)


@pytest.fixture(scope="module")
def fitted(series) -> tuple[GaussianRegimeHMM, np.ndarray]:
    model = GaussianRegimeHMM(n_init=1, n_iter=50)
    features = FeatureExtractor(model.features).transform(series[0][:1600])
    rows = features[np.isfinite(features).all(axis=1)]
    model.fit(rows[:800])
    return model, rows


def test_filter_equals_hmmlearn_on_the_last_row_of_every_prefix(fitted):
    """At the last observation smoothing and filtering coincide: hmmlearn's predict_proba on
    x_1..x_t, row t, is p(s_t | x_1..x_t)."""
    model, rows = fitted
    hmm = model.to_hmmlearn()
    z = (rows - model.scaler_mean_) / model.scaler_scale_
    ours = model.filter_proba(rows, labels=False)
    for cut in CUTS:
        np.testing.assert_allclose(ours[cut - 1], hmm.predict_proba(z[:cut])[-1], atol=1e-10)


def test_log_likelihood_equals_hmmlearn_score(fitted):
    model, rows = fitted
    fwd = model.forward_filter()
    for row in rows[:700].tolist():
        fwd.update(row)
    z = (rows[:700] - model.scaler_mean_) / model.scaler_scale_
    assert fwd.log_likelihood == pytest.approx(model.to_hmmlearn().score(z), rel=1e-10)


def test_causality_prefix_probabilities_equal_full_series(fitted):
    """Probabilities for bars 1..t from a prefix equal those from the full series (1e-12),
    and a different future does not change them."""
    model, rows = fitted
    full = model.filter_proba(rows)
    future = rows.copy()
    future[900:] = future[900:][::-1] * 1.5
    other = model.filter_proba(future)
    for cut in CUTS:
        prefix = model.filter_proba(rows[:cut])
        np.testing.assert_allclose(prefix, full[:cut], rtol=0, atol=1e-12)
    np.testing.assert_allclose(other[:900], full[:900], rtol=0, atol=1e-12)


def test_hmmlearn_smoothing_looks_ahead_where_the_filter_does_not(fitted):
    """hmmlearn's predict_proba at row t moves when rows after t are appended; ours never."""
    model, rows = fitted
    smoothed_full = model.smoothed_proba(rows)
    filtered_full = model.filter_proba(rows, labels=False)
    assert np.abs(smoothed_full - filtered_full).max() > 0.5
    moved = max(
        np.abs(model.smoothed_proba(rows[:cut])[:-1] - smoothed_full[: cut - 1]).max()
        for cut in range(300, 1500, 100)
    )
    assert moved > 1e-6  # any dependence on later rows is look-ahead


def test_probabilities_stay_finite_and_normalised_under_extreme_inputs():
    means = np.array([[0.0, 0.0], [3.0, 3.0]])
    covars = np.array([np.eye(2) * 0.01, np.eye(2) * 0.01])
    transmat = np.array([[1.0, 0.0], [0.0, 1.0]])  # absorbing states: zeros in A
    fwd = ForwardFilter(means, covars, transmat, np.array([0.5, 0.5]), np.zeros(2), np.ones(2))
    for x in ([0.0, 0.0], [1e6, -1e6], [3.0, 3.0], [1e-300, 5.0], [40.0, 40.0]):
        state = fwd.update(x)
        assert all(math.isfinite(p) and p >= 0 for p in state)
        assert sum(state) == pytest.approx(1.0, abs=1e-12)
    assert math.isfinite(fwd.log_likelihood)


def test_predict_is_the_time_update_only():
    transmat = np.array([[0.9, 0.1], [0.2, 0.8]])
    fwd = ForwardFilter(
        np.zeros((2, 1)),
        np.ones((2, 1, 1)),
        transmat,
        np.array([1.0, 0.0]),
        np.zeros(1),
        np.ones(1),
    )
    fwd.update([0.0])
    np.testing.assert_allclose(fwd.predict(), [0.9, 0.1], atol=1e-15)
    np.testing.assert_allclose(fwd.predict(), np.array([0.9, 0.1]) @ transmat, atol=1e-15)


def test_label_probabilities_sum_states_of_a_label(fitted):
    model, rows = fitted
    states = model.filter_proba(rows[:50], labels=False)
    labels = model.filter_proba(rows[:50])
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-12)
    for column, label in enumerate(("bull", "bear", "sideways")):
        members = [k for k, lab in enumerate(model.state_labels_) if lab == label]
        np.testing.assert_allclose(labels[:, column], states[:, members].sum(axis=1), atol=1e-15)


def test_tempering_calibrates_without_breaking_causality(fitted):
    """T > 1 divides each emission log-density by T: probabilities move less abruptly (higher
    entropy, fewer jumps), and stay causal."""
    model, rows = fitted
    twin = model.with_temperature(20.0)
    assert twin.version_ != model.version_
    exact, smooth = model.filter_proba(rows), twin.filter_proba(rows)

    def entropy(p: np.ndarray) -> float:
        return float(-(p * np.log(np.clip(p, 1e-300, 1))).sum(axis=1).mean())

    assert entropy(smooth) > entropy(exact) + 0.05
    assert np.abs(np.diff(smooth, axis=0)).sum() < np.abs(np.diff(exact, axis=0)).sum()
    np.testing.assert_allclose(twin.filter_proba(rows[:500]), smooth[:500], rtol=0, atol=1e-12)
    with pytest.raises(ValueError, match="temperature must be"):
        ForwardFilter(
            model.means_,
            model.covars_,
            model.transmat_,
            model.initial_,
            model.scaler_mean_,
            model.scaler_scale_,
            temperature=0.5,
        )
