"""Kill loop: a paper node SIGKILLed inside bars where the venue fills a stop or a target.

S1 on the S&P 500 sample (2004-01 … 2007-06, 879 daily bars, lockstep, a cache database) runs
once uninterrupted; the bars on which the venue fills one of S1's bracket legs (stop or target)
are read from its fills. Then, for each of ``--kills`` of those bars (spread over the run), a
fresh database, a node killed with SIGKILL inside that bar (the crash actor of the restart
tests: after the venue moved, before the strategies saw the bar), and a restart that runs to
the end. Per kill it prints:

- ``crash-bar fills``: fills stamped with the crash bar's time found in Redis right after the
  kill (the part of the crash bar's writes that reached the database; the checkpoint stands one
  bar earlier, so any is a partial write set);
- ``orders``: the restarted run's order count against the uninterrupted run's (more: a decision
  repeated);
- ``identical``: orders (venue order ids and trade ids included), positions and the final
  equity equal to the uninterrupted run's.

A script that prints figures, not a test::

    nice -n 10 .venv/bin/python benchmarks/restart_kills.py --catalog data/catalog --kills 12

``--source DIR`` runs the node from another checkout (e.g. a ``git worktree`` of the commit
before per-record transactions) to measure the same kills there; the crash actor always comes
from this checkout's ``tests/live``.
"""

import argparse
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
CRASH_KIT = REPO / "tests" / "live"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
START, END = "2004-01-01", "2007-06-30"
TRADER_ID = "GRODT-001"
ORDER_COLUMNS = [
    "strategy_id", "number", "instrument_id", "venue_order_id", "position_id", "side", "type",
    "quantity", "price", "trigger_price", "status", "filled_qty", "avg_px", "last_trade_id",
    "contingency_type", "tags",
]  # fmt: skip


def document(marker: Path, at_bars: list[int], port: int) -> dict[str, Any]:
    return {
        "name": "restart_kills_s1",
        "kind": "live",
        "data_clients": [
            {
                "type": "replay",
                "data": [{"bar_types": [BAR_TYPE]}],
                "start": START,
                "end": END,
                "pacing": "lockstep",
            },
        ],
        "exec_clients": [
            {
                "type": "sandbox",
                "venue": {
                    "include": str(REPO / "node_configs/venues/sample_cash_per_strategy.yaml")
                },
            },
        ],
        "strategies": [
            {"include": str(REPO / "node_configs/components/strategies/s1_vwap_ema_spx.yaml")}
        ],
        "actors": [
            {
                "path": "live_kit_crash:CrashAt",
                "config": {"bar_type": BAR_TYPE, "at_bars": at_bars, "marker": str(marker)},
            },
        ],
        "operations": {"on_stop": "keep", "health_interval_seconds": None},
        "reconciliation": {"enabled": False},
        "timeouts": {"post_stop": 0.2, "disconnection": 2},
        "cache_database": {"host": "127.0.0.1", "port": port},
    }


