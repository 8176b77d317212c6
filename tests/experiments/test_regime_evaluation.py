"""The regime evaluation's prediction metrics and their MLflow run (``scripts/evaluate_regime.py``):
label coding, ``prediction_summary`` of regime probabilities, one run in ``regime_evaluation``."""

import importlib.util
import json
import sqlite3
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from grodt.core.messages import REGIME_LABELS
from models.regime.evaluation import PROBABILITY_COLUMNS
from models.regime.evaluation import label_codes
from research.prediction_metrics import prediction_summary

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "evaluate_regime.py"


def _script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("evaluate_regime", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_label_codes_follow_the_probability_columns() -> None:
    from models.regime.walk_forward import STEP_COLUMNS

    # The columns the walk-forward frame really has, in REGIME_LABELS order.
    assert [c for c in STEP_COLUMNS if c.startswith("p_")] == list(PROBABILITY_COLUMNS)
    assert [c.removeprefix("p_") for c in PROBABILITY_COLUMNS] == list(REGIME_LABELS)
    codes = label_codes(np.array(["bear", "bull", "sideways", "bear"], dtype=object))
    assert codes.tolist() == [1, 0, 2, 1]
    with pytest.raises(ValueError, match=r"outside .*\['crash'\]"):
        label_codes(np.array(["bull", "crash"], dtype=object))


def test_regime_probabilities_score_against_their_labels() -> None:
    truth = np.array(["bull", "bear", "sideways", "bull", "bear", "sideways"], dtype=object)
    confident = np.eye(3)[label_codes(truth)] * 0.8 + 0.2 / 3
    figures = prediction_summary(label_codes(truth), confident)
    assert figures["accuracy"] == 1.0 and figures["roc_auc"] == 1.0
    assert figures["log_loss"] == pytest.approx(-np.log(0.8 + 0.2 / 3))
    # Top-label confidence 0.867 with every forecast right: calibration gap 1 - 0.867.
    assert figures["ece"] == pytest.approx(1.0 - (0.8 + 0.2 / 3))
    uniform = prediction_summary(label_codes(truth), np.full((len(truth), 3), 1.0 / 3.0))
    assert uniform["log_loss"] == pytest.approx(np.log(3.0))
    assert uniform["roc_auc"] == pytest.approx(0.5)


def test_evaluation_is_one_mlflow_run_with_params_and_metrics(tmp_path: Path, monkeypatch) -> None:
    from grodt.core.settings import get_settings

    database = tmp_path / "mlflow.db"
    monkeypatch.setenv("GRODT_TRACKING_URI", f"sqlite:///{database}")
    get_settings.cache_clear()
    try:
        script = _script()
        truth = np.array(["bull", "bear", "sideways", "bull"], dtype=object)
        probs = np.array([[0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.5, 0.1, 0.4], [0.4, 0.4, 0.2]])
        figures = prediction_summary(label_codes(truth), probs)
        report = {"synthetic": {"accuracy": 0.75, "probability": figures, "settings": "x.yaml"}}
        run_dir = tmp_path / "run"
        run_dir.mkdir()
        for name in ("evaluation.json", "evaluation.md"):
            (run_dir / name).write_text(json.dumps(report, default=str))
        tracking = script.track_evaluation(
            report, {"persist": 5, "only": ["synthetic"]}, run_dir, "regime_evaluation"
        )
    finally:
        get_settings.cache_clear()
    assert tracking["status"] == "logged"
    with sqlite3.connect(database) as db:
        (experiment,) = db.execute(
            "SELECT e.name FROM runs r JOIN experiments e ON r.experiment_id = e.experiment_id "
            "WHERE r.run_uuid = ?",
            (tracking["run_id"],),
        ).fetchone()
        metrics = dict(
            db.execute(
                "SELECT key, value FROM metrics WHERE run_uuid = ?", (tracking["run_id"],)
            ).fetchall()
        )
        params = dict(
            db.execute(
                "SELECT key, value FROM params WHERE run_uuid = ?", (tracking["run_id"],)
            ).fetchall()
        )
    assert experiment == "regime_evaluation"
    for key, value in figures.items():
        assert metrics[f"synthetic.probability.{key}"] == pytest.approx(value), key
    assert metrics["synthetic.accuracy"] == 0.75
    assert params["options.persist"] == "5"
    assert params["synthetic.component"] == "node_configs/components/actors/regime_synthetic.yaml"
    assert "synthetic.settings.walk_forward.n_states" in params
