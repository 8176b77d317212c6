"""Health checks of the performance model: when the meta-controller must fall back to static
weights, and the reason it logs.

Reasons (``fallback_reason`` of the allocation record): ``model_missing``, ``model_error``,
``stale_model``, ``incomplete_inputs``, ``nan_prediction``, ``crossing_quantiles``,
``sigma_out_of_range``, ``calibration_drift``; the actor adds ``warming_up``, ``policy_error``.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

from models.meta.model import Forecast

__all__ = ["CoverageMonitor", "HealthConfig", "forecast_problem", "inputs_problem"]

_NANOS_PER_DAY = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class HealthConfig:
    """Bounds of a healthy model.

    Attributes
    ----------
    max_model_age_days : float | None
        Stale when the rebalance is this many days after the model's last training row.
    max_crossing : float
        Unhealthy when a raw quantile falls more than this (return per unit) below a lower
        level's; smaller crossings are rearranged.
    sigma_min : float
        Floor of the predicted σ used by the allocator: a strategy that rarely trades has a
        zero-width interval (every quantile 0), which is a forecast, not a fault.
    sigma_max : float
        Unhealthy above it (return per unit over the window), or when σ is negative.
    max_calibration_drift : float
        Unhealthy when the realised coverage of the nominal interval over the last
        ``drift_window`` outcomes differs from the nominal by more than this.
    drift_window : int
        Outcomes in the rolling coverage (per strategy-window); judged once it is full.
    """

    max_model_age_days: float | None = 730.0
    max_crossing: float = 0.01
    sigma_min: float = 1e-5
    sigma_max: float = 0.5
    max_calibration_drift: float = 0.3
    drift_window: int = 60


def inputs_problem(rows: np.ndarray) -> str:
    """``"incomplete_inputs"`` when a model row holds a NaN or infinity, else ``""``."""
    return "" if np.isfinite(rows).all() else "incomplete_inputs"


def forecast_problem(
    forecast: Forecast,
    config: HealthConfig,
    now_ns: int,
    trained_until_ns: int,
    monitor: "CoverageMonitor | None" = None,
) -> str:
    """The first reason the forecast must not be used, or ``""`` (checks in the order listed in
    the module docstring)."""
    age_limit = config.max_model_age_days
    if age_limit is not None and now_ns - trained_until_ns > age_limit * _NANOS_PER_DAY:
        return "stale_model"
    values = (forecast.mu, forecast.lower, forecast.upper, forecast.sigma, forecast.p_positive)
    if not all(np.isfinite(v).all() for v in values):
        return "nan_prediction"
    if forecast.crossing.size and float(forecast.crossing.max()) > config.max_crossing:
        return "crossing_quantiles"
    if forecast.sigma.size and (
        float(forecast.sigma.min()) < 0.0 or float(forecast.sigma.max()) > config.sigma_max
    ):
        return "sigma_out_of_range"
    if monitor is not None and monitor.drift() > config.max_calibration_drift:
        return "calibration_drift"
    return ""


class CoverageMonitor:
    """Rolling realised coverage of the predicted interval (the calibration-drift check).

    Parameters
    ----------
    nominal : float
        The interval's nominal coverage (0.8).
    window : int
        Outcomes kept.
    """

    def __init__(self, nominal: float = 0.8, window: int = 60) -> None:
        self.nominal = nominal
        self.window = window
        self._hits: deque[bool] = deque(maxlen=window)

    def observe(self, lower: np.ndarray, upper: np.ndarray, outcome: np.ndarray) -> None:
        """Record whether each outcome fell inside its interval (NaN outcomes are skipped)."""
        for lo, hi, y in zip(lower, upper, outcome, strict=True):
            if np.isfinite(y):
                self._hits.append(bool(lo <= y <= hi))

    @property
    def outcomes(self) -> int:
        """Outcomes in the window (at most ``window``)."""
        return len(self._hits)

    @property
    def coverage(self) -> float:
        """Realised coverage so far (NaN before any outcome)."""
        return float(np.mean(self._hits)) if self._hits else float("nan")

    def drift(self) -> float:
        """|coverage − nominal| once the window is full, else 0."""
        if len(self._hits) < self.window:
            return 0.0
        return abs(self.coverage - self.nominal)
