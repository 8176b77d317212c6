"""Parity check: one config in a BacktestNode and in the lockstep paper TradingNode.

The backtest side is :func:`grodt.nodes.backtest.run_backtest` (the real runner, extensions
included); the live side is :class:`grodt.nodes.live.LiveNode` with a lockstep replay of the same
catalog data into sandbox copies of the same venues, running the same component configs and
framework sections. Both write Nautilus' own orders/fills/positions reports to CSV; the check
compares those files, read back as text, so both sides go through the same serialisation.

What is compared
----------------
orders
    normalised client order id, strategy, instrument, venue order id, position id, type, side,
    quantity, prices, time in force, flags, filled quantity, average price, slippage,
    commissions, status, contingency, tags and the decision's market time (the simulated time in
    the backtest; the replay clock at ``OrderInitialized`` in the paper node).
fills
    normalised client order id, venue order id, trade id, position id, side, type, quantity,
    price, commission, liquidity side and ``ts_event`` (venue time, the bar's time in both nodes).
positions (final state, snapshots of closed NETTING positions included)
    id, strategy, instrument, opening/closing orders, entry, side, quantity, peak quantity,
    open/close times, average prices, commissions, realised return and PnL.

Client order ids embed the node clock's date-time (``O-YYYYMMDD-HHMMSS-<trader>-<strategy>-
<count>``); the paper node's clock is the wall clock, so that stamp is removed before comparing
(trader tag, strategy tag and sequence must match) and the market time is compared on its own.
Event ids (UUIDs), ``init_id``, the random suffix of position snapshot ids and wall-clock
``ts_init`` of orders are not compared.
"""

import re
import time
from collections import Counter
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd

from grodt.core.errors import GrodtError
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import backtest_twin
from node_configs.live_schema import paper_twin
from node_configs.schema import BacktestNodeSpec

