"""Deterministic replay of rule strategies' decisions: recompute each through the same code.

A :class:`~strategies.base.RegimeAwareStrategy` records, with every entry, exit and adjustment,
what the decision read: its features (indicator values, the close, ATR, sizing terms), the regime
probabilities and most likely label, the allocation weight, and its ``sizing_inputs``
(:class:`strategies.decisions.DecisionInputs`: equity, free cash, fee, the instrument's lot, tick
and multiplier, the config's risk terms, the held position and lifecycle state, the bar). This
module rebuilds the strategy's config from the run's ``config.yaml`` and recomputes the decision
from those inputs with the functions the strategy itself calls:

- the regime scale (:func:`models.regime.gating.regime_scale` with the config's affinity and
  gating), the entry gate and the whole entry (:func:`strategies.sizing.plan_entry`: cap, risk
  size, lot rounding, tick-rounded stop and target), the signal record
  (:mod:`strategies.decisions`), the order's side and time in force (:mod:`strategies.orders`);
- exits and adjustments: the base's scheduled exits (:func:`strategies.base.scheduled_exit`), the
  regime rebalance (:meth:`strategies.lifecycle.PositionLifecycle.rebalance_plan`), the trailing
  stop (``trail_level``, :func:`strategies.base.trail_hit`, ``round_to_tick``), in the order
  ``RegimeAwareStrategy._decide`` takes them (mirrored here: the tests replay real runs, so a
  change there that is not mirrored fails them);
- the rule itself for the built-in strategies, whose rules are pure functions of recorded values
  (:data:`RULES`: S1 ``pullback_entry``, S2 ``mean_reversion_entry``/``vwap_exit``, S3
  ``breakout_entry``). A strategy not in :data:`RULES` is replayed on the framework path only:
  its recorded direction, strength and reason are taken as inputs (``rule_replayed`` False).

Exits taken outside the bar's rules (``deferred`` maintenance after an order event, the
strategy's stop) replay their framework path (order side, quantity, type, time in force, signal)
with the recorded reason as the input.

Each recomputed value is compared with its record with ``==`` — floats bit for bit, quantities
and prices as exact decimals — and the first field that differs is named with both values.
Decisions do not depend on earlier decisions except through recorded inputs, so one trace
replays alone.
"""

import math
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import yaml
from nautilus_trader.model.enums import order_side_to_str
from nautilus_trader.model.enums import time_in_force_to_str
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Quantity

from grodt.core.errors import GrodtError
from grodt.core.messages import REGIME_LABELS
from grodt.core.records import DecisionRecord
from grodt.core.topics import Topics
from grodt.forensics.reader import read_run
from grodt.forensics.replay import FieldDifference
from grodt.forensics.replay import ReplayResult
from models.regime.gating import regime_scale
from node_configs.loader import import_object
from strategies import s1_vwap_ema_scalper
from strategies import s2_mean_reversion
from strategies import s3_breakout
from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig
from strategies.base import scheduled_exit
from strategies.base import trail_hit
from strategies.decisions import DECISION_PATHS
from strategies.decisions import DecisionInputs
from strategies.decisions import entry_signal_record
from strategies.decisions import exit_signal_record
from strategies.decisions import hold_signal_record
from strategies.lifecycle import PositionLifecycle
from strategies.orders import TIME_IN_FORCE
from strategies.orders import entry_side
from strategies.orders import exit_side
from strategies.sizing import plan_entry
from strategies.sizing import round_to_tick

__all__ = [
    "RULES",
    "DecisionChange",
    "NotReplayable",
    "Recomputed",
    "StrategyComponent",
    "decision_records",
    "diff_decisions",
    "recompute",
    "replay_decision",
    "replay_decisions",
    "strategy_components",
    "summarise_decision_changes",
    "why_it_may_differ",
]

EntryRule = Callable[[Mapping[str, float], DecisionInputs, Any], EntrySignal | None]
ExitRule = Callable[[Mapping[str, float], DecisionInputs, Any, int], str | None]

