"""Strategy-performance features: what the meta-controller knows about each strategy at a rebalance.

Everything here is computed from trailing values only (the rows of the ``returns`` window end at
the rebalance bar), so a feature row never sees the future.

Units: ``returns`` are per-bar returns *per unit of allocation* (a strategy's profit over the bar
divided by the capital allocated to it, a fraction); turnover is traded notional over allocated
capital per bar; volatilities are per-bar standard deviations of returns (not annualised).
"""

import math

import numpy as np

__all__ = [
    "CONTEXT_FEATURES",
    "STRATEGY_FEATURES",
    "context_features",
    "feature_names",
    "performance_features",
    "return_correlation",
]

STRATEGY_FEATURES: tuple[str, ...] = (
    "return",
    "sharpe",
    "hit_rate",
    "max_drawdown",
    "volatility",
    "turnover",
    "last_return",
    "exposure",
    "weight",
)
"""Per-strategy features, the columns of :func:`performance_features` plus the two the caller
appends (``exposure``: gross notional over equity; ``weight``: current capital weight)."""

CONTEXT_FEATURES: tuple[str, ...] = (
    "p_bull",
    "p_bear",
    "p_sideways",
    "market_volatility",
    "month_sin",
    "month_cos",
    "weekday",
)
"""Features shared by every strategy at one rebalance (:func:`context_features`)."""

_PERFORMANCE_COLUMNS = 7


def feature_names() -> list[str]:
    """Column names of one model row: the strategy's features, then the shared context."""
    return [*STRATEGY_FEATURES, *CONTEXT_FEATURES]


def performance_features(returns: np.ndarray, turnover: np.ndarray) -> np.ndarray:
    """Trailing performance of every strategy over a window.

    Parameters
    ----------
    returns : np.ndarray, shape (n_bars, n_strategies)
        Per-bar returns per unit of allocation, oldest first.
    turnover : np.ndarray, shape (n_bars, n_strategies)
        Per-bar traded notional over allocated capital.

    Returns
    -------
    np.ndarray, shape (n_strategies, 7)
        Columns ``return`` (compounded over the window), ``sharpe`` (mean over standard
        deviation of the per-bar returns, not annualised; 0 when flat), ``hit_rate`` (fraction of
        bars with a positive return among bars with a non-zero one; 0.5 when none),
        ``max_drawdown`` (of the compounded curve, ≤ 0), ``volatility`` (per-bar standard
        deviation), ``turnover`` (mean per bar), ``last_return`` (the last bar's).
    """
    returns = np.asarray(returns, dtype=float)
    turnover = np.asarray(turnover, dtype=float)
    if returns.ndim != 2 or returns.shape != turnover.shape or returns.shape[0] == 0:
        raise ValueError(
            f"returns and turnover must be equal non-empty (n_bars, n_strategies) arrays, "
            f"got {returns.shape} and {turnover.shape}",
        )
    growth = np.cumprod(1.0 + returns, axis=0)
    total = growth[-1] - 1.0
    # The mean once: np.std(mean=...) takes the same keepdims mean it would compute itself.
    mean_row = returns.mean(axis=0, keepdims=True)
    mean = mean_row[0]
    if returns.shape[0] > 1:
        std = returns.std(axis=0, ddof=1, mean=mean_row)
    else:
        std = np.zeros(returns.shape[1])
    sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=std > 1e-12)
    traded = np.abs(returns) > 0.0
    wins = (returns > 0.0).sum(axis=0)
    active = traded.sum(axis=0)
    hit_rate = np.divide(wins, active, out=np.full_like(mean, 0.5), where=active > 0)
    peak = np.maximum.accumulate(np.maximum(growth, 1.0), axis=0)
    drawdown = (growth / peak - 1.0).min(axis=0)
    out = np.empty((returns.shape[1], _PERFORMANCE_COLUMNS))
    out[:, 0] = total
    out[:, 1] = sharpe
    out[:, 2] = hit_rate
    out[:, 3] = np.minimum(drawdown, 0.0)
    out[:, 4] = std
    out[:, 5] = turnover.mean(axis=0)
    out[:, 6] = returns[-1]
    return out


def return_correlation(returns: np.ndarray) -> np.ndarray:
    """Pearson correlation of the strategies' per-bar returns over a window.

    The floats of ``np.corrcoef(returns.T)`` bit for bit (the same operations in the same
    order: the column means, the centred rows' product through ``np.dot``, scaled by
    ``1 / (n_bars - 1)``, divided by the standard deviations, clipped to [-1, 1]), without
    ``np.cov``'s argument handling, which cost three times the arithmetic at a rebalance; then a
    flat strategy's NaN row and column (0/0) become 0 and the diagonal 1.

    Parameters
    ----------
    returns : np.ndarray, shape (n_bars, n_strategies)
        Per-bar returns, oldest first; at least two bars.

    Returns
    -------
    np.ndarray, shape (n_strategies, n_strategies)
    """
    returns = np.asarray(returns, dtype=float)
    if returns.ndim != 2 or returns.shape[0] < 2:
        raise ValueError(
            f"returns must be an (n_bars >= 2, n_strategies) array, got {returns.shape}"
        )
    n = returns.shape[1]
    if n == 1:
        return np.ones((1, 1))
    with np.errstate(divide="ignore", invalid="ignore"):
        centred = returns.T - returns.mean(axis=0)[:, None]  # (n, n_bars), as np.cov's copy
        correlation = np.dot(centred, centred.T.conj())
        correlation *= np.true_divide(1, returns.shape[0] - 1)
        deviation = np.sqrt(np.diag(correlation))
        correlation /= deviation[:, None]
        correlation /= deviation[None, :]
    np.clip(correlation, -1, 1, out=correlation)
    # NaN is the only non-finite value left after the clip: 0, as np.nan_to_num(nan=0.0).
    np.copyto(correlation, 0.0, where=np.isnan(correlation))
    correlation.flat[:: n + 1] = 1.0  # the diagonal (np.fill_diagonal's stride)
    return correlation


def context_features(
    regime_probabilities: tuple[float, float, float],
    market_closes: np.ndarray,
    month: int,
    weekday: int,
) -> np.ndarray:
    """The shared context of one rebalance.

    Parameters
    ----------
    regime_probabilities : (p_bull, p_bear, p_sideways)
        The regime actor's latest causal probabilities.
    market_closes : np.ndarray, shape (n_bars,)
        Trailing closes of the clock instrument (oldest first); ``market_volatility`` is the
        standard deviation of their log returns (per bar; 0 with fewer than three closes).
    month : int
        Calendar month 1..12 of the rebalance bar (UTC).
    weekday : int
        Monday 0 .. Sunday 6.

    Returns
    -------
    np.ndarray, shape (7,)
        In :data:`CONTEXT_FEATURES` order.
    """
    closes = np.asarray(market_closes, dtype=float)
    if closes.size >= 3 and (closes > 0.0).all():
        log_closes = np.log(closes)
        volatility = float((log_closes[1:] - log_closes[:-1]).std(ddof=1))  # np.diff's slices
    else:
        volatility = 0.0
    angle = 2.0 * math.pi * (month - 1) / 12.0
    return np.array(
        [
            *regime_probabilities,
            volatility,
            math.sin(angle),
            math.cos(angle),
            float(weekday),
        ],
    )
