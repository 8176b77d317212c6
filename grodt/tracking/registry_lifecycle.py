"""Model lifecycle on the registry: list versions, promote, roll back, and the audit trail.

Every alias move made here is an audited record, written twice:

- an MLflow run in experiment ``registry/<name>`` (params ``action``, ``alias``,
  ``from_version``, ``to_version``, ``reason``, ``user``; tags ``grodt.kind=registry_audit``),
  so the team store holds the history next to the versions it concerns;
- one JSON line in ``<runs_dir>/registry_audit/<name>.jsonl`` (forensics style: ``ts``,
  ``action``, ``model``, ``alias``, ``from_version``, ``to_version``, ``reason``, ``user``,
  ``store``, ``audit_run_id``), so the machine that moved the alias keeps its own copy.

:func:`history` reads the MLflow runs (oldest first); :func:`rollback` points the alias back at
the version it held before its last move (or at an explicit version).
"""

import json
import time
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Literal

from grodt.core.errors import GrodtError
from grodt.core.settings import get_settings
from grodt.tracking.provenance import current_user
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.store import quiet_mlflow
from grodt.tracking.store import resolve_store

__all__ = [
    "AUDIT_DIR",
    "AliasMove",
    "VersionInfo",
    "audit_experiment",
    "history",
    "list_versions",
    "move_alias",
    "promote",
    "rollback",
]

AUDIT_DIR = "registry_audit"
Action = Literal["promote", "rollback", "refuse"]


@dataclass(frozen=True)
class VersionInfo:
    """One registered version, with what its training run recorded."""

    name: str
    version: str
    aliases: tuple[str, ...]
    run_id: str | None
    created_ms: int
    model_version: str | None
    tags: dict[str, str]
    metrics: dict[str, float]


@dataclass(frozen=True)
class AliasMove:
    """One audited alias move (a promotion or a rollback)."""

    ts: str
    action: str
    model: str
    alias: str
    from_version: str | None
    to_version: str
    reason: str
    user: str
    store: str
    audit_run_id: str | None = None
    details: dict[str, Any] | None = None


def audit_experiment(name: str) -> str:
    """The MLflow experiment holding ``name``'s audit runs."""
    return f"registry/{name}"


