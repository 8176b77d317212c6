"""Throughput of the RL env and of SB3 training on it, measured separately; the I/O share of
training; and the workers' memory over a longer parallel run.

Usage::

    .venv/bin/python benchmarks/rl_env.py                       # env, SB3, I/O (a few minutes)
    .venv/bin/python benchmarks/rl_env.py --env-steps 300000 --train-steps 20000 --json
    .venv/bin/python benchmarks/rl_env.py --rss-config node_configs/rl/sp500_daily.yaml \
        --rss-workers 3                                         # + RSS of a parallel run

Measured (one process, one torch thread, on generated bars; nothing is kept):

- ``env``: raw ``TradingEnv.step`` calls per second with pre-drawn random actions (continuous
  and discrete), episodes of 390 bars, features in RAM and memory-mapped from a ``.npy`` file:
  per wall-clock second and per CPU second of the process (``*_per_cpu_s``: the per-core
  figure, less sensitive to other processes on a shared machine; the goal is ≥ 50k);
- ``sb3``: PPO training steps per second (``model.learn``: rollout collection with the policy
  plus the gradient updates), with this repo's default hyperparameters and with SB3's defaults,
  and the collection alone (``n_epochs`` updates skipped is not possible in SB3, so collection
  is timed as the policy's forward pass plus ``env.step`` per step);
- ``io``: a seeded training with the features memory-mapped: the I/O share is (opening the
  matrix + touching every row once + one row read per step) / the training time; the same
  training with the features in RAM must give equal weights;
- ``rss`` (with ``--rss-config``): ``grodt rl train`` of that config with ``--rss-workers``
  processes; the workers' RSS sampled every second, printed per worker at the start, middle and
  end of its life.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _arrays(n_bars: int, n_features: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 1e-3, n_bars)))
    opens = close * np.exp(rng.normal(0.0, 2e-4, n_bars))
    features = rng.normal(size=(n_bars, n_features))
    return features, np.round(opens, 2), np.round(close, 2)


def _env(features, opens, closes, kind="continuous"):
    from models.rl.env import TradingEnv
    from models.rl.episodes import fixed_windows
    from models.rl.fills import ExecutionModel
    from models.rl.observation import ObservationSpec

    names = tuple(f"f{i}" for i in range(features.shape[1]))
    spec = ObservationSpec(names).fit(np.asarray(features[:10_000]))
    return TradingEnv(
        features,
        opens,
        closes,
        fixed_windows(len(closes), 390),
        spec,
        action_kind=kind,
        execution=ExecutionModel(account_type="margin"),
    )


def bench_env(features, opens, closes, steps: int) -> dict[str, float]:
    out = {}
    rng = np.random.default_rng(1)
    for label, kind, data in (
        ("continuous_ram", "continuous", features),
        ("discrete_ram", "discrete", features),
        ("continuous_mmap", "continuous", _mapped(features)),
    ):
        env = _env(data, opens, closes, kind)
        if kind == "continuous":
            actions = list(rng.uniform(-1, 1, (steps, 1)).astype(np.float32))
        else:
            actions = list(rng.integers(0, 3, steps))
        env.reset(seed=0)
        started, cpu = time.perf_counter(), time.process_time()
        for action in actions:
            _obs, _r, terminated, truncated, _info = env.step(action)
            if terminated or truncated:
                env.reset()
        out[label] = steps / (time.perf_counter() - started)
        out[f"{label}_per_cpu_s"] = steps / (time.process_time() - cpu)
    return out


_TMP = tempfile.TemporaryDirectory(prefix="rl_env_bench_")


def _mapped(features: np.ndarray) -> np.ndarray:
    path = Path(_TMP.name) / "features.npy"
    if not path.exists():
        np.save(path, features)
    return np.load(path, mmap_mode="r")


def _train(env, timesteps: int, config, seed: int = 0):
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from models.rl.training import new_model

    vec = DummyVecEnv([lambda: Monitor(env)])
    model = new_model(config, vec, seed)
    started, cpu = time.perf_counter(), time.process_time()
    model.learn(timesteps)
    _CPU_SECONDS.append(time.process_time() - cpu)
    return model, time.perf_counter() - started


_CPU_SECONDS: list[float] = []


def bench_sb3(features, opens, closes, timesteps: int) -> dict[str, float]:
    import torch

    from models.rl.training import PolicyConfig

    out = {}
    ours = PolicyConfig(n_steps=512, batch_size=128, n_epochs=5)
    sb3_defaults = PolicyConfig(n_steps=2048, batch_size=64, n_epochs=10)
    for label, config in (("repo_config", ours), ("sb3_defaults", sb3_defaults)):
        _model, seconds = _train(_env(features, opens, closes), timesteps, config)
        out[f"train_{label}"] = timesteps / seconds
        out[f"train_{label}_per_cpu_s"] = timesteps / _CPU_SECONDS[-1]
    # collection alone: the policy's forward pass and the env step, per step
    model, _ = _train(_env(features, opens, closes), 512, ours)
    env = _env(features, opens, closes)
    obs, _ = env.reset(seed=0)
    n = min(timesteps, 20_000)
    started = time.perf_counter()
    with torch.no_grad():
        for _ in range(n):
            action, _value, _logp = model.policy(torch.as_tensor(obs[None]))
            obs, _r, terminated, truncated, _ = env.step(action.numpy()[0])
            if terminated or truncated:
                obs, _ = env.reset()
    out["collect"] = n / (time.perf_counter() - started)
    return out


def bench_io(features, opens, closes, timesteps: int) -> dict[str, float]:
    """Time spent on data in a seeded training run with the features memory-mapped: opening the
    matrix, touching every row once (page faults; warm page cache after the first run), and
    reading one row per env step, over the training time; plus the same training with the
    features in RAM (weights must be equal; the wall-time difference of two runs on a loaded
    machine is noise-sized, so the share is computed from the direct measurements)."""
    from models.rl.training import PolicyConfig

    config = PolicyConfig(n_steps=512, batch_size=128, n_epochs=5)
    started = time.perf_counter()
    mapped = _mapped(features)
    opened = time.perf_counter() - started
    view = np.asarray(mapped)  # what the env holds
    started = time.perf_counter()
    touched = float(view.sum())
    touch = time.perf_counter() - started
    rows = min(len(view), 100_000)
    started = time.perf_counter()
    for i in range(rows):
        view[i]
    per_row = (time.perf_counter() - started) / rows
    m_model, m_seconds = _train(_env(mapped, opens, closes), timesteps, config)
    r_model, r_seconds = _train(_env(np.array(features), opens, closes), timesteps, config)
    equal = all(
        np.array_equal(a.numpy(), b.numpy())
        for a, b in zip(
            m_model.policy.state_dict().values(), r_model.policy.state_dict().values(), strict=True
        )
    )
    io_seconds = opened + touch + per_row * timesteps
    return {
        "open_seconds": opened,
        "touch_seconds": touch,
        "row_read_us": per_row * 1e6,
        "mmap_seconds": m_seconds,
        "ram_seconds": r_seconds,
        "io_share": io_seconds / m_seconds,
        "weights_equal": float(equal),
        "checksum": touched,
    }


def bench_rss(config_path: str, workers: int, timesteps: tuple[int, int]) -> dict[str, object]:
    from grodt.experiments.rl_config import load_rl_config
    from grodt.experiments.rl_training import train_rl

    config = load_rl_config(
        config_path,
        (f"timesteps.generalist={timesteps[0]}", f"timesteps.specialist={timesteps[1]}"),
    )
    with tempfile.TemporaryDirectory(prefix="rl_rss_") as tmp:
        result = train_rl(config, workers=workers, run_dir=Path(tmp) / "run", store=None)
    by_pid: dict[int, list[tuple[float, float]]] = {}
    for seconds, pid, rss in result.rss:
        by_pid.setdefault(pid, []).append((seconds, rss))
    workers_rss = {}
    for pid, samples in by_pid.items():
        if len(samples) < 3:
            continue
        values = [rss for _, rss in samples]
        workers_rss[str(pid)] = {
            "seconds": samples[-1][0] - samples[0][0],
            "start_mb": values[len(values) // 10],
            "middle_mb": values[len(values) // 2],
            "end_mb": values[-1],
            "peak_mb": max(values),
        }
    return {
        "workers": workers,
        "specialists_seconds": result.seconds["specialists"],
        "train_seconds": {k: o.seconds for k, o in result.outcomes.items()},
        "io_share": result.seconds["io_share"],
        "rss": workers_rss,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bars", type=int, default=200_000)
    parser.add_argument("--features", type=int, default=10)
    parser.add_argument("--env-steps", type=int, default=200_000)
    parser.add_argument("--train-steps", type=int, default=10_000)
    parser.add_argument("--rss-config", default=None)
    parser.add_argument("--rss-workers", type=int, default=3)
    parser.add_argument("--rss-timesteps", type=int, nargs=2, default=(20_000, 60_000))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    features, opens, closes = _arrays(args.bars, args.features)
    report: dict[str, object] = {
        "env_steps_per_s": bench_env(features, opens, closes, args.env_steps),
        "sb3_steps_per_s": bench_sb3(features, opens, closes, args.train_steps),
        "io": bench_io(features, opens, closes, args.train_steps),
    }
    if args.rss_config:
        report["rss"] = bench_rss(args.rss_config, args.rss_workers, tuple(args.rss_timesteps))
    if args.json:
        print(json.dumps(report, indent=2))
        return
    env = report["env_steps_per_s"]
    sb3 = report["sb3_steps_per_s"]
    io = report["io"]
    print(f"RL env over {args.bars:,} generated bars x {args.features} features, one core")
    for name, value in env.items():  # type: ignore[union-attr]
        print(f"  env.step {name:<18} {value:>10,.0f} steps/s")
    for name, value in sb3.items():  # type: ignore[union-attr]
        print(f"  sb3 {name:<23} {value:>10,.0f} steps/s")
    print(
        f"  I/O: open {io['open_seconds'] * 1e3:.2f} ms, first touch {io['touch_seconds']:.3f} s,"  # type: ignore[index]
        f" {io['row_read_us']:.2f} µs per row read; training {io['mmap_seconds']:.2f} s mapped"  # type: ignore[index]
        f" ({io['ram_seconds']:.2f} s in RAM) -> I/O share {io['io_share']:.3%}"  # type: ignore[index]
        f" (weights equal: {bool(io['weights_equal'])})"  # type: ignore[index]
    )
    if "rss" in report:
        rss = report["rss"]
        workers, seconds = rss["workers"], rss["specialists_seconds"]  # type: ignore[index]
        print(f"  parallel run: {workers} workers, specialists {seconds:.1f} s")
        for pid, row in rss["rss"].items():  # type: ignore[index]
            print(
                f"    worker {pid}: {row['seconds']:.0f} s, RSS start {row['start_mb']:.0f} MiB, "
                f"middle {row['middle_mb']:.0f}, end {row['end_mb']:.0f}, peak {row['peak_mb']:.0f}"
            )


if __name__ == "__main__":
    main()
