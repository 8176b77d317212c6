"""The bridge's unit of transport: an :class:`Envelope` (routing, identity, encoded record), its
partition key, its Kafka headers and its spill-file line.

Identity: every record the bridge accepts gets ``(session, seq)`` — the bridge session (sortable by
start time) and a gapless sequence number within it, in the order records reached the bridge. The
pair travels in Kafka headers, spill lines and Parquet columns; it is what readers deduplicate on
and what proves per-key order (``seq`` increases along each key).
"""

from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import msgspec

from grodt.core.records import RecordBase

__all__ = [
    "HEADER_RECORD_TYPE",
    "HEADER_SEQ",
    "HEADER_SESSION",
    "HEADER_TRACE_ID",
    "EncodedRecord",
    "Envelope",
    "EnvelopeEncoder",
    "envelope_from_line",
    "envelope_to_line",
    "header_value",
    "record_envelope",
    "record_key",
]

HEADER_SESSION = "grodt-session"
HEADER_SEQ = "grodt-seq"
HEADER_RECORD_TYPE = "grodt-record-type"
HEADER_TRACE_ID = "grodt-trace-id"


@dataclass(slots=True)
class Envelope:
    """One encoded record ready for a sink.

    Attributes
    ----------
    session : str
        The bridge session that accepted the record (``<start ns, 19 digits>-<random>``).
    seq : int
        Position in the session's stream, from 1, gapless across all topics.
    topic : str
        Destination topic (Kafka topic; Parquet folder name).
    key : str
        Partition key (:func:`record_key`): order is kept per key.
    record_type, trace_id, ts_event, ts_init, component_id
        Copied from the record (ns timestamps) for routing and columnar storage.
    value : bytes
        The record's wire form (:func:`grodt.core.records.record_to_json`).
    from_spill : bool
        Read back from a spill file (counts as "replayed" once delivered).
    attempts : int
        Failed delivery attempts so far.
    report_to : callable, optional
        Where :meth:`__call__` sends the envelope's Kafka delivery report (set by the Kafka sink;
        not part of the envelope's identity or of any stored form).
    """

    session: str
    seq: int
    topic: str
    key: str
    record_type: str
    trace_id: str
    ts_event: int
    ts_init: int
    component_id: str
    value: bytes
    from_spill: bool = False
    attempts: int = 0
    report_to: Callable[["Envelope", Any, Any], None] | None = field(
        default=None,
        repr=False,
        compare=False,
    )

    def __call__(self, error: Any, message: Any) -> None:
        """The Kafka delivery report of this envelope: the sink hands the envelope itself to
        ``produce`` as ``on_delivery`` (no callback object per message), and the report goes on
        to ``report_to``."""
        assert self.report_to is not None
        self.report_to(self, error, message)

    @property
    def order(self) -> tuple[str, int]:
        """Global order of the record: sessions by start time, then ``seq``."""
        return (self.session, self.seq)

    def headers(self) -> list[tuple[str, str]]:
        """Kafka headers carrying the record's identity."""
        return [
            (HEADER_SESSION, self.session),
            (HEADER_SEQ, str(self.seq)),
            (HEADER_RECORD_TYPE, self.record_type),
            (HEADER_TRACE_ID, self.trace_id),
        ]


@dataclass(frozen=True, slots=True)
class EncodedRecord:
    """A record already in wire form, with what its envelope needs (converters that skip the
    pydantic object return this)."""

    record_type: str
    key: str
    trace_id: str
    ts_event: int
    ts_init: int
    component_id: str
    value: bytes


EnvelopeEncoder = Callable[[Any, Any, str, int, str], Envelope]
"""``(item, context, session, seq, topic) -> Envelope``: an item (a Nautilus event) straight to
its envelope — the wire form of its record and the envelope's columns — with no record object
and no :class:`EncodedRecord` in between (:data:`actors.forensics.convert.ENVELOPE_ENCODERS`)."""


def record_key(record: RecordBase) -> str:
    """The partition key of a record: ``<strategy_id>/<instrument_id>`` for strategy-owned
    records (decisions, verdicts, order and position events), the instrument for regime updates,
    the component for allocations."""
    strategy_id = getattr(record, "strategy_id", None)
    instrument_id = getattr(record, "instrument_id", None)
    if strategy_id and instrument_id:
        return f"{strategy_id}/{instrument_id}"
    if instrument_id:
        return str(instrument_id)
    return record.component_id


def record_envelope(
    record: RecordBase, session: str, seq: int, topic: str, value: bytes
) -> Envelope:
    """The envelope of ``record`` whose wire form is ``value``: its columns from the record."""
    return Envelope(
        session,
        seq,
        topic,
        record_key(record),
        record.record_type,
        record.trace_id,
        record.ts_event,
        record.ts_init,
        record.component_id,
        value,
    )


class _SpillLine(msgspec.Struct, omit_defaults=False):
    """One spill-file line: the envelope with the record embedded as raw JSON."""

    session: str
    seq: int
    topic: str
    key: str
    record_type: str
    trace_id: str
    ts_event: int
    ts_init: int
    component_id: str
    record: msgspec.Raw


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_SpillLine)


def envelope_to_line(envelope: Envelope) -> bytes:
    """A spill-file line (JSON, newline-terminated; the record embedded as an object)."""
    line = _SpillLine(
        session=envelope.session,
        seq=envelope.seq,
        topic=envelope.topic,
        key=envelope.key,
        record_type=envelope.record_type,
        trace_id=envelope.trace_id,
        ts_event=envelope.ts_event,
        ts_init=envelope.ts_init,
        component_id=envelope.component_id,
        record=msgspec.Raw(envelope.value),
    )
    return _encoder.encode(line) + b"\n"


def envelope_from_line(line: bytes) -> Envelope:
    """Read a spill-file line back (raises ``msgspec.DecodeError`` on a torn or foreign line)."""
    decoded = _decoder.decode(line)
    return Envelope(
        session=decoded.session,
        seq=decoded.seq,
        topic=decoded.topic,
        key=decoded.key,
        record_type=decoded.record_type,
        trace_id=decoded.trace_id,
        ts_event=decoded.ts_event,
        ts_init=decoded.ts_init,
        component_id=decoded.component_id,
        value=bytes(decoded.record),
        from_spill=True,
    )


def header_value(headers: list[tuple[str, Any]] | None, name: str) -> str | None:
    """A Kafka header's value as text (None when absent)."""
    for key, value in headers or ():
        if key == name:
            return value.decode() if isinstance(value, bytes) else str(value)
    return None
