"""The model registry: register trained models, refer to them by name, load them back.

A model is named as ``name@alias`` (``regime_hmm@champion``), ``name/version``
(``regime_hmm/7``) or plain ``name`` (its latest version), and resolved once::

    from grodt.tracking.registry import load_model

    loaded = load_model("regime_hmm@champion")
    model = loaded.model                            # the native object, e.g. GaussianRegimeHMM
    model_version = loaded.tag                      # "regime_hmm/7" for forensics records

Node components take such a reference in their ``model`` field (:mod:`node_configs.model_refs`,
resolved through :mod:`grodt.tracking.model_refs`).

Resolution pins an alias to a concrete version (``models:/regime_hmm/7``) so what ran is
recorded exactly. Downloaded models are cached under ``<runs_dir>/model_cache/<name>/<version>``
(versions are immutable); the last resolution of each alias is remembered there too, so a process
that starts while the tracking store is down still loads the model it last resolved, with a
warning naming the version (``offline_fallback=False`` makes that an error). Model directories
are written and read by :mod:`grodt.tracking.modeldir`.

Registration goes through a run (:meth:`grodt.tracking.training.TrainingRun.register_model`),
so every version points at the run, params and metrics that produced it; :func:`register_model`
is the one-call shortcut.
"""

import json
import logging
import math
import re
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Literal

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.settings import get_settings
from grodt.tracking.modeldir import load_model_dir
from grodt.tracking.native import NativeMeta
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import open_client
from grodt.tracking.store import probe
from grodt.tracking.store import quiet_mlflow
from grodt.tracking.store import resolve_store

logger = logging.getLogger("grodt.tracking")

_NAME = r"[A-Za-z0-9][\w.\-]*"
_REF = re.compile(rf"^(?:models:/)?(?P<name>{_NAME})(?:@(?P<alias>[\w\-]+)|/(?P<version>\d+))?$")
CACHE_DIR = "model_cache"
KEEP_LAST = 5
"""Versions :func:`prune_model_versions` keeps by default (besides aliased and best ones), and
cached copies :func:`prune_model_cache` keeps after every download."""
_PARTIAL_MAX_AGE_S = 3600.0


@dataclass(frozen=True)
class ModelRef:
    """A parsed model reference: exactly one of ``alias``/``version``, or neither (latest)."""

    name: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        if self.alias:
            return f"{self.name}@{self.alias}"
        if self.version:
            return f"{self.name}/{self.version}"
        return self.name


@dataclass(frozen=True)
class ResolvedModel:
    """A reference pinned to one registered version.

    Attributes
    ----------
    name, version : str
        The registered model and version (``"7"``).
    alias : str | None
        The alias it was resolved through.
    uri : str
        Pinned MLflow URI, ``models:/<name>/<version>``.
    run_id : str | None
        The run that produced the version.
    model_version : str | None
        The model's own version string (e.g. the HMM's content hash), from the version's tags.
    """

    name: str
    version: str
    alias: str | None
    uri: str
    run_id: str | None
    model_version: str | None

    @property
    def tag(self) -> str:
        """``name/version``: what forensics records and logs should cite."""
        return f"{self.name}/{self.version}"


@dataclass(frozen=True)
class LoadedModel:
    """A loaded model and where it came from."""

    model: Any
    resolved: ResolvedModel
    meta: NativeMeta
    path: Path

    @property
    def tag(self) -> str:
        return self.resolved.tag

    @property
    def version(self) -> str:
        return self.resolved.version


def parse_model_ref(ref: str) -> ModelRef:
    """Parse ``name@alias``, ``name/3``, ``name`` or ``models:/…``; ConfigError otherwise."""
    match = _REF.match(str(ref).strip())
    if match is None:
        raise ConfigError(
            f"model reference {ref!r}: expected 'name@alias', 'name/<version>' or 'name' "
            "(e.g. 'regime_hmm@champion')",
        )
    return ModelRef(match["name"], match["alias"], match["version"])


def model_cache_root(cache_dir: Path | None = None) -> Path:
    """The model download cache: ``cache_dir``, else ``<runs_dir>/model_cache``."""
    return Path(cache_dir) if cache_dir else Path(get_settings().runs_dir) / CACHE_DIR


