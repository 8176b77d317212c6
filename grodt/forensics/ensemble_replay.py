"""Deterministic replay of the RL ensemble's decisions (``strategies.rl_ensemble``), bit for bit.

Each :class:`~grodt.core.records.DecisionRecord` of an ``RLEnsembleStrategy`` carries what the
policy saw and what the sizing used: the observation's feature values (``features``, with the
position input ``observed_position``) and the observation vector itself (``observation``), the
specialists' version (``model_versions["specialists"]``: a content hash of the manifest and the
model files), the regime probabilities and the most likely regime, the blend mode, and the numbers
from the action to the order (``sizing_inputs``: equity, held quantity, price, lot, fee, free
cash, allocation and regime scale, kill switch). Replay loads the specialists of the recorded
version and recomputes, through the functions the strategy itself calls:

1. the observation (``ObservationSpec.build_from_mapping``) → ``observation[i]``;
2. every specialist's action (:func:`strategies.rl_ensemble.propose`: the numpy or torch runtime
   the strategy's ``inference`` setting selects) → ``specialist_actions[label]``;
3. the blend weights and the blended action (``blend_weights``, ``blend_action``) →
   ``blend_weights[label]``, ``blended_action``;
4. the decided action (``decided_action``: shorts need ``allow_short``) → ``sizing_inputs[action]``;
5. the order (:func:`strategies.rl_ensemble.plan_target` on the recorded sizing inputs with the
   replayed action) → ``action`` (entry / adjust / exit), ``features[full_quantity]``,
   ``intended_order.side``, ``intended_order.quantity`` (compared as decimals: the string's
   trailing digits are the instrument's precision, not a computation),
   ``intended_order.reduce_only``.

A decision taken under a monitor's fallback (``features["control_fallback"]`` is 1: an input
from the bus that only the record carries) replays steps 1–3 and then the strategy's flat
action, 0, in place of the blend (``blended_action`` and the order are compared with it).

Floats are compared with ``==``; the first field that differs is named with both values. Each
decision replays from its own record: the policies are feed-forward and the records carry the
position input, so no earlier decision is needed.

Where the specialists come from: the run's ``config.yaml`` names them (a directory, or a registry
reference: a recorded ``name/<version>:<hash>`` is loaded as ``name/<version>``, whatever the alias
points to now); specialists fine-tuned during the run (``retrain``: ``models.rl.online``) are
found under the fine-tune schedule's ``output`` directory as ``<output>/<version>/``. A version
whose files are not found is reported as a difference at ``model_versions[specialists]``.

Not replayed: ``execution: bracket`` orders (the base's entry path; the policy part of those
records is replayed), and RecurrentPPO specialists (their LSTM state is not in the records: an
error).
"""

from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import yaml
from nautilus_trader.model.enums import OrderSide

from grodt.core.errors import GrodtError
from grodt.core.records import DecisionRecord
from grodt.forensics.replay import FieldDifference
from grodt.forensics.replay import ReplayResult
from models.rl.online import FineTuneConfig
from models.rl.specialists import MANIFEST_FILE
from node_configs.loader import import_object
from strategies.rl_ensemble import SCRIPTED
from strategies.rl_ensemble import LoadedPolicy
from strategies.rl_ensemble import RLEnsembleStrategy
from strategies.rl_ensemble import RLEnsembleStrategyConfig
from strategies.rl_ensemble import TargetInputs
from strategies.rl_ensemble import blend_action
from strategies.rl_ensemble import blend_weights
from strategies.rl_ensemble import decided_action
from strategies.rl_ensemble import load_fine_tuned
from strategies.rl_ensemble import load_policy
from strategies.rl_ensemble import load_scripted_actions
from strategies.rl_ensemble import plan_target
from strategies.rl_ensemble import propose

__all__ = ["STRATEGY_PATH", "FineTunedSet", "fine_tuned_sets", "replay_ensemble_decisions"]

STRATEGY_PATH = "strategies.rl_ensemble:RLEnsembleStrategy"