RULES: dict[str, tuple[EntryRule, ExitRule | None]] = {
    "strategies.s1_vwap_ema_scalper:S1VwapEmaScalper": (
        s1_vwap_ema_scalper.entry_from_record,
        None,
    ),
    "strategies.s2_mean_reversion:S2MeanReversion": (
        s2_mean_reversion.entry_from_record,
        s2_mean_reversion.exit_from_record,
    ),
    "strategies.s3_breakout:S3Breakout": (s3_breakout.entry_from_record, None),
}
"""Built-in strategies whose rules replay from their records: entry rule, exit rule (None: the
base's default, no signal exit)."""

_PATH_NAMES = {code: name for name, code in DECISION_PATHS.items()}
_CONFIG_TERMS = (
    "risk_per_trade",
    "risk_reward_ratio",
    "stop_atr_multiple",
    "max_notional_fraction",
)
_SIZING_TERMS = (
    "allocated_equity",
    "risk_amount",
    "stop_distance",
    "risk_quantity",
    "cap_quantity",
    "base_quantity",
)
_SIGNAL_FIELDS = ("strength", "expected_return", "uncertainty", "horizon_bars", "confidence")
_REPLAY_STOP_ID = ClientOrderId("O-REPLAY-STOP")


@dataclass(frozen=True)
class StrategyComponent:
    """One strategy of a run: its id, import path, index in ``config.yaml`` and parsed config."""

    strategy_id: str
    path: str
    index: int
    values: dict[str, Any]
    config: Any

    @property
    def rule_replayable(self) -> bool:
        return self.path in RULES


def _parse(config_path: str, values: Mapping[str, Any], where: str) -> Any:
    try:
        config_cls = import_object(config_path)
        return config_cls.parse(msgspec.json.encode(dict(values)))
    except (ImportError, AttributeError, msgspec.ValidationError, TypeError, ValueError) as e:
        raise GrodtError(f"{where}: {e}") from None


def _document(run: Path) -> dict[str, Any]:
    path = Path(run) / "config.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GrodtError(f"{path}: cannot read the run's config: {e}") from None
    if not isinstance(document, dict):
        raise GrodtError(f"{path}: not a node config (a mapping is expected)")
    return document


def strategy_components(
    run: Path,
    overrides: Mapping[int, Mapping[str, Any]] | None = None,
) -> dict[str, StrategyComponent]:
    """The run's strategies by strategy id, their configs parsed from ``<run>/config.yaml``
    (with ``overrides``: config values by strategy index, for a diff).

    The id is Nautilus': ``{strategy_id or class name}-{order_id_tag}``, the tag defaulting to
    the strategy's position among those added before it (``Trader.add_strategy``).
    """
    document = _document(run)
    found: dict[str, StrategyComponent] = {}
    for i, entry in enumerate(document.get("strategies") or []):
        path = str(entry.get("path", ""))
        values = {**(entry.get("config") or {}), **((overrides or {}).get(i) or {})}
        config_path = entry.get("config_path") or f"{path}Config"
        where = f"{run}/config.yaml: strategies[{i}].config"
        config = _parse(config_path, values, where)
        tag = config.order_id_tag
        if tag in (None, "None"):
            tag = f"{i:03d}"
        name = config.strategy_id or path.rpartition(":")[2]
        strategy_id = f"{name}-{tag}"
        found[strategy_id] = StrategyComponent(strategy_id, path, i, values, config)
    return found


def decision_records(run: Path) -> list[DecisionRecord]:
    """The run's decision records in decision order."""
    stored = read_run(Path(run), topics=[Topics.DECISIONS])
    records = [s.record for s in stored if isinstance(s.record, DecisionRecord)]
    records.sort(key=lambda r: r.ts_event)  # stable: stream order within a timestamp
    return records


