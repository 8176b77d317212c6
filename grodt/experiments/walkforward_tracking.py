"""Track a walk-forward in MLflow: one parent run, a nested run per fold and variant.

The parent run (``grodt.kind=walkforward``) holds the settings and the flattened node config as
params, the stitched figures as metrics (``stitched.sharpe``, ``baseline.sharpe``,
``benchmark.sharpe``, ``credibility.dsr``, ``credibility.min_track_record_length``, …, and
``fold.<i>.<figure>``), the tail risk of the stitched daily returns
(:func:`research.risk_metrics.risk_summary`: ``risk.var_95``, ``risk.cvar_95``, ``risk.var_99``,
``risk.cvar_99``, ``risk.tail_ratio`` and ``risk.beta`` to the buy-and-hold benchmark; the
always-on baseline's as ``baseline_risk.*``) and the walk-forward's
files as artifacts (``summary.json``, ``folds.csv``, ``stitched_equity.csv``,
``walkforward.html``). Each fold's routed run and baseline run is logged like a ``grodt
backtest`` run (:func:`grodt.tracking.backtest.build_backtest_bundle`) with the MLflow tag
``mlflow.parentRunId`` naming the parent, which the MLflow UI shows as nested runs, and
``grodt.walkforward.fold`` / ``grodt.walkforward.variant`` (``routed`` or ``baseline``).

The parent is published first (its id is the children's tag). Publishing never fails the
walk-forward: an unreachable store leaves every bundle on disk (``grodt tracking sync`` uploads
each directory later; children synced that way carry the parent's id only if it was logged).
"""

from pathlib import Path
from typing import Any

import pandas as pd

from grodt.experiments.results import WalkForwardResult
from grodt.tracking.backtest import build_backtest_bundle
from grodt.tracking.bundle import ArtifactEntry
from grodt.tracking.bundle import RunBundle
from grodt.tracking.bundle import now_ms
from grodt.tracking.bundle import path_bytes
from grodt.tracking.bundle import publish
from grodt.tracking.bundle import read_bundle
from grodt.tracking.bundle import write_bundle
from grodt.tracking.flatten import flatten_metrics
from grodt.tracking.flatten import flatten_params
from grodt.tracking.provenance import current_user
from grodt.tracking.provenance import git_state
from grodt.tracking.store import TrackingStore
from node_configs.schema import BacktestNodeSpec
from research.risk_metrics import risk_summary

__all__ = ["TAG_PARENT", "stitched_returns", "stitched_risk", "track_walk_forward"]

TAG_PARENT = "mlflow.parentRunId"
"""MLflow's tag for a nested run's parent."""

_PARENT_FILES = ("summary.json", "folds.csv", "stitched_equity.csv", "walkforward.html")


def stitched_returns(result: WalkForwardResult, column: str = "equity") -> pd.Series:
    """Daily simple returns (fractions, UTC day index) of one stitched equity column, the first
    day against the starting equity: the returns :func:`grodt.experiments.stitch.chain_returns`
    chained into that column."""
    equity = result.stitched[column].astype(float)
    starting = float(result.folds[0].summary["starting_equity"])
    return equity / equity.shift(1).fillna(starting) - 1.0


def stitched_risk(result: WalkForwardResult, column: str = "equity") -> dict[str, float]:
    """:func:`research.risk_metrics.risk_summary` of a stitched column's daily returns, with
    ``beta`` to the buy-and-hold benchmark when the walk-forward ran one."""
    benchmark = None
    if "benchmark_equity" in result.stitched:
        benchmark = stitched_returns(result, "benchmark_equity")
    return risk_summary(stitched_returns(result, column), benchmark)


