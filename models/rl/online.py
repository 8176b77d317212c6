"""Online fine-tuning of RL specialists on the recent window: the schedule and the fit.

A strategy that runs a :class:`~models.rl.specialists.SpecialistSet` (``strategies.rl_ensemble``)
keeps the last ``window`` feature rows it observed (with each bar's open and close) and, on the
schedule of :class:`models.lifecycle.RetrainSchedule` (the first fit once ``min_window`` rows are
there, then every ``every`` rows), continues training every specialist for ``timesteps`` env steps
on episodes drawn from that window (:func:`fine_tune_specialists`). The new set takes over
``lag_bars`` rows later at a bar boundary (:class:`models.lifecycle.ScheduledRefitter`: in a
worker process, waited for if late, so backtest and live swap at the same bar).

**Warm start** (``warm_start: true``, default): each fine-tune continues from the set in use (the
previous fine-tune's, at first the configured one): weights and optimiser state. With
``warm_start: false`` every fine-tune starts again from the configured set.

**What stays fixed**: the observation contract (feature names, normalisation, position input), the
algorithm and the action kind; only the policies' weights move. The env is the training env
(:class:`~models.rl.env.TradingEnv`) over the window's rows with the strategy's instrument terms.

**Versions**: a fine-tuned set is saved under ``<output>/<version>/`` where ``version`` is
``ft-`` and the first 12 hex digits of a SHA-256 over its policies' parameters and its
observation spec (:func:`parameter_version`): the same training gives the same version in every
process (a model's zip file carries write times, so file bytes would not). The manifest's
``extra`` names the set it was fine-tuned from, the window's last bar and the seed.

The fine-tune YAML (``retrain:`` of the strategy config names it)::

    window: 250            # rows (bars with every feature defined) the fine-tune trains on
    every: 21              # rows between fine-tunes (0: once)
    lag_bars: 1            # rows between the window's end and the swap (>= 1: in a worker)
    warm_start: true
    min_window: 120        # rows before the first fine-tune (default: window)
    timesteps: 2048        # env steps per specialist per fine-tune
    episode_bars: 20       # steps per training episode
    stride: 5              # bars between episode starts
    learning_rate: 0.0001  # default: the saved models' own
    seed: 0                # fine-tune k trains specialist i with seed + 1000 k + i
    output: runs/rl_specialists   # where new sets are saved (content-addressed)
    worker: true           # false: fine-tune on the calling thread (tests, debugging)
"""

import hashlib
import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from grodt.core.errors import ConfigError
from models.lifecycle import RetrainSchedule
from models.lifecycle.refit import RefitError
from models.rl.episodes import fixed_windows
from models.rl.fills import ExecutionModel
from models.rl.safety import RiskLimits
from models.rl.specialists import MANIFEST_FILE
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from models.rl.specialists import save_specialists

__all__ = [
    "FineTuneConfig",
    "FineTunePayload",
    "fine_tune_specialists",
    "parameter_version",
]

VERSION_PREFIX = "ft-"


class FineTuneConfig(BaseModel):
    """The online fine-tuning schedule of RL specialists (module docstring, the YAML)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: int = Field(ge=2)
    every: int = Field(default=1, ge=0)
    lag_bars: int = Field(default=1, ge=0)
    warm_start: bool = True
    min_window: int | None = Field(default=None, ge=2)
    timesteps: int = Field(default=2048, ge=1)
    episode_bars: int = Field(default=20, ge=1)
    stride: int = Field(default=5, ge=1)
    learning_rate: float | None = Field(default=None, gt=0.0)
    seed: int = 0
    output: str = "runs/rl_specialists"
    worker: bool = True

    def schedule(self) -> RetrainSchedule:
        """The :class:`~models.lifecycle.RetrainSchedule` of this config."""
        first = self.min_window if self.min_window is not None else self.window
        if first < self.episode_bars + 2:
            raise ConfigError(
                f"min_window: {first} rows cannot hold one episode of episode_bars="
                f"{self.episode_bars} (needs episode_bars + 2)"
            )
        return RetrainSchedule(
            window=self.window,
            every=self.every,
            lag_bars=self.lag_bars,
            warm_start=self.warm_start,
            min_window=self.min_window,
        )

    @classmethod
    def from_yaml(cls, path: str | Path) -> "FineTuneConfig":
        """Read and check a fine-tune YAML; errors name the file and the field."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as e:
            raise ConfigError(f"{path}: cannot read the fine-tune schedule: {e}") from None
        if not isinstance(document, dict):
            raise ConfigError(f"{path}: expected a mapping of schedule fields")
        try:
            config = cls.model_validate(document)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            raise ConfigError(f"{path}: {where}: {first['msg']}") from None
        try:
            config.schedule()
        except ConfigError as e:
            raise ConfigError(f"{path}: {e}") from None
        return config


