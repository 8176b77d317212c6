"""The worker's fast paths give what the general paths give: Nautilus events encoded straight into
envelopes (no record, no EncodedRecord), memoised price and quantity texts, and the Parquet row
group built column-wise from the wire bytes."""

import logging
from pathlib import Path

import pyarrow as pa
import pytest
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs
from test_convert import TRACE
from test_convert import order_events

from actors.forensics.codec import Envelope
from actors.forensics.codec import record_key
from actors.forensics.convert import ENVELOPE_ENCODERS
from actors.forensics.convert import _amount_text
from actors.forensics.convert import nautilus_to_wire
from actors.forensics.convert import order_event_record
from actors.forensics.convert import position_event_record
from actors.forensics.dead_letters import DeadLetters
from actors.forensics.encoder import RecordEncoder
from actors.forensics.sinks import PARQUET_SCHEMA
from actors.forensics.sinks import _table
from grodt.core.records import record_to_json
from grodt.test_kit.forensics import equity

SESSION = "1700000000000000000-0000000f"
LOG = logging.getLogger("tests.forensics.fast_paths")


def encoder(tmp_path: Path) -> RecordEncoder:
    dead_letters = DeadLetters(tmp_path / "rejected.jsonl", SESSION, LOG)
    return RecordEncoder(SESSION, dead_letters, LOG, nautilus_to_wire, "all")


def expected(seq: int, topic: str, record: object) -> Envelope:
    """The envelope the record path gives (pydantic record → JSON)."""
    return Envelope(
        SESSION,
        seq,
        topic,
        record_key(record),  # type: ignore[arg-type]
        record.record_type,  # type: ignore[attr-defined]
        record.trace_id,  # type: ignore[attr-defined]
        record.ts_event,  # type: ignore[attr-defined]
        record.ts_init,  # type: ignore[attr-defined]
        record.component_id,  # type: ignore[attr-defined]
        record_to_json(record),  # type: ignore[arg-type]
    )


def position_events() -> list:
    instrument = equity()
    order = TestExecStubs.market_order(instrument=instrument)
    fill = TestEventStubs.order_filled(order, instrument, position_id=PositionId("P-1"))
    position = Position(instrument, fill)
    events = [TestEventStubs.position_opened(position), TestEventStubs.position_changed(position)]
    close = TestExecStubs.market_order(instrument=instrument, order_side=OrderSide.SELL)
    position.apply(
        TestEventStubs.order_filled(
            close, instrument, position_id=PositionId("P-1"), last_px=Price.from_str("101.25")
        ),
    )
    return [*events, TestEventStubs.position_closed(position)]


@pytest.mark.parametrize("trace_id", [TRACE, None])
def test_order_events_go_straight_to_the_record_paths_envelope(
    tmp_path: Path,
    trace_id: str | None,
) -> None:
    events = order_events()
    assert all(type(event) in ENVELOPE_ENCODERS for event in events)
    encode = encoder(tmp_path).encode
    for seq, event in enumerate(events, start=1):
        envelope = encode(seq, "orders", event, trace_id)
        assert envelope == expected(seq, "orders", order_event_record(event, trace_id))


def test_position_events_go_straight_to_the_record_paths_envelope(tmp_path: Path) -> None:
    encode = encoder(tmp_path).encode
    for seq, event in enumerate(position_events(), start=1):
        assert type(event) in ENVELOPE_ENCODERS
        envelope = encode(seq, "positions", event, ("O-1", TRACE))
        assert envelope == expected(seq, "positions", position_event_record(event, "O-1", TRACE))
        untraced = encode(seq, "positions", event, None)
        assert untraced == expected(seq, "positions", position_event_record(event, None, None))


@pytest.mark.parametrize(
    "value",
    [
        Price.from_str("101.25"),
        Price.from_str("101.250"),
        Price.from_str("-0.5"),
        Price(1e-9, 9),
        Quantity.from_str("100"),
        Quantity.from_str("100.0"),
        Quantity.from_str("0.001"),
    ],
    ids=repr,
)
def test_amount_text_is_str_whatever_was_seen_before(value: Price | Quantity) -> None:
    # A price and a quantity with equal (raw, precision) format alike, so they share entries.
    raw, precision = value.__getstate__()
    if raw >= 0:
        twin = (Quantity if isinstance(value, Price) else Price).from_raw(raw, precision)
        assert _amount_text(twin) == str(twin)
    assert _amount_text(value) == str(value)
    assert _amount_text(value) == str(value)  # the memoised entry


def test_money_keeps_its_currency_in_the_wire_form() -> None:
    # Money is never memoised by amount: its text carries the currency.
    fill = order_events()[-1]
    assert isinstance(fill.commission, Money)
    encoded = nautilus_to_wire(fill, TRACE)
    assert f'"commission":"{fill.commission}"'.encode() in encoded.value
    assert str(Money(2.0, USD)) == "2.00 USD"


def envelopes(values: list[bytes]) -> list[Envelope]:
    return [
        Envelope(SESSION, i, "t", f"k{i}", "decision", "", i, i + 1, "c", value)
        for i, value in enumerate(values)
    ]


def test_row_group_table_equals_the_decoded_columns() -> None:
    rows = envelopes([b'{"a":1}', '{"b":"\u00e9\u4e2d"}'.encode(), b"{}"])
    expected_table = pa.Table.from_pydict(
        {
            "session": [SESSION] * 3,
            "seq": [0, 1, 2],
            "topic": ["t"] * 3,
            "key": ["k0", "k1", "k2"],
            "record_type": ["decision"] * 3,
            "trace_id": [""] * 3,
            "ts_event": [0, 1, 2],
            "ts_init": [1, 2, 3],
            "component_id": ["c"] * 3,
            "payload": [e.value.decode() for e in rows],
        },
        schema=PARQUET_SCHEMA,
    )
    assert _table(rows).equals(expected_table)


def test_row_group_with_a_payload_that_is_not_utf8_fails_as_decoding_does() -> None:
    with pytest.raises(UnicodeDecodeError):
        _table(envelopes([b'{"a":1}', b'{"b":"\xff"}']))
