"""Decision-forensics record contracts (pydantic v2).

Every "why" in grodt is one of these records: a strategy's decision, the risk gate's verdict, the
meta-controller's allocation, a regime update, and order, fill and position event summaries. They
share an envelope (:class:`RecordBase`) whose ``trace_id`` follows one decision through its
verdict, order and fills.

How the trace id travels: a strategy creates it when it decides (:func:`make_trace_id`), stores it
in the order's tags as ``trace_id=<id>`` (:func:`trace_tag`), and publishes its
:class:`DecisionRecord`. The risk gate reads the tag from the submitted order; the forensics bridge
reads it from ``OrderInitialized.tags`` and stamps every later event of that order, and every
position event the order's fills cause.

Records are built only when something is decided, never per bar, and are published on the message
bus (:class:`grodt.core.topics.Topics`); serialisation happens off the engine thread.

Wire format (Kafka value, spill file, Parquet ``payload`` column): one JSON object, the record's
fields preceded by ``"record_type"`` (:func:`record_to_json`). Floats that are not finite are
written as the strings ``"NaN"``, ``"Infinity"`` and ``"-Infinity"`` (standard JSON has no such
numbers) and read back as floats. :func:`record_from_json` reads any record type back.

Compatibility rule (docs/forensics.md): within one :data:`SCHEMA_VERSION`, changes are additive
only — a new optional field with a default, a new record type. Producers are strict (unknown
fields are errors), readers are tolerant (unknown fields are ignored and reported), so a reader
one revision behind still reads newer records. Renaming, removing or retyping a field, changing
its unit or meaning, tightening a constraint or adding a value to a ``Literal`` bumps
``SCHEMA_VERSION``; readers refuse records of a newer major version instead of misreading them.
"""

import json
import types
import typing
from collections.abc import Mapping
from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError

from grodt.core.errors import GrodtError

SCHEMA_VERSION = 1
"""Major version of the record contracts. See docs/forensics.md for the compatibility rule."""

TRACE_TAG_PREFIX = "trace_id="

_MODEL_CONFIG = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


class RecordDecodeError(GrodtError):
    """A serialised record cannot be read: bad JSON, unknown type, newer schema or invalid fields.

    The message names the record type and the offending field path.
    """


def make_trace_id(component_id: str, ts_ns: int, sequence: int) -> str:
    """A trace id unique within a run and identical across backtest and live replays.

    Parameters
    ----------
    component_id : str
        The deciding component (strategy or actor id).
    ts_ns : int
        Decision time, UNIX nanoseconds.
    sequence : int
        The component's decision counter (distinguishes decisions at the same timestamp).
    """
    return f"{component_id}:{ts_ns}:{sequence}"


def trace_tag(trace_id: str) -> str:
    """The order tag carrying ``trace_id``."""
    return TRACE_TAG_PREFIX + trace_id


def trace_id_from_tags(tags: list[str] | None) -> str | None:
    """The trace id stored in an order's tags, if any."""
    if not tags:
        return None
    for tag in tags:
        if tag.startswith(TRACE_TAG_PREFIX):
            return tag[len(TRACE_TAG_PREFIX) :]
    return None


class RecordBase(BaseModel):
    """Envelope shared by every forensics record.

    Attributes
    ----------
    schema_version : int
        Contract major version (:data:`SCHEMA_VERSION`).
    trace_id : str
        Follows one decision through verdict, order and fills ("" for records outside a trace).
    ts_event : int
        When the recorded thing happened, UNIX nanoseconds.
    ts_init : int
        When the record was created, UNIX nanoseconds.
    component_id : str
        The producing component (strategy id, actor id, ``RiskGate``); for order and position
        events, the strategy that owns the order.
    model_versions : dict[str, str]
        Versions of the models that informed the record (e.g. ``{"regime": "hmm-3f2a"}``).
    """

    model_config = _MODEL_CONFIG

    record_type: ClassVar[str] = "base"

    schema_version: int = SCHEMA_VERSION
    trace_id: str = ""
    ts_event: int = Field(ge=0)
    ts_init: int = Field(ge=0)
    component_id: str
    model_versions: dict[str, str] = Field(default_factory=dict)


class Signal(BaseModel):
    """A strategy's view when deciding.

    Attributes
    ----------
    strength : float
        Signed signal strength in [-1, 1] (+ long, - short).
    expected_return : float
        Expected return μ over the horizon, as a fraction of price.
    uncertainty : float
        Uncertainty σ of that return, as a fraction of price.
    horizon_bars : int
        Horizon of μ and σ, in bars.
    confidence : float
        Confidence in [0, 1].
    """

    model_config = _MODEL_CONFIG

    strength: float = Field(ge=-1.0, le=1.0)
    expected_return: float = 0.0
    uncertainty: float = Field(default=0.0, ge=0.0)
    horizon_bars: int = Field(default=1, ge=0)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class IntendedOrder(BaseModel):
    """The order a decision intends to submit (quantities and prices as decimal strings;
    ``time_in_force`` as Nautilus names it, ``GTC``: additive, None in older records)."""

    model_config = _MODEL_CONFIG

    client_order_id: str | None = None
    side: Literal["BUY", "SELL"]
    order_type: str = "MARKET"
    quantity: str
    price: str | None = None
    stop_loss: str | None = None
    take_profit: str | None = None
    reduce_only: bool = False
    time_in_force: str | None = None


