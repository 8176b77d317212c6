"""research.prediction_metrics against values worked by hand, and calibration on synthetic data
whose calibration is known."""

import math

import numpy as np
import pytest

from research.prediction_metrics import accuracy
from research.prediction_metrics import brier_score
from research.prediction_metrics import expected_calibration_error
from research.prediction_metrics import f1
from research.prediction_metrics import log_loss
from research.prediction_metrics import precision
from research.prediction_metrics import prediction_summary
from research.prediction_metrics import recall
from research.prediction_metrics import roc_auc

OUTCOMES = np.array([0, 1, 1, 0, 1])
PROBS = np.array([0.2, 0.7, 0.4, 0.6, 0.9])
# At a 0.5 threshold the predictions are [0, 1, 0, 1, 1]: TP 2 (rows 1, 4), FP 1 (row 3),
# FN 1 (row 2), TN 1 (row 0).
PREDICTIONS = np.array([0, 1, 0, 1, 1])


def test_hit_rates_by_hand():
    assert accuracy(OUTCOMES, PREDICTIONS) == pytest.approx(3 / 5)
    assert precision(OUTCOMES, PREDICTIONS) == pytest.approx(2 / 3)
    assert recall(OUTCOMES, PREDICTIONS) == pytest.approx(2 / 3)
    assert f1(OUTCOMES, PREDICTIONS) == pytest.approx(2 / 3)
    # Never predicting the positive class: precision 0 (not an error), recall 0.
    assert precision(OUTCOMES, np.zeros(5, dtype=int)) == 0.0
    assert recall(OUTCOMES, np.zeros(5, dtype=int)) == 0.0


def test_probability_scores_by_hand():
    # Positives score {0.7, 0.4, 0.9}, negatives {0.2, 0.6}: 5 of the 6 pairs are ordered right.
    assert roc_auc(OUTCOMES, PROBS) == pytest.approx(5 / 6)
    likelihood = [0.8, 0.7, 0.4, 0.4, 0.9]
    assert log_loss(OUTCOMES, PROBS) == pytest.approx(-np.mean(np.log(likelihood)), rel=1e-12)
    assert brier_score(OUTCOMES, PROBS) == pytest.approx(
        (0.04 + 0.09 + 0.36 + 0.36 + 0.01) / 5, rel=1e-12
    )


def test_multi_class_scores_by_hand():
    probs = np.array([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.2, 0.2, 0.6]])
    labels = np.array([0, 0, 2])
    # Brier: rows (0.25 + 0.25), 0, (0.04 + 0.04 + 0.16) over 3 rows.
    assert brier_score(labels, probs) == pytest.approx((0.5 + 0.0 + 0.24) / 3, rel=1e-12)
    assert log_loss(labels, probs) == pytest.approx(-(math.log(0.5) + math.log(0.6)) / 3)


def test_expected_calibration_error_by_hand():
    probs = np.array([0.12, 0.18, 0.85, 0.95, 1.0])
    outcomes = np.array([0, 1, 1, 1, 1])
    # Bin [0.1, 0.2): confidence 0.15, accuracy 0.5, gap 0.35, weight 2/5.
    # Bin [0.8, 0.9): 0.85 vs 1, gap 0.15, weight 1/5.
    # Bin [0.9, 1.0] (closed, so 1.0 is in it): 0.975 vs 1, gap 0.025, weight 2/5.
    gaps, weights = np.array([0.35, 0.15, 0.025]), np.array([0.4, 0.2, 0.4])
    ece = expected_calibration_error(probs, outcomes)
    assert ece == pytest.approx(float(np.sum(weights * gaps)), rel=1e-12)
    assert ece == pytest.approx(0.18, rel=1e-12)
    l2 = expected_calibration_error(probs, outcomes, norm="l2")
    assert l2 == pytest.approx(math.sqrt(float(np.sum(weights * gaps**2))), rel=1e-12)
    assert expected_calibration_error(probs, outcomes, norm="max") == pytest.approx(0.35)
    # One bin: |mean outcome - mean probability| = |0.8 - 0.62|.
    assert expected_calibration_error(probs, outcomes, n_bins=1) == pytest.approx(0.18)


