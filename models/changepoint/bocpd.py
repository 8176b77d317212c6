"""Bayesian online change-point detection (Adams & MacKay 2007) on one series, causal by
construction: the output at bar t uses observations 1..t only.

The run length r_t (bars since the last change) gets a posterior p(r_t | x_1..x_t), updated
once per observation:

    growth:      p(r_t = r+1, x_1..t) = p(r_{t-1} = r, x_1..t-1) · π_r(x_t) · (1 − H)
    change:      p(r_t = 0,   x_1..t) = Σ_r p(r_{t-1} = r, x_1..t-1) · π_r(x_t) · H

with a constant hazard H = 1 / ``expected_run`` and π_r the posterior predictive of x_t given
the last r observations: a Normal-Gamma prior on an unknown mean and precision, so π_r is a
Student-t. The posterior is truncated at ``max_run`` run lengths (the tail's mass is folded into
the longest kept run), so a step costs O(max_run) numpy work, memory is bounded, and nothing
grows with history.

The signal: ``p_change`` = p(r_t < ``window`` | x_1..t), the probability that a change happened
within the last ``window`` bars. (p(r_t = 0) itself equals H at every step under a constant
hazard, so it carries no information.) A *conservative* prior on regime flips is a long
``expected_run`` (default 250 bars: one change a year on daily bars) with weak Normal-Gamma
hyperparameters.
"""

import math
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from scipy.special import gammaln

from grodt.core.errors import ConfigError

__all__ = ["BocpdConfig", "ChangePointStep", "OnlineChangePoint", "run_bocpd"]


@dataclass(frozen=True)
class BocpdConfig:
    """Priors and limits of :class:`OnlineChangePoint`.

    Parameters
    ----------
    expected_run : float, default 250
        Expected bars between changes (hazard 1/expected_run): the prior on regime flips.
    window : int, default 5
        ``p_change`` is the posterior probability of a change in the last ``window`` bars.
    max_run : int, default 1000
        Run lengths kept (the posterior is truncated beyond, mass folded into the last).
    mu0, kappa0, alpha0, beta0 : float
        Normal-Gamma prior of a segment's mean and precision: mean ``mu0`` worth ``kappa0``
        observations; precision Gamma(``alpha0``, ``beta0``) (``beta0 / alpha0`` ≈ the prior
        variance). Defaults suit daily log returns (variance ~1e-4).
    """

    expected_run: float = 250.0
    window: int = 5
    max_run: int = 1000
    mu0: float = 0.0
    kappa0: float = 1.0
    alpha0: float = 1.0
    beta0: float = 1e-4

    def __post_init__(self) -> None:
        if not self.expected_run > 1.0:
            raise ConfigError(f"expected_run: must be > 1, was {self.expected_run}")
        if not 1 <= self.window < self.max_run:
            raise ConfigError(
                f"window: must be in [1, max_run={self.max_run}), was {self.window}",
            )
        for name in ("kappa0", "alpha0", "beta0"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name}: must be positive, was {getattr(self, name)}")


@dataclass(frozen=True)
class ChangePointStep:
    """The detector's state after one observation.

    Attributes
    ----------
    p_change : float
        p(r_t < window | x_1..t).
    map_run : int
        The most probable run length (bars since the last change).
    expected_run : float
        Posterior mean run length.
    """

    p_change: float
    map_run: int
    expected_run: float


class OnlineChangePoint:
    """Streaming BOCPD (see the module docstring); :meth:`update` once per observation."""

    def __init__(self, config: BocpdConfig | None = None) -> None:
        self.config = config or BocpdConfig()
        self._log_h = math.log(1.0 / self.config.expected_run)
        self._log_1mh = math.log1p(-1.0 / self.config.expected_run)
        self.reset()

    def reset(self) -> None:
        c = self.config
        # Run-length posterior (log) and each run length's Normal-Gamma parameters.
        self._log_r = np.zeros(1)
        self._mu = np.array([c.mu0])
        self._kappa = np.array([c.kappa0])
        self._alpha = np.array([c.alpha0])
        self._beta = np.array([c.beta0])
        self.count = 0

    def _log_predictive(self, x: float) -> np.ndarray:
        """log Student-t predictive of x under every run length's posterior."""
        nu = 2.0 * self._alpha
        scale2 = self._beta * (self._kappa + 1.0) / (self._alpha * self._kappa)
        z2 = (x - self._mu) ** 2 / scale2
        return (
            gammaln((nu + 1.0) / 2.0)
            - gammaln(nu / 2.0)
            - 0.5 * np.log(nu * math.pi * scale2)
            - (nu + 1.0) / 2.0 * np.log1p(z2 / nu)
        )

    def update(self, x: float) -> ChangePointStep:
        """Admit one observation (a non-finite ``x`` is skipped: the state is unchanged)."""
        c = self.config
        if not math.isfinite(x):
            return self.last_step()
        log_pred = self._log_predictive(x)
        joint = self._log_r + log_pred
        growth = joint + self._log_1mh
        change = np.logaddexp.reduce(joint) + self._log_h
        log_r = np.concatenate(([change], growth))
        # Posterior parameters: a fresh prior for r = 0, every run extended by x.
        kappa_new = self._kappa + 1.0
        mu_new = (self._kappa * self._mu + x) / kappa_new
        alpha_new = self._alpha + 0.5
        beta_new = self._beta + self._kappa * (x - self._mu) ** 2 / (2.0 * kappa_new)
        mu = np.concatenate(([c.mu0], mu_new))
        kappa = np.concatenate(([c.kappa0], kappa_new))
        alpha = np.concatenate(([c.alpha0], alpha_new))
        beta = np.concatenate(([c.beta0], beta_new))
        if len(log_r) > c.max_run:
            # Fold the tail into the longest kept run (its parameters stand for the tail).
            log_r[c.max_run - 1] = np.logaddexp.reduce(log_r[c.max_run - 1 :])
            log_r, mu, kappa, alpha, beta = (
                a[: c.max_run] for a in (log_r, mu, kappa, alpha, beta)
            )
        log_r -= np.logaddexp.reduce(log_r)
        self._log_r, self._mu, self._kappa, self._alpha, self._beta = (
            log_r,
            mu,
            kappa,
            alpha,
            beta,
        )
        self.count += 1
        return self.last_step()

    def last_step(self) -> ChangePointStep:
        probs = np.exp(self._log_r)
        window = self.config.window
        return ChangePointStep(
            p_change=float(min(1.0, probs[:window].sum())) if self.count else 0.0,
            map_run=int(np.argmax(probs)),
            expected_run=float(probs @ np.arange(len(probs))),
        )

    @property
    def run_length_posterior(self) -> np.ndarray:
        """p(r_t = r | x_1..t) for r = 0..len-1."""
        return np.exp(self._log_r)


def run_bocpd(values: Iterable[float], config: BocpdConfig | None = None) -> np.ndarray:
    """``p_change`` for every value of a series, shape (N,) (row t uses values 1..t only)."""
    detector = OnlineChangePoint(config)
    return np.array([detector.update(float(v)).p_change for v in values])
