"""Soak: a paper node replaying at an accelerated pace for ``--duration`` seconds; memory watch.

The replay speed is chosen so that the configured data lasts the whole duration (gaps longer than
three typical gaps, nights and weekends, are capped), so the node trades at a steady pace from
start to end. A sampler thread records the process RSS every ``--sample-seconds``; the node's own
health line (every ``--health-seconds``) records queue depths, open orders and positions.

Verdict: after a warm-up (the first ``--warmup`` fraction of the run), the RSS slope (least
squares, MB per hour) and the growth between the first and last warm samples must stay below
``--max-growth-mb``; queue depths must come back to zero. The closing note of the live issue asks
for one hour (the default); a short run checks the mechanics::

    .venv/bin/python benchmarks/live_soak.py --duration 3600 --catalog data/catalog --json soak.json
    .venv/bin/python benchmarks/live_soak.py --duration 120 --catalog data/catalog

The default config is the fullest paper stack (``parity_sample_full.yaml``), with the cache purge
enabled so that closed orders and positions do not accumulate (as a deployment would run).
"""

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "node_configs" / "live" / "parity_sample_full.yaml"


class RssSampler(threading.Thread):
    """Samples this process's RSS (MB) every ``interval`` seconds until stopped."""

    def __init__(self, interval: float) -> None:
        super().__init__(daemon=True, name="rss-sampler")
        self.interval = interval
        self.samples: list[tuple[float, float]] = []
        self._halt = threading.Event()
        self._process = psutil.Process()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._halt.is_set():
            self.samples.append(
                (time.monotonic() - self._t0, self._process.memory_info().rss / 1e6),
            )
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


def pace_for(config: Path, catalog: Path, duration: float) -> tuple[float, float, int]:
    """(speed, max_gap_seconds, records) making the replay last ``duration`` wall seconds."""
    from grodt.nodes.adapters.paper import replay_client_config
    from grodt.nodes.replay import ReplayDataClient
    from node_configs.live_schema import load_live_config

    spec = load_live_config(config)
    assert spec.replay is not None
    client_config = replay_client_config(spec.replay, catalog)
    stamps = sorted({r.ts_init for r in _records(client_config, ReplayDataClient)})
    gaps = np.diff(np.asarray(stamps, dtype=np.int64)) / 1e9
    typical = float(np.median(gaps[gaps > 0])) if len(gaps) else 60.0
    capped = np.minimum(gaps, 3 * typical)
    speed = float(capped.sum()) / duration
    return speed, 3 * typical / speed, len(stamps)


def _records(client_config: Any, client_cls: Any) -> list[Any]:
    from nautilus_trader.backtest.node import BacktestNode

    records: list[Any] = []
    for data in client_config.data:
        result = BacktestNode.load_data_config(data, client_config.start, client_config.end)
        records.extend(result.data or [])
    return records


