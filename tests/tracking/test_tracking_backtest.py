"""`grodt backtest` logs to MLflow: SQLite by default, PostgreSQL by URI, offline then sync."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tracking_kit import write_node_config

from grodt.cli import main
from grodt.test_kit.ports import free_port
from grodt.tracking.bundle import TAG_BUNDLE_ID
from grodt.tracking.bundle import TAG_SYNC_COMPLETE
from grodt.tracking.bundle import read_bundle
from grodt.tracking.provenance import catalog_fingerprint
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import open_client
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_config


def backtest(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["backtest", *args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result.exit_code, result.stdout, result.stderr


def runs_of(store: TrackingStore, experiment: str) -> list:
    client = open_client(store)
    found = client.get_experiment_by_name(experiment)
    return client.search_runs([found.experiment_id]) if found else []


def assert_logged_like_the_run_dir(store: TrackingStore, run_id: str, run_dir: Path, spec, catalog):
    client = open_client(store)
    run = client.get_run(run_id)
    summary = json.loads((run_dir / "summary.json").read_text())
    params = run.data.params
    assert params["strategies.0.config.fast_ema_period"] == "5"
    assert params["strategies.0.path"] == "strategies.ema_cross:EMACross"
    assert params["venues.0.starting_balances"] == '["1000000 USD"]'
    assert params["catalog.fingerprint"] == catalog_fingerprint(spec, catalog).short
    assert len(params["git.commit"]) in (40, len("unknown"))
    assert params["git.dirty"] in ("true", "false")
    metrics = run.data.metrics
    for key in ("total_return", "sharpe", "max_drawdown", "trades", "final_equity"):
        assert metrics[key] == pytest.approx(summary[key]), key
    (strategy_id, stats), *_ = summary["strategies"].items()
    assert summary["trades"] > 0
    assert metrics[f"strategy.{strategy_id}.pnl"] == pytest.approx(stats["pnl"])
    assert metrics[f"strategy.{strategy_id}.trades"] == stats["trades"]
    equity = client.get_metric_history(run_id, "equity")
    assert len(equity) == summary["bars"]  # daily bars: one point per day
    assert equity[-1].value == pytest.approx(summary["final_equity"])
    top = {a.path for a in client.list_artifacts(run_id)}
    assert {"config.yaml", "summary.json", "tearsheet.html", "equity.parquet"} <= top
    reports = {a.path for a in client.list_artifacts(run_id, "reports")}
    assert {"reports/fills.csv", "reports/positions.csv", "reports/orders.csv"} <= reports
    provenance = {a.path for a in client.list_artifacts(run_id, "provenance")}
    assert "provenance/catalog_fingerprint.json" in provenance
    assert run.info.status == "FINISHED"
    assert run.data.tags[TAG_SYNC_COMPLETE] == "true"
    assert run.data.tags["grodt.run_dir"] == str(run_dir.resolve())


def test_backtest_logs_to_the_embedded_sqlite_store(runs_dir, tiny_catalog, tmp_path):
    config = write_node_config(tmp_path / "cfg")
    code, stdout, stderr = backtest([str(config), "--catalog", str(tiny_catalog), "--json"])
    assert code == 0, stderr
    payload = json.loads(stdout)  # --json: stdout holds exactly one JSON object
    tracking = payload["tracking"]
    assert tracking["status"] == "logged", tracking
    run_dir = Path(payload["run_dir"])
    assert payload["tearsheet"] == str(run_dir / "tearsheet.html")
    store = resolve_store()
    assert store.embedded and store.uri.endswith(f"{runs_dir.name}/mlflow.db")
    assert tracking["store"] == store.display_uri
    spec = load_backtest_config(config)
    assert_logged_like_the_run_dir(store, tracking["run_id"], run_dir, spec, tiny_catalog)

    # The human summary links the tearsheet and the MLflow run.
    code, stdout, _ = backtest([str(config), "--catalog", str(tiny_catalog)])
    assert code == 0
    assert "Tearsheet: file://" in stdout and "tearsheet.html" in stdout
    assert "Tracking: MLflow run " in stdout and "experiment 'tiny_ema'" in stdout
    runs = runs_of(store, "tiny_ema")
    assert len(runs) == 2
    compared = CliRunner().invoke(
        main,
        ["tracking", "compare", runs[0].info.run_id, runs[1].info.run_id],
    )
    assert compared.exit_code == 0, compared.output
    assert "sharpe" in compared.stdout and "strategy.EMACross-000.pnl" in compared.stdout


def test_backtest_logs_to_postgresql(runs_dir, tiny_catalog, tmp_path, pg_store):
    config = write_node_config(tmp_path / "cfg")
    code, stdout, stderr = backtest(
        [str(config), "--catalog", str(tiny_catalog), "--json", "--tracking-uri", pg_store.uri],
    )
    assert code == 0, stderr
    tracking = json.loads(stdout)["tracking"]
    assert tracking["status"] == "logged" and tracking["store"].startswith("postgresql+psycopg")
    run_dir = Path(json.loads(stdout)["run_dir"])
    spec = load_backtest_config(config)
    # Artifacts of a --tracking-uri store go to the runs dir's artifact root.
    store = TrackingStore(uri=pg_store.uri, artifact_root=str(runs_dir.resolve() / "mlartifacts"))
    assert_logged_like_the_run_dir(store, tracking["run_id"], run_dir, spec, tiny_catalog)


def test_unreachable_store_then_sync_uploads_once(runs_dir, tiny_catalog, tmp_path, pg_store):
    config = write_node_config(tmp_path / "cfg", name="offline_ema")
    dead = f"postgresql://grodt:s3cret@127.0.0.1:{free_port()}/mlflow"
    code, stdout, stderr = backtest(
        [str(config), "--catalog", str(tiny_catalog), "--tracking-uri", dead],
    )
    assert code == 0, stderr
    assert "unreachable" in stderr and "not logged:" in stderr
    assert "s3cret" not in stderr + stdout  # passwords never printed
    assert "Tracking: NOT logged" in stdout
    run_dir = next(Path(runs_dir, "offline_ema").iterdir())
    assert (run_dir / "summary.json").is_file() and (run_dir / "tearsheet.html").is_file()
    bundle = read_bundle(run_dir)
    assert bundle.synced == [] and "unreachable" in bundle.last_error
    assert f"grodt tracking sync {run_dir}" in stderr

    runner = CliRunner()
    first = runner.invoke(main, ["tracking", "sync", str(run_dir), "--tracking-uri", pg_store.uri])
    assert first.exit_code == 0, first.output
    assert "logged as run" in first.stdout
    second = runner.invoke(main, ["tracking", "sync", str(run_dir), "--tracking-uri", pg_store.uri])
    assert second.exit_code == 0 and "already logged" in second.stdout
    store = TrackingStore(uri=pg_store.uri, artifact_root=str(runs_dir.resolve() / "mlartifacts"))
    runs = runs_of(store, "offline_ema")
    assert len(runs) == 1
    assert runs[0].data.tags[TAG_BUNDLE_ID] == bundle.bundle_id
    assert_logged_like_the_run_dir(
        store,
        runs[0].info.run_id,
        run_dir,
        load_backtest_config(config),
        tiny_catalog,
    )

    # A half-finished upload (store lost mid-way) is replaced, not duplicated; --all finds
    # nothing else pending for this store.
    client = open_client(store)
    client.delete_run(runs[0].info.run_id)
    experiment_id = runs[0].info.experiment_id
    client.create_run(experiment_id, tags={TAG_BUNDLE_ID: bundle.bundle_id})
    third = runner.invoke(main, ["tracking", "sync", str(run_dir), "--tracking-uri", pg_store.uri])
    assert third.exit_code == 0 and "logged as run" in third.stdout
    runs = runs_of(store, "offline_ema")
    assert len(runs) == 1 and runs[0].data.tags[TAG_SYNC_COMPLETE] == "true"
    everything = runner.invoke(main, ["tracking", "sync", "--all", "--tracking-uri", pg_store.uri])
    assert everything.exit_code == 0 and "nothing to sync" in everything.stdout


def test_no_track_writes_a_bundle_that_sync_all_uploads(runs_dir, tiny_catalog, tmp_path):
    config = write_node_config(tmp_path / "cfg", name="later_ema")
    code, stdout, _ = backtest(
        [str(config), "--catalog", str(tiny_catalog), "--no-track", "--no-tearsheet"],
    )
    assert code == 0 and "Tracking: off" in stdout and "Tearsheet" not in stdout
    run_dir = next(Path(runs_dir, "later_ema").iterdir())
    assert not (run_dir / "tearsheet.html").exists()
    assert runs_of(resolve_store(), "later_ema") == []  # nothing was logged
    result = CliRunner().invoke(main, ["tracking", "sync", "--all"])
    assert result.exit_code == 0, result.output
    assert str(run_dir) in result.stdout and "logged as run" in result.stdout
    listing = CliRunner().invoke(main, ["tracking", "list", "--experiment", "later_ema"])
    assert listing.exit_code == 0 and "FINISHED" in listing.stdout
    status = CliRunner().invoke(main, ["tracking", "status", str(run_dir)])
    assert "logged to sqlite:///" in status.stdout