def _alias_target(client: Any, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def list_versions(name: str, store: TrackingStore | None = None) -> list[VersionInfo]:
    """Every version of ``name``, newest first, with aliases and its run's metrics."""
    store = store or resolve_store()
    from mlflow.exceptions import MlflowException

    with quiet_mlflow():
        client = open_client(store)
        try:
            aliases = client.get_registered_model(name).aliases
        except MlflowException as e:
            raise GrodtError(
                f"model {name!r} not found in {store.display_uri}: {e.message}",
            ) from None
        by_version: dict[str, list[str]] = {}
        for alias, version in aliases.items():
            by_version.setdefault(str(version), []).append(alias)
        out = []
        for v in client.search_model_versions(f"name = '{name}'"):
            metrics: dict[str, float] = {}
            if v.run_id:
                try:
                    metrics = dict(client.get_run(v.run_id).data.metrics)
                except MlflowException:
                    metrics = {}
            tags = dict(v.tags or {})
            out.append(
                VersionInfo(
                    name=name,
                    version=str(v.version),
                    aliases=tuple(sorted(by_version.get(str(v.version), []))),
                    run_id=v.run_id,
                    created_ms=int(v.creation_timestamp or 0),
                    model_version=tags.get("grodt.model_version"),
                    tags=tags,
                    metrics=metrics,
                ),
            )
    return sorted(out, key=lambda info: int(info.version), reverse=True)


def move_alias(
    name: str,
    alias: str,
    version: str | int,
    action: Action,
    reason: str,
    store: TrackingStore | None = None,
    details: dict[str, Any] | None = None,
) -> AliasMove:
    """Point ``name@alias`` at ``version`` and write the audit record (both places); a
    ``refuse`` action records a promotion that was refused and moves nothing.

    Raises GrodtError when the version does not exist (nothing is moved or recorded).
    """
    store = store or resolve_store()
    from mlflow.exceptions import MlflowException

    version = str(version)
    with quiet_mlflow():
        client = open_client(store)
        try:
            client.get_model_version(name, version)
        except MlflowException as e:
            raise GrodtError(
                f"model {name}/{version} not found in {store.display_uri}: {e.message}",
            ) from None
        previous = _alias_target(client, name, alias)
        if action != "refuse":
            client.set_registered_model_alias(name, alias, version)
        move = AliasMove(
            ts=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            action=action,
            model=name,
            alias=alias,
            from_version=previous,
            to_version=version,
            reason=reason,
            user=current_user(),
            store=store.display_uri,
            details=details,
        )
        experiment_id = ensure_experiment(client, store, audit_experiment(name))
        run = client.create_run(
            experiment_id,
            run_name=f"{action}-{alias}-{version}",
            tags={
                "grodt.kind": "registry_audit",
                "grodt.model": name,
                "mlflow.user": move.user,
            },
        )
        params = {
            "action": action,
            "alias": alias,
            "from_version": previous or "",
            "to_version": version,
            "reason": reason[:500],
            "user": move.user,
        }
        for key, value in (details or {}).items():
            params[f"details.{key}"] = str(value)[:500]
        from mlflow.entities import Param

        client.log_batch(run.info.run_id, params=[Param(k, v) for k, v in params.items()])
        client.set_terminated(run.info.run_id, "FINISHED")
    move = AliasMove(**{**asdict(move), "audit_run_id": run.info.run_id})
    _append_audit_line(move)
    return move


def _append_audit_line(move: AliasMove) -> Path:
    path = Path(get_settings().runs_dir) / AUDIT_DIR / f"{move.model}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(asdict(move), sort_keys=True, default=str) + "\n")
    return path


def promote(
    name: str,
    version: str | int,
    alias: str = "champion",
    reason: str = "manual promotion",
    store: TrackingStore | None = None,
    details: dict[str, Any] | None = None,
) -> AliasMove:
    """Point ``name@alias`` at ``version`` (audited)."""
    return move_alias(name, alias, version, "promote", reason, store, details)


def history(name: str, store: TrackingStore | None = None) -> list[AliasMove]:
    """The audited alias moves of ``name``, oldest first (from the store's audit runs)."""
    store = store or resolve_store()
    with quiet_mlflow():
        client = open_client(store)
        experiment = client.get_experiment_by_name(audit_experiment(name))
        if experiment is None:
            return []
        runs = client.search_runs(
            [experiment.experiment_id],
            order_by=["attributes.start_time ASC"],
            max_results=10_000,
        )
    moves = []
    for run in runs:
        p = run.data.params
        details = {k.removeprefix("details."): v for k, v in p.items() if k.startswith("details.")}
        moves.append(
            AliasMove(
                ts=time.strftime(
                    "%Y-%m-%dT%H:%M:%SZ",
                    time.gmtime((run.info.start_time or 0) / 1000),
                ),
                action=p.get("action", "?"),
                model=name,
                alias=p.get("alias", "?"),
                from_version=p.get("from_version") or None,
                to_version=p.get("to_version", "?"),
                reason=p.get("reason", ""),
                user=p.get("user", "?"),
                store=store.display_uri,
                audit_run_id=run.info.run_id,
                details=details or None,
            ),
        )
    return moves


def rollback(
    name: str,
    alias: str = "champion",
    to_version: str | int | None = None,
    reason: str = "manual rollback",
    store: TrackingStore | None = None,
) -> AliasMove:
    """Point ``name@alias`` back at the version it held before its last move (or at
    ``to_version``); audited as a ``rollback``.

    Raises GrodtError when there is nothing to roll back to (the alias was never moved from
    another version).
    """
    store = store or resolve_store()
    if to_version is None:
        moves = [m for m in history(name, store) if m.alias == alias and m.action != "refuse"]
        if not moves or moves[-1].from_version is None:
            raise GrodtError(
                f"{name}@{alias}: no earlier version to roll back to (audited moves: "
                f"{len(moves)}); name one with --to VERSION",
            )
        to_version = moves[-1].from_version
    return move_alias(name, alias, to_version, "rollback", reason, store)
