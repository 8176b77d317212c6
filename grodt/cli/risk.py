"""``grodt risk``: portfolio risk tools.

- ``grodt risk hrp --prices CSV``: HRP/HERC target weights of a wide price table;
- ``grodt risk check CONFIG``: validate a ``risk:`` section (a node config or a component file)
  and print the effective limits;
- ``grodt risk audit RUN_DIR``: check a finished run against its limits at every bar.
"""

import json
from pathlib import Path
from typing import Any

import click


@click.group(name="risk")
def command() -> None:
    """Portfolio risk: HRP target weights and the risk gate's limits."""


def read_price_table(path: Path) -> Any:
    """Read a wide price CSV: first column dates, one column per ticker, prices > 0.

    Empty cells are missing prices (a ticker that starts late has leading empty cells). Rows are
    sorted by date. Errors name the file, the 1-based data row and the column.
    """
    import numpy as np
    import pandas as pd

    from grodt.core.errors import DataValidationError

    source = str(path)
    try:
        raw = pd.read_csv(path, index_col=0, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataValidationError(f"cannot read CSV: {e}", source, check="csv") from None
    if raw.shape[1] < 2:
        raise DataValidationError(
            f"need at least two ticker columns after the date column, found {raw.shape[1]}",
            source,
            check="columns",
        )
    duplicated = raw.columns[raw.columns.duplicated()].tolist()
    if duplicated:
        raise DataValidationError(
            "duplicate ticker column",
            source,
            column=duplicated[0],
            check="columns",
        )
    dates = pd.to_datetime(pd.Series(raw.index), errors="coerce", utc=True)
    if dates.isna().any():
        row = int(np.flatnonzero(dates.isna().to_numpy())[0])
        raise DataValidationError(
            f"date {raw.index[row]!r} is not a date",
            source,
            row=row + 1,
            column=str(raw.index.name or "date"),
            check="date",
        )
    if dates.duplicated().any():
        row = int(np.flatnonzero(dates.duplicated().to_numpy())[0])
        raise DataValidationError(
            f"date {raw.index[row]!r} appears twice",
            source,
            row=row + 1,
            column=str(raw.index.name or "date"),
            check="duplicate_date",
        )
    prices = pd.DataFrame(index=pd.DatetimeIndex(dates, name="date"))
    for column in raw.columns:
        text = raw[column].str.strip()
        values = pd.to_numeric(text.where(text != "", None), errors="coerce")
        bad = values.isna().to_numpy() & (text != "").to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise DataValidationError(
                f"{text.iloc[row]!r} is not a number",
                source,
                row=row + 1,
                column=str(column),
                check="numeric",
            )
        non_positive = (values <= 0).to_numpy()
        if non_positive.any():
            row = int(np.flatnonzero(non_positive)[0])
            raise DataValidationError(
                f"price {values.iloc[row]} is not positive",
                source,
                row=row + 1,
                column=str(column),
                check="positive",
            )
        if values.isna().all():
            raise DataValidationError(
                "no prices",
                source,
                column=str(column),
                check="empty",
            )
        prices[str(column)] = values.to_numpy(dtype=float)
    return prices.sort_index()


def compute_hrp(
    prices_path: Path,
    method: str,
    codependence: str,
    linkage: str,
    risk_measure: str,
    returns_kind: str,
    min_periods: int,
) -> dict[str, Any]:
    """Weights and context for ``grodt risk hrp``."""
    from grodt.core.errors import DataValidationError
    from grodt.core.errors import GrodtError
    from risk_engine.hrp import HierarchicalRiskParity
    from risk_engine.hrp import returns_from_prices

    prices = read_price_table(prices_path)
    returns = returns_from_prices(prices, returns_kind)
    counts = returns.notna().sum()
    for column, count in counts.items():
        if count < min_periods:
            raise DataValidationError(
                f"only {count} returns, fewer than --min-periods {min_periods}",
                str(prices_path),
                column=str(column),
                check="history",
            )
    estimator = HierarchicalRiskParity(
        method=method,
        codependence=codependence,
        linkage=linkage,
        risk_measure=risk_measure,
        min_periods=min_periods,
    )
    try:
        estimator.fit(returns)
    except GrodtError as e:
        raise GrodtError(f"{prices_path}: {e}") from None
    weights = estimator.weights_series()
    return {
        "weights": {ticker: float(w) for ticker, w in weights.items()},
        "order": [estimator.assets_[k] for k in estimator.order_],
        "periods": len(returns),
        "start": str(prices.index[0].date()),
        "end": str(prices.index[-1].date()),
        "late_starters": [str(c) for c in prices.columns if bool(prices[c].isna().iloc[0])],
    }


def load_risk_file(path: Path) -> Any:
    """The validated risk section of a node config (``risk:``) or of a risk component file."""
    from grodt.core.errors import ConfigError
    from node_configs.loader import load_yaml_document
    from risk_engine.config import parse_risk_config

    document = load_yaml_document(path)
    section = document.get("risk", document)
    if section is None:
        raise ConfigError(f"{path}: the risk section is empty (null)")
    try:
        return parse_risk_config(section)
    except ConfigError as e:
        raise ConfigError(f"{path}: {e}") from None


@command.command(name="hrp")
@click.option(
    "--prices",
    "prices_path",
    required=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Wide CSV: first column dates, one column of prices per ticker.",
)
@click.option(
    "--method",
    type=click.Choice(["textbook", "hrp", "herc"]),
    default="textbook",
    show_default=True,
    help="textbook: López de Prado (2016) exactly; hrp/herc: riskfolio-lib.",
)
@click.option("--codependence", default="pearson", show_default=True, help="hrp/herc only.")
@click.option("--linkage", default="single", show_default=True, help="hrp/herc only.")
@click.option(
    "--risk-measure",
    default="MV",
    show_default=True,
    help="riskfolio-lib risk measure (hrp/herc only).",
)
@click.option(
    "--returns",
    "returns_kind",
    type=click.Choice(["simple", "log"]),
    default="simple",
    show_default=True,
)
@click.option(
    "--min-periods",
    type=click.IntRange(min=2),
    default=20,
    show_default=True,
    help="Returns each ticker (and ticker pair) needs.",
)
@click.option("--json", "as_json", is_flag=True, help="Print {ticker: weight} as JSON.")
def hrp_command(
    prices_path: Path,
    method: str,
    codependence: str,
    linkage: str,
    risk_measure: str,
    returns_kind: str,
    min_periods: int,
    as_json: bool,
) -> None:
    """HRP target weights of the tickers in a price table.

    Tickers that start late (leading empty cells) are handled with pairwise covariance and
    correlation: each pair uses the dates where both have returns.
    """
    from grodt.core.errors import ConfigError
    from risk_engine.config import HrpConfig

    if method != "textbook":
        try:
            HrpConfig(
                method=method,
                codependence=codependence,
                linkage=linkage,
                risk_measure=risk_measure,
            )
        except ValueError as e:
            raise ConfigError(f"invalid HRP options: {e}") from None
    elif (codependence, linkage, risk_measure) != ("pearson", "single", "MV"):
        raise ConfigError(
            "--method textbook is pearson / single linkage / inverse variance by definition; "
            "use --method hrp for other options",
        )
    result = compute_hrp(
        prices_path,
        method,
        codependence,
        linkage,
        risk_measure,
        returns_kind,
        min_periods,
    )
    if as_json:
        click.echo(json.dumps(result["weights"]))
        return
    click.echo(
        f"{method} weights from {result['periods']} {returns_kind} returns, "
        f"{result['start']} → {result['end']}",
    )
    if result["late_starters"]:
        click.echo(f"late starters (pairwise statistics): {', '.join(result['late_starters'])}")
    width = max(len(t) for t in result["weights"])
    for ticker, weight in sorted(result["weights"].items(), key=lambda kv: -kv[1]):
        click.echo(f"  {ticker:<{width}}  {weight * 100:7.3f}%")
    click.echo(f"cluster order: {' '.join(result['order'])}")


@command.command(name="audit")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--catalog",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The catalog the run read (default: the config's `catalog`, else GRODT_CATALOG).",
)
@click.option(
    "--limits",
    "limits_path",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="Audit against this risk file (a node config or component) instead of the run's own.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option(
    "--breaches",
    "breaches_csv",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write every breach (bar, limit, scope, value, cap, cause) to this CSV.",
)
def audit_command(
    run_dir: Path,
    catalog: Path | None,
    limits_path: Path | None,
    as_json: bool,
    breaches_csv: Path | None,
) -> None:
    """Check a finished run against its risk limits at every bar, from its reports.

    Breaches are classified: `order` (the gate approved a fill that breached: expected 0),
    `reducing` (a closing or reduce-only order, which always passes), `resting` (an order
    approved earlier filled after prices moved), `ungated`, and `drift` (prices moved, no fill
    made it worse). Exits with status 1 if any breach is order-caused.
    """
    import sys

    import yaml

    from grodt.core.settings import get_settings
    from risk_engine.audit import audit_run

    if catalog is None:
        document = (
            yaml.safe_load((run_dir / "config.yaml").read_text())
            if (run_dir / "config.yaml").is_file()
            else {}
        )
        configured = (document or {}).get("catalog")
        catalog = Path(configured) if configured else get_settings().catalog
    limits = load_risk_file(limits_path) if limits_path is not None else None
    report = audit_run(run_dir, catalog, limits)
    summary = report.summary()
    if breaches_csv is not None:
        report.breaches.to_csv(breaches_csv, index=False)
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(
            f"{run_dir}: {summary['bars']:,} bars audited, "
            f"{summary['order_caused_breaches']} order-caused breaches",
        )
        for limit, causes in summary["breaches_by_limit"].items():
            counts = ", ".join(f"{cause} {n:,}" for cause, n in sorted(causes.items()))
            click.echo(
                f"  {limit:<18} {counts} (largest excess {summary['max_excess'][limit]:.4%})",
            )
    if summary["order_caused_breaches"]:
        sys.exit(1)


@command.command(name="check")
@click.argument("config", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the effective section as JSON.")
def check_command(config: Path, as_json: bool) -> None:
    """Validate the risk section of CONFIG (a node config with `risk:`, or a risk component
    file) and print the effective limits, defaults included."""
    parsed = load_risk_file(config)
    effective = parsed.model_dump(mode="json")
    if as_json:
        click.echo(json.dumps(effective))
        return
    click.echo(f"{config}: risk section OK")
    click.echo(json.dumps(effective, indent=2))
