"""models.meta from the definitions: features by hand, the projection and the allocator against
scipy's solver, the constraints one by one, quantile model calibration out of sample, the bandit's
propensities and learning, health checks and the policies' fallbacks."""

import math
from dataclasses import replace

import numpy as np
import pytest
from scipy.optimize import minimize

from grodt.core.errors import ConfigError
from models.lifecycle.refit import RefitError
from models.meta import AllocatorConfig
from models.meta import ConformalInterval
from models.meta import HealthConfig
from models.meta import LinearThompsonBandit
from models.meta import MetaModel
from models.meta import MetaPolicy
from models.meta import MetaRetrainConfig
from models.meta import PositiveProbability
from models.meta import QuantileReturnModel
from models.meta import allocate
from models.meta import allocation_actions
from models.meta import context_features
from models.meta import diversified_top_k
from models.meta import feature_names
from models.meta import performance_features
from models.meta.allocator import project
from models.meta.calibration import raw_positive_probability
from models.meta.health import CoverageMonitor
from models.meta.health import forecast_problem
from models.meta.model import Forecast
from models.meta.online import RetrainPayload
from models.meta.online import fit_meta_online
from research.prediction_metrics import expected_calibration_error

# -- features --------------------------------------------------------------------------------------


def test_performance_features_match_their_definitions():
    returns = np.array([[0.10, 0.0], [-0.05, 0.0], [0.02, 0.0], [0.0, 0.0]])
    turnover = np.array([[1.0, 0.0], [0.0, 0.0], [2.0, 0.0], [1.0, 0.0]])
    out = performance_features(returns, turnover)
    r = returns[:, 0]
    assert out[0, 0] == pytest.approx(1.10 * 0.95 * 1.02 * 1.0 - 1.0)
    assert out[0, 1] == pytest.approx(r.mean() / r.std(ddof=1))
    assert out[0, 2] == pytest.approx(2 / 3)  # two wins among three bars that traded
    assert out[0, 3] == pytest.approx(0.95 - 1.0)  # from the 1.10 peak to 1.045
    assert out[0, 4] == pytest.approx(r.std(ddof=1))
    assert out[0, 5] == pytest.approx(1.0)
    assert out[0, 6] == 0.0
    # A flat strategy: no return, no Sharpe, an undecided hit rate, no drawdown.
    assert out[1].tolist() == [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="equal non-empty"):
        performance_features(returns, turnover[:2])


def test_context_features():
    closes = np.array([100.0, 101.0, 99.0, 102.0])
    out = context_features((0.2, 0.3, 0.5), closes, month=4, weekday=2)
    assert out[:3].tolist() == [0.2, 0.3, 0.5]
    assert out[3] == pytest.approx(np.diff(np.log(closes)).std(ddof=1))
    assert out[4] == pytest.approx(math.sin(math.pi / 2))
    assert out[5] == pytest.approx(0.0, abs=1e-12)
    assert out[6] == 2.0
    assert len(feature_names()) == 16


# -- allocator -------------------------------------------------------------------------------------


