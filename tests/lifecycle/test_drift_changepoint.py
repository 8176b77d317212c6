"""Drift monitors (PSI, KS) and Bayesian online change-point detection: a shifted window is
flagged and a stationary one is not; the change-point signal is causal (later bars never change
earlier output) and detects a volatility break within a few bars."""

import numpy as np
import pytest

from models.changepoint import BocpdConfig
from models.changepoint import OnlineChangePoint
from models.changepoint import run_bocpd
from research.drift import DriftThresholds
from research.drift import drift_action
from research.drift import feature_drift
from research.drift import population_stability_index


def test_psi_and_ks_flag_a_shift_and_not_a_resample():
    rng = np.random.default_rng(0)
    train = rng.normal(0.0, 1.0, (2000, 2))
    same = rng.normal(0.0, 1.0, (500, 2))
    shifted = np.column_stack([rng.normal(0.8, 1.0, 500), rng.normal(0.0, 2.5, 500)])
    calm = feature_drift(train, same, ["a", "b"])
    moved = feature_drift(train, shifted, ["a", "b"])
    assert all(d.psi < 0.1 and d.ks_pvalue > 0.001 for d in calm)
    assert all(d.psi > 0.25 and d.ks_pvalue < 1e-6 for d in moved)
    assert drift_action(calm, DriftThresholds()) == "none"
    assert drift_action(moved, DriftThresholds()) == "retrain"
    assert drift_action(moved, DriftThresholds(psi_fallback=0.5)) == "fallback"
    # Identical samples: PSI 0; an empty live bin stays finite.
    assert population_stability_index(train[:, 0], train[:, 0]) == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(population_stability_index(train[:, 0], np.full(100, 9.0)))
    with pytest.raises(ValueError, match="live\\[b\\]: needs at least 2 finite values"):
        feature_drift(train, np.column_stack([same[:, 0], np.full(500, np.nan)]), ["a", "b"])


def returns_with_a_break(seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(0.0005, 0.008, 400), rng.normal(-0.002, 0.03, 200)])


def test_future_bars_never_change_past_output():
    x = returns_with_a_break()
    full = run_bocpd(x)
    for cut in (1, 57, 399, 401, 450):
        np.testing.assert_array_equal(run_bocpd(x[:cut]), full[:cut])
    # Streaming equals batch, and a non-finite value leaves the state alone.
    detector = OnlineChangePoint()
    streamed = []
    for value in x[:100]:
        streamed.append(detector.update(float(value)).p_change)
        if len(streamed) == 50:
            assert detector.update(float("nan")).p_change == streamed[-1]
    np.testing.assert_array_equal(streamed, full[:100])


def test_a_break_is_detected_quickly_and_a_calm_stretch_raises_no_alarm():
    x = returns_with_a_break()
    p = run_bocpd(x, BocpdConfig(expected_run=250.0, window=5, max_run=500))
    # After a burn-in, the conservative hazard raises no alarm in the calm stretch.
    assert p[50:395].max() < 0.5
    first_alarm = 400 + int(np.argmax(p[400:] > 0.5))
    assert p[400:].max() > 0.5 and first_alarm <= 410
