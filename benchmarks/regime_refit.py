"""Benchmark: what a regime refit costs the thread that handles bars, synchronous vs in a worker
process (``walk_forward.refit_lag_bars``), and the time and memory of one daily retrain.

On a synthetic one-minute market (``grodt.test_kit.regime``), the walk-forward filter is fed bar
by bar with a daily refit (every 390 rows) on a trailing window; the wall time of every
``WalkForwardRegime.update`` call is recorded (the actor's per-bar work on the engine thread) and
summarised as P50/P95/P99/max over all bars, the bars that start a fit, the bars that swap a model
in, and the rest. Three runs: synchronous fits (``refit_lag_bars: 0``); fits in a worker with
``refit_lag_bars: 1`` fed back to back (a backtest: the swap bar waits for the fit); the same
with the fit awaited between bars, untimed (a live node, whose next bar comes a bar later).
Then one retrain (``fit_on_window`` on the window: EM warm-started from the previous model, plus
the filter run over the window) is timed, with its Python peak memory (tracemalloc) and the
worker's RSS. A script that prints figures, not a test::

    .venv/bin/python benchmarks/regime_refit.py [--bars 20000] [--train-bars 3900] [--json out.json]

``--stack`` measures the regime actor inside the full-stack backtest instead (variant ``d`` of
``benchmarks/throughput.py``: S1+S2+S3 on four synthetic instruments, the regime actor of
``node_configs/components/actors/regime_synthetic.yaml``, the risk gate, forensics to Parquet),
once per ``--lags`` value, alternating ``--repeat`` times, each run in a fresh process: event-loop
bars/s, the CPU time of the engine's thread over ``run_backtest`` (robust to other processes'
load; the worker's fits are not in it), the actor's fits (count, seconds, the longest), the
engine's waits for fits still running at their swap row (``refit_waits``), and with
``--profile`` the regime actor's share of the event loop (cProfile, cumulative
``RegimeActor.on_bar``; profiling slows the run, read shares)::

    nice -n 10 .venv/bin/python benchmarks/regime_refit.py --stack --bars 31200 --lags 0,195
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def _percentiles(values_us: np.ndarray) -> dict[str, float]:
    if len(values_us) == 0:
        return {}
    return {
        "count": len(values_us),
        "p50_us": float(np.percentile(values_us, 50)),
        "p95_us": float(np.percentile(values_us, 95)),
        "p99_us": float(np.percentile(values_us, 99)),
        "max_us": float(values_us.max()),
    }


def run(
    closes: np.ndarray,
    config: Any,
    executor: Any = None,
    bar_interval: bool = False,
) -> dict[str, Any]:
    """Feed the bars; with ``bar_interval`` a fit in flight is awaited between bars, untimed —
    a live node's next bar comes a bar interval later (60 s here), a retrain takes ~1 s."""
    from models.regime.walk_forward import WalkForwardRegime

    engine = WalkForwardRegime(config, on_info=lambda _m: None, executor=executor)
    stamps = (np.arange(len(closes), dtype=np.int64) + 1) * 60_000_000_000
    times = np.empty(len(closes))
    fitted = np.zeros(len(closes), dtype=bool)
    submitted = np.zeros(len(closes), dtype=bool)
    clock = time.perf_counter
    refitter = engine.refitter
    for i, (close, ts) in enumerate(zip(closes.tolist(), stamps.tolist(), strict=True)):
        in_flight = refitter.in_flight
        started = clock()
        step = engine.update(close, ts)
        times[i] = (clock() - started) * 1e6
        fitted[i] = step.status == "fitted"
        submitted[i] = refitter.in_flight and not in_flight
        if bar_interval:
            refitter.wait()
    return {
        "all_bars": _percentiles(times),
        "swap_bars": _percentiles(times[fitted]),
        "fit_start_bars": _percentiles(times[submitted & ~fitted]),
        "other_bars": _percentiles(times[~fitted & ~submitted]),
        "fits": len(engine.fits),
        "fit_wait_seconds": engine.fit_wait_seconds,
        "versions": [f.version for f in engine.fits],
    }


