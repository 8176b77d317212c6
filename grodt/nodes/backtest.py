"""Backtest node building and running: a validated :class:`BacktestNodeSpec` → BacktestNode →
reports, equity curve and summary in a run directory.

What a paper node shares with it (strategy, actor, logging and venue configs, catalog queries, the
run directory) lives in :mod:`grodt.nodes.components`, :mod:`grodt.nodes.catalog_data` and
:mod:`grodt.nodes.run_files`.
"""

import gc
import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.backtest.config import BacktestEngineConfig
from nautilus_trader.backtest.config import BacktestRunConfig
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.config import RiskEngineConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalogs.reader import read_closes
from grodt.nodes.backtest_reports import positions_report
from grodt.nodes.backtest_reports import write_account_report
from grodt.nodes.backtest_reports import write_fills_report
from grodt.nodes.backtest_reports import write_orders_report
from grodt.nodes.benchmark import add_benchmark
from grodt.nodes.benchmark import check_benchmark
from grodt.nodes.cache_purge import CachePurgeActor
from grodt.nodes.catalog_data import bar_types_of
from grodt.nodes.catalog_data import check_catalog
from grodt.nodes.catalog_data import data_config
from grodt.nodes.components import importable_actor
from grodt.nodes.components import importable_strategy
from grodt.nodes.components import keep_logging_alive
from grodt.nodes.components import logging_config
from grodt.nodes.components import starting_equity
from grodt.nodes.components import venue_config
from grodt.nodes.console_filter import filtered_console
from grodt.nodes.fill_timing import fill_convention
from grodt.nodes.fill_timing import hold_venue_commands
from grodt.nodes.run_files import write_config_yaml
from grodt.nodes.run_files import write_json
from node_configs.extensions import node_extensions
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import EngineSpec
from node_configs.schema import LoggingSpec
from node_configs.schema import VenueSpec
from research.performance import EquityCurve
from research.performance import equity_curve
from research.performance import normalise_fills
from research.performance import run_summary

__all__ = [
    "BACKTEST_FILE_LOG_LEVEL",
    "ENGINE_SWITCH_INTERVAL_S",
    "BacktestOutcome",
    "backtest_logging",
    "build_run_config",
    "data_span_ns",
    "engine_equity",
    "engine_switch_interval",
    "frozen_heap",
    "risk_engine_config",
    "run_backtest",
]


_PURGE_SPILL = ".purged_reports"
"""Directory of the report rows of purged orders and positions, in the run directory while the
run lasts."""


BACKTEST_FILE_LOG_LEVEL = "WARNING"
"""Level of a backtest's JSON log file unless its config sets ``logging.file_level``: at INFO,
twelve strategies over 500k one-minute bars wrote 1.3 GB and the event loop took 29% longer."""


def backtest_logging(spec: LoggingSpec) -> LoggingSpec:
    """``spec`` with the backtest's file level, :data:`BACKTEST_FILE_LOG_LEVEL`, where the config
    does not set ``file_level`` (``--set logging.file_level=INFO`` asks for more)."""
    if "file_level" in spec.model_fields_set:
        return spec
    return spec.model_copy(update={"file_level": BACKTEST_FILE_LOG_LEVEL})


def risk_engine_config(engine: EngineSpec) -> RiskEngineConfig:
    return RiskEngineConfig(
        bypass=engine.risk_engine.bypass,
        max_order_submit_rate=engine.risk_engine.max_order_submit_rate,
        max_order_modify_rate=engine.risk_engine.max_order_modify_rate,
        max_notional_per_order=dict(engine.risk_engine.max_notional_per_order),
    )