class DecisionRecord(RecordBase):
    """An entry, exit or adjustment decision of a strategy.

    Attributes
    ----------
    strategy_id, instrument_id : str
        Who decided, on what.
    action : {"entry", "exit", "adjust"}
        What kind of decision.
    reason : str
        Human-readable cause (the rule that fired).
    features : dict[str, float]
        Snapshot of the inputs (indicator values, prices) at the decision; NaN allowed.
    regime_probabilities : dict[str, float]
        The regime probabilities the strategy acted on, keyed by label.
    signal : Signal
        μ, σ, horizon and confidence behind the decision.
    allocation_weight : float
        The strategy's capital weight when deciding, in [0, 1].
    intended_order : IntendedOrder | None
        The order the decision sends (None when it decides not to trade).
    specialist_actions : dict[str, float]
        A policy strategy's proposals: each specialist's target position in [-1, 1], keyed by
        its regime label (``strategies.rl_ensemble``); empty for rule strategies.
    blend_weights : dict[str, float]
        The weight of each specialist in the blended action (they sum to 1); empty for rule
        strategies.
    blended_action : float | None
        The blended target position in [-1, 1] the decision steers to (None for rule
        strategies).
    allocation_trace_id : str
        Trace id of the meta-controller's allocation in force (its ``AllocationRecord``); ""
        while the strategy runs on its YAML weight.
    observation : list[float]
        A policy strategy's model input as the model saw it (``strategies.rl_ensemble``: the
        normalised feature row, then the position input; float32 values widened to float);
        empty for rule strategies and bars without a proposal.
    blend_mode : str
        A policy strategy's ``blend_mode`` (``blend``, ``hard``, ``always_on``, ``scripted``);
        "" for rule strategies.
    regime_most_likely : str | None
        The single most likely regime label the strategy held (None: no regime record yet, or
        a tie); ``hard`` blending chooses by it. Set by the RL ensemble.
    sizing_inputs : dict[str, float]
        A policy strategy's numbers from the action to the order (the decided action, equity,
        held quantity, price, lot, fee, free cash, ...; ``strategies.rl_ensemble.TargetInputs``
        names them): what deterministic replay (``grodt.forensics.ensemble_replay``) feeds to
        the same sizing code. A rule strategy's: what its decision read besides its features
        (equity, cap, free cash, fee, instrument lot/tick/multiplier, config risk terms, the
        position and lifecycle state, the bar; ``strategies.decisions.DecisionInputs`` names
        them) for ``grodt.forensics.decision_replay``. NaN allowed.
    """

    record_type: ClassVar[str] = "decision"

    strategy_id: str
    instrument_id: str
    action: Literal["entry", "exit", "adjust"]
    reason: str
    features: dict[str, float] = Field(default_factory=dict)
    regime_probabilities: dict[str, float] = Field(default_factory=dict)
    signal: Signal
    allocation_weight: float = Field(ge=0.0)
    intended_order: IntendedOrder | None = None
    specialist_actions: dict[str, float] = Field(default_factory=dict)
    blend_weights: dict[str, float] = Field(default_factory=dict)
    blended_action: float | None = None
    allocation_trace_id: str = ""
    observation: list[float] = Field(default_factory=list)
    blend_mode: str = ""
    regime_most_likely: str | None = None
    sizing_inputs: dict[str, float] = Field(default_factory=dict)


class RiskVerdictRecord(RecordBase):
    """The portfolio risk gate's verdict on one order submission (approvals included).

    Quantities are decimal strings; ``equity`` and exposures are in the account's base currency.
    """

    record_type: ClassVar[str] = "risk_verdict"

    strategy_id: str
    instrument_id: str
    client_order_id: str
    verdict: Literal["approve", "resize", "deny"]
    reason: str = ""
    requested_quantity: str
    approved_quantity: str
    equity: float
    gross_exposure: float
    net_exposure: float
    weights: dict[str, float] = Field(default_factory=dict)
    limits: dict[str, Any] = Field(default_factory=dict)


