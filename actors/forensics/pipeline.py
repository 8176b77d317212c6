"""The forensics pipeline: records in from the engine thread, out to a sink from a worker thread,
never blocking the first and never dropping a record.

A coordinator of small parts, each in its module:

- :class:`~actors.forensics.ingress.IngressQueue` (engine side): a bounded queue that overflows,
  in order, into ``<spill_dir>/overflow``; :meth:`ForensicsPipeline.offer` costs about a
  microsecond and never waits.
- :class:`~actors.forensics.encoder.RecordEncoder`: records and Nautilus events → envelopes
  ``(session, seq)``, validated as asked; failures to
  :class:`~actors.forensics.dead_letters.DeadLetters` (``<spill_dir>/rejected.jsonl``).
- :class:`~actors.forensics.delivery.Delivery` on a
  :class:`~actors.forensics.worker.DeliveryWorker` thread: in order to the sink, retries,
  reconnects; while the sink is down, into the :class:`~actors.forensics.outbox.Outbox`
  (``<spill_dir>/outbox``), replayed in order once it is back.

At :meth:`ForensicsPipeline.close`, whatever could not be delivered within the timeout is
rewritten, in order, into the outbox on disk and is delivered by the next session using the same
spill directory.
"""

import time
import weakref
from pathlib import Path
from secrets import token_hex
from typing import Any

from actors.forensics.dead_letters import DeadLetters
from actors.forensics.delivery import Delivery
from actors.forensics.encoder import RecordConverter
from actors.forensics.encoder import RecordEncoder
from actors.forensics.ingress import IngressQueue
from actors.forensics.ingress import Offer
from actors.forensics.outbox import Outbox
from actors.forensics.sinks import Sink
from actors.forensics.spill import LogLike
from actors.forensics.spill import default_log
from actors.forensics.stats import PipelineStats
from actors.forensics.worker import DeliveryWorker

__all__ = ["DEFAULT_LINGER_S", "ForensicsPipeline", "active_pipelines", "new_session_id"]

DEFAULT_LINGER_S = 0.01
"""How long the worker lets records accumulate after waking, by default (s)."""

_ACTIVE: "weakref.WeakSet[ForensicsPipeline]" = weakref.WeakSet()


def active_pipelines() -> list["ForensicsPipeline"]:
    """Pipelines started in this process and not closed yet (for health checks and tests)."""
    return [p for p in list(_ACTIVE) if p.started and not p.closed]


def new_session_id() -> str:
    """A bridge session id that sorts by start time: ``<UNIX ns, 19 digits>-<8 hex>``."""
    return f"{time.time_ns():019d}-{token_hex(4)}"


