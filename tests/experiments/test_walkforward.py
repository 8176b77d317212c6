"""Walk-forward over the engine: real BacktestNodes on the real S&P 500 sample, folds fitted on
their train windows only, always-on baseline, stitched curve, MLflow parent and nested runs."""

import json
import math
import sqlite3
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from grodt.core.errors import ConfigError
from grodt.experiments.baseline import always_on_document
from grodt.experiments.learners import learnables_of
from grodt.experiments.results import WalkForwardResult
from grodt.experiments.walkforward import run_walk_forward
from grodt.experiments.windows import bar_windows
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import close_connections
from grodt.tracking.store import open_client
from models.regime.hmm import GaussianRegimeHMM
from models.regime.hmm import RegimeFitError
from node_configs.loader import load_document
from research.cv import time_walk_forward

CONFIG = Path(__file__).resolve().parents[2] / "node_configs/backtest/rules_sp500_regime.yaml"
# Three and a quarter years of the real index: three 6-month test folds after 18-month train
# windows (no partial last window).
SPAN = ("start=2008-01-01", "end=2011-03-31")


@pytest.fixture(scope="module")
def tracking_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("wf-mlflow")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    open_client(TrackingStore(uri=uri, artifact_root=None))  # MLflow's schema, once
    close_connections()
    return uri


@pytest.fixture(scope="module")
def result(sp500_catalog: Path, tracking_uri: str, tmp_path_factory) -> WalkForwardResult:
    return run_walk_forward(
        CONFIG,
        sp500_catalog,
        train="18m",
        test="6m",
        run_dir=tmp_path_factory.mktemp("wf") / "run",
        overrides=SPAN,
        tracking_uri=tracking_uri,
    )


def test_folds_follow_their_train_windows_and_do_not_overlap(result: WalkForwardResult) -> None:
    assert len(result.folds) == 3
    previous_end = None
    for fold in result.folds:
        assert fold.train_end < fold.test_start
        assert previous_end is None or previous_end < fold.test_start
        previous_end = fold.test_end
        # The node ran exactly the test window.
        assert pd.Timestamp(fold.summary["start"]) == fold.test_start
        assert pd.Timestamp(fold.summary["end"]) == fold.test_end
        assert pd.Timestamp(fold.baseline_summary["start"]) == fold.test_start


def test_each_fold_starts_from_a_model_fitted_on_its_train_window_only(
    result: WalkForwardResult,
) -> None:
    versions = set()
    for fold in result.folds:
        (fitted,) = fold.fitted
        (path,) = fitted.artifacts
        model = GaussianRegimeHMM.load(path)
        assert fold.train_start.value <= model.train_start_ns_
        assert model.train_end_ns_ == fold.train_end.value
        config = (fold.run_dir / "config.yaml").read_text()
        assert str(path) in config
        assert "refit_every: 0" in config
        versions.add(model.version_)
    assert len(versions) == len(result.folds)  # refitted per fold


def test_baseline_runs_the_same_strategies_always_on(result: WalkForwardResult) -> None:
    import yaml

    fold = result.folds[0]
    routed = yaml.safe_load((fold.run_dir / "config.yaml").read_text())
    baseline = yaml.safe_load((fold.baseline_run_dir / "config.yaml").read_text())
    assert routed["actors"] and not baseline["actors"]
    assert [s["path"] for s in routed["strategies"]] == [s["path"] for s in baseline["strategies"]]
    for strategy in baseline["strategies"]:
        assert strategy["config"]["regime_affinity"] == {"bull": 1.0, "bear": 1.0, "sideways": 1.0}
    assert routed["strategies"][1]["config"]["regime_affinity"]["sideways"] == 1.0
    assert routed["strategies"][1]["config"]["regime_affinity"]["bull"] == 0.0


def test_stitched_curve_chains_the_fold_returns(result: WalkForwardResult) -> None:
    for figures, fold_figures in (
        (result.stitched_summary, [f.summary for f in result.folds]),
        (result.baseline_stitched_summary, [f.baseline_summary for f in result.folds]),
        (result.benchmark_stitched_summary, [f.summary["benchmark"] for f in result.folds]),
    ):
        chained = math.prod(1.0 + s["total_return"] for s in fold_figures) - 1.0
        assert figures["total_return"] == pytest.approx(chained, rel=1e-9, abs=1e-12)
    days = sum(len(pd.read_csv(f.run_dir / "equity_daily.csv")) for f in result.folds)
    assert result.stitched_summary["days"] == days
    stitched = pd.read_csv(result.run_dir / "stitched_equity.csv", index_col="date")
    assert list(stitched.columns) == ["equity", "baseline_equity", "benchmark_equity"]
    assert stitched["equity"].iloc[-1] == pytest.approx(
        result.folds[0].summary["starting_equity"] * (1 + result.stitched_summary["total_return"])
    )


def test_tearsheet_marks_every_fold_boundary(result: WalkForwardResult) -> None:
    page = result.tearsheet.read_text()
    for fold in result.folds:
        assert f'"x0":"{fold.test_start.date()}"' in page
    assert "Always-on baseline" in page and "Buy and hold" in page


def test_one_parent_run_with_a_nested_run_per_fold_and_variant(
    result: WalkForwardResult, tracking_uri: str
) -> None:
    tracking = result.tracking
    assert tracking["status"] == "logged"
    assert tracking["children"] == 2 * len(result.folds)
    database = tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        children = connection.execute(
            "SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?",
            (tracking["run_id"],),
        ).fetchall()
        sharpe = connection.execute(
            "SELECT value FROM metrics WHERE run_uuid = ? AND key = 'stitched.sharpe'",
            (tracking["run_id"],),
        ).fetchone()
    assert len(children) == 2 * len(result.folds)
    assert sharpe[0] == pytest.approx(result.stitched_summary["sharpe"])


