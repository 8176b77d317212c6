"""Run bundles: everything a tracked run logs, written to its run directory first.

A run (backtest or training) never talks to the tracking store while it computes. It writes a
*bundle* into ``<run_dir>/tracking/``:

- ``bundle.json``: experiment, run name, params, tags, final metrics, the artifacts to upload
  (paths relative to the run directory) and the models to register, plus a record of every
  store the bundle has been synced to;
- ``metrics.jsonl``: step metrics (one ``{"key", "value", "step", "timestamp"}`` per line,
  appended while training).

:func:`publish` then uploads the bundle to a store (a current SQLite store directly with
``sqlite3``, see :mod:`grodt.tracking.sqlite_direct`; any other through MLflow's API). When
the store is unreachable the run's results stay complete on disk, a warning says what was not
logged, and ``grodt tracking sync RUN_DIR`` publishes it later. Publishing is idempotent per
store: the MLflow run carries the tag ``grodt.bundle_id`` and ``grodt.sync_complete=true`` once
everything is uploaded; a second sync finds it and does nothing, and a half-finished upload
(store lost mid-way) is deleted and redone rather than duplicated.
"""

import json
import logging
import math
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Literal
from typing import TextIO

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from grodt.core.errors import GrodtError
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.store import probe
from grodt.tracking.store import quiet_mlflow

logger = logging.getLogger("grodt.tracking")

BUNDLE_DIR = "tracking"
BUNDLE_FILE = "bundle.json"
SERIES_FILE = "metrics.jsonl"
BUNDLE_FORMAT = 1
TAG_BUNDLE_ID = "grodt.bundle_id"
TAG_SYNC_COMPLETE = "grodt.sync_complete"
_SERIES_CHUNK = 1000


class ArtifactEntry(BaseModel):
    """A file or directory of the run directory to upload.

    Attributes
    ----------
    path : str
        Relative to the run directory.
    artifact_path : str | None
        Destination folder inside the MLflow run's artifacts (``None``: the root).
    bytes : int
        Size when the bundle was written (directories: total of their files).
    """

    model_config = ConfigDict(extra="forbid")

    path: str
    artifact_path: str | None = None
    bytes: int = 0


class ModelEntry(BaseModel):
    """A saved MLflow model (a directory in the run directory) to register.

    Attributes
    ----------
    name : str
        Registered model name (``regime_hmm``).
    path : str
        The saved model directory, relative to the run directory.
    aliases : list[str]
        Aliases to point at the new version (``["champion"]``).
    tags : dict[str, str]
        Tags of the new model version (e.g. ``grodt.model_version``).
    description : str
        Version description.
    """

    model_config = ConfigDict(extra="forbid")

    name: str
    path: str
    aliases: list[str] = Field(default_factory=list)
    tags: dict[str, str] = Field(default_factory=dict)
    description: str = ""


class SyncRecord(BaseModel):
    """Where a bundle has been published."""

    model_config = ConfigDict(extra="forbid")

    store: str
    run_id: str
    experiment_id: str
    synced_at: str
    model_versions: dict[str, str] = Field(default_factory=dict)


class RunBundle(BaseModel):
    """The content of ``bundle.json`` (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", ser_json_inf_nan="strings")

    format: int = BUNDLE_FORMAT
    bundle_id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    kind: str
    experiment: str
    run_name: str
    start_ms: int
    end_ms: int | None = None
    status: Literal["RUNNING", "FINISHED", "FAILED", "KILLED"] = "FINISHED"
    params: dict[str, str] = Field(default_factory=dict)
    tags: dict[str, str] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    artifacts: list[ArtifactEntry] = Field(default_factory=list)
    models: list[ModelEntry] = Field(default_factory=list)
    synced: list[SyncRecord] = Field(default_factory=list)
    last_error: str | None = None

    def record_for(self, store: TrackingStore) -> SyncRecord | None:
        for record in self.synced:
            if record.store == store.display_uri:
                return record
        return None


@dataclass(frozen=True)
class PublishResult:
    """Outcome of publishing a bundle.

    Attributes
    ----------
    status : {"logged", "already", "failed"}
        ``already``: the store held the complete run before this call (nothing re-uploaded).
    store : str
        The store, password redacted.
    run_id, experiment_id : str | None
        The MLflow run (``None`` when failed).
    reason : str | None
        Why publishing failed.
    not_logged : str
        Human summary of what was not logged (failed only).
    model_versions : dict[str, str]
        Registered model name → version created for this run.
    """

    status: Literal["logged", "already", "failed"]
    store: str
    run_id: str | None = None
    experiment_id: str | None = None
    reason: str | None = None
    not_logged: str = ""
    model_versions: dict[str, str] | None = None

    @property
    def ok(self) -> bool:
        return self.status != "failed"


def now_ms() -> int:
    return int(time.time() * 1000)


def bundle_dir(run_dir: Path) -> Path:
    return Path(run_dir) / BUNDLE_DIR


def bundle_path(run_dir: Path) -> Path:
    return bundle_dir(run_dir) / BUNDLE_FILE


def has_bundle(run_dir: Path) -> bool:
    return bundle_path(run_dir).is_file()


def write_bundle(run_dir: Path, bundle: RunBundle) -> Path:
    """Write ``bundle.json`` atomically (a crash never leaves half a file)."""
    path = bundle_path(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp-{os.getpid()}")
    tmp.write_text(bundle.model_dump_json(indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_bundle(run_dir: Path) -> RunBundle:
    """Read a run directory's bundle; errors name the file."""
    path = bundle_path(run_dir)
    if not path.is_file():
        raise GrodtError(
            f"{path}: no tracking bundle (is {run_dir} a grodt run directory? runs made "
            "before tracking existed have none)",
        )
    try:
        return RunBundle.model_validate_json(path.read_text(encoding="utf-8"))
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise GrodtError(f"{path}: invalid bundle: {where}: {first['msg']}") from None
    except ValueError as e:
        raise GrodtError(f"{path}: invalid bundle: {e}") from None


