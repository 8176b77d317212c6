"""Fit and measure the meta-controller's performance model on its training set, out of sample.

:func:`out_of_sample_predictions` walks the rows forward in time
(:class:`research.cv.WalkForwardSplit`, expanding, rows whose target window reaches the test
window purged): every prediction comes from a model fitted on earlier rows only. Those
predictions are split in time: the earlier half fits the conformal interval and the isotonic
P(return > 0), the later half measures them (:func:`prediction_metrics`) — so the calibration
figures are out of sample twice over. The model that ships (:func:`fit_meta_model`) is the
quantile model refitted on every row with the calibrators fitted on every out-of-sample
prediction.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError
from models.meta.calibration import ConformalInterval
from models.meta.calibration import PositiveProbability
from models.meta.calibration import raw_positive_probability
from models.meta.features import feature_names
from models.meta.model import MetaModel
from models.meta.quantile import QuantileReturnModel
from research.cv import WalkForwardSplit
from research.prediction_metrics import expected_calibration_error

__all__ = [
    "MetaFit",
    "fit_meta_model",
    "out_of_sample_predictions",
    "pinball_loss",
    "prediction_metrics",
]


@dataclass
class MetaFit:
    """What :func:`fit_meta_model` produced.

    Attributes
    ----------
    model : MetaModel
        Fitted on every row; calibrated on every out-of-sample prediction.
    metrics : dict[str, float]
        Measured on the later half of the out-of-sample predictions (calibrators fitted on the
        earlier half): see :func:`prediction_metrics`.
    predictions : pd.DataFrame
        The out-of-sample predictions (raw quantiles) beside the rows' targets.
    """

    model: MetaModel
    metrics: dict[str, float]
    predictions: pd.DataFrame


def pinball_loss(y: np.ndarray, q: np.ndarray, level: float) -> float:
    """Mean pinball (quantile) loss of predictions ``q`` of the ``level`` quantile of ``y``."""
    diff = np.asarray(y, dtype=float) - np.asarray(q, dtype=float)
    return float(np.mean(np.maximum(level * diff, (level - 1.0) * diff)))


def out_of_sample_predictions(
    rows: pd.DataFrame,
    n_splits: int = 5,
    model_params: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Raw quantile predictions of every row after the first of ``n_splits + 1`` time blocks,
    each by a model fitted on the rows before it (expanding, purged).

    Returns ``rows``' ``ts``, ``strategy``, ``target``, ``last_window_return`` and columns
    ``q10``, ``q50``, ``q90`` (raw, rearranged), ``crossing``.
    """
    if n_splits < 2:
        raise ConfigError(f"splits: at least 2 walk-forward splits, was {n_splits}")
    rows = rows.sort_values("ts", kind="stable").reset_index(drop=True)
    block = len(rows) // (n_splits + 1)
    min_leaf = int((model_params or {}).get("min_child_samples", 30))
    if block < 2 * min_leaf:
        raise ConfigError(
            f"{len(rows)} training rows are too few for {n_splits} walk-forward splits: each of "
            f"the {n_splits + 1} blocks needs {2 * min_leaf} rows (min_child_samples={min_leaf});"
            " walk a longer span, rebalance more often or use fewer splits",
        )
    t1 = pd.Series(pd.DatetimeIndex(rows["end"]), index=pd.DatetimeIndex(rows["ts"]))
    splitter = WalkForwardSplit(block, block, expanding=True, t1=t1)
    x = rows[feature_names()].to_numpy(dtype=float)
    y = rows["target"].to_numpy(dtype=float)
    parts = []
    for train, test in splitter.split(x):
        model = QuantileReturnModel(**(model_params or {})).fit(x[train], y[train])
        prediction = model.predict(x[test])
        part = rows.loc[test, ["ts", "strategy", "target", "last_window_return"]].copy()
        for j, name in enumerate(("q10", "q50", "q90")):
            part[name] = prediction.values[:, j]
        part["crossing"] = prediction.crossing
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def _calibrators(predictions: pd.DataFrame) -> tuple[ConformalInterval, PositiveProbability]:
    q = predictions[["q10", "q50", "q90"]].to_numpy()
    y = predictions["target"].to_numpy()
    interval = ConformalInterval(0.8).fit(q[:, 0], q[:, 2], y)
    raw = raw_positive_probability(q, (0.1, 0.5, 0.9))
    probability = PositiveProbability().fit(raw, (y > 0.0).astype(float))
    return interval, probability


