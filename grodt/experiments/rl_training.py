"""``grodt rl train``: a generalist pretrained on every training window, then one specialist per
regime label fine-tuned from it on windows weighted by the label's causal probability, in
parallel processes; tracked, checkpointed and registered.

>>> result = train_rl(load_rl_config("node_configs/rl/sp500_daily.yaml"), workers=3)
>>> result.specialists_dir, result.evaluation["blend"]["sharpe"]

Steps (each timed in ``result.seconds``):

1. :func:`grodt.experiments.rl_data.prepare_data`: feature matrix (built once, memory-mapped),
   observation normalisation (training rows), regime probabilities (HMM fitted on the training
   period, filtered forward), training windows and their weights per label.
2. The generalist: ``timesteps.generalist`` steps on windows drawn uniformly.
3. The specialists: each starts from the generalist's weights and trains
   ``timesteps.specialist`` steps on windows drawn with its label's weights. Jobs run in a pool
   of ``workers`` spawned processes (one torch thread each); each reopens the matrix
   memory-mapped, so the processes share its pages and each worker's memory stays flat. The
   parent samples the workers' RSS every ``rss_interval`` seconds.
4. The :class:`~models.rl.specialists.SpecialistSet` is saved in ``<run_dir>/specialists`` and
   registered as model ``rl_<name>`` (alias ``latest``); checkpoints go to
   ``<run_dir>/checkpoints/<model>/`` under the tracking retention policy.
5. With a ``test`` period: the out-of-sample evaluation of
   :func:`grodt.experiments.rl_evaluation.evaluate_specialists`, logged as metrics.

Every job gets a seed derived from the config's ``seed`` and its position (generalist: seed,
specialist i: seed + 1 + i), so a run is reproducible whatever ``workers`` is.
"""

import multiprocessing
import os
import queue
import resource
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from grodt.experiments.rl_config import RLTrainConfig
from grodt.experiments.rl_data import EnvSpec
from grodt.experiments.rl_data import RLData
from grodt.experiments.rl_data import prepare_data
from models.rl.specialists import GENERALIST
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from models.rl.training import LearningCurve
from models.rl.training import PolicyConfig
from models.rl.training import fine_tune
from models.rl.training import make_vec_env
from models.rl.training import new_model

__all__ = ["TrainJob", "TrainOutcome", "TrainResult", "run_job", "train_rl"]

Progress = Callable[[str, int], None]
"""``(model name, timesteps done)``."""


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
    curve : list[tuple[int, float, float]]
        ``(timesteps, mean episode return of the rollout, seconds since start)`` per rollout.
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
    curve: list[tuple[int, float, float]]
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


