"""Nautilus order and position events → forensics records (run on the bridge's worker thread).

Nautilus events are immutable, so the engine thread hands the event object itself to the queue and
the worker reads it later. The trace id is resolved on the engine thread (it depends on the order
of events) and travels with the event as the ``context``.
"""

import math
from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

import msgspec
from nautilus_trader.model.enums import LiquiditySide
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderAccepted
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderCancelRejected
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderEmulated
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderPendingCancel
from nautilus_trader.model.events import OrderPendingUpdate
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderReleased
from nautilus_trader.model.events import OrderSubmitted
from nautilus_trader.model.events import OrderTriggered
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.events import PositionChanged
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionEvent
from nautilus_trader.model.events import PositionOpened

from actors.forensics.codec import EncodedRecord
from actors.forensics.codec import Envelope
from actors.forensics.codec import EnvelopeEncoder
from actors.forensics.codec import record_envelope
from grodt.core.records import SCHEMA_VERSION
from grodt.core.records import OrderEventRecord
from grodt.core.records import PositionEventRecord
from grodt.core.records import RecordBase
from grodt.core.records import record_to_json

__all__ = [
    "ENVELOPE_ENCODERS",
    "encode_order_event",
    "encode_position_event",
    "nautilus_to_record",
    "nautilus_to_wire",
    "order_event_record",
    "position_event_record",
]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


_ENUM_NAMES: dict[tuple[type, Any], str] = {}


def _names(enum: Any) -> dict[Any, str]:
    return {member: member.name for member in enum}


# One table per enum (members of different Nautilus enums compare equal by value).
_ORDER_SIDE = _names(OrderSide)
_ORDER_TYPE = _names(OrderType)
_TIME_IN_FORCE = _names(TimeInForce)
_LIQUIDITY_SIDE = _names(LiquiditySide)


def _enum_name(value: Any) -> str | None:
    """An enum member's name (cached: ``Enum.name`` is a slow descriptor). Keyed by type too:
    Nautilus enums are int enums, and ``OrderType.LIMIT == LiquiditySide.TAKER``."""
    if value is None:
        return None
    key = (type(value), value)
    name = _ENUM_NAMES.get(key)
    if name is None:
        name = _ENUM_NAMES[key] = getattr(value, "name", None) or str(value)
    return name


def _initialized_fields(event: OrderEvent) -> dict[str, Any] | None:
    """What only ``OrderInitialized`` says about an order (None for other events)."""
    if not isinstance(event, OrderInitialized):
        return None
    options = event.options or {}
    contingency = event.contingency_type
    return {
        "side": event.side,
        "price": options.get("price"),
        "trigger_price": options.get("trigger_price"),
        "tags": list(event.tags or []),
        "parent_order_id": _text(event.parent_order_id),
        "order_list_id": _text(event.order_list_id),
        "contingency_type": _enum_name(contingency) if contingency else None,
        "reduce_only": bool(event.reduce_only),
    }


def order_event_record(event: OrderEvent, trace_id: str | None) -> OrderEventRecord:
    """One :class:`OrderEventRecord` per Nautilus order event.

    ``side`` is the order side; ``quantity``/``price``/``trigger_price`` are the order's (initial
    or updated) terms; ``last_qty``/``last_px``/``commission``/``trade_id`` describe a fill.
    """
    event_type = type(event).__name__
    init = _initialized_fields(event)
    side = init["side"] if init else getattr(event, "order_side", None)
    price = init["price"] if init else getattr(event, "price", None)
    trigger_price = init["trigger_price"] if init else getattr(event, "trigger_price", None)
    return OrderEventRecord(
        trace_id=trace_id or "",
        ts_event=event.ts_event,
        ts_init=event.ts_init,
        component_id=event.strategy_id.value,
        event_type=event_type,
        strategy_id=event.strategy_id.value,
        instrument_id=event.instrument_id.value,
        client_order_id=event.client_order_id.value,
        venue_order_id=_text(getattr(event, "venue_order_id", None)),
        side=_enum_name(side),
        quantity=_text(getattr(event, "quantity", None)),
        price=_text(price),
        last_qty=_text(getattr(event, "last_qty", None)),
        last_px=_text(getattr(event, "last_px", None)),
        commission=_text(getattr(event, "commission", None)),
        position_id=_text(getattr(event, "position_id", None)),
        reason=_text(getattr(event, "reason", None)) or None,
        order_type=_enum_name(getattr(event, "order_type", None)),
        time_in_force=_enum_name(getattr(event, "time_in_force", None)),
        trigger_price=_text(trigger_price),
        trade_id=_text(getattr(event, "trade_id", None)),
        liquidity_side=_enum_name(getattr(event, "liquidity_side", None)),
        tags=init["tags"] if init else [],
        parent_order_id=init["parent_order_id"] if init else None,
        order_list_id=init["order_list_id"] if init else None,
        contingency_type=init["contingency_type"] if init else None,
        reduce_only=init["reduce_only"] if init else None,
    )