def test_top_label_calibration_for_several_classes():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25]])
    labels = np.array([0, 1, 1, 2])
    # Top-label confidences 0.7, 0.8, 0.4, 0.5, right / right / wrong / wrong; one per bin:
    # gaps 0.3, 0.2, 0.4, 0.5.
    assert expected_calibration_error(probs, labels) == pytest.approx((0.3 + 0.2 + 0.4 + 0.5) / 4)
    assert expected_calibration_error(probs, labels, norm="max") == pytest.approx(0.5)


def test_ece_of_calibrated_forecasts_vanishes_as_n_grows():
    # p ~ U(0, 1), outcome ~ Bernoulli(p) (seed 11): calibrated by construction. What ECE is left
    # is sampling noise, shrinking like 1/sqrt(n).
    rng = np.random.default_rng(11)
    eces = []
    for n in (1_000, 10_000, 100_000):
        probs = rng.uniform(size=n)
        outcomes = (rng.uniform(size=n) < probs).astype(int)
        eces.append(expected_calibration_error(probs, outcomes))
    assert eces[0] > eces[1] > eces[2]
    assert eces[2] < 0.01
    # The same outcomes reported overconfidently, q = clip(0.5 + 1.5·(p - 0.5), 0, 1): the gap
    # |q - p| is 0.5·|p - 0.5| inside [1/6, 5/6] and p (or 1 - p) outside, one sign per bin, so
    # the ECE tends to E|q - p| = 2·(1/36 + 1/72) = 1/12.
    overconfident = np.clip(0.5 + 1.5 * (probs - 0.5), 0.0, 1.0)
    assert expected_calibration_error(overconfident, outcomes) == pytest.approx(1 / 12, abs=0.01)


def test_summary_holds_every_metric():
    summary = prediction_summary(OUTCOMES, PROBS)
    assert summary["accuracy"] == pytest.approx(3 / 5)
    assert summary["f1"] == pytest.approx(2 / 3)
    assert summary["roc_auc"] == pytest.approx(5 / 6)
    assert summary["ece"] == pytest.approx(expected_calibration_error(PROBS, OUTCOMES))
    assert summary["observations"] == 5.0
    assert set(summary) == {
        "accuracy",
        "precision",
        "recall",
        "f1",
        "roc_auc",
        "log_loss",
        "brier",
        "ece",
        "ece_l2",
        "ece_max",
        "observations",
    }
    # One class only: no AUC, the rest still computed.
    single = prediction_summary(np.ones(4, dtype=int), np.array([0.6, 0.7, 0.8, 0.9]))
    assert math.isnan(single["roc_auc"])
    assert single["accuracy"] == 1.0


def test_bad_input_names_the_argument_and_position():
    with pytest.raises(ValueError, match=r"probs must lie in \[0, 1\].*first at \(2,\)"):
        expected_calibration_error(np.array([0.1, 0.5, 1.2]), np.array([0, 1, 1]))
    with pytest.raises(ValueError, match="probs has 2 rows, outcomes 3"):
        log_loss(np.array([0, 1, 1]), np.array([0.1, 0.5]))
    with pytest.raises(ValueError, match="0/1 outcomes"):
        brier_score(np.array([0, 2]), np.array([0.1, 0.5]))
    with pytest.raises(ValueError, match="rows of probs must sum to 1"):
        log_loss(np.array([0, 1]), np.array([[0.5, 0.4], [0.5, 0.5]]))
    with pytest.raises(ValueError, match=r"integer labels 0\.\.1"):
        expected_calibration_error(np.array([[0.5, 0.5], [0.5, 0.5]]), np.array([0, 3]))
    with pytest.raises(ValueError, match="outcomes has NaN"):
        accuracy(np.array([0.0, np.nan]), np.array([0, 1]))
    with pytest.raises(ValueError, match="two classes"):
        roc_auc(np.zeros(3, dtype=int), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match="norm"):
        expected_calibration_error(PROBS, OUTCOMES, norm="l3")  # type: ignore[arg-type]