class AllocationRecord(RecordBase):
    """The meta-controller's capital allocation across strategies (weights as fractions of
    equity)."""

    record_type: ClassVar[str] = "allocation"

    weights: dict[str, float]
    predicted_performance: dict[str, float] = Field(default_factory=dict)
    reason: str = ""
    # Additive fields (schema 1; docs/meta.md, the contract with policy evaluation): absent in
    # older records. ``policy``: "predictive" | "bandit" | "static" (also a fallback) |
    # "trailing_sharpe"; ``context``: the flat input vector the policy saw; ``quantiles``:
    # strategy → {"q10", "q50", "q90"} (returns per unit of allocation over the next window);
    # ``bounds_hit``: the constraints that bound ("max_step", "switched_off:<id>", …);
    # ``action_index``/``action_probabilities``/``propensity``: the bandit's choice and the
    # distribution it was drawn from; ``realised_return``: the portfolio's return (fraction)
    # over the window since the previous rebalance, under the previous weights.
    policy: str = "static"
    previous_weights: dict[str, float] = Field(default_factory=dict)
    context: dict[str, float] = Field(default_factory=dict)
    quantiles: dict[str, dict[str, float]] = Field(default_factory=dict)
    bounds_hit: list[str] = Field(default_factory=list)
    fallback_reason: str = ""
    model_version: str = ""
    action_index: int | None = None
    action_probabilities: list[float] = Field(default_factory=list)
    propensity: float | None = None
    realised_return: float | None = None
    # Additive (schema 1, second revision): ``exploration_frozen``: the meta-controller chose
    # without exploring (a change point on ``Topics.REGIME`` less than its
    # ``exploration_freeze_bars`` clock bars ago; ``changepoint_trace_id`` names that
    # RegimeUpdateRecord, ``bars_since_changepoint`` counts the clock bars after its bar, None
    # before any); ``correlation``: the strategies' return correlation the predictive allocator
    # used (rows and columns in the order of ``weights``; empty for other policies);
    # ``calibration_coverage``/``calibration_outcomes``: the predictive policy's coverage monitor
    # (realised coverage of its interval over the outcomes in its window) at this decision.
    exploration_frozen: bool = False
    changepoint_trace_id: str = ""
    bars_since_changepoint: int | None = None
    correlation: list[list[float]] = Field(default_factory=list)
    calibration_coverage: float | None = None
    calibration_outcomes: int = 0
    # Additive (schema 1, third revision): ``model_control``: the monitors' requests on
    # MODEL_CONTROL_TOPIC the meta-controller took since its previous rebalance, in order
    # ("retrain from <source>: <reason>", "fallback from …"); replay makes the same refit due.
    model_control: list[str] = Field(default_factory=list)


class RegimeUpdateRecord(RecordBase):
    """A regime model's filtered probabilities (sampled: on refits and label changes)."""

    record_type: ClassVar[str] = "regime_update"

    instrument_id: str
    probabilities: dict[str, float]
    most_likely: str
    entropy: float = Field(ge=0.0)
    reason: str = ""


class MonitorRecord(RecordBase):
    """A monitor's threshold crossed (additive, schema 1): which monitor, what it watches, the
    live figures beside the expectation they were held to, and the action asked for
    (``log``, ``retrain`` or ``fallback``). Published on ``Topics.REGIME`` (the model
    lifecycle's stream), e.g. by ``actors.strategy_monitor``."""

    record_type: ClassVar[str] = "monitor"

    monitor: str
    subject: str
    figures: dict[str, float] = Field(default_factory=dict)
    expected: dict[str, float] = Field(default_factory=dict)
    action: str = "log"
    reason: str = ""


class OrderEventRecord(RecordBase):
    """Summary of one order or fill event, stamped with the order's trace id.

    ``event_type`` is the Nautilus event class name (``OrderInitialized``, ``OrderFilled``, ...).
    Quantities, prices and money are decimal strings as Nautilus prints them (money with its
    currency, e.g. ``"1.25 USD"``). ``parent_order_id``, ``order_list_id``, ``contingency_type``
    and ``reduce_only`` describe the order at ``OrderInitialized`` (bracket children name their
    entry as parent).
    """

    record_type: ClassVar[str] = "order_event"

    event_type: str
    strategy_id: str
    instrument_id: str
    client_order_id: str
    venue_order_id: str | None = None
    side: str | None = None
    quantity: str | None = None
    price: str | None = None
    last_qty: str | None = None
    last_px: str | None = None
    commission: str | None = None
    position_id: str | None = None
    reason: str | None = None
    # Additive fields (schema 1, after the first revision): absent in older records.
    order_type: str | None = None
    time_in_force: str | None = None
    trigger_price: str | None = None
    trade_id: str | None = None
    liquidity_side: str | None = None
    tags: list[str] = Field(default_factory=list)
    parent_order_id: str | None = None
    order_list_id: str | None = None
    contingency_type: str | None = None
    reduce_only: bool | None = None


