"""The safety layer: the policy's target projected onto what the risk limits allow.

A target position is in action units (:mod:`models.rl.actions`): ``+1`` is ``max_weight`` of
equity long. The portfolio risk gate (``risk_engine``) denies an order that would take one
instrument past ``max_weight`` of equity or the portfolio's gross exposure past
``gross_exposure`` × equity (and shorts on a long-only account). The safety layer applies the same
limits before an order exists, so the gate never has to deny the policy:

    headroom = gross_exposure − other_gross        (equity fractions; other_gross: the rest of
                                                    the portfolio's |weights|, 0 in the env)
    high     = clip(headroom / max_weight, 0, 1)
    low      = −high if allow_short else 0
    target'  = clip(target, low, high)

For discrete actions the mask allows the index of each target in [low, high]: 0 (flat) always,
+1 only when ``high`` is 1, −1 only when ``low`` is −1 (MaskablePPO's ``action_masks()``). A
discrete policy therefore never asks for what would be projected.
"""

from dataclasses import dataclass

import numpy as np

from models.rl.actions import DISCRETE_TARGETS

__all__ = ["RiskLimits"]

_EPS = 1e-12


@dataclass(frozen=True, slots=True)
class RiskLimits:
    """Limits of the safety layer (equity fractions).

    Attributes
    ----------
    max_weight : float
        Largest |weight| of the instrument, in (0, 1] (the gate's default is 0.25).
    gross_exposure : float
        Largest Σ|weight| of the portfolio (> 0; the gate's default is 1.0).
    allow_short : bool
        False on long-only (CASH) accounts.
    """

    max_weight: float = 1.0
    gross_exposure: float = 1.0
    allow_short: bool = True

    def __post_init__(self) -> None:
        if not (0.0 < self.max_weight <= 1.0):
            raise ValueError(f"risk.max_weight must be in (0, 1], was {self.max_weight!r}")
        if not (self.gross_exposure > 0.0):
            raise ValueError(f"risk.gross_exposure must be positive, was {self.gross_exposure!r}")

    def bounds(self, other_gross: float = 0.0) -> tuple[float, float]:
        """``(low, high)`` of the allowed target (module docstring)."""
        headroom = max(self.gross_exposure - max(other_gross, 0.0), 0.0)
        high = min(headroom / self.max_weight, 1.0)
        return (-high if self.allow_short else 0.0), high

    def project(self, target: float, other_gross: float = 0.0) -> float:
        """The allowed target nearest to ``target``."""
        low, high = self.bounds(other_gross)
        return min(max(target, low), high)

    def weight(self, target: float) -> float:
        """Signed fraction of equity of a (projected) target."""
        return target * self.max_weight

    def action_mask(self, other_gross: float = 0.0) -> np.ndarray:
        """bool (3,): which of the discrete targets (−1, 0, +1) are allowed."""
        low, high = self.bounds(other_gross)
        return np.array([low - _EPS <= t <= high + _EPS for t in DISCRETE_TARGETS], dtype=bool)
