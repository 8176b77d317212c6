"""Wall time of a short backtest with tracking and the tearsheet on, and where it goes.

Runs the demo config restricted to one year of daily bars (2018: 251 bars, a temporary YAML that
includes the demo's venue and strategy) as ``python -m grodt backtest`` in fresh processes,
alternating three variants so that machine load hits them alike:

- ``full``: the defaults (tearsheet on, MLflow tracking to a migrated embedded SQLite store);
- ``no-track``: ``--no-track`` (the run's bundle is still written);
- ``bare``: ``--no-track --no-tearsheet``.

Prints the median wall, user and system seconds per variant, then one in-process breakdown of a
``full`` run by phase (imports, the node run, the tearsheet, tracking).

Usage::

    .venv/bin/python benchmarks/short_run.py --catalog data/catalog [--repeat 5]
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
VARIANTS = {"full": [], "no-track": ["--no-track"], "bare": ["--no-track", "--no-tearsheet"]}
BREAKDOWN = """
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from grodt.cli.backtest import _track, _write_tearsheet
from grodt.nodes.backtest import run_backtest
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_config, load_yaml_document
t1 = time.perf_counter()
config, catalog, run_dir = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
spec = load_backtest_config(config)
outcome = run_backtest(spec, catalog, run_dir, document=load_yaml_document(config), quiet=True)
t2 = time.perf_counter()
_write_tearsheet(run_dir)
t3 = time.perf_counter()
store = resolve_store()
tracked = _track(run_dir, spec, load_yaml_document(config), outcome.summary, catalog, store,
                 config, None)
t4 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "config + node run + reports": t2 - t1,
                  "engine run": outcome.summary["wall_seconds"], "tearsheet": t3 - t2,
                  "tracking": t4 - t3, "tracking_status": tracked.get("status")}))
"""


def _config(directory: Path) -> Path:
    demo = REPO / "node_configs" / "backtest"
    document = {
        "name": "short_run",
        "description": "the demo restricted to 2018 (251 daily bars)",
        "start": "2018-01-01",
        "end": "2018-12-31T23:59:59",
        "venues": [{"include": str(REPO / "node_configs" / "venues" / "sample_cash.yaml")}],
        "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
        "strategies": [
            {"include": str(demo.parent / "components" / "strategies" / "ema_cross_spx.yaml")},
        ],
        "benchmark": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
    }
    path = directory / "short_run.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _timed(command: list[str], env: dict[str, str]) -> tuple[float, float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "catalog")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = _config(root)
        env = {**os.environ, "GRODT_RUNS_DIR": str(root / "runs")}
        env.pop("GRODT_TRACKING_URI", None)
        env.pop("MLFLOW_TRACKING_URI", None)
        base = [sys.executable, "-m", "grodt", "backtest", str(config), "--catalog"]
        base.append(str(args.catalog))
        # First run: MLflow creates and migrates the store (seconds, once per runs directory).
        _timed(base, env)
        times: dict[str, list[tuple[float, float, float]]] = {k: [] for k in VARIANTS}
        for _ in range(args.repeat):
            for name, extra in VARIANTS.items():
                times[name].append(_timed(base + extra, env))
        print(f"one-year demo (251 bars), {args.repeat} runs per variant, median seconds:")
        for name, rows in times.items():
            wall, user, system = (statistics.median(column) for column in zip(*rows, strict=True))
            print(f"  {name:<9} wall {wall:5.2f}   user {user:5.2f}   sys {system:5.2f}")
        result = subprocess.run(
            [sys.executable, "-c", BREAKDOWN, str(config), str(args.catalog), str(root / "one")],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        phases = json.loads(result.stdout.strip().splitlines()[-1])
        print("one full run in-process, seconds:")
        for key, value in phases.items():
            shown = f"{value:.3f}" if isinstance(value, float) else value
            print(f"  {key:<28} {shown}")


if __name__ == "__main__":
    main()
