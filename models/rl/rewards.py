"""Rewards of the trading env: PnL net of costs, optionally risk-sensitive.

Every reward starts from the bar's net return of the account,

    r_t = equity_{t+1} / equity_t − 1

where equity is marked at closes and the cash already paid this bar's commission and slippage
(:mod:`models.rl.fills`): PnL minus transaction costs, as a fraction of equity.

- ``pnl``: ``scale · r_t``.
- ``differential_sharpe`` (Moody & Saffell, 2001): the first-order change of an exponentially
  weighted Sharpe ratio caused by ``r_t``, with moments ``A`` (mean) and ``B`` (second moment)
  updated at rate ``eta``::

      D_t = (B_{t−1} ΔA − ½ A_{t−1} ΔB) / (B_{t−1} − A_{t−1}²)^{3/2},  ΔA = r_t − A_{t−1},
      ΔB = r_t² − B_{t−1};  A_t = A_{t−1} + eta·ΔA,  B_t = B_{t−1} + eta·ΔB

  (0 while the variance is not yet positive); the reward is ``scale · D_t``. Moments restart
  with each episode.
- CVaR penalty (either kind, when ``cvar_budget`` is set): constrained RL with a Lagrange
  multiplier λ learned against a risk budget. The loss ``L_t = −r_t``; ν tracks its
  ``cvar_alpha`` quantile (VaR) by stochastic quantile steps; the step's penalty is
  ``scale · λ · (L_t − ν)⁺ / (1 − cvar_alpha)``. At the end of an episode its CVaR estimate
  ``ν + mean((L − ν)⁺) / (1 − cvar_alpha)`` is compared with ``cvar_budget`` and λ takes a dual
  ascent step: ``λ ← max(0, λ + cvar_lr · (CVaR / cvar_budget − 1))``. λ and ν persist across
  the episodes of one env (each worker of a vectorised env learns its own).
"""

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["RewardConfig", "RewardFunction", "RewardKind"]

RewardKind = Literal["pnl", "differential_sharpe"]


@dataclass(frozen=True, slots=True)
class RewardConfig:
    """How a bar's net return becomes a reward (module docstring).

    Attributes
    ----------
    kind : {"pnl", "differential_sharpe"}
    scale : float
        Multiplies the reward (100: returns in percent).
    eta : float
        Moment update rate of the differential Sharpe ratio, in (0, 1).
    cvar_budget : float | None
        CVaR budget of the per-bar loss (0.02: 2% of equity); None: no penalty.
    cvar_alpha : float
        CVaR level in (0, 1).
    cvar_lr : float
        Dual ascent step of the Lagrange multiplier.
    var_lr : float
        Step of the VaR (quantile) estimate, return units.
    """

    kind: RewardKind = "pnl"
    scale: float = 100.0
    eta: float = 0.01
    cvar_budget: float | None = None
    cvar_alpha: float = 0.95
    cvar_lr: float = 0.1
    var_lr: float = 0.001

    def __post_init__(self) -> None:
        checks = {
            "kind": self.kind in ("pnl", "differential_sharpe"),
            "scale": self.scale > 0.0,
            "eta": 0.0 < self.eta < 1.0,
            "cvar_budget": self.cvar_budget is None or self.cvar_budget > 0.0,
            "cvar_alpha": 0.0 < self.cvar_alpha < 1.0,
            "cvar_lr": self.cvar_lr >= 0.0,
            "var_lr": self.var_lr >= 0.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"reward.{name}: invalid value {getattr(self, name)!r}")


class RewardFunction:
    """The stateful reward of one env: call :meth:`start_episode`, then ``reward(r_t)`` per bar,
    then :meth:`end_episode`.

    Attributes
    ----------
    multiplier_ : float
        The learned Lagrange multiplier λ (0 without a CVaR budget).
    var_ : float
        The VaR estimate ν of the per-bar loss.
    """

    def __init__(self, config: RewardConfig) -> None:
        self.config = config
        self.multiplier_ = 0.0
        self.var_ = 0.0
        self._mean = 0.0
        self._second = 0.0
        self._excess_sum = 0.0
        self._steps = 0

    def start_episode(self) -> None:
        self._mean = 0.0
        self._second = 0.0
        self._excess_sum = 0.0
        self._steps = 0

    def reward(self, net_return: float) -> float:
        """The reward of a bar whose net return was ``net_return``."""
        config = self.config
        value = net_return if config.kind == "pnl" else self._differential_sharpe(net_return)
        if config.cvar_budget is not None:
            loss = -net_return
            excess = loss - self.var_ if loss > self.var_ else 0.0
            tail = 1.0 - config.cvar_alpha
            value -= self.multiplier_ * excess / tail
            self._excess_sum += excess
            self._steps += 1
            self.var_ += config.var_lr * ((1.0 if loss > self.var_ else 0.0) - tail)
        return config.scale * value

    def end_episode(self) -> float | None:
        """Update λ from the episode's CVaR estimate; returns that estimate (None without a
        budget or steps)."""
        config = self.config
        if config.cvar_budget is None or self._steps == 0:
            return None
        cvar = self.var_ + self._excess_sum / self._steps / (1.0 - config.cvar_alpha)
        step = config.cvar_lr * (cvar / config.cvar_budget - 1.0)
        self.multiplier_ = max(0.0, self.multiplier_ + step)
        return cvar

    def _differential_sharpe(self, r: float) -> float:
        a, b = self._mean, self._second
        delta_a = r - a
        delta_b = r * r - b
        variance = b - a * a
        value = (b * delta_a - 0.5 * a * delta_b) / variance**1.5 if variance > 1e-18 else 0.0
        eta = self.config.eta
        self._mean = a + eta * delta_a
        self._second = b + eta * delta_b
        return value if math.isfinite(value) else 0.0
