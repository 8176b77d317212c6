"""Fitted Q evaluation: the discounted value of a target policy from logged transitions.

FQE (Le, Voloshin & Yue, "Batch Policy Learning under Constraints", 2019) evaluates a sequential
policy (an RL allocator) where one-step estimators cannot: it iterates the target policy's Bellman
operator with a regressor,

    Q_0 = 0,   Q_{k+1} = fit( (s, a) ↦ r + γ (1 − done) Σ_a' π(a'|s') Q_k(s', a') ),

and reports ``V(π) = mean over initial states of Σ_a π(a|s) Q(s, a)``. With one-hot states and a
least-squares regressor (:func:`tabular_states` + ``LinearRegression``) each fit is the per-(s, a)
mean of the targets, so FQE is exact policy evaluation of the log's empirical MDP.

Assumes the logged (s, a) pairs cover what the target policy visits and the regressor class can
represent its Q function; it needs no propensities.
"""

from typing import Any

import numpy as np
from sklearn.base import clone

from research.ope.reward_model import action_design

__all__ = ["FittedQEvaluation", "tabular_states"]


def tabular_states(state_index: np.ndarray, n_states: int) -> np.ndarray:
    """One-hot rows for integer states, shape (n, n_states)."""
    index = np.asarray(state_index)
    if index.ndim != 1 or index.dtype.kind not in "iu" or index.min() < 0:
        raise ValueError("state_index must be a 1-D array of non-negative integers")
    if index.max() >= n_states:
        raise ValueError(f"state_index holds {index.max()}, n_states is {n_states}")
    return np.eye(n_states)[index]


def _default_regressor() -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=200,
        learning_rate=0.1,
        num_leaves=15,
        min_child_samples=5,
        n_jobs=1,
        deterministic=True,
        random_state=0,
        verbose=-1,
    )


class FittedQEvaluation:
    """Discounted FQE of a target policy.

    Parameters
    ----------
    regressor : sklearn regressor, optional
        Refitted (cloned) each iteration on ``[s, onehot(a), s ⊗ onehot(a)]``
        (:func:`research.ope.reward_model.action_design`); default a small LightGBM regressor.
    gamma : float, default 0.99
        Discount per step, in [0, 1).
    max_iterations : int, default 500
    tol : float, default 1e-9
        Stop when no logged Q value moved by more than this in one iteration.

    Attributes
    ----------
    model_ : the last fitted regressor (``Q``)
    n_actions_ : int
    n_iter_ : int
        Iterations run.
    converged_ : bool
    """

    def __init__(
        self,
        regressor: Any = None,
        gamma: float = 0.99,
        max_iterations: int = 500,
        tol: float = 1e-9,
    ) -> None:
        self.regressor = regressor
        self.gamma = gamma
        self.max_iterations = max_iterations
        self.tol = tol

    def fit(
        self,
        state: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_state: np.ndarray,
        done: np.ndarray,
        next_action_dist: np.ndarray,
    ) -> "FittedQEvaluation":
        """Fit ``Q`` of the target policy on logged transitions.

        Parameters
        ----------
        state, next_state : np.ndarray
            (n, d) float state features before and after each step.
        action : np.ndarray
            (n,) int, the logged actions (columns of ``next_action_dist``).
        reward : np.ndarray
            (n,) float, the step's reward.
        done : np.ndarray
            (n,) bool, True where the episode ended at ``next_state`` (no bootstrap after it).
        next_action_dist : np.ndarray
            (n, n_actions), the *target* policy's action probabilities at ``next_state``.
        """
        if not 0.0 <= self.gamma < 1.0:
            raise ValueError(f"gamma must lie in [0, 1), got {self.gamma!r}")
        s = np.asarray(state, dtype=float)
        s_next = np.asarray(next_state, dtype=float)
        a = np.asarray(action)
        r = np.asarray(reward, dtype=float)
        terminal = np.asarray(done, dtype=bool)
        pi_next = np.asarray(next_action_dist, dtype=float)
        if s.ndim != 2 or s_next.shape != s.shape:
            raise ValueError(
                f"state and next_state must be (n, d) of one shape; have {s.shape}, {s_next.shape}"
            )
        n = s.shape[0]
        for name, array in (("action", a), ("reward", r), ("done", terminal)):
            if array.shape != (n,):
                raise ValueError(f"{name} must be ({n},), has shape {array.shape}")
        if pi_next.ndim != 2 or pi_next.shape[0] != n:
            raise ValueError(f"next_action_dist must be ({n}, n_actions), has {pi_next.shape}")
        if np.abs(pi_next.sum(axis=1) - 1.0).max() > 1e-6 or (pi_next < 0).any():
            raise ValueError("rows of next_action_dist must be probabilities summing to 1")
        n_actions = pi_next.shape[1]
        if a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= n_actions:
            raise ValueError(f"action must be integers in [0, {n_actions})")
        base = self.regressor if self.regressor is not None else _default_regressor()
        design = action_design(s, a, n_actions)
        next_designs = [
            action_design(s_next, np.full(n, candidate), n_actions)
            for candidate in range(n_actions)
        ]
        continuing = self.gamma * (~terminal)
        q_logged = np.zeros(n)
        model = None
        self.converged_ = False
        for iteration in range(1, self.max_iterations + 1):
            if model is None:
                next_value = np.zeros(n)
            else:
                q_next = np.column_stack([model.predict(x) for x in next_designs])
                next_value = np.sum(pi_next * q_next, axis=1)
            model = clone(base).fit(design, r + continuing * next_value)
            updated = model.predict(design)
            change = float(np.max(np.abs(updated - q_logged)))
            q_logged = updated
            self.n_iter_ = iteration
            if change <= self.tol:
                self.converged_ = True
                break
        self.model_ = model
        self.n_actions_ = n_actions
        return self

    def predict(self, state: np.ndarray) -> np.ndarray:
        """``Q(s, ·)`` of the target policy, shape (n, n_actions)."""
        if not hasattr(self, "model_"):
            raise ValueError("FittedQEvaluation: call fit first")
        s = np.asarray(state, dtype=float)
        return np.column_stack(
            [
                self.model_.predict(action_design(s, np.full(s.shape[0], c), self.n_actions_))
                for c in range(self.n_actions_)
            ]
        )

    def value(self, initial_state: np.ndarray, initial_action_dist: np.ndarray) -> float:
        """``V(π)``: mean over ``initial_state`` rows of ``Σ_a π(a|s) Q(s, a)``.

        ``initial_action_dist`` is the target policy's (n, n_actions) distribution there.
        """
        q = self.predict(initial_state)
        dist = np.asarray(initial_action_dist, dtype=float)
        if dist.shape != q.shape:
            raise ValueError(f"initial_action_dist has shape {dist.shape}, Q {q.shape}")
        return float(np.mean(np.sum(dist * q, axis=1)))
