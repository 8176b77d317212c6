"""Deterministic replay of logged decisions: recompute each through the same code, bit for bit.

Replayable: the meta-controller's allocations (:class:`~grodt.core.records.AllocationRecord` of
``actors.meta_controller:MetaController``) under every policy (``static``, ``predictive``,
``bandit``, ``trailing_sharpe``). The run directory's ``config.yaml`` gives the actor's config; a
:class:`~models.meta.policy.MetaPolicy` is built from it exactly as the actor builds it (the
``predictive`` model loaded from the config's ``model`` by the actor's own loader, and checked
against the records' ``model_version``), and the component's records are fed to it in decision
order with the inputs each record carries:

- the model rows, rebuilt from ``context`` (``<strategy>:<feature>`` for every strategy feature,
  then the shared context features, in the actor's column order);
- the bandit context (the shared features and each strategy's trailing Sharpe);
- ``previous_weights``; ``ts_event`` (the decision time); the strategies' window returns
  (``<strategy>:realised_return``: the predictive policy's coverage monitor scores its last
  interval with them) and the portfolio's (``realised_return``, from which the bandit learns
  before it chooses);
- ``correlation``: the strategies' return correlation the predictive allocator used;
- the monitors' ``retrain`` requests (``model_control``): the refit they made due;
- the exploration freeze: frozen when ``bars_since_changepoint`` < the config's
  ``exploration_freeze_bars`` (compared with the recorded ``exploration_frozen``; the change
  point it names, ``changepoint_trace_id``, must be a ``changepoint:`` regime record of the run);
- the warm-up fallbacks as the actor takes them (``policy.fallback("warming_up")``, no
  learning); a monitor's fallback (``control_fallback: …``, an input from the bus that only
  the record carries) likewise, unless a retrained model took over at that decision (the swap
  ends it in the actor, so such a record is a difference); and its guards (an exception or
  invalid weights from the policy: a static fallback).

The policy code is shared with the actor; the few lines of orchestration around it mirror
``MetaController._rebalance`` (the tests replay real runs of the current actor, so a change there
that is not mirrored here fails them).

Each recomputed decision is compared with its record field by field (``weights``, ``policy``,
``fallback_reason``, ``action_index``, ``action_probabilities``, ``propensity``,
``predicted_performance``, ``quantiles``, ``bounds_hit``, ``exploration_frozen``,
``calibration_coverage``, ``calibration_outcomes``), floats with ``==``: the first field that
differs is named, with both values. A stateful policy (the bandit's posterior and random stream,
the predictive policy's switched-off strategies and coverage monitor) can only be replayed from
the component's first record, so replaying one trace replays everything before it.

Not replayable here: the strategies' decisions (``grodt.forensics.decision_replay``,
``grodt.forensics.ensemble_replay``).
"""

import time
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import yaml

from actors.meta_controller import CHANGEPOINT_REASON
from actors.meta_controller import CONTROL_FALLBACK_REASON
from actors.meta_controller import MetaControllerConfig
from actors.meta_controller import load_meta_model
from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.forensics.reader import read_run
from models.meta.features import CONTEXT_FEATURES
from models.meta.features import STRATEGY_FEATURES
from models.meta.online import OnlineMetaTrainer
from models.meta.policy import MetaDecision
from models.meta.policy import MetaPolicy

__all__ = [
    "AllocationChange",
    "FieldDifference",
    "ReplayResult",
    "diff_allocations",
    "replay_allocations",
    "replay_trace",
    "replayed_action_dist",
    "summarise_changes",
]

META_CONTROLLER_PATH = "actors.meta_controller:MetaController"
_SHARPE = STRATEGY_FEATURES.index("sharpe")


@dataclass(frozen=True)
class FieldDifference:
    """The first field where the replayed decision differs from its record."""

    field: str
    recorded: Any
    replayed: Any


