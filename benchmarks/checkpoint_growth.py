"""Disk growth of a simulated day of training, with checkpoint and registry retention.

A day, compressed into minutes of wall time, on the embedded SQLite store in a fresh runs
directory (or ``--tracking-uri``):

- an RL policy (stable-baselines3 PPO, MlpPolicy 256x256 on 64 features, optimizer state
  included) checkpointed every 10 minutes for 24 h (144 checkpoints), kept by
  :class:`grodt.tracking.checkpoints.CheckpointManager` (last 3 + best by reward, 200 MB cap),
  with 10 training metrics every 2 s streamed to its run (432,000 metric rows);
- a LightGBM model (20,000 x 30, 200 trees) retrained and registered every hour (24 versions);
- the regime HMM refitted and registered every 30 minutes (48 versions);
- registered versions pruned after each registration (last 5 + best + aliased).

Reports bytes on disk at the end of the day (checkpoints, artifacts, tracking database) against
what would have been kept without retention. Required: < 500 MB/day.

Usage::

    .venv/bin/python benchmarks/checkpoint_growth.py
    .venv/bin/python benchmarks/checkpoint_growth.py --hours 6 --json growth.json
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np


def tree_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def make_policy():
    import gymnasium as gym
    from stable_baselines3 import PPO

    class Features(gym.Env):
        observation_space = gym.spaces.Box(-10, 10, shape=(64,), dtype=np.float32)
        action_space = gym.spaces.Discrete(3)

        def reset(self, *, seed=None, options=None):
            return np.zeros(64, dtype=np.float32), {}

        def step(self, action):
            return np.zeros(64, dtype=np.float32), 0.0, True, False, {}

    return PPO(
        "MlpPolicy",
        Features(),
        policy_kwargs={"net_arch": {"pi": [256, 256], "vf": [256, 256]}},
        n_steps=64,
        batch_size=64,
        device="cpu",
        seed=0,
        verbose=0,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours")
    parser.add_argument("--tracking-uri", default=None)
    parser.add_argument("--runs-dir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    runs_dir = args.runs_dir or Path(tempfile.mkdtemp(prefix="grodt-growth-"))
    os.environ["GRODT_RUNS_DIR"] = str(runs_dir)
    if args.tracking_uri:
        os.environ["GRODT_TRACKING_URI"] = args.tracking_uri

    import lightgbm
    import torch
    from hmmlearn.hmm import GaussianHMM

    from grodt.tracking.checkpoints import CheckpointManager
    from grodt.tracking.checkpoints import RetentionPolicy
    from grodt.tracking.registry import prune_model_versions
    from grodt.tracking.registry import register_model
    from grodt.tracking.registry import set_alias
    from grodt.tracking.store import open_client
    from grodt.tracking.store import resolve_store
    from grodt.tracking.training import TrainingRun

    store = resolve_store()
    open_client(store)
    start_bytes = tree_bytes(runs_dir)
    rng = np.random.default_rng(0)
    wall = time.time()
    day_s = args.hours * 3600.0

    # -- RL policy: checkpoints every 10 min, metrics every 2 s --------------------------
    policy = make_policy()
    written = 0
    checkpoints = CheckpointManager(
        runs_dir / "checkpoints" / "ppo_policy",
        RetentionPolicy(
            keep_last=3, keep_best=1, metric="reward", mode="max", max_bytes=200_000_000
        ),
    )
    with TrainingRun("ppo_policy", params={"net_arch": [256, 256], "obs": 64}) as run:
        t = 0.0
        next_checkpoint = 600.0
        step = 0
        while t < day_s:
            run.log_metrics(
                {
                    f"train/{name}": float(rng.normal())
                    for name in (
                        "loss",
                        "policy_loss",
                        "value_loss",
                        "entropy",
                        "approx_kl",
                        "clip_fraction",
                        "explained_variance",
                        "lr",
                        "reward",
                        "episode_len",
                    )
                },
                step=step,
            )
            step += 1
            t += 2.0
            if t >= next_checkpoint:
                with torch.no_grad():
                    for parameter in policy.policy.parameters():
                        parameter.add_(torch.randn_like(parameter) * 0.01)
                saved = checkpoints.save(step, policy, {"reward": float(rng.normal())})
                written += saved.bytes
                next_checkpoint += 600.0
        run.log_summary({"reward": float(rng.normal())})
        best = checkpoints.best()
        run.log_artifact(best.path, artifact_path="best_checkpoint")
    rl_metric_rows = step * 10

    # -- LightGBM hourly, HMM every 30 min, registered and pruned -----------------------
    x = rng.normal(size=(20_000, 30))
    y = (x[:, 0] + 0.3 * x[:, 1] + rng.normal(0, 0.5, 20_000) > 0).astype(int)
    hours = int(args.hours)
    for hour in range(hours):
        booster = lightgbm.train(
            {"objective": "binary", "verbose": -1, "num_leaves": 31, "seed": hour},
            lightgbm.Dataset(x, y),
            num_boost_round=200,
        )
        version = register_model(
            booster,
            "lgbm_signal",
            metrics={"auc": float(rng.uniform(0.5, 0.7))},
        )
        if hour == 0:
            set_alias("lgbm_signal", "champion", version.version)
        prune_model_versions("lgbm_signal", keep_last=5, metric="auc", mode="max")
    features = rng.normal(size=(2_000, 3))
    for half_hour in range(int(args.hours * 2)):
        hmm = GaussianHMM(n_components=3, n_iter=20, random_state=half_hour).fit(features)
        version = register_model(
            hmm,
            "regime_hmm",
            metrics={"log_likelihood": float(hmm.score(features))},
        )
        if half_hour == 0:
            set_alias("regime_hmm", "champion", version.version)
        prune_model_versions("regime_hmm", keep_last=5, metric="log_likelihood", mode="max")

    end_bytes = tree_bytes(runs_dir)
    parts = {
        "checkpoints": tree_bytes(runs_dir / "checkpoints"),
        "training_run_dirs": tree_bytes(runs_dir / "training"),
        "mlflow_artifacts": tree_bytes(runs_dir / "mlartifacts"),
        "tracking_db": sum(tree_bytes(p) for p in runs_dir.glob("mlflow.db*")),
    }
    result = {
        "simulated_hours": args.hours,
        "store": store.display_uri,
        "growth_mb": (end_bytes - start_bytes) / 1e6,
        "parts_mb": {k: v / 1e6 for k, v in parts.items()},
        "rl_checkpoints_written_mb": written / 1e6,
        "rl_checkpoints_kept": len(checkpoints.checkpoints()),
        "rl_metric_rows": rl_metric_rows,
        "wall_s": time.time() - wall,
        "runs_dir": str(runs_dir),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if result["growth_mb"] * 24.0 / max(args.hours, 1e-9) < 500 else 1


if __name__ == "__main__":
    raise SystemExit(main())
