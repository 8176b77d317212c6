"""The meta-controller: predicted strategy performance → gradual, bounded, audited capital weights.

Every ``rebalance_every`` bars of its clock bar type the actor scores each strategy named in
``static_weights`` and publishes, for each, a :class:`~grodt.core.messages.StrategyAllocation`
(``publish_data(allocation_data_type(), …)``; :class:`strategies.base.RegimeAwareStrategy` sizes
its next entries with it), and one :class:`~grodt.core.records.AllocationRecord` on
:data:`~grodt.core.topics.Topics.ALLOCATIONS` (the forensics bridge ships it).

Inputs come from the bus and the cache only, and only from the past:

* each strategy's profit — realised, from the position events on ``events.position.*`` (their
  ``realized_pnl``, differenced per position), plus the unrealised profit of its open positions
  at the cache's last price — marked on every clock bar and divided by the capital it was
  allocated (equity × weight) into per-bar returns per unit of allocation; traded notional from
  the same events (turnover); the gross notional of its open positions (exposure);
* the regime actor's :class:`~grodt.core.messages.RegimeProbabilities` for
  ``regime_instrument_id`` (neutral until the first record), and its change points: a
  :class:`~grodt.core.records.RegimeUpdateRecord` on :data:`~grodt.core.topics.Topics.REGIME`
  whose ``reason`` starts with ``changepoint:`` freezes exploration from that bar for
  ``exploration_freeze_bars`` clock bars (the bandit chooses greedily; the records say so);
* the clock instrument's closes (market volatility) and the bar's date (time features);
* the account's equity (balances plus open positions, the strategies' own rule);
* the monitors' requests on :data:`~grodt.core.topics.MODEL_CONTROL_TOPIC`
  (``actors.strategy_monitor``; a request whose ``subject`` names a strategy this actor does not
  allocate is not its concern): ``retrain`` makes the ``retrain:`` schedule's refit due at the
  next rebalance (without a schedule: a warning that nothing is retrained); ``fallback``
  publishes the static weights from the next rebalance, with ``fallback_reason``
  ``control_fallback: from <monitor>: <why>``, until the next retrained model takes over or
  ``control_fallback_bars`` clock bars have passed, whichever comes first. The fallback is the
  one state the actor saves (``on_save``): a restarted node keeps it.

The decision itself is :class:`models.meta.policy.MetaPolicy` (policies ``static``,
``predictive``, ``bandit``, ``trailing_sharpe``). Whenever the model is missing or unhealthy, an
input is not finite, the window is still filling, or the decision raises, the static weights are
published with the reason in the record (and a warning in the log on every change of reason): no
exception leaves the actor on the engine thread. The actor does not know whether it runs in a
backtest or live. ``docs/meta.md`` describes the inputs, the record's fields and the model.
"""

import importlib
import json
import math
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Literal

import numpy as np
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionEvent
from nautilus_trader.model.events import PositionOpened
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.identifiers import Venue

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.messages import RegimeProbabilities
from grodt.core.messages import StrategyAllocation
from grodt.core.messages import allocation_data_type
from grodt.core.messages import regime_data_type
from grodt.core.records import AllocationRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import make_trace_id
from grodt.core.topics import MODEL_CONTROL_TOPIC
from grodt.core.topics import NAUTILUS_POSITION_EVENTS
from grodt.core.topics import Topics
from models.lifecycle.refit import fit_worker_pool
from models.meta.allocator import AllocatorConfig
from models.meta.features import CONTEXT_FEATURES
from models.meta.features import STRATEGY_FEATURES
from models.meta.features import context_features
from models.meta.features import feature_names
from models.meta.features import performance_features
from models.meta.features import return_correlation
from models.meta.health import HealthConfig
from models.meta.model import MetaModel
from models.meta.online import MetaRetrainConfig
from models.meta.online import OnlineMetaTrainer
from models.meta.online import warm_up_worker
from models.meta.policy import POLICIES
from models.meta.policy import MetaDecision
from models.meta.policy import MetaPolicy
from models.meta.window import RollingWindow
from node_configs.model_refs import resolve_model_file

__all__ = [
    "CHANGEPOINT_REASON",
    "CONTROL_FALLBACK_REASON",
    "MetaController",
    "MetaControllerConfig",
    "load_meta_model",
    "register_challenger",
]

TRACKING_REGISTRY = "grodt.tracking.registry"
"""The registry's module (above the event path: imported by name, in the worker process)."""
TRACKING_STORE = "grodt.tracking.store"

CHANGEPOINT_REASON = "changepoint:"
"""Prefix of a regime update's ``reason`` that reports a detected change point."""

CONTROL_FALLBACK_REASON = "control_fallback:"
"""Prefix of the ``fallback_reason`` of the static weights a monitor's ``fallback`` asked for."""