def test_windows_by_time_map_to_the_bars_inside_them() -> None:
    index = pd.bdate_range("2010-01-01", "2013-01-02", tz="UTC")
    sliding = bar_windows(index, time_walk_forward(index, "1y", "6m"))
    expanding = bar_windows(index, time_walk_forward(index, "1y", "6m", expanding=True))
    assert len(sliding) == len(expanding) == 4
    assert all(f[0] == index[0] for f in expanding)
    day = pd.Timestamp
    assert sliding[1] == (
        day("2010-07-01", tz="UTC"),
        day("2011-06-30", tz="UTC"),
        day("2011-07-01", tz="UTC"),
        day("2011-12-30", tz="UTC"),
    )
    assert [f[2] for f in sliding] == [f[2] for f in expanding]


def test_bad_windows_are_errors_naming_the_option(sp500_catalog: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--step: 1m is shorter than --test 6m"):
        run_walk_forward(CONFIG, sp500_catalog, "1y", "6m", step="1m", overrides=SPAN, track=False)
    with pytest.raises(ConfigError, match="--train: duration '3 years' is not a positive"):
        run_walk_forward(CONFIG, sp500_catalog, "3 years", "6m", overrides=SPAN, track=False)
    with pytest.raises(ConfigError, match="no walk-forward fold fits"):
        run_walk_forward(CONFIG, sp500_catalog, "5y", "6m", overrides=SPAN, track=False)


def test_a_train_window_too_short_to_fit_names_the_fold(sp500_catalog: Path, tmp_path) -> None:
    with pytest.raises(RegimeFitError, match=r"fold 0 .*actors\[0\].*train window.*too few bars"):
        run_walk_forward(
            CONFIG, sp500_catalog, "2m", "6m", overrides=SPAN, track=False, run_dir=tmp_path
        )


def test_a_config_without_regime_routing_has_no_baseline_and_nothing_to_fit() -> None:
    plain = load_document(CONFIG.parent / "ema_cross_sp500.yaml")  # a plain Nautilus strategy
    assert always_on_document(plain) is None
    assert learnables_of(plain) == []
    # No regime actor, but the strategies' affinities scale them under the neutral prior:
    # the baseline is the same strategies at full size.
    prior_only = always_on_document(load_document(CONFIG.parent / "rules_sp500.yaml"))
    assert prior_only is not None
    assert {s["config"]["regime_affinity"]["sideways"] for s in prior_only["strategies"]} == {1.0}
    regime = load_document(CONFIG)
    assert [learnable.location for learnable in learnables_of(regime)] == ["actors[0]"]


def test_cli_walkforward_json(sp500_catalog: Path, tmp_path: Path) -> None:
    from grodt.cli import main

    outcome = CliRunner().invoke(
        main,
        [
            "research",
            "walkforward",
            str(CONFIG),
            "--train",
            "2y",
            "--test",
            "1y",
            "--catalog",
            str(sp500_catalog),
            "--no-track",
            "--json",
            "--run-dir",
            str(tmp_path / "cli"),
            *(f"--set={o}" for o in SPAN),
        ],
    )
    assert outcome.exit_code == 0, outcome.output
    payload = json.loads(outcome.output.strip().splitlines()[-1])
    assert payload["folds"] == 1
    assert payload["fold_rows"][0]["test_start"].startswith("2010-01-04")
    assert set(payload["stitched"]) >= {"sharpe", "total_return", "max_drawdown"}
    assert (tmp_path / "cli" / "walkforward.html").is_file()


def test_a_malformed_tracking_store_fails_before_any_fold_runs(
    sp500_catalog: Path, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="unsupported scheme 'bogus'"):
        run_walk_forward(
            CONFIG,
            sp500_catalog,
            "18m",
            "6m",
            overrides=SPAN,
            tracking_uri="bogus://x",
            run_dir=tmp_path / "run",
        )
    assert not (tmp_path / "run").exists()


def test_parent_run_holds_the_stitched_risk_and_credibility(
    result: WalkForwardResult, tracking_uri: str
) -> None:
    from grodt.experiments.walkforward_tracking import stitched_returns
    from research.risk_metrics import risk_summary

    returns = stitched_returns(result)
    # The returns behind the risk figures are the stitched curve's: same days, same compounding.
    assert len(returns) == result.stitched_summary["days"]
    assert math.prod(1.0 + returns) - 1.0 == pytest.approx(
        result.stitched_summary["total_return"], rel=1e-9, abs=1e-12
    )
    expected = {
        f"risk.{k}": v
        for k, v in risk_summary(returns, stitched_returns(result, "benchmark_equity")).items()
    }
    expected.update(
        {
            f"credibility.{k}": result.credibility[k]
            for k in ("dsr", "psr", "min_track_record_length")
        }
    )
    database = tracking_uri.removeprefix("sqlite:///")
    with sqlite3.connect(database) as connection:
        logged = dict(
            connection.execute(
                "SELECT key, value FROM metrics WHERE run_uuid = ? AND "
                "(key LIKE 'risk.%' OR key LIKE 'baseline_risk.%' OR key LIKE 'credibility.%')",
                (result.tracking["run_id"],),
            ).fetchall()
        )
    for key in ("var_95", "cvar_95", "var_99", "cvar_99", "tail_ratio", "beta"):
        assert f"risk.{key}" in logged and f"baseline_risk.{key}" in logged
    assert logged["risk.cvar_99"] <= logged["risk.var_99"] <= logged["risk.var_95"] < 0.0
    assert math.isfinite(logged["risk.beta"])
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, rel=1e-9, nan_ok=True), key
