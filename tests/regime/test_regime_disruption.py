"""The position-disruption metric and the detection scores, on hand-made series."""

import numpy as np
import pandas as pd
import pytest

from models.regime.evaluation import classification_scores
from models.regime.evaluation import detection_delays
from research.disruption import event_disruption
from research.disruption import exposure_grid
from research.disruption import gated_exposure
from research.disruption import position_disruption
from research.disruption import true_transitions

BARS = pd.date_range("2024-01-02 14:31", periods=200, freq="1min", tz="UTC")


def test_true_transitions_are_the_label_changes():
    labels = pd.Series(["bull"] * 50 + ["bear"] * 100 + ["bull"] * 50, index=BARS)
    assert list(true_transitions(labels)) == [BARS[50], BARS[150]]


def test_holding_through_a_transition_is_no_disruption():
    exposure = pd.DataFrame({"s": np.ones(200)}, index=BARS)
    result = position_disruption(exposure, [BARS[100]], half_window=10)
    assert result.disruption == 0.0
    assert result.transitions == 1


def test_one_full_exit_in_the_window_is_one_over_the_exposed_bars():
    values = np.ones(200)
    values[100:] = 0.0  # flattened at the transition bar
    exposure = pd.DataFrame({"s": values}, index=BARS)
    result = position_disruption(exposure, [BARS[100]], half_window=10)
    # window 90..109: 10 bars held (gross 10), one change of 1
    assert result.disruption == pytest.approx(1 / 10)
    assert result.per_transition["changes"].tolist() == [1]


def test_whipsaw_scores_a_multiple_and_gradual_scaling_less():
    flips = np.ones(200)
    flips[[95, 97, 99, 101, 103]] = 0.0  # an argmax flickering around the transition
    flips[105:] = 0.0  # 11 changes of 1 over 10 exposed bars in the window
    gradual = np.clip(1 - (np.arange(200) - 90) / 20, 0, 1)  # scaled out over 20 bars
    exposure = pd.DataFrame({"hard": flips, "soft": gradual}, index=BARS)
    hard = position_disruption(exposure[["hard"]], [BARS[100]], 10).disruption
    soft = position_disruption(exposure[["soft"]], [BARS[100]], 10).disruption
    assert hard == pytest.approx(11 / 10)
    assert soft < hard / 5


def test_windows_that_do_not_fit_are_left_out_and_the_baseline_is_outside():
    values = np.ones(200)
    values[::2] = 0.5  # churn everywhere
    exposure = pd.DataFrame({"s": values}, index=BARS)
    result = position_disruption(exposure, [BARS[3], BARS[100], BARS[198]], half_window=10)
    assert result.transitions == 1
    assert result.baseline == pytest.approx(result.disruption, rel=0.05)


def test_exposure_grid_holds_the_last_target():
    events = pd.DataFrame(
        {
            "ts_event": [BARS[10].value, BARS[10].value, BARS[20].value, BARS[15].value],
            "strategy_id": ["a", "a", "a", "b"],
            "target_exposure": [5.0, 7.0, 0.0, -3.0],
        },
    )
    grid = exposure_grid(events, BARS)
    assert grid.loc[BARS[9], "a"] == 0.0
    assert grid.loc[BARS[10], "a"] == 7.0  # the last of two changes at one bar
    assert grid.loc[BARS[19], "a"] == 7.0 and grid.loc[BARS[20], "a"] == 0.0
    assert grid.loc[BARS[16], "b"] == -3.0


def test_event_disruption_can_count_only_regime_changes():
    events = pd.DataFrame(
        {
            "ts_event": [BARS[50].value, BARS[95].value, BARS[100].value, BARS[102].value],
            "strategy_id": ["a"] * 4,
            "target_exposure": [10.0, 6.0, 0.0, 4.0],
            "reason": ["entry", "adjust:regime", "exit:regime", "entry"],
        },
    )
    every = event_disruption(events, BARS, [BARS[100]], half_window=10)
    regime = event_disruption(events, BARS, [BARS[100]], 10, reasons=("adjust:regime", "exit:"))
    gross = 5 * 10 + 5 * 6 + 8 * 4  # window 90..109
    assert every["disruption"] == pytest.approx((4 + 6 + 4) / gross)
    assert regime["disruption"] == pytest.approx((4 + 6) / gross)


def test_gated_exposure_follows_the_strategies_rule():
    regime = pd.DataFrame(
        {
            "p_bull": [0.6, 0.3],
            "p_bear": [0.1, 0.1],
            "p_sideways": [0.3, 0.6],
            "most_likely": ["bull", "sideways"],
        },
        index=BARS[:2],
    )
    affinity = {"bull": 1.0, "bear": 1.0, "sideways": 0.0}
    soft = gated_exposure(regime, affinity, "soft", weight=0.5)
    hard = gated_exposure(regime, affinity, "hard", weight=0.5)
    assert soft.tolist() == pytest.approx([0.35, 0.2])
    assert hard.tolist() == [0.5, 0.0]


def test_detection_delay_counts_to_the_first_persistent_hit():
    truth = np.array(["bull"] * 10 + ["bear"] * 20 + ["bull"] * 10)
    predicted = truth.copy()
    predicted[10:14] = "bull"  # bear detected 4 bars late
    predicted[15] = "bull"  # a blip: the persistent run starts at 16
    predicted[30:] = "sideways"  # the return to bull is missed
    result = detection_delays(predicted, truth, persist=3)
    assert result.transitions == 2
    assert result.delays.tolist() == [6]
    assert result.missed == 1
    assert detection_delays(predicted, truth, persist=1).delays.tolist() == [4]


def test_classification_scores():
    truth = np.array(["bull", "bull", "bear", "sideways"])
    predicted = np.array(["bull", "bear", "bear", "sideways"])
    scores = classification_scores(predicted, truth)
    assert scores["accuracy"] == 0.75
    assert scores["f1"] == pytest.approx({"bull": 2 / 3, "bear": 2 / 3, "sideways": 1.0})
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 2 / 3 + 1) / 3)
    assert scores["confusion"].loc["bull", "bear"] == 1
