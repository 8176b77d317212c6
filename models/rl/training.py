"""Training of the specialists with stable-baselines3 / sb3-contrib: a generalist pretrained on
every training window, then one specialist per regime fine-tuned from it on windows weighted by
that regime's causal probability.

Model side only (arrays in, models out); :mod:`grodt.experiments.rl_training` reads the catalog,
fits the regime model and runs these steps in worker processes.

Reproducibility: with the same seed, config and data on CPU, :func:`new_model` /
:func:`fine_tune` followed by ``learn`` give the same weights. What makes it hold: SB3 seeds
Python, NumPy, torch and the envs from ``seed``; the env's randomness is its ``np_random``
(window draws) only; torch runs with one thread (set by the caller: ``torch.set_num_threads(1)``,
which the training worker does) and no nondeterministic kernels exist on CPU for these MLPs.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal

import gymnasium as gym
import numpy as np
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

from models.rl.env import TradingEnv
from models.rl.specialists import algorithm_class

__all__ = [
    "LearningCurve",
    "PolicyConfig",
    "Trajectory",
    "fine_tune",
    "make_vec_env",
    "new_model",
    "rollout",
]


class PolicyConfig(BaseModel):
    """Algorithm and hyperparameters (the ``policy:`` mapping of an RL training YAML).

    Attributes follow SB3's names; ``net_arch`` is the hidden layers of the actor and critic
    MLPs; ``lstm_hidden_size`` applies to RecurrentPPO only; ``n_envs`` envs are stepped per
    rollout (``n_steps`` each); ``fine_tune_learning_rate`` replaces ``learning_rate`` when a
    specialist is fine-tuned from the generalist.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    algorithm: Literal["PPO", "MaskablePPO", "RecurrentPPO"] = "PPO"
    net_arch: list[int] = Field(default_factory=lambda: [64, 64])
    activation: Literal["tanh", "relu"] = "tanh"
    learning_rate: float = Field(default=3e-4, gt=0.0)
    fine_tune_learning_rate: float | None = Field(default=None, gt=0.0)
    n_steps: int = Field(default=256, ge=2)
    batch_size: int = Field(default=64, ge=2)
    n_epochs: int = Field(default=4, ge=1)
    gamma: float = Field(default=0.99, gt=0.0, le=1.0)
    gae_lambda: float = Field(default=0.95, gt=0.0, le=1.0)
    clip_range: float = Field(default=0.2, gt=0.0)
    ent_coef: float = Field(default=0.0, ge=0.0)
    vf_coef: float = Field(default=0.5, ge=0.0)
    max_grad_norm: float = Field(default=0.5, gt=0.0)
    lstm_hidden_size: int = Field(default=32, ge=1)
    n_envs: int = Field(default=1, ge=1)

    def policy_name(self) -> str:
        return "MlpLstmPolicy" if self.algorithm == "RecurrentPPO" else "MlpPolicy"

    def hyperparameters(self) -> dict[str, Any]:
        """Keyword arguments of the SB3 constructor (policy_kwargs included)."""
        import torch

        policy_kwargs: dict[str, Any] = {
            "net_arch": list(self.net_arch),
            "activation_fn": torch.nn.Tanh if self.activation == "tanh" else torch.nn.ReLU,
        }
        if self.algorithm == "RecurrentPPO":
            policy_kwargs["lstm_hidden_size"] = self.lstm_hidden_size
        return {
            "learning_rate": self.learning_rate,
            "n_steps": self.n_steps,
            "batch_size": self.batch_size,
            "n_epochs": self.n_epochs,
            "gamma": self.gamma,
            "gae_lambda": self.gae_lambda,
            "clip_range": self.clip_range,
            "ent_coef": self.ent_coef,
            "vf_coef": self.vf_coef,
            "max_grad_norm": self.max_grad_norm,
            "policy_kwargs": policy_kwargs,
        }


def make_vec_env(make_env: Callable[[int], gym.Env], n_envs: int) -> Any:
    """``n_envs`` envs (``make_env(i)``) in one process, each in a ``Monitor`` (episode returns
    for the learning curve), as a ``DummyVecEnv``."""
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    return DummyVecEnv([lambda i=i: Monitor(make_env(i)) for i in range(n_envs)])


def new_model(config: PolicyConfig, env: Any, seed: int) -> Any:
    """A fresh SB3 model of ``config`` on ``env`` (CPU, seeded)."""
    cls = algorithm_class(config.algorithm)
    return cls(
        config.policy_name(), env, seed=seed, device="cpu", verbose=0, **config.hyperparameters()
    )


