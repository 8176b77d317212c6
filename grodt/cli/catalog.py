"""``grodt catalog``: ingest, validate, list and build sample bar catalogs.

Heavy imports (pandas, pyarrow, Nautilus) happen inside the commands so ``grodt --help`` stays
fast.
"""

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from grodt.core.settings import get_settings

_CHECK_HELP = (
    "CHECK=POLICY, repeatable. Checks: parse nan range positive volume precision ohlc unsorted "
    "duplicate conflict gap outlier; policies: reject, repair, flag (gap: reject or flag). "
    "Defaults: ohlc/unsorted/duplicate=repair, gap/outlier=flag, the rest reject."
)
_SHOWN_FINDINGS = 20


def _read_options(function: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by ``ingest`` and ``validate``."""
    options = [
        click.option(
            "--timezone",
            default="UTC",
            show_default=True,
            help="IANA zone of naive timestamps (epochs and ISO offsets are absolute).",
        ),
        click.option(
            "--label",
            type=click.Choice(["open", "close"]),
            default="open",
            show_default=True,
            help="What intraday timestamps mark; 'open' shifts bars to their close.",
        ),
        click.option(
            "--interval", default=None, help="Bar interval (1min, 5min, 1h, 1d); inferred."
        ),
        click.option(
            "--adjust", is_flag=True, help="Scale O/H/L by Adj Close/Close, volume inversely."
        ),
        click.option(
            "--policy", "policies", multiple=True, metavar="CHECK=POLICY", help=_CHECK_HELP
        ),
        click.option(
            "--outlier-k",
            type=float,
            default=10.0,
            show_default=True,
            help="Outlier: |log return - mean| above this many std of the window.",
        ),
        click.option(
            "--outlier-window",
            type=int,
            default=100,
            show_default=True,
            help="Outlier: number of previous bars in the causal window.",
        ),
        click.option(
            "--date-format",
            default=None,
            help="strftime format of the timestamps, e.g. '%d/%m/%Y' or '%d/%m/%Y %H:%M'.",
        ),
        click.option(
            "--dayfirst/--monthfirst",
            "dayfirst",
            default=None,
            help="Order of numeric dates like 02/01/2024 (default: detected from the whole "
            "column; an ambiguous column is an error asking for this option).",
        ),
        click.option("--delimiter", default=None, help="CSV delimiter (default: detected; 'tab')."),
        click.option(
            "--default-volume",
            type=float,
            default=None,
            help="Volume for files without a volume column.",
        ),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _configs(kwargs: dict[str, Any]) -> tuple[Any, Any]:
    from catalogs.parsing import ReadOptions
    from catalogs.validation import ValidationConfig
    from catalogs.validation import parse_policies

    delimiter = kwargs["delimiter"]
    if delimiter in ("tab", "\\t"):
        delimiter = "\t"
    read_options = ReadOptions(
        timezone=kwargs["timezone"],
        date_format=kwargs["date_format"],
        dayfirst=kwargs["dayfirst"],
        delimiter=delimiter,
        default_volume=kwargs["default_volume"],
    )
    config = ValidationConfig(
        policies=parse_policies(kwargs["policies"]),
        outlier_k=kwargs["outlier_k"],
        outlier_window=kwargs["outlier_window"],
        label=kwargs["label"],
        interval=kwargs["interval"],
        adjust=kwargs["adjust"],
    )
    return read_options, config


def _check_timezone(timezone: str) -> None:
    import zoneinfo

    from grodt.core.errors import ConfigError

    try:
        zoneinfo.ZoneInfo(timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"--timezone: unknown time zone {timezone!r}") from None


def _records(frame: Any) -> list[dict[str, Any]]:
    """Findings as JSON-ready dicts (NaN → null, numpy ints → int)."""
    records = []
    for row in frame.itertuples(index=False):
        record = row._asdict()
        record["row"] = None if record["row"] is None else int(record["row"])
        records.append(record)
    return records


def _summary(findings: Any) -> str:
    if findings.empty:
        return "no findings"
    counts = findings.groupby(["check", "action"]).size()
    return ", ".join(f"{check}/{action}: {n}" for (check, action), n in counts.items())


@click.group(name="catalog")
def command() -> None:
    """Real market data into a Nautilus ParquetDataCatalog: ingest, validate, list, sample,
    recover."""


@command.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--instrument-spec",
    "spec_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Instrument spec YAML (see catalogs/specs/).",
)
@click.option("--catalog", type=click.Path(file_okay=False), default=None, help="Catalog dir.")
@click.option("--replace", is_flag=True, help="Replace the bar type's existing data.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@_read_options
def ingest(
    files: tuple[str, ...],
    spec_path: str,
    catalog: str | None,
    replace: bool,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Validate FILES of one instrument and write them to the catalog (all or nothing).

    FILES are CSV (any delimiter, optionally gzip) or Parquet, concatenated in order. Rejected
    findings abort with the file, row and column; repairs are audited under <catalog>/_audit/.
    """
    from catalogs.ingest import ingest_files

    _check_timezone(kwargs["timezone"])
    read_options, config = _configs(kwargs)
    catalog_dir = Path(catalog) if catalog else get_settings().catalog
    result = ingest_files(
        list(files), spec_path, catalog_dir, options=read_options, config=config, replace=replace
    )
    if as_json:
        click.echo(
            json.dumps(
                {
                    "bar_type": result.bar_type,
                    "instrument_id": result.instrument_id,
                    "rows_in": result.rows_in,
                    "rows_written": result.rows_written,
                    "files": [str(p) for p in result.files],
                    "audit": str(result.audit_path) if result.audit_path else None,
                    "findings": _records(result.findings),
                },
                indent=2,
            )
        )
        return
    click.echo(f"{result.bar_type}: {result.rows_written} of {result.rows_in} rows written")
    click.echo(f"findings: {_summary(result.findings)}")
    if result.audit_path is not None:
        click.echo(f"audit: {result.audit_path} ({len(result.audit)} repairs)")
    if result.findings_path is not None:
        click.echo(f"findings file: {result.findings_path}")


@command.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--instrument-spec",
    "spec_path",
    default=None,
    type=click.Path(exists=True, dir_okay=False),
    help="Enables the precision check and the spec's session close and time zone.",
)
@click.option("--json", "as_json", is_flag=True, help="Print ONLY a JSON list of findings.")
@_read_options
def validate(files: tuple[str, ...], spec_path: str | None, as_json: bool, **kwargs: Any) -> None:
    """Check FILES of one instrument without writing anything.

    Every finding is reported with its row (1-based data row after the header), column, check
    and the action its policy takes (reject, repair, drop, flag). Exit code 1 when a finding is
    rejected.
    """
    from catalogs.ingest import validate_files

    _check_timezone(kwargs["timezone"])
    read_options, config = _configs(kwargs)
    result = validate_files(list(files), spec_path, options=read_options, config=config)
    findings = result.findings
    if as_json:
        click.echo(json.dumps(_records(findings)))
    else:
        click.echo(
            f"{result.rows_in} rows, interval {result.bar_spec}, {result.rows_out} would be "
            f"written; {_summary(findings)}"
        )
        for record in _records(findings.head(_SHOWN_FINDINGS)):
            column = record["column"] or "-"
            click.echo(
                f"  {record['file']}:{record['row']} {column} {record['check']} "
                f"{record['action']}: {record['detail']}"
            )
        if len(findings) > _SHOWN_FINDINGS:
            click.echo(f"  ... {len(findings) - _SHOWN_FINDINGS} more (use --json)")
    if len(result.rejected):
        sys.exit(1)


