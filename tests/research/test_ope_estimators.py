"""research.ope estimators from their definitions: hand-computed values on a toy log, obp's
identities between them, unbiasedness of IPW on a simulated log, bootstrap intervals and input
errors."""

import numpy as np
import pytest

from research.ope import bootstrap_ci
from research.ope import direct_method
from research.ope import doubly_robust
from research.ope import importance_weights
from research.ope import ipw
from research.ope import self_normalized_doubly_robust
from research.ope import snips
from research.ope import switch_doubly_robust

# A four-round, two-action log. Importance weights w = π(a_i|x_i) / pscore_i:
# row 0: 1 / 0.5 = 2, row 1: 0.5 / 0.25 = 2, row 2: 1 / 0.75 = 4/3, row 3: 0.2 / 0.5 = 0.4.
REWARD = np.array([1.0, 0.0, 2.0, 3.0])
ACTION = np.array([0, 1, 1, 0])
PSCORE = np.array([0.5, 0.25, 0.75, 0.5])
ACTION_DIST = np.array([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0], [0.2, 0.8]])
# Model terms Σ_a π q̂: 1, 0.5, 1, 0.4 (DM 29/40); residuals r − q̂(a_i): 0, −1, 1, 1.
Q_HAT = np.array([[1.0, 2.0], [0.0, 1.0], [1.0, 1.0], [2.0, 0.0]])
LOG = (REWARD, ACTION, PSCORE, ACTION_DIST)


def test_values_by_hand():
    np.testing.assert_allclose(importance_weights(ACTION, PSCORE, ACTION_DIST), [2, 2, 4 / 3, 0.4])
    # Σ w r = 2 + 0 + 8/3 + 6/5 = 88/15; Σ w = 86/15.
    assert ipw(*LOG) == pytest.approx(22 / 15, rel=1e-12)
    assert snips(*LOG) == pytest.approx(44 / 43, rel=1e-12)
    assert direct_method(ACTION_DIST, Q_HAT) == pytest.approx(29 / 40, rel=1e-12)
    # Σ w (r − q̂) = 0 − 2 + 4/3 + 0.4 = −4/15.
    assert doubly_robust(*LOG, Q_HAT) == pytest.approx(29 / 40 - 1 / 15, rel=1e-12)
    assert self_normalized_doubly_robust(*LOG, Q_HAT) == pytest.approx(29 / 40 - 2 / 43, rel=1e-12)
    # τ = 1.5 keeps rows 2 and 3 (w 4/3 and 0.4): (4/3 + 0.4) / 4 = 13/30.
    assert switch_doubly_robust(*LOG, Q_HAT, tau=1.5) == pytest.approx(29 / 40 + 13 / 30, rel=1e-12)


def _random_log(n: int, n_actions: int, rng: np.random.Generator):
    logging = rng.dirichlet(np.ones(n_actions), size=n)
    action = np.array([rng.choice(n_actions, p=p) for p in logging])
    pscore = logging[np.arange(n), action]
    reward = rng.normal(size=n) + action
    target = rng.dirichlet(np.ones(n_actions), size=n)
    q_hat = rng.normal(size=(n, n_actions))
    return reward, action, pscore, target, q_hat


def test_obp_identities():
    reward, action, pscore, target, q_hat = _random_log(300, 4, np.random.default_rng(1))
    log = (reward, action, pscore, target)
    assert switch_doubly_robust(*log, q_hat, tau=0.0) == pytest.approx(
        direct_method(target, q_hat), rel=1e-12
    )
    assert switch_doubly_robust(*log, q_hat, tau=np.inf) == pytest.approx(
        doubly_robust(*log, q_hat), rel=1e-12
    )
    zero = np.zeros_like(q_hat)
    assert doubly_robust(*log, zero) == pytest.approx(ipw(*log), rel=1e-12)
    assert self_normalized_doubly_robust(*log, zero) == pytest.approx(snips(*log), rel=1e-12)
    # The target equal to the logger: every weight is 1, IPW = SNIPS = the logged mean reward.
    same = np.zeros_like(target)
    same[np.arange(action.size), action] = pscore
    same[np.arange(action.size), (action + 1) % 4] += 1.0 - pscore
    assert ipw(reward, action, pscore, same) == pytest.approx(reward.mean(), rel=1e-12)
    assert snips(reward, action, pscore, same) == pytest.approx(reward.mean(), rel=1e-12)


def test_shift_equivariance_where_it_holds():
    reward, action, pscore, target, q_hat = _random_log(200, 3, np.random.default_rng(2))
    shift = 5.0
    # SNIPS normalises the weights, so a constant reward shift passes straight through.
    assert snips(reward + shift, action, pscore, target) == pytest.approx(
        snips(reward, action, pscore, target) + shift, rel=1e-12
    )
    # DR and SNDR pass it through when the reward model shifts with the rewards.
    for estimator in (doubly_robust, self_normalized_doubly_robust):
        assert estimator(reward + shift, action, pscore, target, q_hat + shift) == pytest.approx(
            estimator(reward, action, pscore, target, q_hat) + shift, rel=1e-12
        )
    # IPW does not: its shift is shift × mean(w), which is not 1 on a finite log.
    weights = importance_weights(action, pscore, target)
    assert ipw(reward + shift, action, pscore, target) == pytest.approx(
        ipw(reward, action, pscore, target) + shift * weights.mean(), rel=1e-12
    )
    assert abs(weights.mean() - 1.0) > 1e-3


