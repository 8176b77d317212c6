"""``grodt research``: research loops over the engine (walk-forward; sweeps)."""

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import click

from grodt.cli._options import config_catalog_option

if TYPE_CHECKING:
    from grodt.experiments.results import FoldResult
    from grodt.experiments.results import WalkForwardResult


@click.group(name="research")
def command() -> None:
    """Research loops over the engine: walk-forward, parameter sweeps."""


def _pct(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value * 100:,.2f}%"


def _ratio(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:,.3f}"


def _variant_cells(figures: dict[str, Any] | None) -> str:
    figures = figures or {}
    return (
        f"{_ratio(figures.get('sharpe')):>8} {_pct(figures.get('total_return')):>9} "
        f"{_pct(figures.get('max_drawdown')):>9}"
    )


_HEADER = f"{'Sharpe':>8} {'return':>9} {'max DD':>9}"
_LEAD = 30  # "fold  2010-01-04 → 2010-12-31 "


def format_walk_forward(result: "WalkForwardResult") -> str:
    """The per-fold and stitched table: routed, always-on baseline and buy-and-hold."""
    width = len(_HEADER)
    variants = f"{'regime-routed':<{width}} | {'always-on baseline':<{width}} | buy and hold"
    lines = [
        f"{result.name}: walk-forward, train {result.settings['train']}, test "
        f"{result.settings['test']}, step {result.settings['step']}"
        + (", expanding" if result.settings["expanding"] else ", sliding")
        + f"; fitted per fold: {', '.join(result.settings['learning_components']) or 'nothing'}",
        f"{'':<{_LEAD}}{variants}",
        f"{'fold  test window':<{_LEAD}}{_HEADER} | {_HEADER} | {_HEADER}",
    ]
    for fold in result.folds:
        window = f"{fold.test_start.date()} → {fold.test_end.date()}"
        lines.append(
            f"{fold.index:>4}  {window:<{_LEAD - 6}}{_variant_cells(fold.summary)} | "
            f"{_variant_cells(fold.baseline_summary)} | "
            f"{_variant_cells(fold.summary.get('benchmark'))}",
        )
    lines.append(
        f"{'stitched OOS':<{_LEAD}}{_variant_cells(result.stitched_summary)} | "
        f"{_variant_cells(result.baseline_stitched_summary)} | "
        f"{_variant_cells(result.benchmark_stitched_summary)}",
    )
    credibility = result.credibility
    lines.append(
        f"Stitched: {int(result.stitched_summary['days']):,} days, CAGR "
        f"{_pct(result.stitched_summary['cagr'])}; probabilistic Sharpe (vs 0) "
        f"{_ratio(credibility.get('psr'))}, deflated Sharpe {_ratio(credibility.get('dsr'))} "
        f"({int(credibility.get('n_trials', 1))} trial(s))",
    )
    if result.baseline_stitched_summary is None:
        lines.append("No always-on baseline: the config has no regime routing to remove.")
    lines.append(f"Buy and hold: {result.benchmark} (stitched like the folds)")
    lines.append(f"({len(result.folds)} folds in {result.wall_seconds:,.1f} s)")
    return "\n".join(lines)


def _fold_line(fold: "FoldResult") -> None:
    click.echo(
        f"fold {fold.index}: {fold.test_start.date()} → {fold.test_end.date()} Sharpe "
        f"{_ratio(fold.summary.get('sharpe'))} ({fold.seconds:.1f} s)",
        err=True,
    )