def _strategy_config(run: Path, strategy_id: str) -> RLEnsembleStrategyConfig:
    """The config of ``strategy_id`` from ``<run>/config.yaml``."""
    path = Path(run) / "config.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GrodtError(f"{path}: cannot read the run's config: {e}") from None
    found = []
    for i, entry in enumerate(document.get("strategies") or []):
        cls = _ensemble_class(str(entry.get("path", "")))
        if cls is None:
            continue
        values = dict(entry.get("config") or {})
        name = values.get("strategy_id") or f"{cls.__name__}-{values.get('order_id_tag')}"
        found.append(name)
        if name != strategy_id:
            continue
        try:
            return RLEnsembleStrategyConfig.parse(msgspec.json.encode(values))
        except (msgspec.ValidationError, TypeError, ValueError) as e:
            raise GrodtError(f"{path}: strategies[{i}].config: {e}") from None
    raise GrodtError(
        f"{path}: no {STRATEGY_PATH} (or subclass) with id {strategy_id!r} (found {found})"
    )


def _ensemble_class(path: str) -> type | None:
    """The strategy class at ``path`` when it is an ``RLEnsembleStrategy`` (or a subclass)."""
    if path == STRATEGY_PATH:
        return RLEnsembleStrategy
    try:
        cls = import_object(path)
    except Exception:  # not importable here: not one this replay can run anyway
        return None
    return cls if isinstance(cls, type) and issubclass(cls, RLEnsembleStrategy) else None


class _Policies:
    """The run's specialist sets by version, loaded once each."""

    def __init__(self, run: Path, config: RLEnsembleStrategyConfig) -> None:
        self._run = Path(run)
        self._config = config
        self._loaded: dict[str, LoadedPolicy] = {}

    def get(self, version: str) -> LoadedPolicy | None:
        if version in self._loaded:
            return self._loaded[version]
        reference, _, _ = version.partition(":")
        if "/" in reference and ":" in version:  # a registry version: name/<n>:<hash>
            self._add(reference)
        elif not self._loaded:
            assert self._config.specialists is not None
            self._add(self._config.specialists)
        if version not in self._loaded and self._config.retrain is not None:
            output = Path(FineTuneConfig.from_yaml(self._config.retrain).output)
            if (output / version / MANIFEST_FILE).is_file():
                self._add(str(output / version), fine_tuned=True)
        return self._loaded.get(version)

    def _add(self, reference: str, fine_tuned: bool = False) -> None:
        try:
            if fine_tuned:
                policy = load_fine_tuned(reference, self._config.inference)
            else:
                policy = load_policy(reference, self._config.inference)
        except (ValueError, OSError) as e:
            raise GrodtError(f"specialists {reference}: {e}") from e
        if policy.specialists.algorithm == "RecurrentPPO":
            raise GrodtError(
                f"specialists {reference}: RecurrentPPO cannot be replayed from the records "
                "(its LSTM state is not recorded)"
            )
        self._loaded.setdefault(policy.version, policy)

    @property
    def versions(self) -> list[str]:
        return sorted(self._loaded)


def _compare(recorded: Any, replayed: Any, field: str) -> FieldDifference | None:
    return None if recorded == replayed else FieldDifference(field, recorded, replayed)


def _compare_mapping(
    recorded: Mapping[str, float], replayed: Mapping[str, float], field: str
) -> FieldDifference | None:
    for key in sorted(set(recorded) | set(replayed)):
        if recorded.get(key) != replayed.get(key):
            return FieldDifference(f"{field}[{key}]", recorded.get(key), replayed.get(key))
    return None