def test_ipw_unbiased_on_simulated_log():
    # Fixed contexts and known mean rewards; only the logger's draws vary by seed. IPW's mean over
    # seeds must sit within 3 standard errors of the target's true value.
    rng = np.random.default_rng(3)
    n, n_actions = 400, 3
    mean_reward = rng.normal(size=(n, n_actions))
    logging = rng.dirichlet(np.full(n_actions, 2.0), size=n)
    target = rng.dirichlet(np.full(n_actions, 2.0), size=n)
    truth = float(np.mean(np.sum(target * mean_reward, axis=1)))
    estimates = []
    for seed in range(300):
        draw = np.random.default_rng(100 + seed)
        action = (draw.random(n)[:, None] > np.cumsum(logging, axis=1)).sum(axis=1)
        reward = mean_reward[np.arange(n), action] + draw.normal(scale=0.5, size=n)
        estimates.append(ipw(reward, action, logging[np.arange(n), action], target))
    estimates = np.asarray(estimates)
    standard_error = estimates.std(ddof=1) / np.sqrt(estimates.size)
    assert abs(estimates.mean() - truth) < 3.0 * standard_error


def test_bootstrap_ci():
    reward, action, pscore, target, q_hat = _random_log(300, 3, np.random.default_rng(4))
    interval = bootstrap_ci(
        doubly_robust, reward, action, pscore, target, q_hat, n_bootstrap=300, random_state=0
    )
    assert interval.estimate == pytest.approx(doubly_robust(reward, action, pscore, target, q_hat))
    assert interval.lower < interval.estimate < interval.upper
    assert interval.n_bootstrap == 300 and interval.n_undefined == 0
    # Keyword arrays are resampled too; tau passes through; the seed fixes the draws.
    again = bootstrap_ci(
        switch_doubly_robust,
        reward=reward,
        action=action,
        pscore=pscore,
        action_dist=target,
        q_hat=q_hat,
        tau=np.inf,
        n_bootstrap=300,
        random_state=0,
    )
    assert (again.lower, again.upper) == (interval.lower, interval.upper)
    narrower = bootstrap_ci(ipw, reward, action, pscore, target, alpha=0.5, random_state=0)
    wider = bootstrap_ci(ipw, reward, action, pscore, target, alpha=0.01, random_state=0)
    assert wider.lower < narrower.lower < narrower.upper < wider.upper


def test_bootstrap_coverage_of_the_mean_reward():
    # With the target equal to the logger every weight is 1, IPW is the sample mean of normal
    # rewards, and a 90% interval should cover the true mean about 90% of the time.
    n, covered, trials = 200, 0, 60
    action = np.zeros(n, dtype=int)
    pscore = np.ones(n)
    dist = np.ones((n, 1))
    for seed in range(trials):
        reward = np.random.default_rng(seed).normal(loc=1.0, size=n)
        interval = bootstrap_ci(
            ipw, reward, action, pscore, dist, n_bootstrap=200, alpha=0.1, random_state=seed
        )
        covered += interval.contains(1.0)
    assert 0.75 <= covered / trials <= 0.99


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"pscore": np.array([0.5, 0.0, 0.75, 0.5])}, r"pscore must lie in \(0, 1\].*row 1"),
        ({"pscore": np.array([0.5, 1.5, 0.75, 0.5])}, r"pscore must lie in \(0, 1\].*row 1"),
        ({"pscore": np.array([0.5, 0.5])}, "pscore has 2 rows, action 4"),
        ({"reward": np.array([1.0, np.nan, 2.0, 3.0])}, "reward must be finite.*row 1"),
        ({"action": np.array([0, 2, 1, 0])}, r"action must lie in \[0, 2\).*row 1 is 2"),
        ({"action": np.array([0.0, 1.5, 1.0, 0.0])}, "action must hold integers; row 1"),
        ({"action_dist": ACTION_DIST[:, :1]}, "rows of action_dist must sum to 1.*first row 1"),
        ({"action_dist": ACTION_DIST[:3]}, "action_dist has 3 rows, the log has 4"),
        ({"action_dist": ACTION_DIST[:, 0]}, r"action_dist must be 2-D \(n, n_actions\)"),
        ({"reward": REWARD[:, None]}, r"reward must be 1-D \(n,\)"),
    ],
)
def test_input_errors_name_the_argument(change, message):
    arguments = dict(reward=REWARD, action=ACTION, pscore=PSCORE, action_dist=ACTION_DIST)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        ipw(**arguments)


def test_model_and_tau_errors():
    with pytest.raises(ValueError, match=r"q_hat has shape \(4, 3\), action_dist \(4, 2\)"):
        doubly_robust(*LOG, np.zeros((4, 3)))
    with pytest.raises(ValueError, match="tau must be >= 0"):
        switch_doubly_robust(*LOG, Q_HAT, tau=-1.0)
    with pytest.raises(ValueError, match="every importance weight is 0"):
        snips(REWARD, ACTION, PSCORE, np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