@dataclass(frozen=True)
class ReplayResult:
    """One decision replayed.

    Attributes
    ----------
    trace_id : str
    ts_event : int
        Decision time, UNIX ns.
    policy : str
        The recorded policy.
    difference : FieldDifference | None
        None when every compared field is equal bit for bit.
    """

    trace_id: str
    ts_event: int
    policy: str
    difference: FieldDifference | None

    @property
    def equal(self) -> bool:
        return self.difference is None


def _parse_config(values: Mapping[str, Any], where: str) -> MetaControllerConfig:
    try:
        return MetaControllerConfig.parse(msgspec.json.encode(dict(values)))
    except (msgspec.ValidationError, TypeError, ValueError) as e:
        raise GrodtError(f"{where}: {e}") from None


def _meta_config_values(run: Path) -> dict[str, dict[str, Any]]:
    """The run's meta-controller config mappings by component id, from ``<run>/config.yaml``."""
    path = Path(run) / "config.yaml"
    try:
        document = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GrodtError(f"{path}: cannot read the run's config: {e}") from None
    found: dict[str, dict[str, Any]] = {}
    for i, actor in enumerate(document.get("actors") or []):
        if actor.get("path") != META_CONTROLLER_PATH:
            continue
        values = dict(actor.get("config") or {})
        config = _parse_config(values, f"{path}: actors[{i}].config")
        found[str(config.component_id) if config.component_id else "MetaController"] = values
    return found


def _meta_configs(run: Path) -> dict[str, MetaControllerConfig]:
    """The run's meta-controller configs by component id."""
    return {
        component: _parse_config(values, f"{run}/config.yaml: {component}")
        for component, values in _meta_config_values(run).items()
    }


def _policy(
    config: MetaControllerConfig, records: Sequence[AllocationRecord], check_model: bool
) -> MetaPolicy:
    """The policy the actor builds in ``on_start``; with ``check_model``, the ``predictive``
    model must be the one the records name."""
    names = list(config.static_weights)
    model, error = None, ""
    if config.policy == "predictive":
        model, error = load_meta_model(config.model)
        used = sorted({r.model_version for r in records if r.model_version})
        found = model.version_ if model is not None else ""
        # Retrained online, a run's records name several versions: each is compared per record.
        if check_model and config.retrain is None and used and used != [found]:
            raise GrodtError(
                f"the records were decided by model {', '.join(used)}; the config's model "
                f"{config.model!r} is {found or 'not loadable: ' + error}"
            )
    return MetaPolicy(
        config.policy,
        names,
        np.array([config.static_weights[n] for n in names]),
        config.allocator(),
        config.health(),
        model=model,
        model_error=error,
        bandit_features=len(CONTEXT_FEATURES) + len(names),
        bandit_seed=config.bandit_seed,
        bandit_exploration=config.bandit_exploration,
        predictive_actions=config.predictive_actions,
        predictive_exploration=config.predictive_exploration,
    )


