"""models.lifecycle: a fit due at row t runs on the window ending at t and takes over at row
t + lag_bars — synchronously with lag 0, in a worker process with lag > 0 — at the same rows
whether or not it ran elsewhere or finished late; warm starts chain; failures keep the model."""

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor

import pytest
from refit_kit import fit_mean
from refit_kit import slow_fit_mean

from grodt.core.errors import ConfigError
from models.lifecycle import RetrainSchedule
from models.lifecycle import ScheduledRefitter


def drive(refitter: ScheduledRefitter, rows: list[float], window: int, request_at=()) -> list:
    """Feed rows; returns (row, outcome) for every swap and the model in use at each row."""
    seen: list[float] = []
    swaps = []
    in_use = []
    for i, value in enumerate(rows, start=1):
        if i in request_at:
            refitter.request_refit(len(seen[-window:]))
        seen.append(value)
        if refitter.advance(len(seen[-window:])):
            refitter.start(tuple(seen[-window:]), context=i)
        if refitter.swap_due:
            swaps.append((i, refitter.swap()))
        in_use.append(None if refitter.model is None else refitter.model["last"])
    return swaps, in_use


ROWS = [float(i % 7) for i in range(1, 61)]


@pytest.fixture(scope="module")
def pool():
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=1, mp_context=context) as executor:
        yield executor


def test_schedule_is_validated():
    with pytest.raises(ConfigError, match="lag_bars: must be below every=5"):
        RetrainSchedule(window=10, every=5, lag_bars=5)
    with pytest.raises(ConfigError, match="min_window: must be in"):
        RetrainSchedule(window=10, min_window=11)
    with pytest.raises(ConfigError, match="every: must be >= 0"):
        RetrainSchedule(window=10, every=-1)


def test_synchronous_fits_run_at_the_row_their_window_ends_and_warm_start_in_chain():
    refitter = ScheduledRefitter(RetrainSchedule(window=10, every=15), fit_mean)
    swaps, in_use = drive(refitter, ROWS, 10)
    assert [row for row, _ in swaps] == [10, 25, 40, 55]
    for row, outcome in swaps:
        assert outcome.ok and outcome.row == outcome.apply_row == outcome.context == row
        assert outcome.model["mean"] == pytest.approx(sum(ROWS[row - 10 : row]) / 10)
        assert outcome.model["pid"] == os.getpid()
    assert [o.model["generation"] for _, o in swaps] == [0, 1, 2, 3]
    assert [o.kind for _, o in swaps] == ["fit", "refit", "refit", "refit"]
    assert in_use[8] is None and in_use[9] == ROWS[9]


def test_cold_fits_get_no_previous_model():
    refitter = ScheduledRefitter(RetrainSchedule(window=10, every=15, warm_start=False), fit_mean)
    swaps, _ = drive(refitter, ROWS, 10)
    assert [o.model["generation"] for _, o in swaps] == [0, 0, 0, 0]


def test_a_lagged_fit_takes_over_lag_rows_later_with_the_same_models(pool):
    sync, _ = drive(ScheduledRefitter(RetrainSchedule(window=10, every=15), fit_mean), ROWS, 10)
    schedule = RetrainSchedule(window=10, every=15, lag_bars=3)
    in_thread, in_use = drive(ScheduledRefitter(schedule, fit_mean), ROWS, 10)
    in_worker, in_use_worker = drive(ScheduledRefitter(schedule, fit_mean, executor=pool), ROWS, 10)
    assert [row for row, _ in in_thread] == [row + 3 for row, _ in sync]
    assert [row for row, _ in in_worker] == [row for row, _ in in_thread]
    for (_, s), (_, t), (_, w) in zip(sync, in_thread, in_worker, strict=True):
        assert w.row == t.row == s.row and w.apply_row == t.apply_row == s.row + 3
        for key in ("mean", "last", "generation"):
            assert s.model[key] == t.model[key] == w.model[key]
        assert w.model["pid"] != os.getpid()  # it ran in the worker process
    assert in_use == in_use_worker
    # Rows t..t+L-1 keep the previous model.
    assert in_use[10 + 3 - 2] is None and in_use[10 + 3 - 1] == ROWS[9]


def test_a_late_fit_is_waited_for_at_its_swap_row(pool):
    schedule = RetrainSchedule(window=5, every=10, lag_bars=1)
    refitter = ScheduledRefitter(schedule, slow_fit_mean, executor=pool)
    swaps, _ = drive(refitter, ROWS[:20], 5)
    assert [(o.row, o.apply_row, row) for row, o in swaps] == [(5, 6, 6), (15, 16, 16)]
    assert refitter.fits == 2