def data_span_ns(spec: BacktestNodeSpec, catalog: Path) -> tuple[int, int] | None:
    """First and last bar timestamps the run will see (from catalog file names, no reads)."""
    cat = ParquetDataCatalog(str(catalog))
    starts, ends = [], []
    for bar_type in bar_types_of(spec.data):
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
        logging=logging_config(backtest_logging(spec.logging), run_dir, quiet),
        risk_engine=risk_engine_config(spec.engine),
        actors=[importable_actor(a) for a in spec.actors] + list(extra_actors or []),
        strategies=[importable_strategy(s) for s in spec.strategies],
        # grodt computes its own statistics (research.performance); Nautilus' analysis costs
        # ~14 s per 1M bars.
        run_analysis=False,
    )
    return BacktestRunConfig(
        venues=[venue_config(v) for v in spec.venues],
        data=[data_config(d, catalog, spec.start, spec.end) for d in spec.data],
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


ENGINE_SWITCH_INTERVAL_S = 0.0005
"""Python's GIL switch interval while a backtest's event loop runs (Python's default: 0.005 s).

The engine thread lets go of the GIL in every numpy call (the risk gate's CVaR) and file write; a
helper thread that is ready to run (the forensics worker encoding its batch) takes it, and the
engine thread gets it back only when that thread blocks or after a whole switch interval. On the
full stack (benchmark variant d, 20k bars, loaded box) the gate's CVaR scenario step took
1.5-1.8 ms of wall time for 0.2 ms of CPU with the default interval, 0.3-0.5 ms with this one."""


@contextmanager
def engine_switch_interval(seconds: float = ENGINE_SWITCH_INTERVAL_S) -> Iterator[None]:
    """Lower Python's GIL switch interval to ``seconds`` (never raise it) for the block."""
    previous = sys.getswitchinterval()
    if previous <= seconds:  # (set(get()) would not even round-trip: whole microseconds)
        yield
        return
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(previous)


@contextmanager
def frozen_heap() -> Iterator[None]:
    """``gc.freeze()`` for the block (the node built, its loop to run), ``gc.unfreeze()`` after.

    The collector's full collections walk every tracked object; after the build the heap holds
    the imported libraries, the components and their models. Frozen, they are skipped, so a
    collection during the loop walks only what the loop allocated: ten full collections took
    ~0.9 s of a 20k-bar full-stack loop unfrozen (the live node does the same,
    :mod:`grodt.nodes.live_tuning`). Nothing is freed or kept differently: reference counting
    still frees what the run drops, and no decision depends on when the collector runs."""
    if gc.isenabled() and gc.get_freeze_count() == 0:
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    else:  # the collector is off, or the caller froze the heap itself: leave it to them
        yield


def run_backtest(
    spec: BacktestNodeSpec,
    catalog: Path,
    run_dir: Path,
    document: dict[str, Any] | None = None,
    progress: bool = False,
    quiet: bool = False,
    purge_cache: bool = True,
) -> BacktestOutcome:
    """Run a node spec on a catalog and write its reports into ``run_dir``.

    Writes ``config.yaml`` (resolved, secret values redacted), ``summary.json``, ``fills.csv``,
    ``orders.csv``, ``positions.csv``, ``account_<VENUE>.csv``, ``equity.parquet`` (every bar)
    and ``equity_daily.csv``, and engine logs under ``logs/``.

    With ``purge_cache`` (the default), closed orders and positions leave the engine's cache an
    hour of simulated time after they close, their report rows spilled to the run directory
    first (:mod:`grodt.nodes.cache_purge`): per-order cost and memory stay flat over long runs,
    and the reports are the same as without it.
    """
    catalog = Path(catalog)
    run_dir.mkdir(parents=True, exist_ok=True)
    check_catalog(spec.data, catalog, spec.name, start=spec.start, end=spec.end)
    if spec.benchmark:
        check_benchmark(catalog, spec.benchmark)
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
    spill_dir = run_dir / _PURGE_SPILL
    if purge_cache:
        extra_actors.append(
            ImportableActorConfig(
                actor_path="grodt.nodes.cache_purge:CachePurgeActor",
                config_path="grodt.nodes.cache_purge:CachePurgeActorConfig",
                config={"spill_dir": str(spill_dir)},
            ),
        )
    extensions = node_extensions(spec, run_dir)
    for extension in extensions:
        extra_actors.extend(extension.actors())
    run_config = build_run_config(spec, catalog, run_dir, quiet, extra_actors)
    write_config_yaml(run_dir, document or spec.model_dump(mode="json"))
    node = BacktestNode(configs=[run_config])
    # Nautilus' "handler was called when not overridden" warnings stay in the log file only.
    with filtered_console(enabled=not quiet and spec.logging.level != "OFF"):
        try:
            node.build()
            engine = node.get_engine(run_config.id)
            keep_logging_alive(engine.kernel)
            for venue_spec in spec.venues:
                hold_venue_commands(engine.kernel, Venue(venue_spec.name))
            for extension in extensions:
                extension.install(engine.kernel)
            started = time.perf_counter()
            with engine_switch_interval(), frozen_heap():
                node.run()
            wall_seconds = time.perf_counter() - started
            extension_figures = {ext.name: ext.finish(engine.kernel) for ext in extensions}
            outcome = _collect(spec, catalog, run_dir, engine, span, spill_dir)
            outcome.summary["extensions"] = extension_figures
        finally:
            node.dispose()
            shutil.rmtree(spill_dir, ignore_errors=True)
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
    spill_dir: Path,
) -> BacktestOutcome:
    trader = engine.trader
    cache = engine.cache
    reports: dict[str, Path] = {}
    purger = next((a for a in trader.actors() if isinstance(a, CachePurgeActor)), None)

    # One report at a time, each written and then dropped but for what the summary reads (the
    # fills' FILL_SUMMARY_COLUMNS, the positions, the order count). With the purge, the orders,
    # fills and account reports are streamed to CSV from the spill in chunks: the memory after
    # the event loop stays that of a chunk, not of every order the run sent.
    for name in ("fills", "orders", "positions", *(f"account_{v.name}" for v in spec.venues)):
        reports[name] = run_dir / f"{name}.csv"
    if purger is not None:
        order_count = write_orders_report(cache, spill_dir, reports["orders"])
        fills = normalise_fills(write_fills_report(cache, spill_dir, reports["fills"]))
        positions = positions_report(cache, spill_dir)
        for venue_spec in spec.venues:
            venue = Venue(venue_spec.name)
            write_account_report(cache, spill_dir, venue, reports[f"account_{venue.value}"])
    else:
        report = trader.generate_orders_report()
        report.to_csv(reports["orders"])
        order_count = len(report)
        report = trader.generate_fills_report()
        report.to_csv(reports["fills"])
        fills = normalise_fills(report)
        del report
        positions = trader.generate_positions_report()
        for venue_spec in spec.venues:
            venue = Venue(venue_spec.name)
            trader.generate_account_report(venue).to_csv(reports[f"account_{venue.value}"])
    positions.to_csv(reports["positions"])

    bar_types = bar_types_of(spec.data)
    start_ns, end_ns = span if span else (None, None)
    closes = read_closes(catalog, bar_types, start_ns, end_ns)
    multipliers = {
        str(instrument.id): float(instrument.multiplier) for instrument in cache.instruments()
    }
    curve = equity_curve(fills, closes, starting_equity(spec.venues), multipliers)
    summary = run_summary(curve, fills, positions, spec.report.periods_per_year, multipliers)
    if spec.benchmark:
        summary["benchmark"] = add_benchmark(
            curve, catalog, spec.benchmark, summary["periods_per_year"]
        )
    summary["name"] = spec.name
    summary["fill_at"] = fill_convention(spec.venues)
    summary["orders"] = order_count
    summary["engine_final_equity"] = engine_equity(engine, spec.venues)
    summary["bars_processed"] = int(engine.iteration)
    if purger is not None:
        summary["cache_purged"] = {
            "orders": purger.purged_orders,
            "positions": purger.purged_positions,
            "account_states": purger.purged_account_states,
            "order_lists": purger.purged_order_lists,
        }
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
