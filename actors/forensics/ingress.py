"""Engine thread → worker: a bounded in-memory queue that overflows, in order, into a spill file.

Engine side, :meth:`IngressQueue.offer` costs a counter increment and a ``deque.append`` (about a
microsecond); it never waits and never raises. It wakes the worker only when the worker is idle,
once per idle spell (the first offer after the worker went to sleep): a ``threading.Event.set``
per record took the engine thread's time for nothing while the worker was awake anyway. When the
queue is full, the record is encoded and appended to the *overflow* spill log instead, and so is
every later one until the worker has read the overflow back — so the stream stays in order:
``queue ++ overflow``.

Worker side, :meth:`IngressQueue.take` returns the next batch of envelopes, from the queue first
and, once it is empty, from the overflow. Overflow segments stay on disk until the worker says
that what was read from them is safe (:meth:`IngressQueue.release_overflow`).

Threads: the queue is a ``deque`` (one appender, one popper: safe without a lock); the overflow
log is guarded by :attr:`IngressQueue.lock`, held by the engine to append and by the worker only
to note what to read (:meth:`~actors.forensics.spill.SpillLog.plan_read`), never while reading.
"""

import itertools
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any
from typing import Protocol

from actors.forensics.codec import Envelope
from actors.forensics.dead_letters import DeadLetters
from actors.forensics.encoder import RecordEncoder
from actors.forensics.spill import LogLike
from actors.forensics.spill import SpillLog

__all__ = ["YIELD_EVERY", "IngressQueue", "Offer"]

YIELD_EVERY = 32
"""The worker releases the GIL after this many records (≈0.3 ms of work), so that the engine
thread waits at most that long for it instead of Python's 5 ms switch interval."""

QueuedItem = tuple[int, str, Any, Any]
"""``(seq, topic, item, context)`` as offered by the engine, not encoded yet."""


class Offer(Protocol):
    """The engine thread's entry point: ``offer(topic, item, context=None)``."""

    def __call__(self, topic: str, item: Any, context: Any = None) -> None: ...