def position_event_record(
    event: PositionEvent,
    client_order_id: str | None,
    trace_id: str | None,
) -> PositionEventRecord:
    """One :class:`PositionEventRecord` per Nautilus position event; ``client_order_id`` is the
    order whose fill caused it."""
    closed = isinstance(event, PositionClosed)
    return PositionEventRecord(
        trace_id=trace_id or "",
        ts_event=event.ts_event,
        ts_init=event.ts_init,
        component_id=event.strategy_id.value,
        event_type=type(event).__name__,
        strategy_id=event.strategy_id.value,
        instrument_id=event.instrument_id.value,
        position_id=event.position_id.value,
        client_order_id=client_order_id or "",
        side=_enum_name(event.side) or "",
        signed_qty=float(event.signed_qty),
        quantity=str(event.quantity),
        peak_qty=_text(event.peak_qty),
        last_qty=_text(event.last_qty),
        last_px=_text(event.last_px),
        avg_px_open=float(event.avg_px_open),
        avg_px_close=float(event.avg_px_close),
        realized_return=float(event.realized_return),
        realized_pnl=_text(event.realized_pnl),
        unrealized_pnl=_text(event.unrealized_pnl),
        duration_ns=int(event.duration_ns) if closed else None,
    )


def nautilus_to_record(item: Any, context: Any) -> RecordBase:
    """The bridge's converter: order events carry ``context = trace_id``, position events
    ``context = (client_order_id, trace_id)``."""
    if isinstance(item, OrderEvent):
        return order_event_record(item, context)
    if isinstance(item, PositionEvent):
        client_order_id, trace_id = context if context else (None, None)
        return position_event_record(item, client_order_id, trace_id)
    raise TypeError(f"not a forensics record or Nautilus event: {type(item).__name__}")


# -- Fast wire encoding (the bridge's path) --------------------------------------------------------
#
# Building a validated pydantic record per order event costs more than the event itself (26
# fields, ~20 µs on the reference box). The bridge encodes events straight to the same wire JSON
# with msgspec structs that mirror the records field by field; tests check byte equality with
# ``record_to_json(order_event_record(...))`` on every event of a backtest. Values that msgspec
# would print differently (non-finite floats, floats ≥ 1e16) take the pydantic path.


class _OrderEventWire(msgspec.Struct):
    record_type: str
    schema_version: int
    trace_id: str
    ts_event: int
    ts_init: int
    component_id: str
    model_versions: dict[str, str]
    event_type: str
    strategy_id: str
    instrument_id: str
    client_order_id: str
    venue_order_id: str | None
    side: str | None
    quantity: str | None
    price: str | None
    last_qty: str | None
    last_px: str | None
    commission: str | None
    position_id: str | None
    reason: str | None
    order_type: str | None
    time_in_force: str | None
    trigger_price: str | None
    trade_id: str | None
    liquidity_side: str | None
    tags: list[str]
    parent_order_id: str | None
    order_list_id: str | None
    contingency_type: str | None
    reduce_only: bool | None


