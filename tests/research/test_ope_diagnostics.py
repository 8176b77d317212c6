"""research.ope.diagnostics: ESS by hand and each overlap warning triggered by a log built to
trigger it (and silent on a well-overlapping log)."""

import numpy as np
import pytest

from research.ope.diagnostics import effective_sample_size
from research.ope.diagnostics import overlap_diagnostics


def test_effective_sample_size_by_hand():
    assert effective_sample_size([1.0, 1.0, 1.0, 1.0]) == pytest.approx(4.0)
    assert effective_sample_size([4.0, 0.0, 0.0, 0.0]) == pytest.approx(1.0)
    # (2 + 2 + 4/3 + 0.4)² / (4 + 4 + 16/9 + 0.16)
    expected = (86 / 15) ** 2 / (4 + 4 + 16 / 9 + 0.16)
    assert effective_sample_size([2.0, 2.0, 4 / 3, 0.4]) == pytest.approx(expected, rel=1e-12)
    assert effective_sample_size([0.0, 0.0]) == 0.0
    with pytest.raises(ValueError, match="finite and non-negative"):
        effective_sample_size([1.0, -1.0])


def test_a_good_log_gives_no_warning():
    rng = np.random.default_rng(0)
    n = 500
    action = rng.integers(0, 3, size=n)
    pscore = np.full(n, 1 / 3)
    target = rng.dirichlet(np.full(3, 5.0), size=n)
    report = overlap_diagnostics(action, pscore, target)
    assert report.warnings == ()
    assert report.ess_share > 0.5
    assert report.unsupported_share == 0.0
    assert report.min_pscore == pytest.approx(1 / 3)


def test_each_warning():
    n = 100
    action = np.array([1] + [0] * 99)
    pscore = np.array([0.005] + [0.9] * 99)
    # The target: all mass on action 1 in the first 50 rounds, on action 2 (never logged) in the
    # rest.
    target = np.zeros((n, 3))
    target[:50, 1] = 1.0
    target[50:, 2] = 1.0
    report = overlap_diagnostics(action, pscore, target)
    text = "\n".join(report.warnings)
    assert "1 of 100 rounds (1.0%) have a logged propensity below 0.01" in text
    assert "largest importance weight 200 exceeds 20 (round 0)" in text
    assert "effective sample size 1.0 is 1.0% of the 100 rounds" in text
    assert "in 50.0% of rounds the policy puts mass on actions the logger never takes" in text
    assert report.unsupported_mass == pytest.approx(0.5)
    assert report.max_importance_weight == pytest.approx(200.0)


def test_unsupported_by_the_logged_distribution():
    # Action 1 is taken somewhere in the log, but the logger's own distribution gives it 0 in
    # rounds 2 and 3, where the target wants it.
    action = np.array([0, 1, 0, 0])
    pscore = np.array([1.0, 0.5, 1.0, 1.0])
    logging = np.array([[1.0, 0.0], [0.5, 0.5], [1.0, 0.0], [1.0, 0.0]])
    target = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
    by_log = overlap_diagnostics(action, pscore, target)
    assert by_log.unsupported_share == 0.0
    by_logger = overlap_diagnostics(action, pscore, target, logging_action_dist=logging)
    assert by_logger.unsupported_share == pytest.approx(0.5)
    assert by_logger.unsupported_mass == pytest.approx((0.5 + 1.0) / 4)
