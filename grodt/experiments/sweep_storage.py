"""Where a sweep's Optuna study lives, so that any number of workers share one study.

The study goes to the tracking database's place (:func:`grodt.tracking.store.resolve_store`):

- a SQLite tracking store ``sqlite:///DIR/mlflow.db`` → ``sqlite:///DIR/optuna.db`` (a file of
  its own beside it: Optuna and MLflow both keep an ``alembic_version`` table, so they cannot
  share one SQLite schema);
- a PostgreSQL tracking store → the same database, schema ``optuna`` (created when missing;
  Optuna's tables and its ``alembic_version`` stay out of MLflow's ``public`` schema);
- any other store (an MLflow HTTP server) → ``sqlite:///<GRODT_RUNS_DIR>/optuna.db``.

``--storage URL`` names one explicitly (any SQLAlchemy URL Optuna accepts).
"""

from pathlib import Path
from typing import TYPE_CHECKING

from grodt.core.settings import get_settings
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import normalise_uri
from grodt.tracking.store import redact_uri
from grodt.tracking.store import sqlite_database

if TYPE_CHECKING:
    from optuna.storages import RDBStorage

__all__ = ["OPTUNA_DB_NAME", "POSTGRES_SCHEMA", "display_url", "open_storage", "study_storage_url"]

OPTUNA_DB_NAME = "optuna.db"
POSTGRES_SCHEMA = "optuna"


def study_storage_url(store: TrackingStore | None, explicit: str | None = None) -> str:
    """The SQLAlchemy URL of the study database (see the module docstring)."""
    if explicit:
        return normalise_uri(explicit.strip())
    if store is not None and store.scheme == "sqlite":
        database = sqlite_database(store.uri)
        if database and database != ":memory:":
            return f"sqlite:///{Path(database).resolve().parent / OPTUNA_DB_NAME}"
    if store is not None and store.scheme == "postgresql":
        return store.uri
    runs_dir = Path(get_settings().runs_dir).expanduser().resolve()
    return f"sqlite:///{runs_dir / OPTUNA_DB_NAME}"


def open_storage(url: str) -> "RDBStorage":
    """Optuna's RDB storage on ``url``; a PostgreSQL database gets its tables in schema
    ``optuna`` (created if missing), a SQLite file's directory is created."""
    import sqlalchemy
    from optuna.storages import RDBStorage

    engine_kwargs: dict[str, object] = {}
    if url.startswith("postgresql"):
        engine = sqlalchemy.create_engine(url)
        try:
            with engine.begin() as connection:
                connection.exec_driver_sql(f"CREATE SCHEMA IF NOT EXISTS {POSTGRES_SCHEMA}")
        finally:
            engine.dispose()
        engine_kwargs["connect_args"] = {"options": f"-csearch_path={POSTGRES_SCHEMA}"}
    elif url.startswith("sqlite:///"):
        database = sqlite_database(url)
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Several sweeps (processes, machines on a shared disk) may write the same file.
        engine_kwargs["connect_args"] = {"timeout": 60}
    return RDBStorage(url, engine_kwargs=engine_kwargs)


def display_url(url: str) -> str:
    """``url`` with any password removed (safe to print and log)."""
    return redact_uri(url)