def _scipy_projection(v, lo, hi):
    result = minimize(
        lambda w: ((w - v) ** 2).sum(),
        np.clip(v, lo, hi) * 0.5,
        bounds=list(zip(lo, hi, strict=True)),
        constraints=[{"type": "ineq", "fun": lambda w: 1.0 - w.sum()}],
        method="SLSQP",
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return result.x


@pytest.mark.parametrize("seed", range(5))
def test_projection_is_the_euclidean_projection(seed):
    rng = np.random.default_rng(seed)
    n = 6
    v = rng.normal(0.3, 0.5, n)
    lo = np.full(n, 0.05)
    hi = np.full(n, 0.6)
    w = project(v, lo, hi)
    assert np.all(w >= lo - 1e-12) and np.all(w <= hi + 1e-12) and w.sum() <= 1.0 + 1e-9
    np.testing.assert_allclose(w, _scipy_projection(v, lo, hi), atol=1e-5)


def _scipy_utility(mu, cov, lam, lo, hi):
    result = minimize(
        lambda w: -(mu @ w - lam * w @ cov @ w),
        (lo + hi) / 2 / max(1.0, ((lo + hi) / 2).sum()),
        bounds=list(zip(lo, hi, strict=True)),
        constraints=[{"type": "ineq", "fun": lambda w: 1.0 - w.sum()}],
        method="SLSQP",
        options={"ftol": 1e-15, "maxiter": 1000},
    )
    return result.x


@pytest.mark.parametrize("seed", range(4))
def test_allocate_reaches_the_mean_variance_optimum(seed):
    rng = np.random.default_rng(seed)
    n = 5
    mu = rng.normal(0.01, 0.02, n)
    sigma = rng.uniform(0.02, 0.06, n)
    a = rng.normal(size=(n, n))
    corr = np.corrcoef(a @ a.T + np.eye(n) * n)
    config = AllocatorConfig(
        min_allocation=0.05,
        max_allocation=0.6,
        risk_aversion=4.0,
        rebalance_threshold=0.0,
        max_step=1.0,
        iterations=2000,
    )
    p_positive = np.full(n, 0.5)
    out = allocate(mu, sigma, corr, np.full(n, 0.2), p_positive, config)
    cov = corr * np.outer(sigma, sigma)
    reference = _scipy_utility(mu, cov, 4.0, np.full(n, 0.05), np.full(n, 0.6))

    def utility(w):
        return mu @ w - 4.0 * w @ cov @ w

    assert utility(out.weights) >= utility(reference) - 1e-8
    assert out.weights.sum() <= 1.0 + 1e-9


def _config(**overrides):
    base = dict(
        min_allocation=0.1,
        max_allocation=0.6,
        risk_aversion=2.0,
        rebalance_threshold=0.0,
        max_step=1.0,
    )
    base.update(overrides)
    return AllocatorConfig(**base)


def test_bounds_total_and_the_constraints_named():
    mu = np.array([0.05, 0.04, -0.001])
    sigma = np.full(3, 0.02)
    out = allocate(mu, sigma, np.eye(3), np.full(3, 1 / 3), np.full(3, 0.5), _config())
    assert out.weights.max() <= 0.6 + 1e-9 and out.weights.min() >= 0.1 - 1e-9
    assert out.weights.sum() <= 1.0 + 1e-9
    assert "max_allocation:0" in out.bounds_hit
    assert "min_allocation:2" in out.bounds_hit
    assert "total" in out.bounds_hit


def test_max_step_makes_changes_gradual_and_keeps_the_total():
    mu = np.array([0.1, -0.01, -0.01])
    previous = np.array([0.1, 0.45, 0.45])
    out = allocate(
        mu, np.full(3, 0.02), np.eye(3), previous, np.full(3, 0.5), _config(max_step=0.05)
    )
    assert np.abs(out.weights - previous).max() <= 0.05 + 1e-12
    assert out.weights[0] == pytest.approx(0.15)
    assert out.weights.sum() <= 1.0 + 1e-9
    assert "max_step" in out.bounds_hit
    # Rises into a full book are scaled down so the total stays ≤ 1.
    out = allocate(
        np.array([-0.1, 0.1, 0.1]),
        np.full(3, 0.02),
        np.eye(3),
        np.array([1.0, 0.0, 0.0]),
        np.full(3, 0.5),
        _config(min_allocation=0.0, max_step=0.3),
    )
    assert out.weights.sum() <= 1.0 + 1e-9
    assert out.weights[0] == pytest.approx(0.7)


def test_rebalance_threshold_keeps_small_changes_out():
    previous = np.array([0.3, 0.3, 0.3])
    mu = np.array([0.0101, 0.01, 0.0099])
    out = allocate(
        mu,
        np.full(3, 0.05),
        np.eye(3),
        previous,
        np.full(3, 0.5),
        _config(rebalance_threshold=0.2),
    )
    assert out.weights.tolist() == previous.tolist()
    assert "rebalance_threshold" in out.bounds_hit
    assert not np.allclose(out.target, previous)


def test_switch_off_at_confident_negative_and_back_on_with_hysteresis():
    mu = np.array([0.01, 0.01])
    config = _config(switch_off_probability=0.8, switch_on_probability=0.6)
    out = allocate(
        mu, np.full(2, 0.02), np.eye(2), np.array([0.5, 0.5]), np.array([0.5, 0.15]), config
    )
    assert out.weights[1] == 0.0 and out.switched_off.tolist() == [False, True]
    assert "switched_off:1" in out.bounds_hit
    # 0.5 is not confident enough to come back…
    again = allocate(
        mu,
        np.full(2, 0.02),
        np.eye(2),
        out.weights,
        np.array([0.5, 0.5]),
        config,
        switched_off=out.switched_off,
    )
    assert again.weights[1] == 0.0
    # …0.65 is.
    back = allocate(
        mu,
        np.full(2, 0.02),
        np.eye(2),
        again.weights,
        np.array([0.5, 0.65]),
        config,
        switched_off=again.switched_off,
    )
    assert back.weights[1] >= 0.1 and "switched_on:1" in back.bounds_hit


def test_diversified_top_k_skips_the_redundant_strategy():
    score = np.array([1.0, 0.95, 0.5])
    corr = np.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.0], [0.0, 0.0, 1.0]])
    assert diversified_top_k(score, corr, 2, penalty=1.0).tolist() == [0, 2]
    assert diversified_top_k(score, corr, 2, penalty=0.0).tolist() == [0, 1]
    # "sum" adds the redundancies up: with two picks, the third pays for both.
    score = np.array([1.0, 0.9, 0.8, 0.7])
    corr = np.eye(4)
    corr[2, 0] = corr[0, 2] = corr[2, 1] = corr[1, 2] = 0.08
    assert diversified_top_k(score, corr, 3, 1.0, "max").tolist() == [0, 1, 2]
    assert diversified_top_k(score, corr, 3, 1.0, "sum").tolist() == [0, 1, 3]
    out = allocate(
        np.array([0.03, 0.029, 0.012]),
        np.full(3, 0.02),
        np.array([[1.0, 0.95, 0.0], [0.95, 1.0, 0.0], [0.0, 0.0, 1.0]]),
        np.full(3, 0.3),
        np.full(3, 0.6),
        _config(top_k=2, correlation_penalty=1.0),
        names=["a", "b", "c"],
    )
    assert out.weights[1] == 0.0 and "top_k_excluded:b" in out.bounds_hit