@command.command(name="walkforward")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--train", required=True, help="Train window: 3y, 18m, 8w, 90d.")
@click.option("--test", "test_window", required=True, help="Test window (e.g. 6m).")
@click.option("--step", default=None, help="Move windows by this (default: --test; not shorter).")
@click.option("--expanding", is_flag=True, help="Train windows grow from the first bar.")
@click.option(
    "--baseline/--no-baseline",
    default=True,
    help="Run the always-on baseline (no regime routing) beside every fold (default: on).",
)
@config_catalog_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write (default: <GRODT_RUNS_DIR>/<name>_walkforward/<timestamp>).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value before the walk-forward (repeatable), e.g. --set "
    "start=2005-01-01.",
)
@click.option("--track/--no-track", default=True, help="Log to MLflow (default: on).")
@click.option("--experiment", default=None, help="MLflow experiment (default: <name>_walkforward).")
@click.option("--tracking-uri", default=None, help="Tracking store (default: as grodt backtest).")
@click.option(
    "--trials", type=int, default=1, help="Configurations tried, for the deflated Sharpe."
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def walkforward_command(
    config: Path,
    train: str,
    test_window: str,
    step: str | None,
    expanding: bool,
    baseline: bool,
    catalog: Path | None,
    run_dir: Path | None,
    overrides: tuple[str, ...],
    track: bool,
    experiment: str | None,
    tracking_uri: str | None,
    trials: int,
    as_json: bool,
) -> None:
    """Walk CONFIG forward: per fold, fit its learning components (the regime HMM) on the train
    window and run the test window in a BacktestNode.

    Prints per-fold and stitched out-of-sample Sharpe, return and max drawdown of the
    regime-routed config, its always-on baseline and buy-and-hold, and writes folds.csv,
    stitched_equity.csv, summary.json and walkforward.html (stitched curve, fold boundaries)
    into the run directory. With tracking: one MLflow parent run, a nested run per fold.
    """
    from grodt.cli.tracking import echo_warnings
    from grodt.experiments.walkforward import run_walk_forward
    from grodt.nodes.run_files import json_safe

    echo_warnings()
    if trials < 1:
        raise click.BadParameter(f"must be >= 1, was {trials}", param_hint="--trials")
    result = run_walk_forward(
        config,
        catalog,
        train,
        test_window,
        step=step,
        expanding=expanding,
        baseline=baseline,
        run_dir=run_dir,
        track=track,
        overrides=overrides,
        experiment=experiment,
        tracking_uri=tracking_uri,
        n_trials=trials,
        on_fold=None if as_json else _fold_line,
    )
    if as_json:
        payload = result.summary()
        payload["tracking"] = result.tracking
        click.echo(json.dumps(json_safe(payload), default=str))
        return
    click.echo(format_walk_forward(result))
    if result.tearsheet is not None:
        click.echo(f"Tearsheet: {result.tearsheet.resolve().as_uri()}")
    tracking = result.tracking
    if tracking.get("status") in ("logged", "already"):
        click.echo(
            f"Tracking: MLflow parent run {tracking['run_id']} with {tracking['children']} nested "
            f"fold runs in experiment {tracking['experiment']!r} ({tracking['store']})",
        )
    elif track:
        click.echo(f"Tracking: NOT logged ({tracking.get('reason')}); bundles in the run dirs")
    click.echo(f"Reports: {result.run_dir}")
    sys.stdout.flush()


@command.command(name="sweep")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--param",
    "param_texts",
    multiple=True,
    required=True,
    metavar="PATH=KIND:…",
    help="A searched config value (repeatable): int:LOW:HIGH[:STEP], float:LOW:HIGH[:log|:STEP] "
    "or choice:A,B,C, e.g. --param strategies[0].config.fast_ema_period=int:5:30.",
)
@click.option("--trials", type=int, default=50, show_default=True, help="Trials to run.")
@click.option(
    "--objective",
    type=click.Choice(["backtest", "walkforward"]),
    default="backtest",
    show_default=True,
    help="What a trial maximises: backtest = the Sharpe ratio of one run of the config's range; "
    "walkforward = the stitched out-of-sample Sharpe of a walk-forward (--train, --test).",
)
@click.option("--train", default=None, help="walkforward objective: train window (e.g. 3y).")
@click.option("--test", "test_window", default=None, help="walkforward objective: test window.")
@click.option("--step", default=None, help="walkforward objective: step (default: --test).")
@click.option("--expanding", is_flag=True, help="walkforward objective: growing train windows.")
@click.option("--sampler", type=click.Choice(["tpe", "grid"]), default="tpe", show_default=True)
@click.option(
    "--seed", type=int, default=None, help="Sampler seed: same seed and workers, same trials."
)
@click.option(
    "--workers",
    type=int,
    default=2,
    show_default=True,
    help="Trials at once (local processes, or Ray tasks in flight).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    metavar="auto|HOST:PORT",
    help="Run the trials on a Ray cluster (needs pip install 'grodt[ray]').",
)
@config_catalog_option
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value for every trial (repeatable), e.g. --set start=2005-01-01.",
)
@click.option(
    "--study", default=None, help="Join or create this Optuna study (default: a new one)."
)
@click.option(
    "--storage", default=None, help="Study database URL (default: beside the tracking store)."
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Sweep directory (default: <GRODT_RUNS_DIR>/sweeps/<name>/<timestamp>).",
)
@click.option("--track/--no-track", default=True, help="Log to MLflow (default: on).")
@click.option("--experiment", default=None, help="MLflow experiment (default: sweep/<name>).")
@click.option("--tracking-uri", default=None, help="Tracking store (default: as grodt backtest).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def sweep_command(
    config: Path,
    param_texts: tuple[str, ...],
    trials: int,
    objective: str,
    train: str | None,
    test_window: str | None,
    step: str | None,
    expanding: bool,
    sampler: str,
    seed: int | None,
    workers: int,
    ray_address: str | None,
    catalog: Path | None,
    overrides: tuple[str, ...],
    study: str | None,
    storage: str | None,
    run_dir: Path | None,
    track: bool,
    experiment: str | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Sweep CONFIG's parameters with Optuna: each trial a BacktestNode run tracked as an MLflow
    run nested under the sweep's; the best trial printed with its deflated Sharpe ratio and the
    sweep's probability of backtest overfitting. The study lives in the tracking database's
    place, so sweeps started elsewhere with --study NAME share it.
    """
    from grodt.cli.tracking import echo_warnings
    from grodt.core.settings import get_settings
    from grodt.experiments.sweep import SweepTrial
    from grodt.experiments.sweep import format_sweep
    from grodt.experiments.sweep import run_sweep
    from grodt.experiments.sweep_params import parse_param
    from grodt.tracking.store import resolve_store
    from node_configs.loader import load_document

    echo_warnings()
    params = [parse_param(text) for text in param_texts]
    store = resolve_store(tracking_uri) if track else None
    if catalog is None:
        configured = load_document(config, overrides).get("catalog")
        catalog = Path(configured) if configured else get_settings().catalog

    def progress(trial: SweepTrial) -> None:
        value = f"{trial.value:,.3f}" if trial.state == "COMPLETE" else "FAILED"
        click.echo(f"trial {trial.number}: {value} {trial.params}", err=True)

    result = run_sweep(
        config,
        params,
        trials,
        catalog,
        objective=objective,  # type: ignore[arg-type]
        sampler=sampler,  # type: ignore[arg-type]
        seed=seed,
        workers=workers,
        ray_address=ray_address,
        overrides=overrides,
        study_name=study,
        storage=storage,
        sweep_dir=run_dir,
        store=store,
        experiment=experiment,
        walk_forward={"train": train, "test": test_window, "step": step, "expanding": expanding},
        on_trial=None if as_json else progress,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), default=str))
        return
    click.echo(format_sweep(result))
    tracking = result.tracking
    if tracking.get("status") in ("logged", "already"):
        click.echo(
            f"Tracking: MLflow parent run {tracking['run_id']} with a nested run per trial in "
            f"experiment {tracking['experiment']!r}",
        )
    elif track:
        click.echo(f"Tracking: NOT logged; `grodt tracking sync {result.sweep_dir}` uploads it")
    click.echo(f"Sweep: {result.sweep_dir}")