def test_prepare_runs_on_the_result_and_its_output_comes_back(pool):
    schedule = RetrainSchedule(window=5, every=10, lag_bars=2)
    refitter = ScheduledRefitter(schedule, fit_mean, prepare=lambda m: m["mean"], executor=pool)
    swaps, _ = drive(refitter, ROWS[:20], 5)
    assert [o.ready for _, o in swaps] == [o.model["mean"] for _, o in swaps]


@pytest.mark.parametrize("lag", [0, 2])
def test_a_failed_fit_keeps_the_model_and_says_why(pool, lag):
    rows = list(ROWS[:45])
    rows[22] = -1.0  # in the window of the second fit (rows 16..25) only
    rows[34] = 2e6  # an unexpected error in the third
    schedule = RetrainSchedule(window=10, every=15, lag_bars=lag)
    refitter = ScheduledRefitter(schedule, fit_mean, executor=pool)
    swaps, in_use = drive(refitter, rows, 10)
    errors = [o.error for _, o in swaps]
    assert errors[0] is None
    assert errors[1] == "negative row in a window of 10"
    assert errors[2] == "ValueError: a bug in the fit"
    assert refitter.fits == 1 and refitter.failed_fits == 2
    assert set(in_use[10 + lag - 1 :]) == {rows[9]}


def test_a_failed_first_fit_is_retried_after_retry_rows():
    rows = [-1.0] * 3 + [1.0] * 30
    refitter = ScheduledRefitter(RetrainSchedule(window=8, every=0), fit_mean)
    swaps, _ = drive(refitter, rows, 8)
    assert [(row, o.ok) for row, o in swaps] == [(8, False), (10, False), (12, True)]
    assert refitter.schedule.retry_rows == 2


def test_a_requested_refit_is_due_at_the_next_row():
    refitter = ScheduledRefitter(RetrainSchedule(window=10, every=0), fit_mean)
    swaps, _ = drive(refitter, ROWS, 10, request_at=(30, 45))
    assert [row for row, _ in swaps] == [10, 30, 45]
    assert [o.model["generation"] for _, o in swaps] == [0, 1, 2]


def test_a_starting_model_is_the_first_previous_and_reset_returns_to_it():
    start = {"mean": 0.0, "last": -5.0, "generation": 10, "pid": 0}
    refitter = ScheduledRefitter(RetrainSchedule(window=10, every=15), fit_mean, model=start)
    swaps, in_use = drive(refitter, ROWS[:30], 10)
    assert in_use[0] == -5.0
    assert [o.kind for _, o in swaps] == ["refit", "refit"]
    assert swaps[0][1].model["generation"] == 11
    refitter.reset()
    assert refitter.model is start and refitter.rows == 0 and refitter.fits == 0


def test_a_refit_requested_while_a_fit_is_in_flight_is_queued_not_dropped():
    """every=0 with a lag of 5: the first fit starts at row 10 and takes over at 15. Requests at
    rows 12 and 13 (one fit in flight) are one queued request: a fit is due at row 16, the row
    after the one in flight took over, on the window ending at 16; it takes over at 21."""
    schedule = RetrainSchedule(window=10, every=0, lag_bars=5)
    refitter = ScheduledRefitter(schedule, fit_mean)
    swaps, _ = drive(refitter, ROWS[:40], 10, request_at=(12, 13))
    assert [(row, o.row) for row, o in swaps] == [(15, 10), (21, 16)]
    assert swaps[1][1].model["mean"] == pytest.approx(sum(ROWS[6:16]) / 10)
    assert not refitter.queued

    # Without the queue the request would be lost: no fit after the first.
    unrequested, _ = drive(ScheduledRefitter(schedule, fit_mean), ROWS[:40], 10)
    assert [row for row, _ in unrequested] == [15]


def test_a_queued_request_survives_a_restart_of_the_schedule():
    schedule = RetrainSchedule(window=10, every=0, lag_bars=5)
    refitter = ScheduledRefitter(schedule, fit_mean)
    seen = [float(i) for i in range(1, 13)]
    for i in range(1, 13):
        if refitter.advance(min(i, 10)):
            refitter.start(tuple(seen[max(0, i - 10) : i]))
    assert refitter.in_flight and refitter.request_refit(10) and refitter.queued
    state = refitter.state()
    restarted = ScheduledRefitter(schedule, fit_mean)
    restarted.restore(state, None)
    assert restarted.queued
    in_flight = state["in_flight"]
    restarted.resume(tuple(seen[:10]), row=in_flight["row"], apply_row=in_flight["apply_row"])
    for _ in range(3):
        restarted.advance(10)
    assert restarted.swap_due and restarted.swap().ok
    assert not restarted.queued and restarted.advance(10)  # the queued fit is due next row
