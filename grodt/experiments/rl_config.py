"""The YAML config of ``grodt rl train`` (``node_configs/rl/*.yaml``), validated by pydantic.

Every key is documented on its field; unknown keys are errors naming the field path. Paths in the
file (``feature_set``, ``venue``, ``catalog``) are relative to the working directory, like node
configs. Example: ``node_configs/rl/sp500_daily.yaml``.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic import model_validator

from grodt.core.messages import REGIME_LABELS
from models.rl.training import PolicyConfig
from node_configs.loader import load_document
from node_configs.loader import validate_model
from node_configs.schema import DateText
from node_configs.schema import StrictModel

__all__ = [
    "CheckpointSpec",
    "EpisodeSpec",
    "LimitsSpec",
    "PeriodSpec",
    "RLTrainConfig",
    "RegimeSpec",
    "RewardSpec",
    "TimestepsSpec",
    "load_rl_config",
]


class PeriodSpec(StrictModel):
    """A span of bar closes: ``start`` ≤ ts < ``end`` (ISO dates or timestamps, UTC)."""

    start: DateText = None
    """First bar close included; None: from the first bar."""
    end: DateText = None
    """First bar close excluded; None: to the last bar."""


class EpisodeSpec(StrictModel):
    """How training episodes are cut from the training period."""

    bars: int | None = Field(default=250, ge=2)
    """Steps per episode for daily bars (windows of this many decisions)."""
    stride: int | None = Field(default=None, ge=1)
    """Bars between window starts (default: ``bars``, no overlap)."""
    sessions: bool = False
    """One episode per trading day (intraday bars) instead of fixed windows."""
    timezone: str = "UTC"
    """Time zone of the trading day when ``sessions`` is true."""


class RegimeSpec(StrictModel):
    """The regime model whose causal probabilities weight the specialists' episodes.

    One HMM per bar type, fitted on the training period only (``models.regime.fit_window``), then
    run forward over every bar (``models.regime.run_walk_forward`` with ``refit_every: 0``): the
    probability at bar t uses bars up to t and parameters fitted on the training period."""

    features: list[str] = Field(default_factory=lambda: ["log_return", "realized_vol:20"])
    """Regime features (``models.regime.features`` specs)."""
    n_states: int = Field(default=3, ge=2)
    train_bars: int = Field(default=2500, ge=50)
    """The last rows of the training period the HMM is fitted on."""
    n_init: int = Field(default=3, ge=1)
    random_state: int = 0


class LimitsSpec(StrictModel):
    """The safety layer (``models.rl.safety.RiskLimits``)."""

    max_weight: float = Field(default=1.0, gt=0.0, le=1.0)
    """|weight| of the instrument at target ±1, fraction of equity."""
    gross_exposure: float = Field(default=1.0, gt=0.0)
    """Σ|weight| cap of the portfolio."""
    allow_short: bool | None = None
    """None: shorts allowed on MARGIN venues, not on CASH venues."""


class RewardSpec(StrictModel):
    """The reward (``models.rl.rewards.RewardConfig``)."""

    kind: Literal["pnl", "differential_sharpe"] = "pnl"
    scale: float = Field(default=100.0, gt=0.0)
    eta: float = Field(default=0.01, gt=0.0, lt=1.0)
    cvar_budget: float | None = Field(default=None, gt=0.0)
    cvar_alpha: float = Field(default=0.95, gt=0.0, lt=1.0)
    cvar_lr: float = Field(default=0.1, ge=0.0)


class TimestepsSpec(StrictModel):
    """Training length in env steps."""

    generalist: int = Field(default=20_000, ge=1)
    """Pretraining on every training window."""
    specialist: int = Field(default=10_000, ge=0)
    """Fine-tuning of each specialist (0: each specialist is the generalist)."""


class CheckpointSpec(StrictModel):
    """Checkpoints during training (``grodt.tracking.checkpoints`` retention policy)."""

    every: int = Field(default=0, ge=0)
    """Env steps between checkpoints of each model (0: none)."""
    keep_last: int = Field(default=2, ge=1)
    keep_best: int = Field(default=1, ge=0)
    """Best by the mean episode return of the last rollout."""


class RLTrainConfig(StrictModel):
    """An RL specialists training run."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Run name: MLflow experiment ``train/<name>``, registered model ``rl_<name>``."""
    catalog: str | None = None
    """Catalog directory (default: GRODT_CATALOG)."""
    bar_types: list[str] = Field(min_length=1)
    """Bar types whose bars train the policy (one venue; equal instrument terms)."""
    feature_set: str
    """A research feature-set YAML (``node_configs/features/*.yaml``): the observation."""
    venue: str
    """A venue YAML (``node_configs/venues/*.yaml``): account type, fill_at, slippage, cash."""
    train: PeriodSpec = Field(default_factory=PeriodSpec)
    test: PeriodSpec | None = None
    """Out-of-sample period evaluated after training (never used to fit anything)."""
    episodes: EpisodeSpec = Field(default_factory=EpisodeSpec)
    regime: RegimeSpec = Field(default_factory=RegimeSpec)
    labels: list[str] = Field(default_factory=lambda: list(REGIME_LABELS))
    """One specialist per label."""
    action: Literal["continuous", "discrete"] = "continuous"
    limits: LimitsSpec = Field(default_factory=LimitsSpec)
    reward: RewardSpec = Field(default_factory=RewardSpec)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    timesteps: TimestepsSpec = Field(default_factory=TimestepsSpec)
    checkpoints: CheckpointSpec = Field(default_factory=CheckpointSpec)
    seed: int = 0

    @model_validator(mode="after")
    def _consistent(self) -> "RLTrainConfig":
        unknown = [label for label in self.labels if label not in REGIME_LABELS]
        if unknown:
            raise ValueError(f"labels: {unknown} are not regime labels {list(REGIME_LABELS)}")
        if not self.labels:
            raise ValueError("labels: at least one specialist is needed")
        if self.action == "discrete" and self.policy.algorithm != "MaskablePPO":
            raise ValueError("action: discrete needs policy.algorithm MaskablePPO (action masks)")
        if self.action == "continuous" and self.policy.algorithm == "MaskablePPO":
            raise ValueError("policy.algorithm: MaskablePPO needs action: discrete")
        if not self.episodes.sessions and self.episodes.bars is None:
            raise ValueError("episodes: give bars, or sessions: true")
        return self


def load_rl_config(path: str | Path, overrides: tuple[str, ...] = ()) -> RLTrainConfig:
    """Read and validate an RL training YAML (``PATH=VALUE`` overrides as in node configs);
    a bad file is a ``ConfigError`` naming the file and every bad field."""
    document = load_document(path, overrides)
    return validate_model(RLTrainConfig, document, str(path))
