"""Non-blocking metric logging to a live MLflow run, with natural batching and no loss.

MLflow's own asynchronous logging (``log_metric(..., synchronous=False)``) returns in
microseconds, but its worker commits one database transaction per call unless
``MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS`` is set, and that setting is whole seconds: either
the store sees a transaction per metric (a busy training loop outruns it and the queue grows
without bound) or every metric waits ≥ 1 s to become durable. A failed batch is logged and
dropped.

:class:`MetricStream` keeps the caller's cost the same (a tuple put on a queue) and has one
writer thread per stream that commits *whatever has queued up* since its last commit in one
``log_batch`` (up to 1000 metrics): an idle stream commits a metric as soon as it arrives, a busy
one amortises a transaction over many metrics. A failed commit is retried with backoff, never
dropped; :meth:`flush` blocks until everything logged before it is durable, and
:meth:`close` reports what could not be committed (the run bundle on disk still holds it).

Examples
--------
>>> stream = MetricStream(client, run_id)          # doctest: +SKIP
>>> stream.log("loss", 0.31, step=120)             # returns in ~µs
>>> stream.flush()                                 # durable from here on
>>> stats = stream.close()
"""

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from grodt.tracking.sqlmetrics import MetricRow
from grodt.tracking.sqlmetrics import SqlMetricCommitter
from grodt.tracking.sqlmetrics import UnsupportedSchema
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import open_client

logger = logging.getLogger("grodt.tracking")

MAX_BATCH = 1000
_STOP = object()


@dataclass
class StreamStats:
    """Counters of a :class:`MetricStream`.

    Attributes
    ----------
    logged : int
        Metrics handed to :meth:`MetricStream.log`.
    committed : int
        Metrics in committed ``log_batch`` calls.
    batches : int
        Committed transactions.
    retries : int
        Failed commits that were retried.
    lost : int
        Metrics still uncommitted when the stream was closed (0 unless the store was down).
    durable_latency_s : np.ndarray
        Per-metric time from :meth:`MetricStream.log` to its commit, seconds (only when
        ``record_latency=True``).
    last_error : str | None
        The last commit error.
    """

    logged: int = 0
    committed: int = 0
    batches: int = 0
    retries: int = 0
    lost: int = 0
    durable_latency_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    last_error: str | None = None


