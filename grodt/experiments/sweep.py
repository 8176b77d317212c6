"""Parameter sweeps over a node config: Optuna studies, trials on a local pool or Ray.

``grodt research sweep CONFIG --param PATH=KIND:… --trials N`` (:mod:`grodt.cli.research`)
calls :func:`run_sweep`:

1. the config is resolved once (``--set`` applied) and checked with every parameter at its first
   value, so a misspelt path or an out-of-schema value fails before any trial runs;
2. an Optuna study (TPE or grid sampler, maximising the objective) is created in the tracking
   database's place (:mod:`grodt.experiments.sweep_storage`) — or joined, with ``--study NAME``,
   by any number of sweep processes on any machines that reach the same database;
3. trials are asked in batches of ``workers``, run in parallel
   (:mod:`grodt.experiments.sweep_executors`), and told back in trial order. A seeded sampler
   therefore proposes the same trials on every repeat with the same ``workers``, on the local
   pool and on Ray alike (the sampler sees each batch's results before proposing the next);
4. each trial is a BacktestNode run (:mod:`grodt.experiments.sweep_trial`) tracked as an MLflow
   run nested under the sweep's parent run, its daily returns kept as the Optuna trial's user
   attribute ``daily_returns``;
5. at the end the best trial's figures are judged against the number of trials tried:
   :func:`research.overfitting.result_credibility` gives its deflated Sharpe ratio (the trials'
   Sharpe variance and count set the expected maximum of noise) and, from the daily returns of
   every completed trial on their common dates, the probability of backtest overfitting (CSCV);
   :func:`research.risk_metrics.risk_summary` gives the tail risk of its daily returns (VaR and
   CVaR at 95/99%, tail ratio; no beta: a trial keeps no benchmark returns). Both go to the
   parent run as ``credibility.*`` and ``risk.*`` metrics and into ``sweep.json``.

A trial whose objective is not a number (a run without trades has no Sharpe ratio) or that
raises is told FAILED with the reason as a user attribute, and the sweep goes on; it still counts
as a configuration tried (``ran``) when it ran to the end.
"""

import json
import logging
import math
import time
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.experiments.sweep_executors import open_executor
from grodt.experiments.sweep_params import ParamSpec
from grodt.experiments.sweep_params import grid_search_space
from grodt.experiments.sweep_params import trial_overrides
from grodt.experiments.sweep_storage import display_url
from grodt.experiments.sweep_storage import open_storage
from grodt.experiments.sweep_storage import study_storage_url
from grodt.experiments.sweep_trial import TRIAL_OVERRIDES
from grodt.experiments.sweep_trial import Objective
from grodt.experiments.sweep_trial import TrialOutcome
from grodt.experiments.sweep_trial import TrialTask
from grodt.tracking.store import TrackingStore

if TYPE_CHECKING:
    import optuna

    from grodt.tracking.training import TrainingRun

__all__ = [
    "SweepResult",
    "SweepTrial",
    "best_trial_risk",
    "format_sweep",
    "run_sweep",
    "study_credibility",
]

logger = logging.getLogger("grodt.experiments")

Sampler = Literal["tpe", "grid"]

PBO_SPLITS = 16
"""CSCV blocks of the PBO (C(16, 8) = 12,870 combinations), reduced for short return series."""

_RETURNS_ATTR = "daily_returns"

NOT_A_NUMBER = "the objective is not a number (a run without trades has no Sharpe ratio)"


@dataclass(frozen=True)
class SweepTrial:
    """One trial of the study as the sweep reports it.

    Attributes
    ----------
    number : int
    params : dict[str, Any]
        Sampled values by config path.
    value : float
        The objective (NaN when failed).
    state : str
        Optuna's state name (``COMPLETE``, ``FAIL``).
    summary : dict[str, Any]
        Headline figures of the trial's run.
    run_dir : str | None
    run_id : str | None
        The trial's MLflow run.
    error : str | None
    """

    number: int
    params: dict[str, Any]
    value: float
    state: str
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: str | None = None
    run_id: str | None = None
    error: str | None = None


