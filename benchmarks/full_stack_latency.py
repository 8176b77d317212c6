"""Benchmark: the paper node's full-stack bar → order latency, before and after, wall and CPU.

One command runs the fullest paper config (``parity_sample_full.yaml``: regime actor on three
instruments, meta-controller, S1/S2/S3, the RL ensemble, the portfolio risk gate, forensics to
Parquet) in the paper node (lockstep by default; ``--pacing accelerated --speed N``: the three
bars of a day are queued together, as a feed delivers a minute's bars), alternating variants in
fresh processes, ``--rounds`` times each:

- ``before``: regime refits on the engine thread (``refit_lag_bars: 0``), Python's default GIL
  switch interval (5 ms) and collector;
- ``untuned``: refits in a worker process, swapped in one bar later
  (``actors[0].config.walk_forward.refit_lag_bars=1``: retraining running while the node
  trades), Python's defaults;
- ``after``: as ``untuned`` with the live node's engine-thread tuning
  (:mod:`grodt.nodes.live_tuning`: GIL switch interval, frozen collector heap);
- on request (``--variants``): ``freeze_only`` and ``switch_only``, one knob each;
  ``nautilus_queue``: as ``after`` with Nautilus' own data-queue task instead of the node's
  commands-first one (:mod:`grodt.nodes.live_data_queue`): with queued records, an order waits
  until every queued record went through every subscriber. In lockstep the two are the same.

Each run also prints the collector's pauses by generation (CPU time, from ``gc.callbacks``).

For every run it prints P50/P95/P99/max of bar arrival → order submitted in **wall** time (what
an order waits) and in the engine thread's **CPU** time over the same span (the work done for it:
every component that handled the bar before the order, and those that ran before the order's
command was taken from the queue). On a shared, loaded box the wall figures carry the other
processes; the CPU figures do not. Wall − CPU is waiting: the OS, another thread holding the GIL.
Orders sent once the node stops (strategies closing positions in ``on_stop``) are not measured
(``at_stop``). In accelerated pacing a node that falls behind the data queues records, and the
wait of a queued record counts from its hand-over (``queue`` stage): pick a speed the machine
keeps up with.

Then one traced run of ``after`` (``--no-span`` skips it, :class:`SpanTracer`): what each
order's span holds — other replayed records handled inside it (the lockstep replay: none), the
data queue's depth at ``OrderInitialized``, and the own CPU of every handler that ran in it,
split at ``OrderInitialized`` (before: the record's subscribers up to the decision; after: the
gate, the record's remaining subscribers, the venue handling earlier orders, the Nautilus
engines), averaged over all orders and over the P99 tail.

Then one profiling run of ``after`` (``--no-profile`` skips it): each component's own CPU per
record (handlers wrapped with ``time.thread_time_ns``, nested calls subtracted from their caller,
so the rows add up), its calls, and its P99 per call. The wrapping costs about 4 µs per call, so
the profiling run's latency is not reported. A script that prints figures, not a test::

    .venv/bin/python benchmarks/full_stack_latency.py --catalog data/catalog
    .venv/bin/python benchmarks/full_stack_latency.py --rounds 5 --start 2004-01-01 --json out.json
    .venv/bin/python benchmarks/full_stack_latency.py --catalog data/catalog --pacing accelerated \
        --speed 864000 --variants nautilus_queue,after --start 2004-01-01 --end 2005-12-31

Figures and their reading: ``docs/live.md`` ("Full-stack latency with retraining running").

The sample catalog is built into ``--catalog`` if its datasets are missing.
"""

import argparse
import functools
import gc
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "node_configs" / "live" / "parity_sample_full.yaml"
REFIT_LAG = "actors[0].config.walk_forward.refit_lag_bars"
VARIANTS = {
    # name: (refit_lag_bars, engine-thread tuning: switch interval s or None, gc freeze,
    #        commands first: the node's data-queue consumer, grodt.nodes.live_data_queue)
    "before": (0, (None, False), True),
    "untuned": (1, (None, False), True),
    "after": (1, "default", True),
    # One knob at a time (run with --variants):
    "freeze_only": (1, (None, True), True),
    "switch_only": (1, (0.0005, False), True),
    "nautilus_queue": (1, "default", False),
}
DEFAULT_VARIANTS = ("before", "untuned", "after")


