"""Stitch walk-forward folds into one out-of-sample equity curve by chaining returns.

Each fold's node starts flat with the config's starting equity. Its daily returns (end-of-day
equity over the previous day's; the first day against the starting equity,
:func:`research.performance.daily_returns`) are concatenated in fold order, and the stitched
equity is ``starting_equity × Π(1 + r)``: as if the capital at the end of one fold were carried
into the next. Nothing is counted between one fold's last bar and the next fold's first bar
(every run, buy-and-hold included, enters at the next fold's first close).
"""

import itertools
from collections.abc import Sequence

import pandas as pd

from research.metrics import performance_summary
from research.performance import daily_returns

__all__ = ["chain_returns", "stitched_figures"]


def chain_returns(equities: Sequence[pd.Series], starting_equity: float) -> pd.Series:
    """Daily returns of consecutive folds, concatenated.

    Parameters
    ----------
    equities : Sequence[pd.Series]
        Per fold, equity at every bar close (UTC DatetimeIndex, account currency), each fold
        starting from ``starting_equity``; folds in time order, not overlapping.

    Returns
    -------
    pd.Series
        Simple daily returns (fractions), one per UTC day with bars, over all folds.

    Raises
    ------
    ValueError
        Two folds overlap in time (their returns cannot be chained into one path).
    """
    parts = [daily_returns(e.astype(float), starting_equity) for e in equities if len(e)]
    if not parts:
        return pd.Series(dtype=float)
    for before, after in itertools.pairwise(parts):
        if after.index[0] <= before.index[-1]:
            raise ValueError(
                f"folds overlap: one ends {before.index[-1].date()}, the next starts "
                f"{after.index[0].date()} (use a step at least as long as the test window)",
            )
    return pd.concat(parts)


def stitched_figures(returns: pd.Series, periods_per_year: int) -> dict[str, float]:
    """Summary of chained daily returns: ``total_return, cagr, annual_volatility, sharpe,
    sortino, max_drawdown, calmar, days`` (fractions and ratios; ``max_drawdown`` negative)."""
    stats = performance_summary(returns, periods_per_year)
    return {
        "total_return": stats["total_return"],
        "cagr": stats["annual_return"],
        "annual_volatility": stats["annual_volatility"],
        "sharpe": stats["sharpe"],
        "sortino": stats["sortino"],
        "max_drawdown": stats["max_drawdown"],
        "calmar": stats["calmar"],
        "days": stats["periods"],
    }
