"""Simple stochastic policies over a discrete action set, for logging and for evaluation.

A policy maps contexts ``(n, d)`` to action probabilities ``(n, n_actions)``
(:meth:`LinearSoftmaxPolicy.action_dist`); :func:`sample_actions` draws from them and returns the
propensities to log. The scores are linear in the context, ``x @ coef + intercept`` with ``coef``
of shape (d, n_actions), so a policy is a few numbers a YAML file can hold (``grodt ope
evaluate --policy``).
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["LinearEpsilonGreedyPolicy", "LinearSoftmaxPolicy", "sample_actions"]


def _scores(context: np.ndarray, coef: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    x = np.asarray(context, dtype=float)
    if x.ndim != 2 or x.shape[1] != coef.shape[0]:
        raise ValueError(
            f"context must be (n, {coef.shape[0]}) (the policy's coef rows), has shape {x.shape}"
        )
    return x @ coef + intercept


def _checked(coef: np.ndarray, intercept: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    c = np.asarray(coef, dtype=float)
    if c.ndim != 2 or c.shape[1] < 1:
        raise ValueError(f"coef must be (d, n_actions), has shape {c.shape}")
    b = np.zeros(c.shape[1]) if intercept is None else np.asarray(intercept, dtype=float)
    if b.shape != (c.shape[1],):
        raise ValueError(f"intercept must be ({c.shape[1]},), has shape {b.shape}")
    return c, b


@dataclass(frozen=True)
class LinearSoftmaxPolicy:
    """``π(a|x) = softmax((x @ coef + intercept) / temperature)``.

    Attributes
    ----------
    coef : np.ndarray
        (d, n_actions).
    intercept : np.ndarray | None
        (n_actions,), default zeros.
    temperature : float
        > 0; small is greedy, large is uniform.
    """

    coef: np.ndarray
    intercept: np.ndarray | None = None
    temperature: float = 1.0

    def action_dist(self, context: np.ndarray) -> np.ndarray:
        if not self.temperature > 0.0:
            raise ValueError(f"temperature must be > 0, got {self.temperature!r}")
        coef, intercept = _checked(self.coef, self.intercept)
        logits = _scores(context, coef, intercept) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        weights = np.exp(logits)
        return weights / weights.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class LinearEpsilonGreedyPolicy:
    """The best-scoring action with probability ``1 − ε + ε/n_actions``, each other ``ε/n_actions``.

    Ties go to the lowest action index.
    """

    coef: np.ndarray
    intercept: np.ndarray | None = None
    epsilon: float = 0.05

    def action_dist(self, context: np.ndarray) -> np.ndarray:
        if not 0.0 <= self.epsilon <= 1.0:
            raise ValueError(f"epsilon must lie in [0, 1], got {self.epsilon!r}")
        coef, intercept = _checked(self.coef, self.intercept)
        scores = _scores(context, coef, intercept)
        n, n_actions = scores.shape
        dist = np.full((n, n_actions), self.epsilon / n_actions)
        dist[np.arange(n), np.argmax(scores, axis=1)] += 1.0 - self.epsilon
        return dist


def sample_actions(
    action_dist: np.ndarray, random_state: int | np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Draw one action per row of ``action_dist``; returns (action (n,) int, pscore (n,))."""
    dist = np.asarray(action_dist, dtype=float)
    rng = np.random.default_rng(random_state)
    cumulative = np.cumsum(dist, axis=1)
    draws = rng.random(dist.shape[0]) * cumulative[:, -1]
    action = np.minimum((draws[:, None] >= cumulative).sum(axis=1), dist.shape[1] - 1)
    return action, dist[np.arange(dist.shape[0]), action]