_WEIGHT_TOLERANCE = 1e-9
_SHARPE = STRATEGY_FEATURES.index("sharpe")
_STATE_CONTROL = "grodt.meta.control_fallback"


class MetaControllerConfig(ActorConfig, frozen=True, kw_only=True):
    """Configuration for :class:`MetaController` (the old system's shape; all from YAML).

    Parameters
    ----------
    bar_type : BarType
        The clock: rebalances and marks count its bars (daily bars: ``rebalance_every: 1`` is one
        trading day).
    static_weights : dict[str, float]
        Strategy id → capital weight in [0, 1], total ≤ 1: the strategies allocated, the
        ``static`` policy and every fallback.
    rebalance_every : int, default 5
        Bars of ``bar_type`` between rebalances (the model's horizon).
    performance_window : int, default 60
        Bars of trailing performance behind the features; until that many bars are marked
        every rebalance falls back (``warming_up``).
    policy : {"static", "predictive", "bandit", "trailing_sharpe"}, default "static"
    model : str, optional
        The ``predictive`` policy's model: a file written by ``grodt meta train``, or a registry
        reference (``meta_performance@champion``, ``meta_performance/3``;
        :mod:`node_configs.model_refs`: an alias is pinned to its version when the config
        loads). Missing, unresolvable or unreadable → every rebalance falls back with the
        reason.
    min_allocation, max_allocation : float, default 0.1, 0.6
        Per-strategy bounds while a strategy is on.
    rebalance_threshold : float, default 0.02
        No change when the total variation of the new weights is below it.
    max_step : float, default 0.1
        The most one weight moves per rebalance.
    risk_aversion : float, default 5.0
        λ of μᵀw − λ·wᵀΣw (returns per rebalance window).
    switch_off_probability, switch_on_probability : float, default 0.8, 0.6
        Off when P(return < 0) ≥ the first; back on when P(return > 0) ≥ the second.
    top_k : int, optional
        Diversified top-K: at most K strategies on.
    correlation_penalty : float, default 0.5
    redundancy : {"max", "sum"}, default "max"
    max_model_age_days : float, optional, default 730
        Fall back (``stale_model``) this long after the model's last training row.
    max_crossing, sigma_min, sigma_max, max_calibration_drift, drift_window
        Health bounds (:class:`models.meta.health.HealthConfig`; ``sigma_min`` is the σ floor
        of the allocator, ``sigma_max`` the largest healthy σ).
    bandit_seed : int, default 0
    bandit_exploration : float, default 0
        The uniform floor ε of the bandit's action distribution, in [0, 1] (2–5% is a sensible
        budget; 0: Thompson sampling's own probabilities, which may be 0 for some actions).
    predictive_actions : {"continuous", "arms"}, default "continuous"
        ``predictive``: the allocator's continuous weights (deterministic; no propensity), or
        one of the bandit's discrete arms (static, equal, one tilt per strategy): the arm with
        the best forecast utility μᵀw − λ·wᵀΣw, logged with its probability
        (``action_index``, ``action_probabilities``, ``propensity``) so that a challenger model
        can be evaluated off-policy on these decisions (``grodt models challenge --policy-log``).
    predictive_exploration : float, default 0
        ``arms``: ε in [0, 1]; the best arm with probability 1 − ε + ε/K, each other arm ε/K,
        drawn from a stream seeded by ``bandit_seed``. 0: always the best arm (propensity 1: a
        log that supports no other policy).
    exploration_freeze_bars : int, default 20
        Clock bars, from the bar of a change point on ``Topics.REGIME`` (a
        ``RegimeUpdateRecord`` of ``regime_instrument_id`` whose reason starts with
        ``changepoint:``), during which the bandit and the predictive arms do not explore
        (greedy; 0: never frozen). A new change point restarts the count.
    retrain : MetaRetrainConfig, optional
        ``predictive``: retrain the model online on the rows this actor produces (a sliding
        window of rebalances, a cadence, a lag in rebalances, LightGBM warm start;
        :mod:`models.meta.online`). With ``lag`` > 0 fits run in a worker process and take over
        ``lag`` rebalances after their last training window (waited for if late); the records'
        ``model_version`` shows the switch. Without ``model`` the policy falls back until the
        first fit.
    control_fallback_bars : int, optional
        Clock bars a monitor's ``fallback`` request (``MODEL_CONTROL_TOPIC``) lasts; it also
        ends when a retrained model takes over. None: until that swap only (without a
        ``retrain`` schedule: until the node stops).
    regime_instrument_id : InstrumentId, optional
        Whose regime records to use (default: the clock's instrument).
    venue : str, optional
        The account whose equity is the capital (default: the clock's venue).
    publish_records : bool, default True
        Publish one ``AllocationRecord`` per rebalance.
    """

    bar_type: BarType
    static_weights: dict[str, float]
    rebalance_every: PositiveInt = 5
    performance_window: PositiveInt = 60
    policy: Literal["static", "predictive", "bandit", "trailing_sharpe"] = "static"
    model: str | None = None
    min_allocation: NonNegativeFloat = 0.1
    max_allocation: NonNegativeFloat = 0.6
    rebalance_threshold: NonNegativeFloat = 0.02
    max_step: PositiveFloat = 0.1
    risk_aversion: NonNegativeFloat = 5.0
    switch_off_probability: PositiveFloat = 0.8
    switch_on_probability: PositiveFloat = 0.6
    top_k: PositiveInt | None = None
    correlation_penalty: NonNegativeFloat = 0.5
    redundancy: Literal["max", "sum"] = "max"
    max_model_age_days: PositiveFloat | None = 730.0
    max_crossing: NonNegativeFloat = 0.01
    sigma_min: NonNegativeFloat = 1e-5
    sigma_max: PositiveFloat = 0.5
    max_calibration_drift: PositiveFloat = 0.3
    drift_window: PositiveInt = 60
    bandit_seed: int = 0
    bandit_exploration: NonNegativeFloat = 0.0
    predictive_actions: Literal["continuous", "arms"] = "continuous"
    predictive_exploration: NonNegativeFloat = 0.0
    exploration_freeze_bars: NonNegativeInt = 20
    retrain: MetaRetrainConfig | None = None
    control_fallback_bars: PositiveInt | None = None
    regime_instrument_id: InstrumentId | None = None
    venue: str | None = None
    publish_records: bool = True

    def __post_init__(self) -> None:
        if not self.static_weights:
            raise ValueError("static_weights: name at least one strategy id and its weight")
        for strategy_id, weight in self.static_weights.items():
            if not 0.0 <= weight <= 1.0:
                raise ValueError(f"static_weights.{strategy_id}: {weight} is not in [0, 1]")
        total = sum(self.static_weights.values())
        if total > 1.0 + _WEIGHT_TOLERANCE:
            raise ValueError(f"static_weights: the weights sum to {total:.6f} > 1")
        if self.performance_window < 3:
            raise ValueError(
                f"performance_window: {self.performance_window} bars are too few (at least 3)"
            )
        if self.policy not in POLICIES:  # msgspec checks the Literal; a direct call may not
            raise ValueError(f"policy: {self.policy!r} is not one of {POLICIES}")
        if not 0.0 <= self.bandit_exploration <= 1.0:
            raise ValueError(f"bandit_exploration: {self.bandit_exploration} is not in [0, 1]")
        if not 0.0 <= self.predictive_exploration <= 1.0:
            raise ValueError(
                f"predictive_exploration: {self.predictive_exploration} is not in [0, 1]"
            )
        if self.predictive_exploration > 0.0 and self.predictive_actions != "arms":
            raise ValueError(
                "predictive_exploration: needs predictive_actions: arms (continuous weights "
                "have no discrete action to explore)"
            )
        try:
            self.allocator()
        except ValueError as e:
            raise ValueError(f"meta-controller allocation bounds: {e}") from None

    def allocator(self) -> AllocatorConfig:
        """The allocation constraints of this config."""
        return AllocatorConfig(
            min_allocation=self.min_allocation,
            max_allocation=self.max_allocation,
            risk_aversion=self.risk_aversion,
            rebalance_threshold=self.rebalance_threshold,
            max_step=self.max_step,
            switch_off_probability=self.switch_off_probability,
            switch_on_probability=self.switch_on_probability,
            top_k=self.top_k,
            correlation_penalty=self.correlation_penalty,
            redundancy=self.redundancy,
        )

    def health(self) -> HealthConfig:
        """The model's health bounds of this config."""
        return HealthConfig(
            max_model_age_days=self.max_model_age_days,
            max_crossing=self.max_crossing,
            sigma_min=self.sigma_min,
            sigma_max=self.sigma_max,
            max_calibration_drift=self.max_calibration_drift,
            drift_window=self.drift_window,
        )


