"""Reward models for the direct and doubly robust estimators, fitted with cross-fitting.

:class:`CrossFittedRewardModel` estimates ``q̂(x, a)``, the expected reward of every action in
every logged context, from the log itself. Cross-fitting (obp's ``RegressionModel.fit_predict``
with ``n_folds``): the rounds are split into K folds, and a round's estimates come from the model
fitted on the other K − 1 folds, so no round's ``q̂`` saw its own reward. That keeps the model's
overfitting out of DR's correction term. The folds are sklearn ``KFold`` blocks (contiguous, in
log order, unless ``shuffle``): a cross-fitting partition, not a validation scheme for a
time-series forecast, so no purging is needed.
"""

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.model_selection import KFold

__all__ = ["CrossFittedRewardModel", "action_design"]


def action_design(context: np.ndarray, action: np.ndarray, n_actions: int) -> np.ndarray:
    """Regression inputs for (context, action) pairs: ``[x, onehot(a), x ⊗ onehot(a)]``.

    Shape (n, d + n_actions + d · n_actions). The interaction columns let a linear regressor fit a
    separate slope per action; tree models need none of it but lose nothing.
    """
    onehot = np.zeros((action.size, n_actions))
    onehot[np.arange(action.size), action] = 1.0
    interactions = (context[:, :, None] * onehot[:, None, :]).reshape(action.size, -1)
    return np.hstack([context, onehot, interactions])


def _default_regressor() -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(
        n_estimators=100,
        learning_rate=0.05,
        num_leaves=15,
        min_child_samples=10,
        n_jobs=1,
        deterministic=True,
        random_state=0,
        verbose=-1,
    )


class CrossFittedRewardModel:
    """K-fold cross-fitted ``q̂(x, a)``.

    Parameters
    ----------
    regressor : sklearn regressor, optional
        Cloned per fold; default a small LightGBM ``LGBMRegressor`` (single thread,
        deterministic).
    n_folds : int, default 5
        K ≥ 2.
    shuffle : bool, default False
        Shuffle rounds before splitting (folds are contiguous blocks otherwise).
    random_state : int | None
        Seed of the shuffle.

    Attributes
    ----------
    n_actions_ : int
    fold_ : np.ndarray
        (n,) fold index of each round of the last :meth:`fit_predict`.
    models_ : list
        The K fitted regressors; model k never saw fold k.
    """

    def __init__(
        self,
        regressor: Any = None,
        n_folds: int = 5,
        shuffle: bool = False,
        random_state: int | None = None,
    ) -> None:
        self.regressor = regressor
        self.n_folds = n_folds
        self.shuffle = shuffle
        self.random_state = random_state

    def fit_predict(
        self, context: np.ndarray, action: np.ndarray, reward: np.ndarray, n_actions: int
    ) -> np.ndarray:
        """Cross-fitted ``q̂`` of the logged rounds, shape (n, n_actions).

        Parameters
        ----------
        context : np.ndarray
            (n, d) float, the rounds' contexts.
        action : np.ndarray
            (n,) int in ``[0, n_actions)``, the logged actions.
        reward : np.ndarray
            (n,) float, the observed rewards.
        n_actions : int
        """
        x = np.asarray(context, dtype=float)
        a = np.asarray(action)
        r = np.asarray(reward, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"context must be 2-D (n, d), has shape {x.shape}")
        n = x.shape[0]
        if a.shape != (n,) or r.shape != (n,):
            raise ValueError(
                f"action and reward must be (n,) = ({n},); have {a.shape} and {r.shape}"
            )
        if a.dtype.kind not in "iu" or a.min() < 0 or a.max() >= n_actions:
            raise ValueError(f"action must be integers in [0, {n_actions})")
        if not (np.isfinite(x).all() and np.isfinite(r).all()):
            raise ValueError("context and reward must be finite")
        if self.n_folds < 2 or n < self.n_folds:
            raise ValueError(f"n_folds must be >= 2 and <= the {n} rounds, is {self.n_folds}")
        base = self.regressor if self.regressor is not None else _default_regressor()
        splitter = KFold(
            n_splits=self.n_folds,
            shuffle=self.shuffle,
            random_state=self.random_state if self.shuffle else None,
        )
        q_hat = np.empty((n, n_actions))
        fold = np.empty(n, dtype=np.int64)
        models = []
        for k, (train, held_out) in enumerate(splitter.split(x)):
            model = clone(base).fit(action_design(x[train], a[train], n_actions), r[train])
            for candidate in range(n_actions):
                candidates = np.full(held_out.size, candidate)
                q_hat[held_out, candidate] = model.predict(
                    action_design(x[held_out], candidates, n_actions)
                )
            fold[held_out] = k
            models.append(model)
        self.n_actions_ = n_actions
        self.fold_ = fold
        self.models_ = models
        return q_hat

    def predict(self, context: np.ndarray) -> np.ndarray:
        """``q̂`` of new contexts (not in the log): the mean of the K fold models, (n, n_actions)."""
        if not hasattr(self, "models_"):
            raise ValueError("CrossFittedRewardModel: call fit_predict first")
        x = np.asarray(context, dtype=float)
        if x.ndim != 2:
            raise ValueError(f"context must be 2-D (n, d), has shape {x.shape}")
        q_hat = np.zeros((x.shape[0], self.n_actions_))
        for candidate in range(self.n_actions_):
            design = action_design(x, np.full(x.shape[0], candidate), self.n_actions_)
            q_hat[:, candidate] = np.mean([m.predict(design) for m in self.models_], axis=0)
        return q_hat
