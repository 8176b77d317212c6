"""A contextual bandit over a discrete set of allocations: linear Thompson sampling with logged
propensities.

Each action is one weight vector (:func:`allocation_actions`). The reward of an action is the
portfolio's return over the window that followed it. Every action has a Bayesian linear model of
the reward given the context (Gaussian prior, known noise variance: the posterior is closed form).

**Choosing.** The policy draws ``n_samples`` coefficient vectors per action from the posteriors;
the fraction of draws in which each action scores highest is its Thompson probability. The logged
distribution mixes it with a uniform floor, ``(1 − ε)·thompson + ε/n_actions``, and the action is
drawn *from that distribution*, so the logged ``action_probabilities`` are exactly the
probabilities the action was sampled with. With ε > 0 every action keeps probability
≥ ε/n_actions, which off-policy evaluation of any other policy needs; with ε = 0 (the default)
the distribution is Thompson sampling's own, and an action that won none of the draws has
probability 0: a target policy that puts mass there is not supported by the log (the OPE overlap
diagnostics say so). Seeded: the same seed, contexts and rewards give the same actions.

**Greedy** (:meth:`LinearThompsonBandit.greedy`): the action with the best posterior mean
reward, no draw (exploration frozen, e.g. after a change point); its logged distribution is
one-hot, propensity 1.
"""

from dataclasses import dataclass

import numpy as np

__all__ = ["BanditChoice", "LinearThompsonBandit", "allocation_actions"]


def allocation_actions(
    static_weights: np.ndarray,
    min_allocation: float,
    max_allocation: float,
) -> np.ndarray:
    """The action set: the static weights, equal weights, and one tilt per strategy.

    A tilt gives its strategy ``max_allocation`` and shares the rest equally among the others,
    clipped to ``[min_allocation, max_allocation]``, total ≤ 1.

    Returns
    -------
    np.ndarray, shape (n + 2, n)
        Row 0 static, row 1 equal, row 2 + i the tilt to strategy i.
    """
    n = static_weights.size
    rows = [np.asarray(static_weights, dtype=float), np.full(n, min(1.0 / n, max_allocation))]
    for i in range(n):
        tilt = np.full(n, (1.0 - max_allocation) / max(n - 1, 1))
        tilt = np.clip(tilt, min_allocation if n > 1 else 0.0, max_allocation)
        tilt[i] = max_allocation
        if tilt.sum() > 1.0:
            others = np.arange(n) != i
            tilt[others] *= (1.0 - max_allocation) / tilt[others].sum()
        rows.append(tilt)
    return np.vstack(rows)


@dataclass(frozen=True)
class BanditChoice:
    """One decision of the bandit.

    Attributes
    ----------
    action_index : int
    action_probabilities : np.ndarray, shape (n_actions,)
        The distribution the action was drawn from (sums to 1).
    propensity : float
        ``action_probabilities[action_index]``.
    """

    action_index: int
    action_probabilities: np.ndarray
    propensity: float


class LinearThompsonBandit:
    """Linear Thompson sampling over ``n_actions`` actions (see the module docstring).

    Parameters
    ----------
    n_actions, n_features : int
        The context has ``n_features`` values; a constant 1 is appended (the intercept).
    prior_variance : float
        Variance of the Gaussian prior on every coefficient.
    noise_variance : float
        Variance of a reward around its linear prediction (returns², e.g. 0.02² per window).
    exploration : float, default 0
        ε of the uniform floor, in [0, 1].
    n_samples : int
        Posterior draws per decision (the Monte Carlo of the Thompson probabilities).
    seed : int
    """

    def __init__(
        self,
        n_actions: int,
        n_features: int,
        prior_variance: float = 1e-3,
        noise_variance: float = 4e-4,
        exploration: float = 0.0,
        n_samples: int = 256,
        seed: int = 0,
    ) -> None:
        if n_actions < 1 or n_features < 0:
            raise ValueError(f"need n_actions ≥ 1 and n_features ≥ 0: {n_actions}, {n_features}")
        if prior_variance <= 0.0 or noise_variance <= 0.0:
            raise ValueError("prior_variance and noise_variance must be > 0")
        if not 0.0 <= exploration <= 1.0:
            raise ValueError(f"exploration must be in [0, 1], was {exploration}")
        self.n_actions = n_actions
        self.n_features = n_features
        self.prior_variance = prior_variance
        self.noise_variance = noise_variance
        self.exploration = exploration
        self.n_samples = n_samples
        self.seed = seed
        self.reset()

    def reset(self) -> None:
        """Forget every update (back to the prior) and reseed."""
        d = self.n_features + 1
        self.precision_ = np.repeat(np.eye(d)[None] / self.prior_variance, self.n_actions, axis=0)
        self.b_ = np.zeros((self.n_actions, d))
        self.covariance_ = np.linalg.inv(self.precision_)
        self.mean_ = np.zeros((self.n_actions, d))
        self.n_updates_ = np.zeros(self.n_actions, dtype=int)
        self._rng = np.random.default_rng(self.seed)

    def _x(self, context: np.ndarray) -> np.ndarray:
        context = np.asarray(context, dtype=float)
        if context.shape != (self.n_features,):
            raise ValueError(f"context must have shape ({self.n_features},), got {context.shape}")
        return np.append(np.nan_to_num(context, nan=0.0, posinf=0.0, neginf=0.0), 1.0)

    def probabilities(self, context: np.ndarray) -> np.ndarray:
        """The logged distribution at ``context`` (draws from the bandit's random stream)."""
        x = self._x(context)
        # x·β with β ~ N(mean, covariance) is N(x·mean, xᵀ·covariance·x), per action.
        means = self.mean_ @ x
        sds = np.sqrt(np.maximum(np.einsum("i,aij,j->a", x, self.covariance_, x), 0.0))
        draws = self._rng.standard_normal((self.n_samples, self.n_actions))
        scores = means[None, :] + sds[None, :] * draws
        wins = np.bincount(scores.argmax(axis=1), minlength=self.n_actions) / self.n_samples
        return (1.0 - self.exploration) * wins + self.exploration / self.n_actions

    def choose(self, context: np.ndarray) -> BanditChoice:
        """Draw an action from :meth:`probabilities` and say with what probability."""
        probabilities = self.probabilities(context)
        index = int(self._rng.choice(self.n_actions, p=probabilities))
        return BanditChoice(index, probabilities, float(probabilities[index]))

    def greedy(self, context: np.ndarray) -> BanditChoice:
        """The action with the highest posterior mean reward at ``context``, without a draw
        (the random stream is left untouched); logged one-hot, propensity 1. Ties go to the
        lowest index."""
        index = int(np.argmax(self.mean_ @ self._x(context)))
        probabilities = np.zeros(self.n_actions)
        probabilities[index] = 1.0
        return BanditChoice(index, probabilities, 1.0)

    def update(self, action_index: int, context: np.ndarray, reward: float) -> None:
        """Add one observed reward of ``action_index`` at ``context`` to its posterior."""
        if not np.isfinite(reward):
            raise ValueError(f"reward must be finite, was {reward}")
        x = self._x(context)
        # Posterior precision I/prior + Σxxᵀ/noise and mean precision⁻¹·Σx·reward/noise.
        self.precision_[action_index] += np.outer(x, x) / self.noise_variance
        self.b_[action_index] += reward * x / self.noise_variance
        self.n_updates_[action_index] += 1
        self.covariance_[action_index] = np.linalg.inv(self.precision_[action_index])
        self.mean_[action_index] = self.covariance_[action_index] @ self.b_[action_index]
