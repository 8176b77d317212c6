"""``grodt rl train CONFIG``: train the RL specialists of an RL training YAML; ``grodt rl
fine-tuned --run RUN_DIR``: the specialist sets a run fine-tuned online, registered as
``challenger`` with ``--register NAME`` (docs/rl.md)."""

import json
import sys
from pathlib import Path

import click

from grodt.cli._options import config_catalog_option


@click.group(name="rl")
def command() -> None:
    """RL specialist ensemble: train a generalist and one specialist per regime."""


@command.command(name="train")
@click.argument("config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--workers",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Processes that fine-tune the specialists in parallel.",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value (repeatable), e.g. --set timesteps.generalist=5000.",
)
@config_catalog_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default: <runs>/training/rl_<name>/<stamp>).",
)
@click.option("--no-tracking", is_flag=True, help="Write the run's bundle only (sync later).")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def train(
    config_path: Path,
    workers: int,
    overrides: tuple[str, ...],
    catalog: Path | None,
    run_dir: Path | None,
    no_tracking: bool,
    progress: bool | None,
    as_json: bool,
) -> None:
    """Train the generalist, then the specialists (in --workers processes), save and register
    them as model rl_<name>, and evaluate them on the config's test period."""
    from tqdm import tqdm

    from grodt.experiments.rl_config import load_rl_config
    from grodt.experiments.rl_training import train_rl

    config = load_rl_config(config_path, overrides)
    show = (sys.stderr.isatty() if progress is None else progress) and not as_json
    total = config.timesteps.generalist + config.timesteps.specialist * len(config.labels)
    done: dict[str, int] = {}
    with tqdm(total=total, unit="step", disable=not show, leave=False) as bar:

        def advance(name: str, timesteps: int) -> None:
            step = timesteps - done.get(name, 0)
            done[name] = max(timesteps, done.get(name, 0))
            if step > 0:
                bar.update(step)
                bar.set_postfix_str(name)

        result = train_rl(
            config,
            workers=workers,
            run_dir=run_dir,
            store=None if no_tracking else "auto",
            progress=advance,
            catalog=catalog,
        )
    peak = {name: round(o.peak_rss_mb, 1) for name, o in result.outcomes.items()}
    summary = {
        "run_dir": str(result.run_dir),
        "specialists": str(result.specialists_dir),
        "run_id": result.run_id,
        "seconds": {k: round(v, 3) for k, v in result.seconds.items()},
        "train_seconds": {k: round(o.seconds, 2) for k, o in result.outcomes.items()},
        "peak_rss_mb": peak,
        "test": result.evaluation,
    }
    if as_json:
        click.echo(json.dumps(summary, default=str))
        return
    seconds = result.seconds
    click.echo(
        f"rl_{config.name}: {config.policy.algorithm}, generalist {config.timesteps.generalist:,}"
        f" steps + {len(config.labels)} specialists x {config.timesteps.specialist:,} steps "
        f"in {seconds['total']:.1f} s (workers {workers}; data I/O {seconds['io_share']:.1%})"
    )
    for name, outcome in result.outcomes.items():
        click.echo(
            f"  {name:<10} {outcome.seconds:7.1f} s  peak RSS {outcome.peak_rss_mb:7.1f} MiB"
        )
    if result.evaluation:
        click.echo("Test period (out of sample):")
        click.echo(f"  {'mode':<22}{'Sharpe':>8}{'return':>10}{'max DD':>9}{'turnover/yr':>13}")
        for mode, metrics in result.evaluation.items():
            click.echo(
                f"  {mode:<22}{metrics['sharpe']:8.3f}{metrics['total_return']:10.2%}"
                f"{metrics['max_drawdown']:9.2%}{metrics['turnover']:13.2f}"
            )
    click.echo(f"Specialists: {result.specialists_dir}")
    if result.run_id:
        click.echo(
            f"Tracking: MLflow run {result.run_id[:8]}… (model rl_{config.name}@challenger; "
            "`grodt models promote` makes it champion)"
        )


@command.command(name="fine-tuned")
@click.option(
    "--run",
    "run_dir",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run directory (its config.yaml and Parquet forensics).",
)
@click.option(
    "--strategy",
    "strategy_id",
    default=None,
    help="The RLEnsembleStrategy id (default: the run's only one with decisions).",
)
@click.option(
    "--register",
    "name",
    default=None,
    help="Register the last set the run used as a version of model NAME with alias challenger.",
)
@click.option(
    "--all",
    "register_all",
    is_flag=True,
    help="With --register: every set, in the order they took over (the last holds the alias).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the sets as JSON.")
def fine_tuned(
    run_dir: Path, strategy_id: str | None, name: str | None, register_all: bool, as_json: bool
) -> None:
    """List the specialist sets RUN fine-tuned online (``retrain``) and the first decision that
    used each."""
    from datetime import UTC
    from datetime import datetime

    from grodt.core.errors import GrodtError
    from grodt.core.records import DecisionRecord
    from grodt.forensics.ensemble_replay import fine_tuned_sets
    from grodt.forensics.reader import read_run

    decisions = [
        stored.record
        for stored in read_run(run_dir)
        if isinstance(stored.record, DecisionRecord)
        and stored.record.model_versions.get("specialists", "").startswith("ft-")
    ]
    ids = sorted({d.strategy_id for d in decisions})
    if strategy_id is None:
        if len(ids) > 1:
            raise GrodtError(f"{run_dir}: several strategies fine-tuned ({ids}); give --strategy")
        strategy_id = ids[0] if ids else None
    if strategy_id is None:
        raise GrodtError(f"{run_dir}: no decision used fine-tuned specialists")
    sets = fine_tuned_sets(run_dir, strategy_id, decisions)
    registered: dict[str, str] = {}
    if name is not None:
        from grodt.tracking.registry import register_model
        from models.rl.specialists import SpecialistSet

        for item in sets if register_all else sets[-1:]:
            version = register_model(
                SpecialistSet.load(item.directory),
                name,
                aliases=["challenger"],
                filename="specialists",
                params={
                    "fine_tuned_version": item.version,
                    "run": str(run_dir),
                    "strategy_id": strategy_id,
                    "first_used_ns": item.first_used_ns,
                },
            )
            registered[item.version] = version.tag
    rows = [
        {
            "version": item.version,
            "directory": str(item.directory),
            "first_used": datetime.fromtimestamp(item.first_used_ns / 1e9, UTC).isoformat(),
            "registered": registered.get(item.version),
        }
        for item in sets
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    click.echo(f"{strategy_id}: {len(rows)} fine-tuned specialist set(s)")
    for row in rows:
        tail = f"  → {row['registered']}" if row["registered"] else ""
        click.echo(f"  {row['version']}  from {row['first_used']}  {row['directory']}{tail}")