def series_lines(rows: list[tuple[str, float, int, int]]) -> str:
    """``metrics.jsonl`` lines for step metrics ``(key, value, step, timestamp_ms)``."""
    lines = []
    for key, value, step, timestamp in rows:
        number = float(value)
        text = number if math.isfinite(number) else str(number)
        lines.append(
            json.dumps({"key": key, "value": text, "step": int(step), "timestamp": timestamp}),
        )
    return "".join(line + "\n" for line in lines)


def open_series(run_dir: Path) -> TextIO:
    """``metrics.jsonl`` opened for appending (line-buffered)."""
    path = bundle_dir(run_dir) / SERIES_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("a", encoding="utf-8", buffering=1)


def append_series(
    run_dir: Path,
    rows: list[tuple[str, float, int, int]],
) -> None:
    """Append step metrics ``(key, value, step, timestamp_ms)`` to ``metrics.jsonl``."""
    with open_series(run_dir) as handle:
        handle.write(series_lines(rows))


def read_series(run_dir: Path) -> Iterator[tuple[str, float, int, int]]:
    """The step metrics of a bundle, in file order; names the line of a corrupt row."""
    path = bundle_dir(run_dir) / SERIES_FILE
    if not path.is_file():
        return
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                yield str(row["key"]), float(row["value"]), int(row["step"]), int(row["timestamp"])
            except (ValueError, KeyError, TypeError) as e:
                raise GrodtError(f"{path}, line {number}: invalid metric row: {e}") from None


