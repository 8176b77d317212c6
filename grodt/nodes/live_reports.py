"""What a live run leaves in its run directory: the trader's reports and, for a paper node, the
backtest's equity curve and performance summary rebuilt from the paper fills."""

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.model.identifiers import Venue

from catalogs.reader import read_closes
from grodt.nodes.catalog_data import bar_types_of
from grodt.nodes.components import starting_equity
from node_configs.live_schema import LiveNodeSpec
from research.performance import equity_curve
from research.performance import normalise_fills
from research.performance import run_summary

__all__ = ["LiveOutcome", "paper_performance", "write_reports"]


@dataclass
class LiveOutcome:
    """What a live run produced: ``summary`` (also ``summary.json``), report paths by name, and
    the trader's orders, fills and positions reports."""

    run_dir: Path
    summary: dict[str, Any]
    reports: dict[str, Path] = field(default_factory=dict)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    fills: pd.DataFrame = field(default_factory=pd.DataFrame)
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)


def write_reports(kernel: Any, run_dir: Path, order_market_ts: dict[str, int]) -> LiveOutcome:
    """Write ``fills.csv``, ``orders.csv`` (with ``ts_market`` when ``order_market_ts`` has the
    replay time of orders, UNIX ns), ``positions.csv`` and ``account_<VENUE>.csv``."""
    trader = kernel.trader
    reports: dict[str, Path] = {}
    orders = trader.generate_orders_report()
    if order_market_ts and not orders.empty:
        orders = orders.copy()
        orders["ts_market"] = pd.array(
            [order_market_ts.get(str(cid)) for cid in orders.index.astype(str)],
            dtype="Int64",
        )
    fills = trader.generate_fills_report()
    positions = trader.generate_positions_report()
    for name, frame in (("fills", fills), ("orders", orders), ("positions", positions)):
        path = run_dir / f"{name}.csv"
        frame.to_csv(path)
        reports[name] = path
    for account in kernel.cache.accounts():
        venue = account.id.get_issuer()
        path = run_dir / f"account_{venue}.csv"
        trader.generate_account_report(Venue(venue)).to_csv(path)
        reports[f"account_{venue}"] = path
    return LiveOutcome(
        run_dir=run_dir,
        summary={"orders": len(orders), "fills": len(fills)},
        reports=reports,
        orders=orders,
        fills=fills,
        positions=positions,
    )


def paper_performance(
    spec: LiveNodeSpec,
    catalog: Path,
    kernel: Any,
    outcome: LiveOutcome,
    replayed_until: int | None,
) -> dict[str, Any]:
    """The backtest's equity curve (``equity.parquet``, added to ``outcome.reports``) and summary
    figures, rebuilt from the paper fills on the replayed closes up to ``replayed_until`` (the
    replay clock at stop, UNIX ns; None: the whole replay span)."""
    replay = spec.replay
    assert replay is not None
    bar_types = bar_types_of(replay.data)
    if not bar_types:
        return {}
    start_ns = pd.Timestamp(replay.start, tz="UTC").value if replay.start else None
    end_ns = pd.Timestamp(replay.end, tz="UTC").value if replay.end else None
    closes = read_closes(catalog, bar_types, start_ns, end_ns)
    if replayed_until:
        closes = closes.loc[: pd.Timestamp(replayed_until, tz="UTC")]
    if closes.empty:
        return {}
    multipliers = {str(i.id): float(i.multiplier) for i in kernel.cache.instruments()}
    starting = starting_equity([sandbox.venue for sandbox in spec.sandboxes])
    fills = normalise_fills(outcome.fills)
    curve = equity_curve(fills, closes, starting, multipliers)
    summary = run_summary(
        curve,
        fills,
        outcome.positions,
        spec.report.periods_per_year,
        multipliers,
    )
    curve.frame.to_parquet(outcome.run_dir / "equity.parquet")
    outcome.reports["equity"] = outcome.run_dir / "equity.parquet"
    return summary
