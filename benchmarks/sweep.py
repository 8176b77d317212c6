"""A 50-trial sweep on a local process pool and on a Ray head with 2 CPUs: wall time of each,
the best trial's Sharpe ratio and its deflated Sharpe (issue 16, closing-note figures).

The sweep is the demo config (EMA cross on the real daily S&P 500, 1999–2018, 5,031 bars) over
its fast and slow EMA periods (``int:5:50`` and ``int:60:200:5``), TPE with a fixed seed, 2
trials at a time, every trial tracked as a nested MLflow run in a fresh embedded SQLite store.
The two executors run the same seeded sweep, so they must find the same trials: the script checks
it. The Ray head is started on loopback by :func:`grodt.test_kit.ray.ray_head` (its start-up is
timed apart from the sweep's wall time) and stopped at the end.

Usage::

    .venv/bin/python benchmarks/sweep.py --catalog data/catalog [--trials 50] [--seed 16]
"""

import argparse
import os
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"
PARAMS = (
    "strategies[0].config.fast_ema_period=int:5:50",
    "strategies[0].config.slow_ema_period=int:60:200:5",
)


def _run(root: Path, catalog: Path, trials: int, seed: int, ray_address: str | None):
    from grodt.experiments.sweep import run_sweep
    from grodt.experiments.sweep_params import parse_param
    from grodt.tracking.store import TrackingStore

    store = TrackingStore(uri=f"sqlite:///{root / 'mlflow.db'}", artifact_root=str(root / "art"))
    started = time.perf_counter()
    result = run_sweep(
        CONFIG,
        [parse_param(text) for text in PARAMS],
        trials,
        catalog,
        sampler="tpe",
        seed=seed,
        workers=2,
        ray_address=ray_address,
        sweep_dir=root / "sweep",
        store=store,
    )
    return result, time.perf_counter() - started


def _report(label: str, result, wall: float) -> None:
    best = result.best
    figures = result.credibility
    failed = sum(t.state != "COMPLETE" for t in result.trials)
    print(
        f"{label:<28} wall {wall:7.1f} s  ({len(result.trials)} trials, {failed} failed, "
        f"{wall / len(result.trials):.2f} s/trial)",
    )
    print(
        f"{'':<28} best trial {best.number}: Sharpe {best.value:.3f} {best.params}; "
        f"buy and hold Sharpe {best.summary.get('benchmark_sharpe', float('nan')):.3f}",
    )
    print(
        f"{'':<28} deflated Sharpe {figures['dsr']:.3f} (expected max Sharpe of "
        f"{int(figures['n_trials'])} noise trials {figures['expected_max_sharpe']:.3f}, PSR vs 0 "
        f"{figures['psr']:.3f}); PBO {figures.get('pbo', float('nan')):.3f}",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "catalog")
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--skip-ray", action="store_true", help="Only the local pool.")
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    catalog = args.catalog.resolve()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        root = Path(tmp)
        os.environ["GRODT_RUNS_DIR"] = str(root / "runs")
        print(
            f"{args.trials}-trial sweep of {CONFIG.name} over {', '.join(PARAMS)}, TPE seed "
            f"{args.seed}, 2 at a time; {os.cpu_count()} CPUs"
        )
        local, local_wall = _run(root / "local", catalog, args.trials, args.seed, None)
        _report("local pool (2 processes)", local, local_wall)
        if args.skip_ray:
            return
        from grodt.test_kit.ray import ray_head

        started = time.perf_counter()
        with ray_head(num_cpus=2) as head:
            print(f"{'Ray head start':<28} {time.perf_counter() - started:7.1f} s ({head.address})")
            on_ray, ray_wall = _run(root / "ray", catalog, args.trials, args.seed, head.address)
        _report("Ray (head, 2 CPUs)", on_ray, ray_wall)
        same = [(t.params, round(t.value, 12)) for t in local.trials] == [
            (t.params, round(t.value, 12)) for t in on_ray.trials
        ]
        print(f"same trials and values on both: {same}")


if __name__ == "__main__":
    main()
