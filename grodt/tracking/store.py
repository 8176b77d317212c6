"""Where runs are tracked: resolve the MLflow store, probe it, and open a client.

Resolution order of the tracking URI:

1. an explicit ``uri`` argument (``--tracking-uri``);
2. ``GRODT_TRACKING_URI`` (``grodt.core.settings``);
3. MLflow's own ``MLFLOW_TRACKING_URI``;
4. the embedded default: ``sqlite:///<runs_dir>/mlflow.db`` — no server needed.

Artifacts go to ``GRODT_ARTIFACT_ROOT`` when set (a directory, ``s3://…``), else to
``<runs_dir>/mlartifacts`` beside the database; an HTTP tracking server decides for itself.
A ``postgresql://`` URI is read as ``postgresql+psycopg://`` (psycopg 3 is the installed
driver).

Before anything is logged, :func:`probe` checks the store answers within a few seconds:
MLflow itself retries an unreachable database for ~100 s before failing, which is not what a
researcher waiting for a backtest summary wants.
"""

import contextlib
import logging
import os
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

from grodt.core.errors import ConfigError
from grodt.core.settings import Settings
from grodt.core.settings import get_settings

if TYPE_CHECKING:
    from mlflow import MlflowClient

logger = logging.getLogger("grodt.tracking")

DEFAULT_DB_NAME = "mlflow.db"
DEFAULT_ARTIFACT_DIR = "mlartifacts"
PROBE_TIMEOUT_S = 5.0
_QUIET_LOGGERS = (
    "alembic",
    "mlflow.store.db.utils",
    "mlflow.store.db",
    "mlflow.tracking",
    "mlflow.pyfunc",
    "mlflow.models",
)
_initialised: set[str] = set()
_init_lock = threading.Lock()


@dataclass(frozen=True)
class TrackingStore:
    """A resolved tracking store.

    Attributes
    ----------
    uri : str
        MLflow tracking URI (also used as the model registry URI).
    artifact_root : str | None
        Root for new experiments' artifacts (``None``: the tracking server decides).
    embedded : bool
        True for the default SQLite store in the runs directory.
    """

    uri: str
    artifact_root: str | None
    embedded: bool = False

    @property
    def scheme(self) -> str:
        return urlsplit(self.uri).scheme.split("+")[0]

    @property
    def display_uri(self) -> str:
        """The URI with any password removed (safe to print and to store in run bundles)."""
        return redact_uri(self.uri)

    def experiment_artifact_location(self, experiment: str) -> str | None:
        if self.artifact_root is None:
            return None
        root = self.artifact_root.rstrip("/")
        return f"{root}/{experiment}"


def redact_uri(uri: str) -> str:
    """``scheme://user:secret@host/db`` → ``scheme://user:***@host/db``."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def normalise_uri(uri: str) -> str:
    """Map driver-less PostgreSQL URIs onto the installed psycopg 3 driver."""
    for prefix in ("postgresql://", "postgres://"):
        if uri.startswith(prefix):
            return "postgresql+psycopg://" + uri[len(prefix) :]
    if uri.startswith("postgresql+psycopg2://"):
        return "postgresql+psycopg://" + uri[len("postgresql+psycopg2://") :]
    return uri


def resolve_store(uri: str | None = None, settings: Settings | None = None) -> TrackingStore:
    """The tracking store this process logs to (see the module docstring for the order)."""
    settings = settings or get_settings()
    runs_dir = Path(settings.runs_dir).expanduser().resolve()
    chosen = uri or settings.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or None
    artifact_root = getattr(settings, "artifact_root", None) or os.environ.get(
        "GRODT_ARTIFACT_ROOT",
    )
    if not chosen:
        return TrackingStore(
            uri=f"sqlite:///{runs_dir / DEFAULT_DB_NAME}",
            artifact_root=str(artifact_root or runs_dir / DEFAULT_ARTIFACT_DIR),
            embedded=True,
        )
    chosen = normalise_uri(str(chosen).strip())
    scheme = urlsplit(chosen).scheme.split("+")[0]
    if scheme in ("http", "https", "databricks"):
        return TrackingStore(
            uri=chosen, artifact_root=str(artifact_root) if artifact_root else None
        )
    if scheme in ("sqlite", "postgresql", "mysql", "mssql"):
        return TrackingStore(
            uri=chosen,
            artifact_root=str(artifact_root or runs_dir / DEFAULT_ARTIFACT_DIR),
        )
    if scheme in ("", "file"):
        raise ConfigError(
            f"GRODT_TRACKING_URI={chosen!r}: the file store cannot hold a model registry and "
            "is deprecated by MLflow; use sqlite:///path/mlflow.db or "
            "postgresql+psycopg://user@host/db",
        )
    raise ConfigError(
        f"GRODT_TRACKING_URI={redact_uri(chosen)!r}: unsupported scheme {scheme!r} (use "
        "sqlite:///…, postgresql+psycopg://…, or http(s)://… for an MLflow server)",
    )


def sqlite_database(uri: str) -> str | None:
    """The database path of a ``sqlite:///path`` URI (as SQLAlchemy's ``make_url`` reads it,
    without importing SQLAlchemy: ~0.3 s of a short backtest); ``None`` for in-memory."""
    rest = uri.split("://", 1)[1] if "://" in uri else ""
    database = rest[1:].split("?", 1)[0] if rest.startswith("/") else ""
    return database or None


def probe(store: TrackingStore, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Check the store answers; return ``None`` if it does, else the reason it does not."""
    try:
        if store.scheme == "sqlite":
            database = sqlite_database(store.uri)
            if not database or database == ":memory:":
                return None
            path = Path(database)
            path.parent.mkdir(parents=True, exist_ok=True)
            if not os.access(path.parent, os.W_OK):
                return f"{path.parent} is not writable"
            return None
        if store.scheme in ("http", "https"):
            url = store.uri.rstrip("/") + "/health"
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return None if response.status == 200 else f"HTTP {response.status} from {url}"
        import sqlalchemy

        connect_args: dict[str, object] = {}
        if store.scheme in ("postgresql", "mysql"):
            connect_args["connect_timeout"] = max(int(timeout), 1)
        engine = sqlalchemy.create_engine(store.uri, connect_args=connect_args)
        try:
            with engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
        finally:
            engine.dispose()
        return None
    except (OSError, urllib.error.URLError) as e:
        return f"{type(e).__name__}: {e}"
    except Exception as e:  # driver errors have no common base outside sqlalchemy
        cause = getattr(e, "orig", None) or e
        text = str(cause).strip()
        return f"{type(cause).__name__}: {text.splitlines()[0] if text else ''}"