def prediction_metrics(
    predictions: pd.DataFrame,
    interval: ConformalInterval,
    probability: PositiveProbability,
) -> dict[str, float]:
    """Figures of calibrated predictions against their targets.

    ``pinball_q10/q50/q90`` (raw quantiles), ``coverage_raw`` and ``coverage`` (share of
    targets inside the raw and the conformal 80% interval), ``ece`` (expected calibration error
    of P(return > 0), 10 bins), ``brier``, ``directional_accuracy`` (up when the mean of the
    quantiles is ≥ 0, scored over targets ≠ 0) beside ``naive_directional_accuracy`` (up when
    the last window's return is ≥ 0, same rows), ``rows`` and ``rows_nonzero``.
    """
    q = predictions[["q10", "q50", "q90"]].to_numpy()
    y = predictions["target"].to_numpy()
    lower, upper = interval.transform(q[:, 0], q[:, 2])
    p = probability.predict(raw_positive_probability(q, (0.1, 0.5, 0.9)))
    positive = (y > 0.0).astype(int)
    nonzero = y != 0.0
    # Direction: up when the quantiles' mean is ≥ 0 (the median alone is 0 for most windows of
    # a strategy that rarely trades); the naive baseline says "as the last window", up on a flat
    # one. Both are scored on the windows whose return is not zero.
    predicted_up = q.mean(axis=1) >= 0.0
    naive_up = predictions["last_window_return"].to_numpy() >= 0.0
    actual_up = y > 0.0
    figures = {
        f"pinball_{name}": pinball_loss(y, q[:, j], level)
        for j, (name, level) in enumerate((("q10", 0.1), ("q50", 0.5), ("q90", 0.9)))
    }
    figures.update(
        {
            "coverage_raw": float(np.mean((q[:, 0] <= y) & (y <= q[:, 2]))),
            "coverage": float(np.mean((lower <= y) & (y <= upper))),
            "ece": expected_calibration_error(p, positive),
            "brier": float(np.mean((p - positive) ** 2)),
            "directional_accuracy": float(np.mean(predicted_up[nonzero] == actual_up[nonzero]))
            if nonzero.any()
            else float("nan"),
            "naive_directional_accuracy": float(np.mean(naive_up[nonzero] == actual_up[nonzero]))
            if nonzero.any()
            else float("nan"),
            "rows": float(len(y)),
            "rows_nonzero": float(nonzero.sum()),
        },
    )
    return figures


def fit_meta_model(
    rows: pd.DataFrame,
    horizon_bars: int,
    n_splits: int = 5,
    model_params: dict[str, Any] | None = None,
) -> MetaFit:
    """The shipped model and its out-of-sample figures (see the module docstring).

    Parameters
    ----------
    rows : pd.DataFrame
        :func:`grodt.experiments.meta_dataset.allocation_rows` (any number of folds).
    horizon_bars : int
        The target's window in clock bars (the actor's ``rebalance_every``).
    """
    predictions = out_of_sample_predictions(rows, n_splits, model_params)
    half = len(predictions) // 2
    early, late = predictions.iloc[:half], predictions.iloc[half:]
    interval, probability = _calibrators(early)
    metrics = prediction_metrics(late, interval, probability)
    x = rows[feature_names()].to_numpy(dtype=float)
    y = rows["target"].to_numpy(dtype=float)
    quantiles = QuantileReturnModel(**(model_params or {})).fit(x, y)
    interval, probability = _calibrators(predictions)
    model = MetaModel(
        quantiles,
        interval,
        probability,
        feature_names(),
        horizon_bars=horizon_bars,
        trained_until_ns=int(pd.Timestamp(rows["end"].max()).value),
        metrics=metrics,
    )
    return MetaFit(model, metrics, predictions)
