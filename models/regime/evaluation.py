"""Scoring regime probabilities against a known regime path (the synthetic market's truth).

- accuracy and macro-F1 of the most likely label, bar by bar;
- detection delay at each true transition: bars from the transition until the most likely label
  equals the new true label for ``persist`` consecutive bars (a detection that does not happen
  before the next transition is a miss);
- the outcome coding (:func:`label_codes`, :data:`PROBABILITY_COLUMNS`) with which
  ``scripts/evaluate_regime.py`` scores the probabilities themselves
  (:func:`research.prediction_metrics.prediction_summary`; ``research`` sits above ``models``).
"""

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix
from sklearn.metrics import f1_score

from grodt.core.messages import REGIME_LABELS

__all__ = [
    "PROBABILITY_COLUMNS",
    "DetectionDelays",
    "classification_scores",
    "detection_delays",
    "label_codes",
]

PROBABILITY_COLUMNS: tuple[str, ...] = tuple(f"p_{label}" for label in REGIME_LABELS)
"""The regime frame's probability columns, in ``REGIME_LABELS`` order."""


@dataclass(frozen=True)
class DetectionDelays:
    """Detection of true transitions.

    Attributes
    ----------
    delays : np.ndarray
        Delay in bars of each detected transition (int, ≥ 0).
    missed : int
        Transitions not detected before the next one (or the end of the data).
    transitions : int
        Transitions scored.
    persist : int
        Consecutive bars the new label had to hold.
    """

    delays: np.ndarray
    missed: int
    transitions: int
    persist: int

    @property
    def mean(self) -> float:
        return float(self.delays.mean()) if len(self.delays) else float("nan")

    @property
    def median(self) -> float:
        return float(np.median(self.delays)) if len(self.delays) else float("nan")

    @property
    def detection_rate(self) -> float:
        return len(self.delays) / self.transitions if self.transitions else float("nan")

    def as_dict(self) -> dict[str, Any]:
        return {
            "transitions": self.transitions,
            "detected": len(self.delays),
            "missed": self.missed,
            "detection_rate": self.detection_rate,
            "mean_delay_bars": self.mean,
            "median_delay_bars": self.median,
            "persist_bars": self.persist,
        }


def detection_delays(
    predicted: np.ndarray,
    truth: np.ndarray,
    persist: int = 5,
    scored: np.ndarray | None = None,
) -> DetectionDelays:
    """Delays from each true label change to its detection.

    Parameters
    ----------
    predicted, truth : np.ndarray
        Most likely and true labels per bar, shape (N,).
    persist : int, default 5
        The predicted label must equal the new true label on this many consecutive bars; the
        delay counts to the first of them (0 = detected on the transition bar itself).
    scored : np.ndarray, optional
        Boolean (N,): only transitions at scored bars count (e.g. after the first fit).
    """
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    if persist < 1:
        raise ValueError(f"persist must be at least 1, was {persist}")
    changes = np.flatnonzero(truth[1:] != truth[:-1]) + 1
    if scored is not None:
        changes = changes[np.asarray(scored, dtype=bool)[changes]]
    delays: list[int] = []
    missed = 0
    boundaries = np.append(np.flatnonzero(truth[1:] != truth[:-1]) + 1, len(truth))
    for start in changes:
        end = boundaries[np.searchsorted(boundaries, start, side="right")]
        hits = predicted[start:end] == truth[start]
        run = 0
        found = None
        for offset, hit in enumerate(hits):
            run = run + 1 if hit else 0
            if run == persist:
                found = offset - persist + 1
                break
        if found is None:
            missed += 1
        else:
            delays.append(found)
    return DetectionDelays(
        delays=np.asarray(delays, dtype=int),
        missed=missed,
        transitions=len(changes),
        persist=persist,
    )


def classification_scores(predicted: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
    """Accuracy, macro-F1 over ``REGIME_LABELS``, per-label F1 and the confusion matrix
    (rows: truth, columns: predicted, in ``REGIME_LABELS`` order)."""
    predicted = np.asarray(predicted)
    truth = np.asarray(truth)
    labels = list(REGIME_LABELS)
    per_label = f1_score(truth, predicted, labels=labels, average=None, zero_division=0)
    return {
        "bars": len(truth),
        "accuracy": float(np.mean(predicted == truth)) if len(truth) else float("nan"),
        "macro_f1": float(
            f1_score(truth, predicted, labels=labels, average="macro", zero_division=0),
        ),
        "f1": {label: float(v) for label, v in zip(labels, per_label, strict=True)},
        "confusion": pd.DataFrame(
            confusion_matrix(truth, predicted, labels=labels),
            index=pd.Index(labels, name="true"),
            columns=pd.Index(labels, name="predicted"),
        ),
    }


def label_codes(truth: np.ndarray) -> np.ndarray:
    """The column index in ``REGIME_LABELS`` of each true label, shape (N,) int: the outcome
    coding of :func:`research.prediction_metrics.prediction_summary` for probabilities in
    ``PROBABILITY_COLUMNS`` order.

    Raises
    ------
    ValueError
        A label outside ``REGIME_LABELS`` (the first ten named).
    """
    truth = np.asarray(truth)
    index = {label: k for k, label in enumerate(REGIME_LABELS)}
    unknown = sorted({str(v) for v in truth.tolist() if v not in index})
    if unknown:
        raise ValueError(f"true labels outside {list(REGIME_LABELS)}: {unknown[:10]}")
    return np.fromiter((index[v] for v in truth.tolist()), dtype=int, count=len(truth))
