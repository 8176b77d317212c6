"""Concurrent metric-logging load against a tracking store, with loss accounting.

Used by ``benchmarks/tracking_scale.py`` (minutes, 20+ processes) and by the test suite
(seconds). ``writers`` processes each own one MLflow run and log ``keys`` metrics per step at
``steps_per_second`` for ``duration_s``; afterwards every run's metric history is read back from
the store and compared with what was logged: ``lost`` counts metrics that a writer logged but
the store does not hold.

Modes:

- ``stream``: :class:`grodt.tracking.stream.MetricStream` (non-blocking, natural batching)
  committing with :class:`grodt.tracking.sqlmetrics.SqlMetricCommitter` (one transaction);
- ``stream-mlflow``: the same stream committing through MLflow's ``log_batch``;
- ``mlflow-async``: ``MlflowClient.log_metric(..., synchronous=False)`` (MLflow's own queue);
- ``sync``: ``MlflowClient.log_metric`` (each call commits before returning).

Caller-side latency is the time a ``log`` call takes in the training loop; durable latency is
the time from that call until the metric's transaction committed.
"""

import multiprocessing
import time
from dataclasses import dataclass
from dataclasses import field
from typing import Any
from typing import Literal

import numpy as np

from grodt.tracking.store import TrackingStore
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.store import quiet_mlflow

Mode = Literal["stream", "stream-mlflow", "mlflow-async", "sync"]
MODES: tuple[Mode, ...] = ("stream", "stream-mlflow", "mlflow-async", "sync")

__all__ = ["MODES", "LoadResult", "Mode", "WriterResult", "run_load"]


@dataclass
class WriterResult:
    """One writer process's counters and latency samples (seconds)."""

    run_id: str
    logged: int
    steps: int
    caller_s: np.ndarray
    durable_s: np.ndarray
    errors: list[str] = field(default_factory=list)
    drained: bool = True


