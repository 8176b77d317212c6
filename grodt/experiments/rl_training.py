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
   of ``workers`` processes forked from a forkserver that preloaded torch, SB3 and
   :mod:`grodt.experiments.rl_worker` (one torch thread each); each reopens the matrix
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
from grodt.experiments.rl_data import RLData
from grodt.experiments.rl_data import prepare_data
from grodt.experiments.rl_worker import TrainJob
from grodt.experiments.rl_worker import TrainOutcome
from grodt.experiments.rl_worker import run_job
from models.rl.specialists import GENERALIST
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class

__all__ = ["TrainResult", "run_jobs", "train_rl"]

Progress = Callable[[str, int], None]
"""``(model name, timesteps done)``."""


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
    """Run ``jobs``: in this process when ``workers`` is 1, else in a pool of forkserver processes
    (progress relayed through a queue; workers' RSS sampled)."""
    if workers <= 1:
        return {job.name: run_job(job, progress) for job in jobs}, []
    context = multiprocessing.get_context("forkserver")
    # The forkserver imports the job's modules once; each worker forks from it (no torch
    # thread pool has started there, so the fork is safe) instead of importing torch again.
    context.set_forkserver_preload([run_job.__module__, "torch", "stable_baselines3"])
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
        run.register_model(specialists, name, aliases=["challenger"], filename="specialists")
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
    for timesteps, mean_return, step_reward, _seconds in outcome.curve:
        values = {f"{name}.step_reward": step_reward}
        if np.isfinite(mean_return):
            values[f"{name}.episode_return"] = mean_return
        run.log_metrics(values, step=timesteps)
