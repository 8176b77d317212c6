"""``grodt backtest CONFIG``: run a node config in a BacktestNode and summarise it."""

import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Any

import click

from grodt.cli._options import config_catalog_option

if TYPE_CHECKING:
    from grodt.tracking.store import TrackingStore
    from node_configs.schema import BacktestNodeSpec

SUMMARY_ROWS: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("calmar", "Calmar", "ratio"),
    ("annual_volatility", "Annual volatility", "pct"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("trades", "Trades (round trips)", "int"),
    ("fills", "Fills", "int"),
    ("turnover", "Turnover (per year)", "ratio"),
    ("exposure", "Exposure (mean gross)", "pct"),
    ("time_in_market", "Time in market", "pct"),
    ("final_equity", "Final equity", "money"),
)


def _format(value: object, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    if isinstance(value, float) and math.isinf(value):
        return "inf"
    return f"{value:,.3f}"


def format_summary(summary: dict) -> str:
    """The human-readable summary block."""
    lines = [
        f"{summary['name']}: {summary['start']} → {summary['end']}, {summary['bars']:,} bar closes",
        f"  fill_at: {summary.get('fill_at', 'close')} (when orders fill: docs/fills.md)",
    ]
    width = max(len(label) for _, label, _ in SUMMARY_ROWS)
    for key, label, kind in SUMMARY_ROWS:
        lines.append(f"  {label:<{width}}  {_format(summary.get(key), kind)}")
    lines.extend(_benchmark_lines(summary.get("benchmark")))
    strategies = summary.get("strategies", {})
    if len(strategies) > 1:
        lines.append("  Per strategy:")
        for strategy_id, stats in strategies.items():
            lines.append(
                f"    {strategy_id}: PnL {stats['pnl']:,.2f}, trades {stats['trades']}, "
                f"win rate {_format(stats['win_rate'], 'pct')}, "
                f"Sharpe {_format(stats['sharpe'], 'ratio')}",
            )
    lines.extend(_extension_lines(summary.get("extensions", {})))
    lines.append(
        f"  ({summary['bars_processed']:,} bars in {summary['wall_seconds']:.2f} s, "
        f"{summary['bars_per_second']:,.0f} bars/s)",
    )
    return "\n".join(lines)


def _benchmark_lines(benchmark: dict | None) -> list[str]:
    """The benchmark's buy-and-hold figures and the run's figures against it."""
    if not benchmark:
        return []
    return [
        f"  Benchmark {benchmark['bar_type']} (buy and hold): "
        f"return {_format(benchmark['total_return'], 'pct')}, "
        f"Sharpe {_format(benchmark['sharpe'], 'ratio')}, "
        f"max drawdown {_format(benchmark['max_drawdown'], 'pct')}",
        f"  Against it: alpha {_format(benchmark['alpha'], 'pct')}/yr, "
        f"beta {_format(benchmark['beta'], 'ratio')}, "
        f"information ratio {_format(benchmark['information_ratio'], 'ratio')}, "
        f"tracking error {_format(benchmark['tracking_error'], 'pct')}/yr",
    ]


def _extension_lines(extensions: dict) -> list[str]:
    """One line per enabled framework extension (risk gate verdicts, forensics delivery)."""
    lines: list[str] = []
    risk = extensions.get("risk")
    if risk and "verdicts" in risk:
        verdicts = risk["verdicts"]
        denials = ", ".join(
            f"{reason} {count:,}" for reason, count in risk.get("denials_by_reason", {}).items()
        )
        halted = risk.get("kill_switch", {}).get("halted")
        lines.append(
            f"  Risk gate: {verdicts.get('approve', 0):,} approved, "
            f"{verdicts.get('resize', 0):,} resized, {verdicts.get('deny', 0):,} denied"
            + (f" ({denials})" if denials else "")
            + ("; kill switch HALTED" if halted else ""),
        )
    forensics = extensions.get("forensics")
    if forensics and "delivered" in forensics:
        output = forensics.get("output", {})
        where = output.get("directory") or output.get("bootstrap_servers") or output.get("sink")
        line = (
            f"  Forensics: {forensics['delivered']:,} records → {output.get('sink')} {where}"
            f" ({forensics.get('spilled', 0):,} spilled"
        )
        if forensics.get("undelivered"):
            where = forensics.get("outbox") or forensics.get("spill_dir")
            line += f"; {forensics['undelivered']:,} NOT DELIVERED, waiting in {where}"
        lines.append(line + ")")
    return lines


@click.command(name="backtest")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_catalog_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write reports (default: <GRODT_RUNS_DIR>/<name>/<timestamp>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option(
    "--allow-undelivered",
    is_flag=True,
    help="Exit 0 even when forensics records were left undelivered (default: exit 3).",
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a config value, e.g. --set strategies[0].config.fast_ema_period=12 "
    "--set start=2005-01-01 (repeatable; the value is parsed as YAML and validated like the "
    "file; recorded in the run's config.yaml and params).",
)
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
@click.option(
    "--track/--no-track",
    default=True,
    help="Log the run to MLflow (default: on). --no-track still writes the run's tracking "
    "bundle, so `grodt tracking sync RUN_DIR` can log it later.",
)
@click.option(
    "--experiment",
    default=None,
    help="MLflow experiment (default: the node config's name).",
)
@click.option(
    "--tracking-uri",
    default=None,
    help="Tracking store for this run (default: GRODT_TRACKING_URI, MLFLOW_TRACKING_URI, else "
    "sqlite:///<GRODT_RUNS_DIR>/mlflow.db).",
)
@click.option(
    "--tearsheet/--no-tearsheet",
    default=True,
    help="Write tearsheet.html (self-contained Plotly report) into the run directory.",
)
def command(
    config: Path,
    catalog: Path | None,
    run_dir: Path | None,
    as_json: bool,
    allow_undelivered: bool,
    overrides: tuple[str, ...],
    progress: bool | None,
    track: bool,
    experiment: str | None,
    tracking_uri: str | None,
    tearsheet: bool,
) -> None:
    """Run CONFIG (a YAML node config) in a BacktestNode.

    Prints total return, CAGR, Sharpe, Sortino, max drawdown, Calmar, win rate, profit factor,
    trades, turnover and exposure, and writes fills, orders, positions, account reports, the
    equity curve and a tearsheet into the run directory. The run is logged to MLflow (params:
    the flattened config, git commit, catalog fingerprint; metrics: the summary overall and per
    strategy; artifacts: reports, equity, tearsheet, config, forensics). If the tracking store
    is unreachable the run still completes; `grodt tracking sync RUN_DIR` logs it later.
    """
    from grodt.cli.forensics import exit_if_undelivered
    from grodt.cli.tracking import echo_warnings
    from grodt.core.settings import get_settings
    from grodt.nodes.backtest import run_backtest
    from grodt.nodes.run_files import json_safe
    from grodt.nodes.run_files import new_run_dir
    from grodt.tracking.store import resolve_store
    from node_configs.loader import load_backtest_document
    from node_configs.loader import load_document

    echo_warnings()
    settings = get_settings()
    document = load_document(config, overrides)
    spec = load_backtest_document(document, str(config))
    # Resolve the store before running, so a malformed URI fails fast, not after the run.
    store = resolve_store(tracking_uri) if track else None
    catalog_path = catalog or (Path(spec.catalog) if spec.catalog else settings.catalog)
    run_path = run_dir or new_run_dir(settings.runs_dir, spec.name)
    show_progress = sys.stderr.isatty() if progress is None else progress
    outcome = run_backtest(
        spec,
        catalog_path,
        run_path,
        document=document,
        progress=show_progress,
        quiet=as_json,
    )
    tearsheet_path = _write_tearsheet(outcome.run_dir) if tearsheet else None
    tracking = _track(
        outcome.run_dir,
        spec,
        document,
        outcome.summary,
        catalog_path,
        store,
        config,
        experiment,
    )
    if as_json:
        payload = dict(outcome.summary)
        payload["tearsheet"] = str(tearsheet_path) if tearsheet_path else None
        payload["tracking"] = tracking
        click.echo(json.dumps(json_safe(payload), default=str))
        exit_if_undelivered(outcome.summary, allow_undelivered)
        return
    click.echo(format_summary(outcome.summary))
    if tearsheet_path is not None:
        click.echo(f"Tearsheet: {tearsheet_path.resolve().as_uri()}")
    click.echo(_tracking_line(tracking, outcome.run_dir))
    click.echo(f"Reports: {outcome.run_dir}")
    for name, path in outcome.reports.items():
        click.echo(f"  {name:<16} {path}")
    exit_if_undelivered(outcome.summary, allow_undelivered)


def _write_tearsheet(run_dir: Path) -> Path | None:
    """Render the tearsheet; a failure is reported and does not fail the finished run."""
    import logging

    from grodt.core.errors import GrodtError
    from grodt.reports.tearsheet import render_tearsheet

    try:
        return render_tearsheet(run_dir)
    except GrodtError as e:
        logging.getLogger("grodt.tracking").warning("tearsheet not written: %s", e)
    except Exception as e:  # a plotting bug must not lose the run's results
        logging.getLogger("grodt.tracking").warning(
            "tearsheet not written: %s: %s",
            type(e).__name__,
            e,
            exc_info=True,
        )
    return None


def _track(
    run_dir: Path,
    spec: "BacktestNodeSpec",
    document: dict[str, Any],
    summary: dict[str, Any],
    catalog: Path,
    store: "TrackingStore | None",
    config: Path,
    experiment: str | None,
) -> dict[str, Any]:
    """Bundle (always) and publish (when tracking is on); returns the JSON-ready outcome."""
    import logging

    from grodt.core.errors import GrodtError
    from grodt.tracking.backtest import track_backtest

    log = logging.getLogger("grodt.tracking")
    try:
        tracked = track_backtest(
            run_dir,
            spec,
            document,
            summary,
            catalog,
            store,
            config_path=config,
            experiment=experiment,
        )
    except GrodtError as e:
        log.warning("run not tracked: %s", e)
        return {"status": "error", "reason": str(e)}
    except Exception as e:  # the backtest's results are on disk; say loudly what broke
        log.warning("run not tracked: %s: %s", type(e).__name__, e, exc_info=True)
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"}
    result = tracked.result
    info: dict[str, Any] = {
        "experiment": tracked.bundle.experiment,
        "bundle_id": tracked.bundle.bundle_id,
    }
    if result is None:
        info["status"] = "disabled"
        return info
    info.update(
        {
            "status": result.status,
            "store": result.store,
            "run_id": result.run_id,
            "experiment_id": result.experiment_id,
        },
    )
    if not result.ok:
        info["reason"] = result.reason
    return info


def _tracking_line(tracking: dict[str, Any], run_dir: Path) -> str:
    status = tracking.get("status")
    if status in ("logged", "already"):
        return (
            f"Tracking: MLflow run {tracking['run_id']} in experiment "
            f"{tracking['experiment']!r} ({tracking['store']}); browse with `grodt ui`"
        )
    if status == "disabled":
        return f"Tracking: off (--no-track); log it later with `grodt tracking sync {run_dir}`"
    return f"Tracking: NOT logged; `grodt tracking sync {run_dir}` uploads it later"
