"""Every verdict, kept: counted, published as a record on the bus, streamed as CSV rows.

Each verdict, approvals included, becomes a :class:`grodt.core.records.RiskVerdictRecord` on
:data:`grodt.core.topics.Topics.RISK` (with the order's trace id from its tags) and a row of
:data:`VERDICT_COLUMNS` (``risk_verdicts.csv``). Memory is bounded for a long-running live node:
the latest :data:`MAX_KEPT` rows stay in :attr:`VerdictRecorder.rows`; counts are counters.
"""

import math
from collections import Counter
from collections import deque
from collections.abc import Callable
from typing import Any

from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.orders import Order

from grodt.core.records import RiskVerdictRecord
from grodt.core.records import trace_id_from_tags
from grodt.core.topics import Topics
from risk_engine.evaluation import Verdict
from risk_engine.limits import INF
from risk_engine.portfolio_state import Snapshot
from risk_engine.portfolio_state import id_str

__all__ = ["MAX_KEPT", "VERDICT_COLUMNS", "VERDICT_FLUSH_ROWS", "VerdictRecorder"]

MAX_KEPT = 10_000
"""Verdict rows kept in memory (the latest): the rest went to the sink and the bus."""
VERDICT_FLUSH_ROWS = 1_000
"""Verdict rows buffered before they are handed to the stream's sink."""
VERDICT_COLUMNS = (
    "ts",
    "strategy_id",
    "instrument_id",
    "client_order_id",
    "verdict",
    "code",
    "reason",
    "requested",
    "approved",
    "equity",
    "gross_exposure",
    "net_exposure",
    "hrp_target",
    "trace_id",
    "order_ids",
)
_SCHEMA_VERSION = RiskVerdictRecord.model_fields["schema_version"].default


class VerdictRecorder:
    """Counts, publishes and streams the verdicts of one gate.

    Parameters
    ----------
    component_id : str
        The gate's id (the records' ``component_id``).
    msgbus, clock, logger
        The kernel's parts.
    """

    def __init__(self, component_id: str, msgbus: Any, clock: Any, logger: Any) -> None:
        self.component_id = component_id
        self._msgbus = msgbus
        self._clock = clock
        self._log = logger
        self.counts: Counter[str] = Counter()
        self.denials: Counter[str] = Counter()
        self.resizes: Counter[str] = Counter()
        self.rows: deque[tuple[Any, ...]] = deque(maxlen=MAX_KEPT)
        self._sink: Callable[[list[tuple[Any, ...]]], None] | None = None
        self._unflushed: list[tuple[Any, ...]] = []

    def count(self, verdict: Verdict) -> None:
        self.counts[verdict.verdict] += 1
        if verdict.verdict == "deny":
            self.denials[verdict.code] += 1
        elif verdict.verdict == "resize":
            self.resizes[verdict.code] += 1
        elif verdict.code == "reducing":
            self.counts["approve_reducing"] += 1

    def count_error(self) -> None:
        """A command the gate failed on (and denied)."""
        self.counts["deny"] += 1
        self.denials["gate_error"] += 1

    def record(
        self,
        strategy_id: StrategyId,
        order: Order,
        verdict: Verdict,
        snapshot: Snapshot,
        orders: list[Order] | None,
        target: float | None,
        model_version: str,
        halted: bool,
    ) -> None:
        """Publish and keep the verdict on ``order`` (``orders``: the command's, if several).

        ``target``: the instrument's HRP target weight; ``model_version``: the targets' model;
        ``halted``: the kill switch's state.
        """
        now = self._clock.timestamp_ns()
        trace_id = trace_id_from_tags(order.tags) or ""
        equity = snapshot.equity
        gross = snapshot.gross
        net = snapshot.net_position()
        limits: dict[str, Any] = {
            "binding": verdict.code or None,
            "halted": halted,
            "hrp_target": target,
            "net_bounds": [snapshot.net_high, snapshot.net_low],
        }
        for result in verdict.results:
            limits[result.name] = {
                "cap": result.cap,
                "before": None if math.isnan(result.value) else result.value,
                "max_quantity": None if result.max_quantity == INF else result.max_quantity,
            }
        strategy = id_str(strategy_id)
        instrument = id_str(order.instrument_id)
        client_order_id = str(order.client_order_id)
        record = RiskVerdictRecord.model_construct(
            schema_version=_SCHEMA_VERSION,
            trace_id=trace_id,
            ts_event=now,
            ts_init=now,
            component_id=self.component_id,
            model_versions={"hrp": model_version} if model_version else {},
            strategy_id=strategy,
            instrument_id=instrument,
            client_order_id=client_order_id,
            verdict=verdict.verdict,
            reason=verdict.reason,
            requested_quantity=f"{verdict.requested:g}",
            approved_quantity=f"{verdict.approved:g}",
            equity=equity,
            gross_exposure=gross,
            net_exposure=net,
            weights=snapshot.weights(),
            limits=limits,
        )
        self._msgbus.publish(Topics.RISK, record)
        row = (
            now,
            strategy,
            instrument,
            client_order_id,
            verdict.verdict,
            verdict.code,
            verdict.reason,
            verdict.requested,
            verdict.approved,
            equity,
            gross,
            net,
            math.nan if target is None else target,
            trace_id,
            "|".join(str(o.client_order_id) for o in orders) if orders else "",
        )
        self.rows.append(row)
        if self._sink is not None:
            self._unflushed.append(row)
            if len(self._unflushed) >= VERDICT_FLUSH_ROWS:
                self.flush()

    def stream(self, sink: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Hand every row (:data:`VERDICT_COLUMNS`) to ``sink``, in chunks of
        :data:`VERDICT_FLUSH_ROWS` and at :meth:`flush`."""
        self._sink = sink

    def flush(self) -> None:
        """Hand the buffered rows to the sink."""
        if self._sink is not None and self._unflushed:
            rows, self._unflushed = self._unflushed, []
            try:
                self._sink(rows)
            except Exception as e:
                # The verdicts' file must not stop the gate: the forensics topic has them all.
                self._log.exception(f"Risk gate could not write {len(rows)} verdict rows", e)

    def summary(self) -> dict[str, Any]:
        """Verdict counts, and denials and resizes by reason code."""
        return {
            "verdicts": {
                "approve": self.counts.get("approve", 0),
                "resize": self.counts.get("resize", 0),
                "deny": self.counts.get("deny", 0),
                "approve_reducing": self.counts.get("approve_reducing", 0),
            },
            "denials_by_reason": dict(sorted(self.denials.items())),
            "resizes_by_reason": dict(sorted(self.resizes.items())),
        }