class _PositionEventWire(msgspec.Struct):
    record_type: str
    schema_version: int
    trace_id: str
    ts_event: int
    ts_init: int
    component_id: str
    model_versions: dict[str, str]
    event_type: str
    strategy_id: str
    instrument_id: str
    position_id: str
    client_order_id: str
    side: str
    signed_qty: float
    quantity: str
    peak_qty: str | None
    last_qty: str | None
    last_px: str | None
    avg_px_open: float
    avg_px_close: float | None
    realized_return: float | None
    realized_pnl: str | None
    unrealized_pnl: str | None
    duration_ns: int | None


def _wire_fields_match() -> None:
    """Import-time guard: the wire structs mirror the records exactly (names and order)."""
    for struct, record in (
        (_OrderEventWire, OrderEventRecord),
        (_PositionEventWire, PositionEventRecord),
    ):
        expected = ("record_type", *record.model_fields)
        if struct.__struct_fields__ != expected:
            raise RuntimeError(f"{struct.__name__} no longer mirrors {record.__name__}")


_wire_fields_match()
_encode = msgspec.json.Encoder().encode
_ORDER_EVENT = OrderEventRecord.record_type
_POSITION_EVENT = PositionEventRecord.record_type
_NO_VERSIONS: dict[str, str] = {}
"""The ``model_versions`` of every event record (shared: the encoder only reads it)."""


def _wire_float(value: float) -> bool:
    return math.isfinite(value) and abs(value) < 1e16


_AMOUNT_TEXT: dict[tuple[int, int], str] = {}
_AMOUNT_TEXT_MAX = 65_536


def _amount_text(value: Any) -> str:
    """``str()`` of a Nautilus ``Price`` or ``Quantity`` (never ``Money``), memoised.

    ``str()`` builds a ``Decimal`` from the raw value and formats it (~1 µs); it is a function of
    ``(raw, precision)`` alone, which ``__getstate__`` returns in one call, and the same few
    thousand prices and quantities recur all run. The table is cleared when full."""
    key = value.__getstate__()
    text = _AMOUNT_TEXT.get(key)
    if text is None:
        if len(_AMOUNT_TEXT) >= _AMOUNT_TEXT_MAX:
            _AMOUNT_TEXT.clear()
        text = _AMOUNT_TEXT[key] = str(value)
    return text


def _amount_or_none(value: Any) -> str | None:
    return None if value is None else _amount_text(value)


# The optional fields of an order event, in record order: venue_order_id, side, quantity, price,
# last_qty, last_px, commission, position_id, reason, order_type, time_in_force, trigger_price,
# trade_id, liquidity_side, tags, parent_order_id, order_list_id, contingency_type, reduce_only.
_Details = tuple[Any, ...]


def _details_generic(event: Any) -> _Details:
    init = _initialized_fields(event)
    side = init["side"] if init else getattr(event, "order_side", None)
    price = init["price"] if init else getattr(event, "price", None)
    trigger_price = init["trigger_price"] if init else getattr(event, "trigger_price", None)
    return (
        _text(getattr(event, "venue_order_id", None)),
        _enum_name(side),
        _text(getattr(event, "quantity", None)),
        _text(price),
        _text(getattr(event, "last_qty", None)),
        _text(getattr(event, "last_px", None)),
        _text(getattr(event, "commission", None)),
        _text(getattr(event, "position_id", None)),
        _text(getattr(event, "reason", None)) or None,
        _enum_name(getattr(event, "order_type", None)),
        _enum_name(getattr(event, "time_in_force", None)),
        _text(trigger_price),
        _text(getattr(event, "trade_id", None)),
        _enum_name(getattr(event, "liquidity_side", None)),
        init["tags"] if init else [],
        init["parent_order_id"] if init else None,
        init["order_list_id"] if init else None,
        init["contingency_type"] if init else None,
        init["reduce_only"] if init else None,
    )