class _RssSampler:
    """Samples the RSS (MiB) of this process's children every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._started = time.perf_counter()

    def __enter__(self) -> "_RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        import psutil

        me = psutil.Process(os.getpid())
        while not self._stop.wait(self.interval):
            now = time.perf_counter() - self._started
            for child in me.children(recursive=True):
                try:
                    rss = child.memory_info().rss / 2**20
                except psutil.Error:
                    continue
                self.samples.append((now, child.pid, rss))


@dataclass
class TrainResult:
    """A finished ``grodt rl train``.

    Attributes
    ----------
    run_dir : Path
    specialists_dir : Path
        The saved :class:`~models.rl.specialists.SpecialistSet`.
    outcomes : dict[str, TrainOutcome]
        Generalist and specialists.
    evaluation : dict[str, dict[str, float]]
        Out-of-sample metrics per mode (empty without a test period).
    seconds : dict[str, float]
        ``data`` (prepare), ``matrix`` (its build/open), ``generalist``, ``specialists``,
        ``evaluation``, ``total``; ``io_share``: matrix open/build plus the jobs' setup over
        the total.
    rss : list[tuple[float, int, float]]
        ``(seconds, pid, RSS MiB)`` samples of the worker processes.
    run_id : str | None
        MLflow run id.
    """

    run_dir: Path
    specialists_dir: Path
    outcomes: dict[str, TrainOutcome]
    evaluation: dict[str, dict[str, float]]
    seconds: dict[str, float]
    rss: list[tuple[float, int, float]] = field(default_factory=list)
    run_id: str | None = None


def specialist_jobs(
    config: RLTrainConfig, data: RLData, run_dir: Path, generalist_path: str
) -> list[TrainJob]:
    """The fine-tuning job of every label (seeds ``seed + 1 + i``)."""
    return [
        TrainJob(
            name=label,
            env=data.env,
            windows=data.train_windows,
            weights=data.weights[label],
            policy=config.policy,
            timesteps=config.timesteps.specialist,
            seed=config.seed + 1 + i,
            out=str(run_dir / "models_raw" / f"{label}.zip"),
            init_from=generalist_path,
            **_checkpointing(config, run_dir, label),
        )
        for i, label in enumerate(config.labels)
    ]


def generalist_job(config: RLTrainConfig, data: RLData, run_dir: Path) -> TrainJob:
    return TrainJob(
        name=GENERALIST,
        env=data.env,
        windows=data.train_windows,
        weights=None,
        policy=config.policy,
        timesteps=config.timesteps.generalist,
        seed=config.seed,
        out=str(run_dir / "models_raw" / f"{GENERALIST}.zip"),
        **_checkpointing(config, run_dir, GENERALIST),
    )


def _checkpointing(config: RLTrainConfig, run_dir: Path, name: str) -> dict[str, Any]:
    spec = config.checkpoints
    return {
        "checkpoint_dir": str(run_dir / "checkpoints" / name) if spec.every else None,
        "checkpoint_every": spec.every,
        "keep_last": spec.keep_last,
        "keep_best": spec.keep_best,
    }


def run_jobs(
    jobs: list[TrainJob], workers: int, progress: Progress | None, rss_interval: float = 1.0
) -> tuple[dict[str, TrainOutcome], list[tuple[float, int, float]]]:
    """Run ``jobs``: in this process when ``workers`` is 1, else in a pool of spawned processes
    (progress relayed through a queue; workers' RSS sampled)."""
    if workers <= 1:
        return {job.name: run_job(job, progress) for job in jobs}, []
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        updates = manager.Queue()
        stop = threading.Event()

        def relay() -> None:
            while not stop.is_set():
                try:
                    name, timesteps = updates.get(timeout=0.2)
                except queue.Empty:
                    continue
                except (EOFError, OSError):
                    return
                if progress is not None:
                    progress(name, timesteps)

        relay_thread = threading.Thread(target=relay, name="rl-progress", daemon=True)
        relay_thread.start()
        try:
            with (
                _RssSampler(rss_interval) as sampler,
                ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool,
            ):
                futures = [pool.submit(run_job, job, updates) for job in jobs]
                outcomes = {job.name: f.result() for job, f in zip(jobs, futures, strict=True)}
        finally:
            stop.set()
            relay_thread.join(timeout=5)
    return outcomes, sampler.samples


def train_rl(
    config: RLTrainConfig,
    workers: int = 1,
    run_dir: Path | None = None,
    store: Any = "auto",
    progress: Progress | None = None,
    matrices_dir: Path | None = None,
    rss_interval: float = 1.0,
    catalog: Path | None = None,
) -> TrainResult:
    """Train, save, register and evaluate (module docstring). ``catalog`` overrides the
    config's; ``store``: ``"auto"`` (the configured tracking store) or None (bundle only)."""
    from grodt.experiments.rl_evaluation import evaluate_specialists
    from grodt.tracking.training import TrainingRun

    started = time.perf_counter()
    seconds: dict[str, float] = {}
    data = prepare_data(config, matrices_dir, catalog)
    seconds["data"] = time.perf_counter() - started
    seconds.update({f"data.{key}": value for key, value in data.seconds.items()})
    params = {
        **config.model_dump(mode="json"),
        "workers": workers,
        "matrix": {"key": data.matrix.key, "rows": data.matrix.n_rows},
        "train_windows": len(data.train_windows),
    }
    name = f"rl_{config.name}"
    with TrainingRun(name, params=params, run_dir=run_dir, store=store) as run:
        run_dir = run.run_dir
        step = time.perf_counter()
        generalist = run_job(generalist_job(config, data, run_dir), progress)
        seconds["generalist"] = time.perf_counter() - step
        _log_curve(run, GENERALIST, generalist)
        step = time.perf_counter()
        jobs = specialist_jobs(config, data, run_dir, generalist.path)
        outcomes, rss = run_jobs(jobs, workers, progress, rss_interval)
        seconds["specialists"] = time.perf_counter() - step
        for outcome in outcomes.values():
            _log_curve(run, outcome.name, outcome)
        loader = algorithm_class(config.policy.algorithm)
        specialists = SpecialistSet(
            {label: loader.load(outcomes[label].path, device="cpu") for label in config.labels},
            config.policy.algorithm,
            config.action,
            _observation(data),
            generalist=loader.load(generalist.path, device="cpu"),
            manifest={"extra": {"seed": config.seed, "run": config.name}},
        )
        specialists_dir = run_dir / "specialists"
        specialists.save(specialists_dir)
        run.register_model(specialists, name, aliases=["latest"], filename="specialists")
        evaluation: dict[str, dict[str, float]] = {}
        if data.test_segments:
            step = time.perf_counter()
            evaluation = evaluate_specialists(specialists, data, data.test_segments)
            seconds["evaluation"] = time.perf_counter() - step
        seconds["total"] = time.perf_counter() - started
        jobs_setup = generalist.setup_seconds + sum(o.setup_seconds for o in outcomes.values())
        seconds["io_share"] = (data.seconds["matrix"] + jobs_setup) / seconds["total"]
        all_outcomes = {GENERALIST: generalist, **outcomes}
        summary: dict[str, Any] = {
            "seconds": {k: v for k, v in seconds.items() if k != "io_share"},
            "io_share": seconds["io_share"],
            "train_seconds": {k: o.seconds for k, o in all_outcomes.items()},
            "peak_rss_mb": {k: o.peak_rss_mb for k, o in all_outcomes.items()},
        }
        if evaluation:
            summary["test"] = evaluation
        run.log_summary(summary)
    return TrainResult(
        run_dir=run_dir,
        specialists_dir=specialists_dir,
        outcomes=all_outcomes,
        evaluation=evaluation,
        seconds=seconds,
        rss=rss,
        run_id=run.run_id,
    )


def _observation(data: RLData) -> Any:
    from models.rl.observation import ObservationSpec

    return ObservationSpec.from_dict(data.env.observation)


def _log_curve(run: Any, name: str, outcome: TrainOutcome) -> None:
    for timesteps, mean_return, _seconds in outcome.curve:
        if np.isfinite(mean_return):
            run.log_metrics({f"{name}.episode_return": mean_return}, step=timesteps)
