"""Performance statistics: one implementation used by the CLI, reports, tracking and tests.

Conventions follow empyrical (the statistics library behind pyfolio), so figures compare with
that ecosystem:

- returns are simple period returns (not log), one per period, NaN dropped;
- Sharpe and annual volatility use the sample standard deviation (ddof=1), risk-free rate 0;
- Sortino divides the annualised mean by the downside deviation over *all* periods,
  ``sqrt(mean(min(r - target, 0)^2)) * sqrt(periods_per_year)`` with target 0;
- the annual return is geometric: ``(prod(1 + r)) ** (periods_per_year / n) - 1``;
- the maximum drawdown is measured on the compounded curve ``cumprod(1 + r)`` starting from 1
  (so a first-period loss counts) and is a negative number (or 0);
- Calmar is ``annual_return / |max_drawdown|`` (NaN without a drawdown).
"""

import math
from collections.abc import Iterable

import numpy as np
import pandas as pd

SUMMARY_KEYS = (
    "total_return",
    "annual_return",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "periods",
)


def _clean(returns: pd.Series | np.ndarray | Iterable[float]) -> np.ndarray:
    values = np.asarray(returns, dtype=float)
    return values[~np.isnan(values)]


def total_return(returns: pd.Series | np.ndarray) -> float:
    """Compounded return over the whole series, as a fraction (0.1 = +10%)."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    return float(np.prod(1.0 + r) - 1.0)


def annual_return(returns: pd.Series | np.ndarray, periods_per_year: int = 252) -> float:
    """Geometric (compound) annual growth rate, as a fraction."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    ending_value = float(np.prod(1.0 + r))
    if ending_value <= 0:
        return -1.0
    years = r.size / periods_per_year
    return ending_value ** (1.0 / years) - 1.0


def annual_volatility(returns: pd.Series | np.ndarray, periods_per_year: int = 252) -> float:
    """Annualised sample standard deviation (ddof=1) of the returns."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    return float(np.std(r, ddof=1) * math.sqrt(periods_per_year))


def sharpe_ratio(returns: pd.Series | np.ndarray, periods_per_year: int = 252) -> float:
    """Annualised Sharpe ratio with a zero risk-free rate: ``mean / std(ddof=1) * sqrt(ppy)``."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    std = np.std(r, ddof=1)
    if std == 0:
        return math.nan
    return float(np.mean(r) / std * math.sqrt(periods_per_year))


def downside_risk(
    returns: pd.Series | np.ndarray,
    periods_per_year: int = 252,
    required_return: float = 0.0,
) -> float:
    """Annualised downside deviation below ``required_return``, over all periods."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    downside = np.clip(r - required_return, None, 0.0)
    return float(math.sqrt(np.mean(downside**2)) * math.sqrt(periods_per_year))


def sortino_ratio(
    returns: pd.Series | np.ndarray,
    periods_per_year: int = 252,
    required_return: float = 0.0,
) -> float:
    """Annualised mean excess return over the annualised downside deviation."""
    r = _clean(returns)
    if r.size < 2:
        return math.nan
    risk = downside_risk(r, periods_per_year, required_return)
    if risk == 0 or math.isnan(risk):
        return math.nan
    return float(np.mean(r - required_return) * periods_per_year / risk)


def drawdown_series(returns: pd.Series) -> pd.Series:
    """Drawdown of the compounded curve at each period, as a fraction (<= 0)."""
    clean = returns.dropna()
    curve = np.cumprod(1.0 + clean.to_numpy(dtype=float))
    # Start the running peak at 1.0 so a loss in the first period is a drawdown.
    peak = np.maximum.accumulate(np.concatenate(([1.0], curve)))[1:]
    return pd.Series(curve / peak - 1.0, index=clean.index)


def max_drawdown(returns: pd.Series | np.ndarray) -> float:
    """Largest peak-to-trough fall of the compounded curve, as a negative fraction (or 0)."""
    r = _clean(returns)
    if r.size == 0:
        return math.nan
    return float(drawdown_series(pd.Series(r)).min())


def calmar_ratio(returns: pd.Series | np.ndarray, periods_per_year: int = 252) -> float:
    """Annual return over the absolute maximum drawdown (NaN when there is no drawdown)."""
    mdd = max_drawdown(returns)
    if math.isnan(mdd) or mdd == 0:
        return math.nan
    return annual_return(returns, periods_per_year) / abs(mdd)


def performance_summary(returns: pd.Series, periods_per_year: int = 252) -> dict[str, float]:
    """Summary statistics of a series of simple period returns.

    Parameters
    ----------
    returns : pd.Series
        Simple returns, one per period (e.g. daily), as fractions; NaN values are dropped.
    periods_per_year : int, default 252
        Periods in a year, for annualisation (252 trading days; 365 for markets open daily).

    Returns
    -------
    dict[str, float]
        ``total_return, annual_return, annual_volatility, sharpe, sortino, max_drawdown, calmar``
        (fractions and ratios; ``max_drawdown`` is negative) and ``periods`` (count used).
    """
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, was {periods_per_year}")
    r = pd.Series(returns, dtype=float).dropna()
    return {
        "total_return": total_return(r),
        "annual_return": annual_return(r, periods_per_year),
        "annual_volatility": annual_volatility(r, periods_per_year),
        "sharpe": sharpe_ratio(r, periods_per_year),
        "sortino": sortino_ratio(r, periods_per_year),
        "max_drawdown": max_drawdown(r),
        "calmar": calmar_ratio(r, periods_per_year),
        "periods": float(r.size),
    }


def trade_statistics(realized_pnls: pd.Series | np.ndarray) -> dict[str, float]:
    """Win rate and profit factor of closed trades.

    Parameters
    ----------
    realized_pnls : array-like
        Realised PnL of each closed trade (round trip), in the account currency.

    Returns
    -------
    dict[str, float]
        ``trades`` (count), ``win_rate`` (fraction of trades with PnL > 0), ``profit_factor``
        (gross profit / gross loss; inf without losses, NaN without trades), ``avg_trade_pnl``.
    """
    pnl = _clean(realized_pnls)
    if pnl.size == 0:
        return {
            "trades": 0.0,
            "win_rate": math.nan,
            "profit_factor": math.nan,
            "avg_trade_pnl": math.nan,
        }
    gross_profit = float(pnl[pnl > 0].sum())
    gross_loss = float(-pnl[pnl < 0].sum())
    if gross_loss == 0:
        profit_factor = math.inf if gross_profit > 0 else math.nan
    else:
        profit_factor = gross_profit / gross_loss
    return {
        "trades": float(pnl.size),
        "win_rate": float(np.mean(pnl > 0)),
        "profit_factor": profit_factor,
        "avg_trade_pnl": float(pnl.mean()),
    }