# -- recomputation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recomputed:
    """A decision recomputed from a record's inputs.

    Attributes
    ----------
    action : str or None
        ``entry``, ``exit``, ``adjust``, or None when the inputs lead to no such decision.
    reason : str
        The rule that fired, or why nothing was decided (``no_signal``, ``skipped:size``, …).
    values : dict[str, Any]
        Every recomputed field, keyed as :func:`_recorded_values` keys the record's, in the
        order they are compared.
    side : str or None
        ``BUY``/``SELL`` of the intended order.
    quantity : Decimal or None
        The intended order's quantity, units.
    rule_replayed : bool
        The strategy's own rule was recomputed (else its recorded outcome was an input).
    """

    action: str | None
    reason: str
    values: dict[str, Any] = field(default_factory=dict)
    side: str | None = None
    quantity: Decimal | None = None
    rule_replayed: bool = True


def _decimal(value: float) -> Decimal:
    return Decimal(repr(value))


def _affinity(config: RegimeAwareStrategyConfig) -> dict[str, float]:
    # As RegimeAwareStrategy.__init__ builds it.
    return {label: float(config.regime_affinity.get(label, 0.0)) for label in REGIME_LABELS}


def _scale(record: DecisionRecord, config: RegimeAwareStrategyConfig) -> float:
    return regime_scale(
        record.regime_probabilities,
        _affinity(config),
        config.regime_gating,
        record.regime_most_likely,
    )


def _intended(
    side: str,
    order_type: str,
    quantity: Decimal,
    *,
    reduce_only: bool,
    stop_loss: Decimal | None = None,
    take_profit: Decimal | None = None,
) -> dict[str, Any]:
    return {
        "intended_order.side": side,
        "intended_order.order_type": order_type,
        "intended_order.quantity": quantity,
        "intended_order.stop_loss": stop_loss,
        "intended_order.take_profit": take_profit,
        "intended_order.reduce_only": reduce_only,
        "intended_order.time_in_force": time_in_force_to_str(TIME_IN_FORCE),
    }


def _signal_values(signal: Any) -> dict[str, Any]:
    return {f"signal.{name}": getattr(signal, name) for name in _SIGNAL_FIELDS}


def _config_values(config: RegimeAwareStrategyConfig) -> dict[str, Any]:
    return {f"config.{name}": float(getattr(config, name)) for name in _CONFIG_TERMS}


def _entry(
    record: DecisionRecord,
    inputs: DecisionInputs,
    config: RegimeAwareStrategyConfig,
    entry_rule: EntryRule | None,
) -> Recomputed:
    features = record.features
    values = _config_values(config)
    if entry_rule is not None:
        signal = entry_rule(features, inputs, config)
        if signal is None:
            return Recomputed(None, "no_signal", values)
        direction, strength, reason = signal.direction, signal.strength, signal.reason
        own_stop = signal.stop_distance
    else:
        direction = int(inputs.direction)
        strength = features.get("signal_strength", math.nan)
        reason = record.reason
        own_stop = None if math.isnan(inputs.signal_stop_distance) else inputs.signal_stop_distance
    values["reason"] = reason
    values["sizing_inputs.direction"] = float(direction)
    scale = _scale(record, config)
    values["features.regime_scale"] = scale
    price = features["close"]
    stop_distance = own_stop or config.stop_atr_multiple * features["atr"]
    plan = plan_entry(
        direction=direction,
        strength=strength,
        stop_distance=stop_distance,
        price=price,
        equity=inputs.equity,
        allocation_weight=record.allocation_weight,
        risk_per_trade=config.risk_per_trade,
        risk_reward_ratio=config.risk_reward_ratio,
        max_notional_fraction=config.max_notional_fraction,
        max_notional=config.max_notional,
        free_balance=None if math.isnan(inputs.free_balance) else inputs.free_balance,
        taker_fee=inputs.taker_fee,
        regime_scale=scale,
        multiplier=inputs.multiplier,
        lot=_decimal(inputs.lot),
        min_quantity=_decimal(inputs.min_quantity),
        tick=_decimal(inputs.tick),
        allow_short=config.allow_short,
    )
    if plan.skip is not None:
        return Recomputed(
            None, f"skipped:{plan.skip}", values, rule_replayed=entry_rule is not None
        )
    sizing = plan.sizing
    assert sizing is not None and plan.stop_price is not None
    values["sizing_inputs.max_notional"] = plan.max_notional
    for name in _SIZING_TERMS:
        values[f"features.{name}"] = getattr(sizing, name)
    values["features.signal_strength"] = sizing.strength
    values.update(
        _signal_values(
            entry_signal_record(
                direction=direction,
                strength=strength,
                price=price,
                stop_distance=stop_distance,
                target_distance=plan.target_distance,
                horizon_bars=config.max_holding_bars or 0,
                regime_scale=sizing.regime_scale,
            ),
        ),
    )
    side = order_side_to_str(entry_side(direction))
    values.update(
        _intended(
            side,
            "MARKET",
            sizing.quantity,
            reduce_only=False,
            stop_loss=plan.stop_price,
            take_profit=plan.target_price,
        ),
    )
    return Recomputed("entry", reason, values, side, sizing.quantity, entry_rule is not None)


