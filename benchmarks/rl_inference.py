"""Per-bar inference cost of the RL ensemble: three MLP specialists on the engine thread.

Usage::

    .venv/bin/python benchmarks/rl_inference.py                  # 20,000 bars, default features
    .venv/bin/python benchmarks/rl_inference.py --bars 5000 --json
    .venv/bin/python benchmarks/rl_inference.py --node 20000     # + a BacktestNode comparison

Three PPO ``MlpPolicy`` specialists (SB3's default net: 64-64 tanh, seeds 0..2, never trained:
the cost does not depend on the weights) over the default feature set
(``node_configs/features/default.yaml``) plus the held position. One torch thread, as the
strategy sets it. Timed per bar, over ``--bars`` generated one-minute bars (P50 / P99 / mean, µs):

- ``predict``: :meth:`models.rl.specialists.SpecialistSet.predict` of one observation (the three
  forward passes);
- ``policy``: what ``RLEnsembleStrategy`` does per bar besides the base: the streaming features'
  update, the observation (:meth:`ObservationSpec.build_from_mapping`), ``predict`` and the
  blend (:func:`strategies.rl_ensemble.blend_weights`);
- ``sb3_predict``: SB3's own ``model.predict(obs, deterministic=True)`` for the three, for scale.

With ``--node N``: N one-minute bars through a BacktestNode twice — ``blend_mode: scripted``
(no model, same orders path) and ``blend`` with the three specialists — and the difference in
wall time per bar. ONNX Runtime is not installed in this environment, so only torch is timed.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import torch
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from stable_baselines3 import PPO

from models.rl.actions import action_space
from models.rl.observation import ObservationSpec
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from models.rl.specialists import save_specialists
from research.features import FeatureSet
from research.features import StreamingFeatures
from research.features import compute_batch
from strategies.rl_ensemble import NumpyPolicies
from strategies.rl_ensemble import blend_weights

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SET = ROOT / "node_configs/features/default.yaml"
LABELS = ("bull", "bear", "sideways")
BAR_TYPE = "BENCH.XTST-1-MINUTE-LAST-EXTERNAL"
SPEC_YAML = """\
kind: equity
id: BENCH.XTST
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
"""


class _Spaces(gym.Env):
    def __init__(self, n_obs: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = action_space("continuous")

    def reset(self, *, seed=None, options=None):
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}


def minute_bars(n: int, seed: int = 1) -> pd.DataFrame:
    """A seeded one-minute random walk (UTC index at bar closes, OHLCV)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-02 14:31", periods=n, freq="1min", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.0008, n)))
    open_ = np.concatenate([[100.0], close[:-1]])
    high = np.maximum(open_, close) * (1 + rng.uniform(0, 0.0005, n))
    low = np.minimum(open_, close) * (1 - rng.uniform(0, 0.0005, n))
    frame = pd.DataFrame(
        {
            "open": open_.round(2),
            "high": high.round(2),
            "low": low.round(2),
            "close": close.round(2),
            "volume": rng.integers(1_000, 5_000, n).astype(float),
        },
        index=index,
    )
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    return frame


def build_specialists(directory: Path, feature_set: FeatureSet, frame: pd.DataFrame) -> Path:
    batch = compute_batch(frame, feature_set)
    spec = ObservationSpec(feature_set.columns, feature_set=feature_set.name).fit(batch.to_numpy())
    models = {
        label: PPO("MlpPolicy", _Spaces(spec.n_obs), n_steps=8, batch_size=8, seed=i, device="cpu")
        for i, label in enumerate(LABELS)
    }
    save_specialists(directory, models, "PPO", "continuous", spec, extra={"benchmark": True})
    return directory


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    values = np.asarray(samples_ns, dtype=np.float64) / 1_000.0
    return {
        "p50_us": float(np.percentile(values, 50)),
        "p99_us": float(np.percentile(values, 99)),
        "mean_us": float(values.mean()),
    }


def time_per_bar(
    frame: pd.DataFrame, feature_set: FeatureSet, directory: Path, runtime: str
) -> dict:
    specialists = SpecialistSet.load(directory)
    if runtime == "numpy":
        predict = NumpyPolicies.compile(specialists, directory).predict
    else:
        predict = specialists.predict
    spec = specialists.observation
    bar_type = BarType.from_str(BAR_TYPE)
    bars = [
        Bar(
            bar_type,
            Price(row.open, 2),
            Price(row.high, 2),
            Price(row.low, 2),
            Price(row.close, 2),
            Quantity(row.volume, 0),
            ts.value,
            ts.value,
        )
        for ts, row in zip(frame.index, frame.itertuples(), strict=True)
    ]
    streaming = StreamingFeatures(feature_set)
    probabilities = {"bull": 0.5, "bear": 0.3, "sideways": 0.2}
    warm = feature_set.warm_up + 1
    predict_ns: list[int] = []
    policy_ns: list[int] = []
    position = 0.0
    clock = time.perf_counter_ns
    for i, bar in enumerate(bars):
        start = clock()
        values = streaming.update(bar)
        if i < warm:
            continue
        observation = spec.build_from_mapping(values, position)
        mid = clock()
        actions = predict(observation)
        done = clock()
        weights = blend_weights("blend", specialists.labels, probabilities, None)
        position = sum(weights[label] * actions[label] for label in specialists.labels)
        end = clock()
        predict_ns.append(done - mid)
        policy_ns.append(end - start)
    return {
        "bars_timed": len(predict_ns),
        "n_obs": spec.n_obs,
        "predict": percentiles(predict_ns),
        "policy": percentiles(policy_ns),
    }


