"""Prediction metrics for a model's out-of-sample forecasts: hit rates, ranking, probability
quality and calibration.

Conventions:

- ``outcomes`` are class labels (binary 0/1, or integers/strings for several classes);
  ``predictions`` are predicted labels; ``probs`` are predicted probabilities — for a binary
  problem a 1-D array of P(outcome = 1), for K classes an (n, K) array whose rows sum to 1 and
  whose column k is the probability of label k (so the functions taking ``probs`` want labels
  0..K-1);
- the metrics scikit-learn has are scikit-learn's (same definitions, same edge cases), behind
  input checks that name the argument at fault; precision/recall/F1 of a class never predicted
  (or never present) are 0, not an error;
- every function returns a float; :func:`prediction_summary` collects them in a plain dict.
"""

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd
from sklearn import metrics as sk_metrics

__all__ = [
    "accuracy",
    "brier_score",
    "expected_calibration_error",
    "f1",
    "log_loss",
    "precision",
    "prediction_summary",
    "recall",
    "roc_auc",
]

ArrayLike = pd.Series | np.ndarray | Sequence[float] | Sequence[int] | Sequence[str]
Average = Literal["binary", "macro", "micro", "weighted"]


def _vector(values: ArrayLike, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, has shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty")
    if array.dtype.kind == "f" and np.isnan(array).any():
        raise ValueError(f"{name} has NaN at positions {np.flatnonzero(np.isnan(array))[:10]}")
    return array


def _probabilities(probs: ArrayLike | np.ndarray, n_rows: int) -> np.ndarray:
    array = np.asarray(probs, dtype=float)
    if array.ndim not in (1, 2):
        raise ValueError(f"probs must be 1-D (binary) or 2-D (n, K), has shape {array.shape}")
    if array.shape[0] != n_rows:
        raise ValueError(f"probs has {array.shape[0]} rows, outcomes {n_rows}")
    bad = ~np.isfinite(array) | (array < 0.0) | (array > 1.0)
    if bad.any():
        position = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(
            f"probs must lie in [0, 1]; {int(bad.sum())} value(s) do not, first at {position}: "
            f"{array[position]!r}"
        )
    if array.ndim == 2:
        row_sums = array.sum(axis=1)
        off = np.flatnonzero(np.abs(row_sums - 1.0) > 1e-6)
        if off.size:
            raise ValueError(
                f"rows of probs must sum to 1; {off.size} do not, first row {off[0]} sums to "
                f"{row_sums[off[0]]!r}"
            )
    return array


def _check_binary(truth: np.ndarray, caller: str) -> None:
    values = set(np.unique(truth).tolist())
    if not values <= {0, 1}:
        raise ValueError(f"{caller} with 1-D probs needs 0/1 outcomes, got {sorted(values)[:10]}")


def _check_column_labels(truth: np.ndarray, scores: np.ndarray) -> None:
    n_classes = scores.shape[1]
    if truth.dtype.kind not in "iub" or truth.min() < 0 or truth.max() >= n_classes:
        raise ValueError(
            f"with (n, {n_classes}) probs the outcomes must be integer labels 0..{n_classes - 1} "
            f"(the columns of probs); got values {np.unique(truth)[:10].tolist()}"
        )


def _pair(outcomes: ArrayLike, predictions: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    truth = _vector(outcomes, "outcomes")
    predicted = _vector(predictions, "predictions")
    if truth.size != predicted.size:
        raise ValueError(f"outcomes has {truth.size} values, predictions {predicted.size}")
    return truth, predicted


def accuracy(outcomes: ArrayLike, predictions: ArrayLike) -> float:
    """Share of predictions equal to the outcome, in [0, 1]."""
    truth, predicted = _pair(outcomes, predictions)
    return float(sk_metrics.accuracy_score(truth, predicted))


def precision(
    outcomes: ArrayLike, predictions: ArrayLike, average: Average = "binary", pos_label: int = 1
) -> float:
    """TP / (TP + FP) of ``pos_label`` (``average="binary"``) or averaged over classes."""
    truth, predicted = _pair(outcomes, predictions)
    return float(
        sk_metrics.precision_score(
            truth, predicted, average=average, pos_label=pos_label, zero_division=0.0
        )
    )


def recall(
    outcomes: ArrayLike, predictions: ArrayLike, average: Average = "binary", pos_label: int = 1
) -> float:
    """TP / (TP + FN) of ``pos_label`` (``average="binary"``) or averaged over classes."""
    truth, predicted = _pair(outcomes, predictions)
    return float(
        sk_metrics.recall_score(
            truth, predicted, average=average, pos_label=pos_label, zero_division=0.0
        )
    )


def f1(
    outcomes: ArrayLike, predictions: ArrayLike, average: Average = "binary", pos_label: int = 1
) -> float:
    """Harmonic mean of precision and recall: ``2·P·R / (P + R)``."""
    truth, predicted = _pair(outcomes, predictions)
    return float(
        sk_metrics.f1_score(
            truth, predicted, average=average, pos_label=pos_label, zero_division=0.0
        )
    )


def roc_auc(outcomes: ArrayLike, probs: ArrayLike | np.ndarray) -> float:
    """Area under the ROC curve: the probability that a random positive is scored above a random
    negative (ties count half). Multi-class (2-D ``probs``): one-vs-rest, macro average.

    Raises ValueError when ``outcomes`` holds a single class (the AUC does not exist).
    """
    truth = _vector(outcomes, "outcomes")
    scores = _probabilities(probs, truth.size)
    if np.unique(truth).size < 2:
        raise ValueError("roc_auc needs outcomes of at least two classes; all are one class")
    if scores.ndim == 2:
        _check_column_labels(truth, scores)
        return float(
            sk_metrics.roc_auc_score(
                truth, scores, multi_class="ovr", labels=np.arange(scores.shape[1])
            )
        )
    return float(sk_metrics.roc_auc_score(truth, scores))


def log_loss(outcomes: ArrayLike, probs: ArrayLike | np.ndarray) -> float:
    """Mean negative log-likelihood of the outcomes under ``probs`` (natural log, nats per
    prediction); scikit-learn clips probabilities to [eps, 1 - eps] with eps the float64 machine
    epsilon (2.2e-16), so a confident miss costs about 36 nats, not infinity."""
    truth = _vector(outcomes, "outcomes")
    scores = _probabilities(probs, truth.size)
    if scores.ndim == 2:
        _check_column_labels(truth, scores)
        return float(sk_metrics.log_loss(truth, scores, labels=np.arange(scores.shape[1])))
    _check_binary(truth, "log_loss")
    return float(sk_metrics.log_loss(truth, scores, labels=[0, 1]))


def brier_score(outcomes: ArrayLike, probs: ArrayLike | np.ndarray) -> float:
    """Mean squared error of the probabilities: binary ``mean((p - y)^2)``; multi-class the mean
    over rows of ``sum_k (p_k - 1[y = k])^2`` (scikit-learn's multi-class Brier, range [0, 2])."""
    truth = _vector(outcomes, "outcomes")
    scores = _probabilities(probs, truth.size)
    if scores.ndim == 1:
        _check_binary(truth, "brier_score")
        return float(sk_metrics.brier_score_loss(truth, scores, labels=[0, 1], pos_label=1))
    _check_column_labels(truth, scores)
    return float(sk_metrics.brier_score_loss(truth, scores, labels=np.arange(scores.shape[1])))


def expected_calibration_error(
    probs: ArrayLike | np.ndarray,
    outcomes: ArrayLike,
    n_bins: int = 10,
    norm: Literal["l1", "l2", "max"] = "l1",
) -> float:
    """Expected calibration error over ``n_bins`` uniform confidence bins.

    Binary (1-D ``probs`` = P(outcome = 1), 0/1 ``outcomes``): a bin's confidence is the mean
    probability in it and its accuracy the share of outcomes equal to 1. Multi-class ((n, K)
    ``probs``, labels 0..K-1 as column indices): top-label calibration — confidence is each row's
    highest probability, accuracy whether that column is the outcome.

    Bins are ``[0, 1/B), [1/B, 2/B), ..., [(B-1)/B, 1]`` (the last one closed); empty bins are
    skipped. With ``w_b`` a bin's share of the predictions and ``gap_b = |accuracy_b -
    confidence_b|``:

    - ``"l1"``: ``sum_b w_b·gap_b`` (the usual ECE);
    - ``"l2"``: ``sqrt(sum_b w_b·gap_b^2)``;
    - ``"max"``: ``max_b gap_b`` (maximum calibration error).

    Returns a float in [0, 1]; 0 is perfectly calibrated on these bins.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, was {n_bins}")
    if norm not in ("l1", "l2", "max"):
        raise ValueError(f"norm must be 'l1', 'l2' or 'max', was {norm!r}")
    truth = _vector(outcomes, "outcomes")
    scores = _probabilities(probs, truth.size)
    if scores.ndim == 1:
        _check_binary(truth, "expected_calibration_error")
        confidence = scores
        hit = truth.astype(float)
    else:
        _check_column_labels(truth, scores)
        confidence = scores.max(axis=1)
        hit = (scores.argmax(axis=1) == truth.astype(int)).astype(float)
    # Bin b holds confidence in [b/B, (b+1)/B); a confidence of exactly 1 goes to the last bin.
    bins = np.minimum((confidence * n_bins).astype(int), n_bins - 1)
    counts = np.bincount(bins, minlength=n_bins)
    filled = counts > 0
    mean_confidence = (
        np.bincount(bins, weights=confidence, minlength=n_bins)[filled] / counts[filled]
    )
    mean_hit = np.bincount(bins, weights=hit, minlength=n_bins)[filled] / counts[filled]
    gaps = np.abs(mean_hit - mean_confidence)
    weights = counts[filled] / truth.size
    if norm == "l1":
        return float(np.sum(weights * gaps))
    if norm == "l2":
        return float(np.sqrt(np.sum(weights * gaps**2)))
    return float(gaps.max())


def prediction_summary(
    outcomes: ArrayLike,
    probs: ArrayLike | np.ndarray,
    threshold: float = 0.5,
    n_bins: int = 10,
) -> dict[str, float]:
    """Every metric of this module for one set of forecasts, as a plain dict of floats.

    Binary (1-D ``probs``): predictions are ``probs >= threshold``; precision/recall/F1 of
    class 1. Multi-class (2-D): predictions are each row's arg-max (labels 0..K-1); precision,
    recall and F1 are macro averages and ``threshold`` is unused.

    Returns
    -------
    dict[str, float]
        ``accuracy, precision, recall, f1, roc_auc, log_loss, brier, ece, ece_l2, ece_max,
        observations``; ``roc_auc`` is NaN when the outcomes hold a single class.
    """
    truth = _vector(outcomes, "outcomes")
    scores = _probabilities(probs, truth.size)
    if scores.ndim == 1:
        predictions = (scores >= threshold).astype(int)
        average: Average = "binary"
    else:
        predictions = scores.argmax(axis=1)
        average = "macro"
    single_class = np.unique(truth).size < 2
    return {
        "accuracy": accuracy(truth, predictions),
        "precision": precision(truth, predictions, average=average),
        "recall": recall(truth, predictions, average=average),
        "f1": f1(truth, predictions, average=average),
        "roc_auc": float("nan") if single_class else roc_auc(truth, scores),
        "log_loss": log_loss(truth, scores),
        "brier": brier_score(truth, scores),
        "ece": expected_calibration_error(scores, truth, n_bins, "l1"),
        "ece_l2": expected_calibration_error(scores, truth, n_bins, "l2"),
        "ece_max": expected_calibration_error(scores, truth, n_bins, "max"),
        "observations": float(truth.size),
    }