def _position_decisions(
    record: DecisionRecord,
    inputs: DecisionInputs,
    config: RegimeAwareStrategyConfig,
    exit_rule: ExitRule | None,
    rule_known: bool,
) -> tuple[list[Recomputed], float]:
    """What ``RegimeAwareStrategy._decide`` does on a held position with the record's inputs:
    an exit, or up to two adjustments (a trailing-stop move, then a rebalance)."""
    features = record.features
    direction = int(inputs.direction)
    scale = _scale(record, config)
    held = _decimal(inputs.position_quantity)
    lot = _decimal(inputs.lot)
    tick = _decimal(inputs.tick)
    side = order_side_to_str(exit_side(direction))
    reason = scheduled_exit(
        bool(inputs.flatten_due),
        int(features["bars_held"]),
        config.max_holding_bars,
    )
    if reason is None:
        if exit_rule is not None:
            reason = exit_rule(features, inputs, config, direction)
        elif not rule_known and record.action == "exit":
            # A strategy's own exit rule that cannot be recomputed: its recorded reason is the
            # input (the framework reasons below are still recomputed).
            framework = {"regime", "rebalance", "trailing_stop"}
            reason = None if record.reason in framework else record.reason
    lifecycle = PositionLifecycle()
    state = lifecycle.state
    state.full_quantity = inputs.full_quantity
    state.entry_allocation = inputs.entry_allocation
    state.entry_quantity = _decimal(inputs.entry_quantity)
    state.trail_anchor = inputs.trail_anchor
    state.stop_price = inputs.stop_price
    state.stop_order_id = _REPLAY_STOP_ID  # an adjustment was recorded: the stop was working
    plan = None
    threshold = config.regime_rebalance_threshold
    if reason is None and threshold is not None and not inputs.adopted:
        plan = lifecycle.rebalance_plan(
            Quantity.from_str(str(held)),
            record.allocation_weight,
            scale,
            threshold,
            lot,
        )
    if plan is not None and plan[0] < _decimal(inputs.min_quantity):
        reason = plan[1]
    decisions: list[Recomputed] = []
    if reason is None and config.trailing_stop:
        close = features["close"]
        multiple = config.trailing_atr_multiple or config.stop_atr_multiple
        level = lifecycle.trail_level(
            inputs.bar_high,
            inputs.bar_low,
            multiple * features["atr"],
            direction,
        )
        if trail_hit(close, level, tick, direction):
            reason = "trailing_stop"
        elif lifecycle.trail_improves(level, direction):
            new_stop = round_to_tick(level, tick, direction < 0)
            if float(new_stop) != inputs.stop_price:
                values: dict[str, Any] = {"features.regime_scale": scale}
                values["features.stop_price"] = float(new_stop)
                values.update(_signal_values(hold_signal_record(direction, scale)))
                values.update(
                    _intended(
                        side,
                        "STOP_MARKET",
                        _decimal(inputs.stop_order_quantity),
                        reduce_only=True,
                        stop_loss=new_stop,
                    ),
                )
                decisions.append(
                    Recomputed("adjust", "trailing_stop", values, side, None, rule_known),
                )
    if reason is not None:
        values = {"reason": reason, "features.regime_scale": scale}
        values.update(_signal_values(exit_signal_record(scale)))
        values.update(_intended(side, "MARKET", held, reduce_only=True))
        return [Recomputed("exit", reason, values, side, held, rule_known)], scale
    if plan is not None:
        desired, why = plan
        values = {"reason": why, "features.regime_scale": scale}
        values.update(_signal_values(hold_signal_record(direction, scale)))
        values.update(_intended(side, "MARKET", held - desired, reduce_only=True))
        decisions.append(Recomputed("adjust", why, values, side, held - desired, rule_known))
    return decisions, scale


