"""``grodt parity CONFIG``: the same config in a BacktestNode and in the lockstep paper node."""

import json
import sys
from pathlib import Path

import click

from grodt.cli._options import config_catalog_option


@click.command(name="parity")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_catalog_option
@click.option(
    "--run-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where both runs write reports (default: <GRODT_RUNS_DIR>/<name>-parity/<timestamp>).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
def command(config: Path, catalog: Path | None, run_dir: Path | None, as_json: bool) -> None:
    """Run CONFIG in a BacktestNode and in the lockstep paper TradingNode and compare orders,
    fills and final positions.

    CONFIG is a backtest config (its paper twin replays the same data into sandbox copies of its
    venues) or a paper live config (replay + sandbox). Exit status 0 when identical, 1 when they
    diverge (the first divergence is named), 2 on a config error.

    --json prints {"identical", "orders": [backtest, paper], "fills": [...], "positions": [...],
    "first_divergence", ...}.
    """
    from grodt.core.settings import get_settings
    from grodt.nodes.parity import format_report
    from grodt.nodes.parity import run_parity
    from grodt.nodes.run_files import json_safe
    from grodt.nodes.run_files import new_run_dir
    from node_configs.live_schema import load_node_config

    settings = get_settings()
    spec = load_node_config(config)
    run_path = run_dir or new_run_dir(settings.runs_dir, f"{spec.name}-parity")
    report = run_parity(spec, run_path, catalog=catalog, source=str(config))
    if as_json:
        click.echo(json.dumps(json_safe(report.as_json()), default=str))
    else:
        click.echo(format_report(report))
    sys.exit(0 if report.identical else 1)
