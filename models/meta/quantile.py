"""LightGBM quantile regression of a strategy's next-window return.

One booster per quantile level (``objective="quantile"``); predictions are made monotone in the
level by sorting each row (the rearrangement of Chernozhukov, Fernández-Val and Galichon, 2010),
and the raw crossing is reported so a health check can refuse a model that crosses badly.
"""

from dataclasses import dataclass

import lightgbm as lgb
import numpy as np

__all__ = ["DEFAULT_LEVELS", "QuantilePrediction", "QuantileReturnModel"]

DEFAULT_LEVELS: tuple[float, ...] = (0.1, 0.5, 0.9)
"""The quantile levels fitted by default: the 80% interval and the median."""

_Z90 = 1.2815515655446004
"""Standard normal 90% quantile: a normal's q90 − q10 is 2·_Z90·σ."""


@dataclass(frozen=True)
class QuantilePrediction:
    """Predicted quantiles of next-window returns for a batch of rows.

    Attributes
    ----------
    levels : tuple[float, ...]
        Quantile levels, increasing.
    values : np.ndarray, shape (n_rows, n_levels)
        Monotone (sorted) quantiles, returns per unit of allocation.
    crossing : np.ndarray, shape (n_rows,)
        Largest amount by which a raw quantile fell below a lower level's (0 when monotone).
    """

    levels: tuple[float, ...]
    values: np.ndarray
    crossing: np.ndarray

    def quantile(self, level: float) -> np.ndarray:
        """The column of ``level`` (must be one of :attr:`levels`)."""
        return self.values[:, self.levels.index(level)]

    @property
    def median(self) -> np.ndarray:
        """μ: the 0.5 quantile (shape (n_rows,))."""
        return self.quantile(0.5)

    @property
    def sigma(self) -> np.ndarray:
        """σ implied by the outer levels as if normal: (q_hi − q_lo) / (z_hi − z_lo)."""
        from scipy.special import ndtri

        lo, hi = self.levels[0], self.levels[-1]
        return (self.values[:, -1] - self.values[:, 0]) / (ndtri(hi) - ndtri(lo))


class QuantileReturnModel:
    """Quantile regression of next-window returns, one LightGBM booster per level.

    Parameters
    ----------
    levels : tuple[float, ...]
        Quantile levels in (0, 1); must contain 0.5.
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM parameters
        Small trees by default: the datasets are thousands of rows.
    seed : int
        LightGBM's seed (results are deterministic with one thread).

    Attributes
    ----------
    boosters_ : list[lightgbm.Booster]
        One per level, after :meth:`fit`.
    n_features_ : int
    """

    def __init__(
        self,
        levels: tuple[float, ...] = DEFAULT_LEVELS,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 8,
        min_child_samples: int = 30,
        seed: int = 0,
    ) -> None:
        levels = tuple(float(level) for level in levels)
        if list(levels) != sorted(set(levels)) or not all(0.0 < lv < 1.0 for lv in levels):
            raise ValueError(f"levels must be increasing, distinct and in (0, 1): {levels}")
        if 0.5 not in levels or len(levels) < 3:
            raise ValueError(f"levels must include 0.5 and one level each side: {levels}")
        self.levels = levels
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed

    def _params(self, level: float) -> dict[str, object]:
        return {
            "objective": "quantile",
            "alpha": level,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_data_in_leaf": self.min_child_samples,
            "seed": self.seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }

    def fit(self, x: np.ndarray, y: np.ndarray) -> "QuantileReturnModel":
        """Fit one booster per level.

        Parameters
        ----------
        x : np.ndarray, shape (n_rows, n_features)
        y : np.ndarray, shape (n_rows,)
            Next-window returns per unit of allocation.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 2 or y.shape != (x.shape[0],):
            raise ValueError(
                f"x must be (n_rows, n_features) and y (n_rows,): {x.shape}, {y.shape}",
            )
        if not np.isfinite(y).all():
            raise ValueError(f"y has {int((~np.isfinite(y)).sum())} non-finite values")
        if x.shape[0] < 2 * self.min_child_samples:
            raise ValueError(
                f"{x.shape[0]} rows are too few for min_child_samples={self.min_child_samples}",
            )
        self.boosters_ = [
            lgb.train(self._params(level), lgb.Dataset(x, y), num_boost_round=self.n_estimators)
            for level in self.levels
        ]
        self.n_features_ = x.shape[1]
        return self

    def continue_fit(
        self, x: np.ndarray, y: np.ndarray, n_estimators: int
    ) -> "QuantileReturnModel":
        """A new model: each level's booster continued by ``n_estimators`` trees on ``x``, ``y``
        (LightGBM continued training, ``init_model``: the trees so far are kept, the new ones
        fit what they leave). This model is not changed.
        """
        x = np.asarray(x, dtype=float)
        y = np.asarray(y, dtype=float)
        if x.ndim != 2 or y.shape != (x.shape[0],) or x.shape[1] != self.n_features_:
            raise ValueError(
                f"x must be (n_rows, {self.n_features_}) and y (n_rows,): {x.shape}, {y.shape}",
            )
        if x.shape[0] < 2 * self.min_child_samples:
            raise ValueError(
                f"{x.shape[0]} rows are too few for min_child_samples={self.min_child_samples}",
            )
        model = QuantileReturnModel(
            self.levels,
            self.n_estimators,
            self.learning_rate,
            self.num_leaves,
            self.min_child_samples,
            self.seed,
        )
        model.boosters_ = [
            lgb.train(
                self._params(level),
                lgb.Dataset(x, y),
                num_boost_round=n_estimators,
                init_model=booster,
                keep_training_booster=False,
            )
            for level, booster in zip(self.levels, self.boosters_, strict=True)
        ]
        model.n_features_ = self.n_features_
        return model

    @property
    def n_trees(self) -> int:
        """Trees per level (after fits and continuations)."""
        return int(self.boosters_[0].num_trees())

    def predict(self, x: np.ndarray) -> QuantilePrediction:
        """Monotone quantiles of ``x``'s rows (see :class:`QuantilePrediction`)."""
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_features_:
            raise ValueError(f"x must be (n_rows, {self.n_features_}), got {x.shape}")
        # One thread: LightGBM's OpenMP pool costs ~60 ms per call on a busy 2-core machine
        # against ~0.1 ms of work for a few rows (benchmarks/meta_rebalance.py).
        raw = np.column_stack([booster.predict(x, num_threads=1) for booster in self.boosters_])
        running_max = np.maximum.accumulate(raw, axis=1)
        crossing = (running_max - raw).max(axis=1)
        return QuantilePrediction(self.levels, np.sort(raw, axis=1), crossing)

    def to_dict(self) -> dict[str, object]:
        """The fitted model as JSON-able data (LightGBM's text format per booster)."""
        return {
            "levels": list(self.levels),
            "n_features": self.n_features_,
            "params": {
                "n_estimators": self.n_estimators,
                "learning_rate": self.learning_rate,
                "num_leaves": self.num_leaves,
                "min_child_samples": self.min_child_samples,
                "seed": self.seed,
            },
            "boosters": [booster.model_to_string() for booster in self.boosters_],
        }

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> "QuantileReturnModel":
        """Inverse of :meth:`to_dict`."""
        params = dict(data["params"])  # type: ignore[arg-type]
        model = cls(tuple(data["levels"]), **params)  # type: ignore[arg-type]
        model.boosters_ = [lgb.Booster(model_str=text) for text in data["boosters"]]  # type: ignore[union-attr]
        model.n_features_ = int(data["n_features"])  # type: ignore[arg-type]
        return model
