"""research.ope.reward_model: cross-fitting keeps each round's own reward out of its estimate,
and the estimates recover a known reward function."""

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression

from research.ope import doubly_robust
from research.ope import ipw
from research.ope.reward_model import CrossFittedRewardModel
from research.ope.reward_model import action_design


def _log(n: int, seed: int):
    rng = np.random.default_rng(seed)
    context = rng.normal(size=(n, 2))
    slopes = np.array([[1.0, -1.0, 0.5], [0.0, 2.0, -1.0]])  # (d, n_actions)
    mean_reward = context @ slopes + np.array([0.0, 0.3, -0.2])
    action = rng.integers(0, 3, size=n)
    reward = mean_reward[np.arange(n), action] + rng.normal(scale=0.3, size=n)
    return context, action, reward, mean_reward


@pytest.mark.parametrize("regressor", [None, LinearRegression()], ids=["lightgbm", "linear"])
def test_a_rounds_estimate_never_sees_its_own_reward(regressor):
    context, action, reward, _ = _log(200, 0)
    model = CrossFittedRewardModel(regressor=regressor, n_folds=4)
    q_hat = model.fit_predict(context, action, reward, n_actions=3)
    changed = reward.copy()
    row = 57
    changed[row] += 100.0
    q_changed = CrossFittedRewardModel(regressor=regressor, n_folds=4).fit_predict(
        context, action, changed, n_actions=3
    )
    np.testing.assert_array_equal(q_changed[row], q_hat[row])
    # The same fold's rounds share row 57's model and are unchanged too; other folds' models did
    # see the new reward and move.
    same_fold = model.fold_ == model.fold_[row]
    np.testing.assert_array_equal(q_changed[same_fold], q_hat[same_fold])
    assert np.abs(q_changed[~same_fold] - q_hat[~same_fold]).max() > 1e-6


def test_an_in_sample_fit_would_see_it():
    # The contrast that makes the test above meaningful: one model fitted on every round moves
    # its estimate of row 57 when row 57's reward changes.
    context, action, reward, _ = _log(200, 0)
    changed = reward.copy()
    changed[57] += 100.0
    design = action_design(context, action, 3)
    before = LinearRegression().fit(design, reward).predict(design[57:58])
    after = LinearRegression().fit(design, changed).predict(design[57:58])
    assert abs(after[0] - before[0]) > 0.1


def test_recovers_the_reward_function_and_dr_is_close():
    context, action, reward, mean_reward = _log(2000, 1)
    model = CrossFittedRewardModel(regressor=LinearRegression(), n_folds=5)
    q_hat = model.fit_predict(context, action, reward, n_actions=3)
    assert np.sqrt(np.mean((q_hat - mean_reward) ** 2)) < 0.05
    assert model.predict(context[:10]).shape == (10, 3)
    # Target: always the best action. Logger: uniform (pscore 1/3).
    target = np.eye(3)[np.argmax(mean_reward, axis=1)]
    truth = float(np.mean(mean_reward.max(axis=1)))
    pscore = np.full(action.size, 1 / 3)
    dr = doubly_robust(reward, action, pscore, target, q_hat)
    assert abs(dr - truth) < 0.05
    # DR's error is below IPW's on this log (a good model removes most of the variance).
    assert abs(dr - truth) < abs(ipw(reward, action, pscore, target) - truth)


def test_errors():
    context, action, reward, _ = _log(20, 2)
    with pytest.raises(ValueError, match="n_folds must be >= 2"):
        CrossFittedRewardModel(n_folds=1).fit_predict(context, action, reward, 3)
    with pytest.raises(ValueError, match=r"action must be integers in \[0, 2\)"):
        CrossFittedRewardModel().fit_predict(context, action, reward, 2)
    with pytest.raises(ValueError, match="call fit_predict first"):
        CrossFittedRewardModel().predict(context)
