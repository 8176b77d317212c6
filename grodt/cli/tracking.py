"""``grodt tracking …``: sync offline runs, list and compare runs, manage registered models."""

import json
import logging
import math
from pathlib import Path
from typing import Any
from typing import Literal

import click

_HANDLER_NAME = "grodt-cli-echo"


class _EchoHandler(logging.Handler):
    """Print grodt's warnings as ``warning: …`` on the current stderr (click-aware)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = self.format(record)
            click.echo(f"{record.levelname.lower()}: {message}", err=True)
        except Exception:  # logging must never raise into the caller
            self.handleError(record)


def echo_warnings() -> None:
    """Show ``grodt.*`` warnings on stderr in CLI commands (installed once per process)."""
    log = logging.getLogger("grodt")
    if any(h.get_name() == _HANDLER_NAME for h in log.handlers):
        return
    handler = _EchoHandler(level=logging.WARNING)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(logging.Formatter("%(message)s"))
    log.addHandler(handler)


_uri_option = click.option(
    "--tracking-uri",
    default=None,
    help="Tracking store (default: GRODT_TRACKING_URI, MLFLOW_TRACKING_URI, else the embedded "
    "SQLite store in GRODT_RUNS_DIR).",
)


@click.group(name="tracking")
def command() -> None:
    """Experiment tracking (MLflow): sync offline runs, list, compare, models."""
    echo_warnings()


@command.command(name="sync")
@click.argument("run_dirs", nargs=-1, type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--all",
    "sync_all",
    is_flag=True,
    help="Sync every run under GRODT_RUNS_DIR not yet logged to this store.",
)
@_uri_option
def sync(run_dirs: tuple[Path, ...], sync_all: bool, tracking_uri: str | None) -> None:
    """Upload runs that were not logged (store unreachable, or --no-track).

    Idempotent: a run already in the store is not uploaded again. Exits 1 if any run could not
    be uploaded.
    """
    from grodt.core.errors import GrodtError
    from grodt.core.settings import get_settings
    from grodt.tracking.bundle import has_bundle
    from grodt.tracking.bundle import pending_run_dirs
    from grodt.tracking.bundle import publish
    from grodt.tracking.store import resolve_store

    store = resolve_store(tracking_uri)
    targets = list(run_dirs)
    if sync_all:
        targets.extend(pending_run_dirs(Path(get_settings().runs_dir), store))
    if not targets:
        if sync_all:
            click.echo(f"nothing to sync: every run is logged to {store.display_uri}")
            return
        raise GrodtError("nothing to sync: give RUN_DIR arguments or --all")
    failed = 0
    for run_dir in targets:
        if not has_bundle(run_dir):
            raise GrodtError(f"{run_dir}: no tracking bundle (tracking/bundle.json)")
        result = publish(run_dir, store)
        if result.status == "logged":
            click.echo(f"{run_dir}: logged as run {result.run_id} in {result.store}")
        elif result.status == "already":
            click.echo(f"{run_dir}: already logged as run {result.run_id} in {result.store}")
        else:
            failed += 1
            click.echo(f"{run_dir}: not logged: {result.reason}", err=True)
    if failed:
        raise SystemExit(1)


@command.command(name="status")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
def status(run_dir: Path) -> None:
    """Show what RUN_DIR's bundle holds and where it has been logged."""
    from grodt.tracking.bundle import describe_contents
    from grodt.tracking.bundle import read_bundle

    bundle = read_bundle(run_dir)
    click.echo(f"{bundle.kind} run {bundle.run_name!r} (experiment {bundle.experiment!r})")
    click.echo(f"  bundle {bundle.bundle_id}: {describe_contents(run_dir, bundle)}")
    if not bundle.synced:
        click.echo("  not logged to any store yet")
    for record in bundle.synced:
        click.echo(f"  logged to {record.store} as run {record.run_id} at {record.synced_at}")
    if bundle.last_error:
        click.echo(f"  last error: {bundle.last_error}")


def _client(tracking_uri: str | None) -> tuple[Any, Any]:
    from grodt.core.errors import GrodtError
    from grodt.tracking.store import open_client
    from grodt.tracking.store import probe
    from grodt.tracking.store import resolve_store

    store = resolve_store(tracking_uri)
    reason = probe(store)
    if reason is not None:
        raise GrodtError(f"tracking store {store.display_uri} is unreachable: {reason}")
    return store, open_client(store)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:,.0f}"
    return str(value)


@command.command(name="list")
@click.option("--experiment", default=None, help="Experiment name (default: all).")
@click.option("--limit", default=20, show_default=True, help="Most recent runs to show.")
@click.option(
    "--metric",
    "metrics",
    multiple=True,
    default=("total_return", "sharpe", "max_drawdown"),
    show_default=True,
    help="Metric columns.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per run.")
@_uri_option
def list_runs(
    experiment: str | None,
    limit: int,
    metrics: tuple[str, ...],
    as_json: bool,
    tracking_uri: str | None,
) -> None:
    """List recent runs with a few metrics."""
    from grodt.core.errors import GrodtError
    from grodt.tracking.store import quiet_mlflow

    store, client = _client(tracking_uri)
    with quiet_mlflow():
        if experiment:
            found = client.get_experiment_by_name(experiment)
            if found is None:
                raise GrodtError(f"no experiment {experiment!r} in {store.display_uri}")
            experiments = [found]
        else:
            experiments = client.search_experiments()
        names = {e.experiment_id: e.name for e in experiments}
        runs = client.search_runs(
            list(names),
            order_by=["attributes.start_time DESC"],
            max_results=limit,
        )
    for run in runs:
        row = {
            "run_id": run.info.run_id,
            "experiment": names.get(run.info.experiment_id),
            "run_name": run.info.run_name,
            "status": run.info.status,
            "start_time": run.info.start_time,
            **{m: run.data.metrics.get(m) for m in metrics},
        }
        if as_json:
            click.echo(json.dumps(row, default=str))
            continue
        figures = "  ".join(f"{m}={_fmt(row[m])}" for m in metrics)
        click.echo(f"{run.info.run_id}  {row['experiment']:<24} {run.info.status:<9} {figures}")
    if not runs and not as_json:
        click.echo(f"no runs in {store.display_uri}")


