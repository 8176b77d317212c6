"""A run against a benchmark: buy-and-hold of the benchmark, and alpha, beta, information ratio
and tracking error of the run relative to it.

Conventions (empyrical's, like :mod:`research.metrics`; risk-free rate 0):

- both series are simple daily returns on the same days (a day missing in either is dropped);
- ``beta = cov(r, b) / var(b)`` with population moments (``mean((b - mean(b)) * r) /
  mean((b - mean(b))^2)``, empyrical's ``beta``); NaN when the benchmark does not move;
- ``alpha`` is annualised by compounding the mean daily residual:
  ``(1 + mean(r - beta * b)) ** periods_per_year - 1`` (empyrical's ``alpha``);
- ``tracking_error`` is the annualised sample standard deviation (ddof=1) of the active return
  ``r - b``: ``std(r - b) * sqrt(periods_per_year)``;
- ``information_ratio`` is the annualised mean active return over the tracking error:
  ``mean(r - b) * periods_per_year / tracking_error``. (empyrical's older ``information_ratio``
  and its ``excess_sharpe`` are the same ratio *not* annualised, i.e. this value divided by
  ``sqrt(periods_per_year)``.)
"""

import math

import numpy as np
import pandas as pd

from research.metrics import performance_summary

__all__ = ["BENCHMARK_COLUMN", "benchmark_summary", "buy_and_hold", "relative_statistics"]

BENCHMARK_COLUMN = "benchmark_equity"
"""Column of a run's ``equity.parquet`` / ``equity_daily.csv`` when it has a benchmark: the
benchmark's buy-and-hold value of the starting equity at every bar close (account currency)."""


def buy_and_hold(closes: pd.Series, starting_equity: float) -> pd.Series:
    """Value of ``starting_equity`` invested at the first available close and held.

    Parameters
    ----------
    closes : pd.Series
        Benchmark closes on the run's bar index (NaN before the benchmark's first bar).
    starting_equity : float
        Account currency; no fees, fractional units.

    Returns
    -------
    pd.Series
        Same index; ``starting_equity`` (cash) until the first close, then
        ``starting_equity * close / first_close``.
    """
    values = closes.astype(float)
    valid = values.dropna()
    if valid.empty:
        raise ValueError("the benchmark has no close in the run's span")
    held = starting_equity * values / float(valid.iloc[0])
    return held.fillna(starting_equity)


def relative_statistics(
    returns: pd.Series,
    benchmark_returns: pd.Series,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """Alpha, beta, information ratio and tracking error of ``returns`` against
    ``benchmark_returns`` (see the module docstring for the formulas).

    Parameters
    ----------
    returns, benchmark_returns : pd.Series
        Simple period returns as fractions, aligned on their index (NaN rows dropped).
    periods_per_year : int, default 252
        For annualisation.

    Returns
    -------
    dict[str, float]
        ``alpha`` (annual fraction), ``beta``, ``information_ratio``, ``tracking_error``
        (annual fraction), ``correlation`` and ``periods`` (pairs used).
    """
    pairs = pd.concat([returns, benchmark_returns], axis=1, join="inner").dropna()
    r = pairs.iloc[:, 0].to_numpy(dtype=float)
    b = pairs.iloc[:, 1].to_numpy(dtype=float)
    nan = math.nan
    stats = {
        "alpha": nan,
        "beta": nan,
        "information_ratio": nan,
        "tracking_error": nan,
        "correlation": nan,
        "periods": float(r.size),
    }
    if r.size < 2:
        return stats
    residual = b - b.mean()
    variance = float(np.mean(residual**2))
    if variance > 1e-30:
        beta = float(np.mean(residual * r) / variance)
        stats["beta"] = beta
        stats["alpha"] = float((1.0 + np.mean(r - beta * b)) ** periods_per_year - 1.0)
        if np.std(r) > 0:
            stats["correlation"] = float(np.corrcoef(r, b)[0, 1])
    active = r - b
    deviation = float(np.std(active, ddof=1))
    if deviation > 0:
        tracking_error = deviation * math.sqrt(periods_per_year)
        stats["tracking_error"] = tracking_error
        stats["information_ratio"] = float(np.mean(active) * periods_per_year / tracking_error)
    elif r.size >= 2:
        stats["tracking_error"] = 0.0
    return stats


def benchmark_summary(
    returns: pd.Series,
    benchmark_returns: pd.Series,
    periods_per_year: int = 252,
) -> dict[str, float]:
    """The benchmark's own figures and the run's relative ones, as the run summary holds them.

    Returns
    -------
    dict[str, float]
        ``total_return, cagr, annual_volatility, sharpe, max_drawdown`` of the benchmark's
        returns (:func:`research.metrics.performance_summary`), and ``alpha, beta,
        information_ratio, tracking_error, correlation`` of ``returns`` against it.
    """
    own = performance_summary(benchmark_returns, periods_per_year)
    relative = relative_statistics(returns, benchmark_returns, periods_per_year)
    return {
        "total_return": own["total_return"],
        "cagr": own["annual_return"],
        "annual_volatility": own["annual_volatility"],
        "sharpe": own["sharpe"],
        "max_drawdown": own["max_drawdown"],
        "alpha": relative["alpha"],
        "beta": relative["beta"],
        "information_ratio": relative["information_ratio"],
        "tracking_error": relative["tracking_error"],
        "correlation": relative["correlation"],
    }