def recompute(
    record: DecisionRecord,
    component: StrategyComponent,
) -> Recomputed:
    """The decision ``component``'s config makes on ``record``'s inputs (see the module
    docstring). Raises :class:`GrodtError` when the record lacks the inputs (written before
    ``sizing_inputs``)."""
    if not record.sizing_inputs:
        raise GrodtError(
            f"decision {record.trace_id}: the record has no sizing_inputs (written before "
            "decision replay existed); cannot replay"
        )
    inputs = DecisionInputs.from_dict(record.sizing_inputs)
    config = component.config
    entry_rule, exit_rule = RULES.get(component.path, (None, None))
    rule_known = component.path in RULES
    path = _PATH_NAMES.get(inputs.path, "decide")
    if record.action == "entry":
        return _entry(record, inputs, config, entry_rule)
    if path != "decide":
        # Triggered by an order/position event (deferred) or by the strategy's stop: the reason
        # is the input; the framework path is recomputed.
        direction = int(inputs.direction)
        scale = _scale(record, config)
        side = order_side_to_str(exit_side(direction))
        held = _decimal(inputs.position_quantity)
        values: dict[str, Any] = {"features.regime_scale": scale}
        values.update(_signal_values(exit_signal_record(scale)))
        values.update(_intended(side, "MARKET", held, reduce_only=True))
        return Recomputed("exit", record.reason, values, side, held, rule_replayed=False)
    decisions, scale = _position_decisions(record, inputs, config, exit_rule, rule_known)
    for decision in decisions:
        if decision.action == record.action and (
            record.action == "exit"
            or (decision.reason == "trailing_stop") == (record.reason == "trailing_stop")
        ):
            return decision
    if decisions:
        return decisions[0]
    return Recomputed(None, "hold", {"features.regime_scale": scale}, rule_replayed=rule_known)


def _recorded_values(record: DecisionRecord, keys: Iterable[str]) -> dict[str, Any]:
    inputs = DecisionInputs.from_dict(record.sizing_inputs)
    intended = record.intended_order
    recorded: dict[str, Any] = {}
    for key in keys:
        group, _, name = key.partition(".")
        if key == "reason":
            value: Any = record.reason
        elif group in ("config", "sizing_inputs"):
            value = getattr(inputs, name)
        elif group == "features":
            value = record.features.get(name)
        elif group == "signal":
            value = getattr(record.signal, name)
        elif group == "intended_order":
            value = None if intended is None else getattr(intended, name)
            if name in ("quantity", "stop_loss", "take_profit") and value is not None:
                value = Decimal(value)
        else:  # pragma: no cover - keys come from Recomputed
            raise KeyError(key)
        recorded[key] = value
    return recorded


def why_it_may_differ(key: str) -> str:
    """Why a replayed field may differ from its record (``key`` as a difference names it)."""
    if key.startswith("config."):
        return (
            "the run's config.yaml does not hold the config the strategy ran with (edited after "
            "the run, or another run's file)"
        )
    if key in ("reason", "sizing_inputs.direction"):
        return "the rule saw other values than its recorded features, or its code changed"
    return (
        "a recorded input is not what the strategy read, or the sizing/order code changed "
        "since the run"
    )


def _same(recorded: Any, replayed: Any) -> bool:
    """Equal bit for bit: floats by their bits (NaN equals NaN, -0.0 is not 0.0), decimals by
    value, everything else with ``==`` and the same type."""
    if isinstance(recorded, float) and isinstance(replayed, float):
        if math.isnan(recorded) and math.isnan(replayed):
            return True
        return recorded.hex() == replayed.hex()
    if isinstance(recorded, Decimal) and isinstance(replayed, Decimal):
        return recorded == replayed
    return type(recorded) is type(replayed) and recorded == replayed