class IngressQueue:
    """Bounded hand-off of offered items from the engine thread to the worker.

    Parameters
    ----------
    overflow_dir : Path
        The overflow spill log's directory (opened by :meth:`open`).
    capacity : int
        Items the in-memory queue holds before offers spill to ``overflow_dir``.
    encoder : RecordEncoder
        Encodes items (on the engine thread when they spill, on the worker when taken).
    dead_letters : DeadLetters
        Where what cannot be kept otherwise goes.
    log : LogLike
    """

    def __init__(
        self,
        overflow_dir: Path,
        capacity: int,
        encoder: RecordEncoder,
        dead_letters: DeadLetters,
        log: LogLike,
    ) -> None:
        self.overflow_dir = Path(overflow_dir)
        self.capacity = capacity
        self._encoder = encoder
        self._dead_letters = dead_letters
        self._log = log
        self._seq = itertools.count(1)
        self.enqueued = 0
        """Items offered so far (the last ``seq`` given out)."""
        self.spilled = 0
        """Records the engine wrote to the overflow (engine thread only)."""
        self._queue: deque[QueuedItem] = deque()
        self.lock = threading.Lock()
        """Guards the overflow log, ``overflowing`` and ``closed``."""
        self.overflow: SpillLog | None = None
        self.overflowing = False
        """True from the first spilled offer until the worker has read the overflow back: every
        offer meanwhile spills too, so that nothing overtakes what is on disk."""
        self.closed = False
        """Set at the pipeline's close: later offers go to the overflow, for the next session."""
        self.overflow_read = False
        """The worker read overflow records that are not released yet."""
        self._idle = False
        self._wake = threading.Event()
        self.wakeups = 0
        """Times an offer woke the idle worker (at most once per idle spell)."""

    def open(self) -> SpillLog:
        """Open the overflow log (adopting segments an earlier session left) and return it."""
        self.overflow = SpillLog(self.overflow_dir, log=self._log)
        return self.overflow

    def __len__(self) -> int:
        """Items in the in-memory queue now."""
        return len(self._queue)

    @property
    def empty(self) -> bool:
        """Nothing queued and nothing waiting in the overflow."""
        return not self._queue and not self.overflowing

    @property
    def worker_idle(self) -> bool:
        """The worker waits for offers now (the next offer wakes it)."""
        return self._idle

    @property
    def overflow_unread(self) -> int:
        return self.overflow.unread if self.overflow is not None else 0

    # -- engine thread ----------------------------------------------------------------------------

    def offer(self, topic: str, item: Any, context: Any = None) -> None:
        """Queue one item; when the queue is full (or overflowing, or closed), spill it."""
        seq = next(self._seq)
        self.enqueued = seq
        if self.overflowing or len(self._queue) >= self.capacity or self.closed:
            self._offer_slow(seq, topic, item, context)
            return
        self._queue.append((seq, topic, item, context))
        if self._idle:
            self._wake_worker()

    def _wake_worker(self) -> None:
        # Cleared first: the offers until the worker sleeps again need not signal (it drains
        # the queue before it waits, and it waits only on an empty queue).
        self._idle = False
        self.wakeups += 1
        self._wake.set()

    def reject(self, topic: str, item: Any, reason: str) -> None:
        """Give ``item`` its place in the stream and put it into the dead-letter file."""
        seq = next(self._seq)
        self.enqueued = seq
        self._dead_letters.add(seq, topic, item, reason, on_engine=True)

    def _offer_slow(self, seq: int, topic: str, item: Any, context: Any) -> None:
        try:
            with self.lock:
                if not self.closed and not self.overflowing and len(self._queue) < self.capacity:
                    self._queue.append((seq, topic, item, context))
                    return
                envelope = self._encoder.encode(seq, topic, item, context, on_engine=True)
                if envelope is None:
                    return
                if self.closed:
                    # After close: on disk for the next session, which moves the overflow into
                    # its outbox at start. (Not the outbox itself: a worker that did not stop in
                    # time may still be writing it.)
                    assert self.overflow is not None
                    self.overflow.append(envelope)
                    self.overflow.sync()
                    self.spilled += 1
                    self._log.warning(
                        f"Forensics: record {envelope.record_type} {envelope.trace_id!r} arrived "
                        f"after close; kept in {self.overflow_dir} (delivered by the next session "
                        "using this spill directory)",
                    )
                    return
                if not self.overflowing:
                    self.overflowing = True
                    self._log.warning(
                        f"Forensics queue full ({self.capacity} records): spilling to "
                        f"{self.overflow_dir} until the worker catches up",
                    )
                assert self.overflow is not None
                self.overflow.append(envelope)
                self.spilled += 1
        except Exception as e:  # never raise into the engine; never lose silently
            self._log.error(f"Forensics: cannot spill record {seq} ({type(item).__name__}): {e}")
            self._dead_letters.add(seq, topic, item, f"spill failed: {e}", on_engine=True)
        finally:
            if self._idle:
                self._wake_worker()

    def close_to_engine(self) -> None:
        """From now on offers go to the overflow file (fsynced each), for the next session."""
        with self.lock:
            self.closed = True

    # -- worker thread ----------------------------------------------------------------------------

    def wake(self) -> None:
        """Wake the worker if it waits in :meth:`wait_for_items`."""
        self._wake.set()

    def wait_for_items(self, timeout_s: float) -> None:
        """Worker: wait up to ``timeout_s`` for an offer (returns at once when items wait)."""
        self._idle = True
        if not self._queue and not self.overflowing:
            self._wake.wait(timeout_s)
        self._wake.clear()
        self._idle = False

    def take(self, max_records: int) -> list[Envelope]:
        """Up to ``max_records`` records from the queue, or (queue empty) from the overflow.

        The lock is held only to note what to read (and to flush the engine's writes); the
        reading and decoding run outside it, so that the engine never waits on them. The
        segments read stay on disk until :meth:`release_overflow`."""
        out: list[Envelope] = []
        queue = self._queue
        encode = self._encoder.encode
        taken = 0
        while queue and taken < max_records:
            seq, topic, item, context = queue.popleft()
            envelope = encode(seq, topic, item, context)
            if envelope is not None:
                out.append(envelope)
            taken += 1
            if taken % YIELD_EVERY == 0:
                time.sleep(0)  # hand the GIL to the engine thread if it is waiting
        if out or not self.overflowing:
            return out
        overflow = self.overflow
        assert overflow is not None
        with self.lock:
            if self._queue:
                return out
            plan = overflow.plan_read(max_records)
            if not plan:
                self._caught_up()
                return out
        out = overflow.read(max_records, plan)
        self.overflow_read = True
        with self.lock:
            if overflow.unread == 0:
                self._caught_up()
        return out

    def _caught_up(self) -> None:
        """(Under the lock.) The overflow is read: the engine may use the queue again."""
        self.overflowing = False
        self._log.info("Forensics queue caught up with its overflow file")

    def release_overflow(self) -> None:
        """Delete the overflow segments read completely. Call it only once nothing read from
        them is held in memory alone (delivered, dead-lettered or fsynced elsewhere)."""
        assert self.overflow is not None
        with self.lock:
            self.overflow.release()
        self.overflow_read = False

    def drain(self) -> list[Envelope]:
        """Everything left, in order: the queue (encoded), then the overflow. The overflow is
        closed (later offers start a new segment); its segments stay until
        :meth:`release_closed_overflow`."""
        out: list[Envelope] = []
        while self._queue:
            seq, topic, item, context = self._queue.popleft()
            envelope = self._encoder.encode(seq, topic, item, context)
            if envelope is not None:
                out.append(envelope)
        assert self.overflow is not None
        with self.lock:
            out.extend(self.overflow.read_all())
            self.overflow.close()  # offers after close start a new segment
            self.overflowing = False
        return out

    def release_closed_overflow(self) -> None:
        """After :meth:`drain`, once what it returned is safe: delete the segments it read."""
        assert self.overflow is not None
        with self.lock:
            self.overflow.release()
            self.overflow.close()