def _worker_rss_kb() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def one_retrain(closes: np.ndarray, config: Any) -> dict[str, float]:
    """One warm-started daily retrain on the last window, in-process (time, Python peak memory)
    and in a fresh worker process (its peak RSS)."""
    from models.regime.features import FeatureExtractor
    from models.regime.features import parse_features
    from models.regime.walk_forward import fit_on_window
    from models.regime.walk_forward import fit_window

    features = FeatureExtractor(parse_features(config.features)).transform(closes)
    rows = features[np.isfinite(features).all(axis=1)]
    stamps = (np.arange(len(closes), dtype=np.int64) + 1) * 60_000_000_000
    cut = len(closes) - 390
    previous = fit_window(config, closes[:cut], stamps[:cut]).to_dict()
    window = rows[-config.train_bars :]
    started = time.perf_counter()
    outcome = fit_on_window(config, window, previous, None)
    seconds = time.perf_counter() - started
    tracemalloc.start()  # a second run for memory: tracing slows Python code down
    fit_on_window(config, window, previous, None)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        baseline_kb = pool.submit(_worker_rss_kb).result()
        pool.submit(fit_on_window, config, window, previous, None).result()
        after_kb = pool.submit(_worker_rss_kb).result()
    return {
        "retrain_seconds": seconds,
        "retrain_em_seconds": outcome.seconds,
        "retrain_python_peak_mb": peak / 1e6,
        "worker_rss_idle_mb": baseline_kb / 1024,
        "worker_rss_peak_mb": after_kb / 1024,
        "window_rows": float(len(window)),
    }


# -- the regime actor inside the full stack --------------------------------------------------------


def _stack_document(bar_types: list[str], lag: int, fit_workers: int) -> dict[str, Any]:
    """Variant d of ``benchmarks/throughput.py`` with the regime component's ``refit_lag_bars``
    and ``fit_workers`` set."""
    import yaml

    sys.path.insert(0, str(REPO / "benchmarks"))
    from throughput import variant_document

    document = variant_document("d", bar_types)
    component = REPO / "node_configs" / "components" / "actors" / "regime_synthetic.yaml"
    regime = yaml.safe_load(component.read_text())
    config = dict(regime["config"], bar_types=bar_types, fit_workers=fit_workers)
    config["walk_forward"] = dict(config["walk_forward"], refit_lag_bars=lag)
    document["actors"] = [{"path": regime["path"], "config": config}]
    return document