def test_allocator_config_refuses_bad_values():
    with pytest.raises(ValueError, match="min_allocation"):
        AllocatorConfig(min_allocation=0.7, max_allocation=0.6)
    with pytest.raises(ValueError, match="max_step"):
        AllocatorConfig(max_step=0.0)
    with pytest.raises(ValueError, match="redundancy"):
        AllocatorConfig(redundancy="mean")  # type: ignore[arg-type]


# -- quantile model and calibration ----------------------------------------------------------------


def _heteroscedastic(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3))
    scale = 0.01 + 0.02 * np.abs(x[:, 1])
    y = 0.01 * x[:, 0] + scale * rng.standard_t(5, size=n)
    return x, y


def test_quantile_model_is_monotone_and_calibrated_out_of_sample(tmp_path):
    x, y = _heteroscedastic(6_000, 0)
    train, calibrate, test = slice(0, 2_000), slice(2_000, 4_000), slice(4_000, 6_000)
    quantiles = QuantileReturnModel(n_estimators=80).fit(x[train], y[train])
    held_out = quantiles.predict(x[calibrate])
    assert np.all(np.diff(held_out.values, axis=1) >= 0.0)
    interval = ConformalInterval(0.8).fit(
        held_out.values[:, 0], held_out.values[:, -1], y[calibrate]
    )
    raw = raw_positive_probability(held_out.values, quantiles.levels)
    probability = PositiveProbability().fit(raw, (y[calibrate] > 0).astype(float))
    model = MetaModel(quantiles, interval, probability, ["a", "b", "c"], 5, 0)
    forecast = model.forecast(x[test])
    covered = (forecast.lower <= y[test]) & (y[test] <= forecast.upper)
    assert abs(covered.mean() - 0.8) < 0.03
    ece = expected_calibration_error(forecast.p_positive, (y[test] > 0).astype(int))
    assert ece < 0.05
    # The interval widens where the noise does (feature 1), and σ with it.
    wide = np.abs(x[test, 1]) > 1.0
    assert forecast.sigma[wide].mean() > 1.5 * forecast.sigma[~wide].mean()
    path = model.save(tmp_path / "meta.json")
    loaded = MetaModel.load(path)
    assert loaded.version_ == model.version_ and loaded.version_.startswith("meta-")
    np.testing.assert_array_equal(loaded.forecast(x[test]).upper, forecast.upper)


