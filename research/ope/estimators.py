"""Off-policy estimators of a contextual-bandit policy's value, with obp's conventions.

Inputs, one row per logged round ``i`` (numpy arrays or anything ``np.asarray`` takes):

- ``reward`` (n,) float: the reward observed for the logged action;
- ``action`` (n,) int in ``[0, n_actions)``: the logged action;
- ``pscore`` (n,) float in ``(0, 1]``: the logging policy's probability of that action (its
  propensity);
- ``action_dist`` (n, n_actions) float: the *evaluated* policy's action probabilities in the
  round's context (rows sum to 1);
- ``q_hat`` (n, n_actions) float: a reward model's estimate of every action's expected reward in
  the round's context (cross-fitted: :mod:`research.ope.reward_model`).

Each estimator returns the estimated value (the evaluated policy's expected reward per round) as a
float, in the reward's unit. Formulas are those of Open Bandit Pipeline (obp 0.5,
``obp.ope.estimators``; obp itself does not install with this stack). With the importance weight
``w_i = action_dist[i, action_i] / pscore_i``:

===============================  ================================================================
``ipw``                          mean(w r)
``snips``                        mean(w r) / mean(w)
``direct_method``                mean(Σ_a π(a|x) q̂(x, a))
``doubly_robust``                DM + mean(w (r − q̂(x, a_i)))
``self_normalized_doubly_robust`` DM + mean(w (r − q̂(x, a_i))) / mean(w)
``switch_doubly_robust``         DM + mean(1[w ≤ τ] w (r − q̂(x, a_i)))
===============================  ================================================================
"""

from collections.abc import Sequence

import numpy as np

__all__ = [
    "direct_method",
    "doubly_robust",
    "importance_weights",
    "ipw",
    "self_normalized_doubly_robust",
    "snips",
    "switch_doubly_robust",
]

ArrayLike = np.ndarray | Sequence[float] | Sequence[int]

_ROW_SUM_TOLERANCE = 1e-6


def _vector(values: ArrayLike, name: str, dtype: type = float) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (n,), has shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if dtype is int:
        if array.dtype.kind not in "iu":
            if array.dtype.kind != "f" or not np.all(np.isfinite(array)):
                raise ValueError(f"{name} must hold integers, has dtype {array.dtype}")
            if not np.all(array == np.round(array)):
                first = int(np.flatnonzero(array != np.round(array))[0])
                raise ValueError(f"{name} must hold integers; row {first} is {array[first]!r}")
        return array.astype(np.int64)
    array = array.astype(float)
    bad = ~np.isfinite(array)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"{name} must be finite; {int(bad.sum())} value(s) are not, first row {first}: "
            f"{array[first]!r}"
        )
    return array


def _matrix(values: ArrayLike, name: str, n_rows: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n, n_actions), has shape {array.shape}")
    if array.shape[0] != n_rows:
        raise ValueError(f"{name} has {array.shape[0]} rows, the log has {n_rows}")
    if array.shape[1] == 0:
        raise ValueError(f"{name} has no action columns")
    bad = ~np.isfinite(array)
    if bad.any():
        row, column = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must be finite; [{row}, {column}] is {array[row, column]!r}")
    return array


def _action_dist(action_dist: ArrayLike, n_rows: int) -> np.ndarray:
    dist = _matrix(action_dist, "action_dist", n_rows)
    outside = (dist < 0.0) | (dist > 1.0)
    if outside.any():
        row, column = (int(i) for i in np.argwhere(outside)[0])
        raise ValueError(
            f"action_dist must lie in [0, 1]; [{row}, {column}] is {dist[row, column]!r}"
        )
    sums = dist.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1.0) > _ROW_SUM_TOLERANCE)
    if off.size:
        raise ValueError(
            f"rows of action_dist must sum to 1; {off.size} do not, first row {off[0]} sums to "
            f"{sums[off[0]]!r}"
        )
    return dist