@dataclass
class LoadResult:
    """Outcome of :func:`run_load`.

    Attributes
    ----------
    mode, writers, duration_s, store : as requested
    logged : int
        Metrics the writers logged.
    stored : int
        Metrics read back from the store for the writers' runs.
    lost : int
        ``logged - stored`` (must be 0).
    caller_p50_ms, caller_p95_ms, caller_p99_ms : float
        Caller-side latency percentiles.
    durable_p50_ms, durable_p95_ms, durable_p99_ms : float
        Log-to-commit latency percentiles.
    throughput : float
        Metrics committed per second of load.
    errors : list[str]
        Distinct errors the writers saw.
    """

    mode: str
    writers: int
    duration_s: float
    store: str
    logged: int
    stored: int
    lost: int
    caller_p50_ms: float
    caller_p95_ms: float
    caller_p99_ms: float
    durable_p50_ms: float
    durable_p95_ms: float
    durable_p99_ms: float
    throughput: float
    drain_s: float
    errors: list[str]

    def as_row(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _percentiles(samples: np.ndarray) -> tuple[float, float, float]:
    if samples.size == 0:
        return (float("nan"),) * 3  # type: ignore[return-value]
    p50, p95, p99 = np.percentile(samples, [50, 95, 99]) * 1000.0
    return float(p50), float(p95), float(p99)


def _writer(
    store: TrackingStore,
    run_id: str,
    mode: Mode,
    duration_s: float,
    steps_per_second: float,
    keys: int,
    start_at: float,
    drain_timeout_s: float,
    results: Any,
) -> None:
    from grodt.tracking.stream import open_metric_stream

    client = open_client(store)
    names = [f"m{i}" for i in range(keys)]
    caller: list[float] = []
    durable: list[float] = []
    errors: list[str] = []
    futures: list[Any] = []
    stream = (
        open_metric_stream(store, run_id, record_latency=True, direct=mode == "stream")
        if mode in ("stream", "stream-mlflow")
        else None
    )
    period = 1.0 / steps_per_second
    delay = start_at - time.time()
    if delay > 0:
        time.sleep(delay)
    began = time.perf_counter()
    step = 0
    logged = 0
    while True:
        due = began + step * period
        now = time.perf_counter()
        if now - began >= duration_s:
            break
        if due > now:
            time.sleep(due - now)
        timestamp = int(time.time() * 1000)
        for index, name in enumerate(names):
            value = float(step * keys + index)
            t0 = time.perf_counter()
            try:
                if stream is not None:
                    stream.log(name, value, step, timestamp)
                elif mode == "mlflow-async":
                    ops = client.log_metric(
                        run_id, name, value, timestamp=timestamp, step=step, synchronous=False
                    )
                    for future in ops._operation_futures:
                        future.add_done_callback(
                            lambda _f, t0=t0: durable.append(time.perf_counter() - t0),
                        )
                    futures.append(ops)
                else:
                    client.log_metric(run_id, name, value, timestamp=timestamp, step=step)
            except Exception as e:  # count it; the read-back decides what was lost
                errors.append(f"{type(e).__name__}: {str(e)[:200]}")
                continue
            t1 = time.perf_counter()
            caller.append(t1 - t0)
            if mode == "sync":
                durable.append(t1 - t0)
            logged += 1
        step += 1
    drained = True
    if stream is not None:
        stats = stream.close(timeout=drain_timeout_s)
        durable.extend(stats.durable_latency_s.tolist())
        drained = stats.lost == 0
        if stats.last_error:
            errors.append(stats.last_error)
    elif mode == "mlflow-async":
        deadline = time.perf_counter() + drain_timeout_s
        for ops in futures:
            for future in ops._operation_futures:
                try:
                    future.result(timeout=max(deadline - time.perf_counter(), 0.001))
                except TimeoutError:
                    drained = False
                    break
                except Exception as e:
                    errors.append(f"{type(e).__name__}: {str(e)[:200]}")
            if not drained:
                break
        # Done-callbacks may still be running right after the last result() returned.
        expected = sum(len(ops._operation_futures) for ops in futures) if drained else 0
        settle = time.perf_counter() + 2.0
        while len(durable) < expected and time.perf_counter() < settle:
            time.sleep(0.01)
    results.put(
        WriterResult(
            run_id=run_id,
            logged=logged,
            steps=step,
            caller_s=np.asarray(caller, dtype=np.float64),
            durable_s=np.asarray(durable, dtype=np.float64),
            errors=sorted(set(errors))[:5],
            drained=drained,
        ),
    )


def run_load(
    store: TrackingStore,
    writers: int = 20,
    duration_s: float = 60.0,
    steps_per_second: float = 10.0,
    keys: int = 5,
    mode: Mode = "stream",
    experiment: str = "grodt-loadtest",
    drain_timeout_s: float = 120.0,
) -> LoadResult:
    """Run the load and read it back (see the module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, was {mode!r}")
    with quiet_mlflow():
        client = open_client(store)
        experiment_id = ensure_experiment(client, store, experiment)
        run_ids = [
            client.create_run(experiment_id, run_name=f"{mode}-writer-{i}").info.run_id
            for i in range(writers)
        ]
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    start_at = time.time() + 1.0 + 0.05 * writers
    processes = [
        context.Process(
            target=_writer,
            args=(
                store,
                run_id,
                mode,
                duration_s,
                steps_per_second,
                keys,
                start_at,
                drain_timeout_s,
                results,
            ),
            daemon=True,
        )
        for run_id in run_ids
    ]
    for process in processes:
        process.start()
    collected: list[WriterResult] = []
    deadline = start_at + duration_s + drain_timeout_s + 120.0
    while len(collected) < writers and time.time() < deadline:
        try:
            collected.append(results.get(timeout=5.0))
        except Exception:  # queue.Empty: keep waiting until the deadline
            if not any(p.is_alive() for p in processes) and results.empty():
                break
    load_end = time.time()
    for process in processes:
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
    stored = 0
    with quiet_mlflow():
        for result in collected:
            for index in range(keys):
                stored += len(client.get_metric_history(result.run_id, f"m{index}"))
        for run_id in run_ids:
            client.set_terminated(run_id)
    logged = sum(r.logged for r in collected)
    caller = np.concatenate([r.caller_s for r in collected]) if collected else np.empty(0)
    durable = np.concatenate([r.durable_s for r in collected]) if collected else np.empty(0)
    c50, c95, c99 = _percentiles(caller)
    d50, d95, d99 = _percentiles(durable)
    errors = sorted({e for r in collected for e in r.errors})
    if len(collected) < writers:
        errors.append(f"{writers - len(collected)} writer(s) reported nothing")
    return LoadResult(
        mode=mode,
        writers=writers,
        duration_s=duration_s,
        store=store.display_uri,
        logged=logged,
        stored=stored,
        lost=logged - stored,
        caller_p50_ms=c50,
        caller_p95_ms=c95,
        caller_p99_ms=c99,
        durable_p50_ms=d50,
        durable_p95_ms=d95,
        durable_p99_ms=d99,
        throughput=stored / duration_s if duration_s else float("nan"),
        drain_s=max(load_end - (start_at + duration_s), 0.0),
        errors=errors,
    )
