"""``grodt models list|promote|rollback|history|challenge NAME``: registered model versions and
their aliases; every promotion and rollback is audited (:mod:`grodt.tracking.registry_lifecycle`);
``challenge`` promotes a regime challenger only through the gates
(:mod:`grodt.tracking.registry_gates`)."""

import json
from dataclasses import asdict
from typing import Any

import click

_uri_option = click.option(
    "--tracking-uri",
    default=None,
    help="Registry store (default: GRODT_TRACKING_URI, MLFLOW_TRACKING_URI, else the embedded "
    "SQLite store in GRODT_RUNS_DIR).",
)
_json_option = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


def _store(tracking_uri: str | None) -> Any:
    from grodt.cli.tracking import echo_warnings
    from grodt.tracking.store import resolve_store

    echo_warnings()
    return resolve_store(tracking_uri)


@click.group(name="models")
def command() -> None:
    """Registered models: versions, aliases, audited promotions and rollbacks."""


@command.command(name="list")
@click.argument("name")
@_uri_option
@_json_option
def list_command(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Versions of NAME, newest first: aliases, the model's own version, its run's metrics."""
    from grodt.tracking.registry_lifecycle import list_versions

    versions = list_versions(name, _store(tracking_uri))
    if as_json:
        click.echo(json.dumps([asdict(v) for v in versions], default=str))
        return
    for v in versions:
        aliases = f" @{',@'.join(v.aliases)}" if v.aliases else ""
        figures = ", ".join(f"{k}={val:.4g}" for k, val in sorted(v.metrics.items())[:6])
        click.echo(f"{name}/{v.version}{aliases}  {v.model_version or '-'}  {figures}")


def _echo_move(move: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(asdict(move), default=str))
        return
    click.echo(
        f"{move.action}: {move.model}@{move.alias} {move.from_version or '(unset)'} → "
        f"{move.to_version} (audit run {move.audit_run_id}; reason: {move.reason})",
    )


@command.command(name="promote")
@click.argument("name")
@click.argument("version")
@click.option("--alias", default="champion", show_default=True)
@click.option("--reason", default="manual promotion", show_default=True)
@_uri_option
@_json_option
def promote_command(
    name: str,
    version: str,
    alias: str,
    reason: str,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Point NAME@ALIAS at VERSION (an audited record)."""
    from grodt.tracking.registry_lifecycle import promote

    _echo_move(promote(name, version, alias, reason, _store(tracking_uri)), as_json)


@command.command(name="rollback")
@click.argument("name")
@click.option("--alias", default="champion", show_default=True)
@click.option("--to", "to_version", default=None, help="Version (default: the one before).")
@click.option("--reason", default="manual rollback", show_default=True)
@_uri_option
@_json_option
def rollback_command(
    name: str,
    alias: str,
    to_version: str | None,
    reason: str,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Point NAME@ALIAS back at the version it held before its last move (an audited record)."""
    from grodt.tracking.registry_lifecycle import rollback

    _echo_move(rollback(name, alias, to_version, reason, _store(tracking_uri)), as_json)


@command.command(name="history")
@click.argument("name")
@_uri_option
@_json_option
def history_command(name: str, tracking_uri: str | None, as_json: bool) -> None:
    """Every audited promotion and rollback of NAME, oldest first."""
    from grodt.tracking.registry_lifecycle import history

    moves = history(name, _store(tracking_uri))
    if as_json:
        click.echo(json.dumps([asdict(m) for m in moves], default=str))
        return
    if not moves:
        click.echo(f"{name}: no audited alias moves")
    for m in moves:
        click.echo(
            f"{m.ts} {m.action:<8} {name}@{m.alias} {m.from_version or '(unset)'} → "
            f"{m.to_version}  by {m.user}: {m.reason}",
        )


@command.command(name="challenge")
@click.argument("name")
@click.option(
    "--bar-type", default=None, help="Bars to score on, e.g. SPX.SAMPLE-1-DAY-LAST-EXTERNAL."
)
@click.option("--start", default=None, help="First bar of the latest window (UTC).")
@click.option("--end", default=None, help="Last bar of the latest window (UTC).")
@click.option("--catalog", type=click.Path(file_okay=False), default=None)
@click.option("--max-score-drop", type=float, default=0.01, show_default=True)
@click.option("--max-calibration-error", type=float, default=0.05, show_default=True)
@click.option(
    "--policy-log",
    "policy_logs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False),
    help="Run directory with the champion's allocation records (repeatable): runs the "
    "policy-evaluation gate.",
)
@click.option("--policy-component", default=None, help="Only this meta-controller's records.")
@click.option(
    "--estimator",
    type=click.Choice(["ipw", "snips", "dm", "dr", "sndr", "switch_dr"]),
    default="snips",
    show_default=True,
)
@click.option("--max-value-drop", type=float, default=0.0, show_default=True)
@click.option("--min-ess", type=float, default=10.0, show_default=True)
@click.option(
    "--confidence",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=None,
    help="Compare the upper end of the value drop's bootstrap interval at this level (e.g. "
    "0.95) with --max-value-drop, not its point value.",
)
@_uri_option
@_json_option
def challenge_command(
    name: str,
    bar_type: str | None,
    start: str | None,
    end: str | None,
    catalog: str | None,
    max_score_drop: float,
    max_calibration_error: float,
    policy_logs: tuple[str, ...],
    policy_component: str | None,
    estimator: str,
    max_value_drop: float,
    min_ess: float,
    confidence: float | None,
    tracking_uri: str | None,
    as_json: bool,
) -> None:
    """Promote NAME@challenger to champion only if it passes the gates (audited either way):
    performance and calibration on the bars of BAR-TYPE from START (regime HMMs), the
    off-policy estimate on the champion's logged allocation records (--policy-log: a
    meta-controller model replayed as the run's meta-controller with it as its predictive
    model choosing among the allocation arms, or a policy with ``action_dist(context)``), or
    both. Exits 1 when refused."""
    from pathlib import Path

    import numpy as np
    import pandas as pd

    from grodt.core.errors import GrodtError
    from grodt.core.settings import get_settings
    from grodt.forensics.ope_logs import read_bandit_log
    from grodt.tracking.registry_gates import PolicyValueGate
    from grodt.tracking.registry_gates import PromotionGates
    from grodt.tracking.registry_gates import challenge
    from grodt.tracking.registry_gates import regime_bars_scorer
    from grodt.tracking.registry_gates import replayed_policy_action_dist
    from models.regime.catalog_io import load_bars

    if (bar_type is None) != (start is None):
        raise GrodtError("--bar-type and --start go together (the latest window's bars)")
    if bar_type is None and not policy_logs:
        raise GrodtError("no gate to run: give --bar-type/--start, --policy-log, or both")
    scorer = None
    if bar_type is not None:
        bars = load_bars(Path(catalog) if catalog else get_settings().catalog, bar_type, None, end)
        first = int(np.searchsorted(bars.ts_event, pd.Timestamp(start, tz="UTC").value))
        scorer = regime_bars_scorer(bars.close, first)
    policy = None
    if policy_logs:
        runs = [Path(p) for p in policy_logs]
        try:
            log = read_bandit_log(runs, component_id=policy_component)
        except GrodtError as e:
            if not str(e).startswith("no bandit round"):
                raise
            raise GrodtError(
                f"policy gate: the log has no support for any other policy: {e}. Its records "
                "carry no propensity (a continuous predictive allocation, static fallbacks): "
                "log with predictive_actions: arms and predictive_exploration > 0, or the "
                "bandit with bandit_exploration > 0 (docs/lifecycle.md)"
            ) from None
        policy = PolicyValueGate(
            log=log,
            action_dist=replayed_policy_action_dist(runs, policy_component),
            estimator=estimator,
            max_value_drop=max_value_drop,
            min_effective_sample_size=min_ess,
            confidence=confidence,
        )
    gates = PromotionGates(max_score_drop, max_calibration_error)
    decision = challenge(name, scorer, gates, _store(tracking_uri), policy=policy)
    if as_json:
        click.echo(
            json.dumps(
                {
                    "promoted": decision.promoted,
                    "champion": decision.champion,
                    "challenger": decision.challenger,
                    "reasons": decision.reasons,
                    "figures": decision.figures,
                },
                default=str,
            ),
        )
    else:
        verdict = "promoted" if decision.promoted else "refused"
        click.echo(f"{decision.challenger} {verdict} (champion was {decision.champion})")
        for reason in decision.reasons:
            click.echo(f"  {reason}")
    if not decision.promoted:
        raise SystemExit(1)
