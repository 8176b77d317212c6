"""RL specialist ensemble: one trained policy per regime, blended by the regime probabilities.

Every bar (after the streaming features' warm-up) the strategy builds the policy's observation
(:class:`models.rl.observation.ObservationSpec`: the feature row of
``research.features.StreamingFeatures``, normalised, and the held target position), asks each
specialist of a :class:`models.rl.specialists.SpecialistSet` for a target position in [-1, 1], and
blends them (``blend_mode``)::

    blend       a = Σ_r p(r) · a_r        p: the regime probabilities the base receives
    hard        a = a_argmax p            the most likely regime's specialist alone
    always_on   a = (1/R) Σ_r a_r         equal weights, regimes ignored (the ablation baseline)
    scripted    a = actions[i]            a fixed sequence, bar i (no model: parity and tests)

Weights are taken over the specialists' labels and renormalised. Before the first regime record
the base holds the neutral prior (⅓ each), so ``blend`` equals ``always_on``; ``hard`` with no
single most likely regime (no record yet, or a tie) falls back to the equal-weight blend.

The blended action goes to orders through the base (``execution``):

* ``target`` (default): steer to ``a · full`` units, ``full`` being the size of action 1 —
  ``sizing: notional``: ``max_notional_fraction`` (the env's ``max_weight``) of the allocated
  equity over the close, or ``sizing: risk``: the base's risk size (``risk_per_trade`` of the
  allocated equity over ``stop_atr_multiple · ATR``, capped the same way) — times the regime
  scale (1 with the default affinity), rounded down to the lot. One market order per change
  (a flip is one order), tagged with the decision's trace id; a step to zero is the base's
  recorded exit. No bracket.
* ``bracket``: the base's rule path: enter when ``|a| ≥ entry_threshold`` with strength ``|a|``
  (risk sizing, ATR stop and target bracket), exit when the sign changes or ``|a|`` falls below
  the threshold.

Either way orders pass the portfolio risk gate, the kill switch (halted: target positions only
shrink) and the base's session rules. Each decision record carries every specialist's action,
the blend weights and the blended action (:class:`~grodt.core.records.DecisionRecord`), and what
deterministic replay (``grodt.forensics.ensemble_replay``) needs to recompute the decision through
the functions below (:func:`propose`, :func:`blend_weights`, :func:`blend_action`,
:func:`decided_action`, :func:`plan_target`): the observation vector, the blend mode, the most
likely regime and the sizing inputs (:class:`TargetInputs`).

Inference runs on the engine thread with one torch thread (``torch.set_num_threads(1)`` when
the specialists load; it is process-wide); feed-forward MLP specialists are evaluated with numpy
by default (``inference``), the same arithmetic checked against torch at load, about 7x cheaper
per bar (``benchmarks/rl_inference.py``). A model that raises or returns a non-finite action is
logged and the bar falls back to ``on_model_error``: ``hold`` (no new order) or ``flat``
(target 0). No exception leaves the handler.

A monitor's request on :data:`~grodt.core.topics.MODEL_CONTROL_TOPIC` (``actors.strategy_monitor``)
whose ``subject`` is this strategy's id (or that has no ``subject``) is answered: ``retrain`` makes
the ``retrain:`` fine-tune due at the next row (without a schedule: a warning that nothing is
retrained); ``fallback`` steers **flat** from the next bar — the specialists still run and their
actions and blend are recorded, but the decided action is 0 and each record's
``features["control_fallback"]`` is 1 — until the next fine-tuned set takes over or
``control_fallback_bars`` bars have passed, whichever comes first. Flat, not "hold" nor the
always-on blend: the monitor has judged this strategy's recent trading worse than its backtest,
so the positions its specialists chose are as suspect as their next ones, and the always-on blend
is the same specialists; flat is the one state whose risk is known. The fallback is kept in
:meth:`RLEnsembleStrategy.save_state` (a restarted node keeps it).
"""

import hashlib
import json
import math
from collections import deque
from collections.abc import Mapping
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from dataclasses import fields
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from typing import Literal

import numpy as np
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.position import Position

from grodt.core.errors import ConfigError
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import Signal
from grodt.core.records import trace_tag
from grodt.core.topics import MODEL_CONTROL_TOPIC
from grodt.core.topics import Topics
from models.lifecycle import ScheduledRefitter
from models.lifecycle.refit import fit_worker_pool
from models.rl.actions import DISCRETE_TARGETS
from models.rl.fills import ExecutionModel
from models.rl.online import FineTuneConfig
from models.rl.online import FineTunePayload
from models.rl.online import fine_tune_specialists
from models.rl.safety import RiskLimits
from models.rl.specialists import MANIFEST_FILE
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from node_configs.model_refs import is_registry_reference
from node_configs.model_refs import resolve_model_file
from research.features import FeatureSet
from research.features import StreamingFeatures
from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig
from strategies.decisions import intended_order
from strategies.sizing import floor_to_lot
from strategies.sizing import position_size

__all__ = [
    "BLEND_MODES",
    "LoadedPolicy",
    "NumpyPolicies",
    "RLEnsembleStrategy",
    "RLEnsembleStrategyConfig",
    "TargetInputs",
    "TargetPlan",
    "blend_action",
    "blend_weights",
    "decided_action",
    "load_fine_tuned",
    "load_policy",
    "load_scripted_actions",
    "plan_target",
    "propose",
]

BlendMode = Literal["blend", "hard", "always_on", "scripted"]
BLEND_MODES: tuple[str, ...] = ("blend", "hard", "always_on", "scripted")
SCRIPTED = "scripted"
"""The label of the scripted policy's one proposal in decision records."""
_TIE_TOLERANCE = 1e-12
_CASH_BUFFER = 0.999
"""Fraction of the free cash a buy may spend (commissions round up; as the base's sizing)."""


def blend_weights(
    mode: BlendMode,
    labels: Sequence[str],
    probabilities: Mapping[str, float],
    most_likely: str | None,
) -> dict[str, float]:
    """Weights of the specialists ``labels`` (summing to 1) under ``mode``.

    ``blend``: p(label) renormalised over ``labels`` (equal weights when they carry no
    probability); ``hard``: 1 for ``most_likely`` (else for the single label of highest p among
    ``labels``; on a tie, equal weights); ``always_on``: equal weights.
    """
    if not labels:
        raise ValueError("blend_weights: no specialist labels")
    equal = dict.fromkeys(labels, 1.0 / len(labels))
    if mode == "always_on":
        return equal
    p = {label: max(0.0, float(probabilities.get(label, 0.0))) for label in labels}
    if mode == "blend":
        total = sum(p.values())
        if not (math.isfinite(total) and total > 0.0):
            return equal
        return {label: value / total for label, value in p.items()}
    if mode == "hard":
        if most_likely in p:
            return {label: float(label == most_likely) for label in labels}
        top = max(p.values())
        tied = [label for label, value in p.items() if value >= top - _TIE_TOLERANCE]
        if len(tied) == 1:
            return {label: float(label == tied[0]) for label in labels}
        return equal
    raise ValueError(f"blend_weights: mode must be blend, hard or always_on, was {mode!r}")


def blend_action(
    weights: Mapping[str, float], proposals: Mapping[str, float], labels: Sequence[str]
) -> float:
    """``Σ_label weights · proposals`` over ``labels`` (in that order), clipped to [-1, 1]."""
    blended = sum(weights[label] * proposals[label] for label in labels)
    return max(-1.0, min(1.0, blended))