class MetricStream:
    """Asynchronous, batching, retrying metric writer for one MLflow run.

    Parameters
    ----------
    client : mlflow.MlflowClient
        A client on the run's tracking store.
    run_id : str
        The live run.
    max_batch : int, default 1000
        Most metrics per transaction (MLflow's per-request limit).
    record_latency : bool, default False
        Keep each metric's log→commit latency (benchmarks).
    retry_max_s : float, default 5.0
        Ceiling of the exponential backoff between retries of a failed commit.
    """

    def __init__(
        self,
        client: Any,
        run_id: str,
        max_batch: int = MAX_BATCH,
        record_latency: bool = False,
        retry_max_s: float = 5.0,
        committer: Callable[[list[MetricRow]], None] | None = None,
    ) -> None:
        self.client = client
        self.run_id = run_id
        self._commit_rows = committer or self._mlflow_commit
        self.max_batch = max_batch
        self.record_latency = record_latency
        self.retry_max_s = retry_max_s
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._logged = 0
        self._committed = 0
        self._batches = 0
        self._retries = 0
        self._latencies: list[np.ndarray] = []
        self._last_error: str | None = None
        self._done = threading.Condition()
        self._closing = False
        self._abandon = False
        self._thread = threading.Thread(
            target=self._run,
            name=f"grodt-metrics-{run_id[:8]}",
            daemon=True,
        )
        self._thread.start()

    def log(self, key: str, value: float, step: int = 0, timestamp_ms: int | None = None) -> None:
        """Queue one metric; returns immediately. ``timestamp_ms`` defaults to now."""
        now = time.time_ns()
        self._logged += 1
        self._queue.put(
            (key, float(value), int(step), timestamp_ms or now // 1_000_000, time.perf_counter()),
        )

    def log_many(self, values: dict[str, float], step: int = 0) -> None:
        """Queue several metrics of one step."""
        timestamp = time.time_ns() // 1_000_000
        for key, value in values.items():
            self.log(key, value, step, timestamp)

    def _drain(self, first: Any) -> tuple[list[Any], bool]:
        items = [first]
        stop = False
        while len(items) < self.max_batch:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            items.append(item)
        return items, stop

    def _mlflow_commit(self, rows: list[MetricRow]) -> None:
        from mlflow.entities import Metric

        metrics = [Metric(key, value, ts, step) for key, value, step, ts in rows]
        self.client.log_batch(self.run_id, metrics=metrics)

    def _commit(self, items: list[Any]) -> bool:
        rows = [(key, value, step, ts) for key, value, step, ts, _ in items]
        delay = 0.05
        while True:
            try:
                self._commit_rows(rows)
                break
            except Exception as e:  # store errors: retry, never drop silently
                self._retries += 1
                first = str(e).strip().splitlines()[0] if str(e).strip() else ""
                message = f"{type(e).__name__}: {first}"
                if message != self._last_error:
                    logger.warning(
                        "metrics for run %s not committed yet (%s); retrying",
                        self.run_id,
                        message,
                    )
                self._last_error = message
                if self._abandon:
                    return False
                time.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
        done = time.perf_counter()
        if self.record_latency:
            self._latencies.append(np.array([done - item[4] for item in items]))
        with self._done:
            self._committed += len(items)
            self._batches += 1
            self._done.notify_all()
        return True

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP or self._abandon:
                return
            items, stop = self._drain(first)
            if not self._commit(items):
                return
            if stop:
                return

    def flush(self, timeout: float | None = None) -> bool:
        """Block until every metric logged so far is committed; False on timeout."""
        target = self._logged
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._done:
            while self._committed < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                if not self._thread.is_alive():
                    return False
                self._done.wait(0.1 if remaining is None else min(remaining, 0.1))
        return True

    def close(self, timeout: float = 60.0) -> StreamStats:
        """Flush (up to ``timeout`` seconds), stop the writer and return the counters."""
        if not self._closing:
            self._closing = True
            flushed = self.flush(timeout)
            if not flushed:
                # Stop committing: the caller re-uploads the run from its bundle instead.
                self._abandon = True
                if self._last_error is None:
                    self._last_error = f"not flushed within {timeout:.0f} s"
            self._queue.put(_STOP)
            self._thread.join(timeout=max(self.retry_max_s * 2, 1.0))
            closer = getattr(self._commit_rows, "__self__", None)
            if isinstance(closer, SqlMetricCommitter):
                closer.close()
        return self.stats()

    def stats(self) -> StreamStats:
        latencies = np.concatenate(self._latencies) if self._latencies else np.empty(0)
        return StreamStats(
            logged=self._logged,
            committed=self._committed,
            batches=self._batches,
            retries=self._retries,
            lost=self._logged - self._committed,
            durable_latency_s=latencies,
            last_error=self._last_error,
        )


def open_metric_stream(
    store: TrackingStore,
    run_id: str,
    record_latency: bool = False,
    direct: bool = True,
) -> MetricStream:
    """A :class:`MetricStream` for ``run_id`` on ``store``.

    With ``direct=True`` (default) on a PostgreSQL or SQLite store, batches are committed by
    :class:`~grodt.tracking.sqlmetrics.SqlMetricCommitter` (one transaction, same rows as
    MLflow); any other store, or a schema this grodt does not know, uses MLflow's
    ``log_batch``.
    """
    client = open_client(store)
    committer = None
    if direct and store.scheme in ("postgresql", "sqlite"):
        try:
            committer = SqlMetricCommitter(store, run_id).commit
        except UnsupportedSchema as e:
            logger.info("metric stream uses MLflow's log_batch: %s", e)
    return MetricStream(client, run_id, record_latency=record_latency, committer=committer)
