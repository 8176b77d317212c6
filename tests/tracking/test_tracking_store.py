"""Store resolution, config flattening and provenance (git state, catalog fingerprint)."""

import shutil
import subprocess
import time
from pathlib import Path

import pytest
from tracking_kit import write_node_config
from tracking_kit import write_tiny_catalog

from grodt.core.errors import ConfigError
from grodt.core.settings import get_settings
from grodt.tracking.flatten import flatten_metrics
from grodt.tracking.flatten import flatten_params
from grodt.tracking.flatten import sanitise_key
from grodt.tracking.provenance import catalog_fingerprint
from grodt.tracking.provenance import git_state
from grodt.tracking.store import probe
from grodt.tracking.store import redact_uri
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_config


def test_default_store_is_sqlite_in_the_runs_dir(runs_dir):
    store = resolve_store()
    assert store.embedded
    assert store.uri == f"sqlite:///{runs_dir.resolve() / 'mlflow.db'}"
    assert store.artifact_root == str(runs_dir.resolve() / "mlartifacts")


def test_resolution_order_and_postgres_driver(runs_dir, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "postgresql://u:pw@db:5432/mlflow")
    get_settings.cache_clear()
    store = resolve_store()
    assert store.uri == "postgresql+psycopg://u:pw@db:5432/mlflow"
    assert store.display_uri == "postgresql+psycopg://u:***@db:5432/mlflow"
    monkeypatch.setenv("GRODT_TRACKING_URI", "sqlite:////srv/track/mlflow.db")
    get_settings.cache_clear()
    assert resolve_store().uri == "sqlite:////srv/track/mlflow.db"
    assert resolve_store("http://tracking:5000").artifact_root is None
    with pytest.raises(ConfigError, match="unsupported scheme"):
        resolve_store("ftp://nope")
    with pytest.raises(ConfigError, match="file store"):
        resolve_store("/some/dir/mlruns")


def test_redaction_leaves_passwordless_uris_alone():
    assert redact_uri("sqlite:////a/b.db") == "sqlite:////a/b.db"
    assert "secret" not in redact_uri("postgresql+psycopg://me:secret@h/db")


def test_unreachable_postgres_is_detected_quickly():
    from grodt.test_kit.ports import free_port

    store = resolve_store(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/mlflow")
    started = time.monotonic()
    reason = probe(store, timeout=3)
    assert reason is not None and "refused" in reason.lower()
    assert time.monotonic() - started < 5


def test_flatten_params_indexes_component_lists_and_keeps_scalar_lists():
    document = {
        "name": "n",
        "data": [{"bar_types": ["A-1-DAY-LAST-EXTERNAL", "B-1-DAY-LAST-EXTERNAL"]}],
        "strategies": [{"path": "m:C", "config": {"fast": 5, "on": True, "w": None}}],
        "risk": {},
        "long": "x" * 7000,
        "weird key!": 1.5,
    }
    flat = flatten_params(document)
    assert flat["data.0.bar_types"] == '["A-1-DAY-LAST-EXTERNAL","B-1-DAY-LAST-EXTERNAL"]'
    assert flat["strategies.0.config.fast"] == "5"
    assert flat["strategies.0.config.on"] == "true"
    assert flat["strategies.0.config.w"] == "null"
    assert flat["risk"] == "{}"
    assert len(flat["long"]) == 6000 and flat["long"].endswith("[truncated]")
    assert flat["weird key_"] == "1.5"


def test_flatten_metrics_keeps_numbers_only():
    flat = flatten_metrics({"a": 1, "b": {"c": 2.5, "d": "x"}, "e": None, "f": True}, prefix="p")
    assert flat == {"p.a": 1.0, "p.b.c": 2.5, "p.f": 1.0}
    assert sanitise_key("../x//y") == "__/x/y"
    assert len(sanitise_key("k" * 400)) == 250


def test_catalog_fingerprint_follows_the_data_not_the_location(tiny_catalog, tmp_path):
    spec = load_backtest_config(write_node_config(tmp_path / "cfg"))
    first = catalog_fingerprint(spec, tiny_catalog)
    assert {Path(f.path).parts[1] for f in first.files} == {"bar", "equity"}
    copy = shutil.copytree(tiny_catalog, tmp_path / "copy")
    time.sleep(0.01)
    for path in copy.rglob("*.parquet"):
        path.touch()
    assert catalog_fingerprint(spec, copy).digest == first.digest
    assert catalog_fingerprint(spec, copy, mode="content").digest != first.digest  # other mode
    other = write_tiny_catalog(tmp_path / "other", seed=8)
    assert catalog_fingerprint(spec, other).digest != first.digest


def test_catalog_fingerprint_skips_files_outside_the_run_span(tiny_catalog, tmp_path):
    spec = load_backtest_config(write_node_config(tmp_path / "cfg"))
    late = spec.model_copy(update={"start": "2030-01-01"})
    fingerprint = catalog_fingerprint(late, tiny_catalog)
    assert [Path(f.path).parts[1] for f in fingerprint.files] == ["equity"]


def test_git_state_reports_commit_and_dirty_diff(tmp_path):
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path / "repo"
    repo.mkdir()

    def git(*args):
        subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)

    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    (repo / "f.txt").write_text("one\n")
    git("add", "f.txt")
    git("commit", "-q", "-m", "c")
    clean = git_state(repo)
    assert clean.commit and len(clean.commit) == 40 and not clean.dirty
    (repo / "f.txt").write_text("two\n")
    dirty = git_state(repo)
    assert dirty.commit == clean.commit and dirty.dirty and "+two" in dirty.diff
    plain = tmp_path / "plain"
    plain.mkdir()
    assert git_state(plain).commit is None