def decided_action(action: float | None, allow_short: bool) -> float | None:
    """The blended action with the account's limits: a short means flat without shorts."""
    if action is None:
        return None
    if action < 0.0 and not allow_short:
        return 0.0
    return action


def load_scripted_actions(path: str | Path) -> tuple[float, ...]:
    """Actions in [-1, 1] from a file: a JSON list of numbers (``.json``), or one number per
    line (any other suffix; blank lines and ``#`` comments skipped). Errors name the file and
    the row (JSON: the index; text: the 1-based line)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ValueError(f"scripted_actions_file: cannot read {path}: {e}") from None
    if path.suffix.lower() == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ValueError(f"scripted_actions_file: {path}: not valid JSON: {e}") from None
        if not isinstance(data, list):
            raise ValueError(f"scripted_actions_file: {path}: expected a JSON list of numbers")
        rows = [(f"index {i}", value) for i, value in enumerate(data)]
    else:
        rows = []
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.split("#", 1)[0].strip()
            if stripped:
                rows.append((f"line {number}", stripped))
    actions = []
    for where, value in rows:
        try:
            action = float(value)
        except (TypeError, ValueError):
            raise ValueError(
                f"scripted_actions_file: {path}: {where}: {value!r} is not a number"
            ) from None
        actions.append(_check_action(action, f"scripted_actions_file: {path}: {where}"))
    if not actions:
        raise ValueError(f"scripted_actions_file: {path}: no actions")
    return tuple(actions)


def _check_action(action: float, where: str) -> float:
    if not (math.isfinite(action) and -1.0 <= action <= 1.0):
        raise ValueError(f"{where}: action {action!r} is not in [-1, 1]")
    return float(action)


class RLEnsembleStrategyConfig(RegimeAwareStrategyConfig, frozen=True):
    """Configuration for :class:`RLEnsembleStrategy` (plus every base field).

    Parameters
    ----------
    blend_mode : {"blend", "hard", "always_on", "scripted"}, default "blend"
        How the specialists' actions become one (module docstring).
    specialists : str, optional
        Directory of a :class:`~models.rl.specialists.SpecialistSet` (``manifest.json`` and
        one model file per regime label), or a registry reference to one (``rl_sp500@champion``,
        ``rl_sp500/3``; resolved when the strategy is built). Required unless ``blend_mode`` is
        ``scripted``.
    feature_set : str, optional
        Path of the research feature-set YAML the specialists were trained on (its columns must
        include the manifest's ``observation.feature_names``). Required with ``specialists``.
    scripted_actions : list[float], optional
        ``scripted`` mode: the action of bar i (0-based, every bar the strategy sees, warm-up
        included); bars past the end send nothing.
    scripted_actions_file : str, optional
        The same from a file (:func:`load_scripted_actions`); give one of the two.
    scripted_repeat : bool, default False
        Cycle through the actions instead of stopping at their end (bar i takes action
        ``i mod len``).
    execution : {"target", "bracket"}, default "target"
        ``target``: steer the position to the action with market orders; ``bracket``: the
        base's entries (strength ``|a|``) and exits (module docstring).
    sizing : {"notional", "risk"}, default "notional"
        ``target`` execution: the size of action 1 (module docstring).
    min_rebalance_fraction : float, default 0.0
        ``target`` execution: no order while ``|target - held|`` is below this fraction of the
        size of action 1 (a turnover dead band; 0 trades every lot of difference).
    entry_threshold : float, default 0.1
        ``bracket`` execution: the smallest ``|a|`` that enters or keeps a position.
    on_model_error : {"hold", "flat"}, default "hold"
        What a bar whose inference failed does: keep the position, or steer to flat.
    inference : {"auto", "torch", "numpy"}, default "auto"
        ``torch``: :meth:`SpecialistSet.predict`. ``numpy``: the same feed-forward MLPs
        evaluated with numpy (:class:`NumpyPolicies`: about 7x cheaper per bar, checked equal
        to torch at load; PPO / MaskablePPO MLP policies only). ``auto``: numpy where it
        applies, else torch.
    regime_rebalance_threshold : float, optional, default None
        The base's regime scale-out; off by default (the blend already follows the regime).
    retrain : str, optional
        A fine-tune schedule YAML (:class:`models.rl.online.FineTuneConfig`): the specialists
        keep training on the recent window of bars the strategy saw, in a worker process, and
        each new set takes over at a bar boundary ``lag_bars`` bars after its window ends (the
        decision records' ``model_versions["specialists"]`` show the switch). Not in
        ``scripted`` mode.
    control_fallback_bars : int, optional
        Bars a monitor's ``fallback`` request (flat; module docstring) lasts; it also ends when
        a fine-tuned set takes over. None: until that swap only (without ``retrain``: until
        the node stops).
    """

    blend_mode: BlendMode = "blend"
    specialists: str | None = None
    feature_set: str | None = None
    scripted_actions: list[float] | None = None
    scripted_actions_file: str | None = None
    scripted_repeat: bool = False
    execution: Literal["target", "bracket"] = "target"
    sizing: Literal["notional", "risk"] = "notional"
    min_rebalance_fraction: NonNegativeFloat = 0.0
    entry_threshold: NonNegativeFloat = 0.1
    on_model_error: Literal["hold", "flat"] = "hold"
    inference: Literal["auto", "torch", "numpy"] = "auto"
    regime_rebalance_threshold: NonNegativeFloat | None = None
    retrain: str | None = None
    control_fallback_bars: PositiveInt | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.blend_mode == SCRIPTED and self.retrain is not None:
            raise ValueError("retrain: needs specialists (not blend_mode scripted)")
        if self.blend_mode == SCRIPTED:
            if (self.scripted_actions is None) == (self.scripted_actions_file is None):
                raise ValueError(
                    "blend_mode scripted: give exactly one of scripted_actions and "
                    "scripted_actions_file",
                )
            if self.scripted_actions is not None and not self.scripted_actions:
                raise ValueError("scripted_actions: empty")
            for i, action in enumerate(self.scripted_actions or ()):
                _check_action(float(action), f"scripted_actions[{i}]")
        else:
            if self.specialists is None:
                raise ValueError(f"specialists: required with blend_mode {self.blend_mode!r}")
            if self.feature_set is None:
                raise ValueError(f"feature_set: required with blend_mode {self.blend_mode!r}")
        if self.execution == "target" and self.trailing_stop:
            raise ValueError(
                "trailing_stop: needs execution 'bracket' (target orders have no stop)"
            )
        if self.entry_threshold > 1.0:
            raise ValueError(f"entry_threshold must be in [0, 1], was {self.entry_threshold}")


class RLEnsembleStrategy(RegimeAwareStrategy):
    """Regime specialists blended into one target position; see the module docstring.

    Attributes (read only)
    ----------------------
    specialists : SpecialistSet or None
        The loaded policies (None in ``scripted`` mode).
    specialists_version : str
        ``sha256`` prefix of the manifest and model files (``"scripted"`` in scripted mode),
        recorded as ``model_versions["specialists"]`` in every decision.
    action : float or None
        This bar's blended action (None: warming up, past the script, or a failed inference).
    held_action : float
        The target position the policy holds, in action units (the observation's position).
    proposals, weights : dict[str, float]
        This bar's specialist actions and blend weights.
    model_errors : int
        Bars whose inference failed.
    """

    def __init__(self, config: RLEnsembleStrategyConfig) -> None:
        super().__init__(config)
        self.specialists: SpecialistSet | None = None
        self._features: StreamingFeatures | None = None
        self._script: tuple[float, ...] = ()
        self._needs_regime = False
        self._numpy: NumpyPolicies | None = None
        self._policy: LoadedPolicy | None = None
        self._base_policy: LoadedPolicy | None = None
        self._fine_tune: FineTuneConfig | None = None
        self._refitter: ScheduledRefitter | None = None
        self._fit_pool: ProcessPoolExecutor | None = None
        try:
            self._load_policy(config)
        except (ValueError, OSError) as e:  # a bad file: fail the node build, naming it
            raise ConfigError(f"{type(self).__name__}: {e}") from e
        self._reset_policy()

    def _load_policy(self, config: RLEnsembleStrategyConfig) -> None:
        if config.blend_mode == SCRIPTED:
            self.specialists_version = SCRIPTED
            if config.scripted_actions_file is not None:
                self._script = load_scripted_actions(config.scripted_actions_file)
            else:
                self._script = tuple(float(a) for a in config.scripted_actions or ())
            return
        assert config.specialists is not None and config.feature_set is not None
        policy = load_policy(config.specialists, config.inference)
        self._policy = policy
        self.specialists, self._directory = policy.specialists, policy.directory
        self.specialists_version = policy.version
        self._numpy = policy.numpy
        feature_set = FeatureSet.from_yaml(config.feature_set)
        _check_feature_set(self.specialists, feature_set, config.feature_set)
        self._features = StreamingFeatures(feature_set)
        self._needs_regime = feature_set.needs_regime
        if policy.torch_reason:
            self.log.info(f"inference auto: torch ({policy.torch_reason})")
        self._base_policy = policy
        if config.retrain is not None:
            self._fine_tune = FineTuneConfig.from_yaml(config.retrain)

    def _reset_policy(self) -> None:
        self.action: float | None = None
        self.held_action = 0.0
        self.proposals: dict[str, float] = {}
        self.weights: dict[str, float] = {}
        self.model_errors = 0
        self._bar_index = -1
        self._counted_through_ns = -1  # ts_event of the last bar the index counted
        self._observed_position = 0.0
        self._feature_values: dict[str, float] = {}
        self._proposed = False
        self._observation: np.ndarray | None = None  # this bar's model input (records)
        self._target_inputs: TargetInputs | None = None  # this bar's sizing inputs (records)
        self._target_units = Decimal(0)
        self._pending_order: ClientOrderId | None = None
        if self._base_policy is not None and self._policy is not self._base_policy:
            self._use_policy(self._base_policy)
        if self.specialists is not None:
            self.specialists.reset()
        if self._features is not None:
            self._features = StreamingFeatures(self._features.feature_set)
        self._window: deque[tuple[list[float], float, float]] = deque(
            maxlen=self._fine_tune.window if self._fine_tune is not None else 0
        )
        self._fine_tunes_started = 0
        if self._refitter is not None:
            self._refitter.reset()
        self._saved_schedule: dict[str, Any] | None = None
        """The fine-tune schedule a restarted node continues (:meth:`load_state`): its saved
        rows are replayed by the warm-up bars, which rebuild the window without fitting."""
        self._replayed_rows = 0
        self._warm_up_bar = False  # this bar is one the saved state already counts
        self._in_flight_end_ns: int | None = None  # the window end of the fit in flight
        self._control_reason = ""
        """A monitor's fallback in force (``control_fallback: …``; empty: none)."""
        self._control_bars = 0
        """Bars since that fallback was asked for."""

    # == hooks =====================================================================================

    def pre_bar(self, bar: Bar) -> None:
        """Features and the policy's proposal for this bar (every bar: a recurrent policy's
        state and the script's index advance with the bars, not with the decisions). A bar no
        later than the last one counted is a restarted node's warm-up bar the saved index
        already counts (:meth:`load_state`)."""
        self._warm_up_bar = bar.ts_event <= self._counted_through_ns
        if not self._warm_up_bar:
            self._bar_index += 1
            self._counted_through_ns = bar.ts_event
            self._count_control_bar()
        self._observation = None
        self._target_inputs = None
        self._proposed = False  # the policy (or script) gave an action or failed this bar
        self._check_target_order()
        if self.config.execution == "bracket" and self._position() is None and self._idle():
            self.held_action = 0.0  # a stop, target or exit closed the position
        self._reassert_target()
        if self.specialists is None:
            self._propose_scripted()
        else:
            self._propose(bar)
        if self._control_reason and self._proposed:
            self.action = 0.0  # a monitor's fallback: flat (module docstring)

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        if self.config.execution == "bracket":
            action = self._decided_action()
            if action is None or abs(action) < max(self.config.entry_threshold, 1e-12):
                return None
            direction = 1 if action > 0 else -1
            self.held_action = action
            return EntrySignal(direction, f"policy_{self.config.blend_mode}", min(1.0, abs(action)))
        self._steer(bar, None)
        return None

    def exit_signal(self, bar: Bar, direction: int) -> str | None:
        if self.config.execution == "bracket":
            action = self._decided_action()
            if action is None:
                return None
            if action * direction <= 0.0 or abs(action) < self.config.entry_threshold:
                return f"policy_{self.config.blend_mode}"
            return None
        return self._steer(bar, self._position())

    def features(self) -> dict[str, float]:
        values = {name: float(value) for name, value in self._feature_values.items()}
        values["observed_position"] = self._observed_position
        values["held_action"] = self.held_action
        if self.action is not None:
            values["blended_action"] = self.action
        if self.specialists is None:
            values["bar_index"] = float(self._bar_index)  # the script's index (replay)
        if self._control_reason:
            values["control_fallback"] = 1.0
        return values

    def on_reset(self) -> None:
        super().on_reset()
        self._reset_policy()

    def on_dispose(self) -> None:
        if self._refitter is not None:
            self._refitter.close()
        if self._fit_pool is not None:
            # A fine-tune still running belongs to a stopped node: drop it, do not wait.
            self._fit_pool.shutdown(wait=False, cancel_futures=True)
            self._fit_pool = None

    def save_state(self) -> dict[str, Any]:
        """The policy's state across bars that the warm-up bars do not rebuild: the held target
        (the observation's position input), the target units and the order in flight, the bar
        index (``scripted``) and the model error count. The streaming features and a recurrent
        policy's state are rebuilt from the warm-up bars."""
        return {
            "held_action": self.held_action,
            "observed_position": self._observed_position,
            "bar_index": self._bar_index,
            "counted_through_ns": self._counted_through_ns,
            "target_units": str(self._target_units),
            "pending_order": None if self._pending_order is None else self._pending_order.value,
            "model_errors": self.model_errors,
            "control_reason": self._control_reason,
            "control_bars": self._control_bars,
            "fine_tune": self._fine_tune_state(),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`save_state`'s dict (before the warm-up bars, which then leave the bar
        index as saved)."""
        self.held_action = float(state["held_action"])
        self._observed_position = float(state["observed_position"])
        self._bar_index = int(state["bar_index"])
        self._counted_through_ns = int(state["counted_through_ns"])
        self._target_units = Decimal(state["target_units"])
        pending = state["pending_order"]
        self._pending_order = None if pending is None else ClientOrderId(pending)
        self.model_errors = int(state["model_errors"])
        self._control_reason = str(state.get("control_reason", ""))
        self._control_bars = int(state.get("control_bars", 0))
        if self._fine_tune is not None and state.get("fine_tune") is not None:
            self._restore_fine_tune(state["fine_tune"])

    # == the policy ================================================================================

    def _propose_scripted(self) -> None:
        self._proposed = True
        index = self._bar_index
        if self.config.scripted_repeat:
            index %= len(self._script)
        if index < len(self._script):
            self.action = self._script[index]
            self.proposals = {SCRIPTED: self.action}
            self.weights = {SCRIPTED: 1.0}
        else:
            self.action = None
            self.proposals = {}
            self.weights = {}

    def _propose(self, bar: Bar) -> None:
        specialists = self.specialists
        assert specialists is not None and self._features is not None
        if self._needs_regime and self.regime_model_version != "prior":
            self._features.update_regime(
                SimpleNamespace(
                    instrument_id=bar.bar_type.instrument_id,
                    p_bull=self.regime_probabilities["bull"],
                    p_bear=self.regime_probabilities["bear"],
                    p_sideways=self.regime_probabilities["sideways"],
                ),
            )
        self.action = None
        self.proposals = {}
        self.weights = {}
        try:
            values = self._features.update(bar)
            names = specialists.observation.feature_names
            self._feature_values = {name: values[name] for name in names}
            if any(math.isnan(self._feature_values[name]) for name in names):
                return  # warming up: no proposal
            self._proposed = True
            if self._fine_tune is not None:
                self._fine_tune_step(bar)
                specialists = self.specialists
                assert specialists is not None
            self._observed_position = self.held_action
            # The row in feature_names order, as read above (the mapping would be read again).
            row = list(self._feature_values.values())
            observation = specialists.observation.build(row, self.held_action)
            self._observation = observation
            assert self._policy is not None
            proposals = propose(self._policy, observation)
            bad = {label: a for label, a in proposals.items() if not math.isfinite(a)}
            if bad:
                raise ValueError(f"non-finite action(s) {bad}")
        except Exception as e:  # model code must never raise out of the engine's handler
            self.model_errors += 1
            self.log.error(
                f"Specialists failed at bar {bar.ts_event} ({type(e).__name__}: {e}); "
                f"on_model_error={self.config.on_model_error}",
            )
            if self.config.on_model_error == "flat":
                self.action = 0.0
            return
        weights = blend_weights(
            self.config.blend_mode,
            specialists.labels,
            self.regime_probabilities,
            self.regime_most_likely,
        )
        self.proposals = proposals
        self.weights = weights
        self.action = blend_action(weights, proposals, specialists.labels)

    # == online fine-tuning (retrain) ==============================================================

    def _fine_tune_step(self, bar: Bar) -> None:
        """One row of the fine-tune schedule: keep the bar's features, start a fine-tune when
        one is due, swap a finished one in at its bar. A failure keeps the specialists in use
        (logged); nothing is raised."""
        assert self._fine_tune is not None and self.specialists is not None
        names = self.specialists.observation.feature_names
        row = [self._feature_values[name] for name in names]
        self._window.append((row, bar.open.as_double(), bar.close.as_double()))
        if self._saved_schedule is not None and self._warm_up_bar:
            self._replay_row(bar)
            return
        try:
            refitter = self._refitter or self._start_refitter()
            if refitter.advance(len(self._window)):
                refitter.start(self._fine_tune_payload(bar), context=bar.ts_event)
                self._in_flight_end_ns = bar.ts_event
                self._fine_tunes_started += 1
            if refitter.swap_due:
                outcome = refitter.swap()
                if outcome.ok and outcome.ready is not None:
                    self._use_policy(outcome.ready)
                    self._end_control(f"specialists {self.specialists_version} took over")
                    self.log.info(
                        f"Specialists fine-tuned on the {self._fine_tune.window}-row window "
                        f"to {outcome.context}: {self.specialists_version} in use from bar "
                        f"{bar.ts_event} (waited {outcome.waited_seconds:.3f} s)",
                    )
                else:
                    self.log.error(
                        f"Fine-tune of the window to {outcome.context} failed "
                        f"({outcome.error}); keeping {self.specialists_version}",
                    )
        except Exception as e:  # never out of the engine's handler: keep the specialists
            self.log.error(f"Fine-tune schedule failed ({type(e).__name__}: {e})")

    # == monitors' requests (MODEL_CONTROL_TOPIC) ==================================================

    def _subscribe_inputs(self) -> None:
        super()._subscribe_inputs()
        self.msgbus.subscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)

    def _unsubscribe_inputs(self) -> None:
        super()._unsubscribe_inputs()
        if self.msgbus.is_subscribed(MODEL_CONTROL_TOPIC, self._on_model_control):
            self.msgbus.unsubscribe(topic=MODEL_CONTROL_TOPIC, handler=self._on_model_control)

    def _on_model_control(self, message: object) -> None:
        """A monitor asks for a ``retrain`` or a ``fallback`` (module docstring)."""
        if not isinstance(message, dict):
            return
        subject = message.get("subject")
        if subject is not None and subject != self.id.value:
            return  # about another strategy
        action = message.get("action")
        detail = f"from {message.get('source', '?')}: {message.get('reason', '')}"
        if action == "retrain":
            if self._fine_tune is None:
                self.log.warning(
                    f"Retrain requested {detail}; nothing retrained: no retrain schedule "
                    f"(blend_mode {self.config.blend_mode!r}, retrain: not configured)",
                )
                return
            try:
                refitter = self._refitter or self._start_refitter()
                due = refitter.request_refit(len(self._window))
            except Exception as e:  # never out of the engine's handler
                self.log.error(f"Retrain request failed ({type(e).__name__}: {e})")
                return
            self.log.warning(
                f"Retrain requested {detail}; "
                + (
                    (
                        "queued: a fine-tune is due at the row after the one in flight takes over"
                        if refitter.queued
                        else "fine-tune due at the next row"
                    )
                    if due
                    else f"none can start now ({len(self._window)} rows are too few)"
                ),
            )
        elif action == "fallback":
            self._control_reason = f"control_fallback: {detail}"
            self._control_bars = 0
            ends = []
            if self._fine_tune is not None:
                ends.append("the next fine-tuned set")
            if self.config.control_fallback_bars is not None:
                ends.append(f"{self.config.control_fallback_bars} bars")
            self.log.warning(
                f"Fallback requested {detail}; flat until "
                + (" or ".join(ends) or "the node stops (no retrain, no control_fallback_bars)"),
            )

    def _count_control_bar(self) -> None:
        if not self._control_reason:
            return
        self._control_bars += 1
        limit = self.config.control_fallback_bars
        if limit is not None and self._control_bars >= limit:
            self._end_control(f"{limit} bars passed")

    def _end_control(self, why: str) -> None:
        if self._control_reason:
            self.log.warning(f"Fallback ({self._control_reason}) ends: {why}")
        self._control_reason = ""

    # == restart: the schedule continues =========================================================

    def _fine_tune_state(self) -> dict[str, Any] | None:
        """Where the fine-tune schedule stands: the set in use (None: the configured one), the
        fine-tunes started (seeds) and the refitter's counters, with the row a fit in flight
        started at. The window itself is not saved: the warm-up bars rebuild it."""
        if self._fine_tune is None:
            return None
        refitter = self._refitter
        in_flight = self._in_flight_end_ns if refitter is not None and refitter.in_flight else None
        return {
            "in_use": None if self._policy is self._base_policy else str(self._directory),
            "started": self._fine_tunes_started,
            "schedule": None if refitter is None else refitter.state(),
            "in_flight_window_end_ns": in_flight,
        }

    def _restore_fine_tune(self, saved: dict[str, Any]) -> None:
        """Continue the saved schedule (:meth:`load_state`): the set in use is loaded now; the
        warm-up bars rebuild the window without fitting (:meth:`_replay_row`), and restart the
        fit that was in flight at the row it started at. A saved set that cannot be loaded
        leaves the configured one in use (logged)."""
        self._fine_tunes_started = int(saved["started"])
        directory = saved.get("in_use")
        if directory is not None:
            try:
                self._use_policy(load_fine_tuned(str(directory), self.config.inference))
            except (OSError, ValueError) as e:
                self.log.error(
                    f"Fine-tuned set {directory} saved by the stopped node cannot be loaded "
                    f"({type(e).__name__}: {e}); continuing with {self.specialists_version}",
                )
        self._saved_schedule = saved
        self._replayed_rows = 0
        refitter = self._start_refitter()
        if saved.get("schedule") is not None:
            refitter.restore(saved["schedule"], model=str(self._directory))
        self.log.info(
            f"Fine-tune schedule restored: {self.specialists_version} in use, "
            f"{self._fine_tunes_started} fine-tunes started, row {refitter.rows}"
            + (" (a fine-tune in flight)" if saved.get("in_flight_window_end_ns") else ""),
        )

    def _replay_row(self, bar: Bar) -> None:
        """A warm-up row the saved schedule already counted: the window grows; at the row where
        the saved fit in flight had started, that fit starts again on the same window (the same
        seed), to take over at its saved row."""
        assert self._saved_schedule is not None and self._refitter is not None
        self._replayed_rows += 1
        flight = (self._saved_schedule.get("schedule") or {}).get("in_flight")
        if flight is None or self._replayed_rows != int(flight["row"]):
            return
        ends = self._saved_schedule.get("in_flight_window_end_ns")
        if ends != bar.ts_event:
            self.log.error(
                f"Warm-up row {self._replayed_rows} ends at {bar.ts_event}, the fine-tune in "
                f"flight at the stop ended at {ends}: not restarted (the schedule goes on)",
            )
            return
        try:
            self._fine_tunes_started -= 1  # the same fit_index, hence the same seeds
            self._refitter.resume(
                self._fine_tune_payload(bar),
                row=int(flight["row"]),
                apply_row=int(flight["apply_row"]),
                context=bar.ts_event,
            )
            self._in_flight_end_ns = bar.ts_event
            self.log.info(f"Restarted the fine-tune in flight at the stop (window to {ends})")
        except Exception as e:  # never out of the engine's handler: the schedule goes on
            self.log.error(f"Fine-tune in flight at the stop not restarted ({e})")
        finally:
            self._fine_tunes_started += 1

    def _start_refitter(self) -> ScheduledRefitter:
        config = self._fine_tune
        assert config is not None and self._base_policy is not None
        if config.worker and config.lag_bars > 0 and self._fit_pool is None:
            self._fit_pool = fit_worker_pool()  # ends with the node, even if killed
        inference = self.config.inference
        self._refitter = ScheduledRefitter(
            config.schedule(),
            fine_tune_specialists,
            prepare=lambda directory: load_fine_tuned(directory, inference),
            executor=self._fit_pool,
            model=str(self._base_policy.directory),
        )
        return self._refitter

    def _fine_tune_payload(self, bar: Bar) -> FineTunePayload:
        assert self._fine_tune is not None and self.instrument is not None
        instrument = self.instrument
        account = self.portfolio.account(self.config.instrument_id.venue)
        cash = account is not None and account.type == AccountType.CASH
        rows = list(self._window)
        assert self._base_policy is not None
        return FineTunePayload(
            features=np.array([row for row, _, _ in rows], dtype=np.float64),
            opens=np.array([o for _, o, _ in rows], dtype=np.float64),
            closes=np.array([c for _, _, c in rows], dtype=np.float64),
            base_directory=str(self._base_policy.directory),
            config=self._fine_tune,
            execution=ExecutionModel(
                fee_rate=float(instrument.taker_fee),
                tick_size=float(self._tick),
                lot_size=float(self._lot),
                multiplier=self._multiplier,
                account_type="cash" if cash else "margin",
                currency=instrument.quote_currency.code,
            ),
            limits=RiskLimits(
                max_weight=min(1.0, self.config.max_notional_fraction),
                allow_short=self.config.allow_short and not cash,
            ),
            fit_index=self._fine_tunes_started,
            window_end_ns=bar.ts_event,
        )

    def _use_policy(self, policy: "LoadedPolicy") -> None:
        self._policy = policy
        self.specialists, self._directory = policy.specialists, policy.directory
        self.specialists_version = policy.version
        self._numpy = policy.numpy

    def _decided_action(self) -> float | None:
        """This bar's action with the account's limits: shorts only with ``allow_short``."""
        return decided_action(self.action, self.config.allow_short)

    # == target execution ==========================================================================

    def _steer(self, bar: Bar, position: Position | None) -> str | None:
        """Send the order that moves the position to this bar's target; returns an exit reason
        when the target is flat (the base's recorded exit closes it)."""
        action = self._decided_action()
        if action is None or self._pending_order is not None:
            return None
        if action == 0.0 and position is None:
            # Flat to flat: plan_target sends nothing and records nothing whatever the equity,
            # so the account (the costliest read of the bar) is not read. The held action is
            # plan_target's: the kill switch's 0.0, else the action itself (its zero's sign).
            self.held_action = 0.0 if self.halted else action
            return None
        assert self.instrument is not None
        price = bar.close.as_double()
        inputs = self._inputs_of(action, price, position)
        self._target_inputs = inputs
        plan = plan_target(inputs, self.config)
        # The policy holds the target it asked for, traded or not (a sub-lot target, the dead
        # band), as the env's observation does (models.rl.observation).
        self.held_action = plan.held_action
        if plan.exit:
            self._target_units = Decimal(0)
            return f"policy_{self.config.blend_mode}"
        if plan.side is None:
            return None
        held, full = inputs.held_quantity, plan.full
        side, quantity, reduce_only = plan.side, plan.quantity, plan.reduce_only
        trace_id = self._recorder.next_trace_id(bar.ts_event)
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=self.instrument.make_qty(quantity),
            time_in_force=TimeInForce.GTC,
            reduce_only=reduce_only,
            tags=["RL_TARGET", trace_tag(trace_id)],
        )
        new_units = Decimal(repr(held)) + (quantity if side == OrderSide.BUY else -quantity)
        self._target_units = new_units
        self._recorder.set_target(float(new_units), price, bar.ts_event, "policy")
        if self.config.publish_decisions:
            kind = "entry" if position is None else ("exit" if new_units == 0 else "adjust")
            features = self._decision_features(price, None)
            features["held_quantity"] = held
            features["full_quantity"] = full
            self._record_decision(
                ts_event=bar.ts_event,
                trace_id=trace_id,
                action=kind,
                reason=f"policy_{self.config.blend_mode}",
                features=features,
                signal=self._signal(),
                intended=intended_order(order, reduce_only=reduce_only),
            )
        # No other target order until this one is done (_check_target_order, next bar).
        self._pending_order = order.client_order_id
        if position is not None:
            self.submit_order(order, position_id=position.id)
        else:
            self.submit_order(order)
        return None

    def _inputs_of(self, action: float, price: float, position: Position | None) -> "TargetInputs":
        """This bar's :class:`TargetInputs` from the engine: account, position, allocation,
        regime scale, instrument."""
        assert self.instrument is not None
        free_cash = math.nan
        account = self.portfolio.account(self.config.instrument_id.venue)
        if account is not None and account.type == AccountType.CASH:
            free = account.balance_free(self.instrument.quote_currency)
            if free is not None:
                free_cash = free.as_double()
        return TargetInputs(
            action=action,
            held_quantity=position.signed_qty if position is not None else 0.0,
            has_position=position is not None,
            halted=self.halted,
            price=price,
            equity=self._account_equity(),
            allocation_weight=self.allocation_weight,
            regime_scale=self.current_regime_scale(),
            multiplier=self._multiplier,
            lot=self._lot,
            min_quantity=self._min_quantity,
            atr=self.atr.value,
            free_cash=free_cash,
            taker_fee=float(self.instrument.taker_fee),
        )

    def _reassert_target(self) -> None:
        """A flip closes the position and opens the opposite one: the base reset the target to
        0 on the close; publish the held target again."""
        if self.config.execution != "target" or self._target_units == 0:
            return
        if self.target_quantity == 0.0 and self._position() is not None and self._idle():
            self._recorder.set_target(
                float(self._target_units),
                self._last_price,
                self._last_ts,
                "policy_flip",
            )

    def _idle(self) -> bool:
        return self._lifecycle.idle and self._pending_order is None

    def _check_target_order(self) -> None:
        """Forget the target order once it is closed; one that did not fill (denied by the risk
        gate, rejected, canceled) is logged and the target falls back to the position held, so
        the next decision re-targets from there."""
        order_id = self._pending_order
        if order_id is None:
            return
        order = self.cache.order(order_id)
        if order is None:  # closed and purged from the cache (grodt.nodes.cache_purge)
            self._pending_order = None
            return
        if not order.is_closed:
            return
        self._pending_order = None
        if order.status == OrderStatus.FILLED:
            return
        reason = getattr(order.last_event, "reason", "") or ""
        self.log.warning(
            f"Target order {order_id} {order.status_string()} {reason}".rstrip()
            + "; re-targeting from the position held",
        )
        position = self._position()
        held = float(position.signed_qty) if position is not None else 0.0
        self._target_units = Decimal(repr(held))
        self._recorder.set_target(held, self._last_price, self._last_ts, "policy_order_failed")

    # == decision records ==========================================================================

    def _signal(self) -> Signal:
        action = self.action if self.action is not None else 0.0
        return Signal(
            strength=max(-1.0, min(1.0, action)),
            expected_return=0.0,
            uncertainty=0.0,
            horizon_bars=1,
            confidence=max(self.weights.values(), default=0.0),
        )

    def _record_decision(
        self,
        *,
        ts_event: int,
        trace_id: str,
        action: str,
        reason: str,
        features: dict[str, float],
        signal: Signal,
        intended: IntendedOrder | None,
    ) -> None:
        """The base's record plus the policy: every specialist's action, the weights and the
        blended action (the base's own exits come through here too)."""
        if action == "exit" and reason != f"policy_{self.config.blend_mode}":
            self.held_action = 0.0  # the base closed the position (session, time stop, stop)
        recorder = self._recorder
        own = reason == f"policy_{self.config.blend_mode}"
        if own and self._target_inputs is not None:
            sizing_inputs = self._target_inputs.to_record()
        else:  # not this bar's target order: the base's own exit, or a bracket entry
            position = self._position()
            held = position.signed_qty if position is not None else 0.0
            sizing_inputs = {"held_quantity": held}
        observation = self._observation
        record = DecisionRecord(
            trace_id=trace_id,
            ts_event=ts_event,
            ts_init=self.clock.timestamp_ns(),
            component_id=recorder.strategy_id,
            model_versions={
                "regime": self.regime_model_version,
                "allocation": self.allocation_model_version,
                "specialists": self.specialists_version,
            },
            strategy_id=recorder.strategy_id,
            instrument_id=recorder.instrument_id,
            action=action,
            reason=reason,
            features=features,
            regime_probabilities=dict(self.regime_probabilities),
            signal=signal,
            allocation_weight=self.allocation_weight,
            intended_order=intended,
            specialist_actions=dict(self.proposals),
            blend_weights=dict(self.weights),
            blended_action=self.action,
            allocation_trace_id=self.allocation_trace_id,
            observation=[] if observation is None else observation.tolist(),
            blend_mode=self.config.blend_mode,
            regime_most_likely=self.regime_most_likely,
            sizing_inputs=sizing_inputs,
        )
        recorder.decisions += 1
        self._publish(Topics.DECISIONS, record)


class NumpyPolicies:
    """The specialists' deterministic actions evaluated with numpy (float64) instead of torch.

    For SB3 actor-critic MLP policies (PPO, MaskablePPO) with a flatten features extractor and
    a policy net of ``Linear`` layers with ``Tanh`` or ``ReLU`` activations: the same arithmetic
    as ``SpecialistSet.predict`` (latent → action net → the Gaussian's mean clipped to [-1, 1],
    or the argmax of the logits), without torch's per-operation dispatch, which dominates the
    cost of a 64-64 network. :meth:`compile` checks the result against ``SpecialistSet.predict``
    on probe observations and refuses a set it cannot reproduce to 1e-5.
    """

    def __init__(
        self,
        layers: Mapping[str, list[tuple[np.ndarray, np.ndarray, str]]],
        action_kind: str,
    ) -> None:
        self.layers = dict(layers)
        self.action_kind = action_kind
        self._labels = tuple(self.layers)
        self._stacked = _stack_layers(list(self.layers.values()))

    @classmethod
    def compile(cls, specialists: SpecialistSet, directory: Path) -> "NumpyPolicies":
        """Read the weights of ``specialists`` (loaded from ``directory``) and check them."""
        import torch
        from stable_baselines3.common.torch_layers import FlattenExtractor

        manifest = specialists.manifest
        if specialists.algorithm == "RecurrentPPO":
            raise ValueError("inference numpy: RecurrentPPO (LSTM) policies need 'torch'")
        loader = algorithm_class(specialists.algorithm)
        activations = {torch.nn.Tanh: "tanh", torch.nn.ReLU: "relu"}
        layers: dict[str, list[tuple[np.ndarray, np.ndarray, str]]] = {}
        for label in specialists.labels:
            policy = loader.load(directory / manifest["files"][label], device="cpu").policy
            if not isinstance(policy.pi_features_extractor, FlattenExtractor):
                raise ValueError(f"inference numpy: {label}: features extractor is not Flatten")
            stack: list[tuple[np.ndarray, np.ndarray, str]] = []
            for module in policy.mlp_extractor.policy_net:
                if isinstance(module, torch.nn.Linear):
                    weight = module.weight.detach().numpy().astype(np.float64)
                    bias = module.bias.detach().numpy().astype(np.float64)
                    stack.append((weight, bias, "linear"))
                elif type(module) in activations and stack:
                    weight, bias, _ = stack[-1]
                    stack[-1] = (weight, bias, activations[type(module)])
                else:
                    raise ValueError(f"inference numpy: {label}: unsupported layer {module}")
            head = policy.action_net
            stack.append(
                (
                    head.weight.detach().numpy().astype(np.float64),
                    head.bias.detach().numpy().astype(np.float64),
                    "linear",
                ),
            )
            layers[label] = stack
        compiled = cls(layers, specialists.action_kind)
        rng = np.random.default_rng(0)
        n_obs = specialists.observation.n_obs
        probes = [np.zeros(n_obs, np.float32), *rng.normal(size=(4, n_obs)).astype(np.float32)]
        for probe in probes:
            expected = specialists.predict(probe)
            got = compiled.predict(probe)
            worst = max(abs(expected[label] - got[label]) for label in specialists.labels)
            if not worst <= 1e-5:
                raise ValueError(
                    f"inference numpy: differs from torch by {worst:.3g} on a probe; "
                    "use inference: torch",
                )
        specialists.reset()
        return compiled

    def predict(self, obs: np.ndarray) -> dict[str, float]:
        """``{label: target position in [-1, 1]}`` for one observation (shape ``(n_obs,)``).

        Specialists of one architecture are evaluated together: each layer's weights stacked
        to ``(n_specialists, out, in)`` and multiplied by the ``(…, in, 1)`` inputs in one
        ``np.matmul``. NumPy's matmul runs the same BLAS call per stacked matrix as for the
        2-D product (the kernel is chosen by the core shape and strides, not the stack), and
        the bias and activation are elementwise, so every action equals the one-by-one
        evaluation bit for bit (``tests/rl/test_numpy_policies.py`` checks it) at a third of the
        NumPy calls."""
        x = np.asarray(obs, dtype=np.float64).reshape(-1)
        if self._stacked is None:
            latents = [_forward(stack, x) for stack in self.layers.values()]
        else:
            h = x[:, None]  # (n_obs, 1), broadcast over the stack
            for weight, bias, activation in self._stacked:
                h = np.matmul(weight, h)
                h += bias
                if activation == "tanh":
                    np.tanh(h, out=h)
                elif activation == "relu":
                    np.maximum(h, 0.0, out=h)
            latents = list(h[:, :, 0])
        out: dict[str, float] = {}
        for label, latent in zip(self._labels, latents, strict=True):
            if self.action_kind == "discrete":
                out[label] = DISCRETE_TARGETS[int(np.argmax(latent))]
            else:
                value = float(latent[0])  # NaN stays NaN: the strategy treats it as a model error
                out[label] = value if math.isnan(value) else min(1.0, max(-1.0, value))
        return out


def _forward(stack: Sequence[tuple[np.ndarray, np.ndarray, str]], x: np.ndarray) -> np.ndarray:
    """One specialist's output layer (shape ``(n_out,)``) for the input ``x``."""
    h = x
    for weight, bias, activation in stack:
        h = weight @ h + bias
        if activation == "tanh":
            h = np.tanh(h)
        elif activation == "relu":
            h = np.maximum(h, 0.0)
    return h


def _stack_layers(
    stacks: Sequence[Sequence[tuple[np.ndarray, np.ndarray, str]]],
) -> list[tuple[np.ndarray, np.ndarray, str]] | None:
    """Per layer: the specialists' weights ``(n, out, in)``, biases ``(n, out, 1)`` and the
    shared activation, each C-contiguous; None when their shapes or activations differ."""
    if not stacks:
        return None
    first = stacks[0]
    for stack in stacks[1:]:
        if len(stack) != len(first):
            return None
        for (weight, bias, activation), (weight0, bias0, activation0) in zip(
            stack, first, strict=True
        ):
            if (weight.shape, bias.shape, activation) != (weight0.shape, bias0.shape, activation0):
                return None
    return [
        (
            np.ascontiguousarray(np.stack([stack[k][0] for stack in stacks])),
            np.ascontiguousarray(np.stack([stack[k][1] for stack in stacks])[:, :, None]),
            first[k][2],
        )
        for k in range(len(first))
    ]


@dataclass(frozen=True)
class LoadedPolicy:
    """Specialists loaded for inference: what :func:`load_policy` returns.

    Attributes
    ----------
    specialists : SpecialistSet
    directory : Path
        Where they were loaded from (a registry reference's local copy).
    version : str
        ``sha256`` prefix of the manifest and model files, ``name/<version>:<hash>`` for a
        registry reference (decision records' ``model_versions["specialists"]``).
    numpy : NumpyPolicies | None
        The numpy runtime, None when inference runs on torch.
    torch_reason : str
        Why ``inference: auto`` fell back to torch ("" otherwise).
    """

    specialists: SpecialistSet
    directory: Path
    version: str
    numpy: "NumpyPolicies | None"
    torch_reason: str = ""


def load_policy(reference: str, inference: str, version: str | None = None) -> LoadedPolicy:
    """Load the specialists of ``reference`` (a directory or a registry reference) for the
    ``inference`` runtime (``auto``, ``torch``, ``numpy``), as the strategy does: one torch
    thread (process-wide), numpy where it reproduces torch. Replay loads them the same way.

    ``version`` overrides the content hash of the files (a fine-tuned set is cited by its
    parameters' hash, its directory's name: ``models.rl.online``)."""
    specialists, directory, file_version = _load_specialists(reference)
    version = file_version if version is None else version
    import torch  # only the model modes need torch (slow import)

    torch.set_num_threads(1)  # small MLPs on the engine thread: no thread pool
    compiled, reason = None, ""
    if inference != "torch":
        try:
            compiled = NumpyPolicies.compile(specialists, directory)
        except ValueError as e:
            if inference == "numpy":
                raise
            reason = str(e)
    return LoadedPolicy(specialists, directory, version, compiled, reason)


def load_fine_tuned(directory: str, inference: str) -> LoadedPolicy:
    """A fine-tuned set (``models.rl.online``), cited by its directory's name (the hash of its
    parameters)."""
    return load_policy(directory, inference, version=Path(directory).name)


def propose(policy: LoadedPolicy, observation: np.ndarray) -> dict[str, float]:
    """Each specialist's target position in [-1, 1] for ``observation`` (shape ``(n_obs,)``),
    on the runtime ``policy`` was loaded for."""
    if policy.numpy is not None:
        return policy.numpy.predict(observation)
    return policy.specialists.predict(observation)


@dataclass(frozen=True, slots=True)
class TargetInputs:
    """The numbers ``target`` execution turns one bar's action into an order with.

    Recorded in every decision's ``sizing_inputs`` (:meth:`to_record`), so that replay feeds the
    same values to :func:`plan_target`.

    Attributes
    ----------
    action : float
        The decided action in [-1, 1] (:func:`decided_action`), before the kill switch.
    held_quantity : float
        Signed units of the strategy's open position (0 when flat).
    has_position : bool
        Whether the strategy has an open position.
    halted : bool
        The kill switch holds (target positions only shrink).
    price : float
        The bar's close, quote currency.
    equity : float
        Account equity, account currency (negative kept; sizing uses ``max(equity, 0)``).
    allocation_weight, regime_scale : float
        The strategy's capital weight and the base's regime scale, both in [0, 1].
    multiplier : float
        Contract multiplier.
    lot, min_quantity : Decimal
        Quantity increment and the smallest order, units.
    atr : float
        ATR of the base (``sizing: risk``), price units.
    free_cash : float
        Free balance of a CASH account in the quote currency, which caps buys; NaN: buys are
        not capped (a margin account).
    taker_fee : float
        The instrument's taker fee, fraction of notional.
    """

    action: float
    held_quantity: float
    has_position: bool
    halted: bool
    price: float
    equity: float
    allocation_weight: float
    regime_scale: float
    multiplier: float
    lot: Decimal
    min_quantity: Decimal
    atr: float
    free_cash: float
    taker_fee: float

    def to_record(self) -> dict[str, float]:
        """``{field: float}`` (booleans 0/1, decimals as floats)."""
        return {name: float(getattr(self, name)) for name in _TARGET_INPUT_FIELDS}

    @classmethod
    def from_record(cls, values: Mapping[str, float]) -> "TargetInputs":
        """Back from :meth:`to_record`; a missing key raises ``KeyError`` naming it."""
        missing = [item.name for item in fields(cls) if item.name not in values]
        if missing:
            raise KeyError(f"sizing_inputs lacks {missing}")
        return cls(
            action=float(values["action"]),
            held_quantity=float(values["held_quantity"]),
            has_position=bool(values["has_position"]),
            halted=bool(values["halted"]),
            price=float(values["price"]),
            equity=float(values["equity"]),
            allocation_weight=float(values["allocation_weight"]),
            regime_scale=float(values["regime_scale"]),
            multiplier=float(values["multiplier"]),
            lot=Decimal(repr(float(values["lot"]))),
            min_quantity=Decimal(repr(float(values["min_quantity"]))),
            atr=float(values["atr"]),
            free_cash=float(values["free_cash"]),
            taker_fee=float(values["taker_fee"]),
        )


_TARGET_INPUT_FIELDS: tuple[str, ...] = tuple(item.name for item in fields(TargetInputs))
"""The record's keys in field order (``dataclasses.fields`` costs more than the record)."""


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """What ``target`` execution does on one bar (:func:`plan_target`).

    Attributes
    ----------
    held_action : float
        The action the policy now holds (the kill switch may have zeroed it).
    full : float
        Units of action 1 before the lot (allocation and regime scale included).
    signed_target : Decimal
        The target position, signed units.
    exit : bool
        Steer to flat from an open position: the base's recorded exit closes it.
    side : OrderSide | None
        The order's side; None: no order (no exit either).
    quantity : Decimal
        The order's units (0 without an order).
    reduce_only : bool
        The order only shrinks the position.
    """

    held_action: float
    full: float
    signed_target: Decimal
    exit: bool
    side: OrderSide | None
    quantity: Decimal
    reduce_only: bool


def target_size(
    inputs: TargetInputs, action: float, config: RLEnsembleStrategyConfig
) -> tuple[float, float]:
    """``(full, units)``: the units of action 1 and of ``action`` at ``inputs.price``, before
    the lot; regime scale and allocation included.

    ``notional`` sizing computes ``|action| · max_notional_fraction · equity / (price ·
    multiplier)`` in the order ``models.rl.fills.ExecutionModel.order_quantity`` does (the
    env/engine parity test compares the two to the unit); ``risk`` sizing is the base's
    :func:`strategies.sizing.position_size` at strength 1."""
    equity = max(inputs.equity, 0.0)
    unit_value = inputs.price * inputs.multiplier
    if not unit_value > 0.0:
        return 0.0, 0.0
    scale = inputs.allocation_weight * inputs.regime_scale
    if config.sizing == "notional":
        full = config.max_notional_fraction * scale * equity / unit_value
        units = abs(action) * config.max_notional_fraction * scale * equity / unit_value
        if config.max_notional is not None:
            cap = config.max_notional / unit_value
            full, units = min(full, cap), min(units, cap)
        return full, units
    allocated = equity * inputs.allocation_weight
    max_notional = allocated * config.max_notional_fraction
    if config.max_notional is not None:
        max_notional = min(max_notional, config.max_notional)
    sizing = position_size(
        equity=equity,
        allocation_weight=inputs.allocation_weight,
        risk_per_trade=config.risk_per_trade,
        stop_distance=config.stop_atr_multiple * inputs.atr,
        price=inputs.price,
        multiplier=inputs.multiplier,
        max_notional=max_notional,
        regime_scale=inputs.regime_scale,
        lot=inputs.lot,
    )
    full = sizing.base_quantity * sizing.regime_scale
    return full, abs(action) * full


def plan_target(inputs: TargetInputs, config: RLEnsembleStrategyConfig) -> TargetPlan:
    """The order that moves the position to the action's target (module docstring, ``target``):
    the kill switch (only shrink), the size (:func:`target_size`) floored to the lot, the
    smallest order, the dead band (``min_rebalance_fraction``) and a CASH account's cap on buys
    (``0.999`` of the free cash, fees included). No engine state: the strategy and replay call it
    with the same :class:`TargetInputs`."""
    action = inputs.action
    held = inputs.held_quantity
    if inputs.halted:  # kill switch: only reduce
        action = 0.0 if action * held <= 0.0 else action
    full, units = target_size(inputs, action, config)
    target = floor_to_lot(units, inputs.lot)
    if target < inputs.min_quantity:
        target = Decimal(0)
    signed_target = target if action > 0 else -target
    held_units = Decimal(repr(held))
    if inputs.halted and abs(signed_target) > abs(held_units):
        signed_target = held_units
    if inputs.has_position and signed_target == 0:
        return TargetPlan(action, full, Decimal(0), True, None, Decimal(0), True)
    delta = signed_target - held_units
    no_order = TargetPlan(action, full, signed_target, False, None, Decimal(0), False)
    if abs(delta) < inputs.lot or float(abs(delta)) < config.min_rebalance_fraction * full:
        return no_order
    side = OrderSide.BUY if delta > 0 else OrderSide.SELL
    quantity = abs(delta)
    if side == OrderSide.BUY and not math.isnan(inputs.free_cash):
        unit_value = inputs.price * inputs.multiplier
        affordable = inputs.free_cash * _CASH_BUFFER / (unit_value * (1.0 + inputs.taker_fee))
        quantity = min(quantity, floor_to_lot(affordable, inputs.lot))
        if quantity < inputs.lot:
            return no_order
    reduce_only = inputs.has_position and abs(signed_target) < abs(held_units)
    reduce_only = reduce_only and signed_target * held_units >= 0
    return TargetPlan(action, full, signed_target, False, side, quantity, reduce_only)


def _load_specialists(reference: str) -> tuple[SpecialistSet, Path, str]:
    """The specialists of a directory or a registry reference, and their version.

    A registry reference (``rl_sp500@champion``, ``rl_sp500/3``: :mod:`node_configs.model_refs`)
    is resolved to the registered version's directory (downloaded once into the model cache)
    and cited as ``name/<version>``; a directory is cited by ``sha256`` over the manifest and
    every file it names (the first 12 hex digits).
    """
    cited = None
    if is_registry_reference(reference):
        local = resolve_model_file(reference)
        directory, cited = local.path, local.reference
    else:
        directory = Path(reference)
        if not directory.is_dir():
            raise ValueError(f"specialists: {directory} is not a directory")
    specialists = SpecialistSet.load(directory)
    digest = hashlib.sha256((directory / MANIFEST_FILE).read_bytes())
    files = dict(specialists.manifest.get("files", {}))
    if specialists.manifest.get("generalist"):
        files["generalist"] = specialists.manifest["generalist"]
    for name in sorted(files):
        digest.update((directory / files[name]).read_bytes())
    version = digest.hexdigest()[:12]
    return specialists, directory, f"{cited}:{version}" if cited else version


def _check_feature_set(specialists: SpecialistSet, feature_set: FeatureSet, path: str) -> None:
    """The feature set computes every feature the observation names, from this bar type only."""
    missing = [n for n in specialists.observation.feature_names if n not in feature_set.columns]
    if missing:
        raise ValueError(
            f"feature_set: {path} does not compute {missing}, which the specialists' "
            f"manifest (observation.feature_names) needs",
        )
    if feature_set.references:
        raise ValueError(
            f"feature_set: {path} uses reference bar types {list(feature_set.references)}; "
            "the strategy streams its own bar type only",
        )
