"""grodt meta train / evaluate: training rows from allocation records (features of one rebalance,
the next window's return), walk-forward predictions that are out of sample, calibration figures,
and the command end to end over real BacktestNodes with the model registered."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from meta_kit import REPO
from meta_kit import meta_document

from grodt.cli import main
from grodt.core.records import AllocationRecord
from grodt.core.topics import Topics
from grodt.experiments.meta_dataset import allocation_rows
from grodt.experiments.meta_train import fit_meta_model
from grodt.experiments.meta_train import pinball_loss
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from models.meta import CONTEXT_FEATURES
from models.meta import STRATEGY_FEATURES
from models.meta import MetaModel
from models.meta import feature_names
from node_configs.loader import load_backtest_document
from node_configs.model_refs import pin_model_references

DAY = 86_400 * 10**9


def _record(day: int, weights: dict[str, float], realised: dict[str, float], features=True):
    context = {f"{s}:realised_return": r for s, r in realised.items()}
    if features:
        for s in weights:
            context.update({f"{s}:{f}": float(day + i) for i, f in enumerate(STRATEGY_FEATURES)})
        context.update({f: 0.5 for f in CONTEXT_FEATURES})
    return AllocationRecord(
        ts_event=day * DAY,
        ts_init=day * DAY,
        component_id="MetaController",
        weights=weights,
        context=context,
    )


def _days(times: pd.Series) -> list[int]:
    return (times.astype("int64") // DAY).tolist()


def test_rows_pair_one_rebalance_features_with_the_next_windows_return():
    records = [
        _record(1, {"a": 0.5, "b": 0.5}, {"a": 0.01, "b": 0.02}, features=False),  # warm-up
        _record(2, {"a": 0.5, "b": 0.0}, {"a": 0.03, "b": 0.04}),
        _record(3, {"a": 0.5, "b": 0.5}, {"a": -0.05, "b": 0.0}),
        _record(4, {"a": 0.5, "b": 0.5}, {"a": 0.07, "b": 0.08}),
    ]
    rows = allocation_rows(list(reversed(records)), fold=3)
    # Day 1 has no features; b had no capital over (2, 3]; day 4 has no next window.
    assert list(zip(_days(rows["ts"]), rows["strategy"], strict=True)) == [
        (2, "a"),
        (3, "a"),
        (3, "b"),
    ]
    assert rows["target"].tolist() == [-0.05, 0.07, 0.08]
    assert rows["last_window_return"].tolist() == [0.03, -0.05, 0.0]
    assert _days(rows["end"]) == [3, 4, 4]
    assert rows["fold"].unique().tolist() == [3]
    assert rows.loc[0, "return"] == 2.0 and rows.loc[1, "sharpe"] == 4.0
    assert list(rows.columns[4:-2]) == feature_names()


def _synthetic_rows(n_days: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    names = feature_names()
    frames = []
    for strategy in ("a", "b", "c"):
        x = rng.normal(size=(n_days, len(names)))
        signal = x[:, names.index("sharpe")]
        y = 0.01 * signal + rng.normal(0.0, 0.01, n_days) * (1.0 + np.abs(x[:, 1]))
        frame = pd.DataFrame(x, columns=names)
        frame["ts"] = pd.date_range("2010-01-01", periods=n_days, freq="7D", tz="UTC")
        frame["end"] = frame["ts"] + pd.Timedelta(days=7)
        frame["strategy"] = strategy
        frame["target"] = y
        frame["last_window_return"] = rng.normal(0.0, 0.01, n_days)  # says nothing of y
        frames.append(frame)
    return pd.concat(frames).sort_values(["ts", "strategy"]).reset_index(drop=True)


def test_walk_forward_fit_is_out_of_sample_and_calibrated():
    rows = _synthetic_rows(700, 0)
    fit = fit_meta_model(rows, horizon_bars=5, n_splits=4, model_params={"n_estimators": 60})
    block = len(rows) // 5
    first_block_end = rows["ts"].iloc[block - 1]
    assert fit.predictions["ts"].min() >= first_block_end
    assert len(fit.predictions) == 4 * block
    metrics = fit.metrics
    assert abs(metrics["coverage"] - 0.8) < 0.05
    assert metrics["ece"] < 0.06
    assert metrics["directional_accuracy"] > 0.65 > metrics["naive_directional_accuracy"]
    assert metrics["pinball_q50"] == pytest.approx(
        pinball_loss(
            fit.predictions["target"].iloc[len(fit.predictions) // 2 :],
            fit.predictions["q50"].iloc[len(fit.predictions) // 2 :],
            0.5,
        ),
    )
    assert fit.model.trained_until_ns == rows["end"].max().value
    assert fit.model.feature_names == feature_names()


def test_pinball_loss_definition():
    assert pinball_loss(np.array([1.0, -1.0]), np.zeros(2), 0.9) == pytest.approx((0.9 + 0.1) / 2)


@pytest.mark.slow
def test_meta_train_and_evaluate_commands(sp500_catalog, tmp_path):
    runner = CliRunner()
    result = runner.invoke(
        main,
        [
            "meta",
            "train",
            str(REPO / "node_configs/backtest/rules_sp500_regime.yaml"),
            "--meta",
            str(REPO / "node_configs/components/actors/meta_controller_spx.yaml"),
            "--catalog",
            str(sp500_catalog),
            "--set",
            'start="2001-01-01"',
            "--set",
            'end="2005-12-31"',
            "--train",
            "2y",
            "--test",
            "1y",
            "--splits",
            "2",
            "--alias",
            "challenger",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["folds"] == 2
    assert report["rows"] > 150
    assert set(report["strategies"]) <= {
        "S1VwapEmaScalper-001",
        "S2MeanReversion-002",
        "S3Breakout-003",
    }
    model = MetaModel.load(report["model"])
    assert model.version_ == report["version"] and model.horizon_bars == 5
    assert {"coverage", "ece", "directional_accuracy", "naive_directional_accuracy"} <= set(
        model.metrics
    )
    rows = pd.read_parquet(report["dataset"])
    # Every row comes from a test window: none before the first fold's test start (2003).
    assert rows["ts"].min() >= pd.Timestamp("2003-01-01", tz="UTC")
    assert report["run_id"] is not None  # tracked, the model registered with the run
    evaluated = runner.invoke(
        main, ["meta", "evaluate", report["dataset"], "--splits", "2", "--json"]
    )
    assert evaluated.exit_code == 0, evaluated.output
    figures = json.loads(evaluated.output.strip().splitlines()[-1])["metrics"]
    assert figures["rows"] > 30
    too_many = runner.invoke(main, ["meta", "evaluate", report["dataset"], "--splits", "9"])
    assert too_many.exit_code == 2
    assert "training rows are too few for 9 walk-forward splits" in too_many.output
    # A fit never becomes champion ungated; the audited promotion makes it champion.
    config = str(REPO / "node_configs/backtest/rules_sp500_regime.yaml")
    ungated = runner.invoke(
        main, ["meta", "train", config, "--train", "2y", "--test", "1y", "--alias", "champion"]
    )
    assert ungated.exit_code == 2 and "does not become champion ungated" in ungated.output
    promoted = runner.invoke(
        main, ["models", "promote", "meta_performance", "1", "--reason", "first model"]
    )
    assert promoted.exit_code == 0, promoted.output
    # The registered model runs in a node by its alias, pinned to its version at load.
    document = pin_model_references(
        meta_document(
            {"policy": "predictive", "model": "meta_performance@champion"},
            start="2006-01-01",
            end="2006-12-31",
        ),
    )
    assert document["actors"][0]["config"]["model"] == "meta_performance/1"
    spec = load_backtest_document(document, "registry")
    outcome = run_backtest(
        spec, sp500_catalog, tmp_path / "registry", document=document, quiet=True
    )
    records = [s.record for s in read_run(outcome.run_dir, topics=[Topics.ALLOCATIONS])]
    assert any(r.policy == "predictive" and r.model_version == model.version_ for r in records)
    # The model saw every row: nothing is out of sample for it, and the command says so.
    refused = runner.invoke(
        main, ["meta", "evaluate", report["dataset"], "--model", report["model"]]
    )
    assert refused.exit_code == 2
    assert "nothing out of sample" in refused.output