def fine_tune(path: str | Path, config: PolicyConfig, env: Any, seed: int) -> Any:
    """The generalist saved at ``path``, loaded onto ``env`` to be trained further: same
    weights, optimiser state and hyperparameters, the learning rate replaced by
    ``fine_tune_learning_rate`` when set, and reseeded with ``seed``."""
    cls = algorithm_class(config.algorithm)
    custom: dict[str, Any] = {}
    if config.fine_tune_learning_rate is not None:
        rate = config.fine_tune_learning_rate
        custom = {"learning_rate": rate, "lr_schedule": lambda _progress: rate}
    model = cls.load(path, env=env, device="cpu", custom_objects=custom)
    model.set_random_seed(seed)
    return model


class LearningCurve:
    """An SB3 callback (``callback=curve.callback()``) recording, after every rollout, the
    timesteps so far, the mean return of the episodes finished in it (NaN when none), the mean
    reward per step of the rollout and the wall time; ``on_progress(timesteps)`` is called every
    ``progress_every`` steps and ``on_rollout(timesteps, mean_return, model)`` after every
    rollout (checkpoints)."""

    def __init__(
        self,
        on_progress: Callable[[int], None] | None = None,
        on_rollout: Callable[[int, float, Any], None] | None = None,
        progress_every: int = 256,
    ) -> None:
        self.points: list[tuple[int, float, float, float]] = []
        self.on_progress = on_progress
        self.on_rollout = on_rollout
        self.progress_every = max(int(progress_every), 1)
        self._started = time.perf_counter()

    def callback(self) -> Any:
        from stable_baselines3.common.callbacks import BaseCallback

        curve = self

        class _Callback(BaseCallback):
            def _on_step(self) -> bool:
                if curve.on_progress is not None and self.n_calls % curve.progress_every == 0:
                    curve.on_progress(self.num_timesteps)
                return True

            def _on_rollout_end(self) -> None:
                returns = [info["r"] for info in self.model.ep_info_buffer]
                mean = float(np.mean(returns)) if returns else float("nan")
                self.model.ep_info_buffer.clear()
                step_reward = float(np.mean(self.model.rollout_buffer.rewards))
                elapsed = time.perf_counter() - curve._started
                curve.points.append((self.num_timesteps, mean, step_reward, elapsed))
                if curve.on_rollout is not None:
                    curve.on_rollout(self.num_timesteps, mean, self.model)

        return _Callback()


@dataclass
class Trajectory:
    """One deterministic pass of a policy over a window of bars.

    Attributes
    ----------
    bars : np.ndarray
        int (n_steps + 1,): bar index of each equity mark (the window's start .. end).
    equity : np.ndarray
        float (n_steps + 1,): equity at each of those closes (the first: the initial cash).
    positions : np.ndarray
        float (n_steps,): the projected target held after each decision.
    turnover : np.ndarray
        float (n_steps,): |traded notional| / equity of each decision.
    commission : np.ndarray
        float (n_steps,), currency units.
    actions : dict[str, np.ndarray]
        Optional per-step extras the acting function reported (specialists' actions, weights).
    """

    bars: np.ndarray
    equity: np.ndarray
    positions: np.ndarray
    turnover: np.ndarray
    commission: np.ndarray
    actions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def returns(self) -> np.ndarray:
        """float (n_steps,): net return of each step."""
        return self.equity[1:] / self.equity[:-1] - 1.0


def rollout(
    env: TradingEnv,
    window: tuple[int, int],
    act: Callable[[np.ndarray, int], float],
) -> Trajectory:
    """Run ``act(obs, bar) -> target`` over ``window`` in ``env`` (a continuous-action env: the
    target is any number in [-1, 1], projected by the env's safety layer)."""
    if env.action_kind != "continuous":
        raise ValueError("rollout: evaluate in a continuous-action env (targets are blended)")
    obs, info = env.reset(options={"window": window})
    start, end = window
    equity = [info["equity"]]
    positions, turnover, commission = [], [], []
    action = np.zeros(1, dtype=np.float32)
    for bar in range(start, end):
        action[0] = act(obs, bar)
        obs, _reward, terminated, _truncated, info = env.step(action)
        equity.append(info["equity"])
        positions.append(info["position"])
        turnover.append(info["turnover"])
        commission.append(info["commission"])
        if terminated:
            break
    steps = len(positions)
    return Trajectory(
        bars=np.arange(start, start + steps + 1),
        equity=np.asarray(equity),
        positions=np.asarray(positions),
        turnover=np.asarray(turnover),
        commission=np.asarray(commission),
    )
