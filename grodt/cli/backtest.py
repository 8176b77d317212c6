"""``grodt backtest CONFIG``: run a node config in a BacktestNode and summarise it."""

import json
import math
import sys
from pathlib import Path

import click

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
    ]
    width = max(len(label) for _, label, _ in SUMMARY_ROWS)
    for key, label, kind in SUMMARY_ROWS:
        lines.append(f"  {label:<{width}}  {_format(summary.get(key), kind)}")
    strategies = summary.get("strategies", {})
    if len(strategies) > 1:
        lines.append("  Per strategy:")
        for strategy_id, stats in strategies.items():
            lines.append(
                f"    {strategy_id}: PnL {stats['pnl']:,.2f}, trades {stats['trades']}, "
                f"win rate {_format(stats['win_rate'], 'pct')}, "
                f"Sharpe {_format(stats['sharpe'], 'ratio')}",
            )
    lines.append(
        f"  ({summary['bars_processed']:,} bars in {summary['wall_seconds']:.2f} s, "
        f"{summary['bars_per_second']:,.0f} bars/s)",
    )
    return "\n".join(lines)


@click.command(name="backtest")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--catalog",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Catalog directory (default: the config's `catalog`, else GRODT_CATALOG).",
)
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where to write reports (default: <GRODT_RUNS_DIR>/<name>/<timestamp>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as one JSON object.")
@click.option("--progress/--no-progress", default=None, help="Progress bar (default: on a TTY).")
def command(
    config: Path,
    catalog: Path | None,
    run_dir: Path | None,
    as_json: bool,
    progress: bool | None,
) -> None:
    """Run CONFIG (a YAML node config) in a BacktestNode.

    Prints total return, CAGR, Sharpe, Sortino, max drawdown, Calmar, win rate, profit factor,
    trades, turnover and exposure, and writes fills, orders, positions, account reports and the
    equity curve into the run directory.
    """
    from grodt.nodes.backtest import json_safe
    from grodt.nodes.backtest import new_run_dir
    from grodt.nodes.backtest import run_backtest
    from grodt.settings import get_settings
    from node_configs.loader import load_backtest_config
    from node_configs.loader import load_yaml_document

    settings = get_settings()
    spec = load_backtest_config(config)
    catalog_path = catalog or (Path(spec.catalog) if spec.catalog else settings.catalog)
    run_path = run_dir or new_run_dir(settings.runs_dir, spec.name)
    show_progress = sys.stderr.isatty() if progress is None else progress
    outcome = run_backtest(
        spec,
        catalog_path,
        run_path,
        document=load_yaml_document(config),
        progress=show_progress,
        quiet=as_json,
    )
    if as_json:
        click.echo(json.dumps(json_safe(outcome.summary), default=str))
        return
    click.echo(format_summary(outcome.summary))
    click.echo(f"Reports: {outcome.run_dir}")
    for name, path in outcome.reports.items():
        click.echo(f"  {name:<16} {path}")
    _ = write_json  # summary.json is written by run_backtest
