"""Trace joins: what makes a trace complete, on hand-made record sequences."""

from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import OrderEventRecord
from grodt.core.records import RecordBase
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import Signal
from grodt.forensics.trace import build_trace
from grodt.forensics.trace import build_traces
from grodt.forensics.trace import render_trace

TRACE = "S1-000:100:1"
BASE = {"trace_id": TRACE, "ts_event": 100, "ts_init": 100, "component_id": "S1-000"}
WHO = {"strategy_id": "S1-000", "instrument_id": "SPX.SAMPLE"}


def decision(order_id: str | None = "O-1") -> DecisionRecord:
    return DecisionRecord(
        **BASE,
        **WHO,
        action="entry",
        reason="test",
        signal=Signal(strength=1.0),
        allocation_weight=1.0,
        intended_order=IntendedOrder(client_order_id=order_id, side="BUY", quantity="100"),
    )


def event(kind: str, order_id: str = "O-1", **fields: object) -> OrderEventRecord:
    return OrderEventRecord(**BASE, **WHO, event_type=kind, client_order_id=order_id, **fields)


def verdict(order_id: str = "O-1", kind: str = "approve") -> RiskVerdictRecord:
    return RiskVerdictRecord(
        **{**BASE, "component_id": "RiskGate"},
        **WHO,
        client_order_id=order_id,
        verdict=kind,  # type: ignore[arg-type]
        requested_quantity="100",
        approved_quantity="100" if kind != "deny" else "0",
        equity=1e6,
        gross_exposure=0.1,
        net_exposure=0.1,
    )


def entry_with_bracket() -> list[RecordBase]:
    return [
        decision(),
        verdict(),
        event("OrderInitialized", quantity="100", side="BUY"),
        event("OrderInitialized", "O-2", quantity="100", side="SELL", parent_order_id="O-1"),
        event("OrderSubmitted"),
        event("OrderSubmitted", "O-2"),
        event("OrderFilled", last_qty="60", last_px="10.00"),
        event("OrderFilled", last_qty="40", last_px="10.01"),
    ]


def test_a_full_story_joins() -> None:
    trace = build_trace(entry_with_bracket(), TRACE)
    assert trace.problems(require_verdicts=True) == []
    assert [t.client_order_id for t in trace.orders.values()] == ["O-1", "O-2"]
    assert trace.orders["O-1"].filled_quantity == 100
    assert len(trace.fills) == 2


def test_bracket_children_are_covered_by_their_entry_verdict_only() -> None:
    records = [r for r in entry_with_bracket() if not isinstance(r, RiskVerdictRecord)]
    problems = build_trace(records, TRACE).problems(require_verdicts=True)
    assert problems == ["order O-1: no risk verdict", "order O-2: no risk verdict"]
    assert build_trace(records, TRACE).problems() == []  # no gate: no verdicts required


def test_missing_pieces_are_named() -> None:
    assert build_trace([event("OrderInitialized")], TRACE).problems() == ["no decision record"]
    lost = build_trace([decision("O-9"), event("OrderInitialized")], TRACE).problems()
    assert lost == ["intended order O-9 has no order events"]
    nothing = build_trace([decision()], TRACE).problems()
    assert "the decision intended an order but none carries its trace id" in nothing
    overfilled = [
        decision(),
        event("OrderInitialized", quantity="10"),
        event("OrderFilled", last_qty="11"),
    ]
    assert build_trace(overfilled, TRACE).problems() == ["order O-1: filled 11 > quantity 10"]
    denied = [decision(), verdict(kind="deny"), event("OrderInitialized", quantity="100")]
    assert build_trace(denied, TRACE).problems() == [
        "order O-1: denied by the risk gate but no OrderDenied",
    ]


def test_resized_orders_are_judged_on_their_updated_quantity() -> None:
    records = [
        decision(),
        event("OrderInitialized", quantity="100"),
        event("OrderUpdated", quantity="60"),
        event("OrderFilled", last_qty="60"),
    ]
    trail = build_trace(records, TRACE).orders["O-1"]
    assert (trail.quantity, trail.filled_quantity) == (60, 60)


def test_records_without_a_trace_are_not_grouped() -> None:
    untraced = event("OrderInitialized").model_copy(update={"trace_id": ""})
    assert build_traces([untraced]) == {}


def test_an_allocation_is_a_complete_trace_that_explains_each_weight() -> None:
    allocation = AllocationRecord(
        trace_id="Meta-000:100:7",
        ts_event=100,
        ts_init=100,
        component_id="MetaController-000",
        weights={"S1-000": 0.4, "S2-000": 0.2},
        previous_weights={"S1-000": 0.3, "S2-000": 0.3},
        policy="predictive",
        quantiles={"S1-000": {"q10": -0.01, "q50": 0.002, "q90": 0.012}},
        bounds_hit=["max_step"],
        model_version="meta_performance/3",
    )
    trace = build_trace([allocation], "Meta-000:100:7")
    assert trace.problems() == [] and trace.allocations == [allocation]
    text = render_trace(trace)
    assert "S1-000: 0.3000 → 0.4000  forecast q10/q50/q90 -0.01000/+0.00200/+0.01200" in text
    assert "bound by: max_step" in text and "model meta_performance/3" in text
    assert "complete: 1 allocation" in text
    # a decision names the allocation in force
    cited = decision().model_copy(update={"allocation_trace_id": "Meta-000:100:7"})
    assert "allocation: Meta-000:100:7" in render_trace(build_trace([cited], TRACE))
