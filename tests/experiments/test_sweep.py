"""Sweeps (issue 16 §6): Optuna over node-config parameters, trials on a local pool or on a real
Ray head on loopback, each trial a real BacktestNode run tracked as a nested MLflow run.

Data: the real daily S&P 500 sample, one or two years of it (a trial runs in well under a second).
"""

import json
import math
import sqlite3
import sys
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.experiments.sweep import run_sweep
from grodt.experiments.sweep_params import parse_param
from grodt.experiments.sweep_storage import study_storage_url
from grodt.tracking.store import TrackingStore

CONFIG = Path("node_configs/backtest/ema_cross_sp500.yaml")
FAST = "strategies[0].config.fast_ema_period"
SLOW = "strategies[0].config.slow_ema_period"
TWO_YEARS = ("start=2010-01-01", "end=2011-12-31")


def _store(root: Path) -> TrackingStore:
    return TrackingStore(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "art"))


def _sweep(root: Path, catalog: Path, **kwargs):
    options = {
        "params": [parse_param(f"{FAST}=int:5:25"), parse_param(f"{SLOW}=int:30:80:10")],
        "n_trials": 4,
        "catalog": catalog,
        "sampler": "tpe",
        "seed": 11,
        "workers": 2,
        "overrides": TWO_YEARS,
        "sweep_dir": root / "sweep",
        "store": _store(root),
    }
    options.update(kwargs)
    return run_sweep(CONFIG, **options)


def _trials(result) -> list[tuple[int, dict, float]]:
    return [(t.number, t.params, round(t.value, 12)) for t in result.trials]


@pytest.fixture(scope="module")
def local_sweep(sp500_catalog, tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("local"), sp500_catalog)


# -- parameter specs ---------------------------------------------------------------------------


def test_param_specs_parse_into_distributions_and_grids():
    spec = parse_param(f"{FAST}=int:5:30:5")
    assert spec.grid() == [5, 10, 15, 20, 25, 30]
    assert parse_param("x=float:0.001:1:log").distribution().log
    assert parse_param("x=float:0:1:0.25").grid() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert parse_param("venues[0].fill_at=choice:close,next_open").choices == (
        "close",
        "next_open",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "expected PATH="),
        ("x=int:5", "expected int:LOW:HIGH"),
        ("x=int:a:3", "'a' is not an integer"),
        ("x=int:9:3", "LOW 9 is above HIGH 3"),
        ("x=int:1:3:0", "STEP must be positive"),
        ("x=float:0:1:log", "needs LOW > 0"),
        ("x=normal:0:1", "unknown kind 'normal'"),
        ("a..b=int:1:2", "malformed path 'a..b'"),
        ("x=choice:", "choice needs values"),
    ],
)
def test_bad_param_specs_name_the_param(text, message):
    with pytest.raises(ConfigError, match="--param") as error:
        parse_param(text)
    assert message in str(error.value)


def test_grid_of_a_continuous_float_is_refused():
    with pytest.raises(ConfigError, match="needs a step"):
        parse_param("x=float:0:1").grid()


# -- sweeps ------------------------------------------------------------------------------------


def test_local_sweep_runs_tracks_and_judges_the_best_trial(local_sweep, tmp_path_factory):
    result = local_sweep
    assert [t.number for t in result.trials] == [0, 1, 2, 3]
    assert all(t.state == "COMPLETE" and math.isfinite(t.value) for t in result.trials)
    for trial in result.trials:
        assert 5 <= trial.params[FAST] <= 25
        assert trial.params[SLOW] in (30, 40, 50, 60, 70, 80)
        # The trial really ran those values: its run's resolved config holds them.
        config = (Path(trial.run_dir) / "config.yaml").read_text()
        assert f"fast_ema_period: {trial.params[FAST]}" in config
        assert f"slow_ema_period: {trial.params[SLOW]}" in config
        summary = json.loads((Path(trial.run_dir) / "summary.json").read_text())
        assert summary["sharpe"] == pytest.approx(trial.value)
        assert summary["start"].startswith("2010-01-")
    best = max(result.trials, key=lambda t: t.value)
    assert result.best is not None
    assert result.best.number == best.number
    figures = result.credibility
    assert figures["n_trials"] == 4
    assert 0.0 <= figures["dsr"] <= figures["psr"] <= 1.0  # deflating never raises the bar
    assert 0.0 <= figures["pbo"] <= 1.0
    assert figures["sharpe"] == pytest.approx(best.value, rel=1e-9)

    # The study is in its own SQLite file beside the tracking store, shared through it.
    import optuna

    storage = study_storage_url(_store(Path(result.sweep_dir).parent))
    assert storage.endswith("/optuna.db")
    study = optuna.load_study(study_name=result.study_name, storage=storage)
    assert [t.value for t in study.trials] == pytest.approx([t.value for t in result.trials])

    # MLflow: one parent run, a nested run per trial carrying the trial's metrics.
    database = Path(result.sweep_dir).parent / "mlflow.db"
    with sqlite3.connect(database) as db:
        parent = result.tracking["run_id"]
        children = db.execute(
            "SELECT run_uuid FROM tags WHERE key = 'mlflow.parentRunId' AND value = ?",
            (parent,),
        ).fetchall()
        assert {row[0] for row in children} == {t.run_id for t in result.trials}
        dsr = db.execute(
            "SELECT value FROM metrics WHERE run_uuid = ? AND key = 'credibility.dsr'",
            (parent,),
        ).fetchone()
        assert dsr[0] == pytest.approx(figures["dsr"])
        sharpe = db.execute(
            "SELECT value FROM metrics WHERE run_uuid = ? AND key = 'sharpe'",
            (result.trials[0].run_id,),
        ).fetchone()
        assert sharpe[0] == pytest.approx(result.trials[0].value)


