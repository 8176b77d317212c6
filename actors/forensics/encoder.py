"""Record (or Nautilus event) → :class:`~actors.forensics.codec.Envelope`: serialised to its
wire form, validated against its contract as the mode asks, and stamped with its place
``(session, seq)`` in the stream. What cannot be encoded goes to the dead-letter file.

Runs on the worker thread for queued records, and on the engine thread for records that spill
because the queue is full (``on_engine=True``: the rejections are counted per thread).
"""

import traceback
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from actors.forensics.codec import EncodedRecord
from actors.forensics.codec import Envelope
from actors.forensics.codec import EnvelopeEncoder
from actors.forensics.codec import record_envelope
from actors.forensics.dead_letters import DeadLetters
from actors.forensics.spill import LogLike
from grodt.core.records import RecordBase

__all__ = ["SAMPLE_FIRST", "VALIDATION_MODES", "RecordConverter", "RecordEncoder"]

RecordConverter = Callable[[Any, Any], "RecordBase | EncodedRecord"]
"""``(item, context) -> record`` for items that are not records already (Nautilus events); may
return the wire form directly (:class:`~actors.forensics.codec.EncodedRecord`). A converter with
an ``envelope_encoders`` attribute (``{class: (item, context, session, seq, topic) -> Envelope}``,
see :data:`actors.forensics.convert.ENVELOPE_ENCODERS`) has items of those exact classes encoded
by them instead, straight into envelopes."""

VALIDATION_MODES = ("all", "sampled", "off")
SAMPLE_FIRST = 100
"""``sampled`` validation checks the first this many records of each (component, record type),
then one in this many."""


def _not_a_record(item: Any, context: Any) -> RecordBase:
    raise TypeError(f"not a forensics record: {type(item).__name__}")


class RecordEncoder:
    """Encodes offered items into envelopes of one session.

    Parameters
    ----------
    session : str
        The session id every envelope carries.
    dead_letters : DeadLetters
        Where items that cannot be encoded are kept.
    to_record : RecordConverter, optional
        Converts items that are not records (Nautilus events).
    validation : {"all", "sampled", "off"}, default "sampled"
        See :class:`~actors.forensics.pipeline.ForensicsPipeline`.
    log : LogLike
    """

    def __init__(
        self,
        session: str,
        dead_letters: DeadLetters,
        log: LogLike,
        to_record: RecordConverter | None = None,
        validation: str = "sampled",
    ) -> None:
        if validation not in VALIDATION_MODES:
            raise ValueError(f"validation must be one of {VALIDATION_MODES}, was {validation!r}")
        self.session = session
        self.validation = validation
        self._dead_letters = dead_letters
        self._log = log
        self._to_record = to_record or _not_a_record
        # Converters may offer envelope encoders by exact class (see ``nautilus_to_wire``).
        self._envelopes: dict[type, EnvelopeEncoder] = dict(
            getattr(to_record, "envelope_encoders", None) or {},
        )
        self._validated: dict[tuple[str, str], int] = {}
        # Per record class: its serializer, its validator and the wire prefix naming its type.
        self._types: dict[type, tuple[Any, Any, bytes]] = {}
        self._lenient_warned: set[str] = set()

    def encode(
        self,
        seq: int,
        topic: str,
        item: Any,
        context: Any,
        on_engine: bool = False,
    ) -> Envelope | None:
        """Record (or event) → envelope; None when it went to the dead-letter file instead."""
        try:
            envelope = self._envelopes.get(type(item))
            if envelope is not None:
                return envelope(item, context, self.session, seq, topic)
            if type(item) in self._types or isinstance(item, RecordBase):
                return self._encode_record(seq, topic, item)
            converted = self._to_record(item, context)
            if isinstance(converted, EncodedRecord):
                return Envelope(
                    self.session,
                    seq,
                    topic,
                    converted.key,
                    converted.record_type,
                    converted.trace_id,
                    converted.ts_event,
                    converted.ts_init,
                    converted.component_id,
                    converted.value,
                )
            return self._encode_record(seq, topic, converted)
        except (ValidationError, PydanticSerializationError, TypeError, ValueError) as e:
            self._dead_letters.add(seq, topic, item, _short_error(e), on_engine=on_engine)
        except Exception as e:
            self._dead_letters.add(
                seq,
                topic,
                item,
                f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=4)}",
                on_engine=on_engine,
            )
        return None

    def _encode_record(self, seq: int, topic: str, record: RecordBase) -> Envelope:
        cls = type(record)
        info = self._types.get(cls)
        if info is None:
            prefix = b'{"record_type":"' + cls.record_type.encode() + b'",'
            info = self._types[cls] = (
                cls.__pydantic_serializer__,
                cls.__pydantic_validator__,
                prefix,
            )
        serializer, validator, prefix = info
        try:
            body = serializer.to_json(record, warnings="error")
            strict = True
        except PydanticSerializationError:
            body = serializer.to_json(record, warnings="none", fallback=_json_fallback)
            strict = False
        if not strict or self._should_validate(record):
            validator.validate_json(body)
        if not strict and record.component_id not in self._lenient_warned:
            self._lenient_warned.add(record.component_id)
            self._log.warning(
                f"Forensics: {record.record_type} records of {record.component_id} hold values "
                "of the wrong type (numpy scalars?); converted, please fix the producer",
            )
        return record_envelope(record, self.session, seq, topic, prefix + body[1:])

    def _should_validate(self, record: RecordBase) -> bool:
        if self.validation == "all":
            return True
        if self.validation == "off":
            return False
        key = (record.component_id, record.record_type)
        count = self._validated.get(key, 0) + 1
        self._validated[key] = count
        return count <= SAMPLE_FIRST or count % SAMPLE_FIRST == 0


def _json_fallback(value: Any) -> Any:
    """Lenient serialisation of values of the wrong type (numpy scalars and arrays)."""
    if hasattr(value, "item") and callable(value.item):
        try:
            return value.item()
        except (ValueError, TypeError):
            pass
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)


def _short_error(error: Exception) -> str:
    text = str(error)
    return text if len(text) < 2000 else text[:2000] + " ..."
