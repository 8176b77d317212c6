"""Tracking at scale: N concurrent processes logging metrics to PostgreSQL and to SQLite.

Starts its own PostgreSQL server (``grodt.test_kit.pgcluster``, durable commits: fsync and
synchronous_commit on) and a fresh embedded SQLite store, then for each store and mode runs
``--writers`` processes, each logging ``--keys`` metrics per step at ``--steps-per-second`` for
``--duration`` seconds, and reads every run back to count lost metrics.

Modes (see ``grodt.test_kit.loadgen``):

- ``stream``: grodt's MetricStream with one-transaction SQL commits (what TrainingRun uses);
- ``stream-mlflow``: the same stream committing through MLflow's ``log_batch``;
- ``mlflow-async``: MLflow's ``log_metric(..., synchronous=False)``;
- ``sync``: MLflow's ``log_metric`` (blocking).

Usage::

    .venv/bin/python benchmarks/tracking_scale.py                      # 20 writers, 120 s
    .venv/bin/python benchmarks/tracking_scale.py --duration 300 --json results.json
    .venv/bin/python benchmarks/tracking_scale.py --stores postgresql --modes stream

Required: durable P95 < 10 ms for 20+ writers, 0 metrics lost; aim: caller-side P95 < 1 ms.
"""

import argparse
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from grodt.test_kit.loadgen import MODES
from grodt.test_kit.loadgen import run_load
from grodt.test_kit.pgcluster import TemporaryPostgres
from grodt.tracking.store import TrackingStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, default=20)
    parser.add_argument("--duration", type=float, default=120.0, help="seconds per run")
    parser.add_argument("--steps-per-second", type=float, default=10.0)
    parser.add_argument("--keys", type=int, default=5, help="metrics per step")
    parser.add_argument("--stores", default="postgresql,sqlite")
    parser.add_argument("--modes", default="stream,stream-mlflow,mlflow-async")
    parser.add_argument("--drain-timeout", type=float, default=120.0)
    parser.add_argument("--json", type=Path, default=None, help="write results here")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes {sorted(unknown)}; choose from {MODES}")
    rows = []
    print(
        f"{args.writers} writers x {args.keys} metrics x {args.steps_per_second}/s "
        f"for {args.duration:.0f} s per run; machine: {os.cpu_count()} CPUs, "
        f"load average {os.getloadavg()[0]:.1f}",
        flush=True,
    )
    header = (
        f"{'store':<11}{'mode':<15}{'logged':>9}{'lost':>6}{'caller p50':>12}"
        f"{'caller p95':>12}{'durable p50':>13}{'durable p95':>13}{'durable p99':>13}"
    )
    print(header)
    for store_name in args.stores.split(","):
        if store_name == "postgresql":
            # MLflow's async mode opens up to 10 threads x (5 + 10 pooled) connections per process.
            pg = TemporaryPostgres(max_connections=max(100, 25 * args.writers))
            pg.start()
        else:
            pg = None
            root = Path(tempfile.mkdtemp(prefix="grodt-sqlite-bench-"))
        try:
            for mode in modes:
                if pg is not None:
                    uri = pg.create_database(f"bench_{mode.replace('-', '_')}")
                    store = TrackingStore(uri=uri, artifact_root=tempfile.mkdtemp())
                else:
                    db = root / mode / "mlflow.db"
                    store = TrackingStore(uri=f"sqlite:///{db}", artifact_root=str(root / "art"))
                started = time.time()
                result = run_load(
                    store,
                    writers=args.writers,
                    duration_s=args.duration,
                    steps_per_second=args.steps_per_second,
                    keys=args.keys,
                    mode=mode,
                    drain_timeout_s=args.drain_timeout,
                )
                row = {"store_kind": store_name, **result.as_row()}
                row["wall_s"] = time.time() - started
                row["load_average"] = os.getloadavg()[0]
                rows.append(row)
                print(
                    f"{store_name:<11}{mode:<15}{result.logged:>9,}{result.lost:>6}"
                    f"{result.caller_p50_ms:>10.3f}ms{result.caller_p95_ms:>10.3f}ms"
                    f"{result.durable_p50_ms:>11.1f}ms{result.durable_p95_ms:>11.1f}ms"
                    f"{result.durable_p99_ms:>11.1f}ms"
                    + (f"  errors: {result.errors[:2]}" if result.errors else ""),
                    flush=True,
                )
        finally:
            if pg is not None:
                pg.stop()
            else:
                shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["lost"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