def test_sweep_parent_run_holds_the_best_trials_risk_and_credibility(local_sweep):
    from research.performance import daily_returns
    from research.risk_metrics import risk_summary

    result = local_sweep
    # The best trial's daily returns, read back from its own run directory.
    equity = pd.read_parquet(Path(result.best.run_dir) / "equity.parquet")
    summary = json.loads((Path(result.best.run_dir) / "summary.json").read_text())
    expected = risk_summary(daily_returns(equity["equity"], summary["starting_equity"]))
    assert result.risk == pytest.approx(expected, rel=1e-9)
    assert result.risk["cvar_99"] <= result.risk["var_99"] <= result.risk["var_95"] < 0.0
    database = Path(result.sweep_dir).parent / "mlflow.db"
    with sqlite3.connect(database) as db:
        logged = dict(
            db.execute(
                "SELECT key, value FROM metrics WHERE run_uuid = ? AND "
                "(key LIKE 'risk.%' OR key LIKE 'credibility.%')",
                (result.tracking["run_id"],),
            ).fetchall()
        )
    for key, value in expected.items():
        assert logged[f"risk.{key}"] == pytest.approx(value, rel=1e-9), key
    for key in ("dsr", "psr", "min_track_record_length", "pbo"):
        assert logged[f"credibility.{key}"] == pytest.approx(
            result.credibility[key], rel=1e-9, nan_ok=True
        ), key
    saved = json.loads((Path(result.sweep_dir) / "sweep.json").read_text())
    assert saved["risk"] == pytest.approx(expected, rel=1e-9)


def test_same_seed_same_trials(local_sweep, sp500_catalog, tmp_path):
    again = _sweep(tmp_path, sp500_catalog)
    assert _trials(again) == _trials(local_sweep)
    other = _sweep(tmp_path / "other", sp500_catalog, seed=12)
    assert [t.params for t in other.trials] != [t.params for t in local_sweep.trials]


@pytest.mark.slow
def test_ray_cluster_gives_the_local_pool_results(local_sweep, sp500_catalog, tmp_path):
    pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'grodt[ray]')")
    from grodt.test_kit.ray import ray_head

    with ray_head(num_cpus=2) as head:
        on_ray = _sweep(tmp_path, sp500_catalog, ray_address=head.address)
    assert on_ray.executor.startswith("Ray cluster")
    assert _trials(on_ray) == _trials(local_sweep)
    assert on_ray.credibility["dsr"] == pytest.approx(local_sweep.credibility["dsr"])


def test_grid_sweep_from_the_cli_covers_the_grid_once(sp500_catalog, tmp_path, monkeypatch):
    from grodt.cli import main

    monkeypatch.setenv("GRODT_RUNS_DIR", str(tmp_path / "runs"))
    from grodt.core.settings import get_settings

    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(
            main,
            [
                "research",
                "sweep",
                str(CONFIG),
                "--catalog",
                str(sp500_catalog),
                "--param",
                f"{FAST}=choice:10,20",
                "--param",
                f"{SLOW}=choice:40,60",
                "--trials",
                "10",
                "--sampler",
                "grid",
                "--seed",
                "3",
                "--set",
                TWO_YEARS[0],
                "--set",
                TWO_YEARS[1],
                "--json",
            ],
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout.strip().splitlines()[-1])
    combos = sorted((t["params"][FAST], t["params"][SLOW]) for t in payload["trials"])
    assert combos == [(10, 40), (10, 60), (20, 40), (20, 60)]
    assert payload["best"]["value"] == max(t["value"] for t in payload["trials"])
    assert payload["tracking"]["status"] in ("logged", "already")
    assert (tmp_path / "runs" / "optuna.db").is_file()
    assert "dsr" in payload["credibility"]


def test_a_failing_trial_is_recorded_and_the_sweep_goes_on(sp500_catalog, tmp_path):
    # slow 10 with fast 20 breaks EMACross' own rule (slow must exceed fast) inside the trial.
    result = _sweep(
        tmp_path,
        sp500_catalog,
        params=[parse_param(f"{SLOW}=choice:60,10")],
        sampler="grid",
        workers=1,
        store=None,
    )
    by_slow = {t.params[SLOW]: t for t in result.trials}
    assert by_slow[60].state == "COMPLETE"
    assert by_slow[10].state == "FAIL"
    assert "slow_ema_period" in (by_slow[10].error or "")
    assert result.best is not None
    assert result.best.number == by_slow[60].number
    assert result.tracking["status"] == "disabled"


