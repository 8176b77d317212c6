"""The counters of one forensics pipeline, as one immutable snapshot."""

from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

__all__ = ["PipelineStats"]


@dataclass(frozen=True)
class PipelineStats:
    """Counters of one pipeline (cumulative since start) and its state now.

    Attributes
    ----------
    enqueued : int
        Records offered by the engine (this session).
    delivered : int
        Records acknowledged by the sink (including replayed and recovered ones).
    spilled : int
        Records written to a spill file (queue overflow or sink outage; a record spilled by an
        overflow and again by an outage counts twice).
    replayed : int
        Records delivered after being read back from a spill file.
    failed : int
        Failed delivery attempts (each such record was queued again, or dead-lettered when the
        failure was permanent; see ``rejected``).
    sink_resets : int
        Times the sink's client was replaced (a fatal producer error, or no progress after a
        reconnect): each starts a new idempotent producer session.
    rejected : int
        Records that could not be encoded or that failed validation, or failed permanently:
        written to the dead-letter file, never silently dropped.
    recovered : int
        Records found in the spill directory from earlier sessions (delivered first).
    queued, in_flight, spill_pending : int
        Now: in the queue (and overflow), handed to the sink unacknowledged, waiting on disk.
    undelivered : int
        At close: records left in the spill directory for the next session.
    worker_cpu_s : float
        CPU seconds used by the worker thread so far (serialising, sending, spilling).
    sink, sink_state : str
        The sink's name and "up" / "down: <reason>".
    """

    session: str
    enqueued: int
    delivered: int
    spilled: int
    replayed: int
    failed: int
    sink_resets: int
    rejected: int
    recovered: int
    queued: int
    in_flight: int
    spill_pending: int
    undelivered: int
    worker_cpu_s: float
    sink: str
    sink_state: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_line(self) -> str:
        return (
            f"enqueued={self.enqueued} delivered={self.delivered} spilled={self.spilled} "
            f"replayed={self.replayed} failed={self.failed} sink_resets={self.sink_resets} "
            f"rejected={self.rejected} "
            f"recovered={self.recovered} queued={self.queued} in_flight={self.in_flight} "
            f"spill_pending={self.spill_pending} undelivered={self.undelivered} "
            f"worker_cpu={self.worker_cpu_s:.2f}s sink={self.sink} ({self.sink_state})"
        )