def _policy_step(
    record: DecisionRecord, config: RLEnsembleStrategyConfig, policy: LoadedPolicy
) -> tuple[FieldDifference | None, float | None]:
    """Observation → proposals → blend; returns the first difference and the blended action."""
    specialists = policy.specialists
    if not record.observation:
        # No proposal on this bar (features warming up): nothing the policy computed.
        return _compare(record.specialist_actions, {}, "specialist_actions"), record.blended_action
    names = specialists.observation.feature_names
    try:
        values = {name: record.features[name] for name in names}
        position = record.features["observed_position"]
    except KeyError as e:
        raise GrodtError(
            f"decision {record.trace_id}: features lack {e.args[0]!r}; cannot replay"
        ) from None
    observation = specialists.observation.build_from_mapping(values, position)
    rebuilt = observation.tolist()
    if len(rebuilt) != len(record.observation):
        return FieldDifference("observation", record.observation, rebuilt), None
    for i, (a, b) in enumerate(zip(record.observation, rebuilt, strict=True)):
        if a != b:
            return FieldDifference(f"observation[{i}]", a, b), None
    try:
        proposals = propose(policy, np.asarray(record.observation, dtype=np.float32))
        failed = any(not np.isfinite(a) for a in proposals.values())
    except Exception:  # the strategy falls back the same way; the record says whether it did
        proposals, failed = {}, True
    control = _under_control(record)
    if failed:
        fallback = 0.0 if config.on_model_error == "flat" or control else None
        difference = _compare(record.specialist_actions, {}, "specialist_actions")
        return difference or _compare(record.blended_action, fallback, "blended_action"), fallback
    difference = _compare_mapping(record.specialist_actions, proposals, "specialist_actions")
    if difference is not None:
        return difference, None
    weights = blend_weights(
        config.blend_mode,
        specialists.labels,
        record.regime_probabilities,
        record.regime_most_likely,
    )
    difference = _compare_mapping(record.blend_weights, weights, "blend_weights")
    if difference is not None:
        return difference, None
    action = 0.0 if control else blend_action(weights, proposals, specialists.labels)
    return _compare(record.blended_action, action, "blended_action"), action


def _under_control(record: DecisionRecord) -> bool:
    """The strategy steered flat on a monitor's fallback (``strategies.rl_ensemble``)."""
    return record.features.get("control_fallback") == 1.0


def _scripted_step(
    record: DecisionRecord, config: RLEnsembleStrategyConfig, script: tuple[float, ...]
) -> tuple[FieldDifference | None, float | None]:
    index = int(record.features.get("bar_index", -1))
    if config.scripted_repeat:
        index %= len(script)
    action = script[index] if 0 <= index < len(script) else None
    proposals = {SCRIPTED: action} if action is not None else {}
    difference = _compare_mapping(record.specialist_actions, proposals, "specialist_actions")
    if _under_control(record):
        action = 0.0
    return difference or _compare(record.blended_action, action, "blended_action"), action


def _side(side: OrderSide) -> str:
    return "BUY" if side == OrderSide.BUY else "SELL"


def _order_step(
    record: DecisionRecord, config: RLEnsembleStrategyConfig, action: float | None
) -> FieldDifference | None:
    """Action → order through ``plan_target`` (target execution) or the base's exit."""
    intended = record.intended_order
    if intended is None or config.execution == "bracket":
        return None  # bracket orders are the base's entry path (not replayed here)
    recorded_quantity = Decimal(intended.quantity)
    if "action" not in record.sizing_inputs:
        # The base's own exit (session close, time stop, strategy stop): close what is held.
        held = record.sizing_inputs.get("held_quantity")
        if held is None:
            raise GrodtError(f"decision {record.trace_id}: sizing_inputs lack the held quantity")
        return (
            _compare(intended.side, "SELL" if held > 0 else "BUY", "intended_order.side")
            or _compare(recorded_quantity, abs(Decimal(repr(held))), "intended_order.quantity")
            or _compare(intended.reduce_only, True, "intended_order.reduce_only")
        )
    replayed_action = decided_action(action, config.allow_short)
    difference = _compare(record.sizing_inputs["action"], replayed_action, "sizing_inputs[action]")
    if difference is not None or replayed_action is None:
        return difference
    try:
        recorded_inputs = TargetInputs.from_record(record.sizing_inputs)
    except KeyError as e:
        raise GrodtError(f"decision {record.trace_id}: {e.args[0]}; cannot replay") from None
    inputs = replace(recorded_inputs, action=replayed_action)
    plan = plan_target(inputs, config)
    held_units = Decimal(repr(inputs.held_quantity))
    if plan.exit:
        return (
            _compare(record.action, "exit", "action")
            or _compare(intended.side, "SELL" if held_units > 0 else "BUY", "intended_order.side")
            or _compare(recorded_quantity, abs(held_units), "intended_order.quantity")
            or _compare(intended.reduce_only, True, "intended_order.reduce_only")
        )
    full = _compare(record.features.get("full_quantity"), plan.full, "features[full_quantity]")
    if full is not None:
        return full
    if plan.side is None:
        return FieldDifference("intended_order", intended.model_dump(), None)
    signed = plan.quantity if plan.side == OrderSide.BUY else -plan.quantity
    new_units = held_units + signed
    kind = "entry" if not inputs.has_position else ("exit" if new_units == 0 else "adjust")
    return (
        _compare(record.action, kind, "action")
        or _compare(intended.side, _side(plan.side), "intended_order.side")
        or _compare(recorded_quantity, plan.quantity, "intended_order.quantity")
        or _compare(intended.reduce_only, plan.reduce_only, "intended_order.reduce_only")
    )