def stack_child(catalog: str, bar_types: str, lag: int, fit_workers: int, profile: bool) -> None:
    """One full-stack backtest in this process; prints its figures as one JSON line."""
    import cProfile
    import pstats

    from actors.regime_actor import RegimeActor
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_document
    from node_configs.loader import resolve_includes

    summaries: list[dict[str, Any]] = []
    on_stop = RegimeActor.on_stop

    fits: list[dict[str, Any]] = []

    def summarise_on_stop(actor: RegimeActor) -> None:  # the actor is gone after the run
        summaries.append(actor.summary())
        for bar_type, regime in actor.filters.items():
            for i, fit in enumerate(regime.fits):
                fits.append(
                    {"bar_type": str(bar_type), "n": i, "row": fit.row, "seconds": fit.seconds}
                    | {"waited": fit.waited_seconds},
                )
        on_stop(actor)

    RegimeActor.on_stop = summarise_on_stop  # type: ignore[method-assign]
    document = _stack_document(bar_types.split(","), lag, fit_workers)
    spec = load_backtest_document(resolve_includes(document, REPO), "regime-refit-stack")
    profiler = cProfile.Profile() if profile else None
    with tempfile.TemporaryDirectory() as tmp:
        if profiler is not None:
            profiler.enable()
        cpu = time.thread_time()  # the engine's thread: robust to other processes' load
        outcome = run_backtest(spec, Path(catalog), Path(tmp) / "run", quiet=True)
        cpu = time.thread_time() - cpu
        if profiler is not None:
            profiler.disable()
    result: dict[str, Any] = {
        "lag": lag,
        "fit_workers": fit_workers,
        "bars": outcome.summary["bars_processed"],
        "orders": outcome.summary["orders"],
        "loop_seconds": outcome.summary["wall_seconds"],
        "bars_per_s": outcome.summary["bars_per_second"],
        "engine_thread_cpu_s": cpu,
    }
    regime = summaries[0] if summaries else {}
    result["fits"] = sum(int(s["fits"]) for s in regime.values())
    result["fit_seconds"] = sum(float(s["fit_seconds"]) for s in regime.values())
    result["refit_waits"] = sum(int(s["refit_waits"]) for s in regime.values())
    result["fit_wait_seconds"] = sum(float(s["fit_wait_seconds"]) for s in regime.values())
    first = [f["seconds"] for f in fits if f["n"] == 0]
    later = [f["seconds"] for f in fits if f["n"] > 0]
    result["first_fit_seconds_max"] = max(first, default=0.0)
    result["refit_seconds_median"] = float(np.median(later)) if later else 0.0
    result["refit_seconds_max"] = max(later, default=0.0)
    result["waited_fits"] = [(f["n"], f["row"], round(f["waited"], 3)) for f in fits if f["waited"]]
    if profiler is not None:
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        loop = max(ct for (file, _, name), (_, _, _, ct, _) in stats.items() if name == "run")
        shares = {}
        for label, suffix, function in (
            ("regime_on_bar", "regime_actor.py", "on_bar"),
            ("regime_update", "walk_forward.py", "update"),
            ("regime_fits_in_thread", "refit.py", "_fit_and_prepare"),
            ("regime_swap", "walk_forward.py", "_swap"),
            ("regime_monitors", "regime_actor.py", "_monitor_step"),
        ):
            cumulative = sum(
                ct
                for (file, _, name), (_, _, _, ct, _) in stats.items()
                if name == function and file.endswith(suffix)
            )
            shares[label] = cumulative / loop if loop else float("nan")
        result["profile_loop_seconds"] = loop
        result["shares"] = shares
    print(json.dumps(result), flush=True)


