"""Publish a run bundle straight into a current MLflow SQLite store, without importing MLflow.

Importing MLflow and opening its SQLAlchemy store costs ~3.5 s of a short backtest's ~5 s on
the reference 2-core machine; writing the rows a finished run needs takes milliseconds. When
the embedded store is *current* — its ``alembic_version`` is the head revision of the installed
MLflow's migrations, read from the migration files on disk — :func:`publish_direct` writes the
very rows MLflow's ``create_experiment``, ``create_run``, ``log_batch``, ``set_tag`` and
``set_terminated`` write (``experiments``, ``runs``, ``tags``, ``params``, ``metrics``,
``latest_metrics``), in one transaction, and places the artifacts where MLflow's local
artifact repository would (``<experiment artifact location>/<run id>/artifacts/...``; hard
links when on the same filesystem, else copies). Everything that reads runs (the UI,
``MlflowClient.get_run``, ``search_runs``, ``list_artifacts``) sees them as if MLflow had
written them.

Anything outside that well-trodden path raises :class:`DirectUnsupported` *before* a row is
written, and the caller uses MLflow's API instead: a store that does not exist yet or needs
migrations, a non-local artifact root, models to register, values over MLflow's length limits,
or a half-uploaded earlier attempt to clean up.
"""

import fcntl
import os
import re
import shutil
import sqlite3
import uuid
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from grodt.core.errors import GrodtError
from grodt.tracking.sqlmetrics import MetricRow
from grodt.tracking.sqlmetrics import metric_rows
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import sqlite_database

__all__ = ["DirectOutcome", "DirectUnsupported", "mlflow_schema_head", "publish_direct"]

# MLflow's limits (mlflow.utils.validation, 3.x); larger values take MLflow's path, which
# reports them.
_MAX_KEY_LENGTH = 250
_MAX_PARAM_LENGTH = 6000
_MAX_TAG_LENGTH = 8000
_RUN_NAME_TAG = "mlflow.runName"
_ARTIFACTS_FOLDER = "artifacts"
_REVISION = re.compile(
    r"^(down_revision|revision)\s*(?::[^=]*)?=\s*['\"]?([0-9a-f]+|None)['\"]?", re.M
)


class DirectUnsupported(GrodtError):
    """This bundle or store needs MLflow's API (the reason says why); nothing was written."""


@dataclass(frozen=True)
class DirectOutcome:
    """A published bundle: ``status`` is ``logged`` or ``already`` (a complete run with this
    bundle id was in the store before)."""

    status: str
    run_id: str
    experiment_id: str