@command.command(name="compare")
@click.argument("run_ids", nargs=-1, required=True)
@click.option("--all-params", is_flag=True, help="Show every param, not only those that differ.")
@_uri_option
def compare(run_ids: tuple[str, ...], all_params: bool, tracking_uri: str | None) -> None:
    """Compare runs side by side: metrics, then params that differ."""
    from mlflow.exceptions import MlflowException

    from grodt.core.errors import GrodtError
    from grodt.tracking.store import quiet_mlflow

    _, client = _client(tracking_uri)
    runs = []
    with quiet_mlflow():
        for run_id in run_ids:
            try:
                runs.append(client.get_run(run_id))
            except MlflowException as e:
                raise GrodtError(f"run {run_id}: {e.message}") from None
    width = 14
    header = f"{'':<36}" + "".join(f"{r.info.run_id[:12]:>{width}}" for r in runs)
    click.echo(header)
    metric_keys = sorted({k for r in runs for k in r.data.metrics if "." not in k})
    metric_keys += sorted({k for r in runs for k in r.data.metrics if "." in k})
    click.echo("metrics")
    for key in metric_keys:
        values = "".join(f"{_fmt(r.data.metrics.get(key)):>{width}}" for r in runs)
        click.echo(f"  {key[:34]:<34}{values}")
    click.echo("params" + ("" if all_params else " (differing)"))
    for key in sorted({k for r in runs for k in r.data.params}):
        values = [r.data.params.get(key) for r in runs]
        if not all_params and len(set(values)) == 1:
            continue
        cells = "".join(f"{str(v)[: width - 1]:>{width}}" for v in values)
        click.echo(f"  {key[:34]:<34}{cells}")


@command.command(name="models")
@click.argument("name", required=False)
@_uri_option
def models(name: str | None, tracking_uri: str | None) -> None:
    """List registered models, or the versions of NAME with their aliases."""
    from grodt.tracking.store import quiet_mlflow

    store, client = _client(tracking_uri)
    with quiet_mlflow():
        if name is None:
            registered = client.search_registered_models()
            if not registered:
                click.echo(f"no registered models in {store.display_uri}")
            for model in registered:
                aliases = ", ".join(f"{a}→v{v}" for a, v in sorted(model.aliases.items()))
                latest = max((int(v.version) for v in model.latest_versions or []), default=0)
                click.echo(f"{model.name}  latest v{latest}  {aliases}")
            return
        versions = client.search_model_versions(f"name = '{name}'")
    for version in sorted(versions, key=lambda v: int(v.version), reverse=True):
        own = (version.tags or {}).get("grodt.model_version", "")
        aliases = ",".join(version.aliases or [])
        click.echo(f"{name}/{version.version}  run {version.run_id}  {own}  {aliases}")


@command.command(name="prune")
@click.argument("name")
@click.option("--keep-last", default=5, show_default=True, help="Newest versions to keep.")
@click.option("--metric", default=None, help="Also keep the best version by this run metric.")
@click.option("--mode", type=click.Choice(["max", "min"]), default="max", show_default=True)
@click.option("--dry-run", is_flag=True, help="Only list what would be deleted.")
@_uri_option
def prune(
    name: str,
    keep_last: int,
    metric: str | None,
    mode: Literal["max", "min"],
    dry_run: bool,
    tracking_uri: str | None,
) -> None:
    """Delete old versions of model NAME (aliased versions are always kept)."""
    from grodt.tracking.registry import prune_model_versions
    from grodt.tracking.store import resolve_store

    deleted = prune_model_versions(
        name,
        keep_last=keep_last,
        metric=metric,
        mode=mode,
        store=resolve_store(tracking_uri),
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{name}: {verb} {len(deleted)} version(s) {', '.join(deleted)}".rstrip())


@command.command(name="tearsheet")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@click.option("--rolling-window", type=int, default=None, help="Rolling Sharpe window (days).")
@click.option(
    "--diff-policy",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Add a policy diff: a YAML of new meta-controller config values (or a component file).",
)
@click.option(
    "--diff-set",
    "diff_settings",
    multiple=True,
    help="KEY=VALUE over the meta-controller's config, or strategies[i].config.KEY=VALUE over a "
    "rule strategy's, for the policy diff (repeatable).",
)
@click.option("--diff-component", default=None, help="The meta-controller (when several).")
def tearsheet(
    run_dir: Path,
    output: Path | None,
    rolling_window: int | None,
    diff_policy: Path | None,
    diff_settings: tuple[str, ...],
    diff_component: str | None,
) -> None:
    """(Re)render RUN_DIR's tearsheet.html; --diff-policy/--diff-set add sections showing where
    that meta-controller config would have allocated differently, and those rule-strategy configs
    would have decided differently, on the run's logged inputs."""
    from grodt.reports.policy_diff import diff_overrides
    from grodt.reports.tearsheet import render_tearsheet

    values, strategies = diff_overrides(diff_policy, diff_settings)
    path = render_tearsheet(
        run_dir,
        output=output,
        rolling_window=rolling_window,
        policy_diff_overrides=values,
        diff_component=diff_component,
        strategy_diff_overrides=strategies,
    )
    click.echo(path.resolve().as_uri())
