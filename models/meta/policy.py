"""The meta-controller's decision at one rebalance, without a node: policy, health, fallback.

:class:`MetaPolicy` turns the rebalance's inputs (one model row per strategy, a bandit context,
the strategies' return correlation, the weights in force and what the last window realised) into
a :class:`MetaDecision`. The actor (``actors/meta_controller.py``) gathers the inputs from the bus
and cache and publishes the decision; the benchmark and the tests call it directly.

Policies:

* ``static`` — the configured weights.
* ``predictive`` — calibrated quantile forecasts (:class:`~models.meta.model.MetaModel`) into
  :func:`~models.meta.allocator.allocate` (continuous weights, deterministic); or, with
  ``predictive_actions="arms"``, into a choice among the bandit's discrete allocations: the arm
  whose weights have the best forecast utility ``μᵀw − λ·wᵀΣw`` is taken with probability
  ``1 − ε + ε/K``, every other arm with ``ε/K`` (ε = ``predictive_exploration``, K arms), drawn
  from a stream seeded by ``bandit_seed`` and logged (``action_index``,
  ``action_probabilities``, ``propensity``) so that another model can be evaluated off-policy
  on the decisions; greedy, propensity 1, while exploration is frozen.
* ``bandit`` — :class:`~models.meta.bandit.LinearThompsonBandit` over
  :func:`~models.meta.bandit.allocation_actions`, updated with each window's portfolio return;
  while exploration is frozen (``decide(..., exploration_frozen=True)``: after a change point)
  it takes the greedy action on the posterior mean, logged with propensity 1.
* ``trailing_sharpe`` — FinRL's rule, a baseline: all capital to the strategy with the best
  trailing Sharpe ratio.

``predictive`` falls back to ``static`` (``policy="static"`` with a ``fallback_reason``)
whenever the model is missing or unhealthy (:mod:`models.meta.health`) or an input is not finite.
"""

from dataclasses import dataclass
from dataclasses import field
from typing import Literal

import numpy as np

from models.meta.allocator import AllocatorConfig
from models.meta.allocator import allocate
from models.meta.bandit import LinearThompsonBandit
from models.meta.bandit import allocation_actions
from models.meta.calibration import raw_positive_probability
from models.meta.features import STRATEGY_FEATURES
from models.meta.health import CoverageMonitor
from models.meta.health import HealthConfig
from models.meta.health import forecast_problem
from models.meta.health import inputs_problem
from models.meta.model import Forecast
from models.meta.model import MetaModel

__all__ = ["POLICIES", "PREDICTIVE_ACTIONS", "MetaDecision", "MetaPolicy", "arm_utilities"]

PolicyName = Literal["static", "predictive", "bandit", "trailing_sharpe"]
POLICIES: tuple[str, ...] = ("static", "predictive", "bandit", "trailing_sharpe")
PREDICTIVE_ACTIONS: tuple[str, ...] = ("continuous", "arms")

_SHARPE = STRATEGY_FEATURES.index("sharpe")


@dataclass
class MetaDecision:
    """One rebalance's outcome (the fields of the allocation record it becomes).

    Attributes
    ----------
    weights : np.ndarray, shape (n,)
        New capital weights (fractions of equity).
    policy : str
        The policy that produced them (``"static"`` on a fallback).
    fallback_reason : str
        Why the configured policy was not used ("" when it was).
    bounds_hit : list[str]
        Constraints that bound (:class:`~models.meta.allocator.Allocation`).
    quantiles : dict[str, dict[str, float]]
        Per strategy ``{"q10", "q50", "q90"}``: the calibrated interval and median.
    predicted : dict[str, float]
        Per strategy μ (q50), and ``"<name>:p_positive"``.
    action_index, action_probabilities, propensity
        The bandit's choice (None / [] otherwise).
    exploration_frozen : bool
        Whether exploration was frozen at this decision (the bandit then chose greedily).
    calibration_coverage : float | None
        ``predictive``: the coverage monitor's realised coverage of the interval over its
        window before this decision (None before any outcome; None for other policies).
    calibration_outcomes : int
        ``predictive``: outcomes in that window (0 otherwise).
    """

    weights: np.ndarray
    policy: str
    fallback_reason: str = ""
    bounds_hit: list[str] = field(default_factory=list)
    quantiles: dict[str, dict[str, float]] = field(default_factory=dict)
    predicted: dict[str, float] = field(default_factory=dict)
    action_index: int | None = None
    action_probabilities: list[float] = field(default_factory=list)
    propensity: float | None = None
    exploration_frozen: bool = False
    calibration_coverage: float | None = None
    calibration_outcomes: int = 0