def _details_initialized(event: Any) -> _Details:
    options = event.options or {}
    contingency = event.contingency_type
    price = options.get("price")
    trigger_price = options.get("trigger_price")
    return (
        None,
        _ORDER_SIDE[event.side],
        _amount_text(event.quantity),
        None if price is None else str(price),
        None,
        None,
        None,
        None,
        None,
        _ORDER_TYPE[event.order_type],
        _TIME_IN_FORCE[event.time_in_force],
        None if trigger_price is None else str(trigger_price),
        None,
        None,
        list(event.tags or []),
        _text(event.parent_order_id),
        _text(event.order_list_id),
        _enum_name(contingency) if contingency else None,
        bool(event.reduce_only),
    )


def _details_filled(event: Any) -> _Details:
    return (
        _text(event.venue_order_id),
        _ORDER_SIDE[event.order_side],
        None,
        None,
        _amount_text(event.last_qty),
        _amount_text(event.last_px),
        _text(event.commission),
        _text(event.position_id),
        None,
        _ORDER_TYPE[event.order_type],
        None,
        None,
        _text(event.trade_id),
        _LIQUIDITY_SIDE[event.liquidity_side],
        [],
        None,
        None,
        None,
        None,
    )


def _details_plain(event: Any) -> _Details:
    """Events that only carry ids (submitted, accepted, canceled, ...)."""
    venue_order_id = event.venue_order_id
    return (
        None if venue_order_id is None else str(venue_order_id),
        *_NONE_13,
        [],
        *_NONE_4,
    )


def _details_reason(event: Any) -> _Details:
    venue_order_id = event.venue_order_id
    return (
        None if venue_order_id is None else str(venue_order_id),
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        str(event.reason) or None,
        *_NONE_5,
        [],
        *_NONE_4,
    )


_NONE_4 = (None,) * 4
_NONE_5 = (None,) * 5
_NONE_13 = (None,) * 13
_DETAILS: dict[type, Callable[[Any], _Details]] = {
    OrderInitialized: _details_initialized,
    OrderFilled: _details_filled,
    OrderSubmitted: _details_plain,
    OrderAccepted: _details_plain,
    OrderCanceled: _details_plain,
    OrderExpired: _details_plain,
    OrderTriggered: _details_plain,
    OrderPendingUpdate: _details_plain,
    OrderPendingCancel: _details_plain,
    OrderEmulated: _details_plain,
    OrderDenied: _details_reason,
    OrderRejected: _details_reason,
    OrderUpdated: _details_generic,
    OrderReleased: _details_generic,
    OrderModifyRejected: _details_generic,
    OrderCancelRejected: _details_generic,
}
"""Per event class: its optional fields without probing absent attributes (the generic path
covers the rest). Byte equality with :func:`order_event_record` is tested on real runs."""


def _order_encoder(event_type: str | None, details: Callable[[Any], _Details]) -> EnvelopeEncoder:
    """The envelope encoder of one order event class (``event_type`` its name; None: any class,
    named at each call)."""

    def encode(
        event: Any,
        trace_id: str | None,
        session: str,
        seq: int,
        topic: str,
    ) -> Envelope:
        strategy_id = event.strategy_id.value
        instrument_id = event.instrument_id.value
        trace = trace_id or ""
        ts_event = event.ts_event
        ts_init = event.ts_init
        wire = _OrderEventWire(
            _ORDER_EVENT,
            SCHEMA_VERSION,
            trace,
            ts_event,
            ts_init,
            strategy_id,
            _NO_VERSIONS,
            event_type or type(event).__name__,
            strategy_id,
            instrument_id,
            event.client_order_id.value,
            *details(event),
        )
        return Envelope(
            session,
            seq,
            topic,
            f"{strategy_id}/{instrument_id}",
            _ORDER_EVENT,
            trace,
            ts_event,
            ts_init,
            strategy_id,
            _encode(wire),
        )

    return encode


_encode_any_order_event = _order_encoder(None, _details_generic)


