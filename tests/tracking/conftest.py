"""Fixtures of the tracking tests: a real PostgreSQL server, SQLite stores, a tiny catalog,
a headless Chromium."""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from tracking_kit import write_tiny_catalog

from grodt.core.settings import get_settings
from grodt.tracking.store import TrackingStore


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A PostgreSQL server started by the suite (as the `postgres` user when run as root)."""
    from grodt.core.errors import GrodtError
    from grodt.test_kit.pgcluster import TemporaryPostgres
    from grodt.test_kit.pgcluster import find_pg_bin_dir

    try:
        find_pg_bin_dir()
    except GrodtError as e:
        pytest.skip(f"PostgreSQL server binaries not available: {e}")
    from grodt.tracking.store import close_connections
    from grodt.tracking.store import open_client

    server = TemporaryPostgres(max_connections=200)
    server.start()
    # MLflow's schema migrations take seconds: run them once, then copy the database.
    template = server.create_database(TEMPLATE_DB)
    open_client(TrackingStore(uri=template, artifact_root=None))
    close_connections()
    yield server
    server.stop()


TEMPLATE_DB = "mlflow_template"
_db_counter = iter(range(1_000_000))


@pytest.fixture
def pg_store(pg_server, tmp_path) -> TrackingStore:
    """A fresh MLflow database on the suite's PostgreSQL server (a copy of the migrated
    template)."""
    uri = pg_server.create_database(f"mlflow_{next(_db_counter)}", template=TEMPLATE_DB)
    return TrackingStore(uri=uri, artifact_root=str(tmp_path / "pg-artifacts"))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    """An MLflow SQLite database with the schema created, to copy (migrations take seconds)."""
    import sqlite3

    from grodt.tracking.store import close_connections
    from grodt.tracking.store import open_client

    root = tmp_path_factory.mktemp("sqlite-template")
    open_client(TrackingStore(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=None))
    close_connections()
    # WAL mode: fold the log into the main file so that copying mlflow.db alone is complete.
    connection = sqlite3.connect(root / "mlflow.db")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return root / "mlflow.db"


@pytest.fixture(scope="session")
def shared_sqlite_store(tmp_path_factory, sqlite_template) -> TrackingStore:
    """One SQLite store for the session (creating MLflow's schema costs seconds)."""
    root = tmp_path_factory.mktemp("sqlite-store")
    shutil.copy(sqlite_template, root / "mlflow.db")
    return TrackingStore(
        uri=f"sqlite:///{root / 'mlflow.db'}",
        artifact_root=str(root / "mlartifacts"),
    )


@pytest.fixture
def runs_dir(tmp_path, monkeypatch, sqlite_template) -> Path:
    """GRODT_RUNS_DIR in a temp dir, holding the embedded default store (an empty, migrated
    copy of the template)."""
    path = tmp_path / "runs"
    path.mkdir()
    shutil.copy(sqlite_template, path / "mlflow.db")
    monkeypatch.setenv("GRODT_RUNS_DIR", str(path))
    monkeypatch.delenv("GRODT_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    get_settings.cache_clear()
    yield path
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def tiny_catalog(tmp_path_factory) -> Path:
    return write_tiny_catalog(tmp_path_factory.mktemp("tiny-catalog"))


@pytest.fixture(scope="session")
def chromium() -> tuple[str, str]:
    """(chromium, chromedriver) paths; installs the Debian packages as root if missing."""
    from tracking_kit_chromium import find_binaries
    from tracking_kit_chromium import install_chromium

    reason = install_chromium()
    found = find_binaries()
    if found is None:
        pytest.skip(f"headless Chromium unavailable: {reason}")
    return found


@pytest.fixture
def copy_tree():
    def copy(source: Path, target: Path) -> Path:
        shutil.copytree(source, target)
        return target

    return copy
