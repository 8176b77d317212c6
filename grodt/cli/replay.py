"""``grodt replay``: recompute logged decisions through the same code and compare bit for bit.

``grodt replay TRACE_ID --run RUN_DIR`` replays one decision: a meta-controller's allocation (and
every earlier one of the same component, which its policy's state needs;
:mod:`grodt.forensics.replay`) or a strategy's decision record (a rule strategy's:
:mod:`grodt.forensics.decision_replay`). ``grodt replay --all --run RUN_DIR`` replays every
decision of the run, counts those no replay covers (with why), and prints the share of the logged
decisions reproduced bit for bit and the time per decision. Each prints equal, or the first
field that differs with both values; exit status 1 when a replayed decision differs.

``grodt replay diff --run RUN_DIR --policy NEW.yaml [--set KEY=VALUE …]`` runs the
meta-controller's config with NEW's values (and the ``--set`` ones) over the logged inputs and
lists, decision by decision, where it would have allocated differently, with a summary: how
often, in which regimes, by how much. ``--set strategies[i].config.KEY=VALUE`` (or a strategy
component file as ``--policy``) does the same for a rule strategy's config: where it would have
entered, exited or adjusted differently (skipped, other side, other size).
"""

import json
import re
import sys
import time
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import yaml

from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.topics import Topics
from grodt.forensics.decision_replay import NotReplayable
from grodt.forensics.decision_replay import StrategyComponent
from grodt.forensics.decision_replay import decision_records
from grodt.forensics.decision_replay import diff_decisions
from grodt.forensics.decision_replay import replay_decisions
from grodt.forensics.decision_replay import strategy_components
from grodt.forensics.decision_replay import summarise_decision_changes
from grodt.forensics.decision_replay import why_it_may_differ
from grodt.forensics.ensemble_replay import replay_ensemble_decisions
from grodt.forensics.reader import read_run
from grodt.forensics.replay import ReplayResult
from grodt.forensics.replay import diff_allocations
from grodt.forensics.replay import replay_allocations
from grodt.forensics.replay import replay_trace
from grodt.forensics.replay import summarise_changes
from node_configs.loader import import_object
from strategies.rl_ensemble import RLEnsembleStrategy

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
    """Recompute logged decisions (TRACE_ID or --all), or diff a new config."""


def _describe(result: ReplayResult) -> str:
    head = f"{result.trace_id}  ({result.policy})"
    if result.difference is None:
        return f"{head}: equal bit for bit"
    d = result.difference
    line = f"{head}: differs at {d.field}: recorded {d.recorded!r}, replayed {d.replayed!r}"
    if result.policy.partition(",")[0] in ("entry", "exit", "adjust"):
        # A rule strategy's decision (grodt.forensics.decision_replay) says why it may differ.
        line += f" (why: {why_it_may_differ(d.field)})"
    return line


@command.command(name="trace")
@click.argument("trace_id", required=False)
@_RUN
@click.option("--all", "replay_all", is_flag=True, help="Replay every logged decision.")
@click.option("--component", default=None, help="With --all: only this meta-controller.")
def trace(trace_id: str | None, run: Path, replay_all: bool, component: str | None) -> None:
    """Recompute TRACE_ID's decision (or --all) and compare it with its record."""
    if replay_all == (trace_id is not None):
        raise GrodtError("give a TRACE_ID or --all (not both)")
    if trace_id is not None:
        _trace_one(run, trace_id)
        return
    _replay_all(run, component)


def _trace_one(run: Path, trace_id: str) -> None:
    decisions = [
        s.record for s in read_run(run, trace_id=trace_id) if isinstance(s.record, DecisionRecord)
    ]
    if not decisions:
        result, replayed, seconds = replay_trace(run, trace_id)
        click.echo(_describe(result))
        click.echo(
            f"{replayed} decision(s) of its component replayed in {seconds * 1e3:.1f} ms "
            f"({seconds / replayed * 1e6:.0f} µs per decision)"
        )
        _exit_if_differs(result)
        return
    components = strategy_components(run)
    record = decisions[0]
    if _is_ensemble(components.get(record.strategy_id)):
        started = time.perf_counter()
        result = replay_ensemble_decisions(run, record.strategy_id, [record])[0]
        seconds = time.perf_counter() - started
    else:
        results, not_replayable, seconds = replay_decisions(run, [record])
        if not_replayable:
            raise GrodtError(f"{trace_id}: not replayable: {not_replayable[0].why}")
        result = results[0]
    click.echo(_describe(result))
    click.echo(
        f"replayed in {seconds * 1e3:.1f} ms, loading included (a strategy decision replays "
        "from its own record)"
    )
    _exit_if_differs(result)


