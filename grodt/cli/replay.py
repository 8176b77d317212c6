"""``grodt replay``: recompute logged decisions through the same code and compare bit for bit.

``grodt replay TRACE_ID --run RUN_DIR`` replays one allocation decision of a meta-controller (and
every earlier one of the same component, which its policy's state needs); ``grodt replay --all
--run RUN_DIR`` replays them all. Each prints equal, or the first field that differs with both
values; exit status 1 when a replayed decision differs.

``grodt replay diff --run RUN_DIR --policy NEW.yaml [--set KEY=VALUE …]`` runs the
meta-controller's config with NEW's values (and the ``--set`` ones) over the logged inputs and
lists, decision by decision, where it would have allocated differently, with a summary: how
often, in which regimes, by how much. See :mod:`grodt.forensics.replay`.
"""

import json
import sys
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import yaml

from grodt.core.errors import GrodtError
from grodt.forensics.replay import ReplayResult
from grodt.forensics.replay import diff_allocations
from grodt.forensics.replay import replay_allocations
from grodt.forensics.replay import replay_trace
from grodt.forensics.replay import summarise_changes

_RUN = click.option(
    "--run",
    required=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run directory (its config.yaml and Parquet forensics).",
)


class _ReplayGroup(click.Group):
    """``replay TRACE_ID …`` and ``replay --all …`` go to the ``trace`` command; ``replay diff …``
    to ``diff``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and args[0] not in self.commands and args[0] not in ("-h", "--help"):
            args = ["trace", *args]
        return super().parse_args(ctx, args)


@click.group(name="replay", cls=_ReplayGroup)
def command() -> None:
    """Recompute logged allocation decisions (TRACE_ID or --all), or diff a new config."""


def _describe(result: ReplayResult) -> str:
    head = f"{result.trace_id}  ({result.policy})"
    if result.difference is None:
        return f"{head}: equal bit for bit"
    d = result.difference
    return f"{head}: differs at {d.field}: recorded {d.recorded!r}, replayed {d.replayed!r}"


@command.command(name="trace")
@click.argument("trace_id", required=False)
@_RUN
@click.option("--all", "replay_all", is_flag=True, help="Replay every allocation decision.")
@click.option("--component", default=None, help="With --all: only this meta-controller.")
def trace(trace_id: str | None, run: Path, replay_all: bool, component: str | None) -> None:
    """Recompute TRACE_ID's decision (or --all) and compare it with its record."""
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


def _overrides(policy: Path | None, settings: tuple[str, ...]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if policy is not None:
        try:
            document = yaml.safe_load(policy.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise GrodtError(f"{policy}: {e}") from None
        if not isinstance(document, dict):
            raise GrodtError(f"{policy}: a mapping of meta-controller config values is expected")
        # A component file (path + config) or the config values themselves.
        values.update(document.get("config", document) if "path" in document else document)
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise GrodtError(f"--set {setting!r}: expected KEY=VALUE")
        values[key] = yaml.safe_load(raw)
    if not values:
        raise GrodtError("give the new config: --policy FILE.yaml and/or --set KEY=VALUE")
    return values


@command.command(name="diff")
@_RUN
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML of meta-controller config values (or a component file) for the new config.",
)
@click.option("--set", "settings", multiple=True, help="KEY=VALUE over the run's config.")
@click.option("--component", default=None, help="The meta-controller (when the run has several).")
@click.option("--limit", type=int, default=20, show_default=True, help="Changed decisions listed.")
@click.option("--json", "as_json", is_flag=True, help="Summary and every changed decision.")
def diff(
    run: Path,
    policy: Path | None,
    settings: tuple[str, ...],
    component: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """Where a new meta-controller config would have allocated differently on the run's inputs."""
    changes = diff_allocations(run, _overrides(policy, settings), component_id=component)
    summary = summarise_changes(changes)
    changed = [c for c in changes if c.changed]
    if as_json:
        rows = [
            {
                "trace_id": c.trace_id,
                "ts_event": c.ts_event,
                "regime": c.regime,
                "recorded_policy": c.recorded_policy,
                "new_policy": c.new_policy,
                "recorded": c.recorded,
                "new": c.new,
            }
            for c in changed
        ]
        click.echo(json.dumps({"summary": summary, "changed": rows}))
        return
    click.echo(
        f"{summary['changed']} of {summary['decisions']} decisions allocate differently "
        f"({summary['share_changed']:.1%}); largest weight change per decision: mean "
        f"{summary['mean_max_change']:.3f}, max {summary['max_change']:.3f}"
    )
    for regime, counts in summary["by_regime"].items():
        click.echo(f"  {regime:<11} {counts['changed']} of {counts['decisions']}")
    for c in changed[:limit]:
        when = datetime.fromtimestamp(c.ts_event / 1e9, tz=UTC).strftime("%Y-%m-%d")
        weights = "  ".join(
            f"{name.split('-')[0]} {c.recorded[name]:.3f}→{c.new[name]:.3f}" for name in c.new
        )
        click.echo(f"{when}  {c.regime:<10} {c.recorded_policy}→{c.new_policy}  {weights}")
    if len(changed) > limit:
        click.echo(f"… {len(changed) - limit} more (--limit, --json)")
