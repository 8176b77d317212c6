"""Where sweep trials run: a local process pool (default) or a Ray cluster.

Both take a batch of :class:`~grodt.experiments.sweep_trial.TrialTask` and return their
:class:`~grodt.experiments.sweep_trial.TrialOutcome` in the batch's order, so the sweep tells
Optuna the results in trial order whichever worker finished first (what makes a seeded sweep
repeatable, on a pool or on Ray alike).

- :class:`LocalPool`: ``workers`` spawned processes (spawn, not fork: a forked child would
  inherit the parent's engine and database state); each process runs many trials, so the
  imports (NautilusTrader, pandas) are paid once per worker.
- :class:`RayCluster`: ``ray.init(address=...)`` on an existing cluster (``auto``: the one
  ``RAY_ADDRESS`` or ``ray start`` on this machine names; ``HOST:PORT``: a head node); one task
  per trial with one CPU each. Ray is imported only here, and only when asked for: without the
  extra installed the error names ``pip install 'grodt[ray]'``. The cluster's workers must have
  the project installed and see the catalog and run directory at the same paths (a shared
  disk), and reach the tracking store (PostgreSQL for several machines).
"""

import logging
import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any
from typing import Protocol

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.experiments.sweep_trial import TrialOutcome
from grodt.experiments.sweep_trial import TrialTask
from grodt.experiments.sweep_trial import run_trial

__all__ = ["LocalPool", "RayCluster", "TrialExecutor", "open_executor"]

logger = logging.getLogger("grodt.experiments")


class TrialExecutor(Protocol):
    """Runs batches of trials; closed when the sweep ends."""

    description: str

    def run_batch(self, tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
        """Outcomes in the order of ``tasks``."""
        ...

    def close(self) -> None: ...


class LocalPool:
    """``workers`` local processes (see the module docstring)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ConfigError(f"--workers must be at least 1, was {workers}")
        self.description = f"local pool of {workers} process{'es' if workers > 1 else ''}"
        self._pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
        )

    def run_batch(self, tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
        return list(self._pool.map(run_trial, tasks))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


class RayCluster:
    """Trials as Ray tasks on the cluster at ``address`` (see the module docstring)."""

    def __init__(self, address: str) -> None:
        try:
            import ray
        except ImportError:
            raise ConfigError(
                f"--ray {address}: Ray is not installed; install the extra with "
                "pip install 'grodt[ray]'",
            ) from None
        self._ray = ray
        try:
            context = ray.init(
                address=address,
                ignore_reinit_error=True,
                log_to_driver=False,
                logging_level=logging.WARNING,
                configure_logging=False,
            )
        except (ConnectionError, RuntimeError, ValueError) as e:
            raise GrodtError(
                f"--ray {address}: cannot connect to a Ray cluster ({type(e).__name__}: {e}); "
                "start one with `ray start --head` or name its head as HOST:PORT",
            ) from e
        self.description = (
            f"Ray cluster {getattr(context, 'address_info', {}).get('gcs_address', address)}"
        )
        # One CPU per trial; a failed trial is an outcome, not an exception, so no retries.
        self._remote: Any = ray.remote(num_cpus=1, max_retries=0)(run_trial)

    def run_batch(self, tasks: Sequence[TrialTask]) -> list[TrialOutcome]:
        return list(self._ray.get([self._remote.remote(task) for task in tasks]))

    def close(self) -> None:
        self._ray.shutdown()


def open_executor(workers: int, ray_address: str | None) -> TrialExecutor:
    """A Ray cluster when ``ray_address`` is given, else a local pool of ``workers``."""
    if ray_address:
        return RayCluster(ray_address)
    return LocalPool(workers)