def run_node(source: Path, config: Path, run_dir: Path, catalog: Path) -> int:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CRASH_KIT), str(source)])}
    command = [sys.executable, "-m", "grodt", "live", str(config), "--run-dir", str(run_dir)]
    command += ["--catalog", str(catalog), "--quiet"]
    done = subprocess.run(command, cwd=source, env=env, capture_output=True, text=True)
    if done.returncode not in (0, -signal.SIGKILL):
        raise SystemExit(f"node failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return done.returncode


def bar_times(catalog: Path) -> list[int]:
    """``ts_init`` of every replayed bar, in replay order (bar number = index + 1)."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    start, end = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    bars = ParquetDataCatalog(str(catalog)).bars(bar_types=[BAR_TYPE])
    return [b.ts_init for b in bars if start.value <= b.ts_init <= end.value + 86_400 * 10**9]


def bracket_fill_bars(run_dir: Path, times: list[int]) -> list[int]:
    """Bar numbers on which the venue filled a stop or a target (not a market order)."""
    fills = pd.read_csv(run_dir / "fills.csv")
    legs = fills[fills["order_type"].isin(["STOP_MARKET", "LIMIT", "MARKET_IF_TOUCHED"])]
    stamps = set(pd.to_datetime(legs["ts_event"]).astype("int64"))
    return [number for number, ts in enumerate(times, start=1) if ts in stamps]


def database_fills_at(port: int, ts: int) -> int:
    """Fills stamped ``ts`` in the cache database, read as a restarted node loads it."""
    import msgspec
    from nautilus_trader.cache.config import CacheConfig
    from nautilus_trader.cache.database import CacheDatabaseAdapter
    from nautilus_trader.common.config import DatabaseConfig
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.serialization.serializer import MsgSpecSerializer

    adapter = CacheDatabaseAdapter(
        trader_id=TraderId(TRADER_ID),
        instance_id=UUID4(),
        serializer=MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True),
        config=CacheConfig(
            database=DatabaseConfig(host="127.0.0.1", port=port), encoding="msgpack"
        ),
    )
    try:
        orders = adapter.load_orders()
    finally:
        adapter.close()
    return sum(
        isinstance(e, OrderFilled) and e.ts_event == ts for o in orders.values() for e in o.events
    )


def orders_frame(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "orders.csv")
    frame["number"] = frame["client_order_id"].str.rsplit("-", n=1).str[1].astype(int)
    return frame[ORDER_COLUMNS].sort_values(["strategy_id", "number"]).reset_index(drop=True)


def positions_frame(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "positions.csv")
    frame["position_id"] = frame["position_id"].str.replace(r"-[0-9a-f-]{36}$", "", regex=True)
    columns = ["position_id", "side", "quantity", "ts_opened", "ts_closed", "realized_pnl"]
    return frame[columns].sort_values(["position_id", "ts_opened"]).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "catalog")
    parser.add_argument("--kills", type=int, default=12)
    parser.add_argument("--source", type=Path, default=REPO, help="checkout the node runs from")
    parser.add_argument("--json", type=Path, help="write the per-kill rows here")
    args = parser.parse_args()
    from catalogs.sample import build_sample_catalog
    from grodt.test_kit.redis import TemporaryRedis

    if not (args.catalog / "data").exists():
        build_sample_catalog(args.catalog, datasets=("sp500",))
    source = args.source.resolve()
    catalog = args.catalog.resolve()
    rows: list[dict[str, Any]] = []
    with TemporaryRedis() as server, tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        never = document(work / "never", [], server.port)
        config = work / "through.yaml"
        config.write_text(yaml.safe_dump(never))
        run_node(source, config, work / "through", catalog)
        through_summary = json.loads((work / "through" / "summary.json").read_text())
        times = bar_times(catalog)
        candidates = bracket_fill_bars(work / "through", times)
        step = max(1, len(candidates) // max(1, args.kills))
        chosen = candidates[::step][: args.kills]
        print(
            f"source {source} · {len(times)} bars · uninterrupted: "
            f"{through_summary['orders']} orders, equity {through_summary['final_equity']} · "
            f"{len(candidates)} bars with a stop/target fill, killing in {len(chosen)}",
        )
        print(f"{'bar':>5} {'crash-bar fills':>15} {'orders':>7} {'identical':>9} {'s':>5}")
        for bar in chosen:
            server.flush()
            started = time.perf_counter()
            marker, run_dir = work / f"marker-{bar}", work / f"run-{bar}"
            config = work / f"kill-{bar}.yaml"
            config.write_text(yaml.safe_dump(document(marker, [bar], server.port)))
            if run_node(source, config, run_dir, catalog) != -signal.SIGKILL:
                raise SystemExit(f"the node was not killed at bar {bar}")
            partial = database_fills_at(server.port, times[bar - 1])
            if run_node(source, config, run_dir, catalog) != 0:
                raise SystemExit(f"the restart after bar {bar} was killed")
            summary = json.loads((run_dir / "summary.json").read_text())
            identical = (
                orders_frame(run_dir).equals(orders_frame(work / "through"))
                and positions_frame(run_dir).equals(positions_frame(work / "through"))
                and summary["final_equity"] == through_summary["final_equity"]
            )
            row = {
                "bar": bar,
                "crash_bar_fills_in_redis": partial,
                "orders": summary["orders"],
                "expected_orders": through_summary["orders"],
                "identical": identical,
                "seconds": round(time.perf_counter() - started, 1),
            }
            rows.append(row)
            print(
                f"{bar:>5} {partial:>15} {summary['orders']:>7} {identical!s:>9} "
                f"{row['seconds']:>5}",
                flush=True,
            )
    kills = len(rows)
    print(
        f"{sum(r['identical'] for r in rows)} of {kills} kills identical to the uninterrupted "
        f"run; {sum(r['orders'] > r['expected_orders'] for r in rows)} with extra orders; "
        f"{sum(r['crash_bar_fills_in_redis'] > 0 for r in rows)} left crash-bar fills in Redis "
        f"({platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f})",
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