def _logged(
    reward: ArrayLike | None,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (reward, action, pscore, action_dist) of one log."""
    action_array = _vector(action, "action", dtype=int)
    n = action_array.size
    pscore_array = _vector(pscore, "pscore")
    reward_array = None if reward is None else _vector(reward, "reward")
    for name, array in (("pscore", pscore_array), ("reward", reward_array)):
        if array is not None and array.size != n:
            raise ValueError(f"{name} has {array.size} rows, action {n}")
    outside = (pscore_array <= 0.0) | (pscore_array > 1.0)
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise ValueError(
            f"pscore must lie in (0, 1]; {int(outside.sum())} value(s) do not, first row "
            f"{first}: {pscore_array[first]!r}"
        )
    dist = _action_dist(action_dist, n)
    n_actions = dist.shape[1]
    if action_array.min() < 0 or action_array.max() >= n_actions:
        first = int(np.flatnonzero((action_array < 0) | (action_array >= n_actions))[0])
        raise ValueError(
            f"action must lie in [0, {n_actions}) (the columns of action_dist); row {first} is "
            f"{action_array[first]}"
        )
    return reward_array, action_array, pscore_array, dist


def importance_weights(action: ArrayLike, pscore: ArrayLike, action_dist: ArrayLike) -> np.ndarray:
    """``w_i = action_dist[i, action_i] / pscore_i``, shape (n,)."""
    _, action_array, pscore_array, dist = _logged(None, action, pscore, action_dist)
    return dist[np.arange(action_array.size), action_array] / pscore_array


def _weights(action: np.ndarray, pscore: np.ndarray, dist: np.ndarray) -> np.ndarray:
    return dist[np.arange(action.size), action] / pscore


def _direct_terms(dist: np.ndarray, q_hat: np.ndarray) -> np.ndarray:
    return np.sum(dist * q_hat, axis=1)


def ipw(reward: ArrayLike, action: ArrayLike, pscore: ArrayLike, action_dist: ArrayLike) -> float:
    """Inverse propensity weighting: ``mean(w r)``.

    Unbiased when every action the evaluated policy may take has a positive logged propensity
    (and the propensities are the true ones); its variance grows with the weights.
    """
    r, a, p, dist = _logged(reward, action, pscore, action_dist)
    return float(np.mean(_weights(a, p, dist) * r))


def snips(reward: ArrayLike, action: ArrayLike, pscore: ArrayLike, action_dist: ArrayLike) -> float:
    """Self-normalised IPW: ``Σ w r / Σ w``.

    Biased for finite n but consistent, bounded by the rewards' range, and equivariant to a shift
    of the rewards (``snips(r + c) = snips(r) + c``), which IPW is not.
    """
    r, a, p, dist = _logged(reward, action, pscore, action_dist)
    weights = _weights(a, p, dist)
    total = weights.sum()
    if total <= 0.0:
        raise ValueError(
            "snips: every importance weight is 0 (the evaluated policy never takes a logged "
            "action); the estimate is undefined"
        )
    return float(np.sum(weights * r) / total)


def direct_method(action_dist: ArrayLike, q_hat: ArrayLike) -> float:
    """Direct method: ``mean(Σ_a π(a|x) q̂(x, a))``.

    Uses no logged reward; exactly as good as the reward model (biased where it is).
    """
    n_rows = np.shape(action_dist)[0] if np.ndim(action_dist) >= 1 else 0
    dist = _action_dist(action_dist, n_rows)
    q = _matrix(q_hat, "q_hat", dist.shape[0])
    if q.shape != dist.shape:
        raise ValueError(f"q_hat has shape {q.shape}, action_dist {dist.shape}")
    return float(np.mean(_direct_terms(dist, q)))


def _with_model(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    q_hat: ArrayLike,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(weights, residual r − q̂(x, a_i), direct terms, reward) of a validated log."""
    r, a, p, dist = _logged(reward, action, pscore, action_dist)
    q = _matrix(q_hat, "q_hat", a.size)
    if q.shape != dist.shape:
        raise ValueError(f"q_hat has shape {q.shape}, action_dist {dist.shape}")
    residual = r - q[np.arange(a.size), a]
    return _weights(a, p, dist), residual, _direct_terms(dist, q), r


def doubly_robust(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    q_hat: ArrayLike,
) -> float:
    """Doubly robust: ``DM + mean(w (r − q̂(x, a_i)))``.

    Unbiased when either the propensities or the reward model are right; with ``q_hat = 0`` it is
    IPW.
    """
    weights, residual, direct, _ = _with_model(reward, action, pscore, action_dist, q_hat)
    return float(np.mean(direct + weights * residual))


def self_normalized_doubly_robust(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    q_hat: ArrayLike,
) -> float:
    """Self-normalised DR: ``DM + mean(w (r − q̂(x, a_i))) / mean(w)``; with ``q_hat = 0`` SNIPS."""
    weights, residual, direct, _ = _with_model(reward, action, pscore, action_dist, q_hat)
    mean_weight = weights.mean()
    if mean_weight <= 0.0:
        raise ValueError(
            "self_normalized_doubly_robust: every importance weight is 0; the correction is "
            "undefined"
        )
    return float(np.mean(direct + weights * residual / mean_weight))


def switch_doubly_robust(
    reward: ArrayLike,
    action: ArrayLike,
    pscore: ArrayLike,
    action_dist: ArrayLike,
    q_hat: ArrayLike,
    tau: float,
) -> float:
    """Switch-DR (obp's form): ``DM + mean(1[w ≤ τ] w (r − q̂(x, a_i)))``.

    Rounds whose importance weight exceeds ``tau`` keep only the model's estimate, trading the
    variance of large weights for the model's bias: ``tau = 0`` gives DM, ``tau = ∞`` DR.
    """
    if not tau >= 0.0:
        raise ValueError(f"tau must be >= 0 (np.inf for DR), got {tau!r}")
    weights, residual, direct, _ = _with_model(reward, action, pscore, action_dist, q_hat)
    switch = weights <= tau
    return float(np.mean(direct + switch * weights * residual))
