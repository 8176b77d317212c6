"""Benchmark: the meta-controller's own CPU per bar and per rebalance, full stack, before/after.

Runs the backtest twin of a paper config (default ``parity_sample_full.yaml``: regime actor,
meta-controller, S1/S2/S3, the RL ensemble, risk gate, forensics; the same components and bars
as the lockstep paper node) in fresh processes, alternating ``before`` (the meta-controller and
its features, ``actors/meta_controller.py`` and ``models/meta/features.py``, as they were at
``--before-rev``; everything else this tree's) and ``after`` (this tree), ``--rounds`` times
each. In every run the meta-controller's ``on_bar``, ``_mark`` and ``_rebalance`` and every
handler of the node's other components are wrapped with ``time.thread_time_ns``; a call's own
CPU excludes the handlers of other components it triggers (the strategies' ``on_data`` for the
published allocations, the forensics bridge's record handler), so what is printed is the
meta-controller's own work. Per bar: ``on_bar`` (the mark every clock bar, the rebalance every
``rebalance_every``); per rebalance: ``_rebalance``. Mean, P50, P99 and max in µs, and the
median of the rounds; the load average before each run.

Each run also keeps every ``AllocationRecord`` the meta-controller published; the script checks
that both revisions published the same records bit for bit (floats compared by their bits)
and says so. A script that prints figures, not a test::

    nice -n 10 .venv/bin/python benchmarks/meta_bar_cost.py --rounds 2
    nice -n 10 .venv/bin/python benchmarks/meta_bar_cost.py --before-rev HEAD~3 --end 2008-12-31

Figures and their reading: ``docs/meta.md`` ("Cost on the engine thread").
"""

import argparse
import importlib.util
import json
import math
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "node_configs" / "live" / "parity_sample_full.yaml"
BEFORE_REV = "e350f91"
"""The last commit before the meta-controller's per-bar path was cut (docs/meta.md)."""
SWAPPED = {
    "models.meta.features": "models/meta/features.py",
    "actors.meta_controller": "actors/meta_controller.py",
}
"""Modules the ``before`` variant loads from ``--before-rev`` (dependencies first)."""
METERED = (
    "on_bar",
    "_mark",
    "_account_equity",
    "_open_values",
    "_rebalance",
    "_inputs",
    "_publish",
)


