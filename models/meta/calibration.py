"""Out-of-sample calibration of the quantile model: conformal intervals and P(return > 0).

* :class:`ConformalInterval` — conformalized quantile regression (Romano, Patterson and Candès,
  2019): on held-out rows, the conformity score is how far the outcome fell outside the raw
  interval, ``max(q_lo − y, y − q_hi)``; the interval is widened (or narrowed, when the score
  quantile is negative) by the score's ``⌈(n+1)(1−α)⌉/n`` empirical quantile, which covers
  ``1 − α`` of exchangeable future rows.
* :class:`PositiveProbability` — P(next-window return > 0) from the quantiles (a split normal
  through q_lo, q50, q_hi), mapped through isotonic regression fitted on held-out outcomes.
"""

import numpy as np
from scipy.special import ndtr
from scipy.special import ndtri
from sklearn.isotonic import IsotonicRegression

__all__ = ["ConformalInterval", "PositiveProbability", "raw_positive_probability"]


class ConformalInterval:
    """Split-conformal adjustment of a quantile interval to a nominal coverage.

    Parameters
    ----------
    coverage : float
        Nominal coverage, e.g. 0.8 for the (0.1, 0.9) interval.

    Attributes
    ----------
    margin_ : float
        Added to the upper and subtracted from the lower quantile (returns per unit).
    n_calibration_ : int
    """

    def __init__(self, coverage: float = 0.8) -> None:
        if not 0.0 < coverage < 1.0:
            raise ValueError(f"coverage must be in (0, 1), was {coverage}")
        self.coverage = coverage

    def fit(self, lower: np.ndarray, upper: np.ndarray, y: np.ndarray) -> "ConformalInterval":
        """Fit on held-out raw bounds and outcomes (each shape (n,))."""
        lower, upper, y = (np.asarray(a, dtype=float) for a in (lower, upper, y))
        if not lower.shape == upper.shape == y.shape or y.ndim != 1 or y.size == 0:
            raise ValueError("lower, upper and y must be equal non-empty 1-d arrays")
        scores = np.maximum(lower - y, y - upper)
        n = y.size
        rank = min(int(np.ceil((n + 1) * self.coverage)), n)
        self.margin_ = float(np.sort(scores)[rank - 1])
        self.n_calibration_ = n
        return self

    def transform(self, lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Calibrated bounds; a negative margin never makes the interval cross its median."""
        lower = np.asarray(lower, dtype=float) - self.margin_
        upper = np.asarray(upper, dtype=float) + self.margin_
        middle = 0.5 * (lower + upper)
        return np.minimum(lower, middle), np.maximum(upper, middle)

    def to_dict(self) -> dict[str, float]:
        return {"coverage": self.coverage, "margin": self.margin_, "n": self.n_calibration_}

    @classmethod
    def from_dict(cls, data: dict[str, float]) -> "ConformalInterval":
        interval = cls(float(data["coverage"]))
        interval.margin_ = float(data["margin"])
        interval.n_calibration_ = int(data["n"])
        return interval


def raw_positive_probability(quantiles: np.ndarray, levels: tuple[float, ...]) -> np.ndarray:
    """P(return > 0) of a split normal through the outer quantiles and the median.

    Parameters
    ----------
    quantiles : np.ndarray, shape (n, n_levels)
        Monotone quantiles at ``levels`` (which contain 0.5).
    levels : tuple[float, ...]

    Returns
    -------
    np.ndarray, shape (n,)
    """
    q = np.asarray(quantiles, dtype=float)
    median = q[:, levels.index(0.5)]
    sigma_low = (median - q[:, 0]) / -ndtri(levels[0])
    sigma_high = (q[:, -1] - median) / ndtri(levels[-1])
    sigma = np.where(median >= 0.0, sigma_low, sigma_high)
    sigma = np.maximum(sigma, 1e-12)
    return ndtr(median / sigma)


class PositiveProbability:
    """Isotonic map from the raw P(return > 0) to the held-out frequency of positive returns.

    Attributes
    ----------
    x_, y_ : np.ndarray
        The fitted step function's knots (predict interpolates between them).
    """

    def fit(self, raw: np.ndarray, positive: np.ndarray) -> "PositiveProbability":
        """Fit on held-out raw probabilities and outcomes (``positive``: 1 when return > 0)."""
        raw = np.asarray(raw, dtype=float)
        positive = np.asarray(positive, dtype=float)
        if raw.shape != positive.shape or raw.ndim != 1 or raw.size < 2:
            raise ValueError("raw and positive must be equal 1-d arrays of at least 2 values")
        isotonic = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        isotonic.fit(raw, positive)
        self.x_ = np.asarray(isotonic.X_thresholds_, dtype=float)
        self.y_ = np.asarray(isotonic.y_thresholds_, dtype=float)
        return self

    def predict(self, raw: np.ndarray) -> np.ndarray:
        """Calibrated probabilities (shape of ``raw``)."""
        return np.interp(np.asarray(raw, dtype=float), self.x_, self.y_)

    def to_dict(self) -> dict[str, list[float]]:
        return {"x": self.x_.tolist(), "y": self.y_.tolist()}

    @classmethod
    def from_dict(cls, data: dict[str, list[float]]) -> "PositiveProbability":
        calibrator = cls()
        calibrator.x_ = np.asarray(data["x"], dtype=float)
        calibrator.y_ = np.asarray(data["y"], dtype=float)
        return calibrator
