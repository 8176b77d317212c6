"""``grodt replay``: recompute logged decisions through the same code and compare bit for bit.

``grodt replay TRACE_ID --run RUN_DIR`` replays one allocation decision of a meta-controller (and
every earlier one of the same component, which its policy's state needs); ``grodt replay --all
--run RUN_DIR`` replays them all. Each prints equal, or the first field that differs with both
values. Exit status 1 when a replayed decision differs. See :mod:`grodt.forensics.replay`.
"""

import sys
from pathlib import Path

import click

from grodt.core.errors import GrodtError
from grodt.forensics.replay import ReplayResult
from grodt.forensics.replay import replay_allocations
from grodt.forensics.replay import replay_trace


def _describe(result: ReplayResult) -> str:
    head = f"{result.trace_id}  ({result.policy})"
    if result.difference is None:
        return f"{head}: equal bit for bit"
    d = result.difference
    return f"{head}: differs at {d.field}: recorded {d.recorded!r}, replayed {d.replayed!r}"


@click.command(name="replay")
@click.argument("trace_id", required=False)
@click.option(
    "--run",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run directory (its config.yaml and Parquet forensics).",
)
@click.option("--all", "replay_all", is_flag=True, help="Replay every allocation decision.")
@click.option("--component", default=None, help="With --all: only this meta-controller.")
def command(trace_id: str | None, run: Path, replay_all: bool, component: str | None) -> None:
    """Recompute logged allocation decisions and compare them with their records."""
    if replay_all == (trace_id is not None):
        raise GrodtError("give a TRACE_ID or --all (not both)")
    if trace_id is not None:
        result, replayed, seconds = replay_trace(run, trace_id)
        click.echo(_describe(result))
        click.echo(
            f"{replayed} decision(s) of its component replayed in {seconds * 1e3:.1f} ms "
            f"({seconds / replayed * 1e6:.0f} µs per decision)"
        )
        if not result.equal:
            click.echo(
                "why: the recorded inputs are not what the policy saw, an earlier decision of the "
                "component diverged (its state), or the policy's code changed since the run; "
                "`grodt replay --all` names the first one",
                err=True,
            )
            sys.exit(1)
        return
    results, seconds = replay_allocations(run, component_id=component)
    differing = [r for r in results if not r.equal]
    click.echo(
        f"{len(results)} allocation decisions replayed in {seconds:.3f} s "
        f"({seconds / len(results) * 1e6:.0f} µs per decision): "
        f"{len(results) - len(differing)} equal bit for bit, {len(differing)} differ"
    )
    if differing:
        click.echo(f"first: {_describe(differing[0])}")
        sys.exit(1)
