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
"""

import argparse
import json
import multiprocessing
import os
import platform
import resource
import time
import tracemalloc
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--train-bars", type=int, default=3_900, help="10 days of minutes.")
    parser.add_argument("--refit-every", type=int, default=390, help="Daily on minute bars.")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

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