@command.command(name="list")
@click.option("--catalog", type=click.Path(file_okay=False), default=None, help="Catalog dir.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(catalog: str | None, as_json: bool) -> None:
    """Instruments and bar types in a catalog, with row counts and time ranges."""
    from catalogs.journal import STAGING_DIR
    from catalogs.reader import catalog_summary

    catalog_dir = Path(catalog) if catalog else get_settings().catalog
    summary = catalog_summary(catalog_dir)
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    click.echo(f"{catalog_dir}: {len(summary['instruments'])} instruments")
    for instrument in summary["instruments"]:
        click.echo(f"  {instrument['id']} ({instrument['class']})")
    click.echo(f"{len(summary['bar_types'])} bar types")
    for bars in summary["bar_types"]:
        click.echo(f"  {bars['bar_type']}: {bars['rows']} bars, {bars['start']} .. {bars['end']}")
    staging = catalog_dir / STAGING_DIR
    left = sorted(path.name for path in staging.iterdir()) if staging.is_dir() else []
    if left:
        # Listing never writes: a commit may still be running. Say how to finish a dead one.
        click.echo(
            f"note: {len(left)} staging director{'y' if len(left) == 1 else 'ies'} in {staging} "
            "(a commit running now, or one a killed process left: `grodt catalog recover`)"
        )


@command.command()
@click.option("--catalog", type=click.Path(file_okay=False), default=None, help="Catalog dir.")
@click.option(
    "--only",
    default="sp500,stocks,synthetic",
    show_default=True,
    help="Comma-separated datasets: sp500, stocks, synthetic.",
)
@click.option("--seed", type=int, default=7, show_default=True, help="Synthetic market seed.")
@click.option("--days", type=int, default=60, show_default=True, help="Synthetic trading days.")
@click.option("--if-missing", is_flag=True, help="Skip datasets already in the catalog.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def sample(
    catalog: str | None, only: str, seed: int, days: int, if_missing: bool, as_json: bool
) -> None:
    """Build the sample catalog from package data (no network)."""
    from catalogs.sample import build_sample_catalog
    from catalogs.synthetic import SyntheticParams

    catalog_dir = Path(catalog) if catalog else get_settings().catalog
    datasets = [name.strip() for name in only.split(",") if name.strip()]
    report = build_sample_catalog(
        catalog_dir,
        datasets=datasets,
        seed=seed,
        if_missing=if_missing,
        synthetic=SyntheticParams(days=days),
    )
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    for name, entry in report["datasets"].items():
        rows = sum(entry.get("rows", {}).values())
        detail = f"{rows} bars" if entry["status"] == "built" else "already present"
        click.echo(f"{name}: {entry['status']} ({len(entry['bar_types'])} bar types, {detail})")
    click.echo(f"catalog: {report['catalog']}")


@command.command()
@click.option("--catalog", type=click.Path(file_okay=False), default=None, help="Catalog dir.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def recover(catalog: str | None, as_json: bool) -> None:
    """Finish or undo a commit that a killed process left, and clear stale staging directories.

    Every ingest does this first by itself; a commit whose process is still running is left
    alone.
    """
    from catalogs.journal import recover_catalog

    catalog_dir = Path(catalog) if catalog else get_settings().catalog
    report = recover_catalog(catalog_dir)
    if as_json:
        click.echo(json.dumps([entry.__dict__ for entry in report], indent=2))
        return
    if not report:
        click.echo(f"{catalog_dir}: nothing to recover")
    for entry in report:
        detail = f" ({entry.detail})" if entry.detail else ""
        click.echo(f"{catalog_dir}: staging {entry.staging} {entry.action}{detail}")