def _exit_if_differs(result: ReplayResult) -> None:
    if not result.equal:
        click.echo(
            "why: the recorded inputs are not what the decision saw, an earlier decision of the "
            "component diverged (its state), the run's config.yaml is not the one it ran with, "
            "or the code changed since the run; `grodt replay --all` names the first one",
            err=True,
        )
        sys.exit(1)


def _replay_all(run: Path, component: str | None) -> None:
    logged = 0
    equal = 0
    first_difference: ReplayResult | None = None
    allocations = [
        s.record
        for s in read_run(run, topics=[Topics.ALLOCATIONS])
        if isinstance(s.record, AllocationRecord)
    ]
    if allocations:
        results, seconds = replay_allocations(run, component_id=component)
        logged += len(allocations)
        equal += _report("allocation decisions", results, seconds)
        first_difference = first_difference or next((r for r in results if not r.equal), None)
    if component is None:
        records = decision_records(run)
        logged += len(records)
        components = strategy_components(run)
        ensembles: dict[str, list[DecisionRecord]] = {}
        rules: list[DecisionRecord] = []
        for record in records:
            if _is_ensemble(components.get(record.strategy_id)):
                ensembles.setdefault(record.strategy_id, []).append(record)
            else:
                rules.append(record)
        results, not_replayable, seconds = replay_decisions(run, rules)
        if results:
            equal += _report("rule-strategy decisions", results, seconds)
            first_difference = first_difference or next((r for r in results if not r.equal), None)
        for strategy_id, own in sorted(ensembles.items()):
            started = time.perf_counter()
            results = replay_ensemble_decisions(run, strategy_id, own)
            equal += _report(f"{strategy_id} decisions", results, time.perf_counter() - started)
            first_difference = first_difference or next((r for r in results if not r.equal), None)
        _report_not_replayable(not_replayable)
    if logged == 0:
        raise GrodtError(f"{run}: no decision records to replay")
    click.echo(
        f"{equal} of {logged} logged decisions reproduced bit for bit ({equal / logged:.2%})"
    )
    if first_difference is not None:
        click.echo(f"first: {_describe(first_difference)}")
        sys.exit(1)


def _is_ensemble(component: StrategyComponent | None) -> bool:
    """An RL ensemble's decisions go to its own replay (grodt.forensics.ensemble_replay)."""
    if component is None:
        return False
    cls = import_object(component.path)
    return isinstance(cls, type) and issubclass(cls, RLEnsembleStrategy)


def _report(kind: str, results: list[ReplayResult], seconds: float) -> int:
    differing = sum(not r.equal for r in results)
    click.echo(
        f"{len(results)} {kind} replayed in {seconds:.3f} s "
        f"({seconds / len(results) * 1e6:.0f} µs per decision): "
        f"{len(results) - differing} equal bit for bit, {differing} differ"
    )
    return len(results) - differing


def _report_not_replayable(not_replayable: list[NotReplayable]) -> None:
    by_why: dict[tuple[str, str], int] = {}
    for item in not_replayable:
        key = (item.strategy_id, item.why)
        by_why[key] = by_why.get(key, 0) + 1
    for (strategy_id, why), count in sorted(by_why.items()):
        click.echo(f"{count} decisions of {strategy_id} not replayable ({why})")


_STRATEGY_KEY = re.compile(r"^strategies\[(\d+)\]\.config\.(\w+)$")


