"""The delivery worker thread: runs :class:`~actors.forensics.delivery.Delivery` turns until the
pipeline closes, sleeps when there is nothing to do, and answers flush requests.

The sink connects on this thread: a broker that is down or slow at start never holds up the
engine's ``on_start``. An error in a turn is logged and marks the sink down (records stay queued
or spilled); the thread keeps running. At exit it flushes the sink and keeps what is left on disk.
"""

import threading
import time
import traceback

from actors.forensics.delivery import Delivery
from actors.forensics.ingress import IngressQueue
from actors.forensics.spill import LogLike

__all__ = ["DeliveryWorker"]


class DeliveryWorker:
    """One thread driving one :class:`Delivery`.

    Parameters
    ----------
    delivery : Delivery
    ingress : IngressQueue
        Waited on when idle (offers wake the thread).
    linger_s : float
        How long the thread lets records accumulate after waking (fewer, larger batches).
    log : LogLike
    """

    def __init__(
        self,
        delivery: Delivery,
        ingress: IngressQueue,
        linger_s: float,
        log: LogLike,
    ) -> None:
        self._delivery = delivery
        self._ingress = ingress
        self.linger_s = linger_s
        self._log = log
        self.thread: threading.Thread | None = None
        self._drained = threading.Event()
        self._stopped = threading.Event()
        self._flush_requested = False
        self.cpu_s = 0.0
        """CPU seconds this thread has used (updated when it idles and when it stops)."""

    def start(self) -> None:
        self.thread = threading.Thread(
            target=self._run,
            name=f"grodt-forensics-{self._delivery.sink.name}",
            daemon=True,
        )
        self.thread.start()

    def is_alive(self) -> bool:
        return self.thread is not None and self.thread.is_alive()

    @property
    def stopped(self) -> bool:
        """The thread ran to its end (and kept what was left)."""
        return self._stopped.is_set()

    def wait_stopped(self, timeout_s: float) -> bool:
        return self._stopped.wait(timeout_s)

    def join(self, timeout_s: float) -> None:
        assert self.thread is not None
        self.thread.join(timeout_s)

    def flush(self, timeout_s: float) -> bool:
        """Wait up to ``timeout_s`` until everything offered so far is acknowledged by the sink.
        Returns True when nothing is left in the queue, in flight or in the spill files."""
        if not self.is_alive():
            return False
        delivery = self._delivery
        deadline = time.monotonic() + timeout_s
        self._flush_requested = True
        while time.monotonic() < deadline:
            self._drained.clear()
            self._ingress.wake()
            waited = self._drained.wait(min(0.05, max(0.0, deadline - time.monotonic())))
            if waited and delivery.drained():
                return True
        return delivery.drained()

    def _run(self) -> None:
        delivery = self._delivery
        sink = delivery.sink
        ingress = self._ingress
        try:
            delivery.open_sink()
            while True:
                try:
                    moved = delivery.turn()
                except Exception as e:  # keep the worker alive; records stay queued or spilled
                    self._log.error(
                        f"Forensics worker error: {type(e).__name__}: {e}\n"
                        f"{traceback.format_exc(limit=6)}",
                    )
                    sink.healthy = False
                    sink.reason = f"worker error: {e}"
                    moved = False
                    time.sleep(0.1)
                if delivery.closing:
                    if delivery.drained() or delivery.past_close_deadline():
                        break
                    if not moved:
                        if sink.healthy:
                            sink.flush(0.0)  # write out buffers (Parquet) now
                        time.sleep(0.005)
                    continue
                if moved:
                    continue
                if self._flush_requested and sink.healthy:
                    self._flush_requested = False
                    sink.flush(0.0)  # buffered sinks (Parquet) write out now
                    continue
                self.cpu_s = time.thread_time()
                if delivery.drained():
                    self._drained.set()
                ingress.wait_for_items(0.05 if sink.in_flight() else 0.25)
                if self.linger_s and len(ingress) < delivery.batch_size:
                    time.sleep(self.linger_s)
        finally:
            try:
                delivery.finish()
            except Exception as e:
                self._log.error(
                    f"Forensics worker shutdown error: {e}\n{traceback.format_exc(limit=6)}",
                )
            self.cpu_s = time.thread_time()
            self._stopped.set()
