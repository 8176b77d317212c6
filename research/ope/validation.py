"""OPE against ground truth on the synthetic market: bias, RMSE and interval coverage over seeds.

Per seed: generate the synthetic market (:func:`catalogs.synthetic.generate_market`), build the
allocation bandit (:func:`research.ope.market_bandit.allocation_bandit`), let a known stochastic
*logger* choose one allocation per round (its propensities logged), estimate a different *target*
allocator's value from that log with every estimator (bootstrap intervals; DM/DR family on a
cross-fitted LightGBM reward model), then run the target for real on the same rounds: its true
expected value ``mean Σ_a π(a|x) r(a)`` (every action's reward is known) and the realised mean of
one sampled run. The logger's own value and equal weight held every round (the always-on
baseline) stand beside it.
"""

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market
from research.ope.diagnostics import overlap_diagnostics
from research.ope.evaluate import estimate_all
from research.ope.market_bandit import AllocationBandit
from research.ope.market_bandit import allocation_bandit
from research.ope.policies import LinearEpsilonGreedyPolicy
from research.ope.policies import LinearSoftmaxPolicy
from research.ope.policies import sample_actions

__all__ = [
    "contrarian_target",
    "momentum_logger",
    "summarise_validation",
    "validate_on_synthetic_market",
]


def momentum_logger(bandit: AllocationBandit, temperature: float = 1.0) -> LinearSoftmaxPolicy:
    """Softmax over each allocation's exposure to the instruments' momentum z-scores."""
    n_instruments = bandit.allocations.shape[1]
    coef = np.zeros((bandit.context.shape[1], bandit.allocations.shape[0]))
    coef[:n_instruments] = bandit.allocations.T
    return LinearSoftmaxPolicy(coef=coef, temperature=temperature)


def contrarian_target(bandit: AllocationBandit, epsilon: float = 0.1) -> LinearEpsilonGreedyPolicy:
    """ε-greedy on the opposite score: the allocation most exposed to recent losers."""
    n_instruments = bandit.allocations.shape[1]
    coef = np.zeros((bandit.context.shape[1], bandit.allocations.shape[0]))
    coef[:n_instruments] = -bandit.allocations.T
    return LinearEpsilonGreedyPolicy(coef=coef, epsilon=epsilon)


def validate_on_synthetic_market(
    seeds: Iterable[int],
    days: int = 60,
    window_bars: int = 65,
    lookback_bars: int = 130,
    logger_temperature: float = 1.0,
    target_epsilon: float = 0.1,
    tau: float = 5.0,
    n_bootstrap: int = 500,
    alpha: float = 0.05,
    regressor: Any = None,
) -> pd.DataFrame:
    """One row per (seed, estimator).

    Columns: ``seed, estimator, estimate, lower, upper, truth`` (the target's true expected value
    on the seed's rounds), ``realised`` (the mean reward of one sampled run of the target),
    ``logger_value``, ``equal_weight_value`` (always-on baseline), ``n_rounds``, ``ess``,
    ``max_weight``. Rewards are fractions per window. ``regressor``: the reward model's sklearn
    regressor (default LightGBM).
    """
    rows = []
    for seed in seeds:
        market = generate_market(SyntheticParams(days=days, seed=seed))
        bandit = allocation_bandit(
            market.frames, window_bars=window_bars, lookback_bars=lookback_bars
        )
        logger_dist = momentum_logger(bandit, logger_temperature).action_dist(bandit.context)
        target_dist = contrarian_target(bandit, target_epsilon).action_dist(bandit.context)
        rng = np.random.default_rng(seed)
        action, pscore = sample_actions(logger_dist, rng)
        n = action.size
        reward = bandit.rewards[np.arange(n), action]
        target_action, _ = sample_actions(target_dist, rng)
        overlap = overlap_diagnostics(action, pscore, target_dist, logging_action_dist=logger_dist)
        common = {
            "seed": seed,
            "truth": bandit.value(target_dist),
            "realised": float(bandit.rewards[np.arange(n), target_action].mean()),
            "logger_value": bandit.value(logger_dist),
            "equal_weight_value": float(bandit.rewards[:, 1].mean()),
            "n_rounds": n,
            "ess": overlap.effective_sample_size,
            "max_weight": overlap.max_importance_weight,
        }
        for result in estimate_all(
            bandit.context,
            action,
            reward,
            pscore,
            target_dist,
            tau=tau,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            random_state=seed,
            regressor=regressor,
        ):
            rows.append(
                {
                    **common,
                    "estimator": result.estimator,
                    "estimate": result.estimate,
                    "lower": result.lower,
                    "upper": result.upper,
                }
            )
    return pd.DataFrame(rows)


def summarise_validation(results: pd.DataFrame) -> pd.DataFrame:
    """Per estimator over seeds: bias (and its standard error over seeds), RMSE, interval
    coverage of the truth, mean interval width.

    Bias and RMSE are against ``truth`` (the target's expected value on the same rounds).
    """
    error = results["estimate"] - results["truth"]
    covered = (results["lower"] <= results["truth"]) & (results["truth"] <= results["upper"])
    frame = results.assign(
        error=error,
        squared=error**2,
        covered=covered,
        width=results["upper"] - results["lower"],
    )
    grouped = frame.groupby("estimator", sort=False)
    summary = pd.DataFrame(
        {
            "bias": grouped["error"].mean(),
            "bias_se": grouped["error"].std(ddof=1) / np.sqrt(grouped["error"].count()),
            "rmse": np.sqrt(grouped["squared"].mean()),
            "coverage": grouped["covered"].mean(),
            "mean_width": grouped["width"].mean(),
            "seeds": grouped["seed"].nunique(),
        }
    )
    return summary