def _inputs(record: AllocationRecord, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Model rows (n, 16) and bandit context, from the record's ``context``."""
    context = record.context
    try:
        shared = np.array([context[f] for f in CONTEXT_FEATURES], dtype=float)
        per_strategy = np.array(
            [[context[f"{n}:{f}"] for f in STRATEGY_FEATURES] for n in names], dtype=float
        )
    except KeyError as e:
        raise GrodtError(
            f"allocation record {record.trace_id}: context lacks {e.args[0]!r}; cannot replay"
        ) from None
    rows = np.hstack([per_strategy, np.tile(shared, (len(names), 1))])
    return rows, np.concatenate([shared, per_strategy[:, _SHARPE]])


def _correlation(record: AllocationRecord, config: MetaControllerConfig) -> np.ndarray:
    """The strategies' return correlation of the record (only ``predictive`` reads it)."""
    n = len(config.static_weights)
    if config.policy != "predictive":
        return np.eye(n)
    correlation = np.array(record.correlation, dtype=float)
    if correlation.shape != (n, n):
        raise GrodtError(
            f"allocation record {record.trace_id}: correlation has shape {correlation.shape}, "
            f"not ({n}, {n}): the predictive policy cannot run on it (records written before "
            "the correlation was recorded)"
        )
    return correlation


def _frozen(record: AllocationRecord, config: MetaControllerConfig) -> bool:
    """Whether exploration was frozen at this decision, from the record's change-point count."""
    since = record.bars_since_changepoint
    return since is not None and since < config.exploration_freeze_bars


def _first_difference(
    record: AllocationRecord,
    decision: MetaDecision,
    names: list[str],
    frozen: bool,
    changepoints: set[str],
    model_version: str,
) -> FieldDifference | None:
    if record.changepoint_trace_id and record.changepoint_trace_id not in changepoints:
        return FieldDifference(
            "changepoint_trace_id",
            record.changepoint_trace_id,
            "no such changepoint regime record in the run",
        )
    replayed: list[tuple[str, Any]] = [
        ("weights", dict(zip(names, np.asarray(decision.weights).tolist(), strict=True))),
        ("policy", decision.policy),
        ("fallback_reason", decision.fallback_reason),
        ("action_index", decision.action_index),
        ("action_probabilities", list(decision.action_probabilities)),
        ("propensity", decision.propensity),
        ("predicted_performance", dict(decision.predicted)),
        ("quantiles", {k: dict(v) for k, v in decision.quantiles.items()}),
        ("bounds_hit", list(decision.bounds_hit)),
        ("model_version", model_version),
        ("exploration_frozen", frozen),
        ("calibration_coverage", decision.calibration_coverage),
        ("calibration_outcomes", decision.calibration_outcomes),
    ]
    for field, value in replayed:
        recorded = getattr(record, field)
        if field == "weights":
            for name in names:
                if recorded.get(name) != value[name]:
                    return FieldDifference(f"weights[{name}]", recorded.get(name), value[name])
            continue
        if recorded != value:
            if isinstance(value, list) and isinstance(recorded, list):
                for i, (a, b) in enumerate(zip(recorded, value, strict=False)):
                    if a != b:
                        return FieldDifference(f"{field}[{i}]", a, b)
            return FieldDifference(field, recorded, value)
    return None


def _decisions(
    records: Sequence[AllocationRecord], config: MetaControllerConfig, check_model: bool = True
) -> Iterator[tuple[AllocationRecord, MetaDecision, bool, str]]:
    """Each record with the decision ``config``'s policy makes on the record's inputs, in order,
    whether exploration was frozen, and the model version the actor would record."""
    names = list(config.static_weights)
    policy = _policy(config, records, check_model)
    trainer = (
        OnlineMetaTrainer(config.retrain, config.rebalance_every, model=policy.model)
        if config.policy == "predictive" and config.retrain is not None
        else None
    )
    for k, record in enumerate(records):
        if trainer is not None:  # a monitor's retrain request since the last rebalance
            for request in record.model_control:
                if request.startswith("retrain "):
                    trainer.request_refit()
        frozen = _frozen(record, config)
        previous = np.array([record.previous_weights[n] for n in names], dtype=float)
        if record.fallback_reason == "warming_up":
            decision = policy.fallback("warming_up")
        else:
            rows, bandit_context = _inputs(record, names)
            window_returns = np.array([record.context[f"{n}:realised_return"] for n in names])
            swapped = False
            if trainer is not None:  # the actor's _retrain_step, synchronously (same swaps)
                try:
                    outcome = trainer.step(
                        rows, previous, window_returns if k > 0 else None, record.ts_event
                    )
                except Exception:  # the actor logs it and goes on with its model
                    outcome = None
                if outcome is not None and outcome.ok and outcome.model is not None:
                    policy.set_model(outcome.model)
                    swapped = True
            control = record.fallback_reason.startswith(CONTROL_FALLBACK_REASON)
            try:
                if control and not swapped:
                    decision = policy.fallback(record.fallback_reason)
                else:
                    decision = policy.decide(
                        rows,
                        bandit_context,
                        _correlation(record, config),
                        previous,
                        record.ts_event,
                        realised_returns=window_returns if k > 0 else None,
                        realised_portfolio_return=record.realised_return,
                        exploration_frozen=frozen,
                    )
            except GrodtError:
                raise
            except Exception as e:
                # The actor falls back the same way; the record says whether it did.
                decision = policy.fallback(f"policy_error: {type(e).__name__}: {e}")
        weights = np.asarray(decision.weights, dtype=float)
        if not (
            np.isfinite(weights).all() and weights.min() >= 0.0 and weights.sum() <= 1.0 + 1e-6
        ):
            decision = policy.fallback(f"policy_error: invalid weights {weights.tolist()}")
        version = policy.model_version if decision.policy == "predictive" else ""
        yield record, decision, frozen, version


def _replay_component(
    records: Sequence[AllocationRecord],
    config: MetaControllerConfig,
    stop_at: str | None,
    changepoints: set[str],
) -> list[ReplayResult]:
    names = list(config.static_weights)
    results = []
    for record, decision, frozen, version in _decisions(records, config):
        results.append(
            ReplayResult(
                trace_id=record.trace_id,
                ts_event=record.ts_event,
                policy=record.policy,
                difference=_first_difference(
                    record, decision, names, frozen, changepoints, version
                ),
            )
        )
        if stop_at is not None and record.trace_id == stop_at:
            break
    return results


def _run_records(run: Path) -> tuple[dict[str, list[AllocationRecord]], set[str]]:
    """The run's allocation records by component (decision order) and the trace ids of its
    change-point regime records."""
    by_component: dict[str, list[AllocationRecord]] = {}
    changepoints: set[str] = set()
    for stored in read_run(Path(run)):
        record = stored.record
        if isinstance(record, AllocationRecord):
            by_component.setdefault(record.component_id, []).append(record)
        elif isinstance(record, RegimeUpdateRecord) and record.reason.startswith(
            CHANGEPOINT_REASON
        ):
            changepoints.add(record.trace_id)
    for records in by_component.values():
        records.sort(key=lambda r: r.ts_event)  # stable: stream order within a timestamp
    return by_component, changepoints


def _allocation_records(run: Path) -> dict[str, list[AllocationRecord]]:
    return _run_records(run)[0]


def replay_allocations(
    run: Path, component_id: str | None = None
) -> tuple[list[ReplayResult], float]:
    """Replay every allocation decision of the run's meta-controllers.

    Returns the results in decision order and the wall time spent replaying (seconds, reading
    the run excluded).
    """
    configs = _meta_configs(run)
    by_component, changepoints = _run_records(run)
    if component_id is not None:
        by_component = {k: v for k, v in by_component.items() if k == component_id}
    if not by_component:
        raise GrodtError(f"{run}: no allocation records to replay")
    started = time.perf_counter()
    results: list[ReplayResult] = []
    for component, records in sorted(by_component.items()):
        config = configs.get(component)
        if config is None:
            raise GrodtError(
                f"{run}/config.yaml: no {META_CONTROLLER_PATH} with component id {component!r} "
                f"(found {sorted(configs)})"
            )
        results.extend(_replay_component(records, config, None, changepoints))
    return results, time.perf_counter() - started


def replay_trace(run: Path, trace_id: str) -> tuple[ReplayResult, int, float]:
    """Replay one decision (and, for the policy's state, every earlier one of its component).

    Returns its result, the number of decisions replayed and the wall time (seconds).
    """
    configs = _meta_configs(run)
    by_component, changepoints = _run_records(run)
    for component, records in by_component.items():
        if any(r.trace_id == trace_id for r in records):
            config = configs.get(component)
            if config is None:
                raise GrodtError(
                    f"{run}/config.yaml: no {META_CONTROLLER_PATH} with component id {component!r}"
                )
            started = time.perf_counter()
            results = _replay_component(records, config, trace_id, changepoints)
            return results[-1], len(results), time.perf_counter() - started
    raise GrodtError(
        f"{run}: no allocation record with trace id {trace_id!r} (replay covers the "
        "meta-controller's allocations; strategies' decisions are not replayable yet)"
    )


# -- Another policy's action distribution on the logged decisions (off-policy evaluation) --------


def _arm_distribution(decision: MetaDecision, n_arms: int, where: str) -> list[float]:
    """The decision as a distribution over the allocation arms: the drawn distribution of a
    bandit or predictive-arms decision; one-hot on arm 0 for a static fallback (the static
    weights are arm 0, :func:`models.meta.bandit.allocation_actions`)."""
    if decision.action_probabilities:
        return list(decision.action_probabilities)
    if decision.policy == "static":
        return [1.0] + [0.0] * (n_arms - 1)
    raise GrodtError(
        f"{where}: the {decision.policy} policy decided continuous weights, not one of the "
        f"{n_arms} allocation arms: it has no action distribution to evaluate off-policy "
        "(predictive_actions: arms)"
    )


def replayed_action_dist(
    runs: Sequence[Path],
    sources: Sequence[str],
    trace_ids: Sequence[str],
    overrides: Mapping[str, Any],
    component_id: str | None = None,
) -> np.ndarray:
    """Another config's action distribution on logged allocation decisions, by replay.

    Each run's meta-controller config (``config.yaml``) with ``overrides`` (e.g. another
    ``model``) is replayed over the component's records in decision order, exactly as
    :func:`replay_allocations` replays the logged one (the same :class:`MetaPolicy`, the model
    loaded by the actor's loader, the recorded inputs, the exploration freeze); the decisions
    at the wanted records are returned as distributions over the allocation arms (a static
    fallback is arm 0 with probability 1).

    Parameters
    ----------
    runs : Sequence[Path]
        Run directories, as given to :func:`grodt.forensics.ope_logs.read_bandit_log`.
    sources, trace_ids : Sequence[str]
        The rounds wanted: ``<run>:<component_id>`` and the record's trace id
        (:class:`~grodt.forensics.ope_logs.BanditLog`'s ``sources`` and ``trace_ids``).
    overrides : Mapping[str, Any]
        Config fields replacing the run's.
    component_id : str, optional
        Only this meta-controller's records.

    Returns
    -------
    np.ndarray, shape (len(trace_ids), n_arms)

    Raises
    ------
    GrodtError
        A run without the component's config, an override the config rejects, a decision
        that is not an arm (continuous ``predictive``, ``trailing_sharpe``), or a wanted
        round not found.
    """
    wanted = set(zip(sources, trace_ids, strict=True))
    found: dict[tuple[str, str], list[float]] = {}
    for run in runs:
        values = _meta_config_values(run)
        for component, records in sorted(_allocation_records(run).items()):
            if component_id is not None and component != component_id:
                continue
            source = f"{run}:{component}"
            if not any(key[0] == source for key in wanted):
                continue
            base = values.get(component)
            if base is None:
                raise GrodtError(
                    f"{run}/config.yaml: no {META_CONTROLLER_PATH} with component id {component!r}"
                )
            config = _parse_config(
                {**base, **overrides}, f"{run}: {component} with {sorted(overrides)}"
            )
            n_arms = len(config.static_weights) + 2
            for record, decision, _, _ in _decisions(records, config, check_model=False):
                key = (source, record.trace_id)
                if key in wanted:
                    found[key] = _arm_distribution(
                        decision, n_arms, f"{source}: allocation record {record.trace_id}"
                    )
    rows = []
    for key in zip(sources, trace_ids, strict=True):
        if key not in found:
            raise GrodtError(f"{key[0]}: allocation record {key[1]} not found to replay")
        rows.append(found[key])
    return np.array(rows, dtype=float).reshape(len(rows), -1)


# -- Policy diff -----------------------------------------------------------------------------------

REGIME_KEYS = ("p_bull", "p_bear", "p_sideways")


@dataclass(frozen=True)
class AllocationChange:
    """One logged decision beside the decision a new config makes on the same logged inputs.

    Attributes
    ----------
    trace_id : str
    ts_event : int
        UNIX ns.
    regime : str
        Most likely regime in the record's context (``bull``, ``bear``, ``sideways``),
        ``"prior"`` when the probabilities are all equal (no regime model), ``"warming_up"``
        where the context holds none.
    recorded_policy, new_policy : str
    recorded, new : dict[str, float]
        Weights by strategy id (fractions of equity).
    """

    trace_id: str
    ts_event: int
    regime: str
    recorded_policy: str
    new_policy: str
    recorded: dict[str, float]
    new: dict[str, float]

    @property
    def max_change(self) -> float:
        """The largest absolute weight change."""
        return max(abs(self.new[name] - self.recorded[name]) for name in self.new)

    @property
    def changed(self) -> bool:
        return self.recorded != self.new


def _regime(record: AllocationRecord) -> str:
    if not all(key in record.context for key in REGIME_KEYS):
        return "warming_up"
    values = [record.context[key] for key in REGIME_KEYS]
    if max(values) == min(values):
        return "prior"  # no regime model behind the context: the uniform prior
    return REGIME_KEYS[int(np.argmax(values))].removeprefix("p_")


def diff_allocations(
    run: Path, overrides: Mapping[str, Any], component_id: str | None = None
) -> list[AllocationChange]:
    """Run the meta-controller's config with ``overrides`` over the run's logged inputs.

    Each logged decision is recomputed by the new config's policy from the record's inputs (the
    weights in force, contexts and outcomes as logged: the new policy's own choices do not feed
    back into later inputs) and listed beside the recorded weights.

    Raises
    ------
    GrodtError
        No meta-controller (or several without ``component_id``), an override the config
        rejects (named), or ``predictive`` on records without the strategies' correlation
        (written before it was recorded).
    """
    values = _meta_config_values(run)
    if component_id is not None:
        values = {k: v for k, v in values.items() if k == component_id}
    if len(values) != 1:
        raise GrodtError(
            f"{run}/config.yaml: {len(values)} meta-controllers match (found "
            f"{sorted(_meta_config_values(run))}); name one with --component"
        )
    ((component, base),) = values.items()
    new_config = _parse_config({**base, **overrides}, f"the new config of {component}")
    old_names = list(_parse_config(base, component).static_weights)
    if list(new_config.static_weights) != old_names:
        raise GrodtError(
            f"the new config allocates {list(new_config.static_weights)}, the run {old_names}: "
            "a diff needs the same strategies"
        )
    records = _allocation_records(run).get(component, [])
    if not records:
        raise GrodtError(f"{run}: no allocation records of {component!r}")
    changes = []
    for record, decision, _, _ in _decisions(records, new_config, check_model=False):
        new = dict(zip(old_names, np.asarray(decision.weights).tolist(), strict=True))
        changes.append(
            AllocationChange(
                trace_id=record.trace_id,
                ts_event=record.ts_event,
                regime=_regime(record),
                recorded_policy=record.policy,
                new_policy=decision.policy,
                recorded={name: record.weights[name] for name in old_names},
                new=new,
            )
        )
    return changes


def summarise_changes(changes: Sequence[AllocationChange]) -> dict[str, Any]:
    """How often the new config acts differently, in which regimes, and by how much.

    Returns ``decisions``, ``changed``, ``share_changed``, ``by_regime`` (label →
    ``{"decisions", "changed"}``), ``mean_max_change`` and ``max_change`` (absolute weight
    changes over the changed decisions; 0 when none).
    """
    changed = [c for c in changes if c.changed]
    by_regime: dict[str, dict[str, int]] = {}
    for change in changes:
        entry = by_regime.setdefault(change.regime, {"decisions": 0, "changed": 0})
        entry["decisions"] += 1
        entry["changed"] += int(change.changed)
    sizes = [c.max_change for c in changed]
    return {
        "decisions": len(changes),
        "changed": len(changed),
        "share_changed": len(changed) / len(changes) if changes else 0.0,
        "by_regime": by_regime,
        "mean_max_change": float(np.mean(sizes)) if sizes else 0.0,
        "max_change": float(np.max(sizes)) if sizes else 0.0,
    }