def test_config_errors_fail_before_any_trial(sp500_catalog, tmp_path):
    with pytest.raises(ConfigError, match="no_such_field"):
        _sweep(
            tmp_path,
            sp500_catalog,
            params=[parse_param("strategies[0].config.no_such_field=int:1:2")],
        )
    with pytest.raises(ConfigError, match="does not exist"):
        _sweep(tmp_path, tmp_path / "no-catalog")
    assert not (tmp_path / "sweep").exists()


def test_every_trial_failing_is_an_error(sp500_catalog, tmp_path):
    # 20 bars and EMAs of 30+ bars: no cross, no trade, no Sharpe ratio in any trial.
    with pytest.raises(GrodtError, match=r"every trial of sweep .* failed.*not a number"):
        _sweep(
            tmp_path,
            sp500_catalog,
            params=[parse_param(f"{SLOW}=choice:60,70")],
            overrides=("start=2010-01-01", "end=2010-01-29"),
            sampler="grid",
            workers=1,
            store=None,
        )


def test_ray_without_the_extra_names_it(monkeypatch):
    from grodt.experiments.sweep_executors import open_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` meets without the extra
    with pytest.raises(ConfigError, match=r"pip install 'grodt\[ray\]'"):
        open_executor(2, "auto")


def test_postgresql_tracking_keeps_the_study_in_its_own_schema(tmp_path):
    from grodt.test_kit.pgcluster import TemporaryPostgres
    from grodt.test_kit.pgcluster import find_pg_bin_dir

    try:
        find_pg_bin_dir()
    except GrodtError as e:
        pytest.skip(f"PostgreSQL server binaries not available: {e}")
    import optuna
    import sqlalchemy

    from grodt.experiments.sweep_storage import open_storage

    server = TemporaryPostgres()
    server.start()
    try:
        uri = server.create_database("tracking")
        store = TrackingStore(uri=uri, artifact_root=None)
        url = study_storage_url(store)
        assert url == uri
        study = optuna.create_study(study_name="s", storage=open_storage(url))
        study.optimize(lambda trial: trial.suggest_int("x", 0, 3), n_trials=2)
        again = optuna.load_study(study_name="s", storage=open_storage(url))
        assert len(again.trials) == 2
        engine = sqlalchemy.create_engine(uri)
        try:
            with engine.connect() as connection:
                schemas = dict(
                    connection.exec_driver_sql(
                        "SELECT table_name, table_schema FROM information_schema.tables "
                        "WHERE table_name IN ('studies', 'trials', 'alembic_version')",
                    ).fetchall(),
                )
        finally:
            engine.dispose()
        assert schemas == {"studies": "optuna", "trials": "optuna", "alembic_version": "optuna"}
    finally:
        server.stop()


def test_walkforward_objective_is_the_stitched_out_of_sample_sharpe(sp500_catalog, tmp_path):
    result = _sweep(
        tmp_path,
        sp500_catalog,
        params=[parse_param(f"{FAST}=choice:10,20")],
        objective="walkforward",
        walk_forward={"train": "1y", "test": "6m"},
        overrides=("start=2009-01-01", "end=2011-12-31"),
        sampler="grid",
        store=None,
    )
    assert len(result.trials) == 2
    for trial in result.trials:
        written = json.loads((Path(trial.run_dir) / "summary.json").read_text())
        assert written["folds"] == trial.summary["folds"] >= 2
        assert trial.value == pytest.approx(written["stitched"]["sharpe"])
        # The EMA cross has no regime routing: no baseline to run; buy and hold beside it.
        assert trial.summary["baseline_sharpe"] is None
        assert trial.summary["benchmark_sharpe"] == pytest.approx(
            written["benchmark_stitched"]["sharpe"]
        )
    with pytest.raises(ConfigError, match="needs --train and --test"):
        _sweep(tmp_path, sp500_catalog, objective="walkforward")


def test_a_named_study_is_shared_by_later_sweeps(sp500_catalog, tmp_path):
    first = _sweep(
        tmp_path / "a",
        sp500_catalog,
        n_trials=2,
        study_name="shared",
        store=None,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    second = _sweep(
        tmp_path / "b",
        sp500_catalog,
        n_trials=2,
        study_name="shared",
        store=None,
        storage=f"sqlite:///{tmp_path / 'optuna.db'}",
    )
    assert [t.number for t in first.trials] == [0, 1]
    assert [t.number for t in second.trials] == [2, 3]
    # The second sweep judges the best of all four trials, by every trial's stored returns.
    assert second.credibility["n_trials"] == 4
    every = first.trials + second.trials
    assert second.best.value == max(t.value for t in every)