@contextlib.contextmanager
def quiet_mlflow() -> Iterator[None]:
    """Silence MLflow's and alembic's INFO chatter (schema migrations, progress bars) so that
    ``--json`` output and CLI summaries stay clean; warnings still show."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    saved = {}
    for name in _QUIET_LOGGERS:
        log = logging.getLogger(name)
        saved[name] = log.level
        # Model saving warns that a signature cannot be inferred: grodt models take arrays.
        floor = logging.ERROR if name in ("mlflow.pyfunc", "mlflow.models") else logging.WARNING
        if log.level == logging.NOTSET or log.level < floor:
            log.setLevel(floor)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


def close_connections() -> None:
    """Close every pooled database connection of this process (engines reconnect on next
    use). Needed before a database can be dropped or used as a template."""
    import gc

    import sqlalchemy

    for obj in gc.get_objects():
        if isinstance(obj, sqlalchemy.engine.Engine):
            obj.dispose()


def forget_inherited_connections() -> None:
    """Drop database connections inherited from a parent process, without closing them.

    A forked child that reuses its parent's pooled connections corrupts both processes'
    sessions ("server closed the connection unexpectedly"). :func:`open_client` calls this
    automatically the first time it runs in a forked child; MLflow then opens fresh engines.
    """
    import gc

    import sqlalchemy

    for obj in gc.get_objects():
        if isinstance(obj, sqlalchemy.engine.Engine):
            obj.dispose(close=False)
    try:
        from mlflow.tracking._model_registry.registry import ModelRegistryStoreRegistry
        from mlflow.tracking._tracking_service.registry import TrackingStoreRegistry
    except ImportError:  # pragma: no cover - MLflow internals moved; engines are disposed anyway
        pass
    else:
        TrackingStoreRegistry._get_store_with_resolved_uri.cache_clear()
        ModelRegistryStoreRegistry._get_store_with_resolved_uri.cache_clear()
    _initialised.clear()


_owner_pid = os.getpid()


def _check_fork() -> None:
    global _owner_pid
    if os.getpid() != _owner_pid:
        with _init_lock:
            if os.getpid() != _owner_pid:
                forget_inherited_connections()
                _owner_pid = os.getpid()


def open_client(store: TrackingStore) -> "MlflowClient":
    """An MLflow client on ``store`` (tracking and registry), creating the schema on first use.

    The first process to open a new database runs MLflow's migrations under an exclusive file
    lock, so concurrent first opens are safe.
    """
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    _check_fork()
    with quiet_mlflow():
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=store.uri, registry_uri=store.uri)
        with _init_lock:
            if store.uri not in _initialised:
                # Touch the store so schema creation happens here, quietly, once per process.
                client._tracking_client.store  # noqa: B018
                if store.scheme == "sqlite":
                    enable_wal(store)
                _initialised.add(store.uri)
    return client


def enable_wal(store: TrackingStore) -> None:
    """Put a SQLite store in write-ahead-log mode (persistent, set once per database file).

    With MLflow's default rollback journal every commit takes the database lock for several
    fsyncs and readers block writers; in WAL mode a commit is one append + fsync and readers
    (the UI, ``grodt tracking list``) never block writers. WAL needs a local filesystem, which
    the embedded store in the runs directory is.
    """
    import sqlite3

    from sqlalchemy.engine import make_url

    database = make_url(store.uri).database
    if not database or database == ":memory:":
        return
    connection = sqlite3.connect(database, timeout=60)
    try:
        mode = connection.execute("PRAGMA journal_mode").fetchone()[0]
        if str(mode).lower() != "wal":
            connection.execute("PRAGMA journal_mode=WAL")
    finally:
        connection.close()


def ensure_experiment(client: "MlflowClient", store: TrackingStore, name: str) -> str:
    """The id of experiment ``name``, created (with its artifact location) if missing; a
    deleted experiment of that name is restored."""
    from mlflow.entities import LifecycleStage
    from mlflow.exceptions import MlflowException

    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == LifecycleStage.DELETED:
            client.restore_experiment(experiment.experiment_id)
        return str(experiment.experiment_id)
    try:
        return str(
            client.create_experiment(
                name,
                artifact_location=store.experiment_artifact_location(name),
            ),
        )
    except MlflowException:
        # Another process created it between our lookup and create.
        experiment = client.get_experiment_by_name(name)
        if experiment is None:
            raise
        return str(experiment.experiment_id)