def load_meta_model(reference: str | None) -> tuple[MetaModel | None, str]:
    """The ``predictive`` policy's model named by ``reference`` (a file or a registry
    reference), or None and the fallback reason (``model_missing: …`` / ``model_error: …``)."""
    if reference is None:
        return None, "model_missing: no model configured"
    try:
        path = resolve_model_file(reference).path
    except GrodtError as e:  # an unreachable registry without a cached copy
        return None, f"model_missing: {e}"
    if not Path(path).is_file():
        return None, f"model_missing: {path} does not exist"
    try:
        model = MetaModel.load(path)
    except ConfigError as e:
        return None, f"model_error: {e}"
    if model.feature_names != feature_names():
        return None, f"model_error: {reference} was trained on features {model.feature_names}"
    return model, ""


def register_challenger(model: MetaModel, name: str, tracking_uri: str | None) -> str:
    """Register ``model`` as a new version of ``name`` with the alias ``challenger`` (run in the
    actor's worker process, off the engine thread). Returns ``name/<version>``."""
    registry = importlib.import_module(TRACKING_REGISTRY)
    store = importlib.import_module(TRACKING_STORE).resolve_store(tracking_uri)
    resolved = registry.register_model(
        model,
        name,
        aliases=["challenger"],
        params={
            "source": "meta-controller online retraining",
            "model_version": model.version_,
            "trained_until_ns": model.trained_until_ns,
        },
        metrics=model.metrics,
        store=store,
        filename="meta_model.json",
    )
    return f"{name}/{resolved.version}"


