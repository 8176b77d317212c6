"""One sweep trial: apply its overrides, run the objective, track it as a nested MLflow run.

:func:`run_trial` is what a worker executes (a local pool process or a Ray task): it takes a
picklable :class:`TrialTask` and returns a picklable :class:`TrialOutcome`. It never raises for
a failing trial: the error and its traceback come back in the outcome (and are logged here), so
one bad trial is recorded as FAILED while the sweep goes on.

Objectives (the value the sweep maximises):

- ``backtest``: the annualised Sharpe ratio of one BacktestNode run over the config's range
  (``summary["sharpe"]``, from daily returns); the per-period returns are the run's daily
  returns.
- ``walkforward``: the annualised Sharpe ratio of the stitched out-of-sample curve of
  :func:`grodt.experiments.walkforward.run_walk_forward` (every learning component refitted per
  fold; the always-on baseline and buy-and-hold run beside it and land in the trial's summary as
  ``baseline_sharpe`` and ``benchmark_sharpe``); the per-period returns are the stitched daily
  returns.
"""

import logging
import math
import traceback
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import pandas as pd

from grodt.tracking.store import TrackingStore

if TYPE_CHECKING:
    from grodt.tracking.bundle import RunBundle

__all__ = ["TRIAL_OVERRIDES", "Objective", "TrialOutcome", "TrialTask", "run_trial"]

logger = logging.getLogger("grodt.experiments")

Objective = Literal["backtest", "walkforward"]

TRIAL_OVERRIDES: tuple[str, ...] = ("logging.file_level='OFF'",)
"""Applied to every trial after its parameters: Nautilus initialises its file logger once per
process, so a worker's later trials would write into its first trial's log file."""

_SUMMARY_KEYS = (
    "sharpe",
    "total_return",
    "cagr",
    "max_drawdown",
    "sortino",
    "calmar",
    "trades",
    "annual_volatility",
    "periods_per_year",
)


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs to run one trial (picklable).

    Attributes
    ----------
    number : int
        The Optuna trial number.
    params : dict[str, Any]
        The sampled values by config path (for the run's tags).
    overrides : tuple[str, ...]
        ``PATH=VALUE`` overrides of the trial's values.
    document : dict[str, Any]
        The config's resolved document (includes merged, the sweep's ``--set`` applied).
    source : str
        The config file, for error messages and the run's provenance.
    catalog : Path
    run_dir : Path
        The trial's run directory (reports, tracking bundle).
    objective : Objective
    store : TrackingStore | None
        Where the trial's MLflow run goes (``None``: bundle only).
    experiment : str
        MLflow experiment of the trial runs.
    parent_run_id : str | None
        The sweep's MLflow run: the trial run is nested under it.
    study_name : str
    walk_forward : dict[str, Any]
        ``train``, ``test``, ``step``, ``expanding`` of the ``walkforward`` objective.
    """

    number: int
    params: dict[str, Any]
    overrides: tuple[str, ...]
    document: dict[str, Any]
    source: str
    catalog: Path
    run_dir: Path
    objective: Objective = "backtest"
    store: TrackingStore | None = None
    experiment: str = "sweep"
    parent_run_id: str | None = None
    study_name: str = ""
    walk_forward: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TrialOutcome:
    """What one trial produced.

    Attributes
    ----------
    number : int
    value : float
        The objective (NaN when the trial failed or the figure does not exist, e.g. a run
        without trades has no Sharpe ratio).
    returns : pd.Series
        Per-period (daily) simple returns behind the value; empty when failed.
    summary : dict[str, Any]
        Headline figures of the run (Sharpe, return, drawdown, trades…), with
        ``benchmark_sharpe`` (buy-and-hold of the config's ``benchmark`` over the same span, None
        without one) and, for ``walkforward``, ``baseline_sharpe`` (always-on baseline; None
        when the config has no regime routing to remove).
    run_dir : Path
    tracking : dict[str, Any]
        ``status`` (logged/already/failed/disabled), ``run_id``, ``reason``.
    error : str | None
        ``Type: message`` of the exception that failed the trial.
    traceback : str | None
    """

    number: int
    value: float
    returns: pd.Series = field(default_factory=lambda: pd.Series(dtype=float))
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: Path | None = None
    tracking: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    traceback: str | None = None

    @property
    def ok(self) -> bool:
        """The trial ran and produced a finite objective value."""
        return self.error is None and math.isfinite(self.value)


def run_trial(task: TrialTask) -> TrialOutcome:
    """Run one trial (see the module docstring); never raises for the trial's own failure."""
    try:
        if task.objective == "walkforward":
            return _run_walk_forward_trial(task)
        return _run_backtest_trial(task)
    except Exception as e:  # recorded as a FAILED trial; the sweep goes on
        logger.exception("sweep trial %d (%s) failed", task.number, ", ".join(task.overrides))
        return TrialOutcome(
            number=task.number,
            value=math.nan,
            run_dir=task.run_dir,
            error=f"{type(e).__name__}: {e}",
            traceback=traceback.format_exc(),
        )


