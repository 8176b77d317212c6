"""Every estimator on one log, with intervals, diagnostics and the logged policy's own value.

:func:`evaluate_policy` is what ``grodt ope evaluate`` prints and what the synthetic validation
scores: each estimator of :data:`ESTIMATORS` with a percentile bootstrap interval, the logged
policy's realised value (the mean logged reward, with its interval), the effective sample size and
the overlap warnings (:func:`research.ope.diagnostics.overlap_diagnostics`).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from research.ope.bootstrap import ConfidenceInterval
from research.ope.bootstrap import bootstrap_ci
from research.ope.diagnostics import OverlapReport
from research.ope.diagnostics import overlap_diagnostics
from research.ope.estimators import direct_method
from research.ope.estimators import doubly_robust
from research.ope.estimators import ipw
from research.ope.estimators import self_normalized_doubly_robust
from research.ope.estimators import snips
from research.ope.estimators import switch_doubly_robust
from research.ope.reward_model import CrossFittedRewardModel

__all__ = ["ESTIMATORS", "OpeEstimate", "OpeReport", "estimate_all", "evaluate_policy"]

ESTIMATORS: tuple[str, ...] = ("ipw", "snips", "dm", "dr", "sndr", "switch_dr")


@dataclass(frozen=True)
class OpeEstimate:
    """One estimator's estimate and its bootstrap interval."""

    estimator: str
    estimate: float
    lower: float
    upper: float


def estimate_all(
    context: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    tau: float = 5.0,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    n_folds: int = 5,
    random_state: int | None = 0,
    regressor: Any = None,
) -> list[OpeEstimate]:
    """Every estimator of :data:`ESTIMATORS` on one log, with percentile bootstrap intervals.

    ``q_hat`` is cross-fitted once on the whole log (:class:`CrossFittedRewardModel` with
    ``regressor``, LightGBM by default)
    and resampled with the rounds; refitting it per resample would widen the DM/DR intervals by
    the model's own variance, which these intervals therefore leave out.
    """
    n_actions = action_dist.shape[1]
    q_hat = CrossFittedRewardModel(regressor=regressor, n_folds=n_folds).fit_predict(
        context, action, reward, n_actions
    )
    logged = (reward, action, pscore, action_dist)
    runs: dict[str, tuple[Callable[..., float], tuple, dict]] = {
        "ipw": (ipw, logged, {}),
        "snips": (snips, logged, {}),
        "dm": (direct_method, (action_dist, q_hat), {}),
        "dr": (doubly_robust, (*logged, q_hat), {}),
        "sndr": (self_normalized_doubly_robust, (*logged, q_hat), {}),
        "switch_dr": (switch_doubly_robust, (*logged, q_hat), {"tau": tau}),
    }
    results = []
    for name, (estimator, args, kwargs) in runs.items():
        interval = bootstrap_ci(
            estimator,
            *args,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            random_state=random_state,
            **kwargs,
        )
        results.append(OpeEstimate(name, interval.estimate, interval.lower, interval.upper))
    return results


def _mean(reward: np.ndarray) -> float:
    return float(np.mean(reward))


@dataclass(frozen=True)
class OpeReport:
    """An evaluated policy on one log.

    Attributes
    ----------
    estimates : list[OpeEstimate]
        One per estimator, in :data:`ESTIMATORS` order.
    logged_value : ConfidenceInterval
        The logging policy's realised value: the mean logged reward, with its bootstrap interval.
    overlap : OverlapReport
    n_rounds : int
    alpha : float
    """

    estimates: list[OpeEstimate]
    logged_value: ConfidenceInterval
    overlap: OverlapReport
    n_rounds: int
    alpha: float


def evaluate_policy(
    context: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    logging_action_dist: np.ndarray | None = None,
    tau: float = 5.0,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    n_folds: int = 5,
    random_state: int | None = 0,
    regressor: Any = None,
) -> OpeReport:
    """Estimates, logged value and overlap of ``action_dist`` on one log (shapes as in
    :mod:`research.ope.estimators`; ``context`` (n, d) feeds the reward model)."""
    n = int(np.asarray(action).size)
    if n < 2:
        raise ValueError(f"a log of {n} round(s) cannot be evaluated (need at least 2)")
    estimates = estimate_all(
        context,
        action,
        reward,
        pscore,
        action_dist,
        tau=tau,
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        n_folds=min(n_folds, n),
        random_state=random_state,
        regressor=regressor,
    )
    logged = bootstrap_ci(
        _mean,
        np.asarray(reward, dtype=float),
        n_bootstrap=n_bootstrap,
        alpha=alpha,
        random_state=random_state,
    )
    overlap = overlap_diagnostics(action, pscore, action_dist, logging_action_dist)
    return OpeReport(
        estimates=estimates, logged_value=logged, overlap=overlap, n_rounds=n, alpha=alpha
    )