# -- one run (child process) --------------------------------------------------------------------


class ComponentMeter:
    """Own CPU (ns, engine thread) per wrapped handler; a nested wrapped call is subtracted from
    its caller, so the rows add up to the wrapped total."""

    def __init__(self) -> None:
        self.own_ns: dict[str, int] = defaultdict(int)
        self.calls: dict[str, int] = defaultdict(int)
        self.samples: dict[str, list[int]] = defaultdict(list)
        self._children: list[int] = []

    def wrap(self, cls: type, name: str) -> None:
        """Replace ``cls.name`` (its own or inherited) by a metered call labelled
        ``<cls>.<name>``."""
        method = getattr(cls, name, None)
        if not callable(method) or getattr(method, "_metered", False):
            return
        label = f"{cls.__name__}.{name}"
        clock = time.thread_time_ns
        children = self._children
        own_ns, calls, samples = self.own_ns, self.calls, self.samples

        @functools.wraps(method)
        def metered(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            children.append(0)
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = clock() - started
                own = elapsed - children.pop()
                if children:
                    children[-1] += elapsed
                own_ns[label] += own
                calls[label] += 1
                samples[label].append(own)

        metered._metered = True  # type: ignore[attr-defined]
        setattr(cls, name, metered)


def _project_classes() -> list[type]:
    """The classes whose handlers run on the engine thread for every bar or order."""
    from actors.forensics_bridge import ForensicsBridge
    from actors.meta_controller import MetaController
    from actors.regime_actor import RegimeActor
    from grodt.nodes.latency import LatencyProbe
    from grodt.nodes.market_time import OrderMarketTimes
    from grodt.nodes.replay import ReplayDataClient
    from grodt.nodes.sandbox import GrodtSandboxExecutionClient
    from risk_engine.gate import PortfolioRiskGate
    from risk_engine.hrp_actor import HrpTargetActor
    from risk_engine.kill_switch import KillSwitch
    from risk_engine.price_feed import PriceFeed
    from strategies.rl_ensemble import RLEnsembleStrategy
    from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
    from strategies.s2_mean_reversion import S2MeanReversion
    from strategies.s3_breakout import S3Breakout

    return [
        RegimeActor,
        MetaController,
        HrpTargetActor,
        S1VwapEmaScalper,
        S2MeanReversion,
        S3Breakout,
        RLEnsembleStrategy,
        PortfolioRiskGate,
        PriceFeed,
        KillSwitch,
        ForensicsBridge,
        GrodtSandboxExecutionClient,
        ReplayDataClient,
        LatencyProbe,
        OrderMarketTimes,
    ]


def _meter_components(wrap: Callable[[type, str], None]) -> None:
    """Wrap (``wrap(cls, name)``) every engine-thread handler of the project's classes, per
    concrete class."""
    handler_prefixes = ("on_", "_on_", "handle_", "_execute", "_run_command", "record")
    skipped = {"on_start", "on_stop", "on_dispose", "on_save", "on_load", "on_reset"}
    for cls in _project_classes():
        names: set[str] = set()
        for klass in cls.__mro__:
            if klass.__module__.split(".")[0] in {"actors", "strategies", "risk_engine", "grodt"}:
                names.update(n for n in klass.__dict__ if n.startswith(handler_prefixes))
        for name in sorted(names - skipped):
            if isinstance(cls.__dict__.get(name, getattr(cls, name, None)), property):
                continue
            wrap(cls, name)


class SpanTracer:
    """What runs on the engine thread between a record's arrival and each order's submit.

    Every engine-thread handler of the project's classes is wrapped (as :class:`ComponentMeter`
    does) and stamped with a global sequence number at entry and exit; the latency probe's
    stamps (arrival, dispatch, ``OrderInitialized``, submit) share the sequence. Per order, the
    handlers that ran inside its span are split at its ``OrderInitialized``: *before* (the
    record's subscribers up to the decision, the deciding handler itself) and *after* (what ran
    until the order reached the execution client: the gate, the rest of the record's
    subscribers, the venue handling earlier orders). Also per order: replayed records
    dispatched inside its span (other instruments' bars) and the data engine's queue depth at
    its ``OrderInitialized``. The wrapping adds ~4 µs per call to the CPU figures.
    """

    def __init__(self) -> None:
        self.seq = itertools.count()
        self.calls: list[tuple[int, int, str, int]] = []  # entry, exit, label, own ns
        self.arrivals: dict[int, tuple[int, int]] = {}  # id(record) → (seq, cpu ns)
        self.dispatches: list[int] = []  # seq of each replayed record's dispatch
        self.inits: dict[str, tuple[int, int, int, int]] = {}  # order → record, dispatch, init
        self.submits: list[tuple[str, int, int]] = []  # order, seq, cpu ns
        self.kernel: Any = None
        self._current: tuple[int, int, int] | None = None  # arrival seq, cpu, dispatch seq
        self._children: list[int] = []  # CPU of the wrapped calls nested in each open one
        self._collect_entry = (0, 0)

    def install(self) -> None:
        _meter_components(self._wrap)
        from grodt.nodes.sandbox import GrodtSandboxExecutionClient

        for name in ("submit_order", "submit_order_list", "modify_order", "cancel_order"):
            self._wrap(GrodtSandboxExecutionClient, name)

    def wrap_engines(self, kernel: Any) -> None:
        """Also wrap the Nautilus engines' Python-reachable entry points on their instances
        (their own time is Nautilus' work: cache, message bus, checks, matching bookkeeping)."""
        self.kernel = kernel
        for engine, name in (
            (kernel.data_engine, "_handle_data"),
            (kernel.risk_engine, "_execute_command"),
            (kernel.exec_engine, "_execute_command"),
            (kernel.exec_engine, "_handle_event_with_tracking"),
        ):
            setattr(engine, name, self._traced(getattr(engine, name), f"Nautilus {name}"))
        gc.callbacks.append(self._on_collect)

    def _on_collect(self, phase: str, info: dict[str, int]) -> None:
        """Collector pauses as calls of their own (subtracted from the handler they hit)."""
        if phase == "start":
            self._collect_entry = (next(self.seq), time.thread_time_ns())
            self._children.append(0)
            return
        entry, started = self._collect_entry
        elapsed = time.thread_time_ns() - started
        own = elapsed - self._children.pop()
        if self._children:
            self._children[-1] += elapsed
        self.calls.append((entry, next(self.seq), f"collector gen {info['generation']}", own))

    def _wrap(self, cls: type, name: str) -> None:
        method = getattr(cls, name, None)
        if not callable(method) or getattr(method, "_traced", False):
            return
        setattr(cls, name, self._traced(method, f"{cls.__name__}.{name}"))

    def _traced(self, method: Callable[..., Any], label: str) -> Callable[..., Any]:
        clock = time.thread_time_ns
        seq, calls, children = self.seq, self.calls, self._children

        @functools.wraps(method)
        def traced(*args: Any, **kwargs: Any) -> Any:
            entry = next(seq)
            started = clock()
            children.append(0)
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = clock() - started
                own = elapsed - children.pop()
                if children:
                    children[-1] += elapsed
                calls.append((entry, next(seq), label, own))

        traced._traced = True  # type: ignore[attr-defined]
        return traced

    def probe(self) -> Any:
        from nautilus_trader.model.events import OrderInitialized

        from grodt.nodes.latency import LatencyProbe

        tracer = self

        class TracingProbe(LatencyProbe):
            def on_arrival(self, data: object) -> None:
                tracer.arrivals[id(data)] = (next(tracer.seq), time.thread_time_ns())
                super().on_arrival(data)

            def on_dispatch(self, data: object) -> None:
                arrival = tracer.arrivals.pop(id(data), None)
                if arrival is not None:
                    dispatch = next(tracer.seq)
                    tracer.dispatches.append(dispatch)
                    tracer._current = (arrival[0], arrival[1], dispatch)
                super().on_dispatch(data)

            def on_order_initialized(self, event: object) -> None:
                if isinstance(event, OrderInitialized) and tracer._current is not None:
                    depth = tracer.kernel.data_engine.data_qsize() if tracer.kernel else -1
                    tracer.inits[str(event.client_order_id)] = (
                        *tracer._current,
                        next(tracer.seq),
                        depth,
                    )
                super().on_order_initialized(event)

            def end_attribution(self) -> None:
                tracer._current = None
                super().end_attribution()

            def on_submit(self, client_order_id: Any) -> None:
                tracer.submits.append(
                    (str(client_order_id), next(tracer.seq), time.thread_time_ns()),
                )
                super().on_submit(client_order_id)

        return TracingProbe(cpu=True)

    def analyse(self, records: int) -> dict[str, Any]:
        """Per-order composition of the span, summarised (µs)."""
        import numpy as np

        calls = sorted(self.calls)
        entries = np.array([c[0] for c in calls])
        dispatches = np.array(self.dispatches)
        orders = []
        for client_order_id, submit, submit_cpu in self.submits:
            init = self.inits.get(client_order_id)
            if init is None:
                continue
            arrival, arrival_cpu, dispatch, initialized, depth = init
            before: dict[str, int] = defaultdict(int)
            after: dict[str, int] = defaultdict(int)
            lo, hi = np.searchsorted(entries, arrival), np.searchsorted(entries, submit)
            for entry, leave, label, own in calls[lo:hi]:
                if leave < submit:
                    (before if entry < initialized else after)[label] += own
            others = int(((dispatches > dispatch) & (dispatches < submit)).sum())
            span = submit_cpu - arrival_cpu
            orders.append((span, others, depth, before, after))
        if not orders:
            return {"orders": 0}
        spans = np.array([o[0] for o in orders], dtype=np.float64) / 1e3
        tail_from = np.percentile(spans, 99)

        def mean_by_label(chosen: list[Any], index: int) -> dict[str, float]:
            total: dict[str, int] = defaultdict(int)
            for order in chosen:
                for label, own in order[index].items():
                    total[label] += own
            n = max(len(chosen), 1)
            return {k: v / 1e3 / n for k, v in sorted(total.items(), key=lambda kv: -kv[1]) if v}

        tail = [o for o in orders if o[0] / 1e3 >= tail_from]
        wrapped = np.array(
            [sum(o[3].values()) + sum(o[4].values()) for o in orders], dtype=np.float64
        )
        return {
            "orders": len(orders),
            "records": records,
            "with_other_records": sum(o[1] > 0 for o in orders),
            "other_records_max": max(o[1] for o in orders),
            "queue_depth_at_init": dict(Counter(o[2] for o in orders)),
            "cpu_us": {
                "p50": float(np.percentile(spans, 50)),
                "p99": float(tail_from),
                "mean": float(spans.mean()),
            },
            "unwrapped_mean_us": float((spans - wrapped / 1e3).mean()),
            "before_init_mean_us": mean_by_label(orders, 3),
            "after_init_mean_us": mean_by_label(orders, 4),
            "tail_orders": len(tail),
            "tail_before_init_mean_us": mean_by_label(tail, 3),
            "tail_after_init_mean_us": mean_by_label(tail, 4),
            "tail_unwrapped_mean_us": float(
                np.mean(
                    [o[0] / 1e3 - (sum(o[3].values()) + sum(o[4].values())) / 1e3 for o in tail]
                )
            ),
        }


class CollectorPauses:
    """CPU time of each garbage collection during a run, by generation (``gc.callbacks``)."""

    def __init__(self) -> None:
        self.pauses: dict[int, list[int]] = defaultdict(list)
        self._started = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.thread_time_ns()
        else:
            self.pauses[info["generation"]].append(time.thread_time_ns() - self._started)

    def summary(self) -> dict[str, dict[str, float]]:
        return {
            str(generation): {
                "count": len(ns),
                "total_ms": sum(ns) / 1e6,
                "max_ms": max(ns) / 1e6,
            }
            for generation, ns in sorted(self.pauses.items())
        }


def run_once(args: argparse.Namespace) -> dict[str, Any]:
    """One paper run of ``args.variant`` in this process; returns its figures."""
    from grodt.nodes.latency import LatencyProbe
    from grodt.nodes.live import LiveNode
    from grodt.nodes.live_tuning import DEFAULT_TUNING
    from grodt.nodes.live_tuning import EngineThreadTuning
    from node_configs.live_schema import load_live_config

    refit_lag, knobs, commands_first = VARIANTS[args.variant]
    tuning = DEFAULT_TUNING if knobs == "default" else EngineThreadTuning(*knobs)
    overrides = (f"{REFIT_LAG}={refit_lag}", *args.overrides)
    spec = load_live_config(args.config, overrides)
    replay = spec.replay
    if replay is None:
        raise SystemExit(f"{args.config}: not a paper config (no replay data client)")
    update: dict[str, Any] = {"pacing": args.pacing, "speed": args.speed}
    if args.start:
        update["start"] = args.start
    if args.end:
        update["end"] = args.end
    spec = spec.model_copy(
        update={
            "data_clients": [replay.model_copy(update=update)],
            "operations": spec.operations.model_copy(update={"health_interval_seconds": None}),
        },
    )
    meter = ComponentMeter() if args.profile_run else None
    if meter is not None:
        _meter_components(meter.wrap)
    tracer = SpanTracer() if args.span_run else None
    if tracer is not None:
        tracer.install()
    with tempfile.TemporaryDirectory(prefix="grodt-full-latency-") as run_dir:
        node = LiveNode(
            spec,
            Path(run_dir),
            catalog=args.catalog,
            quiet=True,
            tuning=tuning,
            commands_first=commands_first,
        )
        node.probe = LatencyProbe(cpu=True) if tracer is None else tracer.probe()
        if tracer is not None:
            node.build()
            assert node.node is not None
            tracer.wrap_engines(node.node.kernel)
        pauses = CollectorPauses()
        gc.callbacks.append(pauses)
        cpu_started = time.thread_time_ns()
        process_started = time.process_time()
        wall_started = time.perf_counter()
        outcome = node.run()
        wall = time.perf_counter() - wall_started
        process_cpu = time.process_time() - process_started
        thread_cpu = (time.thread_time_ns() - cpu_started) / 1e9
        gc.callbacks.remove(pauses)
    summary = outcome.summary
    records = summary["replay"].get("records") or 0
    row: dict[str, Any] = {
        "variant": args.variant,
        "tuning": tuning.describe(),
        "orders": summary.get("orders"),
        "records": records,
        "wall_s": wall,
        "engine_thread_cpu_s": thread_cpu,
        "process_cpu_s": process_cpu,
        "latency": summary["latency"],
        "gc_pauses": pauses.summary(),
        "gate": (summary.get("extensions", {}).get("risk") or {}).get("gate_us"),
        "load_average": os.getloadavg(),
        "pacing": args.pacing,
    }
    if tracer is not None:
        row["span"] = tracer.analyse(records)
    if meter is not None:
        import numpy as np

        row["components"] = {
            label: {
                "own_us_per_record": meter.own_ns[label] / 1_000 / max(records, 1),
                "calls": meter.calls[label],
                "p99_us_per_call": float(np.percentile(meter.samples[label], 99)) / 1_000,
                "max_us_per_call": max(meter.samples[label]) / 1_000,
            }
            for label in sorted(meter.own_ns, key=meter.own_ns.__getitem__, reverse=True)
        }
    return row


# -- the driver ---------------------------------------------------------------------------------


def _child(
    args: argparse.Namespace, variant: str, profile: bool, span: bool = False
) -> dict[str, Any]:
    command = [
        sys.executable,
        __file__,
        "--child",
        variant,
        "--config",
        str(args.config),
        "--catalog",
        str(args.catalog),
    ]
    if profile:
        command.append("--profile-run")
    if span:
        command.append("--span-run")
    command += ["--pacing", args.pacing, "--speed", str(args.speed)]
    for flag, value in (("--start", args.start), ("--end", args.end)):
        if value:
            command += [flag, value]
    for override in args.overrides:
        command += ["--set", override]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    if done.returncode != 0:
        raise SystemExit(f"{variant} run failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _ms(value: float | None) -> str:
    return f"{value / 1000:7.2f}" if value is not None else "      –"


def print_run(row: dict[str, Any]) -> None:
    latency = row["latency"]
    cpu = latency.get("cpu", {})
    stages = latency.get("stages", {})
    load = row["load_average"][0]
    print(
        f"{row['variant']:<7} orders {latency.get('count', 0):>5}  wall ms p50 "
        f"{_ms(latency.get('p50_us'))} p95 {_ms(latency.get('p95_us'))} p99 "
        f"{_ms(latency.get('p99_us'))} max {_ms(latency.get('max_us'))}  |  cpu ms p50 "
        f"{_ms(cpu.get('p50_us'))} p95 {_ms(cpu.get('p95_us'))} p99 {_ms(cpu.get('p99_us'))} "
        f"max {_ms(cpu.get('max_us'))}  |  engine cpu "
        f"{row['engine_thread_cpu_s'] / max(row['records'], 1) * 1e6:5.0f} µs/record, "
        f"wall {row['wall_s']:5.1f} s, load {load:4.1f}",
    )
    pauses = row.get("gc_pauses") or {}
    if pauses:
        print(
            " " * 8
            + "collector: "
            + ", ".join(
                f"gen {g} ×{p['count']} ({p['total_ms']:.0f} ms cpu, max {p['max_ms']:.1f} ms)"
                for g, p in pauses.items()
            ),
        )
    if stages:
        print(
            " " * 8
            + "  ".join(
                f"{name} p50 {stage['p50_us'] / 1000:.2f} / p99 {stage['p99_us'] / 1000:.2f} ms"
                for name, stage in stages.items()
            )
            + (
                f"  gate p50 {row['gate'].get('p50')} / p99 {row['gate'].get('p99')} µs"
                if row.get("gate")
                else ""
            ),
        )


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return 0.5 * (ordered[middle - 1] + ordered[middle])


def print_medians(rows: list[dict[str, Any]]) -> None:
    print("median over rounds (ms):")
    for variant in VARIANTS:
        mine = [r["latency"] for r in rows if r["variant"] == variant and r["latency"].get("count")]
        if not mine:
            continue
        cells = []
        for kind, source in (("wall", lambda x: x), ("cpu", lambda x: x.get("cpu", {}))):
            for q in ("p50_us", "p95_us", "p99_us", "max_us"):
                values = [source(x).get(q) for x in mine if source(x).get(q) is not None]
                if values:
                    cells.append(f"{kind} {q[:-3]} {_median(values) / 1000:.2f}")
        print(f"  {variant:<7} " + "  ".join(cells))


def print_components(row: dict[str, Any], top: int = 25) -> None:
    components = row.get("components") or {}
    records = max(row["records"], 1)
    engine_us = row["engine_thread_cpu_s"] * 1e6 / records
    metered = sum(c["own_us_per_record"] for c in components.values())
    print(
        f"engine thread CPU per record ({row['variant']}, profiled run, {row['records']:,} "
        f"records): {engine_us:.0f} µs, of which in the handlers below {metered:.0f} µs; the rest "
        "is Nautilus (engines, cache, message bus, orders), the event loop and start/stop",
    )
    for label, c in list(components.items())[:top]:
        print(
            f"  {label:<52} {c['own_us_per_record']:7.1f} µs/record  {c['calls']:>7} calls  "
            f"p99 {c['p99_us_per_call']:8.1f} µs/call  max {c['max_us_per_call'] / 1000:7.1f} ms",
        )


def print_span(row: dict[str, Any], top: int = 8) -> None:
    span = row.get("span") or {}
    if not span.get("orders"):
        print("span: no orders")
        return
    cpu = span["cpu_us"]
    print(
        f"what an order's span holds ({row['variant']}, {row['pacing']}, traced run, "
        f"{span['orders']:,} orders): engine-thread CPU p50 {cpu['p50'] / 1000:.2f} / p99 "
        f"{cpu['p99'] / 1000:.2f} ms; orders with another replayed record handled inside the "
        f"span: {span['with_other_records']:,} (max {span['other_records_max']}); data queue "
        f"depth at OrderInitialized: {span['queue_depth_at_init']}",
    )
    for title, before, after, rest in (
        ("mean per order", "before_init_mean_us", "after_init_mean_us", "unwrapped_mean_us"),
        (
            f"the p99 tail ({span['tail_orders']} orders)",
            "tail_before_init_mean_us",
            "tail_after_init_mean_us",
            "tail_unwrapped_mean_us",
        ),
    ):
        print(f"  {title}, µs of own CPU; not in a project handler (Nautilus): {span[rest]:.0f}")
        for phase, key in (("arrival → OrderInitialized", before), ("→ submit", after)):
            cells = list(span[key].items())[:top]
            print(
                f"    {phase:<27} " + ", ".join(f"{label} {value:.0f}" for label, value in cells),
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="A paper config.")
    parser.add_argument("--catalog", type=Path, default=None, help="Default: GRODT_CATALOG.")
    parser.add_argument("--rounds", type=int, default=3, help="Runs of each variant.")
    parser.add_argument("--start", default=None, help="Replay window start (override).")
    parser.add_argument("--end", default=None, help="Replay window end (override).")
    parser.add_argument("--no-profile", action="store_true", help="Skip the profiling run.")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="PATH=VALUE override of the config, repeatable.",
    )
    parser.add_argument(
        "--variants",
        default=",".join(DEFAULT_VARIANTS),
        help=f"Comma-separated, in the order run each round (of {', '.join(VARIANTS)}).",
    )
    parser.add_argument("--child", choices=list(VARIANTS), default=None, help=argparse.SUPPRESS)
    parser.add_argument("--profile-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--span-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--pacing",
        choices=("lockstep", "accelerated"),
        default="lockstep",
        help="Replay pacing (accelerated: records of one timestamp are queued together).",
    )
    parser.add_argument(
        "--speed",
        type=float,
        default=4_320_000.0,
        help="Accelerated pacing: data seconds per wall second (default: a daily bar each 20 ms).",
    )
    parser.add_argument("--no-span", action="store_true", help="Skip the span-composition run.")
    args = parser.parse_args()

    if args.catalog is None:
        from grodt.core.settings import get_settings

        args.catalog = get_settings().catalog
    if args.child:
        args.variant = args.child
        print(json.dumps(run_once(args)))
        return

    from catalogs.sample import build_sample_catalog

    build_sample_catalog(args.catalog, datasets=("sp500", "stocks"), if_missing=True)
    print(
        f"full-stack bar arrival → order submitted, {args.pacing} paper node, {args.config.name} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}); "
        f"{args.rounds} rounds, variants alternating",
    )
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"--variants: unknown {sorted(unknown)} (known: {', '.join(VARIANTS)})")
    rows = []
    for _ in range(args.rounds):
        for variant in variants:
            row = _child(args, variant, profile=False)
            print_run(row)
            rows.append(row)
    print_medians(rows)
    spanned = None
    if not args.no_span:
        spanned = _child(args, "after", profile=False, span=True)
        print_span(spanned)
    profiled = None
    if not args.no_profile:
        profiled = _child(args, "after", profile=True)
        print_components(profiled)
    if args.json:
        payload = {
            "runs": rows,
            "profile": profiled,
            "span": spanned,
            "machine": platform.machine(),
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