@cache
def mlflow_schema_head() -> str | None:
    """The head alembic revision of the installed MLflow's tracking schema, read from its
    migration files (MLflow is not imported); ``None`` if they cannot be read."""
    spec = find_spec("mlflow")
    if spec is None or not spec.submodule_search_locations:
        return None
    versions = Path(next(iter(spec.submodule_search_locations))) / "store/db_migrations/versions"
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in versions.glob("*.py"):
        found = dict(
            (name, value) for name, value in _REVISION.findall(path.read_text(encoding="utf-8"))
        )
        if "revision" in found:
            revisions.add(found["revision"])
        if found.get("down_revision") not in (None, "None"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return next(iter(heads)) if len(heads) == 1 else None


def _database(store: TrackingStore) -> Path:
    if store.scheme != "sqlite":
        raise DirectUnsupported(f"{store.display_uri}: not a SQLite store")
    database = sqlite_database(store.uri)
    if database is None or database == ":memory:":
        raise DirectUnsupported(f"{store.display_uri}: not a SQLite file")
    path = Path(database)
    if not path.is_file():
        raise DirectUnsupported(f"{path}: does not exist yet (MLflow creates its schema)")
    return path


def _artifact_root(store: TrackingStore) -> Path:
    root = store.artifact_root
    if root is None or "://" in root:
        raise DirectUnsupported(f"artifact root {root!r} is not a local directory")
    return Path(root)


def _check_limits(params: dict[str, str], tags: dict[str, str], metrics: list[MetricRow]) -> None:
    for key, value in params.items():
        if len(key) > _MAX_KEY_LENGTH or len(value) > _MAX_PARAM_LENGTH:
            raise DirectUnsupported(f"param {key[:40]!r} exceeds MLflow's length limits")
    for key, value in tags.items():
        if len(key) > _MAX_KEY_LENGTH or len(value) > _MAX_TAG_LENGTH:
            raise DirectUnsupported(f"tag {key[:40]!r} exceeds MLflow's length limits")
    for key, *_ in metrics:
        if len(key) > _MAX_KEY_LENGTH:
            raise DirectUnsupported(f"metric {key[:40]!r} exceeds MLflow's length limits")


def _link_or_copy(source: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        # A finished run's files are never rewritten in place (reports and the tearsheet are
        # replaced by rename), so a hard link is as good as a copy and costs nothing.
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def place_artifacts(run_dir: Path, artifacts: list[tuple[str, str | None]], root: Path) -> None:
    """Lay out ``(path relative to run_dir, artifact folder)`` under ``root`` as MLflow's
    ``log_artifact`` (file: ``root/folder/name``) and ``log_artifacts`` (directory:
    ``root/folder/name/...``) do."""
    for relative, folder in artifacts:
        source = run_dir / relative
        destination = root / folder if folder else root
        if source.is_file():
            _link_or_copy(source, destination / source.name)
        elif source.is_dir():
            for path in sorted(p for p in source.rglob("*") if p.is_file()):
                _link_or_copy(path, destination / source.name / path.relative_to(source))


def _experiment(connection: sqlite3.Connection, name: str, location: str, now_ms: int) -> str:
    columns = {row[1] for row in connection.execute("PRAGMA table_info(experiments)")}
    workspace = "workspace" in columns
    query = "SELECT experiment_id, lifecycle_stage FROM experiments WHERE name = ?"
    found = connection.execute(
        query + (" AND workspace = 'default'" if workspace else ""), (name,)
    ).fetchone()
    if found is not None:
        if found[1] != "active":  # MLflow restores a deleted experiment of that name
            connection.execute(
                "UPDATE experiments SET lifecycle_stage = 'active', last_update_time = ? "
                "WHERE experiment_id = ?",
                (now_ms, found[0]),
            )
        return str(found[0])
    names = ["name", "artifact_location", "lifecycle_stage", "creation_time", "last_update_time"]
    values: list[object] = [name, location, "active", now_ms, now_ms]
    if workspace:
        names.append("workspace")
        values.append("default")
    cursor = connection.execute(
        f"INSERT INTO experiments ({', '.join(names)}) VALUES ({', '.join('?' * len(values))})",
        values,
    )
    return str(cursor.lastrowid)


def _existing_runs(
    connection: sqlite3.Connection,
    experiment_id: str,
    bundle_tag: str,
    bundle_id: str,
    complete_tag: str,
) -> tuple[list[str], list[str]]:
    rows = connection.execute(
        "SELECT r.run_uuid, (SELECT value FROM tags t2 WHERE t2.run_uuid = r.run_uuid "
        "AND t2.key = ?) FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
        "WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active' AND t.key = ? "
        "AND t.value = ?",
        (complete_tag, int(experiment_id), bundle_tag, bundle_id),
    ).fetchall()
    complete = [run for run, flag in rows if flag == "true"]
    partial = [run for run, flag in rows if flag != "true"]
    return complete, partial


def run_is_live(store: TrackingStore, run_id: str, complete_tag: str) -> bool:
    """True when ``run_id`` is an active run tagged complete (no MLflow import)."""
    connection = sqlite3.connect(_database(store), timeout=60)
    try:
        row = connection.execute(
            "SELECT r.lifecycle_stage, t.value FROM runs r LEFT JOIN tags t ON "
            "t.run_uuid = r.run_uuid AND t.key = ? WHERE r.run_uuid = ?",
            (complete_tag, run_id),
        ).fetchone()
    finally:
        connection.close()
    return row is not None and row[0] == "active" and row[1] == "true"


@dataclass(frozen=True)
class DirectRun:
    """What :func:`publish_direct` writes for one run."""

    experiment: str
    run_name: str
    start_ms: int
    end_ms: int
    status: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: list[MetricRow]
    artifacts: list[tuple[str, str | None]]


def publish_direct(
    run_dir: Path,
    store: TrackingStore,
    run: DirectRun,
    bundle_tag: tuple[str, str],
    complete_tag: str,
) -> DirectOutcome:
    """Write ``run`` into ``store`` (see the module docstring).

    Parameters
    ----------
    run_dir : Path
        The run directory that ``run.artifacts`` are relative to.
    store : TrackingStore
        A ``sqlite:///`` store with a local artifact root.
    run : DirectRun
        Params, tags, metrics (``(key, value, step, timestamp_ms)``) and artifacts.
    bundle_tag : tuple[str, str]
        ``(tag key, bundle id)`` that identifies the bundle across attempts.
    complete_tag : str
        Tag set to ``"true"`` once everything is written.

    Raises
    ------
    DirectUnsupported
        MLflow's API must do it; nothing was written.
    """
    database = _database(store)
    artifact_root = _artifact_root(store)
    head = mlflow_schema_head()
    tags = {bundle_tag[0]: bundle_tag[1], _RUN_NAME_TAG: run.run_name, **run.tags}
    tags[complete_tag] = "true"
    _check_limits(run.params, tags, run.metrics)
    lock_path = database.with_name(database.name + ".grodt-write.lock")
    connection = sqlite3.connect(database, timeout=60, isolation_level=None)
    try:
        with lock_path.open("a+") as lock:
            # The same lock as the metric committer's, so writers of one database queue in order.
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
            revision = connection.execute("SELECT version_num FROM alembic_version").fetchone()
            if head is None or revision is None or revision[0] != head:
                raise DirectUnsupported(
                    f"{database}: schema {revision[0] if revision else None} is not the "
                    f"installed MLflow's head {head}",
                )
            connection.execute("BEGIN IMMEDIATE")
            try:
                outcome = _write(
                    connection, store, run_dir, artifact_root, run, tags, bundle_tag, complete_tag
                )
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
    finally:
        connection.close()
    return outcome


def _write(
    connection: sqlite3.Connection,
    store: TrackingStore,
    run_dir: Path,
    artifact_root: Path,
    run: DirectRun,
    tags: dict[str, str],
    bundle_tag: tuple[str, str],
    complete_tag: str,
) -> DirectOutcome:
    location = store.experiment_artifact_location(run.experiment) or str(artifact_root)
    experiment_id = _experiment(connection, run.experiment, os.path.abspath(location), run.end_ms)
    complete, partial = _existing_runs(
        connection, experiment_id, bundle_tag[0], bundle_tag[1], complete_tag
    )
    if complete:
        return DirectOutcome("already", complete[0], experiment_id)
    if partial:
        raise DirectUnsupported(f"half-uploaded run {partial[0]} to delete first")
    stored_location = connection.execute(
        "SELECT artifact_location FROM experiments WHERE experiment_id = ?",
        (int(experiment_id),),
    ).fetchone()[0]
    if "://" in stored_location and not stored_location.startswith("file://"):
        raise DirectUnsupported(f"experiment artifact location {stored_location} is not local")
    run_id = uuid.uuid4().hex
    artifact_uri = f"{stored_location.rstrip('/')}/{run_id}/{_ARTIFACTS_FOLDER}"
    connection.execute(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, "
        "status, start_time, end_time, source_version, lifecycle_stage, artifact_uri, "
        "experiment_id, deleted_time) VALUES (?, ?, 'UNKNOWN', '', '', 'unknown', ?, ?, ?, '', "
        "'active', ?, ?, NULL)",
        (
            run_id,
            run.run_name,
            run.status,
            run.start_ms,
            run.end_ms,
            artifact_uri,
            int(experiment_id),
        ),
    )
    connection.executemany(
        "INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)",
        [(k, v, run_id) for k, v in tags.items()],
    )
    connection.executemany(
        "INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)",
        [(k, v, run_id) for k, v in run.params.items()],
    )
    rows, latest = metric_rows(run_id, run.metrics)
    connection.executemany(
        "INSERT INTO metrics (key, value, timestamp, step, is_nan, run_uuid) "
        "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        [(*r[:4], int(r[4]), r[5]) for r in rows],
    )
    connection.executemany(
        "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [(*r[:4], int(r[4]), r[5]) for r in latest],
    )
    local = stored_location.removeprefix("file://")
    place_artifacts(run_dir, run.artifacts, Path(local) / run_id / _ARTIFACTS_FOLDER)
    return DirectOutcome("logged", run_id, experiment_id)
