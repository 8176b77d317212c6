"""One training job of ``grodt rl train`` (the generalist or a specialist), runnable in a worker
process: this module imports only what a job needs (torch, SB3, the env, the memory-mapped
feature matrix), so worker processes start from it quickly (:mod:`grodt.experiments.rl_training`
preloads it in a forkserver).
"""

import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from models.rl.env import TradingEnv
from models.rl.fills import ExecutionModel
from models.rl.observation import ObservationSpec
from models.rl.rewards import RewardConfig
from models.rl.safety import RiskLimits
from models.rl.training import LearningCurve
from models.rl.training import PolicyConfig
from models.rl.training import fine_tune
from models.rl.training import make_vec_env
from models.rl.training import new_model
from research.features.matrix import FeatureMatrix
from research.features.matrix import open_feature_matrix

__all__ = ["EnvSpec", "TrainJob", "TrainOutcome", "run_job"]


@dataclass(frozen=True)
class EnvSpec:
    """Everything a (worker) process needs to build the env, small and picklable: the matrix
    is reopened from its path (memory-mapped, so processes share its pages)."""

    matrix_path: str
    observation: dict[str, Any]
    execution: ExecutionModel
    limits: RiskLimits
    reward: RewardConfig
    action_kind: str
    initial_cash: float

    def build(
        self,
        windows: np.ndarray,
        weights: np.ndarray | None = None,
        action_kind: str | None = None,
        matrix: FeatureMatrix | None = None,
    ) -> TradingEnv:
        matrix = matrix or open_feature_matrix(self.matrix_path)
        return TradingEnv(
            features=matrix.features,
            opens=matrix.bars["open"],
            closes=matrix.bars["close"],
            windows=windows,
            observation=ObservationSpec.from_dict(self.observation),
            action_kind=action_kind or self.action_kind,  # type: ignore[arg-type]
            execution=self.execution,
            limits=self.limits,
            reward=self.reward,
            weights=weights,
            initial_cash=self.initial_cash,
        )


@dataclass(frozen=True)
class TrainJob:
    """One model to train (picklable: it crosses into a worker process).

    Attributes
    ----------
    name : str
        ``generalist`` or a regime label.
    env : EnvSpec
    windows : np.ndarray
        Training windows.
    weights : np.ndarray | None
        Sampling weights of the windows (None: uniform).
    policy : PolicyConfig
    timesteps : int
    seed : int
    out : str
        Where the trained model's ``.zip`` goes.
    init_from : str | None
        A saved model to fine-tune (the generalist), or None for a fresh model.
    checkpoint_dir : str | None
        ``<run_dir>/checkpoints/<name>`` when checkpoints are on.
    checkpoint_every, keep_last, keep_best : int
        Retention policy of :class:`grodt.tracking.checkpoints.CheckpointManager`.
    """

    name: str
    env: EnvSpec
    windows: np.ndarray
    weights: np.ndarray | None
    policy: PolicyConfig
    timesteps: int
    seed: int
    out: str
    init_from: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    keep_last: int = 2
    keep_best: int = 1


@dataclass
class TrainOutcome:
    """What a job returns.

    Attributes
    ----------
    name, path : str
        The model and its saved ``.zip``.
    curve : list[tuple[int, float, float, float]]
        ``(timesteps, mean episode return, mean step reward, seconds since start)`` per rollout
        (the episode return is NaN when no episode ended in the rollout).
    seconds : float
        Wall time of the job.
    setup_seconds : float
        Opening the matrix and building the envs (the job's data I/O before training).
    learn_seconds : float
        ``model.learn``.
    peak_rss_mb : float
        The worker process's peak RSS (``ru_maxrss``), MiB.
    """

    name: str
    path: str
    curve: list[tuple[int, float, float, float]]
    seconds: float
    setup_seconds: float
    learn_seconds: float
    peak_rss_mb: float


def run_job(job: TrainJob, progress: Any = None) -> TrainOutcome:
    """Train one model (in this process). ``progress``: a callable ``(name, timesteps)`` or a
    queue receiving those tuples (from worker processes)."""
    import torch

    torch.set_num_threads(1)
    started = time.perf_counter()
    from research.features.matrix import open_feature_matrix

    matrix = open_feature_matrix(job.env.matrix_path)
    envs = make_vec_env(
        lambda _i: job.env.build(job.windows, job.weights, matrix=matrix), job.policy.n_envs
    )
    setup = time.perf_counter() - started
    if job.init_from is None:
        model = new_model(job.policy, envs, job.seed)
    else:
        model = fine_tune(job.init_from, job.policy, envs, job.seed)

    def report(timesteps: int) -> None:
        if progress is None:
            return
        if callable(progress):
            progress(job.name, timesteps)
        else:
            progress.put((job.name, timesteps))

    manager = None
    if job.checkpoint_dir and job.checkpoint_every:
        from grodt.tracking.checkpoints import CheckpointManager
        from grodt.tracking.checkpoints import RetentionPolicy

        manager = CheckpointManager(
            Path(job.checkpoint_dir),
            RetentionPolicy(
                keep_last=job.keep_last,
                keep_best=job.keep_best,
                metric="mean_return" if job.keep_best else None,
                mode="max",
            ),
        )
    next_checkpoint = [job.checkpoint_every]

    def on_rollout(timesteps: int, mean_return: float, trained: Any) -> None:
        if manager is not None and timesteps >= next_checkpoint[0]:
            manager.save(timesteps, trained, metrics={"mean_return": mean_return})
            next_checkpoint[0] += job.checkpoint_every

    curve = LearningCurve(on_progress=report, on_rollout=on_rollout, progress_every=256)
    learn_started = time.perf_counter()
    if job.timesteps > 0:
        model.learn(job.timesteps, callback=curve.callback(), reset_num_timesteps=True)
    learn = time.perf_counter() - learn_started
    report(job.timesteps)
    Path(job.out).parent.mkdir(parents=True, exist_ok=True)
    model.save(job.out)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    return TrainOutcome(
        name=job.name,
        path=job.out,
        curve=curve.points,
        seconds=time.perf_counter() - started,
        setup_seconds=setup,
        learn_seconds=learn,
        peak_rss_mb=peak,
    )
