"""The forensics pipeline: records in from the engine thread, out to a sink from a worker thread,
never blocking the first and never dropping a record.

Engine side, :meth:`ForensicsPipeline.offer` costs a counter increment and a ``deque.append``
(about a microsecond); it never waits. When the bounded queue is full, the record is encoded and
appended to the *overflow* spill file instead, and so is every later one until the worker has
caught up — so the stream stays in order.

Worker side, one thread takes records in order, converts them (Nautilus events become
:class:`~grodt.core.records.OrderEventRecord`/
:class:`~grodt.core.records.PositionEventRecord`), serialises
and (optionally) validates them, and hands them to the sink. When the sink is down it appends them
to the *outbox* spill file, probes the sink every ``reconnect_interval_s``, and once it is back
replays, in order: deliveries that failed, the outbox, then the queue. Records in flight when a
sink fails come back as failures and are re-sent first, sorted by their ``(session, seq)``.

Stream order is ``retry ++ pending ++ outbox ++ staged ++ queue ++ overflow`` at every moment
(``staged``: taken for the outbox and not written yet, e.g. while the disk is full); every source
is read in order and nothing newer is sent before something older, so order holds per key. A spill
segment is deleted only once what was read from it is delivered or fsynced into the outbox. At
:meth:`close`, whatever could not be delivered within ``flush_timeout_s`` is rewritten, in that
order, into the outbox on disk and is delivered by the next session using the same spill
directory.
"""

import itertools
import json
import threading
import time
import traceback
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from secrets import token_hex
from typing import Any

from pydantic import ValidationError
from pydantic_core import PydanticSerializationError

from grodt.core.records import RecordBase
from grodt.forensics.codec import EncodedRecord
from grodt.forensics.codec import Envelope
from grodt.forensics.codec import record_key
from grodt.forensics.sinks import Sink
from grodt.forensics.spill import LogLike
from grodt.forensics.spill import SpillLog
from grodt.forensics.spill import default_log

RecordConverter = Callable[[Any, Any], "RecordBase | EncodedRecord"]
"""``(item, context) -> record`` for items that are not records already (Nautilus events); may
return the wire form directly (:class:`~grodt.forensics.codec.EncodedRecord`)."""

VALIDATION_MODES = ("all", "sampled", "off")
YIELD_EVERY = 32
"""The worker releases the GIL after this many records (≈0.3 ms of work), so that the engine
thread waits at most that long for it instead of Python's 5 ms switch interval."""
SAMPLE_FIRST = 100
"""``sampled`` validation checks the first this many records of each (component, record type),
then one in this many."""


_ACTIVE: "weakref.WeakSet[ForensicsPipeline]" = weakref.WeakSet()


def active_pipelines() -> list["ForensicsPipeline"]:
    """Pipelines started in this process and not closed yet (for health checks and tests)."""
    return [p for p in list(_ACTIVE) if p._started and not p._closed]


def new_session_id() -> str:
    """A bridge session id that sorts by start time: ``<UNIX ns, 19 digits>-<8 hex>``."""
    return f"{time.time_ns():019d}-{token_hex(4)}"


def _not_a_record(item: Any, context: Any) -> RecordBase:
    raise TypeError(f"not a forensics record: {type(item).__name__}")


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
            f"replayed={self.replayed} failed={self.failed} rejected={self.rejected} "
            f"recovered={self.recovered} queued={self.queued} in_flight={self.in_flight} "
            f"spill_pending={self.spill_pending} undelivered={self.undelivered} "
            f"worker_cpu={self.worker_cpu_s:.2f}s sink={self.sink} ({self.sink_state})"
        )


