"""The tearsheet's policy diff: where a new meta-controller config would have allocated
differently on the run's logged inputs (:func:`grodt.forensics.replay.diff_allocations`), and
where new rule-strategy configs would have decided differently
(:func:`grodt.forensics.decision_replay.diff_decisions`).

The section's chart (:func:`grodt.reports.figures.policy_diff_figure`) shows, decision by
decision, each strategy's weight change (new − recorded) and the largest change per decision
marked by the regime its context held; above it the summary of
:func:`grodt.forensics.replay.summarise_changes`: how often, in which regimes, the sizes
involved. The inputs stay the logged ones (the new policy's choices do not feed back), so it
answers "what would it have decided here", not "what would it have earned".
"""

import html
import re
from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from grodt.core.errors import GrodtError
from grodt.forensics.decision_replay import DecisionChange
from grodt.forensics.decision_replay import diff_decisions
from grodt.forensics.decision_replay import summarise_decision_changes
from grodt.forensics.replay import AllocationChange
from grodt.forensics.replay import diff_allocations
from grodt.forensics.replay import summarise_changes

__all__ = [
    "decision_diff",
    "decision_diff_summary_html",
    "diff_overrides",
    "policy_diff",
    "policy_diff_summary_html",
]

_STRATEGY_KEY = re.compile(r"^strategies\[(\d+)\]\.config\.(\w+)$")


def diff_overrides(
    policy: Path | None, settings: Sequence[str] = ()
) -> tuple[dict[str, Any], dict[int, dict[str, Any]]]:
    """The new meta-controller config values and each strategy's (by index in the run's
    ``config.yaml``): ``policy`` (a YAML mapping of meta-controller config values, or its
    component file with ``path:`` and ``config:``) updated by ``settings`` (``KEY=VALUE`` for
    the meta-controller, ``strategies[i].config.KEY=VALUE`` for a strategy; values parsed as
    YAML).

    Raises
    ------
    GrodtError
        An unreadable file, a file that is not a mapping, a setting without ``=`` (named).
    """
    values: dict[str, Any] = {}
    strategies: dict[int, dict[str, Any]] = {}
    if policy is not None:
        try:
            document = yaml.safe_load(Path(policy).read_text()) or {}
        except (OSError, yaml.YAMLError) as e:
            raise GrodtError(f"{policy}: {e}") from None
        if not isinstance(document, dict):
            raise GrodtError(f"{policy}: a mapping of meta-controller config values is expected")
        values.update(document.get("config") or {} if "path" in document else document)
    for setting in settings:
        key, sep, raw = setting.partition("=")
        if not sep or not key:
            raise GrodtError(f"--diff-set {setting!r}: expected KEY=VALUE")
        strategy_key = _STRATEGY_KEY.match(key)
        if strategy_key is not None:
            index, name = int(strategy_key.group(1)), strategy_key.group(2)
            strategies.setdefault(index, {})[name] = yaml.safe_load(raw)
        else:
            values[key] = yaml.safe_load(raw)
    return values, strategies


def decision_diff(
    run_dir: Path, overrides: Mapping[int, Mapping[str, Any]]
) -> tuple[list[DecisionChange], dict[str, Any]]:
    """The rule strategies' logged decisions under ``overrides`` and their summary."""
    changes = diff_decisions(run_dir, overrides)
    return changes, summarise_decision_changes(changes)


def decision_diff_summary_html(
    summary: Mapping[str, Any], overrides: Mapping[int, Mapping[str, Any]]
) -> str:
    """The strategy diff's summary as HTML: how often, of which kind, per regime, the sizes."""
    setting = "; ".join(
        f"strategies[{i}]: " + ", ".join(f"{k}={v!r}" for k, v in values.items())
        for i, values in sorted(overrides.items())
    )
    kinds = summary["by_kind"]
    rows = "".join(
        f"<tr><td>{html.escape(str(regime))}</td><td>{entry['changed']:,}</td>"
        f"<td>{entry['decisions']:,}</td>"
        f"<td>{entry['changed'] / entry['decisions'] if entry['decisions'] else 0.0:.1%}</td></tr>"
        for regime, entry in summary["by_regime"].items()
    )
    return (
        f"<p class='meta'>New config: {html.escape(setting)}. {summary['changed']:,} of "
        f"{summary['decisions']:,} strategy decisions differ ({summary['share_changed']:.1%}): "
        f"{kinds['skipped']:,} not taken, {kinds['side']:,} on the other side, "
        f"{kinds['size']:,} of another size (new / recorded quantity: mean "
        f"{summary['mean_size_ratio']:.3f}, max {summary['max_size_ratio']:.3f}). Only bars "
        "with a logged decision are revisited.</p>"
        "<table class='strategies'><thead><tr><th>Regime</th><th>Changed</th><th>Decisions</th>"
        f"<th>Share</th></tr></thead><tbody>{rows}</tbody></table>"
    )


def policy_diff(
    run_dir: Path, overrides: Mapping[str, Any], component_id: str | None = None
) -> tuple[list[AllocationChange], dict[str, Any]]:
    """The decisions of ``run_dir``'s meta-controller under ``overrides`` and their summary."""
    changes = diff_allocations(run_dir, overrides, component_id=component_id)
    return changes, summarise_changes(changes)


def policy_diff_summary_html(summary: Mapping[str, Any], overrides: Mapping[str, Any]) -> str:
    """The summary as HTML: what changed, how often, per regime, the sizes."""
    setting = ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    rows = "".join(
        f"<tr><td>{html.escape(str(regime))}</td><td>{entry['changed']:,}</td>"
        f"<td>{entry['decisions']:,}</td>"
        f"<td>{entry['changed'] / entry['decisions'] if entry['decisions'] else 0.0:.1%}</td></tr>"
        for regime, entry in summary["by_regime"].items()
    )
    return (
        f"<p class='meta'>New config: {html.escape(setting)}. "
        f"{summary['changed']:,} of {summary['decisions']:,} decisions allocate differently "
        f"({summary['share_changed']:.1%}); largest weight change per changed decision: mean "
        f"{summary['mean_max_change']:.3f}, max {summary['max_change']:.3f}. Logged inputs: the "
        "new policy's choices do not feed back into later inputs.</p>"
        "<table class='strategies'><thead><tr><th>Regime</th><th>Changed</th><th>Decisions</th>"
        f"<th>Share</th></tr></thead><tbody>{rows}</tbody></table>"
    )
