"""Delivery: the worker's side of the pipeline — records from the ingress queue (or the outbox)
to the sink, in order, through outages.

Stream order is ``retry ++ pending ++ outbox ++ staged ++ queue ++ overflow`` at every moment
(``retry``: deliveries that failed, re-sent first, sorted by ``(session, seq)``; ``pending``: taken
and not sent yet, because the sink pushed back). Every source is read in order and nothing newer
is sent before something older, so order holds per key.

Sink up, a turn sends ``retry`` and ``pending``, then the outbox, then the ingress. Sink down
(it said so, or nothing was acknowledged for ``stall_timeout_s``), a turn moves the ingress into
the outbox and probes the sink every ``reconnect_interval_s``; once it answers, what it still
holds is given ``stall_timeout_s`` to complete, else its client is replaced and those records come
back as failures to re-send. A spill segment is deleted only once what was read from it is
delivered or fsynced into the outbox.

Every method runs on the worker thread, except :meth:`Delivery.keep_undelivered` when the worker
is gone (see :meth:`~actors.forensics.pipeline.ForensicsPipeline.close`).
"""

import time
from collections import deque

from actors.forensics.codec import Envelope
from actors.forensics.dead_letters import DeadLetters
from actors.forensics.ingress import YIELD_EVERY
from actors.forensics.ingress import IngressQueue
from actors.forensics.outbox import Outbox
from actors.forensics.sinks import Sink
from actors.forensics.spill import LogLike

__all__ = ["Delivery"]


def _order(envelope: Envelope) -> tuple[str, int]:
    return (envelope.session, envelope.seq)


