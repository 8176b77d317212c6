"""Toy fit functions for the ScheduledRefitter tests: module-level, so a spawned worker process
can import them by name (the test directory is on the worker's sys.path)."""

import os
import time

from models.lifecycle.refit import RefitError


def fit_mean(window: tuple[float, ...], previous: dict | None) -> dict:
    """A 'model' that is the window's mean, counting its warm-start generations."""
    if any(value < 0 for value in window):
        raise RefitError(f"negative row in a window of {len(window)}")
    if any(value > 1e6 for value in window):
        raise ValueError("a bug in the fit")
    return {
        "mean": sum(window) / len(window),
        "last": window[-1],
        "generation": 0 if previous is None else previous["generation"] + 1,
        "pid": os.getpid(),
    }


def slow_fit_mean(window: tuple[float, ...], previous: dict | None) -> dict:
    time.sleep(0.3)
    return fit_mean(window, previous)