class ForensicsPipeline:
    """Bounded hand-off from the engine thread to a sink, with disk spill and in-order replay.

    Parameters
    ----------
    sink : Sink
        Where records go (:class:`~grodt.forensics.sinks.KafkaSink` or
        :class:`~grodt.forensics.sinks.ParquetSink`).
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
        How often a down sink is probed.
    batch_size : int, default 2_000
        Records the worker takes per turn.
    linger_s : float, default 0.01
        How long the worker lets records accumulate after waking (fewer, larger batches: fewer
        GIL hand-offs with the engine thread).
    session : str, optional
        Session id (default: :func:`new_session_id`).
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
        linger_s: float = 0.01,
        session: str | None = None,
        log: LogLike | None = None,
    ) -> None:
        self.sink = sink
        self.spill_dir = Path(spill_dir)
        self.session = session or new_session_id()
        self.queue_size = queue_size
        if validation not in VALIDATION_MODES:
            raise ValueError(f"validation must be one of {VALIDATION_MODES}, was {validation!r}")
        self.validation = validation
        self._validated: dict[tuple[str, str], int] = {}
        self._types: dict[type, tuple[Any, Any, bytes]] = {}
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_interval_s = reconnect_interval_s
        self.batch_size = batch_size
        self.linger_s = linger_s
        self.close_grace_s = 15.0
        self._to_record = to_record or _not_a_record
        self._log: LogLike = log or default_log()

        # Engine → worker.
        self._seq = itertools.count(1)
        self._enqueued = 0
        self._queue: deque[tuple[int, str, Any, Any]] = deque()
        self._overflowing = False
        self._overflow_lock = threading.Lock()
        self._overflow: SpillLog | None = None
        self._idle = False
        self._wake = threading.Event()

        # Worker state.
        self._retry: list[Envelope] = []
        self._pending: deque[Envelope] = deque()
        self._outbox: SpillLog | None = None
        self._staged: deque[Envelope] = deque()
        self._stage_retry_at = 0.0
        self._outbox_error = ""
        self._overflow_read = False
        self._thread: threading.Thread | None = None
        self._started = False
        self._closing = False
        self._closed = False
        self._close_deadline = 0.0
        self._drained = threading.Event()
        self._flush_requested = False
        self._stopped = threading.Event()
        self._next_probe = 0.0
        self._down_logged = False
        self._dead_letter_lock = threading.Lock()
        self._lenient_warned: set[str] = set()

        # Counters (each written by one thread).
        self._delivered = 0
        self._spilled_engine = 0
        self._spilled_worker = 0
        self._replayed = 0
        self._failed = 0
        self._rejected_engine = 0
        self._rejected_worker = 0
        self._recovered = 0
        self._undelivered = 0
        self._worker_cpu_s = 0.0

        sink.bind(self._on_delivered, self._on_failed)

    # -- lifecycle --------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the spill logs and the sink, and start the worker thread (idempotent)."""
        if self._started:
            return
        self._started = True
        self.spill_dir.mkdir(parents=True, exist_ok=True)
        self._outbox = SpillLog(self.spill_dir / "outbox", log=self._log)
        self._overflow = SpillLog(self.spill_dir / "overflow", log=self._log)
        # Overflow left by a crashed session is older than anything of ours: move it into the
        # outbox, whose segments are read in (session, seq) order.
        if self._overflow.adopted:
            self._outbox.extend(self._drain_log(self._overflow))
            self._outbox.sync()  # durable before the overflow segments go
            self._overflow.release()
        self._recovered = self._outbox.adopted + (self._outbox.written if self._outbox else 0)
        if self._recovered:
            self._log.warning(
                f"Forensics: {self._recovered} records left in {self.spill_dir} by an earlier "
                "session will be delivered first",
            )
        # The sink connects on the worker thread: a broker that is down or slow at start never
        # holds up the engine's on_start.
        self._thread = threading.Thread(
            target=self._run,
            name=f"grodt-forensics-{self.sink.name}",
            daemon=True,
        )
        self._thread.start()
        _ACTIVE.add(self)

    def offer(self, topic: str, item: Any, context: Any = None) -> None:
        """Hand one record (or Nautilus event, with its ``context``) to the pipeline.

        Engine thread only. Never blocks and never raises: a full queue spills to disk.
        """
        seq = next(self._seq)
        self._enqueued = seq
        if self._overflowing or len(self._queue) >= self.queue_size or self._closed:
            self._offer_slow(seq, topic, item, context)
            return
        self._queue.append((seq, topic, item, context))
        if self._idle:
            self._wake.set()

    def reject(self, topic: str, item: Any, reason: str) -> None:
        """Put a message that cannot be a record into the dead-letter file (counted as enqueued
        and rejected, logged). Engine thread only."""
        seq = next(self._seq)
        self._enqueued = seq
        self._dead_letter(seq, topic, item, reason, on_engine=True)

    def _offer_slow(self, seq: int, topic: str, item: Any, context: Any) -> None:
        try:
            with self._overflow_lock:
                if (
                    not self._closed
                    and not self._overflowing
                    and len(self._queue) < self.queue_size
                ):
                    self._queue.append((seq, topic, item, context))
                    return
                envelope = self._encode(seq, topic, item, context, on_engine=True)
                if envelope is None:
                    return
                if self._closed:
                    # After close: on disk for the next session, which moves the overflow into
                    # its outbox at start. (Not the outbox itself: a worker that did not stop in
                    # time may still be writing it.)
                    assert self._overflow is not None
                    self._overflow.append(envelope)
                    self._overflow.sync()
                    self._spilled_engine += 1
                    self._log.warning(
                        f"Forensics: record {envelope.record_type} {envelope.trace_id!r} arrived "
                        f"after close; kept in {self.spill_dir / 'overflow'} (delivered by the "
                        "next session using this spill directory)",
                    )
                    return
                if not self._overflowing:
                    self._overflowing = True
                    self._log.warning(
                        f"Forensics queue full ({self.queue_size} records): spilling to "
                        f"{self.spill_dir / 'overflow'} until the worker catches up",
                    )
                assert self._overflow is not None
                self._overflow.append(envelope)
                self._spilled_engine += 1
        except Exception as e:  # never raise into the engine; never lose silently
            self._log.error(f"Forensics: cannot spill record {seq} ({type(item).__name__}): {e}")
            self._dead_letter(seq, topic, item, f"spill failed: {e}", on_engine=True)
        finally:
            if self._idle:
                self._wake.set()

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until everything offered so far is acknowledged by the sink.
        Returns True when nothing is left in the queue, in flight or in the spill files."""
        if not self._started or self._thread is None or not self._thread.is_alive():
            return False
        deadline = time.monotonic() + timeout_s
        self._flush_requested = True
        while time.monotonic() < deadline:
            self._drained.clear()
            self._wake.set()
            waited = self._drained.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            if waited and self._is_drained_snapshot():
                return True
        return self._is_drained_snapshot()

    def close(self, timeout_s: float = 30.0) -> PipelineStats:
        """Deliver what is left (up to ``timeout_s``), keep the rest on disk, stop the worker and
        close the sink. Deterministic: when it returns, every record offered before the call is
        either acknowledged by the sink or in the spill directory — unless the worker did not stop
        within ``timeout_s + close_grace_s`` (stuck in a sink call): then an error names what is
        left and where, and the worker, the only one to touch its state, keeps it on disk when it
        stops. Records offered after close go to the overflow file, for the next session.
        Idempotent. Call it from the thread that offers (the engine thread), after the last
        record."""
        if not self._started:
            self._started = True
            self._closed = True
            return self.stats()
        if self._closed:
            return self.stats()
        self._close_deadline = time.monotonic() + timeout_s
        self._closing = True
        self._wake.set()
        assert self._thread is not None
        self._thread.join(timeout_s + self.close_grace_s)
        with self._overflow_lock:
            self._closed = True  # later offers go to the overflow file, under this lock
            _ACTIVE.discard(self)
        if self._thread.is_alive():
            # Its state (queue, retry, outbox) is not thread-safe: leave it to the worker, which
            # writes what is left into the outbox when it stops.
            self._log.error(
                f"Forensics worker did not stop within {timeout_s + self.close_grace_s:.1f} s "
                f"(sink {self.sink.name}: {self.sink.reason or 'up'}); not spilling from this "
                f"thread. Left: {len(self._queue)} queued and "
                f"{len(self._retry) + len(self._pending) + len(self._staged)} taken, in memory; "
                f"{self.sink.in_flight()} in flight; {self._outbox_unread()} in "
                f"{self.spill_dir / 'outbox'}; "
                f"{self._overflow.unread if self._overflow is not None else 0} in "
                f"{self.spill_dir / 'overflow'}. The worker moves what is in memory to the outbox "
                "when it stops; if the process exits first, that is lost and the files stay for "
                "the next session",
            )
        elif not self._stopped.is_set() or self._queue or self._overflowing:
            # The worker is gone (it died, or records were offered from another thread while it
            # was finishing): keep what is left from here.
            self._finalise_spill()
        stats = self.stats()
        self._log.info(f"Forensics closed: {stats.summary_line()}")
        return stats

    def stats(self) -> PipelineStats:
        """A snapshot of the counters (approximate while the worker runs)."""
        outbox = self._outbox.unread if self._outbox is not None else 0
        overflow = self._overflow.unread if self._overflow is not None else 0
        return PipelineStats(
            session=self.session,
            enqueued=self._enqueued,
            delivered=self._delivered,
            spilled=self._spilled_engine + self._spilled_worker,
            replayed=self._replayed,
            failed=self._failed,
            rejected=self._rejected_engine + self._rejected_worker,
            recovered=self._recovered,
            queued=len(self._queue) + overflow,
            in_flight=self.sink.in_flight(),
            spill_pending=outbox + len(self._retry) + len(self._pending) + len(self._staged),
            undelivered=self._undelivered,
            worker_cpu_s=self._worker_cpu_s,
            sink=self.sink.name,
            sink_state=(
                "closed"
                if self._closed
                else ("up" if self.sink.healthy else f"down: {self.sink.reason}")
            ),
        )

    # -- encoding ---------------------------------------------------------------------------------

    def _encode(
        self,
        seq: int,
        topic: str,
        item: Any,
        context: Any,
        on_engine: bool = False,
    ) -> Envelope | None:
        """Record (or event) → envelope; what cannot be encoded goes to the dead-letter file."""
        try:
            if isinstance(item, RecordBase):
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
            self._dead_letter(seq, topic, item, _short_error(e), on_engine=on_engine)
        except Exception as e:
            self._dead_letter(
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
        return Envelope(
            self.session,
            seq,
            topic,
            record_key(record),
            cls.record_type,
            record.trace_id,
            record.ts_event,
            record.ts_init,
            record.component_id,
            prefix + body[1:],
        )

    def _should_validate(self, record: RecordBase) -> bool:
        if self.validation == "all":
            return True
        if self.validation == "off":
            return False
        key = (record.component_id, record.record_type)
        count = self._validated.get(key, 0) + 1
        self._validated[key] = count
        return count <= SAMPLE_FIRST or count % SAMPLE_FIRST == 0

    def _dead_letter(
        self,
        seq: int,
        topic: str,
        item: Any,
        error: str,
        on_engine: bool,
        envelope: Envelope | None = None,
    ) -> None:
        if on_engine:
            self._rejected_engine += 1
            count = self._rejected_engine
        else:
            self._rejected_worker += 1
            count = self._rejected_worker
        path = self.spill_dir / "rejected.jsonl"
        component = getattr(item, "component_id", None) or type(item).__name__
        if count <= 20 or count % 1000 == 0:
            self._log.error(
                f"Forensics: record {seq} on {topic} from {component} rejected ({error}); "
                f"kept in {path}",
            )
        line: dict[str, Any] = {
            "session": self.session,
            "seq": seq,
            "topic": topic,
            "component": str(component),
            "error": error,
        }
        if envelope is not None:
            line["record"] = envelope.value.decode(errors="replace")
        else:
            line["repr"] = repr(item)[:4000]
        try:
            with self._dead_letter_lock, path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        except OSError as e:
            self._log.error(f"Forensics: cannot write {path}: {e}; record {seq} was {line}")

    # -- worker -----------------------------------------------------------------------------------

    def _on_delivered(self, envelope: Envelope) -> None:
        self._delivered += 1
        if envelope.from_spill:
            self._replayed += 1

    def _on_failed(self, envelope: Envelope, error: str, permanent: bool) -> None:
        self._failed += 1
        envelope.attempts += 1
        if permanent:
            # Retrying cannot help, and a retry would come after newer records of its key.
            self._dead_letter(
                envelope.seq,
                envelope.topic,
                None,
                f"delivery failed permanently (attempt {envelope.attempts}): {error}",
                on_engine=False,
                envelope=envelope,
            )
            return
        self._retry.append(envelope)

    def _open_sink(self) -> None:
        try:
            self.sink.open()
        except Exception as e:
            self.sink.healthy = False
            self.sink.reason = f"open failed: {e}"
            self._log.error(f"Forensics sink {self.sink.name}: open failed: {e}")
        if not self.sink.healthy:
            self._log.warning(
                f"Forensics sink {self.sink.name} is down ({self.sink.reason}); records spill "
                f"to {self.spill_dir / 'outbox'} until it is reachable",
            )
            self._down_logged = True
            self._next_probe = time.monotonic() + self.reconnect_interval_s

    def _run(self) -> None:
        try:
            self._open_sink()
            while True:
                try:
                    moved = self._turn()
                except Exception as e:  # keep the worker alive; records stay queued or spilled
                    self._log.error(
                        f"Forensics worker error: {type(e).__name__}: {e}\n"
                        f"{traceback.format_exc(limit=6)}",
                    )
                    self.sink.healthy = False
                    self.sink.reason = f"worker error: {e}"
                    moved = False
                    time.sleep(0.1)
                if self._closing:
                    if self._is_drained_snapshot() or time.monotonic() >= self._close_deadline:
                        break
                    if not moved:
                        if self.sink.healthy:
                            self.sink.flush(0.0)  # write out buffers (Parquet) now
                        time.sleep(0.005)
                    continue
                if moved:
                    continue
                if self._flush_requested and self.sink.healthy:
                    self._flush_requested = False
                    self.sink.flush(0.0)  # buffered sinks (Parquet) write out now
                    continue
                self._worker_cpu_s = time.thread_time()
                if self._is_drained_snapshot():
                    self._drained.set()
                self._idle = True
                if not self._queue and not self._overflowing:
                    self._wake.wait(0.05 if self.sink.in_flight() else 0.25)
                self._wake.clear()
                self._idle = False
                if self.linger_s and len(self._queue) < self.batch_size:
                    time.sleep(self.linger_s)
        finally:
            try:
                self._finish_worker()
            except Exception as e:
                self._log.error(
                    f"Forensics worker shutdown error: {e}\n{traceback.format_exc(limit=6)}",
                )
            self._worker_cpu_s = time.thread_time()
            self._stopped.set()

    def _turn(self) -> bool:
        """One round of work; True when records moved."""
        sink = self.sink
        sink.poll(0)
        if sink.healthy and sink.stalled(self.stall_timeout_s):
            sink.healthy = False
            sink.reason = f"no acknowledgement for {self.stall_timeout_s:.0f} s"
        if not sink.healthy:
            return self._turn_down()
        if self._down_logged:
            self._down_logged = False
            self._log.info(
                f"Forensics sink {sink.name} is back; replaying "
                f"{len(self._retry) + len(self._pending) + self._outbox_unread()} records"
                + (f" (and {len(self._staged)} held in memory)" if self._staged else ""),
            )
        return self._turn_up()

    def _outbox_unread(self) -> int:
        return self._outbox.unread if self._outbox is not None else 0

    def _turn_up(self) -> bool:
        sink = self.sink
        moved = False
        if self._retry:
            self._retry.sort(key=_order)
            self._pending.extendleft(reversed(self._retry))
            self._retry.clear()
        # 1. What was taken earlier and not sent yet (oldest first).
        if self._pending:
            moved = True
            if not self._send_pending():
                return True
        # 2. The outbox, then what could not be written to it.
        assert self._outbox is not None
        if self._outbox.unread:
            batch = self._outbox.read(self.batch_size)
            self._pending.extend(batch)
            return True
        if self._staged:
            self._pending.extend(self._staged)
            self._staged.clear()
            return True
        if not self._retry and sink.in_flight() == 0:
            if self._outbox.paths():
                self._outbox.release()
            if self._overflow_read:
                self._release_overflow()
        # 3. The queue, then the overflow file.
        batch = self._take_ingress()
        if batch:
            self._pending.extend(batch)
            moved = True
            if not self._send_pending():
                return True
        sink.poll(0)
        return moved

    def _send_pending(self) -> bool:
        """Send ``_pending`` in order; False when the sink pushed back (the rest stays)."""
        sink = self.sink
        pending = self._pending
        sent = 0
        while pending:
            if not sink.send(pending[0]):
                sink.poll(0.01)
                return False
            pending.popleft()
            if not sink.healthy:  # the send failed it: what follows waits for the retry
                return False
            sent += 1
            if sent % (8 * YIELD_EVERY) == 0:
                time.sleep(0)
        return True

    def _turn_down(self) -> bool:
        sink = self.sink
        assert self._outbox is not None
        if not self._down_logged:
            self._down_logged = True
            self._log.warning(
                f"Forensics sink {sink.name} is down ({sink.reason}); spilling to "
                f"{self.spill_dir / 'outbox'} and retrying every {self.reconnect_interval_s} s",
            )
        moved = self._take_ingress_into_outbox()
        now = time.monotonic()
        if now >= self._next_probe and not self._past_close_deadline():
            self._next_probe = now + self.reconnect_interval_s
            if self._sync_outbox() and self._overflow_read:
                self._release_overflow()
            if getattr(sink, "fatal", False):
                sink.reset(self._budget(5.0))
            if sink.probe(self._budget(10.0)):
                # Reachable: let the client finish what it holds (same producer id: no
                # duplicates), and start over with a fresh client if that makes no progress.
                deadline = time.monotonic() + self.stall_timeout_s
                while (
                    sink.in_flight()
                    and time.monotonic() < deadline
                    and not self._past_close_deadline()  # close() may come meanwhile
                ):
                    sink.poll(0.05)
                    if getattr(sink, "fatal", False):
                        break
                    if self._take_ingress_into_outbox():
                        moved = True
                if self._past_close_deadline():
                    return moved  # the worker stops now; its exit keeps what is left
                if sink.in_flight() or getattr(sink, "fatal", False):
                    self._log.warning(
                        f"Forensics sink {sink.name}: {sink.in_flight()} records still "
                        "unacknowledged after reconnecting; restarting the client and sending "
                        "them again (readers deduplicate on session and seq)",
                    )
                    sink.reset(self._budget(5.0))
                    if not sink.probe(self._budget(10.0)):
                        return moved
                sink.healthy = True
                sink.reason = ""
                return True
        if not moved:
            sink.poll(0.01)
        return moved

    def _past_close_deadline(self) -> bool:
        return self._closing and time.monotonic() >= self._close_deadline

    def _budget(self, wait_s: float) -> float:
        """How long a sink may block now: ``wait_s``, less while closing (at least 0.5 s)."""
        if not self._closing:
            return wait_s
        return max(0.5, min(wait_s, self._close_deadline - time.monotonic()))

    def _take_ingress_into_outbox(self) -> bool:
        """Sink down: move the next batch of the queue (or overflow) into the outbox. Nothing is
        taken while earlier records wait to be written (the disk refused them)."""
        if self._staged and not self._write_staged():
            return False
        batch = self._take_ingress()
        if not batch:
            return False
        self._staged.extend(batch)
        self._write_staged()
        return True

    def _write_staged(self) -> bool:
        """Append the staged records to the outbox, in order; True when none are left. A write
        error (disk full) keeps the rest staged, in memory, and is retried after
        ``reconnect_interval_s``."""
        staged = self._staged
        if not staged:
            return True
        now = time.monotonic()
        if now < self._stage_retry_at:
            return False
        assert self._outbox is not None
        append = self._outbox.append
        written = 0
        try:
            while staged:
                append(staged[0])
                staged.popleft()
                written += 1
        except OSError as e:
            self._outbox_write_failed(e, f"{len(staged)} records are held in memory, in order,")
            return False
        finally:
            self._spilled_worker += written
        self._outbox_writable()
        return True

    def _sync_outbox(self) -> bool:
        """fsync the outbox; False (logged) when the disk refuses."""
        assert self._outbox is not None
        try:
            self._outbox.sync()
        except OSError as e:
            self._outbox_write_failed(e, "the records already written are kept")
            return False
        self._outbox_writable()
        return True

    def _outbox_write_failed(self, error: OSError, what: str) -> None:
        self._stage_retry_at = time.monotonic() + self.reconnect_interval_s
        if not self._outbox_error:
            self._log.error(
                f"Forensics: cannot write the outbox {self.spill_dir / 'outbox'} ({error}; disk "
                f"full?); {what} and written when the disk accepts them again (retried every "
                f"{self.reconnect_interval_s} s; a stop meanwhile keeps what it can)",
            )
        self._outbox_error = str(error)

    def _outbox_writable(self) -> None:
        if self._outbox_error:
            self._outbox_error = ""
            self._log.info(f"Forensics: the outbox {self.spill_dir / 'outbox'} is writable again")

    def _release_overflow(self) -> None:
        """Delete the overflow segments read completely, once nothing read from them is only in
        memory: delivered, dead-lettered, or in the outbox, fsynced."""
        if self._retry or self._pending or self._staged or self.sink.in_flight():
            return
        if not self._sync_outbox():
            return
        assert self._overflow is not None
        with self._overflow_lock:
            self._overflow.release()
        self._overflow_read = False

    def _take_ingress(self) -> list[Envelope]:
        """Up to ``batch_size`` records from the queue, or (queue empty) from the overflow.

        The overflow lock is held only to note what to read (and to flush the engine's writes);
        the reading and decoding run outside it, so that the engine never waits on them. The
        segments read stay on disk until :meth:`_release_overflow`."""
        out: list[Envelope] = []
        queue = self._queue
        encode = self._encode
        taken = 0
        while queue and taken < self.batch_size:
            seq, topic, item, context = queue.popleft()
            envelope = encode(seq, topic, item, context)
            if envelope is not None:
                out.append(envelope)
            taken += 1
            if taken % YIELD_EVERY == 0:
                time.sleep(0)  # hand the GIL to the engine thread if it is waiting
        if out or not self._overflowing:
            return out
        overflow = self._overflow
        assert overflow is not None
        with self._overflow_lock:
            if self._queue:
                return out
            plan = overflow.plan_read(self.batch_size)
            if not plan:
                self._caught_up()
                return out
        out = overflow.read(self.batch_size, plan)
        self._overflow_read = True
        with self._overflow_lock:
            if overflow.unread == 0:
                self._caught_up()
        return out

    def _caught_up(self) -> None:
        """(Under the overflow lock.) The overflow is read: the engine may use the queue again."""
        self._overflowing = False
        self._log.info("Forensics queue caught up with its overflow file")

    def _drain_log(self, log: SpillLog) -> list[Envelope]:
        out: list[Envelope] = []
        while True:
            chunk = log.read(10_000)
            if not chunk:
                return out
            out.extend(chunk)

    def _is_drained_snapshot(self) -> bool:
        return (
            not self._queue
            and not self._overflowing
            and not self._retry
            and not self._pending
            and not self._staged
            and self._outbox_unread() == 0
            and self.sink.in_flight() == 0
        )

    def _finish_worker(self) -> None:
        """Worker exit: flush the sink; whatever is not acknowledged goes to the outbox."""
        sink = self.sink
        remaining = max(0.0, self._close_deadline - time.monotonic())
        if sink.healthy:
            sink.flush(max(remaining, 0.5))
        sink.poll(0)
        if sink.in_flight():
            sink.reset(max(0.5, min(5.0, remaining)))  # unacknowledged → failures → retry list
        self._finalise_spill()
        try:
            sink.close()
        except Exception as e:
            self._log.error(f"Forensics sink {sink.name}: close failed: {e}")

    def _finalise_spill(self) -> None:
        """Everything not delivered, in order, into one fsynced outbox segment; then the
        overflow segments it absorbed are deleted. Runs on the worker, or on the closing thread
        once the worker is gone."""
        assert self._outbox is not None and self._overflow is not None
        head = sorted(self._retry, key=_order) + list(self._pending)
        self._retry.clear()
        self._pending.clear()
        tail: list[Envelope] = list(self._staged)
        self._staged.clear()
        while self._queue:
            seq, topic, item, context = self._queue.popleft()
            envelope = self._encode(seq, topic, item, context)
            if envelope is not None:
                tail.append(envelope)
        with self._overflow_lock:
            tail.extend(self._drain_log(self._overflow))
            self._overflow.close()  # offers after close start a new segment
            self._overflowing = False
        if head or tail or self._outbox.unread:
            written_before = len(head) + len(tail)
            self._undelivered = self._outbox.rewrite(head, tail)
            self._spilled_worker += written_before
            self._outbox.close()
            self._log.warning(
                f"Forensics: {self._undelivered} records could not be delivered before close; "
                f"kept in {self.spill_dir / 'outbox'} (delivered by the next session using "
                "this spill directory)",
            )
        else:
            self._outbox.release()
            self._outbox.close()
        with self._overflow_lock:  # the outbox is fsynced: what was read from these is safe
            self._overflow.release()
            self._overflow.close()


def _order(envelope: Envelope) -> tuple[str, int]:
    return (envelope.session, envelope.seq)


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