def _parent_bundle(
    result: WalkForwardResult, document: dict[str, Any], experiment: str
) -> RunBundle:
    params = flatten_params(document)
    params.update({f"walkforward.{k}": str(v) for k, v in result.settings.items()})
    params["walkforward.benchmark"] = result.benchmark
    params["walkforward.folds"] = str(len(result.folds))
    git = git_state(None)
    params["git.commit"] = git.commit or "unknown"
    params["git.dirty"] = "true" if git.dirty else "false"
    metrics = flatten_metrics(result.stitched_summary, prefix="stitched")
    metrics.update(flatten_metrics(result.baseline_stitched_summary or {}, prefix="baseline"))
    metrics.update(flatten_metrics(result.benchmark_stitched_summary or {}, prefix="benchmark"))
    metrics.update(flatten_metrics(result.credibility, prefix="credibility"))
    metrics.update(flatten_metrics(stitched_risk(result), prefix="risk"))
    if "baseline_equity" in result.stitched:
        metrics.update(
            flatten_metrics(stitched_risk(result, "baseline_equity"), prefix="baseline_risk")
        )
    for fold in result.folds:
        row = {k: v for k, v in fold.row().items() if k not in ("fold", "models")}
        metrics.update(flatten_metrics(row, prefix=f"fold.{fold.index}"))
    metrics["wall_seconds"] = result.wall_seconds
    artifacts = [
        ArtifactEntry(path=name, bytes=path_bytes(result.run_dir / name))
        for name in _PARENT_FILES
        if (result.run_dir / name).is_file()
    ]
    end = now_ms()
    tags = {
        "grodt.kind": "walkforward",
        "grodt.node": result.name,
        "grodt.run_dir": str(result.run_dir.resolve()),
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"grodt research walkforward {result.settings.get('config')}",
        "mlflow.user": current_user(),
    }
    if git.commit:
        tags["mlflow.source.git.commit"] = git.commit
    return RunBundle(
        kind="walkforward",
        experiment=experiment,
        run_name=f"{result.name}-walkforward-{result.run_dir.name}",
        start_ms=end - int(result.wall_seconds * 1000),
        end_ms=end,
        params=params,
        tags=tags,
        metrics=metrics,
        artifacts=artifacts,
    )


def track_walk_forward(
    result: WalkForwardResult,
    document: dict[str, Any],
    runs: dict[Path, tuple[BacktestNodeSpec, dict[str, Any]]],
    catalog: Path,
    experiment: str | None,
    store: TrackingStore,
) -> dict[str, Any]:
    """Publish the parent run, then every fold run nested under it.

    Parameters
    ----------
    runs : dict[Path, tuple[BacktestNodeSpec, dict]]
        Each fold run's directory → the spec and document it ran.

    Returns
    -------
    dict
        ``status`` of the parent (``logged``, ``already``, ``failed``), ``store``, ``run_id``,
        ``experiment``, ``children`` (logged count) and ``failed_children``; ``reason`` when the
        parent failed.
    """
    name = experiment or f"{result.name}_walkforward"
    write_bundle(result.run_dir, _parent_bundle(result, document, name))
    parent = publish(result.run_dir, store)
    info: dict[str, Any] = {
        "status": parent.status,
        "store": parent.store,
        "run_id": parent.run_id,
        "experiment": name,
        "children": 0,
        "failed_children": 0,
    }
    if not parent.ok:
        info["reason"] = parent.reason
    fold_of = {}
    for fold in result.folds:
        fold_of[fold.run_dir] = (fold.index, "routed")
        if fold.baseline_run_dir is not None:
            fold_of[fold.baseline_run_dir] = (fold.index, "baseline")
    for run_dir, (spec, run_document) in runs.items():
        index, variant = fold_of[run_dir]
        build_backtest_bundle(
            run_dir, spec, run_document, _summary(result, run_dir), catalog, experiment=name
        )
        bundle = read_bundle(run_dir)
        tags = {
            **bundle.tags,
            "grodt.walkforward.fold": str(index),
            "grodt.walkforward.variant": variant,
        }
        if parent.ok and parent.run_id:
            tags[TAG_PARENT] = parent.run_id
        write_bundle(
            run_dir,
            bundle.model_copy(
                update={"tags": tags, "run_name": f"{result.name}-fold{index:02d}-{variant}"}
            ),
        )
        if parent.ok:
            child = publish(run_dir, store)
            info["children" if child.ok else "failed_children"] += 1
    return info


def _summary(result: WalkForwardResult, run_dir: Path) -> dict[str, Any]:
    for fold in result.folds:
        if fold.run_dir == run_dir:
            return fold.summary
        if fold.baseline_run_dir == run_dir and fold.baseline_summary is not None:
            return fold.baseline_summary
    raise KeyError(run_dir)