@dataclass
class SweepResult:
    """What a sweep found.

    Attributes
    ----------
    study_name, storage : str
        The Optuna study and its database (password redacted).
    sweep_dir : Path
        The parent run's directory (``sweep.json``, ``trials/<NNNN>/`` run directories).
    executor : str
        Where the trials ran.
    trials : list[SweepTrial]
        The trials this call ran, in trial order.
    best : SweepTrial | None
        The study's best completed trial (over every process that shared the study).
    credibility : dict[str, float]
        :func:`research.overfitting.result_credibility` of the best trial (``dsr``, ``psr``,
        ``expected_max_sharpe``, ``n_trials``, ``pbo`` when at least two trials completed…).
    wall_seconds : float
    tracking : dict[str, Any]
        The parent MLflow run: ``status``, ``run_id``, ``experiment``.
    risk : dict[str, float]
        :func:`research.risk_metrics.risk_summary` of the best trial's daily returns (empty
        without a best trial).
    """

    study_name: str
    storage: str
    sweep_dir: Path
    executor: str
    trials: list[SweepTrial]
    best: SweepTrial | None
    credibility: dict[str, float]
    wall_seconds: float
    tracking: dict[str, Any] = field(default_factory=dict)
    risk: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (NaN as null)."""

        def clean(value: Any) -> Any:
            if isinstance(value, float) and not math.isfinite(value):
                return None
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            if isinstance(value, Path):
                return str(value)
            if isinstance(value, np.generic):
                return clean(value.item())
            return value

        return clean(
            {
                "study": self.study_name,
                "storage": self.storage,
                "sweep_dir": str(self.sweep_dir),
                "executor": self.executor,
                "wall_seconds": self.wall_seconds,
                "best": self.best.__dict__ if self.best else None,
                "credibility": self.credibility,
                "risk": self.risk,
                "trials": [trial.__dict__ for trial in self.trials],
                "tracking": self.tracking,
            },
        )


def _grid_sampler_class() -> type:
    from optuna.samplers import GridSampler

    class SweepGridSampler(GridSampler):
        """Optuna's grid sampler without its ``study.stop()`` once the grid is covered: that
        call works only inside ``study.optimize`` and fails the ask-and-tell loop here (the
        sweep stops by itself at the points left in the grid)."""

        def after_trial(self, *args: Any, **kwargs: Any) -> None:
            return None

    return SweepGridSampler


def _sampler(
    kind: Sampler, params: list[ParamSpec], seed: int | None
) -> "optuna.samplers.BaseSampler":
    import optuna

    if kind == "grid":
        return _grid_sampler_class()(grid_search_space(params), seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise ConfigError(f"--sampler {kind!r}: expected tpe or grid")


def _check_config(
    document: dict[str, Any],
    params: list[ParamSpec],
    source: str,
    catalog: Path,
) -> str:
    """Validate the config with every parameter at its first value and check the catalog;
    returns the config's name. Raises ConfigError naming the field."""
    from grodt.nodes.catalog_data import check_catalog
    from node_configs.loader import load_backtest_document
    from node_configs.overrides import apply_overrides

    first = {
        p.path: (p.choices[0] if p.kind == "choice" else (int(p.low) if p.kind == "int" else p.low))
        for p in params
    }
    probe = apply_overrides(document, (*trial_overrides(params, first), *TRIAL_OVERRIDES))
    spec = load_backtest_document(probe, source)
    check_catalog(spec.data, catalog, source, start=spec.start, end=spec.end)
    return spec.name


def _returns_attr(returns: pd.Series) -> dict[str, list[Any]]:
    index = pd.DatetimeIndex(returns.index)
    return {
        "dates": [stamp.isoformat() for stamp in index],
        "values": [float(v) if math.isfinite(v) else None for v in returns.to_numpy(float)],
    }