def slope_mb_per_hour(samples: list[tuple[float, float]]) -> float:
    if len(samples) < 3:
        return float("nan")
    t = np.asarray([s[0] for s in samples])
    rss = np.asarray([s[1] for s in samples])
    return float(np.polyfit(t, rss, 1)[0] * 3600.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=3600.0, help="Seconds (default 1 h).")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG)
    parser.add_argument("--catalog", type=Path, default=None, help="Default: GRODT_CATALOG.")
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument("--health-seconds", type=float, default=30.0)
    parser.add_argument("--warmup", type=float, default=0.2, help="Fraction of the run ignored.")
    parser.add_argument("--max-growth-mb", type=float, default=50.0)
    parser.add_argument("--no-purge", action="store_true", help="Keep every closed order.")
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from catalogs.sample import build_sample_catalog
    from grodt.core.settings import get_settings
    from grodt.nodes.live import LiveNode
    from node_configs.live_schema import CachePurgeSpec
    from node_configs.live_schema import load_live_config

    catalog = args.catalog or get_settings().catalog
    build_sample_catalog(catalog, datasets=("sp500", "stocks"), if_missing=True)
    speed, max_gap, records = pace_for(args.config, catalog, args.duration)
    spec = load_live_config(args.config)
    assert spec.replay is not None
    purge = (
        CachePurgeSpec()
        if args.no_purge
        else CachePurgeSpec(
            closed_orders_interval_mins=1,
            closed_orders_buffer_mins=1,
            closed_positions_interval_mins=1,
            closed_positions_buffer_mins=1,
            account_events_interval_mins=1,
            account_events_lookback_mins=1,
        )
    )
    spec = spec.model_copy(
        update={
            "data_clients": [
                spec.replay.model_copy(
                    update={"pacing": "accelerated", "speed": speed, "max_gap_seconds": max_gap},
                ),
            ],
            "operations": spec.operations.model_copy(
                update={"health_interval_seconds": args.health_seconds},
            ),
            "cache_purge": purge,
        },
    )
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="grodt-soak-"))
    print(
        f"soak: {args.config.name}, {records:,} timestamps over {args.duration:.0f} s "
        f"(speed {speed:,.0f}x, gaps capped at {max_gap:.3f} s), run dir {run_dir}",
    )
    sampler = RssSampler(args.sample_seconds)
    sampler.start()
    started = time.perf_counter()
    outcome = LiveNode(spec, run_dir, catalog=catalog, quiet=True).run()
    wall = time.perf_counter() - started
    sampler.stop()

    samples = sampler.samples
    warm = [s for s in samples if s[0] >= args.warmup * wall] or samples
    health = [
        json.loads(line)
        for line in (run_dir / "health.jsonl").read_text().splitlines()
        if line.strip()
    ]
    max_queue = max((max(h["queues"].values()) for h in health), default=0)
    last_queue = max(health[-1]["queues"].values()) if health else 0
    result = {
        "config": args.config.name,
        "duration_s": wall,
        "records": outcome.summary["replay"].get("records"),
        # The cache purge drops closed orders, so the end-of-run report holds only the open ones;
        # the latency tracker counts every order submitted.
        "orders_submitted": (outcome.summary.get("latency") or {}).get("count", 0),
        "orders_in_cache_at_end": outcome.summary.get("orders"),
        "rss_start_mb": samples[0][1],
        "rss_warm_start_mb": warm[0][1],
        "rss_end_mb": samples[-1][1],
        "rss_max_mb": max(s[1] for s in samples),
        "rss_warm_growth_mb": warm[-1][1] - warm[0][1],
        "rss_slope_mb_per_hour": slope_mb_per_hour(warm),
        "rss_median_mb": statistics.median(s[1] for s in warm),
        "max_queue_depth": max_queue,
        "final_queue_depth": last_queue,
        "health_lines": len(health),
        "latency": outcome.summary.get("latency"),
        "stopped_by": outcome.summary.get("stopped_by"),
        "purge": not args.no_purge,
    }
    result["bounded"] = bool(
        result["rss_warm_growth_mb"] < args.max_growth_mb and last_queue == 0,
    )
    print(
        f"RSS start {result['rss_start_mb']:.0f} MB, "
        f"after warm-up {result['rss_warm_start_mb']:.0f} MB, "
        f"end {result['rss_end_mb']:.0f} MB, max {result['rss_max_mb']:.0f} MB; "
        f"growth after warm-up {result['rss_warm_growth_mb']:+.1f} MB (slope "
        f"{result['rss_slope_mb_per_hour']:+.1f} MB/h); queues max {max_queue}, end {last_queue}; "
        f"{result['orders_submitted']:,} orders submitted, "
        f"{result['records']:,} records in {wall:.0f} s",
    )
    latency = result["latency"] or {}
    if latency.get("count"):
        print(
            f"latency p50 {latency['p50_us']:.0f} µs, p95 {latency['p95_us']:.0f} µs, "
            f"p99 {latency['p99_us']:.0f} µs",
        )
    print("verdict:", "BOUNDED" if result["bounded"] else "GROWING — inspect the samples")
    if args.json:
        result["samples"] = samples
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