class PositionEventRecord(RecordBase):
    """Summary of one position event (opened, changed, closed), stamped with the trace id of the
    order whose fill caused it.

    Quantities and money are decimal strings; ``avg_px_*`` are prices as floats;
    ``realized_return`` is a fraction; ``duration_ns`` is nanoseconds (closed positions).
    """

    record_type: ClassVar[str] = "position_event"

    event_type: str
    strategy_id: str
    instrument_id: str
    position_id: str
    client_order_id: str = ""
    side: str
    signed_qty: float
    quantity: str
    peak_qty: str | None = None
    last_qty: str | None = None
    last_px: str | None = None
    avg_px_open: float
    avg_px_close: float | None = None
    realized_return: float | None = None
    realized_pnl: str | None = None
    unrealized_pnl: str | None = None
    duration_ns: int | None = None


RECORD_TYPES: dict[str, type[RecordBase]] = {
    cls.record_type: cls
    for cls in (
        DecisionRecord,
        RiskVerdictRecord,
        AllocationRecord,
        RegimeUpdateRecord,
        OrderEventRecord,
        PositionEventRecord,
        MonitorRecord,
    )
}
"""Record classes by their ``record_type``."""


# -- Serialisation ---------------------------------------------------------------------------------


def record_to_json(record: RecordBase) -> bytes:
    """The wire form of ``record``: its JSON with ``"record_type"`` as the first key.

    Raises ``pydantic_core.PydanticSerializationError`` when a field holds a value of the wrong
    type (possible for records built with ``model_construct``, which skips validation).
    """
    body = type(record).__pydantic_serializer__.to_json(record, warnings="error")
    return b'{"record_type":"' + record.record_type.encode() + b'",' + body[1:]


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The pydantic model inside ``annotation`` (``Model`` or ``Model | None``), if any."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            model = _model_of(arg)
            if model is not None:
                return model
    return None


def _prune_unknown(
    model: type[BaseModel],
    data: Mapping[str, Any],
    path: str,
    unknown: list[str],
) -> dict[str, Any]:
    """Drop keys ``model`` does not know (recursively into nested models), noting their paths."""
    pruned: dict[str, Any] = {}
    for key, value in data.items():
        field = model.model_fields.get(key)
        if field is None:
            unknown.append(f"{path}{key}")
            continue
        nested = _model_of(field.annotation)
        if nested is not None and isinstance(value, Mapping):
            value = _prune_unknown(nested, value, f"{path}{key}.", unknown)
        pruned[key] = value
    return pruned


def record_from_dict(
    data: Mapping[str, Any],
    tolerant: bool = True,
    unknown_fields: list[str] | None = None,
) -> RecordBase:
    """Read a record from its decoded JSON object (``record_type`` key included).

    Parameters
    ----------
    data : Mapping[str, Any]
        The JSON object.
    tolerant : bool, default True
        Ignore fields this version does not know (forward compatibility); when False they are
        errors.
    unknown_fields : list[str], optional
        Receives the dotted paths of ignored fields.

    Raises
    ------
    RecordDecodeError
        Unknown record type, a newer schema version, or invalid fields (named).
    """
    record_type = data.get("record_type")
    cls = RECORD_TYPES.get(record_type) if isinstance(record_type, str) else None
    if cls is None:
        raise RecordDecodeError(
            f"unknown record_type {record_type!r} (known: {', '.join(sorted(RECORD_TYPES))})",
        )
    version = data.get("schema_version", SCHEMA_VERSION)
    if isinstance(version, int) and version > SCHEMA_VERSION:
        raise RecordDecodeError(
            f"{record_type}: schema_version {version} is newer than this reader's "
            f"{SCHEMA_VERSION}; upgrade grodt to read it",
        )
    fields = {k: v for k, v in data.items() if k != "record_type"}
    if tolerant:
        found: list[str] = []
        fields = _prune_unknown(cls, fields, "", found)
        if unknown_fields is not None:
            unknown_fields.extend(found)
    try:
        return cls.model_validate(fields)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}"
            for err in e.errors()
        )
        raise RecordDecodeError(f"{record_type}: invalid record: {problems}") from None


def record_from_json(
    raw: bytes | str,
    tolerant: bool = True,
    unknown_fields: list[str] | None = None,
) -> RecordBase:
    """Read a record from its wire form (see :func:`record_to_json`, :func:`record_from_dict`)."""
    try:
        data = json.loads(raw)
    except ValueError as e:
        raise RecordDecodeError(f"not a JSON record: {e}") from None
    if not isinstance(data, dict):
        raise RecordDecodeError(f"a record is a JSON object, got {type(data).__name__}")
    return record_from_dict(data, tolerant=tolerant, unknown_fields=unknown_fields)


def record_json_dict(record: RecordBase) -> dict[str, Any]:
    """The record as its JSON object (``record_type`` first; non-finite floats as strings)."""
    return json.loads(record_to_json(record))