def _first_difference(record: DecisionRecord, recomputed: Recomputed) -> FieldDifference | None:
    if recomputed.action != record.action:
        return FieldDifference("action", record.action, recomputed.action or recomputed.reason)
    recorded = _recorded_values(record, recomputed.values)
    for key, value in recomputed.values.items():
        if not _same(recorded[key], value):
            return FieldDifference(key, recorded[key], value)
    return None


def replay_decision(record: DecisionRecord, component: StrategyComponent) -> ReplayResult:
    """One decision recomputed and compared with its record (``policy``: the action, and
    whether the rule itself was recomputed)."""
    recomputed = recompute(record, component)
    label = record.action if recomputed.rule_replayed else f"{record.action}, framework only"
    return ReplayResult(
        trace_id=record.trace_id,
        ts_event=record.ts_event,
        policy=label,
        difference=_first_difference(record, recomputed),
    )


@dataclass(frozen=True)
class NotReplayable:
    """A decision record this module does not replay, and why."""

    trace_id: str
    strategy_id: str
    why: str


def replay_decisions(
    run: Path,
    records: Sequence[DecisionRecord] | None = None,
) -> tuple[list[ReplayResult], list[NotReplayable], float]:
    """Replay every rule strategy's decision of the run (or ``records``).

    Returns the results in decision order, the records it cannot replay (another kind of
    strategy, no inputs recorded) with the reason, and the wall time spent replaying (seconds,
    reading the run excluded).
    """
    components = strategy_components(run)
    if records is None:
        records = decision_records(run)
    started = time.perf_counter()
    results: list[ReplayResult] = []
    skipped: list[NotReplayable] = []
    for record in records:
        component = components.get(record.strategy_id)
        if component is None:
            skipped.append(
                NotReplayable(record.trace_id, record.strategy_id, "not in the run's config.yaml")
            )
            continue
        if not _is_rule_strategy(component.path):
            skipped.append(
                NotReplayable(
                    record.trace_id,
                    record.strategy_id,
                    f"{component.path} is not a rule strategy of this replay",
                )
            )
            continue
        if not record.sizing_inputs:
            skipped.append(
                NotReplayable(
                    record.trace_id,
                    record.strategy_id,
                    "the record has no sizing_inputs (written before decision replay)",
                )
            )
            continue
        results.append(replay_decision(record, component))
    return results, skipped, time.perf_counter() - started


def _is_rule_strategy(path: str) -> bool:
    """A RegimeAwareStrategy whose decisions this module replays (not a policy strategy that
    records its own decisions: the RL ensemble has its own replay)."""
    if path in RULES:
        return True
    try:
        cls = import_object(path)
    except (ImportError, AttributeError):
        return False
    if not (isinstance(cls, type) and issubclass(cls, RegimeAwareStrategy)):
        return False
    return "_record_decision" not in vars(cls)


# -- decision diff ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class DecisionChange:
    """One logged strategy decision beside what a changed config decides on the same inputs.

    Attributes
    ----------
    trace_id, strategy_id : str
    ts_event : int
        UNIX ns.
    regime : str
        The most likely regime the strategy held (``prior`` on the neutral prior or a tie).
    recorded_action, new_action : str or None
        ``entry``/``exit``/``adjust``; the new one None when the new config does not act.
    recorded_reason, new_reason : str
        The rule, or why nothing is decided (``no_signal``, ``skipped:size``, ``hold``).
    recorded_side, new_side : str or None
    recorded_quantity, new_quantity : Decimal or None
        Units of the intended order.
    """

    trace_id: str
    strategy_id: str
    ts_event: int
    regime: str
    recorded_action: str
    new_action: str | None
    recorded_reason: str
    new_reason: str
    recorded_side: str | None
    new_side: str | None
    recorded_quantity: Decimal | None
    new_quantity: Decimal | None

    @property
    def changed(self) -> bool:
        return (
            self.recorded_action != self.new_action
            or self.recorded_side != self.new_side
            or self.recorded_quantity != self.new_quantity
        )

    @property
    def kind(self) -> str:
        """``same``, ``skipped`` (no decision now), ``side`` or ``size``."""
        if not self.changed:
            return "same"
        if self.new_action is None or self.new_action != self.recorded_action:
            return "skipped"
        if self.recorded_side != self.new_side:
            return "side"
        return "size"