def test_rearrangement_reports_crossing():
    x, y = _heteroscedastic(400, 1)
    model = QuantileReturnModel(n_estimators=5, min_child_samples=10).fit(x, y)
    model.boosters_ = list(reversed(model.boosters_))  # q90's booster predicts "q10": crossing
    prediction = model.predict(x[:50])
    assert np.all(np.diff(prediction.values, axis=1) >= 0.0)
    assert prediction.crossing.max() > 0.0


def test_model_load_names_the_problem(tmp_path):
    from grodt.core.errors import ConfigError

    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "other"}')
    with pytest.raises(ConfigError, match=r"bad\.json: format 'other'"):
        MetaModel.load(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        MetaModel.load(tmp_path / "missing.json")


# -- health ----------------------------------------------------------------------------------------


def _forecast(**overrides):
    n = 2
    values = dict(
        mu=np.full(n, 0.01),
        lower=np.full(n, -0.02),
        upper=np.full(n, 0.04),
        sigma=np.full(n, 0.023),
        p_positive=np.full(n, 0.6),
        crossing=np.zeros(n),
    )
    values.update(overrides)
    return Forecast(**values)


def test_health_checks_give_their_reasons():
    config = HealthConfig(max_model_age_days=10, drift_window=5)
    day = 86_400 * 10**9
    assert forecast_problem(_forecast(), config, 5 * day, 0) == ""
    assert forecast_problem(_forecast(), config, 11 * day, 0) == "stale_model"
    assert forecast_problem(_forecast(mu=np.array([np.nan, 0.0])), config, 0, 0) == "nan_prediction"
    assert (
        forecast_problem(_forecast(crossing=np.array([0.0, 0.2])), config, 0, 0)
        == "crossing_quantiles"
    )
    assert (
        forecast_problem(_forecast(sigma=np.array([0.9, 0.1])), config, 0, 0)
        == "sigma_out_of_range"
    )
    # A zero-width interval (a strategy that never trades) is a forecast, not a fault.
    assert forecast_problem(_forecast(sigma=np.array([0.0, 0.1])), config, 0, 0) == ""
    monitor = CoverageMonitor(0.8, window=5)
    monitor.observe(np.zeros(5), np.ones(5), np.full(5, 2.0))  # nothing covered
    assert monitor.coverage == 0.0
    assert forecast_problem(_forecast(), config, 0, 0, monitor) == "calibration_drift"


# -- bandit ----------------------------------------------------------------------------------------


def test_allocation_actions_respect_the_bounds():
    actions = allocation_actions(np.array([0.3, 0.3, 0.4]), 0.1, 0.6)
    assert actions.shape == (5, 3)
    assert np.all(actions.sum(axis=1) <= 1.0 + 1e-12)
    assert actions[2].tolist() == pytest.approx([0.6, 0.2, 0.2])
    assert np.all(actions[2:] >= 0.1 - 1e-12) and np.all(actions <= 0.6 + 1e-12)


def test_bandit_logs_the_distribution_it_samples_from_and_is_seedable():
    def run(seed):
        bandit = LinearThompsonBandit(4, 2, exploration=0.1, seed=seed)
        rng = np.random.default_rng(99)
        log = []
        for _ in range(60):
            context = rng.normal(size=2)
            choice = bandit.choose(context)
            assert choice.action_probabilities.sum() == pytest.approx(1.0)
            assert choice.propensity == choice.action_probabilities[choice.action_index]
            assert choice.action_probabilities.min() >= 0.1 / 4 - 1e-12
            # Action 2 pays when the first context value is positive, the others never.
            reward = 0.02 * (choice.action_index == 2) * np.sign(context[0]) + rng.normal(0, 0.005)
            bandit.update(choice.action_index, context, reward)
            log.append(choice.action_index)
        return log, bandit

    first, bandit = run(3)
    assert run(3)[0] == first
    assert run(4)[0] != first
    assert len(set(first)) > 1  # it explores
    # It learnt the context: action 2 when context[0] > 0, something else when < 0.
    p_up = bandit.probabilities(np.array([1.5, 0.0]))
    p_down = bandit.probabilities(np.array([-1.5, 0.0]))
    assert p_up[2] > 0.6 > p_down[2]


def test_without_exploration_the_logged_distribution_is_thompson_sampling_s_own():
    # ε = 0 (the default): an action that wins no posterior draw has probability exactly 0 (no
    # floor), and the action is drawn from the logged distribution.
    bandit = LinearThompsonBandit(4, 1, seed=5)
    assert bandit.exploration == 0.0
    for _ in range(200):
        bandit.update(2, np.array([1.0]), 0.05)
        bandit.update(0, np.array([1.0]), -0.05)
    for _ in range(20):
        choice = bandit.choose(np.array([1.0]))
        p = choice.action_probabilities
        assert p[0] == 0.0 and p.sum() == pytest.approx(1.0)
        assert choice.action_index != 0 and choice.propensity == p[choice.action_index] > 0
    with pytest.raises(ValueError, match=r"exploration must be in \[0, 1\], was 1.5"):
        LinearThompsonBandit(4, 1, exploration=1.5)


def test_greedy_takes_the_best_posterior_mean_without_a_draw():
    bandit = LinearThompsonBandit(3, 1, exploration=0.05, seed=1)
    bandit.update(1, np.array([1.0]), 0.01)
    bandit.update(2, np.array([1.0]), 0.02)
    twin = LinearThompsonBandit(3, 1, exploration=0.05, seed=1)
    twin.update(1, np.array([1.0]), 0.01)
    twin.update(2, np.array([1.0]), 0.02)
    greedy = bandit.greedy(np.array([1.0]))
    assert greedy.action_index == 2 and greedy.propensity == 1.0
    assert greedy.action_probabilities.tolist() == [0.0, 0.0, 1.0]
    # The random stream is untouched: the next sampled choice is the twin's.
    choice, twin_choice = bandit.choose(np.array([1.0])), twin.choose(np.array([1.0]))
    assert choice.action_index == twin_choice.action_index
    assert choice.action_probabilities.tolist() == twin_choice.action_probabilities.tolist()


def test_a_frozen_bandit_policy_chooses_greedily_and_says_so():
    names = ["a", "b"]
    policy = MetaPolicy(
        "bandit",
        names,
        np.array([0.5, 0.5]),
        AllocatorConfig(),
        HealthConfig(),
        bandit_features=1,
        bandit_exploration=0.05,
    )
    rows = np.zeros((2, len(feature_names())))
    free = policy.decide(rows, np.array([0.3]), np.eye(2), np.array([0.5, 0.5]), 0)
    assert not free.exploration_frozen and min(free.action_probabilities) >= 0.05 / 4
    frozen = policy.decide(
        rows,
        np.array([0.3]),
        np.eye(2),
        free.weights,
        1,
        realised_portfolio_return=0.01,
        exploration_frozen=True,
    )
    assert frozen.exploration_frozen and frozen.policy == "bandit"
    assert frozen.propensity == 1.0 and sorted(frozen.action_probabilities) == [0, 0, 0, 1.0]
    # Learnt from the first window: the action it took is the only one with a positive mean.
    assert frozen.action_index == free.action_index


# -- online retraining -----------------------------------------------------------------------------


def test_online_fits_are_deterministic_warm_started_and_bounded(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, len(feature_names())))
    y = 0.01 * x[:, 0] + rng.normal(0, 0.01, 200)
    config = MetaRetrainConfig(
        window=10, every=2, min_child_samples=10, warm_trees=5, max_trees=200
    )
    payload = RetrainPayload(x, y, 123, 5, config)
    cold = fit_meta_online(payload, None)
    assert cold.version_ == fit_meta_online(payload, None).version_  # bit for bit
    assert cold.quantiles.n_trees == 150 and cold.trained_until_ns == 123
    warm = fit_meta_online(payload, MetaModel.load(cold.save(tmp_path / "m.json")))
    assert warm.quantiles.n_trees == 155 and warm.version_ != cold.version_
    small = fit_meta_online(RetrainPayload(x, y, 1, 5, replace(config, max_trees=150)), cold)
    assert small.quantiles.n_trees == 150  # at max_trees: cold again
    with pytest.raises(RefitError, match="30 rows are too few"):
        fit_meta_online(RetrainPayload(x[:30], y[:30], 1, 5, config), None)
    with pytest.raises(ConfigError, match=r"retrain\.lag_bars: must be below every=2"):
        MetaRetrainConfig(every=2, lag=2)


