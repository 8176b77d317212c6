"""Percentile bootstrap confidence intervals for any estimator of :mod:`research.ope`.

Rounds are resampled with replacement (obp's ``estimate_confidence_interval_by_bootstrap``): every
array argument whose first dimension is the log's length is resampled with the same row indices;
scalars (``tau``) pass through unchanged.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["ConfidenceInterval", "bootstrap_ci"]


@dataclass(frozen=True)
class ConfidenceInterval:
    """A point estimate and its percentile bootstrap interval.

    Attributes
    ----------
    estimate : float
        The estimator on the whole log.
    lower, upper : float
        The ``alpha / 2`` and ``1 − alpha / 2`` quantiles of the bootstrap estimates.
    alpha : float
        One minus the interval's nominal coverage.
    n_bootstrap : int
        Resamples drawn.
    n_undefined : int
        Resamples on which the estimator was undefined (e.g. SNIPS when no resampled round has a
        positive weight); they are left out of the quantiles.
    """

    estimate: float
    lower: float
    upper: float
    alpha: float
    n_bootstrap: int
    n_undefined: int = 0

    def contains(self, value: float) -> bool:
        """Whether ``value`` lies inside the closed interval."""
        return self.lower <= value <= self.upper


def _n_rounds(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    for value in (*args, *kwargs.values()):
        if np.ndim(value) >= 1:
            return int(np.shape(value)[0])
    raise ValueError("bootstrap_ci: no array argument to resample")


def _resample(value: Any, rows: np.ndarray, n: int) -> Any:
    if np.ndim(value) >= 1 and np.shape(value)[0] == n:
        return np.asarray(value)[rows]
    return value


def bootstrap_ci(
    estimator: Callable[..., float],
    *args: Any,
    n_bootstrap: int = 1000,
    alpha: float = 0.05,
    random_state: int | np.random.Generator | None = None,
    **kwargs: Any,
) -> ConfidenceInterval:
    """Percentile bootstrap interval of ``estimator(*args, **kwargs)``.

    Parameters
    ----------
    estimator : Callable[..., float]
        One of the estimators (``ipw``, ``doubly_robust``, ...), or any function of row-aligned
        arrays returning a float.
    *args, **kwargs
        The estimator's arguments; arrays of the log's length are resampled by row.
    n_bootstrap : int, default 1000
    alpha : float, default 0.05
        A ``1 − alpha`` interval.
    random_state : int | np.random.Generator | None
        Seed of the resampling.

    Raises
    ------
    ValueError
        Bad ``n_bootstrap``/``alpha``, the estimator's own input errors (on the whole log), or the
        estimator undefined on more than half of the resamples.
    """
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    estimate = float(estimator(*args, **kwargs))
    n = _n_rounds(args, kwargs)
    rng = np.random.default_rng(random_state)
    samples: list[float] = []
    undefined = 0
    for _ in range(n_bootstrap):
        rows = rng.integers(0, n, size=n)
        try:
            samples.append(
                float(
                    estimator(
                        *(_resample(a, rows, n) for a in args),
                        **{k: _resample(v, rows, n) for k, v in kwargs.items()},
                    )
                )
            )
        except ValueError:
            # Valid input on the whole log, so only an estimator undefined on this resample
            # (all weights zero) lands here; it is counted and reported, not hidden.
            undefined += 1
    if undefined * 2 > n_bootstrap:
        raise ValueError(
            f"bootstrap_ci: {getattr(estimator, '__name__', 'estimator')} is undefined on "
            f"{undefined} of {n_bootstrap} resamples (too few rounds with a positive weight)"
        )
    lower, upper = np.quantile(np.asarray(samples), [alpha / 2.0, 1.0 - alpha / 2.0])
    return ConfidenceInterval(
        estimate=estimate,
        lower=float(lower),
        upper=float(upper),
        alpha=alpha,
        n_bootstrap=n_bootstrap,
        n_undefined=undefined,
    )