class _StrategyBook:
    """Profit and traded notional of the strategies, from position events (account currency)."""

    def __init__(self, names: list[str]) -> None:
        self.index = {name: i for i, name in enumerate(names)}
        self.realised = np.zeros(len(names))
        self.traded = np.zeros(len(names))
        self.open: dict[PositionId, int] = {}
        self._last_realised: dict[PositionId, float] = {}

    def on_event(self, event: PositionEvent) -> None:
        i = self.index.get(event.strategy_id.value)
        if i is None:
            return
        realised = event.realized_pnl.as_double() if event.realized_pnl is not None else 0.0
        position_id = event.position_id
        # A NETTING position id comes back after a close: PositionOpened starts it afresh.
        before = (
            0.0 if isinstance(event, PositionOpened) else self._last_realised.get(position_id, 0.0)
        )
        self.realised[i] += realised - before
        self._last_realised[position_id] = realised
        if event.last_qty is not None and event.last_px is not None:
            self.traded[i] += event.last_qty.as_double() * event.last_px.as_double()
        if isinstance(event, PositionClosed):
            self.open.pop(position_id, None)
        else:
            self.open[position_id] = i


class MetaController(Actor):
    """Publishes each strategy's capital weight every ``rebalance_every`` clock bars (see the
    module docstring)."""

    def __init__(self, config: MetaControllerConfig) -> None:
        super().__init__(config)
        self.names: list[str] = list(config.static_weights)
        self.static = np.array([config.static_weights[n] for n in self.names])
        self.weights = self.static.copy()
        """The weights in force (the last published, the static ones before)."""
        self.decisions = 0
        self.fallbacks: dict[str, int] = {}
        """Fallback count by reason (the reason's first word)."""
        self.policy: MetaPolicy | None = None
        self.trainer: OnlineMetaTrainer | None = None
        self._fit_pool: ProcessPoolExecutor | None = None
        self._registrations: list[tuple[str, Future[str]]] = []
        self.registered: list[str] = []
        """Registry references of the retrained versions registered as ``challenger``."""
        # The record's context keys, in its order (formatted once, not at every rebalance).
        self._context_keys = [
            f"{name}:{feature}" for name in self.names for feature in STRATEGY_FEATURES
        ]
        self._realised_keys = [f"{name}:realised_return" for name in self.names]
        self._allocation_type = allocation_data_type()
        self._regime_instrument = config.regime_instrument_id or config.bar_type.instrument_id
        self._venue = Venue(config.venue) if config.venue else config.bar_type.instrument_id.venue
        self._reset_state()

    def _reset_state(self) -> None:
        n = len(self.names)
        window = self.config.performance_window
        self._book = _StrategyBook(self.names)
        self._returns = RollingWindow(window, n)
        self._turnover = RollingWindow(window, n)
        self._closes = RollingWindow(window + 1)
        self._marked = np.zeros(n)
        self._traded = np.zeros(n)
        self._equity = float("nan")
        self._window_growth = np.ones(n)
        self._equity_at_rebalance = float("nan")
        self._bars = 0
        self._regime = (1.0 / 3.0, 1.0 / 3.0, 1.0 / 3.0)
        self._changepoint_trace_id = ""
        self._counted_until_ns = 0
        """The last bar counted in ``_bars_since_changepoint`` (the change point's, at first)."""
        self._bars_since_changepoint: int | None = None
        self._last_reason = ""
        self.weights = self.static.copy()
        self._control_reason = ""
        """The monitor's fallback in force (``control_fallback: …``; empty: none)."""
        self._control_bars = 0
        """Clock bars since that fallback was asked for."""
        self._control_requests: list[str] = []
        """Requests taken since the last rebalance (its record's ``model_control``)."""

    # -- lifecycle ---------------------------------------------------------------------------------

    def on_start(self) -> None:
        config = self.config
        model, error = None, ""
        if config.policy == "predictive":
            model, error = load_meta_model(config.model)
            if error:
                self.log.warning(f"Static weights until a healthy model is found: {error}")
            else:
                assert model is not None
                self.log.info(f"Meta model {model.version_} from {config.model}")
        self.policy = MetaPolicy(
            config.policy,
            self.names,
            self.static,
            config.allocator(),
            config.health(),
            model=model,
            model_error=error,
            bandit_features=len(CONTEXT_FEATURES) + len(self.names),
            bandit_seed=config.bandit_seed,
            bandit_exploration=config.bandit_exploration,
            predictive_actions=config.predictive_actions,
            predictive_exploration=config.predictive_exploration,
        )
        if config.policy == "predictive" and config.retrain is not None:
            retrain = config.retrain
            if (retrain.lag > 0 or retrain.register_as) and self._fit_pool is None:
                self._fit_pool = fit_worker_pool()  # ends with the node, even if killed
                # Start the worker and its imports now, at start-up, not on a bar: in a paper
                # node replaying bars fast, the first swap waited 16.5-17.7 s for them.
                try:
                    self._fit_pool.submit(warm_up_worker).result(timeout=300)
                except Exception as e:  # the first fit will say what is wrong
                    self.log.error(f"Meta retraining worker did not start: {e!r}")
            self.trainer = OnlineMetaTrainer(
                config.retrain, config.rebalance_every, model=model, executor=self._fit_pool
            )
        self.subscribe_bars(config.bar_type)
        self.subscribe_data(regime_data_type())
        self.msgbus.subscribe(topic=NAUTILUS_POSITION_EVENTS, handler=self._on_position_event)
        self.msgbus.subscribe(topic=Topics.REGIME, handler=self._on_regime_update)
        self.msgbus.subscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)

    def on_stop(self) -> None:
        self.unsubscribe_bars(self.config.bar_type)
        self.unsubscribe_data(regime_data_type())
        if self.msgbus.is_subscribed(MODEL_CONTROL_TOPIC, self._on_model_control):
            self.msgbus.unsubscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)
        self.log.info(
            f"{self.decisions} rebalances, fallbacks {self.fallbacks or 'none'}, "
            f"final weights {dict(zip(self.names, self.weights.round(4).tolist(), strict=True))}",
        )

    def on_dispose(self) -> None:
        if self.msgbus.is_subscribed(NAUTILUS_POSITION_EVENTS, self._on_position_event):
            self.msgbus.unsubscribe(topic=NAUTILUS_POSITION_EVENTS, handler=self._on_position_event)
        if self.msgbus.is_subscribed(Topics.REGIME, self._on_regime_update):
            self.msgbus.unsubscribe(topic=Topics.REGIME, handler=self._on_regime_update)
        if self.trainer is not None:
            self.trainer.close()
        for version, future in self._registrations:  # wait: a registration is not thrown away
            try:
                self.registered.append(future.result(timeout=120))
            except Exception as e:
                self.log.error(f"Meta model {version} not registered: {type(e).__name__}: {e}")
        self._registrations = []
        if self._fit_pool is not None:
            self._fit_pool.shutdown(wait=False, cancel_futures=True)
            self._fit_pool = None

    def on_save(self) -> dict[str, bytes]:
        """A monitor's fallback in force and its bar count (a restarted node keeps it; the
        rest of the actor's state is rebuilt from the bars after the restart)."""
        if not self._control_reason:
            return {}
        control = {"reason": self._control_reason, "bars": self._control_bars}
        return {_STATE_CONTROL: json.dumps(control).encode()}

    def on_load(self, state: dict[str, bytes]) -> None:
        if _STATE_CONTROL not in state:
            return
        try:
            control = json.loads(state[_STATE_CONTROL].decode())
            self._control_reason = str(control["reason"])
            self._control_bars = int(control["bars"])
        except (ValueError, KeyError, TypeError) as e:  # start without it, say why
            self.log.error(f"Saved fallback state not loaded ({type(e).__name__}: {e})")
            return
        self.log.warning(f"Restored {self._control_reason} ({self._control_bars} bars in)")

    def on_reset(self) -> None:
        self._reset_state()
        if self.trainer is not None:  # on_start builds a new one (a fit in flight is dropped)
            self.trainer.close()
            self.trainer = None

    # -- inputs ------------------------------------------------------------------------------------

    def on_data(self, data: Any) -> None:
        if isinstance(data, RegimeProbabilities) and data.instrument_id == self._regime_instrument:
            probabilities = (data.p_bull, data.p_bear, data.p_sideways)
            if all(np.isfinite(probabilities)):
                self._regime = probabilities

    def _on_regime_update(self, record: Any) -> None:
        """A change point of the regime instrument starts (or restarts) the exploration freeze."""
        if (
            isinstance(record, RegimeUpdateRecord)
            and record.reason.startswith(CHANGEPOINT_REASON)
            and record.instrument_id == str(self._regime_instrument)
        ):
            self._changepoint_trace_id = record.trace_id
            self._counted_until_ns = record.ts_event
            self._bars_since_changepoint = 0
            if self.config.exploration_freeze_bars > 0:
                self.log.info(
                    f"Change point {record.trace_id} ({record.reason}): exploration frozen for "
                    f"{self.config.exploration_freeze_bars} bars",
                )

    def _on_model_control(self, message: object) -> None:
        """A monitor asks for a ``retrain`` or a ``fallback`` (module docstring)."""
        if not isinstance(message, dict):
            return
        subject = message.get("subject")
        if subject is not None and subject not in self.names:
            return  # about a strategy this actor does not allocate
        action = message.get("action")
        detail = f"from {message.get('source', '?')}: {message.get('reason', '')}"
        if action in ("retrain", "fallback"):
            self._control_requests.append(f"{action} {detail}")
        if action == "retrain":
            if self.trainer is None:
                self.log.warning(
                    f"Meta retrain requested {detail}; nothing retrained: no retrain schedule "
                    f"(policy {self.config.policy!r}, retrain: "
                    f"{'set' if self.config.retrain else 'not configured'})",
                )
            elif self.trainer.request_refit():
                when = (
                    "queued: due at the rebalance after the fit in flight takes over"
                    if self.trainer.queued
                    else "refit due at next rebalance"
                )
                self.log.warning(f"Meta retrain requested {detail}; {when}")
            else:
                self.log.warning(
                    f"Meta retrain requested {detail}; none can start now "
                    f"({self.trainer.windows} rebalances are too few)",
                )
        elif action == "fallback":
            self._control_reason = f"{CONTROL_FALLBACK_REASON} {detail}"
            self._control_bars = 0
            self.log.warning(
                f"Meta fallback requested {detail}; static weights until {self._control_end()}"
            )

    def _control_end(self) -> str:
        ends = []
        if self.trainer is not None:
            ends.append("the next retrained model")
        if self.config.control_fallback_bars is not None:
            ends.append(f"{self.config.control_fallback_bars} bars")
        return " or ".join(ends) or "the node stops (no retrain schedule, no control_fallback_bars)"

    def _end_control(self, why: str) -> None:
        if self._control_reason:
            self.log.warning(f"Meta fallback ({self._control_reason}) ends: {why}")
        self._control_reason = ""

    def _exploration_frozen(self) -> bool:
        since = self._bars_since_changepoint
        return since is not None and since < self.config.exploration_freeze_bars

    def _on_position_event(self, event: Any) -> None:
        if isinstance(event, PositionEvent):
            try:
                self._book.on_event(event)
            except Exception as e:  # never raise on the engine thread; the mark shows a gap
                self.log.error(f"Position event not booked: {type(e).__name__}: {e}")

    def on_bar(self, bar: Bar) -> None:
        if bar.bar_type != self.config.bar_type:
            return
        # Bars after the change point's own bar (whether its record came before or after this
        # actor's handler of that bar): 0 on the change point's bar.
        if self._bars_since_changepoint is not None and bar.ts_event > self._counted_until_ns:
            self._bars_since_changepoint += 1
            self._counted_until_ns = bar.ts_event
        if self._control_reason:
            self._control_bars += 1
            limit = self.config.control_fallback_bars
            if limit is not None and self._control_bars >= limit:
                self._end_control(f"{limit} bars passed")
        try:
            self._mark(bar)
        except Exception as e:  # the engine must go on: the window restarts from this bar
            self.log.error(f"Mark failed at {bar.ts_event}: {type(e).__name__}: {e}")
            self._returns.clear()
            self._turnover.clear()
            return
        self._bars += 1
        if self._bars % self.config.rebalance_every == 0:
            self._rebalance(bar)

    # -- marking -----------------------------------------------------------------------------------

    def _account_equity(self) -> float:
        account = self.portfolio.account(self._venue)
        if account is None:
            return float("nan")
        total = sum(m.as_double() for m in account.balances_total().values())
        if account.type == AccountType.CASH:
            exposures = self.portfolio.net_exposures(self._venue)
        else:
            exposures = self.portfolio.unrealized_pnls(self._venue)
        if exposures:
            total += sum(m.as_double() for m in exposures.values())
        return float(total)

    def _open_values(self) -> tuple[np.ndarray, np.ndarray]:
        """Unrealised profit and gross notional of each strategy's open positions."""
        n = len(self.names)
        unrealised = np.zeros(n)
        gross = np.zeros(n)
        for position_id, i in self._book.open.items():
            position = self.cache.position(position_id)
            if position is None or position.is_closed:
                continue
            price = self.cache.price(position.instrument_id, PriceType.LAST)
            if price is None:
                continue
            unrealised[i] += position.unrealized_pnl(price).as_double()
            gross[i] += abs(position.quantity.as_double() * price.as_double())
        return unrealised, gross

    def _mark(self, bar: Bar) -> None:
        unrealised, self._gross = self._open_values()
        marked = self._book.realised + unrealised
        equity = self._account_equity()
        if math.isfinite(self._equity):  # a return needs the previous mark's capital
            capital = self._equity * self.weights
            allocated = self.weights > _WEIGHT_TOLERANCE
            n = len(self.names)
            # Divided only where a strategy holds capital, 0 elsewhere (the same floats as
            # dividing everywhere and masking after, without the masked divisions).
            returns = np.zeros(n)
            turnover = np.zeros(n)
            with np.errstate(divide="ignore", invalid="ignore"):
                np.divide(marked - self._marked, capital, out=returns, where=allocated)
                np.divide(self._book.traded - self._traded, capital, out=turnover, where=allocated)
            self._returns.append(returns)
            self._turnover.append(turnover)
            self._window_growth *= 1.0 + returns
        self._marked = marked
        self._traded = self._book.traded.copy()
        self._equity = equity
        if not math.isfinite(self._equity_at_rebalance):
            self._equity_at_rebalance = equity
        self._closes.append(bar.close.as_double())

    # -- rebalancing -------------------------------------------------------------------------------

    def _inputs(self, bar: Bar) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[str, float]]:
        """Model rows, bandit context, correlation and the flat context of the record."""
        returns = self._returns.view()
        performance = performance_features(returns, self._turnover.view())
        n = len(self.names)
        exposure = self._gross / self._equity if self._equity > 0 else np.full(n, np.nan)
        when = datetime.fromtimestamp(bar.ts_event / 1e9, tz=UTC)
        shared = context_features(self._regime, self._closes.view(), when.month, when.weekday())
        # One model row per strategy (feature_names() order), filled column block by block.
        columns = performance.shape[1]
        rows = np.empty((n, len(STRATEGY_FEATURES) + len(CONTEXT_FEATURES)))
        rows[:, :columns] = performance
        rows[:, columns] = exposure
        rows[:, columns + 1] = self.weights
        rows[:, len(STRATEGY_FEATURES) :] = shared
        correlation = return_correlation(returns)
        bandit_context = np.concatenate([shared, performance[:, _SHARPE]])
        # Python floats in one tolist() (numpy scalars one by one cost more than the features),
        # strategy by strategy in the keys' order.
        context = dict(
            zip(self._context_keys, rows[:, : len(STRATEGY_FEATURES)].ravel().tolist(), strict=True)
        )
        context.update(zip(CONTEXT_FEATURES, shared.tolist(), strict=True))
        return rows, bandit_context, correlation, context

    def _rebalance(self, bar: Bar) -> None:
        assert self.policy is not None
        previous = self.weights.copy()
        window_returns = self._window_growth - 1.0
        realised = (
            self._equity / self._equity_at_rebalance - 1.0
            if self.decisions > 0 and self._equity_at_rebalance > 0
            else None
        )
        context: dict[str, float] = {}
        correlation: list[list[float]] = []
        frozen = self._exploration_frozen()
        try:
            if len(self._returns) < self.config.performance_window:
                decision = self.policy.fallback("warming_up")
            else:
                rows, bandit_context, used_correlation, context = self._inputs(bar)
                if self.trainer is not None:
                    self._retrain_step(rows, previous, window_returns, bar.ts_event)
                # Recorded under every policy: replay and a policy diff to ``predictive`` read it.
                correlation = used_correlation.tolist()
                if self._control_reason:  # a monitor's fallback (a model swap above ended it)
                    decision = self.policy.fallback(self._control_reason)
                else:
                    decision = self.policy.decide(
                        rows,
                        bandit_context,
                        used_correlation,
                        previous,
                        bar.ts_event,
                        realised_returns=window_returns if self.decisions > 0 else None,
                        realised_portfolio_return=realised,
                        exploration_frozen=frozen,
                    )
        except Exception as e:  # model code must not stop the engine: static weights, say why
            decision = self.policy.fallback(f"policy_error: {type(e).__name__}: {e}")
        weights = np.asarray(decision.weights, dtype=float)
        if not (
            np.isfinite(weights).all() and weights.min() >= 0.0 and weights.sum() <= 1.0 + 1e-6
        ):
            decision = self.policy.fallback(f"policy_error: invalid weights {weights.tolist()}")
        context.update(zip(self._realised_keys, window_returns.tolist(), strict=True))
        try:
            self._publish(bar, decision, previous, context, realised, frozen, correlation)
        except Exception as e:  # a record that does not validate must not stop the engine
            self.log.error(f"Allocation not published at {bar.ts_event}: {type(e).__name__}: {e}")
        self._window_growth = np.ones(len(self.names))
        self._equity_at_rebalance = self._equity
        self._control_requests = []

    def _retrain_step(
        self, rows: np.ndarray, previous: np.ndarray, window_returns: np.ndarray, ts: int
    ) -> None:
        """Feed the online trainer this rebalance; a fit taking over now replaces the model."""
        assert self.trainer is not None and self.policy is not None
        try:
            outcome = self.trainer.step(
                rows, previous, window_returns if self.decisions > 0 else None, ts
            )
        except Exception as e:  # the engine goes on with the model it has
            self.log.error(f"Meta retraining failed at {ts}: {type(e).__name__}: {e}")
            return
        if outcome is None:
            return
        if outcome.ok and outcome.model is not None:
            self.policy.set_model(outcome.model)
            self._end_control(f"model {outcome.model.version_} took over")
            self.log.info(
                f"Meta model {outcome.model.version_} in force (fitted on the window ending at "
                f"rebalance {outcome.row}, {outcome.kind}; waited {outcome.waited_seconds:.3f} s)"
            )
            self._register(outcome.model)
        else:
            self.log.warning(f"Meta retraining at rebalance {outcome.row} failed: {outcome.error}")

    def _register(self, model: MetaModel) -> None:
        """Register a model that took over as ``challenger`` in the worker (never waited for on
        the engine thread; finished registrations are logged at the next swap)."""
        retrain = self.config.retrain
        if retrain is None or not retrain.register_as or self._fit_pool is None:
            return
        pending = []
        for version, future in self._registrations:
            if not future.done():
                pending.append((version, future))
                continue
            try:
                self.registered.append(future.result())
                self.log.info(f"Meta model {version} registered as {self.registered[-1]}")
            except Exception as e:
                self.log.error(f"Meta model {version} not registered: {type(e).__name__}: {e}")
        try:
            future = self._fit_pool.submit(
                register_challenger, model, retrain.register_as, retrain.tracking_uri
            )
        except Exception as e:  # a broken pool: the model stays in use, unregistered
            self.log.error(f"Meta model {model.version_} not registered: {e!r}")
        else:
            pending.append((model.version_, future))
        self._registrations = pending

    def _publish(
        self,
        bar: Bar,
        decision: MetaDecision,
        previous: np.ndarray,
        context: dict[str, float],
        realised: float | None,
        frozen: bool,
        correlation: list[list[float]],
    ) -> None:
        self.decisions += 1
        reason = decision.fallback_reason
        if reason:
            key = reason.split(":", 1)[0]
            self.fallbacks[key] = self.fallbacks.get(key, 0) + 1
            if reason != self._last_reason:
                self.log.warning(f"Static weights: {reason}")
        self._last_reason = reason
        self.weights = np.asarray(decision.weights, dtype=float)
        component_id = str(self.id)
        trace_id = make_trace_id(component_id, bar.ts_event, self.decisions)
        version = (
            self.policy.model_version if self.policy and decision.policy == "predictive" else ""
        )
        now = self.clock.timestamp_ns()
        data_type = self._allocation_type
        for name, weight in zip(self.names, self.weights.tolist(), strict=True):
            self.publish_data(
                data_type,
                StrategyAllocation(
                    strategy_id=name,
                    weight=min(max(weight, 0.0), 1.0),
                    model_version=version or decision.policy,
                    trace_id=trace_id,
                    ts_event=bar.ts_event,
                    ts_init=now,
                ),
            )
        if not self.config.publish_records:
            return
        record = AllocationRecord(
            trace_id=trace_id,
            ts_event=bar.ts_event,
            ts_init=now,
            component_id=component_id,
            model_versions={"meta": version} if version else {},
            weights=dict(zip(self.names, self.weights.tolist(), strict=True)),
            predicted_performance=decision.predicted,
            reason=reason or f"{decision.policy} rebalance",
            policy=decision.policy,
            previous_weights=dict(zip(self.names, previous.tolist(), strict=True)),
            context=context,
            quantiles=decision.quantiles,
            bounds_hit=decision.bounds_hit,
            fallback_reason=reason,
            model_version=version,
            action_index=decision.action_index,
            action_probabilities=decision.action_probabilities,
            propensity=decision.propensity,
            realised_return=realised,
            exploration_frozen=frozen,
            changepoint_trace_id=self._changepoint_trace_id,
            bars_since_changepoint=self._bars_since_changepoint,
            correlation=correlation,
            calibration_coverage=decision.calibration_coverage,
            calibration_outcomes=decision.calibration_outcomes,
            model_control=self._control_requests,
        )
        self.msgbus.publish(Topics.ALLOCATIONS, record)