_CLIENT_ORDER_ID = re.compile(r"^O-\d{8}-\d{6}-(?P<rest>.+)$")
_UUID_SUFFIX = re.compile(r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")

ORDER_FIELDS = (
    "strategy_id",
    "instrument_id",
    "venue_order_id",
    "position_id",
    "type",
    "side",
    "quantity",
    "price",
    "trigger_price",
    "limit_offset",
    "trailing_offset",
    "time_in_force",
    "expire_time",
    "is_reduce_only",
    "is_quote_quantity",
    "filled_qty",
    "liquidity_side",
    "avg_px",
    "slippage",
    "commissions",
    "emulation_trigger",
    "status",
    "contingency_type",
    "linked_order_ids",
    "parent_order_id",
    "exec_algorithm_id",
    "tags",
    "ts_market",
)
FILL_FIELDS = (
    "strategy_id",
    "instrument_id",
    "venue_order_id",
    "trade_id",
    "position_id",
    "order_side",
    "order_type",
    "last_qty",
    "last_px",
    "currency",
    "commission",
    "liquidity_side",
    "ts_event",
)
POSITION_FIELDS = (
    "position_id",
    "strategy_id",
    "instrument_id",
    "opening_order_id",
    "closing_order_id",
    "entry",
    "side",
    "quantity",
    "peak_qty",
    "ts_opened",
    "ts_closed",
    "avg_px_open",
    "avg_px_close",
    "commissions",
    "realized_return",
    "realized_pnl",
    "is_snapshot",
)
_KIND_ORDER = {"order": 0, "fill": 1, "position": 2}


def normalise_client_order_id(value: str) -> str:
    """``O-20240102-093000-001-000-7`` → ``O-*-001-000-7`` (other formats unchanged)."""
    match = _CLIENT_ORDER_ID.match(value)
    return f"O-*-{match.group('rest')}" if match else value


def _normalise_ids(value: str) -> str:
    """Normalise every client order id inside a cell (lists of ids included)."""
    return re.sub(r"O-\d{8}-\d{6}-", "O-*-", value)


def _ts_text(value: str) -> str:
    """Nanoseconds or a timestamp string → ISO UTC (so both report styles compare)."""
    if value in ("", "nan", "None", "NaT"):
        return ""
    if value.isdigit():
        return pd.Timestamp(int(value), tz="UTC").isoformat()
    return pd.Timestamp(value).tz_convert("UTC").isoformat()


@dataclass
class Table:
    """One side's normalised report: rows in comparison order, each a dict of text values."""

    rows: list[dict[str, str]]
    keys: list[str]
    times: list[str]
    raw_ids: list[str]


def _read_csv(path: Path) -> pd.DataFrame:
    if not path.exists() or path.stat().st_size == 0:
        return pd.DataFrame()
    try:
        return pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()


def orders_table(frame: pd.DataFrame, market_time_column: str) -> Table:
    """Orders in decision order; ``market_time_column`` holds the decision's market time."""
    if frame.empty:
        return Table([], [], [], [])
    frame = frame.copy()
    frame["ts_market"] = [_ts_text(v) for v in frame[market_time_column]]
    frame["_key"] = frame["client_order_id"].map(normalise_client_order_id)
    frame["_seq"] = frame["_key"].str.extract(r"-(\d+)$", expand=False).fillna("0").astype(int)
    frame = frame.sort_values(["ts_market", "strategy_id", "_seq"], kind="stable")
    return _table(frame, ORDER_FIELDS, "ts_market")


def fills_table(frame: pd.DataFrame) -> Table:
    if frame.empty:
        return Table([], [], [], [])
    frame = frame.copy()
    frame["ts_event"] = [_ts_text(v) for v in frame["ts_event"]]
    frame["_key"] = frame["client_order_id"].map(normalise_client_order_id)
    frame = frame.sort_values(["ts_event", "_key", "trade_id"], kind="stable")
    return _table(frame, FILL_FIELDS, "ts_event")


def positions_table(frame: pd.DataFrame) -> Table:
    if frame.empty:
        return Table([], [], [], [])
    frame = frame.copy()
    frame["position_id"] = frame["position_id"].map(lambda v: _UUID_SUFFIX.sub("", v))
    for column in ("ts_opened", "ts_closed"):
        if column in frame:
            frame[column] = [_ts_text(v) for v in frame[column]]
    frame["_key"] = frame["position_id"] + "@" + frame["ts_opened"]
    frame["client_order_id"] = frame["opening_order_id"]
    frame = frame.sort_values(["ts_opened", "position_id", "is_snapshot"], kind="stable")
    return _table(frame, POSITION_FIELDS, "ts_opened")


def _table(frame: pd.DataFrame, fields: tuple[str, ...], time_column: str) -> Table:
    present = [f for f in fields if f in frame.columns]
    rows = []
    for record in frame[present].to_dict("records"):
        rows.append({k: _normalise_ids(str(v)) for k, v in record.items()})
    return Table(
        rows=rows,
        keys=list(frame["_key"]),
        times=list(frame[time_column]),
        raw_ids=list(frame["client_order_id"]),
    )


def first_difference(kind: str, backtest: Table, live: Table) -> dict[str, Any] | None:
    """The first row where the two tables differ, with the first differing field."""
    for index in range(max(len(backtest.rows), len(live.rows))):
        if index >= len(live.rows):
            return _missing(kind, index, backtest, "paper")
        if index >= len(backtest.rows):
            return _missing(kind, index, live, "backtest")
        bt_row, live_row = backtest.rows[index], live.rows[index]
        if backtest.keys[index] != live.keys[index]:
            field_name, bt_value, live_value = "key", backtest.keys[index], live.keys[index]
        else:
            field_name = next(
                (f for f in bt_row if f in live_row and bt_row[f] != live_row[f]),
                "",
            )
            if not field_name:
                only = set(bt_row) ^ set(live_row)
                if not only:
                    continue
                field_name = sorted(only)[0]
            bt_value, live_value = bt_row.get(field_name), live_row.get(field_name)
        ts = min(backtest.times[index], live.times[index])
        return {
            "kind": kind,
            "index": index,
            "ts": ts,
            "field": field_name,
            "backtest": bt_value,
            "paper": live_value,
            "backtest_id": backtest.raw_ids[index],
            "paper_id": live.raw_ids[index],
            "message": (
                f"{kind} #{index} at {ts} ({backtest.raw_ids[index]} / {live.raw_ids[index]}): "
                f"{field_name} backtest={bt_value!r} paper={live_value!r}"
            ),
            "backtest_row": bt_row,
            "paper_row": live_row,
        }
    return None


def _missing(kind: str, index: int, present: Table, absent_side: str) -> dict[str, Any]:
    other = "backtest" if absent_side == "paper" else "paper"
    ts = present.times[index]
    return {
        "kind": kind,
        "index": index,
        "ts": ts,
        "field": "<missing>",
        other: present.keys[index],
        absent_side: None,
        f"{other}_id": present.raw_ids[index],
        "message": (
            f"{kind} #{index} at {ts} ({present.raw_ids[index]}) exists in the {other} only"
        ),
        f"{other}_row": present.rows[index],
    }


@dataclass
class ParityReport:
    """Result of a parity run (``as_json()`` is the ``grodt parity --json`` document)."""

    identical: bool
    orders: tuple[int, int]
    fills: tuple[int, int]
    positions: tuple[int, int]
    first_divergence: dict[str, Any] | None
    divergences: dict[str, dict[str, Any] | None] = field(default_factory=dict)
    components: list[str] = field(default_factory=list)
    backtest_run_dir: str = ""
    paper_run_dir: str = ""
    wall_seconds: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "identical": self.identical,
            "orders": list(self.orders),
            "fills": list(self.fills),
            "positions": list(self.positions),
            "first_divergence": self.first_divergence,
            "divergences": self.divergences,
            "components": self.components,
            "backtest_run_dir": self.backtest_run_dir,
            "paper_run_dir": self.paper_run_dir,
            "wall_seconds": self.wall_seconds,
            "paper_latency": self.latency,
        }