def count_series(run_dir: Path) -> int:
    path = bundle_dir(run_dir) / SERIES_FILE
    if not path.is_file():
        return 0
    with path.open(encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def path_bytes(path: Path) -> int:
    """Size of a file, or total size of the files under a directory."""
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


def describe_contents(run_dir: Path, bundle: RunBundle) -> str:
    """``214 params, 31 metrics, 5,031 step metrics, 9 artifacts (12.3 MB), 1 model``."""
    size = sum(a.bytes for a in bundle.artifacts) / 1e6
    parts = [
        f"{len(bundle.params)} params",
        f"{len(bundle.metrics)} metrics",
        f"{count_series(run_dir):,} step metrics",
        f"{len(bundle.artifacts)} artifacts ({size:,.1f} MB)",
    ]
    if bundle.models:
        parts.append(f"{len(bundle.models)} model(s) to register")
    return ", ".join(parts)


def _complete_runs(client: Any, experiment_id: str, bundle_id: str) -> tuple[list[Any], list[Any]]:
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{TAG_BUNDLE_ID}` = '{bundle_id}'",
        max_results=50,
    )
    complete = [r for r in runs if r.data.tags.get(TAG_SYNC_COMPLETE) == "true"]
    partial = [r for r in runs if r.data.tags.get(TAG_SYNC_COMPLETE) != "true"]
    return complete, partial


def _delete_partial(client: Any, run: Any) -> None:
    """Delete a half-uploaded run and any model version registered from it."""
    run_id = run.info.run_id
    for version in client.search_model_versions(f"run_id = '{run_id}'"):
        client.delete_model_version(version.name, version.version)
    client.delete_run(run_id)
    logger.info("deleted half-synced run %s before re-uploading its bundle", run_id)


def _log_contents(
    client: Any,
    run_id: str,
    run_dir: Path,
    bundle: RunBundle,
    include_series: bool = True,
) -> dict[str, str]:
    from mlflow.entities import Metric
    from mlflow.entities import Param
    from mlflow.entities import RunTag

    timestamp = bundle.end_ms or bundle.start_ms
    client.log_batch(
        run_id,
        metrics=[Metric(k, v, timestamp, 0) for k, v in bundle.metrics.items()],
        params=[Param(k, v) for k, v in bundle.params.items()],
        tags=[RunTag(k, v) for k, v in bundle.tags.items()],
    )
    chunk: list[Any] = []
    for key, value, step, ts in read_series(run_dir) if include_series else ():
        chunk.append(Metric(key, value, ts, step))
        if len(chunk) >= _SERIES_CHUNK:
            client.log_batch(run_id, metrics=chunk)
            chunk = []
    if chunk:
        client.log_batch(run_id, metrics=chunk)
    for artifact in bundle.artifacts:
        source = run_dir / artifact.path
        if source.is_dir():
            destination = "/".join(
                p for p in (artifact.artifact_path, Path(artifact.path).name) if p
            )
            client.log_artifacts(run_id, str(source), destination)
        elif source.is_file():
            client.log_artifact(run_id, str(source), artifact.artifact_path)
        else:
            logger.warning("%s: artifact %s vanished before upload", run_dir, artifact.path)
    versions: dict[str, str] = {}
    for model in bundle.models:
        versions[model.name] = _register(client, run_id, run_dir, model)
    return versions


def _register(client: Any, run_id: str, run_dir: Path, model: ModelEntry) -> str:
    from mlflow.exceptions import MlflowException

    source = run_dir / model.path
    if not (source / "MLmodel").is_file():
        raise GrodtError(f"{source}: not a saved MLflow model (no MLmodel file)")
    artifact_path = f"models/{model.name}"
    client.log_artifacts(run_id, str(source), artifact_path)
    try:
        client.create_registered_model(model.name)
    except MlflowException as e:
        if e.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(
        model.name,
        source=f"runs:/{run_id}/{artifact_path}",
        run_id=run_id,
        tags=model.tags or None,
        description=model.description or None,
    )
    for alias in model.aliases:
        client.set_registered_model_alias(model.name, alias, version.version)
    return str(version.version)


def publish(
    run_dir: Path,
    store: TrackingStore,
    probe_timeout: float = 5.0,
    live_run_id: str | None = None,
) -> PublishResult:
    """Upload the bundle in ``run_dir`` to ``store`` (idempotent; see the module docstring).

    ``live_run_id`` finalises a run whose step metrics were already streamed (a
    :class:`~grodt.tracking.training.TrainingRun`) instead of creating one.

    Never raises for an unreachable or failing store: the failure is logged as a warning that
    says what was not logged, recorded in the bundle (``last_error``) and returned.
    """
    run_dir = Path(run_dir)
    bundle = read_bundle(run_dir)
    display = store.display_uri
    record = bundle.record_for(store)
    reason = probe(store, probe_timeout)
    if reason is not None:
        return _failed(run_dir, bundle, store, f"tracking store {display} is unreachable: {reason}")
    if live_run_id is None and not bundle.models and store.scheme == "sqlite":
        direct = _publish_direct(run_dir, bundle, store)
        if direct is not None:
            return direct
    try:
        with quiet_mlflow():
            client = open_client(store)
            if record is not None and _run_is_live(client, record.run_id):
                return PublishResult(
                    "already",
                    display,
                    record.run_id,
                    record.experiment_id,
                    model_versions=record.model_versions,
                )
            experiment_id = ensure_experiment(client, store, bundle.experiment)
            if live_run_id is not None:
                run_id = live_run_id
                versions = _log_contents(client, run_id, run_dir, bundle, include_series=False)
            else:
                complete, partial = _complete_runs(client, experiment_id, bundle.bundle_id)
                if complete:
                    run = complete[0]
                    result = PublishResult("already", display, run.info.run_id, experiment_id)
                    _record(run_dir, bundle, store, result, {})
                    return result
                for run in partial:
                    _delete_partial(client, run)
                run = client.create_run(
                    experiment_id,
                    start_time=bundle.start_ms,
                    tags={TAG_BUNDLE_ID: bundle.bundle_id},
                    run_name=bundle.run_name,
                )
                run_id = run.info.run_id
                versions = _log_contents(client, run_id, run_dir, bundle)
            client.set_tag(run_id, TAG_SYNC_COMPLETE, "true")
            client.set_terminated(run_id, status=bundle.status, end_time=bundle.end_ms)
    except Exception as e:  # any store/driver error: keep the bundle pending, say so
        logger.debug("publish failed", exc_info=True)
        message = str(e).strip().splitlines()[0] if str(e).strip() else ""
        return _failed(
            run_dir,
            bundle,
            store,
            f"logging to {display} failed: {type(e).__name__}: {message}",
        )
    result = PublishResult("logged", display, run_id, experiment_id, model_versions=versions)
    _record(run_dir, bundle, store, result, versions)
    return result


def _publish_direct(run_dir: Path, bundle: RunBundle, store: TrackingStore) -> PublishResult | None:
    """Publish through :mod:`grodt.tracking.sqlite_direct` (no MLflow import); ``None`` when
    that store or bundle needs MLflow's API (nothing was written then)."""
    from grodt.tracking.sqlite_direct import DirectRun
    from grodt.tracking.sqlite_direct import DirectUnsupported
    from grodt.tracking.sqlite_direct import publish_direct
    from grodt.tracking.sqlite_direct import run_is_live

    display = store.display_uri
    try:
        record = bundle.record_for(store)
        if record is not None and run_is_live(store, record.run_id, TAG_SYNC_COMPLETE):
            return PublishResult(
                "already",
                display,
                record.run_id,
                record.experiment_id,
                model_versions=record.model_versions,
            )
        end = bundle.end_ms or bundle.start_ms
        run = DirectRun(
            experiment=bundle.experiment,
            run_name=bundle.run_name,
            start_ms=bundle.start_ms,
            end_ms=end,
            status=bundle.status,
            params=bundle.params,
            tags=bundle.tags,
            metrics=[(k, v, 0, end) for k, v in bundle.metrics.items()]
            + list(read_series(run_dir)),
            artifacts=[(a.path, a.artifact_path) for a in bundle.artifacts],
        )
        outcome = publish_direct(
            run_dir, store, run, (TAG_BUNDLE_ID, bundle.bundle_id), TAG_SYNC_COMPLETE
        )
    except DirectUnsupported as e:
        logger.debug("publishing through MLflow's API: %s", e)
        return None
    except (OSError, sqlite3.Error) as e:  # the store broke mid-way: say so, keep it pending
        return _failed(
            run_dir, bundle, store, f"logging to {display} failed: {type(e).__name__}: {e}"
        )
    result = PublishResult(outcome.status, display, outcome.run_id, outcome.experiment_id)
    _record(run_dir, bundle, store, result, {})
    return result


def _run_is_live(client: Any, run_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return False
    return run.info.lifecycle_stage == "active" and (run.data.tags.get(TAG_SYNC_COMPLETE) == "true")


def _record(
    run_dir: Path,
    bundle: RunBundle,
    store: TrackingStore,
    result: PublishResult,
    versions: dict[str, str],
) -> None:
    synced = [r for r in bundle.synced if r.store != store.display_uri]
    synced.append(
        SyncRecord(
            store=store.display_uri,
            run_id=str(result.run_id),
            experiment_id=str(result.experiment_id),
            synced_at=datetime.now(UTC).isoformat(timespec="seconds"),
            model_versions=versions,
        ),
    )
    write_bundle(run_dir, bundle.model_copy(update={"synced": synced, "last_error": None}))


def _failed(run_dir: Path, bundle: RunBundle, store: TrackingStore, reason: str) -> PublishResult:
    not_logged = describe_contents(run_dir, bundle)
    write_bundle(run_dir, bundle.model_copy(update={"last_error": reason}))
    logger.warning(
        "%s; not logged: %s. The results are complete in %s; upload them later with "
        "`grodt tracking sync %s`",
        reason,
        not_logged,
        run_dir,
        run_dir,
    )
    return PublishResult(
        "failed",
        store.display_uri,
        reason=reason,
        not_logged=not_logged,
    )


def pending_run_dirs(root: Path, store: TrackingStore) -> list[Path]:
    """Run directories under ``root`` whose bundle has not been synced to ``store``."""
    found = []
    for path in sorted(Path(root).rglob(f"{BUNDLE_DIR}/{BUNDLE_FILE}")):
        run_dir = path.parent.parent
        try:
            bundle = read_bundle(run_dir)
        except GrodtError as e:
            logger.warning("%s", e)
            continue
        if bundle.record_for(store) is None:
            found.append(run_dir)
    return found