def _run_backtest_trial(task: TrialTask) -> TrialOutcome:
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_document
    from node_configs.overrides import apply_overrides
    from research.performance import daily_returns

    document = apply_overrides(task.document, (*task.overrides, *TRIAL_OVERRIDES))
    spec = load_backtest_document(document, task.source)
    outcome = run_backtest(spec, task.catalog, task.run_dir, document=document, quiet=True)
    summary = outcome.summary
    curve = outcome.curve
    returns = (
        daily_returns(curve.frame["equity"], curve.starting_equity)
        if curve is not None and len(curve.frame)
        else pd.Series(dtype=float)
    )
    value = summary.get("sharpe")
    value = float(value) if isinstance(value, int | float) else math.nan
    tracking = _track_trial(task, spec, document, summary)
    figures = {key: summary.get(key) for key in _SUMMARY_KEYS}
    figures["benchmark_sharpe"] = (summary.get("benchmark") or {}).get("sharpe")
    return TrialOutcome(
        number=task.number,
        value=value,
        returns=returns,
        summary=figures,
        run_dir=task.run_dir,
        tracking=tracking,
    )


def _run_walk_forward_trial(task: TrialTask) -> TrialOutcome:
    from grodt.experiments.walkforward import run_walk_forward
    from grodt.tracking.bundle import ArtifactEntry
    from grodt.tracking.bundle import RunBundle
    from grodt.tracking.bundle import now_ms
    from grodt.tracking.flatten import flatten_metrics
    from grodt.tracking.flatten import flatten_params
    from node_configs.overrides import apply_overrides

    started = now_ms()
    document = apply_overrides(task.document, (*task.overrides, *TRIAL_OVERRIDES))
    settings = task.walk_forward
    result = run_walk_forward(
        document,
        task.catalog,
        settings["train"],
        settings["test"],
        step=settings.get("step"),
        expanding=bool(settings.get("expanding", False)),
        baseline=True,
        run_dir=task.run_dir,
        track=False,
        tearsheet=False,
    )
    equity = result.stitched["equity"]
    returns = equity.pct_change().dropna()
    stitched = result.stitched_summary
    summary: dict[str, Any] = {key: stitched.get(key) for key in _SUMMARY_KEYS if key in stitched}
    summary["folds"] = len(result.folds)
    summary["periods_per_year"] = int(result.folds[0].summary.get("periods_per_year", 252))
    summary["baseline_sharpe"] = (result.baseline_stitched_summary or {}).get("sharpe")
    summary["benchmark_sharpe"] = (result.benchmark_stitched_summary or {}).get("sharpe")
    value = stitched.get("sharpe")
    value = float(value) if isinstance(value, int | float) else math.nan
    artifacts = [
        ArtifactEntry(path=name)
        for name in ("summary.json", "folds.csv", "stitched_equity.csv")
        if (task.run_dir / name).is_file()
    ]
    bundle = RunBundle(
        kind="sweep_trial",
        experiment=task.experiment,
        run_name=f"{task.study_name}-trial-{task.number:04d}",
        start_ms=started,
        end_ms=now_ms(),
        params=flatten_params(document),
        metrics={
            **flatten_metrics(stitched),
            **flatten_metrics(
                {"baseline": result.baseline_stitched_summary or {}, "folds": len(result.folds)}
            ),
        },
        artifacts=artifacts,
    )
    tracking = _publish_trial(task, bundle)
    return TrialOutcome(
        number=task.number,
        value=value,
        returns=returns,
        summary=summary,
        run_dir=task.run_dir,
        tracking=tracking,
    )


def _track_trial(
    task: TrialTask,
    spec: Any,
    document: dict[str, Any],
    summary: dict[str, Any],
) -> dict[str, Any]:
    """Bundle the trial's run with the sweep's tags and publish it (nested under the sweep)."""
    from grodt.tracking.backtest import build_backtest_bundle

    bundle, _ = build_backtest_bundle(
        task.run_dir,
        spec,
        document,
        summary,
        task.catalog,
        config_path=Path(task.source),
        experiment=task.experiment,
    )
    return _publish_trial(task, bundle)


def _publish_trial(task: TrialTask, bundle: "RunBundle") -> dict[str, Any]:
    """Tag ``bundle`` as the sweep's trial (nested under its parent run), write it into the
    trial's run directory and publish it."""
    from grodt.tracking.bundle import publish
    from grodt.tracking.bundle import write_bundle

    tags = {
        **bundle.tags,
        "grodt.kind": "sweep_trial",
        "grodt.sweep.study": task.study_name,
        "grodt.sweep.trial": str(task.number),
        "grodt.sweep.overrides": " ".join(task.overrides)[:4000],
    }
    if task.parent_run_id:
        tags["mlflow.parentRunId"] = task.parent_run_id
    bundle = bundle.model_copy(
        update={"tags": tags, "run_name": f"{task.study_name}-trial-{task.number:04d}"},
    )
    write_bundle(task.run_dir, bundle)
    if task.store is None:
        return {"status": "disabled"}
    result = publish(task.run_dir, task.store)
    info: dict[str, Any] = {"status": result.status, "run_id": result.run_id}
    if not result.ok:
        info["reason"] = result.reason
    return info
