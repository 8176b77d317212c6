"""Cost of the regime model per bar: one forward-filter update vs hmmlearn on a window each bar.

Usage::

    .venv/bin/python benchmarks/regime_forward.py                 # model-level figures
    .venv/bin/python benchmarks/regime_forward.py --engine        # + BacktestNode bars/s
    .venv/bin/python benchmarks/regime_forward.py --json

Measured (best of ``--repeat`` runs, single process):

- ``forward_update``: one :meth:`ForwardFilter.update` (3 states, 3 features, full covariances);
  the goal is ≤ 10 µs;
- ``walk_forward_step``: the actor's whole per-bar work without refits — features, filter, label
  probabilities, entropy (:meth:`WalkForwardRegime.update`);
- ``hmmlearn_window_W``: what a naive implementation does each bar — ``predict_proba`` of
  hmmlearn on the trailing W bars, keeping the last row (which is causal, but O(W·K²) per bar);
- ``fit_cold`` / ``fit_warm``: one EM fit on a training window (n_init cold starts / warm start);
- with ``--engine``: a BacktestNode on a tmp catalog of 1-minute bars, without and with the
  regime actor (fixed model and walk-forward refits), in bars per second.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from models.regime.features import DEFAULT_FEATURES
from models.regime.features import FeatureExtractor
from models.regime.hmm import GaussianRegimeHMM
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import WalkForwardRegime


def market(n: int, seed: int = 5) -> np.ndarray:
    """Closes of a 3-regime Markov-switching random walk (1-minute-like scales)."""
    rng = np.random.default_rng(seed)
    stay = 0.995
    transmat = np.full((3, 3), (1 - stay) / 2) + np.eye(3) * (stay - (1 - stay) / 2)
    drift = np.array([2e-4, -3e-4, 0.0])
    vol = np.array([1e-3, 2.5e-3, 5e-4])
    state = 0
    states = np.empty(n, dtype=int)
    for t in range(n):
        state = rng.choice(3, p=transmat[state])
        states[t] = state
    return 100 * np.exp(np.cumsum(rng.normal(drift[states], vol[states])))


def best_of(repeat: int, function, *args) -> float:
    return min(function(*args) for _ in range(repeat))


def time_forward(model: GaussianRegimeHMM, rows: list[list[float]]) -> float:
    fwd = model.forward_filter()
    started = time.perf_counter()
    for row in rows:
        fwd.update(row)
    return (time.perf_counter() - started) / len(rows) * 1e6


def time_walk_forward(model: GaussianRegimeHMM, closes: np.ndarray) -> float:
    config = WalkForwardConfig(train_bars=1000, refit_every=0)
    regime = WalkForwardRegime(config, model=model)
    stamps = list(range(1, len(closes) + 1))
    values = closes.tolist()
    started = time.perf_counter()
    for close, ts in zip(values, stamps, strict=True):
        regime.update(close, ts)
    return (time.perf_counter() - started) / len(values) * 1e6


def time_hmmlearn_window(
    model: GaussianRegimeHMM, rows: np.ndarray, window: int, bars: int
) -> float:
    hmm = model.to_hmmlearn()
    z = (rows - model.scaler_mean_) / model.scaler_scale_
    started = time.perf_counter()
    for t in range(window, window + bars):
        hmm.predict_proba(z[t - window : t])[-1]
    return (time.perf_counter() - started) / bars * 1e6


def time_fits(rows: np.ndarray, train: int) -> dict[str, float]:
    window = rows[:train]
    started = time.perf_counter()
    cold = GaussianRegimeHMM(n_init=3).fit(window)
    cold_seconds = time.perf_counter() - started
    started = time.perf_counter()
    GaussianRegimeHMM(n_init=3).fit(rows[train // 10 : train // 10 + train], init_from=cold)
    warm_seconds = time.perf_counter() - started
    return {"fit_cold_s": cold_seconds, "fit_warm_s": warm_seconds, "fit_rows": train}


def engine_throughput(closes: np.ndarray, model_path: Path) -> dict[str, float]:
    """Bars/s of a BacktestNode with no actor, the actor on a fixed model, and with refits."""
    from nautilus_trader.backtest.node import BacktestNode

    from grodt.nodes.backtest import build_run_config
    from grodt.test_kit.regime import write_catalog
    from node_configs.schema import BacktestNodeSpec

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        bar_types = write_catalog(Path(tmp), {"BENCH.TEST": closes})
        bar_type = bar_types["BENCH.TEST"]
        actor = {"path": "actors.regime_actor:RegimeActor", "config": {"bar_types": [bar_type]}}
        cases = {
            "engine_no_actor": [],
            "engine_actor_fixed_model": [
                {**actor, "config": {**actor["config"], "model": str(model_path)}},
            ],
            "engine_actor_refit_every_390": [
                {
                    **actor,
                    "config": {
                        **actor["config"],
                        "walk_forward": {
                            "train_bars": 3900,
                            "min_train_bars": 1950,
                            "refit_every": 390,
                        },
                    },
                },
            ],
        }
        for name, actors in cases.items():
            spec = BacktestNodeSpec.model_validate(
                {
                    "name": "bench",
                    "venues": [{"name": "TEST", "starting_balances": ["1000000 USD"]}],
                    "data": [{"bar_types": [bar_type]}],
                    "actors": actors,
                    "logging": {"level": "ERROR", "file_level": "OFF"},
                },
            )
            node = BacktestNode(configs=[build_run_config(spec, Path(tmp), quiet=True)])
            node.build()
            started = time.perf_counter()
            node.run()
            out[f"{name}_bars_per_s"] = len(closes) / (time.perf_counter() - started)
            node.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bars", type=int, default=50_000, help="bars for the per-bar timings")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--windows", type=int, nargs="+", default=[250, 1000])
    parser.add_argument("--engine", action="store_true", help="also time BacktestNode runs")
    parser.add_argument("--engine-bars", type=int, default=23_400)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)

    closes = market(args.bars + 2000)
    extractor = FeatureExtractor(GaussianRegimeHMM().features)
    features = extractor.transform(closes)
    rows = features[np.isfinite(features).all(axis=1)]
    model = GaussianRegimeHMM(features=DEFAULT_FEATURES, n_init=3).fit(rows[:3900])
    as_lists = rows[: args.bars].tolist()

    results: dict[str, float] = {
        "forward_update_us": best_of(args.repeat, time_forward, model, as_lists),
        "walk_forward_step_us": best_of(args.repeat, time_walk_forward, model, closes[: args.bars]),
    }
    for window in args.windows:
        results[f"hmmlearn_window_{window}_us"] = best_of(
            args.repeat,
            time_hmmlearn_window,
            model,
            rows,
            window,
            300,
        )
    results.update(time_fits(rows, 3900))
    if args.engine:
        with tempfile.TemporaryDirectory() as tmp:
            path = model.save(Path(tmp) / "model.json")
            results.update(engine_throughput(closes[: args.engine_bars], path))
    if args.json:
        print(json.dumps(results))
        return 0
    width = max(len(k) for k in results)
    for key, value in results.items():
        print(f"{key:<{width}}  {value:,.2f}")
    window_key = f"hmmlearn_window_{args.windows[0]}_us"
    print(
        f"forward update is {results[window_key] / results['forward_update_us']:,.0f}x cheaper "
        f"than hmmlearn on a {args.windows[0]}-bar window",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