class Delivery:
    """Drives one sink from the worker thread: sends in order, retries, spills and reconnects.

    Parameters
    ----------
    sink : Sink
        Bound here: its acknowledgements and failures come back to this object.
    ingress : IngressQueue
        Where new records come from.
    outbox : Outbox
        Where records wait while the sink is down.
    dead_letters : DeadLetters
        Where records that failed permanently go.
    stall_timeout_s, reconnect_interval_s : float
        See :class:`~actors.forensics.pipeline.ForensicsPipeline`.
    batch_size : int
        Records taken from one source per turn.
    log : LogLike
    """

    def __init__(
        self,
        sink: Sink,
        ingress: IngressQueue,
        outbox: Outbox,
        dead_letters: DeadLetters,
        stall_timeout_s: float,
        reconnect_interval_s: float,
        batch_size: int,
        log: LogLike,
    ) -> None:
        self.sink = sink
        self.ingress = ingress
        self.outbox = outbox
        self._dead_letters = dead_letters
        self.stall_timeout_s = stall_timeout_s
        self.reconnect_interval_s = reconnect_interval_s
        self.batch_size = batch_size
        self._log = log
        self._retry: list[Envelope] = []
        self._pending: deque[Envelope] = deque()
        self._next_probe = 0.0
        self._down_logged = False
        self.closing = False
        self.close_deadline = 0.0
        # Counters (worker thread only).
        self.delivered = 0
        self.replayed = 0
        self.failed = 0
        sink.bind(self.on_delivered, self.on_failed)

    @property
    def in_memory(self) -> int:
        """Records taken from the ingress or the outbox and not handed to the sink yet."""
        return len(self._retry) + len(self._pending)

    def begin_close(self, deadline: float) -> None:
        """From now on, work towards stopping by ``deadline`` (``time.monotonic()`` seconds)."""
        self.close_deadline = deadline
        self.closing = True

    def past_close_deadline(self) -> bool:
        return self.closing and time.monotonic() >= self.close_deadline

    def drained(self) -> bool:
        """Nothing anywhere: queue, overflow, memory, outbox, or in flight."""
        return (
            self.ingress.empty
            and not self._retry
            and not self._pending
            and not self.outbox.staged
            and self.outbox.unread == 0
            and self.sink.in_flight() == 0
        )

    # -- sink callbacks (run inside ``sink.poll``, on the worker) --------------------------------

    def on_delivered(self, envelope: Envelope) -> None:
        """The sink acknowledged ``envelope`` (runs inside ``sink.poll``, on the worker)."""
        self.delivered += 1
        if envelope.from_spill:
            self.replayed += 1

    def on_failed(self, envelope: Envelope, error: str, permanent: bool) -> None:
        """A delivery of ``envelope`` failed: dead-lettered when ``permanent``, else re-sent
        first (runs inside ``sink.poll`` or ``sink.send``, on the worker)."""
        self.failed += 1
        envelope.attempts += 1
        if permanent:
            # Retrying cannot help, and a retry would come after newer records of its key.
            self._dead_letters.add(
                envelope.seq,
                envelope.topic,
                None,
                f"delivery failed permanently (attempt {envelope.attempts}): {error}",
                on_engine=False,
                envelope=envelope,
            )
            return
        self._retry.append(envelope)

    # -- turns ------------------------------------------------------------------------------------

    def open_sink(self) -> None:
        """Connect the sink; a failure marks it down (logged), to be probed later."""
        try:
            self.sink.open()
        except Exception as e:
            self.sink.healthy = False
            self.sink.reason = f"open failed: {e}"
            self._log.error(f"Forensics sink {self.sink.name}: open failed: {e}")
        if not self.sink.healthy:
            self._log.warning(
                f"Forensics sink {self.sink.name} is down ({self.sink.reason}); records spill "
                f"to {self.outbox.directory} until it is reachable",
            )
            self._down_logged = True
            self._next_probe = time.monotonic() + self.reconnect_interval_s

    def turn(self) -> bool:
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
                f"{len(self._retry) + len(self._pending) + self.outbox.unread} records"
                + (f" (and {self.outbox.staged} held in memory)" if self.outbox.staged else ""),
            )
        return self._turn_up()

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
        if self.outbox.unread:
            self._pending.extend(self.outbox.read(self.batch_size))
            return True
        if self.outbox.staged:
            self._pending.extend(self.outbox.take_staged())
            return True
        if not self._retry and sink.in_flight() == 0:
            self.outbox.release_read()
            if self.ingress.overflow_read:
                self._release_overflow()
        # 3. The queue, then the overflow file.
        batch = self.ingress.take(self.batch_size)
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
        if not self._down_logged:
            self._down_logged = True
            self._log.warning(
                f"Forensics sink {sink.name} is down ({sink.reason}); spilling to "
                f"{self.outbox.directory} and retrying every {self.reconnect_interval_s} s",
            )
        moved = self._spill_ingress()
        if sink.fatal and not self.past_close_deadline():
            # The producer cannot go on, whatever the broker's state: replace it now (what it
            # held comes back as failures, re-sent first, in order), then probe as usual.
            sink.reset(self._budget(5.0))
        now = time.monotonic()
        if now >= self._next_probe and not self.past_close_deadline():
            self._next_probe = now + self.reconnect_interval_s
            if self.outbox.sync() and self.ingress.overflow_read:
                self._release_overflow()
            if sink.probe(self._budget(10.0)):
                return self._reconnected(moved)
        if not moved:
            sink.poll(0.01)
        return moved

    def _reconnected(self, moved: bool) -> bool:
        """The sink answers a probe: let the client finish what it holds (same producer id: no
        duplicates), and start over with a fresh client if that makes no progress."""
        sink = self.sink
        deadline = time.monotonic() + self.stall_timeout_s
        while (
            sink.in_flight()
            and time.monotonic() < deadline
            and not self.past_close_deadline()  # close() may come meanwhile
        ):
            sink.poll(0.05)
            if sink.fatal:
                break
            if self._spill_ingress():
                moved = True
        if self.past_close_deadline():
            return moved  # the worker stops now; its exit keeps what is left
        if sink.in_flight() or sink.fatal:
            why = "the client failed fatally" if sink.fatal else "no progress"
            self._log.warning(
                f"Forensics sink {sink.name}: {sink.in_flight()} records still "
                f"unacknowledged after reconnecting ({why}); restarting the client and sending "
                "them again (readers deduplicate on session and seq)",
            )
            sink.reset(self._budget(5.0))
            if not sink.probe(self._budget(10.0)):
                return moved
        sink.healthy = True
        sink.reason = ""
        return True

    def _budget(self, wait_s: float) -> float:
        """How long a sink may block now: ``wait_s``, less while closing (at least 0.5 s)."""
        if not self.closing:
            return wait_s
        return max(0.5, min(wait_s, self.close_deadline - time.monotonic()))

    def _spill_ingress(self) -> bool:
        """Sink down: move the next batch of the queue (or overflow) into the outbox. Nothing is
        taken while earlier records wait to be written (the disk refused them)."""
        if self.outbox.staged and not self.outbox.write_staged():
            return False
        batch = self.ingress.take(self.batch_size)
        if not batch:
            return False
        self.outbox.stage(batch)
        return True

    def _release_overflow(self) -> None:
        """Delete the overflow segments read completely, once nothing read from them is only in
        memory: delivered, dead-lettered, or in the outbox, fsynced."""
        if self._retry or self._pending or self.outbox.staged or self.sink.in_flight():
            return
        if not self.outbox.sync():
            return
        self.ingress.release_overflow()

    # -- stopping ---------------------------------------------------------------------------------

    def finish(self) -> None:
        """Worker exit: flush the sink; whatever is not acknowledged goes to the outbox; close the
        sink."""
        sink = self.sink
        remaining = max(0.0, self.close_deadline - time.monotonic())
        if sink.healthy:
            sink.flush(max(remaining, 0.5))
        sink.poll(0)
        if sink.in_flight():
            sink.reset(max(0.5, min(5.0, remaining)))  # unacknowledged → failures → retry list
        self.keep_undelivered()
        try:
            sink.close()
        except Exception as e:
            self._log.error(f"Forensics sink {sink.name}: close failed: {e}")

    def keep_undelivered(self) -> None:
        """Everything not delivered, in order, into one fsynced outbox segment; then the
        overflow segments it absorbed are deleted. Runs on the worker, or on the closing thread
        once the worker is gone."""
        head = sorted(self._retry, key=_order) + list(self._pending)
        self._retry.clear()
        self._pending.clear()
        self.outbox.keep(head, self.ingress.drain())
        # The outbox is fsynced: what was read from the overflow is safe.
        self.ingress.release_closed_overflow()
