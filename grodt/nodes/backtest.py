"""Backtest node building and running: a validated :class:`BacktestNodeSpec` → BacktestNode →
reports, equity curve and summary in a run directory."""

import json
import math
import secrets
import time
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.config import BacktestVenueConfig
from nautilus_trader.backtest.config import FillModelConfig
from nautilus_trader.backtest.config import ImportableFeeModelConfig
from nautilus_trader.backtest.config import ImportableFillModelConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.config import ImportableStrategyConfig
from nautilus_trader.config import RiskEngineConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalogs.reader import read_closes
from grodt.core.errors import ConfigError
from node_configs.extensions import node_extensions
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import ComponentSpec
from node_configs.schema import DataSpec
from node_configs.schema import EngineSpec
from node_configs.schema import LoggingSpec
from node_configs.schema import VenueSpec
from research.performance import EquityCurve
from research.performance import equity_curve
from research.performance import normalise_fills
from research.performance import run_summary

BAR_DATA_CLS = "nautilus_trader.model.data:Bar"
_FEE_MODELS = {
    "maker_taker": "MakerTakerFeeModel",
    "fixed": "FixedFeeModel",
    "per_contract": "PerContractFeeModel",
}


def new_run_dir(runs_dir: Path, name: str) -> Path:
    """A fresh directory ``<runs_dir>/<name>/<UTC timestamp>-<random>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = Path(runs_dir) / name / f"{stamp}-{secrets.token_hex(3)}"
    path.mkdir(parents=True, exist_ok=False)
    return path


def importable_strategy(component: ComponentSpec) -> ImportableStrategyConfig:
    return ImportableStrategyConfig(
        strategy_path=component.path,
        config_path=component.resolved_config_path,
        config=dict(component.config),
    )


def importable_actor(component: ComponentSpec) -> ImportableActorConfig:
    return ImportableActorConfig(
        actor_path=component.path,
        config_path=component.resolved_config_path,
        config=dict(component.config),
    )


def risk_engine_config(engine: EngineSpec) -> RiskEngineConfig:
    return RiskEngineConfig(
        bypass=engine.risk_engine.bypass,
        max_order_submit_rate=engine.risk_engine.max_order_submit_rate,
        max_order_modify_rate=engine.risk_engine.max_order_modify_rate,
        max_notional_per_order=dict(engine.risk_engine.max_notional_per_order),
    )


def logging_config(spec: LoggingSpec, run_dir: Path | None, quiet: bool) -> LoggingConfig:
    """Console logging at ``spec.level`` (OFF when ``quiet``), JSON file logs in the run dir."""
    file_level = None if spec.file_level == "OFF" or run_dir is None else spec.file_level
    return LoggingConfig(
        log_level="OFF" if quiet else spec.level,
        log_level_file=file_level,
        log_directory=str(run_dir / "logs") if file_level else None,
        log_file_format="JSON" if file_level else None,
        log_colors=False,
        # Nautilus' own engine cannot price-check MARKET orders on bar data and warns on every
        # one; the portfolio risk gate does those checks. Keep the warning in the file log only.
        log_component_levels={"RiskEngine": "ERROR"} if not quiet else None,
    )


def venue_config(venue: VenueSpec) -> BacktestVenueConfig:
    fee_model = None
    if venue.fee_model.kind != "maker_taker" or venue.fee_model.commission is not None:
        cls_name = _FEE_MODELS[venue.fee_model.kind]
        fee_model = ImportableFeeModelConfig(
            fee_model_path=f"nautilus_trader.backtest.models:{cls_name}",
            config_path=f"nautilus_trader.backtest.config:{cls_name}Config",
            config={"commission": venue.fee_model.commission} if venue.fee_model.commission else {},
        )
    fill = venue.fill_model
    return BacktestVenueConfig(
        name=venue.name,
        oms_type=venue.oms_type,
        account_type=venue.account_type,
        base_currency=venue.base_currency,
        starting_balances=list(venue.starting_balances),
        default_leverage=venue.default_leverage,
        leverages=dict(venue.leverages) if venue.leverages else None,
        fill_model=ImportableFillModelConfig(
            fill_model_path="nautilus_trader.backtest.models:FillModel",
            config_path="nautilus_trader.backtest.config:FillModelConfig",
            config=FillModelConfig(
                prob_fill_on_limit=fill.prob_fill_on_limit,
                prob_fill_on_stop=fill.prob_fill_on_stop,
                prob_slippage=fill.prob_slippage,
                random_seed=fill.random_seed,
            ).dict(),
        ),
        fee_model=fee_model,
        bar_adaptive_high_low_ordering=venue.bar_adaptive_high_low_ordering,
        reject_stop_orders=venue.reject_stop_orders,
        support_contingent_orders=venue.support_contingent_orders,
        use_reduce_only=venue.use_reduce_only,
    )


def data_config(data: DataSpec, catalog: Path, spec: BacktestNodeSpec) -> BacktestDataConfig:
    return BacktestDataConfig(
        catalog_path=str(catalog),
        data_cls=data.data_cls,
        bar_types=list(data.bar_types) if data.bar_types else None,
        instrument_ids=list(data.instrument_ids) if data.instrument_ids else None,
        start_time=data.start or spec.start,
        end_time=data.end or spec.end,
        client_id=data.client_id,
        metadata=dict(data.metadata) if data.metadata else None,
    )


def bar_types_of(spec: BacktestNodeSpec) -> list[str]:
    """Every bar type the node reads from the catalog, in config order."""
    found: list[str] = []
    for data in spec.data:
        if data.data_cls == BAR_DATA_CLS and data.bar_types:
            found.extend(b for b in data.bar_types if b not in found)
    return found


def data_span_ns(spec: BacktestNodeSpec, catalog: Path) -> tuple[int, int] | None:
    """First and last bar timestamps the run will see (from catalog file names, no reads)."""
    cat = ParquetDataCatalog(str(catalog))
    starts, ends = [], []
    for bar_type in bar_types_of(spec):
        intervals = cat.get_intervals(Bar, bar_type)
        if intervals:
            starts.append(intervals[0][0])
            ends.append(intervals[-1][1])
    if not starts:
        return None
    start, end = min(starts), max(ends)
    if spec.start:
        start = max(start, pd.Timestamp(spec.start, tz="UTC").value)
    if spec.end:
        end = min(end, pd.Timestamp(spec.end, tz="UTC").value)
    return start, end


def check_catalog(spec: BacktestNodeSpec, catalog: Path, source: str) -> None:
    """Fail before building the node if the catalog lacks a configured bar type."""
    if not catalog.is_dir():
        raise ConfigError(
            f"{source}: catalog {catalog} does not exist "
            "(build the sample with `grodt catalog sample --catalog DIR`)",
        )
    cat = ParquetDataCatalog(str(catalog))
    for index, data in enumerate(spec.data):
        for bar_type in data.bar_types or []:
            if data.data_cls == BAR_DATA_CLS and not cat.get_intervals(Bar, bar_type):
                raise ConfigError(
                    f"{source}: data[{index}].bar_types: no bars for {bar_type!r} in {catalog}",
                )


def build_run_config(
    spec: BacktestNodeSpec,
    catalog: Path,
    run_dir: Path | None = None,
    quiet: bool = False,
    extra_actors: list[ImportableActorConfig] | None = None,
) -> BacktestRunConfig:
    """Translate a node spec into a Nautilus ``BacktestRunConfig``."""
    engine = BacktestEngineConfig(
        trader_id=spec.engine.trader_id,
        logging=logging_config(spec.logging, run_dir, quiet),
        risk_engine=risk_engine_config(spec.engine),
        actors=[importable_actor(a) for a in spec.actors] + list(extra_actors or []),
        strategies=[importable_strategy(s) for s in spec.strategies],
        # grodt computes its own statistics (research.performance); Nautilus' analysis costs
        # ~14 s per 1M bars.
        run_analysis=False,
    )
    return BacktestRunConfig(
        venues=[venue_config(v) for v in spec.venues],
        data=[data_config(d, catalog, spec) for d in spec.data],
        engine=engine,
        chunk_size=spec.chunk_size,
        start=spec.start,
        end=spec.end,
        dispose_on_completion=False,
        raise_exception=True,
    )


@dataclass
class BacktestOutcome:
    """What a backtest run produced."""

    run_dir: Path
    summary: dict[str, Any]
    reports: dict[str, Path] = field(default_factory=dict)
    fills: pd.DataFrame = field(default_factory=pd.DataFrame)
    curve: EquityCurve | None = None


def engine_equity(engine: BacktestEngine, venues: list[VenueSpec]) -> float:
    """Equity as the engine sees it: balances plus open positions (cash: market value; margin:
    unrealised PnL), summed over venues, in each venue's base currency."""
    total = 0.0
    portfolio = engine.portfolio
    for venue_spec in venues:
        venue = Venue(venue_spec.name)
        account = portfolio.account(venue)
        if account is None:
            continue
        total += sum(float(m.as_double()) for m in account.balances_total().values())
        if account.type == AccountType.CASH:
            total += sum(float(m.as_double()) for m in portfolio.net_exposures(venue).values())
        else:
            total += sum(float(m.as_double()) for m in portfolio.unrealized_pnls(venue).values())
    return total