@dataclass(frozen=True)
class FineTunePayload:
    """What one fine-tune needs (picklable: it crosses to the worker process).

    Attributes
    ----------
    features : np.ndarray
        Shape (n_rows, n_features): the window's feature rows in the observation's order
        (raw values, as the strategy computed them).
    opens, closes : np.ndarray
        Shape (n_rows,): each row's bar open and close.
    base_directory : str
        The configured specialist set (the start of every cold fine-tune).
    config : FineTuneConfig
    execution : ExecutionModel
        The strategy's instrument and venue terms.
    limits : RiskLimits
        The env's safety layer (``max_weight``, ``allow_short``).
    fit_index : int
        0 for the first fine-tune of the run, 1 for the next, ... (seeds).
    window_end_ns : int
        ``ts_event`` of the window's last bar (provenance).
    """

    features: np.ndarray
    opens: np.ndarray
    closes: np.ndarray
    base_directory: str
    config: FineTuneConfig
    execution: ExecutionModel
    limits: RiskLimits
    fit_index: int
    window_end_ns: int


def parameter_version(specialists: SpecialistSet) -> str:
    """``ft-`` + the first 12 hex digits of a SHA-256 over the observation spec and every
    specialist's policy parameters (labels in order, tensors in ``state_dict`` order)."""
    digest = hashlib.sha256(json.dumps(specialists.observation.to_dict()).encode())
    for label in specialists.labels:
        policy = specialists.model(label).policy
        for name, tensor in policy.state_dict().items():
            digest.update(label.encode() + b"/" + name.encode())
            digest.update(tensor.detach().cpu().numpy().tobytes())
    return VERSION_PREFIX + digest.hexdigest()[:12]


def fine_tune_specialists(payload: FineTunePayload, previous: str | None) -> str:
    """Continue training every specialist of ``previous`` (a set directory; the payload's base
    set when None) on the window's episodes; save the new set under ``config.output`` and
    return its directory (named by :func:`parameter_version`).

    Runs in the strategy's worker process (one torch thread). Raises :class:`RefitError` when
    the window holds no full episode."""
    import torch

    from models.rl.env import TradingEnv
    from models.rl.training import make_vec_env

    torch.set_num_threads(1)
    config = payload.config
    source = Path(previous if previous is not None else payload.base_directory)
    base = SpecialistSet.load(source)
    n_rows = len(payload.closes)
    windows = fixed_windows(n_rows, config.episode_bars, config.stride, [(0, n_rows - 1)])
    if not len(windows):
        raise RefitError(f"fine-tune: {n_rows} rows hold no episode of {config.episode_bars} bars")

    def make_env(_: int) -> TradingEnv:
        return TradingEnv(
            np.asarray(payload.features, dtype=np.float64),
            np.asarray(payload.opens, dtype=np.float64),
            np.asarray(payload.closes, dtype=np.float64),
            windows,
            base.observation,
            action_kind=base.action_kind,
            execution=payload.execution,
            limits=payload.limits,
        )

    loader = algorithm_class(base.algorithm)
    custom: dict[str, Any] = {}
    if config.learning_rate is not None:
        rate = config.learning_rate
        custom = {"learning_rate": rate, "lr_schedule": lambda _progress: rate}
    models = {}
    for i, label in enumerate(base.labels):
        env = make_vec_env(make_env, 1)
        path = source / base.manifest["files"][label]
        model = loader.load(path, env=env, device="cpu", custom_objects=custom)
        model.set_random_seed(config.seed + 1000 * payload.fit_index + i)
        model.learn(total_timesteps=config.timesteps, reset_num_timesteps=False)
        models[label] = model
    output = Path(config.output)
    output.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".fine-tune-", dir=output))
    try:
        extra = {
            **dict(base.manifest.get("extra") or {}),
            "fine_tuned_from": str(source),
            "window_end_ns": payload.window_end_ns,
            "window_rows": n_rows,
            "timesteps": config.timesteps,
            "seed": config.seed + 1000 * payload.fit_index,
        }
        save_specialists(
            staging, models, base.algorithm, base.action_kind, base.observation, extra=extra
        )
        version = parameter_version(SpecialistSet.load(staging))
        target = output / version
        try:
            staging.rename(target)
        except OSError:
            if not (target / MANIFEST_FILE).is_file():
                raise
            shutil.rmtree(staging)  # the same fine-tune saved before (content-addressed)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return str(target)