def stack_main(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO / "benchmarks"))
    from throughput import build_catalog

    lags = [int(v) for v in args.lags.split(",")]
    days = max(-(-args.bars // (4 * 390)), 2)
    print(
        f"regime actor in the full stack (throughput.py variant d): 4 instruments × {days} "
        f"sessions × 390 bars, lags {lags}, fit_workers {args.fit_workers} "
        f"({platform.machine()}, {os.cpu_count()} CPUs, load average "
        f"{os.getloadavg()[0]:.1f})",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog"
        bar_types = build_catalog(catalog, 4, days)
        for _ in range(args.repeat):
            for lag in lags:
                command = [
                    sys.executable,
                    __file__,
                    "--stack-child",
                    str(catalog),
                    ",".join(bar_types),
                    str(lag),
                    str(args.fit_workers if lag else 0),
                    "1" if args.profile else "0",
                ]
                done = subprocess.run(command, capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    print(f"  lag {lag}: FAILED\n{done.stderr[-3000:]}", flush=True)
                    continue
                row = json.loads(done.stdout.strip().splitlines()[-1])
                row["load_average"] = os.getloadavg()[0]
                rows.append(row)
                shares = row.get("shares")
                print(
                    f"  lag {lag:>4} (fit_workers {row['fit_workers']}): {row['bars']:,} bars, "
                    f"{row['orders']:,} orders, loop {row['loop_seconds']:.1f} s, "
                    f"{row['bars_per_s']:.0f} bars/s, engine thread CPU "
                    f"{row['engine_thread_cpu_s']:.1f} s (run_backtest); {row['fits']} fits, "
                    f"{row['fit_seconds']:.2f} s fitting, {row['refit_waits']} waits "
                    f"({row['fit_wait_seconds']:.3f} s) at fits (n, row, s) {row['waited_fits']}; "
                    f"fit seconds: first fits max {row['first_fit_seconds_max']:.2f}, refits "
                    f"median {row['refit_seconds_median']:.2f} max {row['refit_seconds_max']:.2f}; "
                    f"load {row['load_average']:.1f}"
                    + (
                        "; share of the loop: "
                        + ", ".join(f"{k} {v:.1%}" for k, v in shares.items())
                        if shares
                        else ""
                    ),
                    flush=True,
                )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


def main() -> None:
    if "--stack-child" in sys.argv:
        catalog, bar_types, lag, workers, profile = sys.argv[sys.argv.index("--stack-child") + 1 :]
        stack_child(catalog, bar_types, int(lag), int(workers), profile == "1")
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--train-bars", type=int, default=3_900, help="10 days of minutes.")
    parser.add_argument("--refit-every", type=int, default=390, help="Daily on minute bars.")
    parser.add_argument("--json", default=None)
    parser.add_argument("--stack", action="store_true", help="The actor in the full stack.")
    parser.add_argument("--lags", default="0,120", help="--stack: refit_lag_bars values.")
    parser.add_argument("--fit-workers", type=int, default=1, help="--stack, lags above 0.")
    parser.add_argument("--repeat", type=int, default=1, help="--stack: alternating passes.")
    parser.add_argument("--profile", action="store_true", help="--stack: cProfile shares.")
    args = parser.parse_args()
    if args.stack:
        stack_main(args)
        return

    from grodt.test_kit.regime import regime_series
    from models.regime.walk_forward import WalkForwardConfig

    closes = regime_series(args.bars, seed=3)[0]
    base = {
        "train_bars": args.train_bars,
        "min_train_bars": args.train_bars,
        "refit_every": args.refit_every,
    }
    print(
        f"regime refit cost on the bar thread: {args.bars:,} one-minute bars, window "
        f"{args.train_bars:,}, refit every {args.refit_every} ({platform.machine()}, "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})",
    )
    results: dict[str, Any] = {}
    sync = run(closes, WalkForwardConfig(**base))
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        pool.submit(_worker_rss_kb).result()  # started before the first bar, as in the actor
        lagged = run(closes, WalkForwardConfig(**base, refit_lag_bars=1), pool)
        live = run(closes, WalkForwardConfig(**base, refit_lag_bars=1), pool, bar_interval=True)
    results["synchronous"] = sync
    results["worker_lag_1_back_to_back"] = lagged
    results["worker_lag_1_bar_interval"] = live
    results["same_fits"] = sync["versions"] == lagged["versions"] == live["versions"]
    names = ("synchronous", "worker_lag_1_back_to_back", "worker_lag_1_bar_interval")
    for name in names:
        row = results[name]
        print(f"{name}: {row['fits']} fits, waited {row['fit_wait_seconds']:.3f} s for fits")
        for part in ("all_bars", "swap_bars", "fit_start_bars", "other_bars"):
            p = row[part]
            if p:
                print(
                    f"  {part:<15} n={p['count']:>6,}  p50 {p['p50_us']:9.1f} µs  "
                    f"p95 {p['p95_us']:9.1f}  p99 {p['p99_us']:9.1f}  max {p['max_us']:10.1f}",
                )
    print(f"same fitted versions in all three: {results['same_fits']}")
    retrain = one_retrain(closes, WalkForwardConfig(**base))
    results["one_retrain"] = retrain
    print(
        f"one daily retrain on {int(retrain['window_rows']):,} rows (warm start): "
        f"{retrain['retrain_seconds']:.3f} s ({retrain['retrain_em_seconds']:.3f} s EM), "
        f"Python peak {retrain['retrain_python_peak_mb']:.1f} MB; worker RSS "
        f"{retrain['worker_rss_idle_mb']:.0f} MB idle, {retrain['worker_rss_peak_mb']:.0f} MB peak",
    )
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
