"""Bounded, gradual capital allocation from predicted strategy returns.

:func:`allocate` maximises the mean-variance utility ``μᵀw − λ·wᵀΣw`` over the weights ``w``
(fractions of equity) subject to per-strategy bounds ``lo ≤ w ≤ hi`` and ``Σw ≤ 1``, by
accelerated projected gradient ascent (FISTA; the projection onto the box intersected with the
half-space is exact). Around it, in this order:

1. **switch-off / on**: a strategy whose calibrated P(return > 0) is at most
   ``1 − switch_off_probability`` gets the bounds [0, 0]; once off it stays off until
   P(return > 0) reaches ``switch_on_probability`` (hysteresis);
2. **diversified top-K** (optional): at most K strategies, picked greedily by score
   (μ/σ) minus ``correlation_penalty`` × redundancy with those already picked (``max`` or
   ``sum`` of |ρ|); the rest get [0, 0];
3. the optimisation;
4. **max_step**: no weight moves more than ``max_step`` from the previous weights (rises are
   scaled down when that would push the total above 1);
5. **rebalance_threshold**: when the total variation ½·Σ|w − w_prev| is below it, the previous
   weights stay.

Every constraint that changed the outcome is named in :attr:`Allocation.bounds_hit`.
"""

from dataclasses import dataclass
from dataclasses import field
from typing import Literal

import numpy as np

__all__ = ["Allocation", "AllocatorConfig", "allocate", "diversified_top_k", "project"]


@dataclass(frozen=True)
class AllocatorConfig:
    """Constraints of :func:`allocate` (see the module docstring; weights are fractions).

    Attributes
    ----------
    min_allocation, max_allocation : float
        Per-strategy bounds while a strategy is on.
    risk_aversion : float
        λ of ``μᵀw − λ·wᵀΣw`` (per-window returns, so λ ≈ 1/(2 × the risk one would bear)).
    rebalance_threshold : float
        Keep the previous weights when the total variation of the change is below it.
    max_step : float
        Largest change of one weight per rebalance.
    switch_off_probability : float
        Off when P(return < 0) ≥ this.
    switch_on_probability : float
        Back on when P(return > 0) ≥ this.
    top_k : int | None
        At most this many strategies on (None: all).
    correlation_penalty : float
        Weight of the redundancy in the top-K score.
    redundancy : {"max", "sum"}
        How the |ρ| to the strategies already picked add up.
    iterations : int
        FISTA iterations (the objective is a small concave quadratic).
    """

    min_allocation: float = 0.1
    max_allocation: float = 0.6
    risk_aversion: float = 5.0
    rebalance_threshold: float = 0.02
    max_step: float = 0.1
    switch_off_probability: float = 0.8
    switch_on_probability: float = 0.6
    top_k: int | None = None
    correlation_penalty: float = 0.5
    redundancy: Literal["max", "sum"] = "max"
    iterations: int = 60

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_allocation <= self.max_allocation <= 1.0:
            raise ValueError(
                f"need 0 ≤ min_allocation ({self.min_allocation}) ≤ max_allocation "
                f"({self.max_allocation}) ≤ 1",
            )
        for name in ("risk_aversion", "rebalance_threshold", "correlation_penalty"):
            if getattr(self, name) < 0.0:
                raise ValueError(f"{name} must be ≥ 0, was {getattr(self, name)}")
        if not 0.0 < self.max_step <= 1.0:
            raise ValueError(f"max_step must be in (0, 1], was {self.max_step}")
        for name in ("switch_off_probability", "switch_on_probability"):
            if not 0.5 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0.5, 1], was {getattr(self, name)}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top_k must be ≥ 1 or None, was {self.top_k}")
        if self.redundancy not in ("max", "sum"):
            raise ValueError(f"redundancy must be 'max' or 'sum', was {self.redundancy!r}")