def time_sb3_predict(directory: Path, calls: int) -> dict[str, float]:
    """SB3's own ``model.predict`` of the three models, for scale."""
    specialists = SpecialistSet.load(directory)
    loader = algorithm_class(specialists.algorithm)
    files = specialists.manifest["files"]
    models = [loader.load(directory / files[label], device="cpu") for label in LABELS]
    observation = np.zeros((1, specialists.observation.n_obs), np.float32)
    samples = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        for model in models:
            model.predict(observation, deterministic=True)
        samples.append(time.perf_counter_ns() - start)
    return percentiles(samples)


def node_comparison(n: int, directory: Path, root: Path) -> dict[str, Any]:
    import yaml

    from catalogs.ingest import ingest_files
    from catalogs.validation import ValidationConfig
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_config

    frame = minute_bars(n, seed=3)
    csv = root / "bench.csv"
    frame.rename_axis("timestamp").to_csv(csv)
    (root / "bench.yaml").write_text(SPEC_YAML)
    ingest_files([csv], root / "bench.yaml", root / "catalog", config=ValidationConfig())
    base = {"instrument_id": "BENCH.XTST", "bar_type": BAR_TYPE, "allow_short": True}
    modes = {
        "scripted": {"blend_mode": "scripted", "scripted_actions": [0.0] * n},
        "blend_torch": {
            "blend_mode": "blend",
            "specialists": str(directory),
            "feature_set": str(DEFAULT_SET),
        },
        "blend_numpy": {
            "blend_mode": "blend",
            "specialists": str(directory),
            "feature_set": str(DEFAULT_SET),
            "inference": "numpy",
        },
    }
    out: dict[str, Any] = {"bars": n}
    for name, extra in modes.items():
        document = {
            "name": f"rl_inference_{name}",
            "venues": [
                {
                    "name": "XTST",
                    "oms_type": "NETTING",
                    "account_type": "MARGIN",
                    "base_currency": "USD",
                    "starting_balances": ["1000000 USD"],
                },
            ],
            "data": [{"bar_types": [BAR_TYPE]}],
            "strategies": [
                {
                    "path": "strategies.rl_ensemble:RLEnsembleStrategy",
                    "config": {**base, **extra, "min_rebalance_fraction": 0.05},
                },
            ],
            "logging": {"level": "ERROR", "file_level": "OFF"},
        }
        path = root / f"{name}.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        start = time.perf_counter()
        outcome = run_backtest(
            load_backtest_config(path), root / "catalog", root / name, quiet=True
        )
        seconds = time.perf_counter() - start
        out[name] = {
            "seconds": seconds,
            "us_per_bar": seconds / n * 1e6,
            "orders": outcome.summary.get("orders"),
        }
    for name in ("blend_torch", "blend_numpy"):
        out[name]["overhead_us_per_bar"] = out[name]["us_per_bar"] - out["scripted"]["us_per_bar"]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=20_000)
    parser.add_argument("--feature-set", type=Path, default=DEFAULT_SET)
    parser.add_argument("--node", type=int, default=0, help="bars for the BacktestNode comparison")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    feature_set = FeatureSet.from_yaml(args.feature_set)
    frame = minute_bars(args.bars)
    with tempfile.TemporaryDirectory(prefix="rl-inference-") as tmp:
        root = Path(tmp)
        directory = build_specialists(root / "specialists", feature_set, frame)
        result: dict[str, Any] = {
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "onnxruntime": "not installed",
            "runtimes": {
                runtime: time_per_bar(frame, feature_set, directory, runtime)
                for runtime in ("torch", "numpy")
            },
            "sb3_predict": time_sb3_predict(directory, min(2_000, args.bars)),
        }
        if args.node:
            result["node"] = node_comparison(args.node, directory, root)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    first = result["runtimes"]["torch"]
    print(
        f"three MLP specialists (64-64, obs {first['n_obs']}), torch {result['torch']}, "
        f"{result['torch_threads']} thread, {first['bars_timed']:,} bars timed per runtime"
    )
    rows = []
    for runtime, timed in result["runtimes"].items():
        rows.append((f"{runtime}: predict (3 models)", timed["predict"]))
        rows.append((f"{runtime}: features + obs + predict + blend", timed["policy"]))
    rows.append(("SB3 model.predict x3 (reference)", result["sb3_predict"]))
    for label, row in rows:
        print(
            f"  {label:42s} P50 {row['p50_us']:7.1f} µs  P99 {row['p99_us']:7.1f} µs  "
            f"mean {row['mean_us']:7.1f} µs"
        )
    if args.node:
        node = result["node"]
        parts = [f"scripted (flat) {node['scripted']['us_per_bar']:.1f} µs/bar"]
        for name in ("blend_torch", "blend_numpy"):
            row = node[name]
            parts.append(
                f"{name} {row['us_per_bar']:.1f} (+{row['overhead_us_per_bar']:.1f}) µs/bar"
            )
        print(f"  BacktestNode, {node['bars']:,} bars: " + "; ".join(parts))
    print("  ONNX Runtime: not installed here (not timed)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