def compare_reports(backtest_dir: Path, paper_dir: Path) -> ParityReport:
    """Compare the orders/fills/positions CSVs of a backtest run and a paper run."""
    bt_orders = _read_csv(backtest_dir / "orders.csv")
    live_orders = _read_csv(paper_dir / "orders.csv")
    if not live_orders.empty and "ts_market" not in live_orders:
        raise GrodtError(f"{paper_dir / 'orders.csv'}: no ts_market column (not a paper run?)")
    tables = {
        "order": (
            orders_table(bt_orders, "ts_init"),
            orders_table(live_orders, "ts_market"),
        ),
        "fill": (
            fills_table(_read_csv(backtest_dir / "fills.csv")),
            fills_table(_read_csv(paper_dir / "fills.csv")),
        ),
        "position": (
            positions_table(_read_csv(backtest_dir / "positions.csv")),
            positions_table(_read_csv(paper_dir / "positions.csv")),
        ),
    }
    divergences = {kind: first_difference(kind, bt, lv) for kind, (bt, lv) in tables.items()}
    found = [d for d in divergences.values() if d is not None]
    first = min(found, key=lambda d: (d["ts"] or "", _KIND_ORDER[d["kind"]])) if found else None
    counts = {kind: (len(bt.rows), len(lv.rows)) for kind, (bt, lv) in tables.items()}
    return ParityReport(
        identical=first is None,
        orders=counts["order"],
        fills=counts["fill"],
        positions=counts["position"],
        first_divergence=first,
        divergences=divergences,
        backtest_run_dir=str(backtest_dir),
        paper_run_dir=str(paper_dir),
    )


def components_of(spec: BacktestNodeSpec | LiveNodeSpec) -> list[str]:
    """What ran: component import paths and enabled framework sections."""
    names = [f"actor:{a.path}" for a in spec.actors]
    names += [f"strategy:{s.path}" for s in spec.strategies]
    names += [f"section:{name}" for name in ("risk", "forensics") if getattr(spec, name)]
    counts = Counter(names)
    return [name if counts[name] == 1 else f"{name} x{counts[name]}" for name in counts]


def run_parity(
    spec: BacktestNodeSpec | LiveNodeSpec,
    run_dir: Path,
    catalog: Path | None = None,
    source: str = "",
) -> ParityReport:
    """Run ``spec`` in a BacktestNode and in the lockstep paper node, and compare.

    ``spec`` is a backtest config (its paper twin is derived) or a paper live config (its
    backtest twin is derived); either way both nodes get the same components, sections, data
    and venues. Reports go to ``run_dir/backtest`` and ``run_dir/paper``.
    """
    from grodt.core.settings import get_settings
    from grodt.nodes.backtest import run_backtest
    from grodt.nodes.live import LiveNode

    if isinstance(spec, LiveNodeSpec):
        backtest_spec = backtest_twin(spec, source)
        paper_spec = spec.model_copy(
            update={
                "data_clients": [
                    spec.replay.model_copy(update={"pacing": "lockstep"}),  # type: ignore[union-attr]
                ],
                "operations": spec.operations.model_copy(
                    update={"on_stop": "keep", "health_interval_seconds": None},
                ),
            },
        )
    else:
        backtest_spec = spec
        paper_spec = paper_twin(spec)
    catalog_path = Path(
        catalog or backtest_spec.catalog or get_settings().catalog,
    )
    run_dir = Path(run_dir)
    started = time.perf_counter()
    run_backtest(backtest_spec, catalog_path, run_dir / "backtest", quiet=True)
    backtest_seconds = time.perf_counter() - started
    started = time.perf_counter()
    paper = LiveNode(paper_spec, run_dir / "paper", catalog=catalog_path, quiet=True)
    outcome = paper.run()
    paper_seconds = time.perf_counter() - started
    report = compare_reports(run_dir / "backtest", run_dir / "paper")
    report.components = components_of(backtest_spec)
    report.wall_seconds = {"backtest": backtest_seconds, "paper": paper_seconds}
    report.latency = outcome.summary.get("latency", {})
    return report


def format_report(report: ParityReport) -> str:
    """Human summary of a parity run."""
    lines = []
    if report.identical:
        lines.append(
            f"parity: IDENTICAL — {report.orders[0]} orders, {report.fills[0]} fills, "
            f"{report.positions[0]} positions in both nodes",
        )
    else:
        lines.append(
            f"parity: DIVERGENT — orders {report.orders[0]} vs {report.orders[1]}, "
            f"fills {report.fills[0]} vs {report.fills[1]}, "
            f"positions {report.positions[0]} vs {report.positions[1]} (backtest vs paper)",
        )
        assert report.first_divergence is not None
        lines.append(f"  first divergence: {report.first_divergence['message']}")
    lines.append(f"  components: {', '.join(report.components) or '-'}")
    seconds = report.wall_seconds
    if seconds:
        lines.append(
            f"  wall time: backtest {seconds['backtest']:.2f} s, paper {seconds['paper']:.2f} s",
        )
    latency = report.latency
    if latency.get("count"):
        lines.append(
            f"  paper bar→submit latency: p50 {latency['p50_us']:.0f} µs, "
            f"p99 {latency['p99_us']:.0f} µs over {latency['count']} orders",
        )
    lines.append(f"  reports: {report.backtest_run_dir}  {report.paper_run_dir}")
    return "\n".join(lines)
