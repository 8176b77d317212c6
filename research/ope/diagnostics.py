"""Can a log support an estimate of a new policy? Effective sample size and overlap warnings.

Importance-weighted estimators (IPW, SNIPS, DR) are only as good as the overlap between the
logging policy and the evaluated one: tiny propensities make huge weights (high variance), and
actions the logger never takes make the estimate biased (no weight can reach them; only a reward
model's extrapolation does).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from research.ope.estimators import importance_weights

__all__ = ["OverlapReport", "effective_sample_size", "overlap_diagnostics"]


def effective_sample_size(weights: np.ndarray | Sequence[float]) -> float:
    """Kish's effective sample size of importance weights: ``(Σ w)² / Σ w²``.

    ``n`` when all weights are equal, 1 when a single round carries all the weight; 0 when every
    weight is 0.
    """
    w = np.asarray(weights, dtype=float)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"weights must be a non-empty 1-D array, has shape {w.shape}")
    if (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite and non-negative")
    squares = float(np.sum(w * w))
    return 0.0 if squares == 0.0 else float(np.sum(w) ** 2 / squares)


@dataclass(frozen=True)
class OverlapReport:
    """Overlap of a log with an evaluated policy.

    Attributes
    ----------
    n_rounds : int
    effective_sample_size : float
        Kish's ESS of the importance weights.
    ess_share : float
        ESS / n_rounds, in [0, 1].
    min_pscore : float
        Smallest logged propensity.
    tiny_pscore_share : float
        Share of rounds whose logged propensity is below the ``tiny_pscore`` threshold.
    max_importance_weight : float
    unsupported_share : float
        Share of rounds where the evaluated policy puts mass on an action the logger never takes
        (in that round's context when the logger's full distribution is known, else anywhere in
        the log).
    unsupported_mass : float
        Mean probability mass the evaluated policy puts on such actions, per round.
    warnings : tuple[str, ...]
        One sentence per problem found (empty: no warning).
    """

    n_rounds: int
    effective_sample_size: float
    ess_share: float
    min_pscore: float
    tiny_pscore_share: float
    max_importance_weight: float
    unsupported_share: float
    unsupported_mass: float
    warnings: tuple[str, ...]


def overlap_diagnostics(
    action: np.ndarray,
    pscore: np.ndarray,
    action_dist: np.ndarray,
    logging_action_dist: np.ndarray | None = None,
    tiny_pscore: float = 0.01,
    max_weight: float = 20.0,
    min_ess_share: float = 0.1,
) -> OverlapReport:
    """Overlap diagnostics of a log (``action``, ``pscore``) for a policy (``action_dist``).

    Parameters
    ----------
    action, pscore, action_dist
        As for the estimators ((n,), (n,), (n, n_actions)).
    logging_action_dist : np.ndarray, optional
        The logger's full (n, n_actions) distribution, when it was logged (the bandit's
        ``action_probabilities``); without it "never takes" means "never taken in this log".
    tiny_pscore, max_weight, min_ess_share : float
        Warning thresholds.
    """
    weights = importance_weights(action, pscore, action_dist)
    dist = np.asarray(action_dist, dtype=float)
    p = np.asarray(pscore, dtype=float)
    n, n_actions = dist.shape
    if logging_action_dist is not None:
        logging = np.asarray(logging_action_dist, dtype=float)
        if logging.shape != dist.shape:
            raise ValueError(
                f"logging_action_dist has shape {logging.shape}, action_dist {dist.shape}"
            )
        unsupported = (dist > 0.0) & (logging <= 0.0)
    else:
        taken = np.zeros(n_actions, dtype=bool)
        taken[np.asarray(action, dtype=np.int64)] = True
        unsupported = (dist > 0.0) & ~taken[None, :]
    unsupported_rows = unsupported.any(axis=1)
    unsupported_mass = float(np.mean(np.sum(np.where(unsupported, dist, 0.0), axis=1)))
    ess = effective_sample_size(weights)
    tiny = p < tiny_pscore
    warnings: list[str] = []
    if tiny.any():
        warnings.append(
            f"{int(tiny.sum())} of {n} rounds ({tiny.mean():.1%}) have a logged propensity below "
            f"{tiny_pscore:g} (smallest {p.min():.3g}): their weights dominate IPW and DR"
        )
    if weights.max() > max_weight:
        warnings.append(
            f"largest importance weight {weights.max():.3g} exceeds {max_weight:g} (round "
            f"{int(np.argmax(weights))}): expect wide intervals; Switch-DR caps such rounds"
        )
    if ess < min_ess_share * n:
        warnings.append(
            f"effective sample size {ess:.1f} is {ess / n:.1%} of the {n} rounds (below "
            f"{min_ess_share:.0%}): the log barely supports this policy"
        )
    if unsupported_rows.any():
        warnings.append(
            f"in {unsupported_rows.mean():.1%} of rounds the policy puts mass on actions the "
            f"logger never takes (mean mass {unsupported_mass:.3f} per round): IPW, SNIPS and DR "
            "cannot see those rewards and are biased; only the reward model (DM) extrapolates"
        )
    return OverlapReport(
        n_rounds=n,
        effective_sample_size=ess,
        ess_share=ess / n,
        min_pscore=float(p.min()),
        tiny_pscore_share=float(tiny.mean()),
        max_importance_weight=float(weights.max()),
        unsupported_share=float(unsupported_rows.mean()),
        unsupported_mass=unsupported_mass,
        warnings=tuple(warnings),
    )
