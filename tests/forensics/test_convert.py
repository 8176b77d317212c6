"""Order and position events → records: the bridge's fast encoder gives the same bytes as the
validated records, for every event class (the backtests cover the ones they produce)."""

import pytest
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.position import Position
from nautilus_trader.test_kit.stubs.events import TestEventStubs
from nautilus_trader.test_kit.stubs.execution import TestExecStubs

from actors.forensics.convert import encode_order_event
from actors.forensics.convert import encode_position_event
from actors.forensics.convert import order_event_record
from actors.forensics.convert import position_event_record
from grodt.core.records import record_from_json
from grodt.core.records import record_to_json
from grodt.core.records import trace_tag
from grodt.test_kit.forensics import equity

TRACE = "S-001:1:1"


def order_events() -> list:
    instrument = equity()
    limit = TestExecStubs.limit_order(instrument=instrument, tags=[trace_tag(TRACE), "ENTRY"])
    market = TestExecStubs.market_order(instrument=instrument, order_side=OrderSide.SELL)
    return [
        limit.init_event,
        market.init_event,
        TestEventStubs.order_submitted(limit),
        TestEventStubs.order_accepted(limit),
        TestEventStubs.order_updated(
            limit, quantity=Quantity.from_int(50), price=Price.from_str("99.50")
        ),
        TestEventStubs.order_pending_update(limit),
        TestEventStubs.order_pending_cancel(limit),
        TestEventStubs.order_triggered(limit),
        TestEventStubs.order_canceled(limit),
        TestEventStubs.order_expired(limit),
        TestEventStubs.order_rejected(limit),
        TestEventStubs.order_filled(market, instrument, position_id=PositionId("P-1")),
    ]


@pytest.mark.parametrize("event", order_events(), ids=lambda e: type(e).__name__)
@pytest.mark.parametrize("trace_id", [TRACE, None])
def test_order_event_wire_equals_the_record(event: object, trace_id: str | None) -> None:
    fast = encode_order_event(event, trace_id)  # type: ignore[arg-type]
    record = order_event_record(event, trace_id)  # type: ignore[arg-type]
    assert fast.value == record_to_json(record)
    assert record_from_json(fast.value, tolerant=False) == record
    assert (fast.trace_id, fast.key) == (trace_id or "", "S-001/TEST.SIM")


def test_initialized_carries_tags_and_terms() -> None:
    record = order_event_record(order_events()[0], TRACE)
    assert record.tags == [trace_tag(TRACE), "ENTRY"]
    assert (record.side, record.order_type, record.quantity) == ("BUY", "LIMIT", "100")
    assert record.price is not None and record.reduce_only is False


def test_position_events_wire_equals_the_record() -> None:
    instrument = equity()
    order = TestExecStubs.market_order(instrument=instrument)
    fill = TestEventStubs.order_filled(order, instrument, position_id=PositionId("P-1"))
    position = Position(instrument, fill)
    events = [TestEventStubs.position_opened(position), TestEventStubs.position_changed(position)]
    close = TestExecStubs.market_order(instrument=instrument, order_side=OrderSide.SELL)
    position.apply(
        TestEventStubs.order_filled(
            close,
            instrument,
            position_id=PositionId("P-1"),
            last_px=Price.from_str("101.25"),
        ),
    )
    events.append(TestEventStubs.position_closed(position))
    for event in events:
        fast = encode_position_event(event, order.client_order_id.value, TRACE)
        slow = record_to_json(position_event_record(event, order.client_order_id.value, TRACE))
        assert fast.value == slow
    closed = record_from_json(fast.value)
    assert closed.event_type == "PositionClosed" and closed.duration_ns is not None
