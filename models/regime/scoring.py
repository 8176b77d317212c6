"""Out-of-sample scores of a fitted regime model on a window of bars it was not fitted on, for
comparing a challenger with the champion (no true regimes needed).

- ``log_likelihood_per_bar``: the causal one-step-ahead predictive log density
  log p(x_t | x_1..x_{t-1}), averaged over the window, in RAW feature units (the model's own
  standardisation is undone, so models with different scalers compare), with the emissions
  untempered (temperature 1: a proper likelihood). Higher is better.
- ``coverage``: the share of bars whose first feature (``log_return`` in the default set) falls
  inside the central ``nominal`` interval of the one-step predictive distribution, that
  distribution taken as the Gaussian with the predictive mixture's mean and variance (a
  moment-matched approximation). A calibrated model covers about ``nominal``.
"""

import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from models.regime.hmm import GaussianRegimeHMM

__all__ = ["WindowScore", "score_window"]


@dataclass(frozen=True)
class WindowScore:
    """Scores of one model on one window (see the module docstring)."""

    log_likelihood_per_bar: float
    coverage: float
    nominal: float
    bars: int

    @property
    def calibration_error(self) -> float:
        """|coverage − nominal|."""
        return abs(self.coverage - self.nominal)


def score_window(
    model: GaussianRegimeHMM,
    features: np.ndarray,
    nominal: float = 0.9,
) -> WindowScore:
    """Score ``model`` on ``features`` (N, D raw feature rows, finite; the rows after a training
    window). The filter starts from the model's initial distribution at the first row."""
    x = np.asarray(features, dtype=float)
    if x.ndim != 2 or x.shape[1] != model.n_features or len(x) == 0:
        raise ValueError(f"features must have shape (N>0, {model.n_features}), got {x.shape}")
    if not np.isfinite(x).all():
        raise ValueError("features hold non-finite rows; drop them before scoring")
    if not 0.0 < nominal < 1.0:
        raise ValueError(f"nominal must be in (0, 1), was {nominal}")
    exact = model.with_temperature(1.0) if model.temperature != 1.0 else model
    forward = exact.forward_filter()
    means0 = exact.raw_means()[:, 0]
    vars0 = exact.raw_stds()[:, 0] ** 2
    transmat = exact.transmat_
    z = NormalDist().inv_cdf(0.5 + nominal / 2.0)
    covered = 0
    state = np.asarray(exact.initial_, dtype=float)
    first = True
    for row in x.tolist():
        predicted = state if first else state @ transmat
        mean = float(predicted @ means0)
        variance = float(predicted @ (vars0 + means0**2)) - mean * mean
        half = z * math.sqrt(max(variance, 0.0))
        covered += int(mean - half <= row[0] <= mean + half)
        state = np.asarray(forward.update(row), dtype=float)
        first = False
    log_scale = float(np.log(exact.scaler_scale_).sum())
    per_bar = forward.log_likelihood / len(x) - log_scale
    return WindowScore(
        log_likelihood_per_bar=per_bar,
        coverage=covered / len(x),
        nominal=nominal,
        bars=len(x),
    )