class OwnCpuMeter:
    """Own engine-thread CPU (ns) per call of wrapped methods, other components' nested calls
    subtracted (a nested call of the same class stays in its caller's figure)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[int]] = {}
        self._frames: list[list[Any]] = []  # [class, foreign ns]

    def wrap(self, cls: type, name: str, keep: bool) -> None:
        method = getattr(cls, name, None)
        if not callable(method) or getattr(method, "_metered", False):
            return
        label = f"{cls.__name__}.{name}"
        frames = self._frames
        samples = self.samples.setdefault(label, []) if keep else None
        clock = time.thread_time_ns

        def metered(*args: Any, **kwargs: Any) -> Any:
            started = clock()
            frame = [cls, 0]
            frames.append(frame)
            try:
                return method(*args, **kwargs)
            finally:
                elapsed = clock() - started
                frames.pop()
                if samples is not None:
                    samples.append(elapsed - frame[1])
                if frames:
                    parent = frames[-1]
                    parent[1] += frame[1] if parent[0] is cls else elapsed

        metered._metered = True  # type: ignore[attr-defined]
        setattr(cls, name, metered)


def _load_before(rev: str, into: Path) -> None:
    """Import the ``SWAPPED`` modules from ``rev`` under their own names (the ``models.meta``
    package first, from this tree: its ``__init__`` may name what ``rev`` did not have)."""
    importlib.import_module("models.meta")
    for module, path in SWAPPED.items():
        source = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        file = into / path.replace("/", "_")
        file.write_text(source)
        spec = importlib.util.spec_from_file_location(module, file)
        assert spec is not None and spec.loader is not None
        loaded = importlib.util.module_from_spec(spec)
        sys.modules[module] = loaded
        spec.loader.exec_module(loaded)


def _handler_names(cls: type) -> list[str]:
    prefixes = ("on_", "_on_", "handle_")
    skipped = {"on_start", "on_stop", "on_dispose", "on_save", "on_load", "on_reset"}
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass.__module__.split(".")[0] in {"actors", "strategies", "risk_engine", "grodt"}:
            names.update(n for n in klass.__dict__ if n.startswith(prefixes))
    return sorted(names - skipped)


def child(args: argparse.Namespace, variant: str, out: Path) -> None:
    """One run (in its own process): meter, run the backtest, write samples and records."""
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory() as tmp:
        if variant == "before":
            _load_before(args.before_rev, Path(tmp))
        from actors.meta_controller import MetaController
        from grodt.core.topics import Topics
        from grodt.nodes.backtest import run_backtest
        from node_configs.live_schema import backtest_twin
        from node_configs.live_schema import load_node_config
        from node_configs.loader import import_object

        spec = load_node_config(args.config)
        backtest = backtest_twin(spec, args.config) if spec.kind == "live" else spec
        updates = {key: value for key in ("start", "end") if (value := getattr(args, key))}
        backtest = backtest.model_copy(update=updates)
        meter = OwnCpuMeter()
        for name in METERED:
            meter.wrap(MetaController, name, keep=True)
        others = {import_object(c.path) for c in [*backtest.actors, *backtest.strategies]}
        others.add(import_object("actors.forensics_bridge:ForensicsBridge"))
        for cls in others - {MetaController}:
            for name in _handler_names(cls):
                meter.wrap(cls, name, keep=False)
        records: list[dict[str, Any]] = []
        started_actor = MetaController.on_start

        def on_start(self: Any) -> None:
            started_actor(self)
            self.msgbus.subscribe(
                topic=Topics.ALLOCATIONS, handler=lambda r: records.append(r.model_dump())
            )

        MetaController.on_start = on_start  # type: ignore[method-assign]
        load = os.getloadavg()[0]
        started = time.perf_counter()
        run_backtest(backtest, Path(args.catalog), Path(tmp) / "run", quiet=True)
        wall = time.perf_counter() - started
    samples = {k.split(".")[1]: v for k, v in meter.samples.items()}
    with open(out, "wb") as f:
        pickle.dump({"samples": samples, "records": records, "load": load, "wall": wall}, f)


def _identical(a: Any, b: Any) -> bool:
    """Equal, floats by their bits (NaN equal to NaN of the same bits)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a.hex() == b.hex() if not math.isnan(a) else math.isnan(b)
    if isinstance(a, dict):
        return list(a) == list(b) and all(_identical(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_identical(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def figures(ns: list[int]) -> dict[str, float]:
    us = np.asarray(ns, dtype=float) / 1e3
    p50, p99 = np.percentile(us, [50, 99])
    return {"mean": us.mean(), "p50": p50, "p99": p99, "max": us.max(), "n": len(us)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=str(DEFAULT_CONFIG))
    parser.add_argument("--catalog", default=str(REPO / "data" / "catalog"))
    parser.add_argument("--before-rev", default=BEFORE_REV)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--start", help="Data window start (override).")
    parser.add_argument("--end", help="Data window end (override).")
    parser.add_argument("--json", help="Also write the figures here.")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        variant, out = args.child
        child(args, variant, Path(out))
        return
    print(f"{os.uname().machine}, {os.cpu_count()} CPUs; before = {args.before_rev}, after = tree")
    rows: dict[str, list[dict[str, Any]]] = {"before": [], "after": []}
    first: dict[str, list[dict[str, Any]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.rounds):
            for variant in ("before", "after"):
                out = Path(tmp) / f"{variant}{round_}.pkl"
                command = [sys.executable, __file__, "--config", args.config, "--catalog"]
                command += [args.catalog]
                command += ["--before-rev", args.before_rev, "--child", variant, str(out)]
                command += [f"--start={args.start}"] if args.start else []
                command += [f"--end={args.end}"] if args.end else []
                subprocess.run(command, check=True, cwd=REPO)
                with open(out, "rb") as f:
                    result = pickle.load(f)
                first.setdefault(variant, result["records"])
                row = {name: figures(ns) for name, ns in result["samples"].items()}
                row["load"], row["wall"] = result["load"], result["wall"]
                rows[variant].append(row)
                line = "  ".join(
                    f"{name} mean {f['mean']:6.1f} P50 {f['p50']:6.1f} P99 {f['p99']:7.1f}"
                    for name, f in row.items()
                    if isinstance(f, dict)
                )
                print(f"round {round_} {variant:<6} load {row['load']:.1f}  {line}", flush=True)
    same = len(first["before"]) == len(first["after"]) and all(
        _identical(a, b) for a, b in zip(first["before"], first["after"], strict=True)
    )
    print(
        f"records: {len(first['before'])} before, {len(first['after'])} after, "
        f"{'bit-identical' if same else 'DIFFERENT'}"
    )
    print("medians of the rounds (µs own CPU):")
    for variant, runs in rows.items():
        for name in METERED:
            cells = [
                f"{key} {statistics.median(r[name][key] for r in runs):7.1f}"
                for key in ("mean", "p50", "p99", "max")
            ]
            print(f"  {variant:<6} {name:<10} {'  '.join(cells)}  (n={runs[0][name]['n']})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows, "identical": same}, indent=2))
    if not same:
        sys.exit(1)


if __name__ == "__main__":
    main()
