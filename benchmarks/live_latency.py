"""Benchmark: bar arrival → order submitted latency inside the paper TradingNode.

Runs paper configs (replay + sandbox) and prints the latency the node measured itself
(:mod:`grodt.nodes.latency`: stamps at the replay client's publish, at the data engine's dispatch,
at ``OrderInitialized`` and at the sandbox's ``submit_order``), as P50/P95/P99/max and per stage:

- queue:  replay publish → data engine dispatch (the live data queue);
- decide: dispatch → OrderInitialized (every subscriber before the decision, then the decision);
- route:  OrderInitialized → venue submit (risk engine, portfolio risk gate, exec engine, queues).

Default: the demo EMA cross (minimal stack) and ``parity_sample_full.yaml`` (regime actor,
S1/S2/S3, risk gate, forensics). Then the cost of one synchronous venue-event section of the
sandbox (entered for every bar and every command; a counter flip, goal < 2 µs), on a built node
of the first config. A script that prints figures, not a test::

    .venv/bin/python benchmarks/live_latency.py --catalog data/catalog
    .venv/bin/python benchmarks/live_latency.py --pacing accelerated --speed 864000 --json out.json

The sample catalog is built into ``--catalog`` if its datasets are missing.
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = (
    REPO / "node_configs" / "live" / "ema_cross_sp500_paper.yaml",
    REPO / "node_configs" / "live" / "parity_sample_full.yaml",
)


def ensure_sample(catalog: Path) -> None:
    from catalogs.sample import build_sample_catalog

    build_sample_catalog(catalog, datasets=("sp500", "stocks"), if_missing=True)


def run_one(
    config: Path,
    catalog: Path,
    pacing: str,
    speed: float,
    start: str | None,
    end: str | None,
    overrides: tuple[str, ...] = (),
) -> dict[str, Any]:
    from grodt.nodes.live import LiveNode
    from node_configs.live_schema import load_live_config

    spec = load_live_config(config, overrides)
    replay = spec.replay
    if replay is None:
        raise SystemExit(f"{config}: not a paper config (no replay data client)")
    update: dict[str, Any] = {"pacing": pacing, "speed": speed}
    if start:
        update["start"] = start
    if end:
        update["end"] = end
    spec = spec.model_copy(
        update={
            "data_clients": [replay.model_copy(update=update)],
            "operations": spec.operations.model_copy(update={"health_interval_seconds": None}),
        },
    )
    with tempfile.TemporaryDirectory(prefix="grodt-latency-") as run_dir:
        started = time.perf_counter()
        outcome = LiveNode(spec, Path(run_dir), catalog=catalog, quiet=True).run()
        wall = time.perf_counter() - started
    summary = outcome.summary
    return {
        "config": config.name,
        "pacing": pacing,
        "orders": summary.get("orders"),
        "records": summary["replay"].get("records"),
        "records_per_second": summary["replay"].get("records_per_second"),
        "wall_seconds": wall,
        "latency": summary["latency"],
    }


def synchronous_section_us(config: Path, catalog: Path, sections: int = 2_000) -> float:
    """Best of 5: µs per ``with sandbox._synchronous_events(): pass`` on a built paper node."""
    from grodt.nodes.live import LiveNode
    from node_configs.live_schema import load_live_config

    spec = load_live_config(config)
    with tempfile.TemporaryDirectory(prefix="grodt-latency-") as run_dir:
        node = LiveNode(spec, Path(run_dir), catalog=catalog, quiet=True)
        node.build()
        try:
            sandbox = node.sandboxes[0]
            best = float("inf")
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(sections):
                    with sandbox._synchronous_events():
                        pass
                best = min(best, (time.perf_counter() - started) / sections)
        finally:
            node._dispose()
    return best * 1e6


def print_row(row: dict[str, Any]) -> None:
    latency = row["latency"]
    if not latency.get("count"):
        print(f"{row['config']:<30} no orders")
        return
    stages = latency["stages"]
    print(
        f"{row['config']:<30} {row['pacing']:<11} orders {latency['count']:>6}  "
        f"p50 {latency['p50_us']:8.0f} µs  p95 {latency['p95_us']:8.0f} µs  "
        f"p99 {latency['p99_us']:8.0f} µs  max {latency['max_us']:9.0f} µs   "
        f"({row['records']:,} records, {row['records_per_second'] or 0:,.0f}/s)",
    )
    print(
        " " * 32
        + "  ".join(
            f"{name} p50 {stage['p50_us']:.0f} / p99 {stage['p99_us']:.0f} µs"
            for name, stage in stages.items()
        ),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, action="append", help="Paper config (repeatable).")
    parser.add_argument("--catalog", type=Path, default=None, help="Default: GRODT_CATALOG.")
    parser.add_argument("--pacing", choices=["lockstep", "accelerated"], default="lockstep")
    parser.add_argument("--speed", type=float, default=864_000.0, help="Accelerated pacing.")
    parser.add_argument("--start", default=None, help="Replay window start (override).")
    parser.add_argument("--end", default=None, help="Replay window end (override).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="PATH=VALUE override of every config, repeatable "
        "(e.g. actors[0].config.walk_forward.refit_lag_bars=1).",
    )
    args = parser.parse_args()

    from grodt.core.settings import get_settings

    catalog = args.catalog or get_settings().catalog
    ensure_sample(catalog)
    configs = args.config or list(DEFAULT_CONFIGS)
    print(
        f"bar arrival → order submitted, measured inside the paper node "
        f"({platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()})",
    )
    rows = []
    for config in configs:
        row = run_one(
            config,
            catalog,
            args.pacing,
            args.speed,
            args.start,
            args.end,
            tuple(args.overrides),
        )
        print_row(row)
        rows.append(row)
    section_us = synchronous_section_us(configs[0], catalog)
    print(f"sandbox synchronous venue-event section: {section_us:.3f} µs (goal < 2 µs)")
    if args.json:
        payload = {"runs": rows, "synchronous_section_us": section_us}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
