"""Fixtures of the lifecycle tests: real MLflow registries (SQLite, and PostgreSQL started by the
suite), a small Markov-switching market in a tmp catalog, and settings pointed at a store."""

import shutil
from collections.abc import Callable
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from grodt.core.settings import get_settings
from grodt.test_kit.regime import regime_series
from grodt.test_kit.regime import write_catalog
from grodt.tracking.store import TrackingStore

INSTRUMENT = "LIFE.TEST"
BAR_TYPE = "LIFE.TEST-1-MINUTE-LAST-EXTERNAL"
_TEMPLATE_DB = "mlflow_lifecycle_template"
_db_counter = iter(range(1_000_000))


@pytest.fixture(scope="session")
def market() -> np.ndarray:
    """1,400 closes of a three-regime market (seed 5)."""
    return regime_series(1400, seed=5)[0]


@pytest.fixture(scope="session")
def lifecycle_catalog(tmp_path_factory: pytest.TempPathFactory, market: np.ndarray) -> Path:
    path = tmp_path_factory.mktemp("lifecycle-catalog")
    write_catalog(path, {INSTRUMENT: market})
    return path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated MLflow SQLite database to copy (migrations take seconds)."""
    import sqlite3

    from grodt.tracking.store import close_connections
    from grodt.tracking.store import open_client

    root = tmp_path_factory.mktemp("lifecycle-sqlite-template")
    open_client(TrackingStore(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=None))
    close_connections()
    connection = sqlite3.connect(root / "mlflow.db")
    connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    connection.close()
    return root / "mlflow.db"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[object]:
    """A PostgreSQL 15 server started for these tests, with a migrated template database."""
    from grodt.core.errors import GrodtError
    from grodt.test_kit.pgcluster import TemporaryPostgres
    from grodt.test_kit.pgcluster import find_pg_bin_dir
    from grodt.tracking.store import close_connections
    from grodt.tracking.store import open_client

    try:
        find_pg_bin_dir()
    except GrodtError as e:
        pytest.skip(f"PostgreSQL server binaries not available: {e}")
    server = TemporaryPostgres(max_connections=100)
    server.start()
    template = server.create_database(_TEMPLATE_DB)
    open_client(TrackingStore(uri=template, artifact_root=None))
    close_connections()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def registry(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TrackingStore]:
    """A fresh registry of ``store_kind``, made the configured store (GRODT_TRACKING_URI) with
    GRODT_RUNS_DIR in tmp."""
    if store_kind == "sqlite":
        shutil.copy(sqlite_template, tmp_path / "mlflow.db")
        uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    else:
        server = request.getfixturevalue("pg_server")
        uri = server.create_database(f"mlflow_lc_{next(_db_counter)}", template=_TEMPLATE_DB)
    store = TrackingStore(uri=uri, artifact_root=str(tmp_path / "artifacts"))
    monkeypatch.setenv("GRODT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GRODT_TRACKING_URI", uri)
    monkeypatch.setenv("GRODT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


@pytest.fixture
def sqlite_registry(
    tmp_path: Path,
    sqlite_template: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TrackingStore]:
    """A fresh SQLite registry made the configured store."""
    shutil.copy(sqlite_template, tmp_path / "mlflow.db")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("GRODT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GRODT_TRACKING_URI", uri)
    monkeypatch.setenv("GRODT_ARTIFACT_ROOT", str(tmp_path / "artifacts"))
    get_settings.cache_clear()
    yield TrackingStore(uri=uri, artifact_root=str(tmp_path / "artifacts"))
    get_settings.cache_clear()


@pytest.fixture
def go_offline(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Point the configured store at a PostgreSQL port nothing listens on."""

    def offline() -> None:
        from grodt.test_kit.ports import free_port

        uri = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/gone"
        monkeypatch.setenv("GRODT_TRACKING_URI", uri)
        get_settings.cache_clear()

    return offline
