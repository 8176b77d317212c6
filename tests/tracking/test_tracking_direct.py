"""Publishing to a current SQLite store without MLflow: what MLflow reads back, idempotence, and
the fallback to MLflow's API when the schema is not the installed MLflow's."""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from tracking_kit import write_node_config

from grodt.tracking.bundle import TAG_BUNDLE_ID
from grodt.tracking.bundle import TAG_SYNC_COMPLETE
from grodt.tracking.bundle import publish
from grodt.tracking.bundle import read_bundle
from grodt.tracking.bundle import write_bundle
from grodt.tracking.sqlite_direct import DirectRun
from grodt.tracking.sqlite_direct import DirectUnsupported
from grodt.tracking.sqlite_direct import mlflow_schema_head
from grodt.tracking.sqlite_direct import publish_direct
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import open_client
from grodt.tracking.store import resolve_store

# Run in a fresh process, so that "was MLflow imported?" means something.
SCRIPT = """
import json, sys
from grodt.cli import main
main(sys.argv[1:], standalone_mode=False)
print(json.dumps({"mlflow_imported": "mlflow" in sys.modules}))
"""


@pytest.fixture
def tracked_run(runs_dir, tiny_catalog, tmp_path) -> tuple[Path, dict]:
    config = write_node_config(tmp_path / "cfg", name="direct_ema")
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT, "backtest", str(config), "--catalog", str(tiny_catalog)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
        check=False,
    )
    assert result.returncode == 0, result.stderr
    marker = json.loads(result.stdout.strip().splitlines()[-1])
    run_dir = next(Path(runs_dir, "direct_ema").iterdir())
    return run_dir, marker


def test_a_backtest_is_logged_without_importing_mlflow(tracked_run):
    run_dir, marker = tracked_run
    assert marker["mlflow_imported"] is False
    bundle = read_bundle(run_dir)
    store = resolve_store()
    (record,) = bundle.synced
    client = open_client(store)
    run = client.get_run(record.run_id)
    assert run.info.status == "FINISHED" and run.info.lifecycle_stage == "active"
    assert run.info.run_name == bundle.run_name
    assert run.data.params == bundle.params
    logged = {key: run.data.metrics[key] for key in bundle.metrics}
    assert logged == pytest.approx(bundle.metrics, nan_ok=True)
    assert {"equity", "drawdown"} <= set(run.data.metrics)  # step series: their last values
    assert run.data.tags[TAG_BUNDLE_ID] == bundle.bundle_id
    assert run.data.tags[TAG_SYNC_COMPLETE] == "true"
    summary = json.loads((run_dir / "summary.json").read_text())
    history = client.get_metric_history(record.run_id, "equity")
    assert [m.step for m in history] == list(range(summary["bars"]))
    assert history[-1].value == pytest.approx(summary["final_equity"])
    experiment = client.get_experiment_by_name("direct_ema")
    assert experiment.experiment_id == record.experiment_id
    assert run.info.experiment_id == experiment.experiment_id
    top = {a.path for a in client.list_artifacts(record.run_id)}
    assert {"config.yaml", "summary.json", "tearsheet.html", "equity.parquet", "reports"} <= top
    local = Path(client.download_artifacts(record.run_id, "summary.json", str(run_dir / "dl")))
    assert local.read_bytes() == (run_dir / "summary.json").read_bytes()
    # MLflow's own search finds it like any run.
    found = client.search_runs([experiment.experiment_id], "metrics.trades >= 0")
    assert [r.info.run_id for r in found] == [record.run_id]


def test_publishing_again_finds_the_run_instead_of_duplicating_it(tracked_run):
    run_dir, _ = tracked_run
    store = resolve_store()
    first = read_bundle(run_dir).synced[0]
    again = publish(run_dir, store)
    assert (again.status, again.run_id) == ("already", first.run_id)
    # Without the local record, the bundle id tag in the store identifies the run.
    write_bundle(run_dir, read_bundle(run_dir).model_copy(update={"synced": []}))
    third = publish(run_dir, store)
    assert (third.status, third.run_id) == ("already", first.run_id)
    client = open_client(store)
    experiment = client.get_experiment_by_name("direct_ema")
    assert len(client.search_runs([experiment.experiment_id])) == 1


def test_a_store_on_another_schema_revision_is_left_to_mlflow(shared_sqlite_store, tmp_path):
    database = Path(shared_sqlite_store.uri.removeprefix("sqlite:///"))
    copy = tmp_path / "older.db"
    source = sqlite3.connect(database)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    assert target.execute("SELECT version_num FROM alembic_version").fetchone()[0] == (
        mlflow_schema_head()
    )
    target.execute("UPDATE alembic_version SET version_num = 'not-the-head'")
    target.commit()
    runs_before = target.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    target.close()
    store = TrackingStore(uri=f"sqlite:///{copy}", artifact_root=str(tmp_path / "artifacts"))
    run = DirectRun(
        experiment="x",
        run_name="x",
        start_ms=1,
        end_ms=2,
        status="FINISHED",
        params={"a": "1"},
        tags={},
        metrics=[("m", 1.0, 0, 2)],
        artifacts=[],
    )
    with pytest.raises(DirectUnsupported, match="not the installed MLflow's head"):
        publish_direct(tmp_path, store, run, (TAG_BUNDLE_ID, "b1"), TAG_SYNC_COMPLETE)
    check = sqlite3.connect(copy)
    assert check.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == runs_before
    assert check.execute("SELECT COUNT(*) FROM experiments WHERE name = 'x'").fetchone()[0] == 0
    check.close()
