"""Feature drift of a live window against the training window: PSI and the two-sample KS test.

- PSI (population stability index) of one feature: bins are the training window's deciles
  (``bins`` quantile bins, open-ended at both ends); with shares e_i (training) and a_i (live),
  PSI = Σ (a_i − e_i) · ln(a_i / e_i), shares floored at ``1e-4`` so an empty bin is finite.
  Conventional reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
- KS: scipy's two-sample Kolmogorov–Smirnov statistic and p-value.

:func:`feature_drift` scores every column; :class:`DriftThresholds` turns the scores into an
action (``none`` / ``retrain`` / ``fallback``) that a YAML config can set.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy.stats import ks_2samp

__all__ = [
    "DriftThresholds",
    "FeatureDrift",
    "drift_action",
    "feature_drift",
    "population_stability_index",
]

_FLOOR = 1e-4
Action = Literal["none", "retrain", "fallback"]


def _finite(values: np.ndarray, name: str) -> np.ndarray:
    values = np.asarray(values, dtype=float).ravel()
    values = values[np.isfinite(values)]
    if len(values) < 2:
        raise ValueError(f"{name}: needs at least 2 finite values, has {len(values)}")
    return values


def population_stability_index(expected: np.ndarray, actual: np.ndarray, bins: int = 10) -> float:
    """PSI of ``actual`` (live) against ``expected`` (training); non-finite values are ignored."""
    if bins < 2:
        raise ValueError(f"bins: must be >= 2, was {bins}")
    expected = _finite(expected, "expected")
    actual = _finite(actual, "actual")
    edges = np.unique(np.quantile(expected, np.linspace(0.0, 1.0, bins + 1)[1:-1]))
    e = np.bincount(np.searchsorted(edges, expected, side="right"), minlength=len(edges) + 1)
    a = np.bincount(np.searchsorted(edges, actual, side="right"), minlength=len(edges) + 1)
    e_share = np.maximum(e / e.sum(), _FLOOR)
    a_share = np.maximum(a / a.sum(), _FLOOR)
    return float(np.sum((a_share - e_share) * np.log(a_share / e_share)))


@dataclass(frozen=True)
class FeatureDrift:
    """Drift of one feature: PSI, KS statistic and p-value, and the window sizes."""

    feature: str
    psi: float
    ks_statistic: float
    ks_pvalue: float
    n_train: int
    n_live: int


def feature_drift(
    train: np.ndarray,
    live: np.ndarray,
    names: Sequence[str],
    bins: int = 10,
) -> list[FeatureDrift]:
    """Drift of every column of ``live`` (M, D) against ``train`` (N, D)."""
    train = np.asarray(train, dtype=float)
    live = np.asarray(live, dtype=float)
    if train.ndim != 2 or live.ndim != 2 or train.shape[1] != live.shape[1] != len(names):
        raise ValueError(
            f"train {train.shape} and live {live.shape} must be (N, D) with D = {len(names)}",
        )
    out = []
    for j, name in enumerate(names):
        expected = _finite(train[:, j], f"train[{name}]")
        actual = _finite(live[:, j], f"live[{name}]")
        ks = ks_2samp(expected, actual)
        out.append(
            FeatureDrift(
                feature=str(name),
                psi=population_stability_index(expected, actual, bins),
                ks_statistic=float(ks.statistic),
                ks_pvalue=float(ks.pvalue),
                n_train=len(expected),
                n_live=len(actual),
            ),
        )
    return out


@dataclass(frozen=True)
class DriftThresholds:
    """When drift calls for an action (any feature crossing a bound).

    Parameters
    ----------
    psi_retrain : float, default 0.25
    ks_pvalue_retrain : float, default 0.001
        Retrain when a feature's PSI exceeds ``psi_retrain`` or its KS p-value falls below this.
    psi_fallback : float | None, default None
        Fall back (e.g. to the always-on baseline) when a PSI exceeds this; None: never.
    """

    psi_retrain: float = 0.25
    ks_pvalue_retrain: float = 0.001
    psi_fallback: float | None = None


def drift_action(drifts: Sequence[FeatureDrift], thresholds: DriftThresholds) -> Action:
    """The strongest action any feature's drift calls for."""
    worst_psi = max((d.psi for d in drifts), default=0.0)
    if thresholds.psi_fallback is not None and worst_psi > thresholds.psi_fallback:
        return "fallback"
    if worst_psi > thresholds.psi_retrain or any(
        d.ks_pvalue < thresholds.ks_pvalue_retrain for d in drifts
    ):
        return "retrain"
    return "none"