class ForensicsPipeline:
    """Bounded hand-off from the engine thread to a sink, with disk spill and in-order replay.

    Parameters
    ----------
    sink : Sink
        Where records go (:class:`~actors.forensics.sinks.KafkaSink` or
        :class:`~actors.forensics.sinks.ParquetSink`).
    spill_dir : Path
        Spill directory: ``outbox/`` (sink down), ``overflow/`` (queue full), ``rejected.jsonl``
        (dead letters). Records left there by an earlier session are delivered first.
    queue_size : int, default 65_536
        Records the in-memory queue holds before the engine spills to disk.
    to_record : RecordConverter, optional
        Converts offered items that are not records (Nautilus events) on the worker thread.
    validation : {"all", "sampled", "off"}, default "sampled"
        Validate records' JSON against their contract on the worker (producers may build them
        with ``model_construct``, which skips validation on the engine thread): every record, the
        first 100 of each (component, record type) and then one in 100, or none. Wrong types are
        caught in every mode by the serialiser; ``sampled`` may miss an occasional out-of-range
        value after a producer's first 100 records.
    stall_timeout_s : float, default 10.0
        In flight without any acknowledgement this long → the sink is treated as down; after a
        reconnect, this long without progress → the sink client is replaced.
    reconnect_interval_s : float, default 1.0
        How often a down sink is probed (and a refused outbox write retried).
    batch_size : int, default 2_000
        Records the worker takes per turn.
    linger_s : float, default 0.01
        How long the worker lets records accumulate after waking (fewer, larger batches: fewer
        GIL hand-offs with the engine thread).
    session : str, optional
        Session id (default: :func:`new_session_id`).
    dead_letters_path : Path, optional
        The dead-letter file (default ``<spill_dir>/rejected.jsonl``; the bridge puts it in the
        run directory when the spill directory is a shared outbox).
    log : LogLike, optional

    Attributes
    ----------
    close_grace_s : float
        How long :meth:`close` waits for the worker beyond ``timeout_s`` (15 s) before giving up
        on it (the worker then keeps what is left itself when it stops).
    """

    def __init__(
        self,
        sink: Sink,
        spill_dir: Path,
        queue_size: int = 65_536,
        to_record: RecordConverter | None = None,
        validation: str = "sampled",
        stall_timeout_s: float = 10.0,
        reconnect_interval_s: float = 1.0,
        batch_size: int = 2_000,
        linger_s: float = DEFAULT_LINGER_S,
        session: str | None = None,
        dead_letters_path: Path | None = None,
        log: LogLike | None = None,
    ) -> None:
        self.sink = sink
        self.spill_dir = Path(spill_dir)
        self.session = session or new_session_id()
        self.close_grace_s = 15.0
        self._log: LogLike = log or default_log()
        self.dead_letters = DeadLetters(
            dead_letters_path or self.spill_dir / "rejected.jsonl",
            self.session,
            self._log,
        )
        self.encoder = RecordEncoder(
            self.session, self.dead_letters, self._log, to_record, validation
        )
        self.ingress = IngressQueue(
            self.spill_dir / "overflow",
            queue_size,
            self.encoder,
            self.dead_letters,
            self._log,
        )
        self.outbox = Outbox(self.spill_dir / "outbox", reconnect_interval_s, self._log)
        self.delivery = Delivery(
            sink,
            self.ingress,
            self.outbox,
            self.dead_letters,
            stall_timeout_s=stall_timeout_s,
            reconnect_interval_s=reconnect_interval_s,
            batch_size=batch_size,
            log=self._log,
        )
        self.worker = DeliveryWorker(self.delivery, self.ingress, linger_s, self._log)
        self.started = False
        self._recovered = 0

    @property
    def closed(self) -> bool:
        return self.ingress.closed

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spill logs, and start the worker thread, which opens the sink (idempotent)."""
        if self.started:
            return
        self.started = True
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        self.dead_letters.path.parent.mkdir(parents=True, exist_ok=True)
        outbox = self.outbox.open()
        overflow = self.ingress.open()
        # Overflow left by a crashed session is older than anything of ours: move it into the
        # outbox, whose segments are read in (session, seq) order.
        if overflow.adopted:
            self.outbox.absorb(overflow)
        self._recovered = outbox.adopted + outbox.written
        if self._recovered:
            self._log.warning(
                f"Forensics: {self._recovered} records left in {self.spill_dir} by an earlier "
                "session will be delivered first",
            )
        self.worker.start()
        _ACTIVE.add(self)

    @property
    def offer(self) -> Offer:
        """``offer(topic, item, context=None)``: hand one record (or Nautilus event, with its
        ``context``) to the pipeline.

        Engine thread only. Never blocks and never raises: a full queue spills to disk. It is the
        ingress queue's own method, so that a caller that keeps it (the bridge) pays no extra
        call per record on the engine thread.
        """
        return self.ingress.offer

    def reject(self, topic: str, item: Any, reason: str) -> None:
        """Put a message that cannot be a record into the dead-letter file (counted as enqueued
        and rejected, logged). Engine thread only."""
        self.ingress.reject(topic, item, reason)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until everything offered so far is acknowledged by the sink.
        Returns True when nothing is left in the queue, in flight or in the spill files."""
        if not self.started:
            return False
        return self.worker.flush(timeout_s)

    def close(self, timeout_s: float = 30.0) -> PipelineStats:
        """Deliver what is left (up to ``timeout_s``), keep the rest on disk, stop the worker and
        close the sink. Deterministic: when it returns, every record offered before the call is
        either acknowledged by the sink or in the spill directory — unless the worker did not stop
        within ``timeout_s + close_grace_s`` (stuck in a sink call): then an error names what is
        left and where, and the worker, the only one to touch its state, keeps it on disk when it
        stops. Records offered after close go to the overflow file, for the next session.
        Idempotent. Call it from the thread that offers (the engine thread), after the last
        record."""
        if not self.started:
            self.started = True
            self.ingress.closed = True
            return self.stats()
        if self.closed:
            return self.stats()
        self.delivery.begin_close(time.monotonic() + timeout_s)
        self.ingress.wake()
        self.worker.join(timeout_s + self.close_grace_s)
        self.ingress.close_to_engine()  # later offers go to the overflow file
        _ACTIVE.discard(self)
        if self.worker.is_alive():
            # Its state (queue, retry, outbox) is not thread-safe: leave it to the worker, which
            # writes what is left into the outbox when it stops.
            self._log.error(
                f"Forensics worker did not stop within {timeout_s + self.close_grace_s:.1f} s "
                f"(sink {self.sink.name}: {self.sink.reason or 'up'}); not spilling from this "
                f"thread. Left: {len(self.ingress)} queued and "
                f"{self.delivery.in_memory + self.outbox.staged} taken, in memory; "
                f"{self.sink.in_flight()} in flight; {self.outbox.unread} in "
                f"{self.outbox.directory}; {self.ingress.overflow_unread} in "
                f"{self.ingress.overflow_dir}. The worker moves what is in memory to the outbox "
                "when it stops; if the process exits first, that is lost and the files stay for "
                "the next session",
            )
        elif not self.worker.stopped or not self.ingress.empty:
            # The worker is gone (it died, or records were offered from another thread while it
            # was finishing): keep what is left from here.
            self.delivery.keep_undelivered()
        stats = self.stats()
        self._log.info(f"Forensics closed: {stats.summary_line()}")
        return stats

    def stats(self) -> PipelineStats:
        """A snapshot of the counters (approximate while the worker runs)."""
        ingress, outbox, delivery = self.ingress, self.outbox, self.delivery
        return PipelineStats(
            session=self.session,
            enqueued=ingress.enqueued,
            delivered=delivery.delivered,
            spilled=ingress.spilled + outbox.spilled,
            replayed=delivery.replayed,
            failed=delivery.failed,
            sink_resets=self.sink.resets,
            rejected=self.dead_letters.count,
            recovered=self._recovered,
            queued=len(ingress) + ingress.overflow_unread,
            in_flight=self.sink.in_flight(),
            spill_pending=outbox.unread + delivery.in_memory + outbox.staged,
            undelivered=outbox.undelivered,
            worker_cpu_s=self.worker.cpu_s,
            sink=self.sink.name,
            sink_state=(
                "closed"
                if self.closed
                else ("up" if self.sink.healthy else f"down: {self.sink.reason}")
            ),
        )