def _overrides(
    run: Path, policy: Path | None, settings: tuple[str, ...]
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The meta-controller's new values, and each strategy's (by index in the run's config)."""
    values: dict[str, Any] = {}
    strategies: dict[int, dict[str, Any]] = {}
    if policy is not None:
        try:
            document = yaml.safe_load(policy.read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise GrodtError(f"{policy}: {e}") from None
        if not isinstance(document, dict):
            raise GrodtError(f"{policy}: a mapping of meta-controller config values is expected")
        path = document.get("path")
        matching = [c for c in strategy_components(run).values() if c.path == path]
        if path is not None and matching:
            # A strategy component file: its config values go to the run's strategy of that
            # class (one only).
            if len(matching) > 1:
                raise GrodtError(
                    f"{policy}: the run has {len(matching)} strategies of {path}; use --set "
                    "strategies[i].config.KEY=VALUE"
                )
            strategies[matching[0].index] = dict(document.get("config") or {})
        else:
            # A component file (path + config) or the config values themselves.
            values.update(document.get("config", document) if "path" in document else document)
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise GrodtError(f"--set {setting!r}: expected KEY=VALUE")
        strategy_key = _STRATEGY_KEY.match(key)
        if strategy_key is not None:
            index, name = int(strategy_key.group(1)), strategy_key.group(2)
            strategies.setdefault(index, {})[name] = yaml.safe_load(raw)
        else:
            values[key] = yaml.safe_load(raw)
    if not values and not strategies:
        raise GrodtError("give the new config: --policy FILE.yaml and/or --set KEY=VALUE")
    return values, strategies


@command.command(name="diff")
@_RUN
@click.option(
    "--policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="YAML of meta-controller config values, or a component file (a meta-controller's, or "
    "a strategy's: applied to the run's strategy of that class).",
)
@click.option(
    "--set",
    "settings",
    multiple=True,
    help="KEY=VALUE over the meta-controller's config, or strategies[i].config.KEY=VALUE over a "
    "strategy's.",
)
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
    """Where a new meta-controller or strategy config would have decided differently on the run's
    logged inputs."""
    values, strategies = _overrides(run, policy, settings)
    output: dict[str, Any] = {}
    if values:
        output.update(_allocation_diff(run, values, component, limit, as_json))
    if strategies:
        output["strategies"] = _strategy_diff(run, strategies, limit, as_json)
    if as_json:
        click.echo(json.dumps(output))


def _allocation_diff(
    run: Path, values: dict[str, Any], component: str | None, limit: int, as_json: bool
) -> dict[str, Any]:
    changes = diff_allocations(run, values, component_id=component)
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
        return {"summary": summary, "changed": rows}
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
    return {}


def _units(quantity: Decimal | None) -> str | None:
    """A quantity as plain digits without trailing zeros (``132``, ``0.5``, ``100``)."""
    return None if quantity is None else format(quantity.normalize(), "f")


def _strategy_diff(
    run: Path, strategies: dict[int, dict[str, Any]], limit: int, as_json: bool
) -> dict[str, Any]:
    changes = diff_decisions(run, strategies)
    summary = summarise_decision_changes(changes)
    changed = [c for c in changes if c.changed]
    if as_json:
        rows = [
            {
                "trace_id": c.trace_id,
                "strategy_id": c.strategy_id,
                "ts_event": c.ts_event,
                "regime": c.regime,
                "kind": c.kind,
                "recorded": [
                    c.recorded_action,
                    c.recorded_reason,
                    c.recorded_side,
                    _units(c.recorded_quantity),
                ],
                "new": [c.new_action, c.new_reason, c.new_side, _units(c.new_quantity)],
            }
            for c in changed
        ]
        return {"summary": summary, "changed": rows}
    kinds = summary["by_kind"]
    click.echo(
        f"{summary['changed']} of {summary['decisions']} strategy decisions differ "
        f"({summary['share_changed']:.1%}): {kinds['skipped']} not taken, {kinds['side']} "
        f"other side, {kinds['size']} other size (new/recorded quantity: mean "
        f"{summary['mean_size_ratio']:.3f}, max {summary['max_size_ratio']:.3f})"
    )
    for regime, counts in summary["by_regime"].items():
        click.echo(f"  {regime:<11} {counts['changed']} of {counts['decisions']}")
    for c in changed[:limit]:
        when = datetime.fromtimestamp(c.ts_event / 1e9, tz=UTC).strftime("%Y-%m-%d")
        new = (
            f"{c.new_action} {c.new_side} {_units(c.new_quantity)}"
            if c.new_action is not None
            else f"none ({c.new_reason})"
        )
        click.echo(
            f"{when}  {c.regime:<10} {c.strategy_id}  {c.recorded_action}:{c.recorded_reason} "
            f"{c.recorded_side} {_units(c.recorded_quantity)} → {new}"
        )
    if len(changed) > limit:
        click.echo(f"… {len(changed) - limit} more (--limit, --json)")
    return {}
