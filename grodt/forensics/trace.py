"""Trace reconstruction: one decision → its risk verdicts → its orders → their fills → the position
events they caused, joined on ``trace_id`` (and on client order ids within the trace). A
meta-controller's rebalance is a trace of its own (its ``AllocationRecord``: weights before and
after, policy, model, bounds, fallback reason); every strategy decision names the allocation in
force (``allocation_trace_id``), so any weight can be followed back to the rebalance that set it.

A trace is *complete* when it has its decision (or its allocation), every order the decision
intended was initialised, every submitted order has a verdict — its own or its bracket
parent's — when the risk gate ran, no order is filled beyond its quantity, and a denial by the
gate shows up as an ``OrderDenied`` event.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from dataclasses import field
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from decimal import InvalidOperation
from typing import Any

from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import OrderEventRecord
from grodt.core.records import PositionEventRecord
from grodt.core.records import RecordBase
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import record_json_dict

_SUBMITTED_EVENTS = frozenset({"OrderSubmitted", "OrderDenied"})


def _decimal(text: str | None) -> Decimal:
    if not text:
        return Decimal(0)
    try:
        return Decimal(text.split()[0])
    except InvalidOperation:
        return Decimal(0)


@dataclass
class OrderTrail:
    """Everything known about one order of a trace."""

    client_order_id: str
    events: list[OrderEventRecord] = field(default_factory=list)
    verdicts: list[RiskVerdictRecord] = field(default_factory=list)

    @property
    def initialized(self) -> OrderEventRecord | None:
        return next((e for e in self.events if e.event_type == "OrderInitialized"), None)

    @property
    def fills(self) -> list[OrderEventRecord]:
        return [e for e in self.events if e.event_type == "OrderFilled"]

    @property
    def quantity(self) -> Decimal:
        """The order's quantity now: the last ``OrderUpdated`` (e.g. resized by the risk gate),
        else ``OrderInitialized``."""
        for event in reversed(self.events):
            if event.event_type in ("OrderUpdated", "OrderInitialized") and event.quantity:
                return _decimal(event.quantity)
        return Decimal(0)

    @property
    def filled_quantity(self) -> Decimal:
        return sum((_decimal(f.last_qty) for f in self.fills), Decimal(0))

    @property
    def status(self) -> str:
        return self.events[-1].event_type if self.events else "unknown"

    @property
    def parent_order_id(self) -> str | None:
        init = self.initialized
        return init.parent_order_id if init is not None else None

    @property
    def submitted(self) -> bool:
        return any(e.event_type in _SUBMITTED_EVENTS for e in self.events)


@dataclass
class Trace:
    """One decision's story."""

    trace_id: str
    decisions: list[DecisionRecord] = field(default_factory=list)
    allocations: list[AllocationRecord] = field(default_factory=list)
    orders: dict[str, OrderTrail] = field(default_factory=dict)
    positions: list[PositionEventRecord] = field(default_factory=list)
    other: list[RecordBase] = field(default_factory=list)

    @property
    def decision(self) -> DecisionRecord | None:
        return self.decisions[0] if self.decisions else None

    @property
    def verdicts(self) -> list[RiskVerdictRecord]:
        return [v for trail in self.orders.values() for v in trail.verdicts]

    @property
    def fills(self) -> list[OrderEventRecord]:
        return [f for trail in self.orders.values() for f in trail.fills]

    def problems(self, require_verdicts: bool = False) -> list[str]:
        """Why the trace does not join completely (empty when it does)."""
        found: list[str] = []
        decision = self.decision
        if decision is None:
            if not self.allocations:
                found.append("no decision record")
        elif decision.intended_order is not None:
            intended = decision.intended_order.client_order_id
            if intended and intended not in self.orders:
                found.append(f"intended order {intended} has no order events")
            if not self.orders:
                found.append("the decision intended an order but none carries its trace id")
        for trail in self.orders.values():
            order_id = trail.client_order_id
            if trail.initialized is None:
                found.append(f"order {order_id}: no OrderInitialized")
            if require_verdicts and trail.submitted and not self._has_verdict(trail):
                found.append(f"order {order_id}: no risk verdict")
            if trail.quantity and trail.filled_quantity > trail.quantity:
                found.append(
                    f"order {order_id}: filled {trail.filled_quantity} > quantity {trail.quantity}",
                )
            if trail.status == "OrderFilled" and trail.filled_quantity <= 0:
                found.append(f"order {order_id}: filled without fill quantities")
            if any(v.verdict == "deny" for v in trail.verdicts) and not any(
                e.event_type == "OrderDenied" for e in trail.events
            ):
                found.append(f"order {order_id}: denied by the risk gate but no OrderDenied")
        return found

    def _has_verdict(self, trail: OrderTrail) -> bool:
        """An order's own verdict, or its parent's (bracket children are judged with their
        entry)."""
        seen: set[str] = set()
        while trail.client_order_id not in seen:
            if trail.verdicts:
                return True
            seen.add(trail.client_order_id)
            parent = trail.parent_order_id
            if parent is None or parent not in self.orders:
                return False
            trail = self.orders[parent]
        return False

    def complete(self, require_verdicts: bool = False) -> bool:
        return not self.problems(require_verdicts)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (records as their wire JSON objects)."""
        return {
            "trace_id": self.trace_id,
            "decisions": [record_json_dict(d) for d in self.decisions],
            "allocations": [record_json_dict(a) for a in self.allocations],
            "orders": [
                {
                    "client_order_id": trail.client_order_id,
                    "status": trail.status,
                    "quantity": str(trail.quantity),
                    "filled_quantity": str(trail.filled_quantity),
                    "verdicts": [record_json_dict(v) for v in trail.verdicts],
                    "events": [record_json_dict(e) for e in trail.events],
                }
                for trail in self.orders.values()
            ],
            "positions": [record_json_dict(p) for p in self.positions],
            "other": [record_json_dict(r) for r in self.other],
            "problems": self.problems(),
        }


def build_traces(records: Iterable[RecordBase]) -> dict[str, Trace]:
    """Group records by trace id (records without one are skipped), in the order given."""
    traces: dict[str, Trace] = {}
    for record in records:
        if not record.trace_id:
            continue
        trace = traces.get(record.trace_id)
        if trace is None:
            trace = traces[record.trace_id] = Trace(record.trace_id)
        if isinstance(record, DecisionRecord):
            trace.decisions.append(record)
        elif isinstance(record, AllocationRecord):
            trace.allocations.append(record)
        elif isinstance(record, OrderEventRecord):
            trail = trace.orders.setdefault(
                record.client_order_id,
                OrderTrail(record.client_order_id),
            )
            trail.events.append(record)
        elif isinstance(record, RiskVerdictRecord):
            trail = trace.orders.setdefault(
                record.client_order_id,
                OrderTrail(record.client_order_id),
            )
            trail.verdicts.append(record)
        elif isinstance(record, PositionEventRecord):
            trace.positions.append(record)
        else:
            trace.other.append(record)
    return traces


def build_trace(records: Iterable[RecordBase], trace_id: str) -> Trace:
    """The trace ``trace_id`` (empty when no record carries it)."""
    return build_traces(r for r in records if r.trace_id == trace_id).get(
        trace_id,
        Trace(trace_id),
    )


def _time(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def render_trace(trace: Trace) -> str:
    """A human-readable tree: decision → verdicts → orders → fills → positions."""
    lines = [f"trace {trace.trace_id}"]
    for decision in trace.decisions:
        signal = decision.signal
        intended = decision.intended_order
        order_text = (
            f" → {intended.side} {intended.quantity} {intended.order_type}" if intended else ""
        )
        lines.append(
            f"  decision  {_time(decision.ts_event)}  {decision.strategy_id}  "
            f"{decision.instrument_id}  {decision.action}{order_text}",
        )
        lines.append(f"            reason: {decision.reason}")
        signal_text = (
            f"strength {signal.strength:+.3f}  μ {signal.expected_return:+.5f}  "
            f"σ {signal.uncertainty:.5f}  horizon {signal.horizon_bars} bars  "
            f"confidence {signal.confidence:.2f}  weight {decision.allocation_weight:.3f}"
        )
        lines.append(f"            signal: {signal_text}")
        if decision.regime_probabilities:
            regime = "  ".join(f"{k} {v:.2f}" for k, v in decision.regime_probabilities.items())
            lines.append(f"            regime: {regime}")
        if decision.features:
            features = "  ".join(f"{k} {v:.6g}" for k, v in list(decision.features.items())[:12])
            lines.append(f"            features: {features}")
        if decision.model_versions:
            versions = "  ".join(f"{k}={v}" for k, v in decision.model_versions.items())
            lines.append(f"            models: {versions}")
        if decision.allocation_trace_id:
            lines.append(f"            allocation: {decision.allocation_trace_id}")
    for allocation in trace.allocations:
        lines.extend(_allocation_lines(allocation))
    for trail in trace.orders.values():
        init = trail.initialized
        head = f"  order     {trail.client_order_id}"
        if init is not None:
            quantity = f"{trail.quantity}"
            if init.quantity and _decimal(init.quantity) != trail.quantity:
                quantity += f" (initialized {init.quantity})"
            head += f"  {init.side} {quantity} {init.order_type}"
        lines.append(f"{head}  [{trail.status}]")
        for verdict in trail.verdicts:
            lines.append(
                f"    verdict {_time(verdict.ts_event)}  {verdict.verdict}  "
                f"{verdict.requested_quantity} → {verdict.approved_quantity}"
                + (f"  ({verdict.reason})" if verdict.reason else ""),
            )
        for event in trail.events:
            if event.event_type == "OrderFilled":
                lines.append(
                    f"    fill    {_time(event.ts_event)}  {event.last_qty} @ {event.last_px}  "
                    f"commission {event.commission}  {event.liquidity_side or ''}".rstrip(),
                )
            else:
                detail = f"  {event.reason}" if event.reason else ""
                lines.append(f"    event   {_time(event.ts_event)}  {event.event_type}{detail}")
    for position in trace.positions:
        lines.append(
            f"  position  {_time(position.ts_event)}  {position.event_type}  {position.side} "
            f"{position.quantity}  avg open {position.avg_px_open:g}  "
            f"realized {position.realized_pnl}",
        )
    for record in trace.other:
        lines.append(f"  {record.record_type}  {_time(record.ts_event)}  {record.component_id}")
    problems = trace.problems()
    if problems:
        lines.append("  incomplete: " + "; ".join(problems))
    elif trace.allocations and not trace.decisions:
        lines.append(f"  complete: {len(trace.allocations)} allocation")
    else:
        lines.append(
            f"  complete: {len(trace.decisions)} decision, {len(trace.verdicts)} verdicts, "
            f"{len(trace.orders)} orders, {len(trace.fills)} fills",
        )
    return "\n".join(lines)


def _allocation_lines(allocation: AllocationRecord) -> list[str]:
    """A rebalance: each strategy's weight before → after (fractions of equity), and why."""
    lines = [
        f"  allocation {_time(allocation.ts_event)}  {allocation.component_id}  "
        f"policy {allocation.policy}  model {allocation.model_version or '-'}",
    ]
    for strategy_id, weight in allocation.weights.items():
        before = allocation.previous_weights.get(strategy_id)
        before_text = f"{before:.4f} → " if before is not None else ""
        quantiles = allocation.quantiles.get(strategy_id)
        forecast = (
            "  forecast q10/q50/q90 "
            + "/".join(f"{quantiles[q]:+.5f}" for q in ("q10", "q50", "q90") if q in quantiles)
            if quantiles
            else ""
        )
        lines.append(f"            {strategy_id}: {before_text}{weight:.4f}{forecast}")
    if allocation.fallback_reason:
        lines.append(f"            fallback: {allocation.fallback_reason}")
    if allocation.bounds_hit:
        lines.append(f"            bound by: {', '.join(allocation.bounds_hit)}")
    if allocation.propensity is not None:
        lines.append(
            f"            action {allocation.action_index} with propensity "
            f"{allocation.propensity:.4f}",
        )
    if allocation.reason:
        lines.append(f"            reason: {allocation.reason}")
    return lines