def _starting_equity(venues: list[VenueSpec]) -> float:
    return sum(
        float(balance.split()[0].replace("_", ""))
        for v in venues
        for balance in v.starting_balances
    )


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return str(value)


def write_json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(json_safe(payload), indent=2, default=_json_default) + "\n")


def json_safe(value: Any) -> Any:
    """JSON has no NaN/inf: write them as null (strict parsers reject the bare tokens)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def run_backtest(
    spec: BacktestNodeSpec,
    catalog: Path,
    run_dir: Path,
    document: dict[str, Any] | None = None,
    progress: bool = False,
    quiet: bool = False,
) -> BacktestOutcome:
    """Run a node spec on a catalog and write its reports into ``run_dir``.

    Writes ``config.yaml`` (resolved), ``summary.json``, ``fills.csv``, ``orders.csv``,
    ``positions.csv``, ``account_<VENUE>.csv``, ``equity.parquet`` (every bar) and
    ``equity_daily.csv``, and engine logs under ``logs/``.
    """
    catalog = Path(catalog)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_catalog(spec, catalog, spec.name)
    span = data_span_ns(spec, catalog)
    extra_actors = []
    if progress and span is not None:
        extra_actors.append(
            ImportableActorConfig(
                actor_path="grodt.nodes.progress:ProgressActor",
                config_path="grodt.nodes.progress:ProgressActorConfig",
                config={"start_ns": span[0], "end_ns": span[1], "description": spec.name},
            ),
        )
    extensions = node_extensions(spec, run_dir)
    for extension in extensions:
        extra_actors.extend(extension.actors())
    run_config = build_run_config(spec, catalog, run_dir, quiet, extra_actors)
    (run_dir / "config.yaml").write_text(
        yaml.safe_dump(document or spec.model_dump(mode="json"), sort_keys=False),
    )
    node = BacktestNode(configs=[run_config])
    try:
        node.build()
        engine = node.get_engine(run_config.id)
        for extension in extensions:
            extension.install(engine.kernel)
        started = time.perf_counter()
        node.run()
        wall_seconds = time.perf_counter() - started
        extension_figures = {ext.name: ext.finish(engine.kernel) for ext in extensions}
        outcome = _collect(spec, catalog, run_dir, engine, span)
        outcome.summary["extensions"] = extension_figures
    finally:
        node.dispose()
    outcome.summary["wall_seconds"] = wall_seconds
    bars = outcome.summary.get("bars_processed", 0)
    outcome.summary["bars_per_second"] = bars / wall_seconds if wall_seconds > 0 else None
    write_json(run_dir / "summary.json", outcome.summary)
    return outcome


def _collect(
    spec: BacktestNodeSpec,
    catalog: Path,
    run_dir: Path,
    engine: BacktestEngine,
    span: tuple[int, int] | None,
) -> BacktestOutcome:
    trader = engine.trader
    reports: dict[str, Path] = {}
    fills_report = trader.generate_fills_report()
    orders_report = trader.generate_orders_report()
    positions_report = trader.generate_positions_report()
    for name, frame in (
        ("fills", fills_report),
        ("orders", orders_report),
        ("positions", positions_report),
    ):
        path = run_dir / f"{name}.csv"
        frame.to_csv(path)
        reports[name] = path
    for venue_spec in spec.venues:
        path = run_dir / f"account_{venue_spec.name}.csv"
        trader.generate_account_report(Venue(venue_spec.name)).to_csv(path)
        reports[f"account_{venue_spec.name}"] = path

    fills = normalise_fills(fills_report)
    bar_types = bar_types_of(spec)
    start_ns, end_ns = span if span else (None, None)
    closes = read_closes(catalog, bar_types, start_ns, end_ns)
    multipliers = {
        str(instrument.id): float(instrument.multiplier)
        for instrument in engine.cache.instruments()
    }
    curve = equity_curve(fills, closes, _starting_equity(spec.venues), multipliers)
    summary = run_summary(curve, fills, positions_report, spec.report.periods_per_year, multipliers)
    summary["name"] = spec.name
    summary["orders"] = len(orders_report)
    summary["engine_final_equity"] = engine_equity(engine, spec.venues)
    summary["bars_processed"] = int(engine.iteration)
    summary["run_dir"] = str(run_dir)

    curve.frame.to_parquet(run_dir / "equity.parquet")
    reports["equity"] = run_dir / "equity.parquet"
    daily = curve.frame.groupby(curve.frame.index.normalize()).last()
    daily.to_csv(run_dir / "equity_daily.csv", index_label="date")
    reports["equity_daily"] = run_dir / "equity_daily.csv"
    summary["reports"] = {k: str(v) for k, v in reports.items()}
    return BacktestOutcome(
        run_dir=run_dir, summary=summary, reports=reports, fills=fills, curve=curve
    )
