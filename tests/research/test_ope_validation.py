"""research.ope policies, the synthetic-market allocation bandit and the ground-truth validation
loop (on a tiny market)."""

import numpy as np
import pytest

from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market
from grodt.core.errors import GrodtError
from research.ope.evaluate import ESTIMATORS
from research.ope.market_bandit import allocation_bandit
from research.ope.market_bandit import default_allocations
from research.ope.policies import LinearEpsilonGreedyPolicy
from research.ope.policies import LinearSoftmaxPolicy
from research.ope.policies import sample_actions
from research.ope.policy_spec import load_policy_spec
from research.ope.policy_spec import policy_action_dist
from research.ope.validation import summarise_validation
from research.ope.validation import validate_on_synthetic_market


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticParams(days=6, seed=3))


def test_policies():
    context = np.array([[1.0, 0.0], [0.0, 2.0]])
    coef = np.array([[1.0, 0.0, -1.0], [0.0, 1.0, 0.0]])
    soft = LinearSoftmaxPolicy(coef=coef, temperature=1.0).action_dist(context)
    expected = np.exp([1.0, 0.0, -1.0]) / np.exp([1.0, 0.0, -1.0]).sum()
    np.testing.assert_allclose(soft[0], expected, rtol=1e-12)
    greedy = LinearEpsilonGreedyPolicy(coef=coef, epsilon=0.3).action_dist(context)
    np.testing.assert_allclose(greedy, [[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    with pytest.raises(ValueError, match=r"context must be \(n, 2\)"):
        LinearSoftmaxPolicy(coef=coef).action_dist(np.ones((2, 3)))
    # Sampled frequencies follow the distribution; the returned pscore is the drawn action's.
    dist = np.tile([0.2, 0.5, 0.3], (20_000, 1))
    action, pscore = sample_actions(dist, 0)
    np.testing.assert_allclose(np.bincount(action) / action.size, [0.2, 0.5, 0.3], atol=0.01)
    np.testing.assert_array_equal(pscore, dist[np.arange(action.size), action])


def test_bandit_rewards_and_causal_contexts(market):
    bandit = allocation_bandit(market.frames, window_bars=65, lookback_bars=130)
    instruments = list(market.frames)
    allocations = default_allocations(len(instruments))
    np.testing.assert_array_equal(bandit.allocations, allocations)
    # Round 2: decision at the close of bar 130 + 2·65, reward over the next 65 bars.
    t = 130 + 2 * 65
    closes = np.column_stack([market.frames[i]["close"].to_numpy() for i in instruments])
    window = closes[t + 65] / closes[t] - 1.0
    np.testing.assert_allclose(bandit.rewards[2], allocations @ window, rtol=1e-12)
    assert bandit.rewards[2, 0] == 0.0  # cash
    assert bandit.ts_event[2] == market.frames[instruments[0]].index[t].value
    # Changing a later close moves no earlier context.
    frames = {i: f.copy() for i, f in market.frames.items()}
    frames[instruments[0]].iloc[t + 1, frames[instruments[0]].columns.get_loc("close")] *= 1.5
    changed = allocation_bandit(frames, window_bars=65, lookback_bars=130)
    np.testing.assert_array_equal(changed.context[:3], bandit.context[:3])
    assert not np.array_equal(changed.context[3], bandit.context[3])


def test_validation_loop_on_a_tiny_market():
    results = validate_on_synthetic_market([1], days=6, n_bootstrap=50)
    assert list(results["estimator"]) == list(ESTIMATORS)
    row = results.iloc[0]
    market = generate_market(SyntheticParams(days=6, seed=1))
    bandit = allocation_bandit(market.frames)
    assert row["n_rounds"] == bandit.rewards.shape[0]
    assert np.isfinite(results[["estimate", "lower", "upper", "truth"]].to_numpy()).all()
    assert (results["lower"] <= results["upper"]).all()
    summary = summarise_validation(results)
    assert list(summary.index) == list(ESTIMATORS)
    assert set(summary.columns) == {"bias", "bias_se", "rmse", "coverage", "mean_width", "seeds"}


def test_policy_spec_kinds(tmp_path):
    context = np.array([[1.0, -2.0], [0.5, 3.0]])
    names = ("a", "b")
    path = tmp_path / "p.yaml"
    path.write_text("kind: fixed\naction: 2\n")
    np.testing.assert_array_equal(
        policy_action_dist(load_policy_spec(path), context, names, 3), [[0, 0, 1], [0, 0, 1]]
    )
    path.write_text("kind: uniform\n")
    np.testing.assert_allclose(policy_action_dist(load_policy_spec(path), context, names, 4), 0.25)
    # Features are picked by name, in the file's order: here only b.
    path.write_text("kind: epsilon_greedy\nfeatures: [b]\ncoef: [[1, -1]]\nepsilon: 0.2\n")
    np.testing.assert_allclose(
        policy_action_dist(load_policy_spec(path), context, names, 2), [[0.1, 0.9], [0.9, 0.1]]
    )
    with pytest.raises(GrodtError, match=r"coef has shape \(1, 2\), needs \(1, 3\)"):
        policy_action_dist(load_policy_spec(path), context, names, 3)
    path.write_text("kind: nope\n")
    with pytest.raises(GrodtError, match=r"p\.yaml: .*kind"):
        load_policy_spec(path)
