"""Decision-forensics record contracts (pydantic v2).

Every "why" in grodt is one of these records: a strategy's decision, the risk gate's verdict, the
meta-controller's allocation, a regime update, and order/fill event summaries. They share an
envelope (:class:`RecordBase`) whose ``trace_id`` follows one decision through its verdict, order
and fills.

How the trace id travels: a strategy creates it when it decides (:func:`make_trace_id`), stores it
in the order's tags as ``trace_id=<id>`` (:func:`trace_tag`), and publishes its
:class:`DecisionRecord`. The risk gate reads the tag from the submitted order; the forensics bridge
reads it from ``OrderInitialized.tags`` and stamps every later event of that order.

Records are built only when something is decided, never per bar, and are published on the message
bus (:class:`grodt.messages.Topics`); serialisation happens off the engine thread.
"""

from typing import Any
from typing import ClassVar
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field

SCHEMA_VERSION = 1
"""Major version of the record contracts. See docs/forensics.md for the compatibility rule."""

TRACE_TAG_PREFIX = "trace_id="


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
        The producing component (strategy id, actor id, ``RiskGate``).
    model_versions : dict[str, str]
        Versions of the models that informed the record (e.g. ``{"regime": "hmm-3f2a"}``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

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

    model_config = ConfigDict(extra="forbid", frozen=True)

    strength: float = Field(ge=-1.0, le=1.0)
    expected_return: float = 0.0
    uncertainty: float = Field(default=0.0, ge=0.0)
    horizon_bars: int = Field(default=1, ge=0)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class IntendedOrder(BaseModel):
    """The order a decision intends to submit (quantities and prices as decimal strings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    client_order_id: str | None = None
    side: Literal["BUY", "SELL"]
    order_type: str = "MARKET"
    quantity: str
    price: str | None = None
    stop_loss: str | None = None
    take_profit: str | None = None
    reduce_only: bool = False


class DecisionRecord(RecordBase):
    """An entry or exit decision of a strategy."""

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


class RiskVerdictRecord(RecordBase):
    """The portfolio risk gate's verdict on one order submission (approvals included)."""

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
    """The meta-controller's capital allocation across strategies."""

    record_type: ClassVar[str] = "allocation"

    weights: dict[str, float]
    predicted_performance: dict[str, float] = Field(default_factory=dict)
    reason: str = ""


class RegimeUpdateRecord(RecordBase):
    """A regime model's filtered probabilities (sampled: on refits and label changes)."""

    record_type: ClassVar[str] = "regime_update"

    instrument_id: str
    probabilities: dict[str, float]
    most_likely: str
    entropy: float = Field(ge=0.0)
    reason: str = ""


class OrderEventRecord(RecordBase):
    """Summary of one order or fill event, stamped with the order's trace id."""

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


RECORD_TYPES: dict[str, type[RecordBase]] = {
    cls.record_type: cls
    for cls in (
        DecisionRecord,
        RiskVerdictRecord,
        AllocationRecord,
        RegimeUpdateRecord,
        OrderEventRecord,
    )
}
