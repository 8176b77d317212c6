"""Tail risk of a return series: historical value at risk, conditional value at risk (expected
shortfall), tail ratio, and beta to a benchmark.

Conventions (empyrical's, like :mod:`research.metrics` and :mod:`research.benchmark`):

- returns are simple period returns as fractions, NaN dropped; historical estimates, no
  distribution fitted;
- **sign**: VaR and CVaR are *returns*, not losses — the 95% VaR is the 5th percentile of the
  returns (``np.percentile`` with linear interpolation), so a losing tail gives a negative
  number (-0.02 = "on 1 period in 20 the return is -2% or worse"), like ``max_drawdown``;
- CVaR at ``confidence`` c is the mean of the ``floor((n - 1)·(1 - c)) + 1`` smallest returns
  (empyrical's ``conditional_value_at_risk``): the average return on the periods at or beyond
  the VaR;
- the tail ratio is ``|95th percentile| / |5th percentile|`` (empyrical's ``tail_ratio``): above
  1 the right tail (gains) is fatter than the left;
- beta is :func:`research.benchmark.relative_statistics`' (population moments, days missing in
  either series dropped).
"""

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from research.benchmark import relative_statistics

__all__ = [
    "RISK_CONFIDENCES",
    "beta",
    "conditional_value_at_risk",
    "risk_summary",
    "tail_ratio",
    "value_at_risk",
]

RISK_CONFIDENCES = (0.95, 0.99)
"""Confidence levels :func:`risk_summary` reports VaR and CVaR at."""


def _returns(returns: pd.Series | np.ndarray | Sequence[float]) -> np.ndarray:
    values = np.asarray(returns, dtype=float)
    if values.ndim != 1:
        raise ValueError(f"returns must be 1-D, has shape {values.shape}")
    return values[~np.isnan(values)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), e.g. 0.95, was {confidence}")


def value_at_risk(
    returns: pd.Series | np.ndarray | Sequence[float], confidence: float = 0.95
) -> float:
    """Historical VaR: the ``1 - confidence`` percentile of the returns (a return; negative for a
    losing tail). NaN without returns."""
    _check_confidence(confidence)
    values = _returns(returns)
    if values.size == 0:
        return math.nan
    return float(np.percentile(values, 100.0 * (1.0 - confidence)))


def conditional_value_at_risk(
    returns: pd.Series | np.ndarray | Sequence[float], confidence: float = 0.95
) -> float:
    """Historical CVaR (expected shortfall): the mean of the ``floor((n - 1)·(1 - confidence)) +
    1`` smallest returns (a return; <= the VaR). NaN without returns."""
    _check_confidence(confidence)
    values = _returns(returns)
    if values.size == 0:
        return math.nan
    cutoff = int((values.size - 1) * (1.0 - confidence))
    return float(np.mean(np.partition(values, cutoff)[: cutoff + 1]))


def tail_ratio(returns: pd.Series | np.ndarray | Sequence[float]) -> float:
    """``|95th percentile| / |5th percentile|`` of the returns; NaN without returns or when the
    5th percentile is 0."""
    values = _returns(returns)
    if values.size == 0:
        return math.nan
    left = abs(float(np.percentile(values, 5.0)))
    if left == 0.0:
        return math.nan
    return abs(float(np.percentile(values, 95.0))) / left


def beta(returns: pd.Series, benchmark_returns: pd.Series) -> float:
    """Beta of ``returns`` to ``benchmark_returns`` (aligned on their index): ``cov / var`` of the
    benchmark with population moments; NaN when the benchmark does not move or fewer than 2 days
    pair up."""
    return relative_statistics(returns, benchmark_returns)["beta"]


def risk_summary(
    returns: pd.Series | np.ndarray | Sequence[float],
    benchmark_returns: pd.Series | None = None,
) -> dict[str, float]:
    """Every figure of this module, as a plain dict of floats.

    Returns
    -------
    dict[str, float]
        ``var_95, cvar_95, var_99, cvar_99`` (returns, negative for a losing tail), ``tail_ratio``
        and, with ``benchmark_returns`` (a Series, and ``returns`` a Series on the same kind of
        index), ``beta``.
    """
    values = _returns(returns)
    summary: dict[str, float] = {}
    for confidence in RISK_CONFIDENCES:
        suffix = round(confidence * 100)
        summary[f"var_{suffix}"] = value_at_risk(values, confidence)
        summary[f"cvar_{suffix}"] = conditional_value_at_risk(values, confidence)
    summary["tail_ratio"] = tail_ratio(values)
    if benchmark_returns is not None:
        if not isinstance(returns, pd.Series):
            raise TypeError("beta needs returns as a pd.Series to align with the benchmark's index")
        summary["beta"] = beta(returns, benchmark_returns)
    return summary