def _position_envelope(
    event: Any,
    context: tuple[str | None, str | None] | None,
    session: str,
    seq: int,
    topic: str,
) -> Envelope:
    """The envelope encoder of position events; ``context = (client_order_id, trace_id)``."""
    client_order_id, trace_id = context if context else (None, None)
    signed_qty = float(event.signed_qty)
    avg_px_open = float(event.avg_px_open)
    avg_px_close = float(event.avg_px_close)
    realized_return = float(event.realized_return)
    if not (
        _wire_float(signed_qty)
        and _wire_float(avg_px_open)
        and _wire_float(avg_px_close)
        and _wire_float(realized_return)
    ):
        record = position_event_record(event, client_order_id, trace_id)
        return record_envelope(record, session, seq, topic, record_to_json(record))
    strategy_id = event.strategy_id.value
    instrument_id = event.instrument_id.value
    trace = trace_id or ""
    ts_event = event.ts_event
    ts_init = event.ts_init
    wire = _PositionEventWire(
        _POSITION_EVENT,
        SCHEMA_VERSION,
        trace,
        ts_event,
        ts_init,
        strategy_id,
        _NO_VERSIONS,
        type(event).__name__,
        strategy_id,
        instrument_id,
        event.position_id.value,
        client_order_id or "",
        _enum_name(event.side) or "",
        signed_qty,
        _amount_text(event.quantity),
        _amount_or_none(event.peak_qty),
        _amount_or_none(event.last_qty),
        _amount_or_none(event.last_px),
        avg_px_open,
        avg_px_close,
        realized_return,
        _text(event.realized_pnl),
        _text(event.unrealized_pnl),
        int(event.duration_ns) if isinstance(event, PositionClosed) else None,
    )
    return Envelope(
        session,
        seq,
        topic,
        f"{strategy_id}/{instrument_id}",
        _POSITION_EVENT,
        trace,
        ts_event,
        ts_init,
        strategy_id,
        _encode(wire),
    )


ENVELOPE_ENCODERS: Mapping[type, EnvelopeEncoder] = {
    **{cls: _order_encoder(cls.__name__, details) for cls, details in _DETAILS.items()},
    PositionOpened: _position_envelope,
    PositionChanged: _position_envelope,
    PositionClosed: _position_envelope,
}
"""The bridge's envelope encoders by exact event class (other classes take
:func:`nautilus_to_wire`)."""


def _encoded(envelope: Envelope) -> EncodedRecord:
    return EncodedRecord(
        envelope.record_type,
        envelope.key,
        envelope.trace_id,
        envelope.ts_event,
        envelope.ts_init,
        envelope.component_id,
        envelope.value,
    )


def encode_order_event(event: OrderEvent, trace_id: str | None) -> EncodedRecord:
    """The wire form of :func:`order_event_record` (same bytes), without building the record."""
    encode = ENVELOPE_ENCODERS.get(type(event), _encode_any_order_event)
    return _encoded(encode(event, trace_id, "", 0, ""))


def encode_position_event(
    event: PositionEvent,
    client_order_id: str | None,
    trace_id: str | None,
) -> EncodedRecord:
    """The wire form of :func:`position_event_record` (same bytes)."""
    return _encoded(_position_envelope(event, (client_order_id, trace_id), "", 0, ""))


class _NautilusToWire:
    """The bridge's converter (fast path of :func:`nautilus_to_record`): a Nautilus event and
    its context → :class:`~actors.forensics.codec.EncodedRecord`.

    Its :attr:`envelope_encoders` let :class:`~actors.forensics.encoder.RecordEncoder` encode
    the usual event classes straight into envelopes (same bytes, fewer objects per event)."""

    envelope_encoders: Mapping[type, EnvelopeEncoder] = ENVELOPE_ENCODERS

    def __call__(self, item: Any, context: Any) -> EncodedRecord:
        if isinstance(item, OrderEvent):
            return encode_order_event(item, context)
        if isinstance(item, PositionEvent):
            client_order_id, trace_id = context if context else (None, None)
            return encode_position_event(item, client_order_id, trace_id)
        raise TypeError(f"not a forensics record or Nautilus event: {type(item).__name__}")


nautilus_to_wire = _NautilusToWire()