def _regime_label(record: DecisionRecord) -> str:
    if record.regime_most_likely is not None:
        return record.regime_most_likely
    probabilities = record.regime_probabilities
    if not probabilities or max(probabilities.values()) == min(probabilities.values()):
        return "prior"
    return max(probabilities, key=probabilities.__getitem__)


def diff_decisions(
    run: Path,
    overrides: Mapping[int, Mapping[str, Any]],
) -> list[DecisionChange]:
    """Run the strategies with ``overrides`` (config values by strategy index in
    ``config.yaml``) over the logged decisions' inputs: each decision of an overridden strategy
    is recomputed by the new config and listed beside the record. The inputs stay the logged
    ones (a decision the new config would have taken where the old one took none is not seen:
    only bars with a logged decision are revisited).

    Raises
    ------
    GrodtError
        An index with no strategy, an override the config rejects (named), or a strategy this
        replay does not cover.
    """
    base = strategy_components(run)
    by_index = {c.index: c for c in base.values()}
    for index in overrides:
        if index not in by_index:
            raise GrodtError(f"strategies[{index}]: the run has {len(by_index)} strategies")
        if not _is_rule_strategy(by_index[index].path):
            raise GrodtError(
                f"strategies[{index}] ({by_index[index].path}) is not a rule strategy this diff "
                "covers"
            )
    changed = strategy_components(run, overrides)
    wanted = {c.strategy_id: c for c in changed.values() if c.index in overrides}
    changes: list[DecisionChange] = []
    for record in decision_records(run):
        component = wanted.get(record.strategy_id)
        if component is None or not record.sizing_inputs:
            continue
        new = recompute(record, component)
        intended = record.intended_order
        changes.append(
            DecisionChange(
                trace_id=record.trace_id,
                strategy_id=record.strategy_id,
                ts_event=record.ts_event,
                regime=_regime_label(record),
                recorded_action=record.action,
                new_action=new.action,
                recorded_reason=record.reason,
                new_reason=new.reason,
                recorded_side=None if intended is None else intended.side,
                new_side=new.side,
                recorded_quantity=None if intended is None else Decimal(intended.quantity),
                new_quantity=new.values.get("intended_order.quantity", new.quantity),
            )
        )
    return changes


def summarise_decision_changes(changes: Sequence[DecisionChange]) -> dict[str, Any]:
    """How often the new config decides differently, in which regimes, and by how much.

    Returns ``decisions``, ``changed``, ``share_changed``, ``by_kind`` (``skipped``, ``side``,
    ``size`` counts), ``by_regime`` (label → ``{"decisions", "changed"}``) and, over the
    decisions whose size changed, ``mean_size_ratio`` and ``max_size_ratio`` (new over recorded
    quantity; 0 when none).
    """
    changed = [c for c in changes if c.changed]
    by_kind: dict[str, int] = {"skipped": 0, "side": 0, "size": 0}
    for change in changed:
        by_kind[change.kind] += 1
    by_regime: dict[str, dict[str, int]] = {}
    for change in changes:
        entry = by_regime.setdefault(change.regime, {"decisions": 0, "changed": 0})
        entry["decisions"] += 1
        entry["changed"] += int(change.changed)
    ratios = [
        float(c.new_quantity / c.recorded_quantity)
        for c in changed
        if c.kind == "size" and c.new_quantity is not None and c.recorded_quantity
    ]
    return {
        "decisions": len(changes),
        "changed": len(changed),
        "share_changed": len(changed) / len(changes) if changes else 0.0,
        "by_kind": by_kind,
        "by_regime": by_regime,
        "mean_size_ratio": sum(ratios) / len(ratios) if ratios else 0.0,
        "max_size_ratio": max(ratios) if ratios else 0.0,
    }
