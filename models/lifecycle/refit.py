"""Scheduled refits with lag: a model retrained online at row boundaries fixed by the data, so a
backtest and a live node swap models at the same bar.

A fit due at row t (:class:`~models.lifecycle.schedule.RetrainSchedule`: the first when enough
rows are there, then every ``every`` rows) runs on the window ending at t — the caller builds
that window's payload — and its model takes over at row t + ``lag_bars``:

- ``lag_bars = 0``: the fit runs synchronously in :meth:`ScheduledRefitter.start`; the model is
  ready at row t.
- ``lag_bars = L > 0`` with an ``executor`` (a one-worker ``ProcessPoolExecutor``, spawn
  context): :meth:`~ScheduledRefitter.start` hands the fit to a helper thread that submits it to
  the executor, waits, and runs ``prepare`` on the result, so the calling (engine) thread carries
  on with the current model. At row t + L :meth:`~ScheduledRefitter.swap` returns the new model;
  if the fit has not finished, that row waits for it (counted in ``fit_waits`` and
  ``fit_wait_seconds``). The swap
  row never depends on when the fit finished, so the output is the same with or without an
  executor, in a backtest or live. Without an executor the fit runs at once in the calling
  thread and is still swapped in at t + L.

The fit function is the model's own: ``fit(payload, previous) -> model``, picklable (a
module-level function) with picklable arguments and result, because it may run in a worker
process. ``previous`` is the model in use when the schedule warm-starts (``None`` for the first
fit or with ``warm_start: false``). A fit that fails raises: :class:`RefitError` for an expected
failure (its message is the reason), anything else for the unexpected; either way the caller
keeps its model and gets the reason in :attr:`RefitOutcome.error` — nothing is raised on the
calling thread.

Usage, once per row the model consumes::

    refitter = ScheduledRefitter(RetrainSchedule(window=500, every=21, lag_bars=1), fit_fn,
                                 executor=pool)
    for row in rows:
        window.append(row)
        if refitter.advance(len(window)):       # a fit is due at this row
            refitter.start(window.payload())
        if refitter.swap_due:                   # its model takes over at this row
            outcome = refitter.swap()
            if outcome.ok:
                model = outcome.model            # (or outcome.ready, see ``prepare``)
        predict(model, row)
"""

import contextlib
import multiprocessing
import os
import threading
import time
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Executor
from concurrent.futures import Future
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from typing import Generic
from typing import Literal
from typing import TypeVar

from models.lifecycle.schedule import RetrainSchedule

__all__ = [
    "RefitError",
    "RefitOutcome",
    "ScheduledRefitter",
    "exit_with_parent",
    "fit_worker_pool",
]

PayloadT = TypeVar("PayloadT")
ModelT = TypeVar("ModelT")
ReadyT = TypeVar("ReadyT")


class RefitError(Exception):
    """An expected fit failure (too few rows, a degenerate fit); the message is the reason."""


@dataclass(frozen=True)
class RefitOutcome(Generic[ModelT, ReadyT]):
    """A fit at its swap row.

    Attributes
    ----------
    row : int
        The row the fit's window ended at (rows are counted from 1 by
        :meth:`ScheduledRefitter.advance`).
    apply_row : int
        The row the model takes over at (``row + lag_bars``): the row of this outcome.
    kind : {"fit", "refit"}
        ``refit`` when a model was in use when the fit started.
    model : ModelT or None
        What the fit function returned (the next warm start's ``previous``); None on failure.
    ready : ReadyT or None
        ``prepare(model)`` when a ``prepare`` was given (computed off the calling thread with an
        executor), else ``model``; None on failure.
    error : str or None
        Why the fit failed (None on success).
    waited_seconds : float
        Time :meth:`ScheduledRefitter.swap` spent getting the fit's result (about zero when it
        had finished).
    late : bool
        The fit had not finished at its swap row, so :meth:`ScheduledRefitter.swap` waited for
        it (a lag too short for the fit on this machine).
    context : Any
        What the caller passed to :meth:`ScheduledRefitter.start` (e.g. the fit's timestamp).
    """

    row: int
    apply_row: int
    kind: Literal["fit", "refit"]
    model: ModelT | None
    ready: ReadyT | None
    error: str | None
    waited_seconds: float
    context: Any = None
    late: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None