class MetaPolicy:
    """Stateful decision maker of one meta-controller (see the module docstring).

    Parameters
    ----------
    policy : str
        One of :data:`POLICIES`.
    names : list[str]
        Strategy ids, in the order of every array passed in.
    static_weights : np.ndarray, shape (n,)
        The fallback (and ``static``) weights.
    allocator : AllocatorConfig
    health : HealthConfig
    model : MetaModel, optional
        Needed by ``predictive``; without it every decision falls back (``model_error`` or
        ``model_missing``).
    model_error : str
        Why there is no model: the fallback reason of every ``predictive`` decision
        (default ``"model_missing"``).
    bandit_features : int
        Length of the bandit context.
    bandit_seed, bandit_exploration : int, float
        The seed of the bandit's (and of the predictive arms') random stream; the bandit's ε.
    predictive_actions : {"continuous", "arms"}
        ``predictive``: the allocator's continuous weights, or one of the bandit's arms (the
        module docstring).
    predictive_exploration : float
        ε of the ``arms`` choice, in [0, 1] (0: always the best arm, propensity 1).
    """

    def __init__(
        self,
        policy: str,
        names: list[str],
        static_weights: np.ndarray,
        allocator: AllocatorConfig,
        health: HealthConfig,
        model: MetaModel | None = None,
        model_error: str = "",
        bandit_features: int = 0,
        bandit_seed: int = 0,
        bandit_exploration: float = 0.0,
        predictive_actions: str = "continuous",
        predictive_exploration: float = 0.0,
    ) -> None:
        if policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, was {policy!r}")
        if predictive_actions not in PREDICTIVE_ACTIONS:
            raise ValueError(
                f"predictive_actions must be one of {PREDICTIVE_ACTIONS}, "
                f"was {predictive_actions!r}"
            )
        if not 0.0 <= predictive_exploration <= 1.0:
            raise ValueError(
                f"predictive_exploration must be in [0, 1], was {predictive_exploration}"
            )
        if predictive_exploration > 0.0 and predictive_actions != "arms":
            raise ValueError(
                "predictive_exploration needs predictive_actions='arms' (continuous weights "
                "have no discrete action to explore)"
            )
        self.predictive_actions = predictive_actions
        self.predictive_exploration = predictive_exploration
        # Its own stream: the bandit's draws and the arms' never share one.
        self._arm_rng = np.random.default_rng(bandit_seed)
        self.policy = policy
        self.names = list(names)
        self.static_weights = np.asarray(static_weights, dtype=float)
        self.allocator = allocator
        self.health = health
        self.model = model
        self.model_error = model_error
        nominal = model.interval.coverage if model is not None else 0.8
        self.monitor = CoverageMonitor(nominal, health.drift_window)
        self.switched_off = np.zeros(len(names), dtype=bool)
        self._last_forecast: Forecast | None = None
        self.actions = allocation_actions(
            self.static_weights,
            allocator.min_allocation,
            allocator.max_allocation,
        )
        self.bandit = (
            LinearThompsonBandit(
                self.actions.shape[0],
                bandit_features,
                exploration=bandit_exploration,
                seed=bandit_seed,
            )
            if policy == "bandit"
            else None
        )
        self._last_action: tuple[int, np.ndarray] | None = None

    def set_model(self, model: MetaModel) -> None:
        """Use ``model`` from the next decision on (an online refit taking over)."""
        self.model = model
        self.model_error = ""

    @property
    def model_version(self) -> str:
        return self.model.version_ if self.model is not None else ""

    def decide(
        self,
        rows: np.ndarray,
        bandit_context: np.ndarray,
        correlation: np.ndarray,
        previous: np.ndarray,
        now_ns: int,
        realised_returns: np.ndarray | None = None,
        realised_portfolio_return: float | None = None,
        exploration_frozen: bool = False,
    ) -> MetaDecision:
        """Decide the weights of this rebalance.

        Parameters
        ----------
        rows : np.ndarray, shape (n, n_features)
            One model row per strategy (``models.meta.features.feature_names()`` order).
        bandit_context : np.ndarray, shape (bandit_features,)
        correlation : np.ndarray, shape (n, n)
        previous : np.ndarray, shape (n,)
            Weights in force.
        now_ns : int
            The rebalance time (UNIX ns).
        realised_returns : np.ndarray, shape (n,), optional
            Per-unit returns of the window since the previous rebalance (coverage monitor).
        realised_portfolio_return : float, optional
            The portfolio's return over that window (the bandit's reward of its last action).
        exploration_frozen : bool
            Choose without exploring (the bandit's greedy action; the other policies do not
            explore). It still learns from the realised return.
        """
        self._learn(realised_returns, realised_portfolio_return)
        if self.policy == "static":
            decision = MetaDecision(self.static_weights.copy(), "static")
        elif self.policy == "trailing_sharpe":
            decision = self._trailing_sharpe(rows)
        elif self.policy == "bandit":
            decision = self._bandit(bandit_context, exploration_frozen)
        else:
            decision = self._predictive(rows, correlation, previous, now_ns, exploration_frozen)
            coverage = self.monitor.coverage
            decision.calibration_coverage = coverage if np.isfinite(coverage) else None
            decision.calibration_outcomes = self.monitor.outcomes
        decision.exploration_frozen = exploration_frozen
        return decision

    def fallback(self, reason: str) -> MetaDecision:
        """The static weights, saying why."""
        self._last_forecast = None
        return MetaDecision(self.static_weights.copy(), "static", fallback_reason=reason)

    def _learn(self, realised: np.ndarray | None, portfolio: float | None) -> None:
        if realised is not None and self._last_forecast is not None:
            forecast = self._last_forecast
            self.monitor.observe(forecast.lower, forecast.upper, realised)
        if (
            self.bandit is not None
            and self._last_action is not None
            and portfolio is not None
            and np.isfinite(portfolio)
        ):
            index, context = self._last_action
            self.bandit.update(index, context, portfolio)

    def _trailing_sharpe(self, rows: np.ndarray) -> MetaDecision:
        sharpe = rows[:, _SHARPE]
        if not np.isfinite(sharpe).all():
            return self.fallback("incomplete_inputs")
        weights = np.zeros(len(self.names))
        weights[int(np.argmax(sharpe))] = 1.0
        return MetaDecision(weights, "trailing_sharpe")

    def _bandit(self, context: np.ndarray, frozen: bool) -> MetaDecision:
        assert self.bandit is not None
        context = np.asarray(context, dtype=float)
        choice = self.bandit.greedy(context) if frozen else self.bandit.choose(context)
        self._last_action = (choice.action_index, context)
        return MetaDecision(
            self.actions[choice.action_index].copy(),
            "bandit",
            action_index=choice.action_index,
            action_probabilities=choice.action_probabilities.tolist(),
            propensity=choice.propensity,
        )

    def _predictive(
        self,
        rows: np.ndarray,
        correlation: np.ndarray,
        previous: np.ndarray,
        now_ns: int,
        frozen: bool = False,
    ) -> MetaDecision:
        if self.model is None:
            return self.fallback(self.model_error or "model_missing")
        problem = inputs_problem(rows)
        if problem:
            return self.fallback(problem)
        forecast = self.model.forecast(rows)
        problem = forecast_problem(
            forecast, self.health, now_ns, self.model.trained_until_ns, self.monitor
        )
        if problem:
            return self.fallback(problem)
        self._last_forecast = forecast
        if not np.isfinite(correlation).all():
            correlation = np.eye(len(self.names))
        quantiles = {
            name: {
                "q10": float(forecast.lower[i]),
                "q50": float(forecast.mu[i]),
                "q90": float(forecast.upper[i]),
            }
            for i, name in enumerate(self.names)
        }
        predicted: dict[str, float] = {}
        for i, name in enumerate(self.names):
            predicted[name] = float(forecast.mu[i])
            predicted[f"{name}:p_positive"] = float(forecast.p_positive[i])
        if self.predictive_actions == "arms":
            return self._predictive_arm(forecast, correlation, quantiles, predicted, frozen)
        # The switch rule reads the split normal through the calibrated quantiles: a zero-width
        # interval at 0 (a strategy that rarely trades) is P(<0) = P(>0) = ½, not "negative".
        # The isotonic p_positive counts flat windows as not positive, so it would switch off
        # every strategy that trades rarely; it is reported, not used here.
        # Each side at least sigma_min wide, so a median of -1e-12 is not "certainly negative".
        spread = 1.2815515655446004 * self.health.sigma_min
        switch_p_positive = raw_positive_probability(
            np.column_stack(
                [
                    np.minimum(forecast.lower, forecast.mu - spread),
                    forecast.mu,
                    np.maximum(forecast.upper, forecast.mu + spread),
                ],
            ),
            (0.1, 0.5, 0.9),
        )
        result = allocate(
            forecast.mu,
            np.maximum(forecast.sigma, self.health.sigma_min),
            correlation,
            previous,
            switch_p_positive,
            self.allocator,
            names=self.names,
            switched_off=self.switched_off,
        )
        self.switched_off = result.switched_off
        return MetaDecision(
            result.weights,
            "predictive",
            bounds_hit=result.bounds_hit,
            quantiles=quantiles,
            predicted=predicted,
        )

    def _predictive_arm(
        self,
        forecast: Forecast,
        correlation: np.ndarray,
        quantiles: dict[str, dict[str, float]],
        predicted: dict[str, float],
        frozen: bool,
    ) -> MetaDecision:
        """One of the bandit's arms: the best by forecast utility, or an exploring draw."""
        sigma = np.maximum(forecast.sigma, self.health.sigma_min)
        utility = arm_utilities(
            self.actions, forecast.mu, sigma, correlation, self.allocator.risk_aversion
        )
        best = int(np.argmax(utility))  # ties: the lowest index (static first)
        n_arms = self.actions.shape[0]
        epsilon = 0.0 if frozen else self.predictive_exploration
        probabilities = np.full(n_arms, epsilon / n_arms)
        probabilities[best] += 1.0 - epsilon
        index = best if epsilon == 0.0 else int(self._arm_rng.choice(n_arms, p=probabilities))
        return MetaDecision(
            self.actions[index].copy(),
            "predictive",
            quantiles=quantiles,
            predicted=predicted,
            action_index=index,
            action_probabilities=probabilities.tolist(),
            propensity=float(probabilities[index]),
        )


def arm_utilities(
    arms: np.ndarray,
    mu: np.ndarray,
    sigma: np.ndarray,
    correlation: np.ndarray,
    risk_aversion: float,
) -> np.ndarray:
    """Mean-variance utility ``μᵀw − λ·wᵀΣw`` of each arm, Σ = diag(σ)·C·diag(σ).

    Parameters
    ----------
    arms : np.ndarray, shape (K, n)
        Weight vectors (fractions of equity).
    mu, sigma : np.ndarray, shape (n,)
        Forecast return per unit of allocation over the next window, and its σ.
    correlation : np.ndarray, shape (n, n)
    risk_aversion : float
        λ.

    Returns
    -------
    np.ndarray, shape (K,)
        Utility per arm (return units per window).
    """
    covariance = correlation * np.outer(sigma, sigma)
    risk = np.einsum("ai,ij,aj->a", arms, covariance, arms)
    return arms @ mu - risk_aversion * risk