@dataclass(frozen=True)
class Allocation:
    """What :func:`allocate` decided.

    Attributes
    ----------
    weights : np.ndarray, shape (n,)
        New weights (fractions of equity, total ≤ 1).
    target : np.ndarray, shape (n,)
        The optimiser's weights before ``max_step`` and ``rebalance_threshold``.
    switched_off : np.ndarray of bool, shape (n,)
        Strategies off after this rebalance (the hysteresis state to pass back next time).
    bounds_hit : list[str]
        ``"max_allocation:<name>"``, ``"min_allocation:<name>"``, ``"total"``,
        ``"switched_off:<name>"``, ``"switched_on:<name>"``, ``"top_k_excluded:<name>"``,
        ``"max_step"``, ``"rebalance_threshold"``.
    """

    weights: np.ndarray
    target: np.ndarray
    switched_off: np.ndarray
    bounds_hit: list[str] = field(default_factory=list)


def project(v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Euclidean projection of ``v`` onto {lo ≤ w ≤ hi, Σw ≤ 1} (needs Σlo ≤ 1).

    The projection is ``clip(v − τ, lo, hi)`` with the smallest τ ≥ 0 that meets the total;
    the total is piecewise linear in τ, so τ is found exactly between two breakpoints.
    """
    w = np.clip(v, lo, hi)
    if w.sum() <= 1.0:
        return w
    breakpoints = np.unique(np.concatenate([v - hi, v - lo]))
    breakpoints = breakpoints[breakpoints > 0.0]
    totals = np.clip(v[None, :] - breakpoints[:, None], lo, hi).sum(axis=1)
    # totals decrease with τ; find the first breakpoint where the total is ≤ 1.
    k = int(np.searchsorted(-totals, -1.0, side="left"))
    if k >= breakpoints.size:
        tau = breakpoints[-1]
    else:
        t1, f1 = breakpoints[k], totals[k]
        if k == 0:
            t0, f0 = 0.0, float(np.clip(v, lo, hi).sum())
        else:
            t0, f0 = breakpoints[k - 1], totals[k - 1]
        tau = t1 if f0 == f1 else t0 + (f0 - 1.0) * (t1 - t0) / (f0 - f1)
    return np.clip(v - tau, lo, hi)


def diversified_top_k(
    score: np.ndarray,
    correlation: np.ndarray,
    k: int,
    penalty: float,
    redundancy: Literal["max", "sum"] = "max",
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Greedy diversified selection: indexes of at most ``k`` strategies, in pick order.

    Each step picks the eligible strategy with the highest ``score − penalty · R``, where ``R``
    is the ``max`` (or ``sum``) of its |correlation| with the strategies already picked.
    """
    n = score.size
    available = np.ones(n, dtype=bool) if eligible is None else eligible.copy()
    picked: list[int] = []
    redundancy_to_picked = np.zeros(n)
    abs_corr = np.abs(correlation)
    while len(picked) < k and available.any():
        adjusted = np.where(available, score - penalty * redundancy_to_picked, -np.inf)
        best = int(np.argmax(adjusted))
        picked.append(best)
        available[best] = False
        if redundancy == "max":
            redundancy_to_picked = np.maximum(redundancy_to_picked, abs_corr[best])
        else:
            redundancy_to_picked = redundancy_to_picked + abs_corr[best]
    return np.asarray(picked, dtype=int)


def allocate(
    mu: np.ndarray,
    sigma: np.ndarray,
    correlation: np.ndarray,
    previous: np.ndarray,
    p_positive: np.ndarray,
    config: AllocatorConfig,
    names: list[str] | None = None,
    switched_off: np.ndarray | None = None,
) -> Allocation:
    """Bounded, gradual mean-variance weights (see the module docstring).

    Parameters
    ----------
    mu, sigma : np.ndarray, shape (n,)
        Predicted next-window return per unit of allocation, and its standard deviation.
    correlation : np.ndarray, shape (n, n)
        Correlation of the strategies' returns (Σ = diag(σ)·C·diag(σ)).
    previous : np.ndarray, shape (n,)
        The weights in force.
    p_positive : np.ndarray, shape (n,)
        Calibrated P(return > 0) (the switch rule).
    config : AllocatorConfig
    names : list[str], optional
        Strategy names for :attr:`Allocation.bounds_hit` (default: indexes).
    switched_off : np.ndarray of bool, optional
        Which strategies were off after the previous rebalance.
    """
    n = mu.size
    names = names if names is not None else [str(i) for i in range(n)]
    hit: list[str] = []
    was_off = np.zeros(n, dtype=bool) if switched_off is None else switched_off
    off = np.where(
        was_off,
        p_positive < config.switch_on_probability,
        p_positive <= 1.0 - config.switch_off_probability,
    )
    for i in np.flatnonzero(off & ~was_off):
        hit.append(f"switched_off:{names[i]}")
    for i in np.flatnonzero(was_off & ~off):
        hit.append(f"switched_on:{names[i]}")
    on = ~off
    if config.top_k is not None and on.sum() > config.top_k:
        score = mu / np.maximum(sigma, 1e-12)
        picked = diversified_top_k(
            score,
            correlation,
            config.top_k,
            config.correlation_penalty,
            config.redundancy,
            eligible=on,
        )
        chosen = np.zeros(n, dtype=bool)
        chosen[picked] = True
        for i in np.flatnonzero(on & ~chosen):
            hit.append(f"top_k_excluded:{names[i]}")
        on = chosen
    lo = np.where(on, config.min_allocation, 0.0)
    hi = np.where(on, config.max_allocation, 0.0)
    if lo.sum() > 1.0:  # more strategies on than min_allocation allows: share the floor
        lo = lo / lo.sum()
    covariance = correlation * np.outer(sigma, sigma)
    target = _maximise(mu, config.risk_aversion * covariance, lo, hi, config.iterations)
    tol = 1e-9
    for i in np.flatnonzero(on & (target >= hi - tol)):
        hit.append(f"max_allocation:{names[i]}")
    for i in np.flatnonzero(on & (target <= lo + tol)):
        hit.append(f"min_allocation:{names[i]}")
    if target.sum() >= 1.0 - tol:
        hit.append("total")
    change = np.clip(target - previous, -config.max_step, config.max_step)
    weights = previous + change
    if np.any(np.abs(target - previous) > config.max_step + tol):
        hit.append("max_step")
        excess = weights.sum() - 1.0
        rises = np.clip(change, 0.0, None)
        if excess > 0.0 and rises.sum() > 0.0:
            weights = weights - rises * min(1.0, excess / rises.sum())
    weights = np.clip(weights, 0.0, 1.0)
    if 0.5 * np.abs(weights - previous).sum() < config.rebalance_threshold:
        hit.append("rebalance_threshold")
        weights = previous.copy()
    return Allocation(weights=weights, target=target, switched_off=off, bounds_hit=hit)


def _maximise(
    mu: np.ndarray,
    risk: np.ndarray,
    lo: np.ndarray,
    hi: np.ndarray,
    iterations: int,
) -> np.ndarray:
    """argmax ``μᵀw − wᵀ·risk·w`` over the projected set, by FISTA from the box's centre."""
    # The gradient's Lipschitz constant is 2·λ_max(risk) (risk is symmetric PSD): the exact
    # value, not a row-sum bound, keeps the step long and the iterations few.
    lipschitz = 2.0 * float(np.linalg.eigvalsh(risk)[-1]) if risk.size else 0.0
    if lipschitz <= 0.0:  # no risk term: the linear programme's solution is one projection away
        return project(lo + (hi - lo) * 0.5 + mu * 1e6, lo, hi)
    step = 1.0 / lipschitz
    w = project(0.5 * (lo + hi), lo, hi)
    y = w
    t = 1.0
    for _ in range(iterations):
        gradient = mu - 2.0 * risk @ y
        w_next = project(y + step * gradient, lo, hi)
        t_next = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
        y = w_next + ((t - 1.0) / t_next) * (w_next - w)
        if np.abs(w_next - w).max() < 1e-9:  # weights are fractions: 1e-9 is nothing
            return w_next
        w, t = w_next, t_next
    return w
