"""``grodt ope evaluate``: what a new allocation policy would have earned on logged decisions.

``grodt ope evaluate --run RUN_DIR [--run …] --policy POLICY`` reads the runs' allocation
records (Parquet forensics, spill leftovers included; or a Kafka topic with ``--bootstrap``),
rebuilds the bandit rounds (context, action, propensity, and the next record's realised return
as the reward: :mod:`grodt.forensics.ope_logs`), evaluates the policy on them with every
estimator of :mod:`research.ope` (percentile bootstrap intervals), and prints them beside the
logged policy's realised value, with the effective sample size and overlap warnings.

``POLICY`` is a policy YAML (:mod:`research.ope.policy_spec`) or an import path
``module:attribute`` naming a callable ``(context (n, d), feature_names, n_actions) → (n,
n_actions)`` probabilities.
"""

import importlib
import json
from collections.abc import Callable
from pathlib import Path

import click
import numpy as np

from grodt.core.errors import GrodtError
from grodt.forensics.ope_logs import consume_bandit_log
from grodt.forensics.ope_logs import read_bandit_log
from research.ope.evaluate import evaluate_policy
from research.ope.policy_spec import load_policy_spec
from research.ope.policy_spec import policy_action_dist

PolicyFunction = Callable[[np.ndarray, tuple[str, ...], int], np.ndarray]


def _policy_function(policy: str) -> PolicyFunction:
    path = Path(policy)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise GrodtError(f"{path}: no such policy file")
        spec = load_policy_spec(path)
        return lambda context, names, n_actions: policy_action_dist(spec, context, names, n_actions)
    module_name, _, attribute = policy.partition(":")
    if not attribute:
        raise GrodtError(
            f"--policy {policy!r}: neither a policy YAML file nor an import path module:attribute"
        )
    try:
        target = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as e:
        raise GrodtError(f"--policy {policy!r}: {e}") from None
    if not callable(target):
        raise GrodtError(f"--policy {policy!r} is not callable")
    return target


@click.group(name="ope")
def command() -> None:
    """Off-policy evaluation of allocation policies on logged decisions."""


@command.command(name="evaluate")
@click.option(
    "--run",
    "runs",
    multiple=True,
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Run directory with Parquet forensics (repeat for several runs).",
)
@click.option("--bootstrap", default=None, help="Read the records from Kafka instead.")
@click.option(
    "--idle-timeout",
    type=float,
    default=3.0,
    show_default=True,
    help="Kafka: stop after this many seconds without a new record.",
)
@click.option(
    "--topic",
    default=None,
    help="Kafka topic of the allocation records (default grodt.forensics.allocations).",
)
@click.option("--policy", required=True, help="Policy YAML, or module:callable.")
@click.option("--component", default=None, help="Only this meta-controller's records.")
@click.option("--tau", type=float, default=5.0, show_default=True, help="Switch-DR threshold.")
@click.option("--n-bootstrap", type=int, default=1000, show_default=True)
@click.option("--alpha", type=float, default=0.05, show_default=True)
@click.option("--folds", type=int, default=5, show_default=True, help="Reward-model folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def evaluate(
    runs: tuple[Path, ...],
    bootstrap: str | None,
    idle_timeout: float,
    topic: str | None,
    policy: str,
    component: str | None,
    tau: float,
    n_bootstrap: int,
    alpha: float,
    folds: int,
    seed: int,
    as_json: bool,
) -> None:
    """Estimate POLICY's value on the bandit rounds logged in the runs."""
    if bool(runs) == (bootstrap is not None):
        raise GrodtError("give --run RUN_DIR (one or more) or --bootstrap SERVERS, not both")
    if bootstrap is not None:
        log = consume_bandit_log(
            bootstrap, topic=topic, component_id=component, idle_timeout_s=idle_timeout
        )
        sources = [f"kafka:{bootstrap}"]
    else:
        log = read_bandit_log(list(runs), component_id=component)
        sources = [str(r) for r in runs]
    action_dist = np.asarray(
        _policy_function(policy)(log.context, log.feature_names, log.n_actions), dtype=float
    )
    if action_dist.shape != (log.n_rounds, log.n_actions):
        raise GrodtError(
            f"--policy {policy!r} returned shape {action_dist.shape}, needs "
            f"({log.n_rounds}, {log.n_actions})"
        )
    try:
        report = evaluate_policy(
            log.context,
            log.action,
            log.reward,
            log.pscore,
            action_dist,
            logging_action_dist=log.logging_action_dist,
            tau=tau,
            n_bootstrap=n_bootstrap,
            alpha=alpha,
            n_folds=folds,
            random_state=seed,
        )
    except ValueError as e:
        raise GrodtError(f"--policy {policy!r}: {e}") from None
    overlap = report.overlap
    if as_json:
        click.echo(
            json.dumps(
                {
                    "sources": sources,
                    "policy": policy,
                    "n_rounds": report.n_rounds,
                    "n_actions": log.n_actions,
                    "skipped": log.skipped,
                    "alpha": alpha,
                    "estimates": {
                        e.estimator: {"estimate": e.estimate, "lower": e.lower, "upper": e.upper}
                        for e in report.estimates
                    },
                    "logged_value": {
                        "estimate": report.logged_value.estimate,
                        "lower": report.logged_value.lower,
                        "upper": report.logged_value.upper,
                    },
                    "effective_sample_size": overlap.effective_sample_size,
                    "max_importance_weight": overlap.max_importance_weight,
                    "min_pscore": overlap.min_pscore,
                    "unsupported_share": overlap.unsupported_share,
                    "warnings": list(overlap.warnings),
                }
            )
        )
        return
    skipped = ", ".join(f"{n} {why}" for why, n in log.skipped.items())
    names = log.feature_names
    shown = ", ".join(names[:6]) + (f", … ({len(names)} in all)" if len(names) > 6 else "")
    click.echo(
        f"{report.n_rounds} logged rounds, {log.n_actions} actions, context {shown}"
        + (f" (not rounds: {skipped})" if skipped else "")
    )
    click.echo(f"policy {policy}; values are mean reward per round (return per window)")
    level = f"{1 - alpha:.0%}"
    click.echo(f"  {'estimator':<12}{'value':>12}   {level} interval")
    for e in report.estimates:
        click.echo(f"  {e.estimator:<12}{e.estimate:>+12.6f}   [{e.lower:+.6f}, {e.upper:+.6f}]")
    logged = report.logged_value
    click.echo(
        f"  {'logged':<12}{logged.estimate:>+12.6f}   [{logged.lower:+.6f}, {logged.upper:+.6f}]"
        "   (the logging policy's realised value)"
    )
    click.echo(
        f"effective sample size {overlap.effective_sample_size:.1f} of {report.n_rounds} "
        f"({overlap.ess_share:.1%}); largest importance weight "
        f"{overlap.max_importance_weight:.3g}; smallest propensity {overlap.min_pscore:.3g}"
    )
    for warning in overlap.warnings:
        click.echo(f"warning: {warning}")