def replay_ensemble_decisions(
    run: Path, strategy_id: str, records: Sequence[DecisionRecord]
) -> list[ReplayResult]:
    """Replay ``records`` (decisions of the ``RLEnsembleStrategy`` ``strategy_id`` in ``run``).

    Returns one :class:`~grodt.forensics.replay.ReplayResult` per record, in the given order
    (``policy``: the record's blend mode); ``difference`` names the first field that differs.

    Raises
    ------
    GrodtError
        The run's config has no such strategy, its specialists cannot be loaded, or a record
        lacks an input replay needs (named).
    """
    config = _strategy_config(run, strategy_id)
    policies = None if config.blend_mode == SCRIPTED else _Policies(run, config)
    script: tuple[float, ...] = ()
    if config.blend_mode == SCRIPTED:
        if config.scripted_actions_file is not None:
            script = load_scripted_actions(config.scripted_actions_file)
        else:
            script = tuple(float(a) for a in config.scripted_actions or ())
    results = []
    for record in records:
        if record.strategy_id != strategy_id:
            raise GrodtError(
                f"decision {record.trace_id} is {record.strategy_id}'s, not {strategy_id}'s"
            )
        if not record.blend_mode:
            raise GrodtError(
                f"decision {record.trace_id}: written before the RL ensemble recorded its replay "
                "inputs (no blend_mode, observation or sizing_inputs); cannot replay"
            )
        version = record.model_versions.get("specialists", "")
        if policies is None:
            difference, action = _scripted_step(record, config, script)
        else:
            policy = policies.get(version)
            if policy is None:
                difference = FieldDifference(
                    "model_versions[specialists]", version, f"not found (have {policies.versions})"
                )
                action = None
            else:
                difference, action = _policy_step(record, config, policy)
        if difference is None:
            difference = _order_step(record, config, action)
        results.append(
            ReplayResult(
                trace_id=record.trace_id,
                ts_event=record.ts_event,
                policy=record.blend_mode or config.blend_mode,
                difference=difference,
            )
        )
    return results


@dataclass(frozen=True)
class FineTunedSet:
    """A specialist set the run fine-tuned online and used.

    Attributes
    ----------
    version : str
        ``ft-<hash>`` (``models.rl.online.parameter_version``).
    directory : Path
        Where it is saved (``<output>/<version>``).
    first_used_ns : int
        ``ts_event`` of the first decision that used it.
    """

    version: str
    directory: Path
    first_used_ns: int


def fine_tuned_sets(
    run: Path, strategy_id: str, records: Sequence[DecisionRecord]
) -> list[FineTunedSet]:
    """The fine-tuned sets ``records`` (decisions of ``strategy_id`` in ``run``) used, in the
    order they took over.

    Raises
    ------
    GrodtError
        The strategy has no ``retrain`` schedule, or a set's directory is missing (named).
    """
    config = _strategy_config(run, strategy_id)
    if config.retrain is None:
        raise GrodtError(f"{run}/config.yaml: {strategy_id} has no retrain schedule")
    output = Path(FineTuneConfig.from_yaml(config.retrain).output)
    first: dict[str, int] = {}
    for record in sorted(records, key=lambda r: r.ts_event):
        version = record.model_versions.get("specialists", "")
        if record.strategy_id == strategy_id and version.startswith("ft-"):
            first.setdefault(version, record.ts_event)
    sets = []
    for version, ts in first.items():
        directory = output / version
        if not (directory / MANIFEST_FILE).is_file():
            raise GrodtError(f"fine-tuned specialists {version}: no {directory / MANIFEST_FILE}")
        sets.append(FineTunedSet(version, directory, ts))
    return sets