def _returns_from_attr(attr: dict[str, list[Any]]) -> pd.Series:
    values = [math.nan if v is None else float(v) for v in attr["values"]]
    return pd.Series(values, index=pd.DatetimeIndex(attr["dates"]), dtype=float)


def study_credibility(
    study: "optuna.Study",
    periods_per_year: int,
) -> tuple["optuna.trial.FrozenTrial | None", dict[str, float]]:
    """The study's best completed trial and its credibility figures (see the module docstring).

    ``n_trials`` counts every trial that ran to the end (failed-for-NaN included: it was tried);
    the Sharpe variance is over the completed ones; the PBO matrix is the completed trials'
    daily returns on the dates they all share (at least ``2 * 2`` rows; blocks reduced below 16
    when the series is short).
    """
    from optuna.trial import TrialState

    from research.overfitting import result_credibility

    trials = study.get_trials(deepcopy=False)
    completed = [t for t in trials if t.state == TrialState.COMPLETE]
    ran = [t for t in trials if t.user_attrs.get("ran")]
    if not completed:
        return None, {}
    best = max(completed, key=lambda t: (float(t.value or -math.inf), -t.number))
    returns = {
        t.number: _returns_from_attr(t.user_attrs[_RETURNS_ATTR])
        for t in completed
        if _RETURNS_ATTR in t.user_attrs
    }
    if best.number not in returns:
        return best, {}
    matrix = None
    splits = PBO_SPLITS
    if len(returns) >= 2:
        frame = pd.DataFrame(returns).dropna(how="any")
        splits = min(PBO_SPLITS, (len(frame) // 2) * 2)
        if splits >= 2:
            matrix = frame
    credibility = result_credibility(
        returns[best.number].dropna(),
        n_trials=max(len(ran), 1),
        trial_sharpes=[float(t.value) for t in completed if t.value is not None],
        performance_matrix=matrix,
        periods_per_year=periods_per_year,
        n_splits=splits,
    )
    return best, credibility


def best_trial_risk(best: "optuna.trial.FrozenTrial | None") -> dict[str, float]:
    """:func:`research.risk_metrics.risk_summary` of the best trial's daily returns; empty when
    there is no best trial or it kept no returns."""
    from research.risk_metrics import risk_summary

    if best is None or _RETURNS_ATTR not in best.user_attrs:
        return {}
    return risk_summary(_returns_from_attr(best.user_attrs[_RETURNS_ATTR]).dropna())


def _tell(
    study: "optuna.Study",
    trial: "optuna.trial.Trial",
    outcome: TrialOutcome,
) -> None:
    from optuna.trial import TrialState

    trial.set_user_attr("ran", outcome.error is None)
    if outcome.run_dir is not None:
        trial.set_user_attr("run_dir", str(outcome.run_dir))
    if outcome.tracking.get("run_id"):
        trial.set_user_attr("mlflow_run_id", outcome.tracking["run_id"])
    if outcome.summary:
        trial.set_user_attr("summary", json.loads(json.dumps(outcome.summary, default=str)))
    if outcome.ok:
        trial.set_user_attr(_RETURNS_ATTR, _returns_attr(outcome.returns))
        study.tell(trial, outcome.value)
        return
    reason = outcome.error or NOT_A_NUMBER
    trial.set_user_attr("error", reason[:2000])
    if outcome.traceback:
        logger.warning("sweep trial %d failed:\n%s", trial.number, outcome.traceback)
    else:
        logger.warning("sweep trial %d: %s", trial.number, reason)
    study.tell(trial, state=TrialState.FAIL)


def _parent_run(
    name: str,
    experiment: str,
    sweep_dir: Path,
    store: TrackingStore | None,
    params: dict[str, Any],
    tags: dict[str, str],
) -> "TrainingRun":
    from grodt.tracking.training import TrainingRun

    return TrainingRun(
        name,
        params=params,
        experiment=experiment,
        run_dir=sweep_dir,
        store=store,
        tags={"grodt.kind": "sweep", **tags},
    )


def run_sweep(
    config: Path,
    params: Sequence[ParamSpec],
    n_trials: int,
    catalog: Path,
    objective: Objective = "backtest",
    sampler: Sampler = "tpe",
    seed: int | None = None,
    workers: int = 2,
    ray_address: str | None = None,
    overrides: Sequence[str] = (),
    study_name: str | None = None,
    storage: str | None = None,
    sweep_dir: Path | None = None,
    store: TrackingStore | None = None,
    experiment: str | None = None,
    walk_forward: dict[str, Any] | None = None,
    on_trial: Callable[[SweepTrial], None] | None = None,
) -> SweepResult:
    """Run ``n_trials`` trials of a sweep over ``params`` of the node config ``config``.

    Parameters
    ----------
    config : Path
        A backtest node config (YAML).
    params : sequence of ParamSpec
        The searched values (:func:`grodt.experiments.sweep_params.parse_param`); at least one.
    n_trials : int
        Trials to run in this call (the grid sampler stops at the grid's size).
    catalog : Path
    objective : {"backtest", "walkforward"}
        What a trial maximises (see :mod:`grodt.experiments.sweep_trial`).
    sampler : {"tpe", "grid"}
    seed : int, optional
        Seeds the sampler: the same seed and ``workers`` propose the same trials.
    workers : int, default 2
        Trials run at once (the batch size): local processes, or Ray tasks in flight.
    ray_address : str, optional
        ``auto`` or ``HOST:PORT``: run the trials on that Ray cluster instead of a local pool.
    overrides : sequence of str
        ``PATH=VALUE`` applied to the config before the sweep's parameters (``--set``).
    study_name : str, optional
        Join (or create) the study of this name; default: a new study per sweep.
    storage : str, optional
        The study database URL (default: beside the tracking store).
    sweep_dir : Path, optional
        Default ``<GRODT_RUNS_DIR>/sweeps/<config name>/<timestamp>``.
    store : TrackingStore, optional
        Tracking store of the parent run and the trial runs (``None``: bundles only).
    experiment : str, optional
        MLflow experiment (default ``sweep/<config name>``).
    walk_forward : dict, optional
        ``train``, ``test`` (required by the ``walkforward`` objective), ``step``, ``expanding``:
        :func:`grodt.experiments.walkforward.run_walk_forward`'s windows.
    on_trial : callable, optional
        Called with each finished trial (progress output).

    Raises
    ------
    ConfigError
        Bad parameters, config or catalog (before any trial runs); a Ray cluster that cannot be
        reached.
    GrodtError
        Every trial of this call failed (the first error is named).
    """
    import optuna

    from grodt.core.settings import get_settings
    from grodt.nodes.run_files import new_run_dir
    from node_configs.loader import load_document

    params = list(params)
    if not params:
        raise ConfigError("a sweep needs at least one --param PATH=KIND:…")
    if len({p.path for p in params}) != len(params):
        raise ConfigError("a --param path is given twice")
    if n_trials < 1:
        raise ConfigError(f"--trials must be at least 1, was {n_trials}")
    if workers < 1:
        raise ConfigError(f"--workers must be at least 1, was {workers}")
    walk_forward = dict(walk_forward or {})
    if objective == "walkforward":
        if not walk_forward.get("train") or not walk_forward.get("test"):
            raise ConfigError("--objective walkforward needs --train and --test (e.g. 3y, 6m)")
        from grodt.experiments.windows import check_windows

        check_windows(walk_forward["train"], walk_forward["test"], walk_forward.get("step"))
    elif objective != "backtest":
        raise ConfigError(f"--objective {objective!r}: expected backtest or walkforward")
    elif any(walk_forward.get(key) for key in ("train", "test", "step", "expanding")):
        raise ConfigError("--train/--test/--step/--expanding belong to --objective walkforward")
    source = str(config)
    document = load_document(config, overrides)
    name = _check_config(document, params, source, Path(catalog))
    grid_size = math.prod(len(p.grid()) for p in params) if sampler == "grid" else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study_sampler = _sampler(sampler, params, seed)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    study_name = study_name or f"{name}-{stamp}"
    storage_url = study_storage_url(store, storage)
    study = optuna.create_study(
        study_name=study_name,
        storage=open_storage(storage_url),
        sampler=study_sampler,
        direction="maximize",
        load_if_exists=True,
    )
    if grid_size is not None:  # the points of the grid no trial of the study has taken yet
        taken = sum(t.state != optuna.trial.TrialState.WAITING for t in study.trials)
        n_trials = min(n_trials, max(grid_size - taken, 0))
        if n_trials == 0:
            raise ConfigError(f"study {study_name}: every point of the grid has been tried")
    sweep_dir = (
        Path(sweep_dir)
        if sweep_dir
        else new_run_dir(Path(get_settings().runs_dir) / "sweeps", name)
    )
    experiment = experiment or f"sweep/{name}"
    distributions = {p.path: p.distribution() for p in params}
    executor = open_executor(workers, ray_address)
    started = time.perf_counter()
    parent = _parent_run(
        study_name,
        experiment,
        sweep_dir,
        store,
        params={
            "config": source,
            "objective": objective,
            "sampler": sampler,
            "seed": "none" if seed is None else seed,
            "workers": workers,
            "trials": n_trials,
            "executor": executor.description,
            "storage": display_url(storage_url),
            "param": {p.path: p.__dict__ for p in params},
            "set": list(overrides),
            "walk_forward": walk_forward,
        },
        tags={"grodt.sweep.study": study_name, "grodt.node": name},
    )
    finished: list[SweepTrial] = []
    periods_per_year = 252
    try:
        with parent:
            remaining = n_trials
            while remaining > 0:
                batch = [study.ask(distributions) for _ in range(min(workers, remaining))]
                tasks = [
                    TrialTask(
                        number=trial.number,
                        params=dict(trial.params),
                        overrides=trial_overrides(params, trial.params),
                        document=document,
                        source=source,
                        catalog=Path(catalog),
                        run_dir=sweep_dir / "trials" / f"{trial.number:04d}",
                        objective=objective,
                        store=store,
                        experiment=experiment,
                        parent_run_id=parent.run_id,
                        study_name=study_name,
                        walk_forward=walk_forward,
                    )
                    for trial in batch
                ]
                try:
                    outcomes = executor.run_batch(tasks)
                except BaseException:
                    for trial in batch:
                        study.tell(trial, state=optuna.trial.TrialState.FAIL)
                    raise
                for trial, outcome in zip(batch, outcomes, strict=True):
                    _tell(study, trial, outcome)
                    periods_per_year = int(outcome.summary.get("periods_per_year") or 252)
                    reported = SweepTrial(
                        number=trial.number,
                        params=dict(trial.params),
                        value=outcome.value,
                        state="COMPLETE" if outcome.ok else "FAIL",
                        summary=outcome.summary,
                        run_dir=str(outcome.run_dir) if outcome.run_dir else None,
                        run_id=outcome.tracking.get("run_id"),
                        error=outcome.error or (None if outcome.ok else NOT_A_NUMBER),
                    )
                    finished.append(reported)
                    if math.isfinite(outcome.value):
                        parent.log_metrics({"trial.value": outcome.value}, step=trial.number)
                    if on_trial is not None:
                        on_trial(reported)
                remaining -= len(batch)
            best_frozen, credibility = study_credibility(study, periods_per_year)
            best = _reported(best_frozen)
            wall = time.perf_counter() - started
            result = SweepResult(
                study_name=study_name,
                storage=display_url(storage_url),
                sweep_dir=sweep_dir,
                executor=executor.description,
                trials=finished,
                best=best,
                credibility=credibility,
                wall_seconds=wall,
                risk=best_trial_risk(best_frozen),
            )
            summary: dict[str, Any] = {
                "trials_completed": sum(t.state == "COMPLETE" for t in finished),
                "trials_failed": sum(t.state != "COMPLETE" for t in finished),
                "wall_seconds": wall,
            }
            if best is not None:
                summary["best"] = {"value": best.value, "trial": best.number}
                parent.log_params({f"best.{k}": v for k, v in best.params.items()})
            summary["credibility"] = credibility
            summary["risk"] = result.risk
            parent.log_summary(summary)
            (sweep_dir / "sweep.json").write_text(
                json.dumps(result.to_json(), indent=2, default=str), encoding="utf-8"
            )
            parent.log_artifact(sweep_dir / "sweep.json")
    finally:
        executor.close()
    publish = parent.result
    result.tracking = {
        "experiment": experiment,
        "status": "disabled" if store is None else (publish.status if publish else "failed"),
        "run_id": parent.run_id or (publish.run_id if publish else None),
    }
    if not any(t.state == "COMPLETE" for t in finished):
        first = next((t.error for t in finished if t.error), "no trial produced a number")
        raise GrodtError(f"every trial of sweep {study_name} failed; the first: {first}")
    return result


def _reported(trial: "optuna.trial.FrozenTrial | None") -> SweepTrial | None:
    if trial is None:
        return None
    return SweepTrial(
        number=trial.number,
        params=dict(trial.params),
        value=float(trial.value) if trial.value is not None else math.nan,
        state=trial.state.name,
        summary=dict(trial.user_attrs.get("summary", {})),
        run_dir=trial.user_attrs.get("run_dir"),
        run_id=trial.user_attrs.get("mlflow_run_id"),
        error=trial.user_attrs.get("error"),
    )


def format_sweep(result: SweepResult) -> str:
    """The human-readable sweep report: the trials, the best one, and how much to believe it."""

    def ratio(value: Any) -> str:
        return "n/a" if value is None or not math.isfinite(float(value)) else f"{value:,.3f}"

    lines = [
        f"Sweep {result.study_name}: {len(result.trials)} trials on {result.executor} "
        f"in {result.wall_seconds:,.1f} s (study in {result.storage})",
    ]
    for trial in result.trials:
        values = ", ".join(f"{k}={v}" for k, v in trial.params.items())
        status = (
            ratio(trial.value) if trial.state == "COMPLETE" else f"FAILED ({trial.error or 'NaN'})"
        )
        lines.append(f"  trial {trial.number:>4}  {status:>8}  {values}")
    best = result.best
    if best is None:
        lines.append("No trial completed.")
        return "\n".join(lines)
    figures = result.credibility
    best_values = ", ".join(f"{k}={v}" for k, v in best.params.items())
    lines.append(f"Best: trial {best.number}, Sharpe {ratio(best.value)} ({best_values})")
    beside = [
        f"{label} Sharpe {ratio(best.summary[key])}"
        for key, label in (
            ("baseline_sharpe", "always-on baseline"),
            ("benchmark_sharpe", "buy and hold"),
        )
        if best.summary.get(key) is not None
    ]
    if beside:
        lines.append(f"  beside it: {', '.join(beside)} (same span)")
    lines.append(
        f"  deflated Sharpe {ratio(figures.get('dsr'))} (probability that its true Sharpe "
        f"beats the best of {int(figures.get('n_trials', 0))} noise trials, expected max "
        f"Sharpe {ratio(figures.get('expected_max_sharpe'))}); probabilistic Sharpe vs 0 "
        f"{ratio(figures.get('psr'))}",
    )
    if "pbo" in figures:
        lines.append(
            f"  probability of backtest overfitting {ratio(figures['pbo'])} (CSCV over "
            f"{int(figures.get('pbo_combinations', 0)):,} splits of the trials' daily returns)",
        )
    return "\n".join(lines)
