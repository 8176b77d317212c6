"""``grodt live``: run a TradingNode config, check a deployment, and operate a running node.

grodt live CONFIG [--check] [--pacing ...] [--speed X] [--run-dir DIR] [--json]
    [--supervise [--max-restarts N] [--backoff SECONDS]]
grodt live kill TARGET [--reason TEXT | --reset]
grodt live stop RUN_DIR
grodt live status RUN_DIR
"""

import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

SUBCOMMANDS = ("run", "kill", "stop", "status")


class _LiveGroup(click.Group):
    """``grodt live CONFIG ...`` is ``grodt live run CONFIG ...``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in SUBCOMMANDS and args[0] not in ("-h", "--help"):
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group(name="live", cls=_LiveGroup, context_settings={"help_option_names": ["-h", "--help"]})
def command() -> None:
    """Run a live node (paper trading on replayed data, or a broker deployment) and operate it.

    `grodt live CONFIG` runs CONFIG (a `kind: live` YAML under node_configs/live/);
    `grodt live CONFIG --check` validates it and the environment without connecting.
    """


def _print_health(snapshot: dict[str, Any]) -> None:
    from grodt.nodes.operations import format_health_line

    click.echo(format_health_line(snapshot), err=True)


def _format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"{summary['name']} ({summary['mode']}): stopped by {summary['stopped_by']} after "
        f"{summary['wall_seconds']:.1f} s",
        f"  orders {summary.get('orders', 0)}, fills {summary.get('fills', 0)}",
    ]
    if "total_return" in summary:
        lines.append(
            f"  total return {summary['total_return'] * 100:,.2f}%, "
            f"final equity {summary.get('final_equity', 0):,.2f}",
        )
    replay = summary.get("replay") or {}
    if replay.get("records"):
        rate = replay.get("records_per_second") or 0
        lines.append(
            f"  replay ({replay['pacing']}): {replay['records']:,}/{replay['total']:,} records in "
            f"{replay['wall_seconds']:.2f} s ({rate:,.0f}/s)",
        )
    latency = summary.get("latency") or {}
    if latency.get("count"):
        lines.append(
            f"  bar→submit latency: p50 {latency['p50_us']:.0f} µs, p95 {latency['p95_us']:.0f} µs,"
            f" p99 {latency['p99_us']:.0f} µs over {latency['count']} orders",
        )
    flatten = summary.get("flatten") or {}
    if flatten:
        lines.append(f"  flatten: {'done' if flatten.get('flattened') else flatten}")
    kill = summary.get("kill_switch") or {}
    if kill.get("history"):
        lines.append(f"  kill switch: {len(kill['history'])} event(s), halted={kill['halted']}")
    forensics = (summary.get("extensions") or {}).get("forensics") or {}
    if "delivered" in forensics:
        line = f"  forensics: {forensics['delivered']:,} records delivered"
        if forensics.get("undelivered"):
            where = forensics.get("outbox") or forensics.get("spill_dir")
            line += f"; {forensics['undelivered']:,} NOT DELIVERED, waiting in {where}"
        lines.append(line)
    lines.append(f"Reports: {summary['run_dir']}")
    return "\n".join(lines)


@command.command(name="run")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--check", is_flag=True, help="Validate config and environment; do not connect.")
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog for replay clients (default: the config's, else GRODT_CATALOG).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Run directory (default: <GRODT_RUNS_DIR>/<name>/<timestamp>).",
)
@click.option(
    "--pacing",
    type=click.Choice(["lockstep", "realtime", "accelerated"]),
    default=None,
    help="Override the replay pacing (paper configs).",
)
@click.option("--speed", type=float, default=None, help="Override the accelerated replay speed.")
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
@click.option("--quiet", is_flag=True, help="No health lines on stderr, engine logs off.")
@click.option(
    "--allow-undelivered",
    is_flag=True,
    help="Exit 0 even when forensics records were left undelivered (default: exit 3).",
)
@click.option(
    "--supervise",
    is_flag=True,
    help="Run the node as a child process and restart it when it crashes (same run dir).",
)
@click.option(
    "--max-restarts",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="With --supervise: restarts allowed before giving up.",
)
@click.option(
    "--backoff",
    type=click.FloatRange(min=0.0),
    default=1.0,
    show_default=True,
    help="With --supervise: seconds before the first restart, doubled each time (max 60).",
)
def run_command(
    config: Path,
    check: bool,
    catalog: Path | None,
    run_dir: Path | None,
    pacing: str | None,
    speed: float | None,
    as_json: bool,
    quiet: bool,
    allow_undelivered: bool,
    supervise: bool,
    max_restarts: int,
    backoff: float,
) -> None:
    """Run CONFIG until its replay ends or SIGINT/SIGTERM (graceful stop)."""
    from grodt.cli.forensics import exit_if_undelivered
    from grodt.core.settings import get_settings
    from grodt.nodes.checks import check_deployment
    from grodt.nodes.checks import format_checks
    from grodt.nodes.live import run_live
    from grodt.nodes.run_files import json_safe
    from grodt.nodes.run_files import new_run_dir
    from node_configs.live_schema import load_live_config
    from node_configs.loader import load_yaml_document

    if check:
        result = check_deployment(config, catalog=catalog)
        if as_json:
            click.echo(json.dumps(result.as_json()))
        else:
            click.echo(format_checks(result))
        sys.exit(0 if result.ready else 1)
    settings = get_settings()
    spec = load_live_config(config)
    if (pacing or speed) and spec.replay is not None:
        update: dict[str, Any] = {}
        if pacing:
            update["pacing"] = pacing
        if speed:
            update["speed"] = speed
        clients = [
            c.model_copy(update=update) if c is spec.replay else c for c in spec.data_clients
        ]
        spec = spec.model_copy(update={"data_clients": clients})
    elif pacing or speed:
        raise click.UsageError("--pacing/--speed apply to paper configs (a replay data client)")
    run_path = run_dir or new_run_dir(settings.runs_dir, spec.name)
    if supervise:
        _run_supervised(
            config,
            run_path,
            catalog,
            pacing,
            speed,
            as_json,
            quiet,
            max_restarts,
            backoff,
            persistent=spec.cache_database is not None,
        )
        return
    click.echo(
        f"{spec.name}: running in {run_path} (pid {os.getpid()}); "
        f"stop with Ctrl-C or `grodt live stop {run_path}`",
        err=True,
    )
    outcome = run_live(
        spec,
        run_path,
        catalog=catalog,
        document=load_yaml_document(config),
        quiet=quiet or as_json,
        on_health=None if (quiet or as_json) else _print_health,
    )
    if as_json:
        click.echo(json.dumps(json_safe(outcome.summary), default=str))
    else:
        click.echo(_format_summary(outcome.summary))
    exit_if_undelivered(outcome.summary, allow_undelivered)


def _run_supervised(
    config: Path,
    run_path: Path,
    catalog: Path | None,
    pacing: str | None,
    speed: float | None,
    as_json: bool,
    quiet: bool,
    max_restarts: int,
    backoff: float,
    persistent: bool,
) -> None:
    """``--supervise``: the node in a child process, restarted on a crash (same run dir)."""
    from grodt.nodes.supervisor import RestartPolicy
    from grodt.nodes.supervisor import supervise

    command = [sys.executable, "-m", "grodt", "live", str(config), "--run-dir", str(run_path)]
    if catalog is not None:
        command += ["--catalog", str(catalog)]
    if pacing:
        command += ["--pacing", pacing]
    if speed:
        command += ["--speed", str(speed)]
    if as_json:
        command.append("--json")
    if quiet:
        command.append("--quiet")
    if not persistent:
        click.echo(
            "warning: no cache_database in the config: a restarted node starts afresh "
            "(positions from before a crash are not its strategies' any more)",
            err=True,
        )
    click.echo(f"supervisor (pid {os.getpid()}): node in {run_path}", err=True)
    returncode = supervise(
        command,
        run_path,
        RestartPolicy(max_restarts=max_restarts, initial=backoff),
        lambda line: click.echo(line, err=True),
    )
    sys.exit(returncode if returncode >= 0 else 128 - returncode)


@command.command(name="kill")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--reason", default="operator kill switch", help="Why (logged and in forensics).")
@click.option("--reset", is_flag=True, help="Remove the kill file: resume normal trading.")
def kill_command(target: Path, reason: str, reset: bool) -> None:
    """Halt new risk on the node of run directory TARGET (or kill file TARGET).

    While the kill file exists the node accepts only risk-reducing orders; the node notices it
    within `operations.kill_switch.poll_seconds`. `--reset` removes it.
    """
    from grodt.nodes.operations import resolve_kill_file
    from grodt.nodes.operations import write_kill_file

    path = resolve_kill_file(target)
    if reset:
        if path.exists():
            path.unlink()
            click.echo(f"kill switch reset: removed {path}")
        else:
            click.echo(f"kill switch not set: {path} does not exist")
        return
    write_kill_file(path, reason)
    click.echo(f"kill switch set: {path} (reason: {reason})")


@command.command(name="stop")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def stop_command(run_dir: Path) -> None:
    """Stop the node of RUN_DIR gracefully (SIGTERM to its process)."""
    from grodt.core.errors import GrodtError
    from grodt.nodes.operations import read_node_file

    info = read_node_file(run_dir)
    pid = int(info["pid"])
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        raise GrodtError(f"{run_dir}: node process {pid} is not running") from None
    click.echo(f"SIGTERM sent to {info['name']} (pid {pid})")


@command.command(name="status")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def status_command(run_dir: Path) -> None:
    """Print the last health line and kill-switch state of the node of RUN_DIR."""
    from grodt.nodes.operations import format_health_line
    from grodt.nodes.operations import read_node_file
    from grodt.nodes.operations import resolve_kill_file

    info = read_node_file(run_dir)
    alive = _pid_alive(int(info["pid"]))
    click.echo(f"{info['name']}: pid {info['pid']} {'running' if alive else 'not running'}")
    kill_file = resolve_kill_file(run_dir)
    click.echo(f"kill switch: {'SET' if kill_file.exists() else 'clear'} ({kill_file})")
    health = run_dir / "health.jsonl"
    if health.exists():
        lines = health.read_text(encoding="utf-8").strip().splitlines()
        if lines:
            click.echo(format_health_line(json.loads(lines[-1])))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