# -- policy ----------------------------------------------------------------------------------------


def test_predictive_policy_without_a_model_falls_back_to_static():
    policy = MetaPolicy(
        "predictive", ["a", "b"], np.array([0.5, 0.5]), AllocatorConfig(), HealthConfig()
    )
    rows = np.zeros((2, len(feature_names())))
    decision = policy.decide(rows, np.zeros(0), np.eye(2), np.array([0.5, 0.5]), 0)
    assert decision.policy == "static" and decision.fallback_reason == "model_missing"
    assert decision.weights.tolist() == [0.5, 0.5]
    sharpe = MetaPolicy(
        "trailing_sharpe", ["a", "b"], np.array([0.5, 0.5]), AllocatorConfig(), HealthConfig()
    )
    rows[1, 1] = 0.3
    assert sharpe.decide(rows, np.zeros(0), np.eye(2), np.zeros(2), 0).weights.tolist() == [
        0.0,
        1.0,
    ]
    with pytest.raises(ValueError, match="policy must be one of"):
        MetaPolicy("greedy", ["a"], np.ones(1), AllocatorConfig(), HealthConfig())


def test_a_strategy_that_never_trades_is_not_switched_off():
    # Every target 0 (the strategy was flat in every window): every quantile is 0, the interval
    # has zero width, P(return > 0) is 0 — and yet nothing says its return will be negative.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, len(feature_names())))
    y = np.zeros(300)
    quantiles = QuantileReturnModel(n_estimators=5, min_child_samples=20).fit(x, y)
    held_out = quantiles.predict(x)
    interval = ConformalInterval(0.8).fit(held_out.values[:, 0], held_out.values[:, 2], y)
    probability = PositiveProbability().fit(
        raw_positive_probability(held_out.values, quantiles.levels), (y > 0).astype(float)
    )
    model = MetaModel(quantiles, interval, probability, feature_names(), 5, 0)
    policy = MetaPolicy(
        "predictive",
        ["a", "b"],
        np.array([0.5, 0.5]),
        AllocatorConfig(rebalance_threshold=0.0),
        HealthConfig(max_model_age_days=None),
        model=model,
    )
    decision = policy.decide(x[:2], np.zeros(0), np.eye(2), np.array([0.5, 0.5]), 0)
    assert decision.policy == "predictive" and decision.fallback_reason == ""
    assert decision.predicted["a:p_positive"] == pytest.approx(0.0)
    assert not any(b.startswith("switched_off") for b in decision.bounds_hit)
    assert decision.weights.min() >= 0.1