def _pins_path(cache: Path, name: str) -> Path:
    return cache / name / "aliases.json"


def _remember(cache: Path, resolved: ResolvedModel) -> None:
    if resolved.alias is None:
        return
    path = _pins_path(cache, resolved.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    pins = json.loads(path.read_text()) if path.is_file() else {}
    pins[resolved.alias] = {
        "version": resolved.version,
        "run_id": resolved.run_id,
        "model_version": resolved.model_version,
        "resolved_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(pins, indent=2) + "\n")
    tmp.replace(path)


def resolve_model(ref: str | ModelRef, store: TrackingStore | None = None) -> ResolvedModel:
    """Pin ``ref`` to a registered version (raises GrodtError if the store lacks it)."""
    parsed = ref if isinstance(ref, ModelRef) else parse_model_ref(ref)
    store = store or resolve_store()
    from mlflow.exceptions import MlflowException

    with quiet_mlflow():
        client = open_client(store)
        try:
            if parsed.alias:
                version = client.get_model_version_by_alias(parsed.name, parsed.alias)
            elif parsed.version:
                version = client.get_model_version(parsed.name, parsed.version)
            else:
                versions = client.search_model_versions(
                    f"name = '{parsed.name}'",
                    order_by=["version_number DESC"],
                    max_results=1,
                )
                if not versions:
                    raise GrodtError(
                        f"model {parsed.name!r} has no versions in {store.display_uri}",
                    )
                version = versions[0]
        except MlflowException as e:
            raise GrodtError(
                f"model {str(parsed)!r} not found in {store.display_uri}: {e.message}",
            ) from None
    return ResolvedModel(
        name=parsed.name,
        version=str(version.version),
        alias=parsed.alias,
        uri=f"models:/{parsed.name}/{version.version}",
        run_id=version.run_id,
        model_version=(version.tags or {}).get("grodt.model_version"),
    )


def resolve_model_uri(ref: str, store: TrackingStore | None = None) -> str:
    """``"regime_hmm@champion"`` → ``"models:/regime_hmm/7"`` (pinned to the current version)."""
    return resolve_model(ref, store).uri


def load_model(
    ref: str,
    store: TrackingStore | None = None,
    cache_dir: Path | None = None,
    offline_fallback: bool = True,
) -> LoadedModel:
    """Resolve ``ref`` and load the native model (see the module docstring).

    Parameters
    ----------
    ref : str
        ``name@alias``, ``name/version`` or ``name``.
    store : TrackingStore, optional
        Default: the configured store.
    cache_dir : Path, optional
        Download cache (default ``<runs_dir>/model_cache``).
    offline_fallback : bool, default True
        When the store is unreachable, load the version this alias last resolved to from the
        cache (with a warning) instead of failing.
    """
    parsed = parse_model_ref(ref)
    store = store or resolve_store()
    cache = model_cache_root(cache_dir)
    reason = probe(store)
    if reason is not None:
        return _load_offline(parsed, store, cache, reason, offline_fallback)
    resolved = resolve_model(parsed, store)
    target = cache / resolved.name / resolved.version
    downloaded = not (target / "MLmodel").is_file()
    if downloaded:
        with quiet_mlflow():
            import mlflow.artifacts

            partial = target.with_name(f"{resolved.version}.partial-{time.time_ns()}")
            partial.mkdir(parents=True, exist_ok=True)
            # The registry's own download URI (the version's artifact location), so that no
            # process-global MLflow registry setting is involved.
            source = open_client(store).get_model_version_download_uri(
                resolved.name,
                resolved.version,
            )
            local = Path(
                mlflow.artifacts.download_artifacts(
                    artifact_uri=source,
                    dst_path=str(partial),
                    tracking_uri=store.uri,
                ),
            )
            if not (local / "MLmodel").is_file():
                shutil.rmtree(partial, ignore_errors=True)
                raise GrodtError(
                    f"{resolved.uri}: the registered artifacts are not an MLflow model",
                )
            if not target.exists():
                local.replace(target)
            shutil.rmtree(partial, ignore_errors=True)
    model, meta = load_model_dir(target)
    _remember(cache, resolved)
    if downloaded:
        # Bounded like the registry: the newest KEEP_LAST copies, the offline pins, this one.
        prune_model_cache(resolved.name, KEEP_LAST, keep=(resolved.version,), cache_dir=cache)
    return LoadedModel(model=model, resolved=resolved, meta=meta, path=target)


def _load_offline(
    parsed: ModelRef,
    store: TrackingStore,
    cache: Path,
    reason: str,
    offline_fallback: bool,
) -> LoadedModel:
    version = parsed.version
    pin: dict[str, Any] = {}
    if parsed.alias:
        pins_path = _pins_path(cache, parsed.name)
        pins = json.loads(pins_path.read_text()) if pins_path.is_file() else {}
        pin = pins.get(parsed.alias, {})
        version = pin.get("version")
    target = cache / parsed.name / str(version) if version else None
    if not offline_fallback or target is None or not (target / "MLmodel").is_file():
        raise GrodtError(
            f"model {str(parsed)!r}: tracking store {store.display_uri} is unreachable "
            f"({reason}) and no cached copy can stand in for it",
        )
    if parsed.alias:
        logger.warning(
            "tracking store %s is unreachable (%s): using %s/%s, which %s@%s resolved to at %s",
            store.display_uri,
            reason,
            parsed.name,
            version,
            parsed.name,
            parsed.alias,
            pin.get("resolved_at", "an earlier start"),
        )
    model, meta = load_model_dir(target)
    resolved = ResolvedModel(
        name=parsed.name,
        version=str(version),
        alias=parsed.alias,
        uri=f"models:/{parsed.name}/{version}",
        run_id=pin.get("run_id"),
        model_version=pin.get("model_version") or meta.model_version,
    )
    return LoadedModel(model=model, resolved=resolved, meta=meta, path=target)


def register_model(
    model: Any,
    name: str,
    aliases: Sequence[str] = (),
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    store: TrackingStore | None = None,
    filename: str = "model",
    predict_method: str | None = None,
) -> ResolvedModel:
    """Register ``model`` as a new version of ``name`` through a small training run.

    Raises GrodtError when the store is unreachable (the run directory then holds the bundle;
    ``grodt tracking sync`` registers it later).
    """
    from grodt.tracking.training import TrainingRun

    store = store or resolve_store()
    with TrainingRun(name, params=params, store=store, stream=False) as run:
        if metrics:
            run.log_summary(metrics)
        run.register_model(
            model,
            name,
            aliases=list(aliases),
            filename=filename,
            predict_method=predict_method,
        )
    result = run.result
    if result is None or not result.ok or not result.model_versions:
        raise GrodtError(
            f"model {name!r} was saved in {run.run_dir} but not registered: "
            f"{result.reason if result else 'no store'}",
        )
    version = result.model_versions.get(name)
    if version is None:
        return resolve_model(ModelRef(name), store)
    return resolve_model(ModelRef(name, version=version), store)


def set_alias(
    name: str,
    alias: str,
    version: str | int,
    store: TrackingStore | None = None,
) -> None:
    """Point ``name@alias`` at ``version`` (promote a champion)."""
    store = store or resolve_store()
    with quiet_mlflow():
        open_client(store).set_registered_model_alias(name, alias, str(version))


def prune_model_cache(
    name: str,
    keep_last: int = KEEP_LAST,
    keep: Sequence[str] = (),
    cache_dir: Path | None = None,
) -> list[str]:
    """Delete cached copies of ``name``'s versions from the model download cache: keep the
    ``keep_last`` highest version numbers, every version an alias last resolved to on this
    machine (``aliases.json``: the offline fallback's copies) and ``keep``. Also removes
    interrupted downloads (``*.partial-*``) older than an hour. Returns the deleted versions.

    The cache then holds at most ``keep_last`` + (aliases) + ``len(keep)`` versions of a model;
    :func:`load_model` calls this after every download and :func:`prune_model_versions` with
    the versions it kept, so the cache follows the registry's retention policy.
    """
    root = model_cache_root(cache_dir) / name
    if not root.is_dir():
        return []
    pins_path = _pins_path(model_cache_root(cache_dir), name)
    try:
        pins = json.loads(pins_path.read_text()) if pins_path.is_file() else {}
    except (OSError, ValueError) as e:
        # Without readable pins nothing can be known to be safe to delete: keep everything.
        logger.warning("model cache %s: %s unreadable (%s); nothing pruned", root, pins_path, e)
        return []
    protected = {str(v) for v in keep} | {str(p.get("version")) for p in pins.values()}
    cached = sorted(
        (p for p in root.iterdir() if p.is_dir() and p.name.isdigit()),
        key=lambda p: int(p.name),
        reverse=True,
    )
    protected.update(p.name for p in cached[: max(keep_last, 0)])
    deleted = []
    for path in cached:
        if path.name not in protected:
            shutil.rmtree(path, ignore_errors=True)
            deleted.append(path.name)
    now = time.time()
    for partial in root.glob("*.partial-*"):
        try:
            stale = now - partial.stat().st_mtime > _PARTIAL_MAX_AGE_S
        except OSError:
            continue
        if stale:
            shutil.rmtree(partial, ignore_errors=True)
    return sorted(deleted, key=int)


def prune_model_versions(
    name: str,
    keep_last: int = KEEP_LAST,
    metric: str | None = None,
    mode: Literal["max", "min"] = "max",
    store: TrackingStore | None = None,
    dry_run: bool = False,
    delete_artifacts: bool = True,
    cache_dir: Path | None = None,
) -> list[str]:
    """Delete old versions of ``name``: keep the ``keep_last`` newest, the best by ``metric``
    (read from each version's run) and every aliased version. Returns the deleted versions.

    With ``delete_artifacts`` (default) the pruned versions' model files are deleted too (from
    the run's artifacts, from the run directory that registered them, and from this machine's
    model download cache ``cache_dir`` — :func:`prune_model_cache` keeping the versions kept
    here and the offline fallback's pins), so pruning caps disk use; the runs' params and
    metrics stay."""
    store = store or resolve_store()
    with quiet_mlflow():
        client = open_client(store)
        versions = client.search_model_versions(f"name = '{name}'")
        ordered = sorted(versions, key=lambda v: int(v.version), reverse=True)
        keep = {str(v.version) for v in ordered[: max(keep_last, 0)]}
        # search_model_versions does not fill in aliases: ask the registered model.
        keep.update(str(v) for v in client.get_registered_model(name).aliases.values())
        if metric is not None:
            scored = []
            for version in ordered:
                if not version.run_id:
                    continue
                value = client.get_run(version.run_id).data.metrics.get(metric)
                if value is not None and math.isfinite(value):
                    scored.append((value, int(version.version)))
            if scored:
                best = max(scored) if mode == "max" else min(scored, key=lambda p: (p[0], -p[1]))
                keep.add(str(best[1]))
        doomed = [v for v in ordered if str(v.version) not in keep]
        if not dry_run:
            for version in doomed:
                client.delete_model_version(name, str(version.version))
                if delete_artifacts and version.run_id:
                    _delete_model_files(client, version.run_id, name)
    if not dry_run and delete_artifacts:
        prune_model_cache(name, keep_last=0, keep=sorted(keep), cache_dir=cache_dir)
    return [str(v.version) for v in doomed]


def _delete_model_files(client: Any, run_id: str, name: str) -> None:
    """Free the disk of a pruned version: the model under its run's artifacts and the copy in
    the run directory that registered it. The run itself (params, metrics) stays."""
    from mlflow.exceptions import MlflowException
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    try:
        run = client.get_run(run_id)
        get_artifact_repository(run.info.artifact_uri).delete_artifacts(f"models/{name}")
    except (MlflowException, NotImplementedError, OSError) as e:
        logger.warning("pruned %s: model files of run %s not deleted: %s", name, run_id, e)
        return
    run_dir = run.data.tags.get("grodt.run_dir")
    if run_dir:
        shutil.rmtree(Path(run_dir) / "models" / name, ignore_errors=True)