def _fit_and_prepare(
    fit: Callable[[Any, Any], Any],
    prepare: Callable[[Any], Any] | None,
    payload: Any,
    previous: Any,
    executor: Executor | None,
) -> tuple[Any, Any]:
    """The fit (in ``executor`` when given, waited for) and ``prepare`` of its result."""
    if executor is None:
        model = fit(payload, previous)
    else:
        model = executor.submit(fit, payload, previous).result()
    return model, (prepare(model) if prepare is not None else model)


def exit_with_parent(parent_pid: int, poll_seconds: float = 1.0) -> None:
    """Initializer of a fit worker process: end it when ``parent_pid`` is gone.

    A ``ProcessPoolExecutor`` worker blocks reading its call queue, whose pipe it holds both
    ends of, so a parent killed outright (SIGKILL, a crashed node) never closes it and the
    worker would live on. A daemon thread checks the parent every ``poll_seconds``."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(poll_seconds)
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


FIT_WORKER_NICENESS = 5
"""How much lower than its node a fit worker process runs (``os.nice`` increment): a fit is
background work with rows of slack before its result is used, while the engine thread and the
threads it waits on (the forensics worker holds the GIL it needs) are not."""


def _init_fit_worker(parent_pid: int, niceness: int) -> None:
    """Initializer of a fit worker process: lower its priority, end it with its parent."""
    if niceness > 0:
        # Lowering one's own priority is always permitted on Linux; elsewhere run as the node.
        with contextlib.suppress(OSError):
            os.nice(niceness)
    exit_with_parent(parent_pid)


def fit_worker_pool(workers: int = 1, niceness: int = FIT_WORKER_NICENESS) -> ProcessPoolExecutor:
    """The process pool a component's fits run in: ``workers`` spawned processes (not forked:
    the engine's threads — Rust runtime, loggers — must not be cloned), ``niceness`` below the
    node's priority, that end with the process that made them (:func:`exit_with_parent`), so
    a node killed outright leaves no worker behind. Fit results do not depend on priority."""
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_init_fit_worker,
        initargs=(os.getpid(), niceness),
    )


@dataclass
class _Pending:
    future: "Future[tuple[Any, Any]]"
    row: int
    apply_row: int
    kind: Literal["fit", "refit"]
    context: Any


class ScheduledRefitter(Generic[PayloadT, ModelT, ReadyT]):
    """Runs a model's fits on a :class:`RetrainSchedule` and says at which row each takes over.

    Parameters
    ----------
    schedule : RetrainSchedule
    fit : Callable[[PayloadT, ModelT | None], ModelT]
        ``fit(payload, previous) -> model``; picklable when an ``executor`` is given.
    prepare : Callable[[ModelT], ReadyT], optional
        Turns a fitted model into what the caller uses (e.g. rebuilds an object from its
        picklable data); runs on the helper thread with an executor, so the calling thread
        does not pay for it. Default: the model itself.
    executor : concurrent.futures.Executor, optional
        Where fits run when ``schedule.lag_bars > 0`` (a one-worker process pool); default, and
        always with ``lag_bars = 0``: in the calling thread.
    model : ModelT, optional
        The model in use at the start (the first warm start's ``previous``); None: no model
        until the first fit.
    """

    def __init__(
        self,
        schedule: RetrainSchedule,
        fit: Callable[[PayloadT, ModelT | None], ModelT],
        *,
        prepare: Callable[[ModelT], ReadyT] | None = None,
        executor: Executor | None = None,
        model: ModelT | None = None,
    ) -> None:
        self.schedule = schedule
        self._first_fit_rows = schedule.first_fit_rows  # read on every row
        self.fit = fit
        self.prepare = prepare
        self.executor = executor
        self._initial_model = model
        self._helper: ThreadPoolExecutor | None = None
        self._pending: _Pending | None = None
        self.reset()

    def reset(self) -> None:
        """Back to the starting model and row 0; a fit in flight is dropped."""
        self.cancel()
        self.model: ModelT | None = self._initial_model
        """The model in use (the last successful fit's, or the starting one)."""
        self.rows = 0
        """Rows counted by :meth:`advance`."""
        self.fits = 0
        self.failed_fits = 0
        self.fit_wait_seconds = 0.0
        """Time :meth:`swap` spent waiting for fits still running at their swap row."""
        self.fit_waits = 0
        """Swaps whose fit had not finished at its swap row (the calling thread waited)."""
        self._rows_since_attempt = 0
        self._forced = False
        self.queued = False
        """A refit was requested while a fit was in flight: one is due at the row after that
        fit takes over (its window ended before the request, so it cannot answer it)."""

    # -- per row -----------------------------------------------------------------------------

    def advance(self, available: int) -> bool:
        """Count one row; True when a fit is due at it (start one with :meth:`start`).

        ``available`` is how many rows the caller's window holds now (a first fit waits for
        ``schedule.first_fit_rows``). Never due while a fit is in flight.
        """
        self.rows += 1
        self._rows_since_attempt += 1
        if self._pending is not None or available < self._first_fit_rows:
            return False
        if self._forced:
            self._forced = False
            return True
        if self.model is None:
            attempted = self.fits > 0 or self.failed_fits > 0
            return not attempted or self._rows_since_attempt >= self.schedule.retry_rows
        if self.schedule.every == 0:
            return False
        return self._rows_since_attempt >= self.schedule.every

    def start(self, payload: PayloadT, context: Any = None) -> None:
        """Start a fit on ``payload`` (the window ending at this row); it takes over at row
        ``rows + lag_bars`` (:attr:`swap_due`). ``context`` comes back in the outcome."""
        if self._pending is not None:
            raise RuntimeError("a fit is already in flight; swap it in first")
        self._rows_since_attempt = 0
        previous = self.model if self.schedule.warm_start else None
        future: Future[tuple[Any, Any]]
        if self.executor is not None and self.schedule.lag_bars > 0:
            if self._helper is None:
                self._helper = ThreadPoolExecutor(1, thread_name_prefix="model-refit")
            future = self._helper.submit(
                _fit_and_prepare, self.fit, self.prepare, payload, previous, self.executor
            )
        else:
            future = Future()
            try:
                future.set_result(_fit_and_prepare(self.fit, self.prepare, payload, previous, None))
            except Exception as e:  # reported by swap(), never raised here
                future.set_exception(e)
        self._pending = _Pending(
            future=future,
            row=self.rows,
            apply_row=self.rows + self.schedule.lag_bars,
            kind="refit" if self.model is not None else "fit",
            context=context,
        )

    @property
    def in_flight(self) -> bool:
        """A fit has started and not been swapped in yet."""
        return self._pending is not None

    def wait(self) -> None:
        """Block until the fit in flight has finished (it still takes over at its swap row)."""
        if self._pending is not None:
            futures.wait([self._pending.future])  # a failure is reported by swap()

    @property
    def swap_due(self) -> bool:
        """The fit in flight takes over at this row (call :meth:`swap`)."""
        return self._pending is not None and self.rows >= self._pending.apply_row

    def swap(self) -> RefitOutcome[ModelT, ReadyT]:
        """The fit in flight, waited for if still running; on success its model is in use
        from now on (:attr:`model`), on failure the previous model stays."""
        pending = self._pending
        if pending is None:
            raise RuntimeError("no fit in flight")
        self._pending = None
        late = not pending.future.done()
        waited = time.perf_counter()
        model: ModelT | None = None
        ready: ReadyT | None = None
        error: str | None = None
        try:
            model, ready = pending.future.result()
        except RefitError as e:
            error = str(e)
        except Exception as e:  # a dead worker, a bug in the fit: keep the model, say why
            error = f"{type(e).__name__}: {e}"
        seconds = time.perf_counter() - waited
        self.fit_wait_seconds += seconds
        self.fit_waits += int(late)
        if error is None:
            self.model = model
            self.fits += 1
        else:
            self.failed_fits += 1
        if self.queued:
            self.queued = False
            self._force_next()
        return RefitOutcome(
            pending.row,
            pending.apply_row,
            pending.kind,
            model,
            ready,
            error,
            seconds,
            pending.context,
            late,
        )

    # -- outside the schedule ----------------------------------------------------------------

    def request_refit(self, available: int) -> bool:
        """Make a fit due at the next row (a drift or change-point monitor asks).

        With a fit in flight, the request is queued (:attr:`queued`): a fit is due at the row
        after the one in flight takes over, on the window ending there. Repeated requests
        meanwhile are one request. False only when no fit can start for want of rows (fewer
        than ``first_fit_rows``)."""
        if self._pending is not None:
            self.queued = True
            return True
        if available < self.schedule.first_fit_rows:
            return False
        self._force_next()
        return True

    def _force_next(self) -> None:
        self._rows_since_attempt = max(self.schedule.every, self.schedule.retry_rows, 1) + 1
        if self.model is not None and self.schedule.every == 0:
            self._forced = True

    @property
    def next_attempt_rows(self) -> int:
        """Rows until the next attempt after a failure (0: none scheduled)."""
        return self.schedule.every if self.model is not None else self.schedule.retry_rows

    def cancel(self) -> None:
        """Drop a fit in flight (its result is never used)."""
        if self._pending is not None:
            self._pending.future.cancel()
            self._pending = None

    def close(self) -> None:
        """Drop a fit in flight and stop the helper thread (the executor is the caller's)."""
        self.cancel()
        if self._helper is not None:
            self._helper.shutdown(wait=False, cancel_futures=True)
            self._helper = None

    # -- a restarted process -----------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Where the schedule stands, JSON-able, for a restarted process (:meth:`restore`): the
        counters and, for a fit in flight, the rows it started at and takes over at (its
        payload and model are the caller's to rebuild)."""
        pending = self._pending
        return {
            "rows": self.rows,
            "fits": self.fits,
            "failed_fits": self.failed_fits,
            "rows_since_attempt": self._rows_since_attempt,
            "forced": self._forced,
            "queued": self.queued,
            "in_flight": None
            if pending is None
            else {"row": pending.row, "apply_row": pending.apply_row, "kind": pending.kind},
        }

    def restore(self, state: dict[str, Any], model: ModelT | None) -> None:
        """Continue a schedule saved by :meth:`state` with ``model`` in use. A fit that was in
        flight is not restarted: the caller rebuilds its payload and calls :meth:`resume`."""
        self.cancel()
        self.model = model
        self.rows = int(state["rows"])
        self.fits = int(state["fits"])
        self.failed_fits = int(state["failed_fits"])
        self._rows_since_attempt = int(state["rows_since_attempt"])
        self._forced = bool(state["forced"])
        self.queued = bool(state.get("queued", False))  # absent in states saved before it

    def resume(self, payload: PayloadT, *, row: int, apply_row: int, context: Any = None) -> None:
        """Start again the fit that was in flight when the schedule was saved (:meth:`state`):
        started at ``row``, it takes over at ``apply_row`` as it would have, and the rows
        counted since it started stay counted."""
        since = self._rows_since_attempt
        self.start(payload, context)
        assert self._pending is not None
        self._pending.row, self._pending.apply_row = row, apply_row
        self._rows_since_attempt = since
