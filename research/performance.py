"""Equity curves and run summaries reconstructed from fills and bar closes.

The engine reports fills, positions and account states; it does not mark portfolios to market at
every bar. This module rebuilds the mark-to-market equity at every bar close from the fills and
the closes, vectorised, so summaries cost milliseconds instead of Nautilus' post-run analysis.

Cash-flow form, valid for every linear instrument on cash and margin accounts alike::

    equity_t = starting_equity + Σ_fills≤t (−side · qty · price · multiplier − commission)
                               + Σ_instruments position_t · close_t · multiplier

On a margin account the first two terms are the virtual cash of the notional; the sum equals
balance + unrealised PnL. All amounts are in the account's single base currency.
"""

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research.metrics import performance_summary
from research.metrics import trade_statistics

_NS_PER_YEAR = 365.25 * 24 * 3600 * 1e9


def money_to_float(value: object) -> float:
    """Parse Nautilus' ``"123.45 USD"`` money strings (or numbers) to float."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return 0.0
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    if text.startswith("["):  # lists of Money, e.g. "[187.43 USD]"
        return sum(money_to_float(part) for part in text.strip("[]").split(",") if part.strip())
    return float(text.split()[0]) if text else 0.0


def normalise_fills(fills_report: pd.DataFrame) -> pd.DataFrame:
    """Turn a Nautilus fills report into typed columns.

    Returns
    -------
    pd.DataFrame
        One row per fill, sorted by time: ``ts_event`` (UTC Timestamp), ``strategy_id``,
        ``instrument_id`` (str), ``signed_qty`` (+buy/−sell, units), ``price``, ``commission``
        (account currency).
    """
    columns = ["ts_event", "strategy_id", "instrument_id", "signed_qty", "price", "commission"]
    if fills_report is None or fills_report.empty:
        return pd.DataFrame(columns=columns)
    frame = fills_report.reset_index(drop=False)
    side = np.where(frame["order_side"].astype(str) == "BUY", 1.0, -1.0)
    out = pd.DataFrame(
        {
            "ts_event": pd.to_datetime(frame["ts_event"], utc=True),
            "strategy_id": frame["strategy_id"].astype(str),
            "instrument_id": frame["instrument_id"].astype(str),
            "signed_qty": side * frame["last_qty"].astype(float),
            "price": frame["last_px"].astype(float),
            "commission": frame["commission"].map(money_to_float),
        },
    )
    return out.sort_values("ts_event", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class EquityCurve:
    """Mark-to-market state at every bar close.

    Attributes
    ----------
    frame : pd.DataFrame
        Index: UTC bar-close timestamps. Columns: ``equity``, ``gross_exposure``,
        ``net_exposure`` (account currency) and ``pnl:<strategy_id>`` per strategy (cumulative
        PnL including commissions).
    starting_equity : float
        Equity before the first bar.
    """

    frame: pd.DataFrame
    starting_equity: float

    @property
    def equity(self) -> pd.Series:
        return self.frame["equity"]

    def strategy_ids(self) -> list[str]:
        return [c.removeprefix("pnl:") for c in self.frame.columns if c.startswith("pnl:")]


def equity_curve(
    fills: pd.DataFrame,
    closes: pd.DataFrame,
    starting_equity: float,
    multipliers: dict[str, float] | None = None,
) -> EquityCurve:
    """Rebuild equity at every bar close.

    Parameters
    ----------
    fills : pd.DataFrame
        Output of :func:`normalise_fills`.
    closes : pd.DataFrame
        Wide close prices: UTC DatetimeIndex (bar close times, sorted), one column per
        instrument id; forward-filled across instruments' differing timestamps.
    starting_equity : float
        Account equity before the first bar, in account currency.
    multipliers : dict[str, float], optional
        Contract multiplier per instrument id (default 1).
    """
    multipliers = multipliers or {}
    index = closes.index
    bar_ns = index.asi8
    equity = np.full(len(index), float(starting_equity))
    gross = np.zeros(len(index))
    net = np.zeros(len(index))
    columns: dict[str, np.ndarray] = {}
    if not fills.empty:
        missing = set(fills["instrument_id"]) - set(closes.columns)
        if missing:
            raise ValueError(f"fills for instruments without closes: {sorted(missing)}")
        for strategy_id, by_strategy in fills.groupby("strategy_id", sort=True):
            pnl = np.zeros(len(index))
            for instrument_id, group in by_strategy.groupby("instrument_id", sort=True):
                multiplier = float(multipliers.get(instrument_id, 1.0))
                fill_ns = group["ts_event"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
                qty = group["signed_qty"].to_numpy(dtype=float)
                cash = -(qty * group["price"].to_numpy(dtype=float) * multiplier)
                cash -= group["commission"].to_numpy(dtype=float)
                # For each bar: how many fills happened at or before its close.
                count = np.searchsorted(fill_ns, bar_ns, side="right")
                cum_qty = np.concatenate(([0.0], np.cumsum(qty)))[count]
                cum_cash = np.concatenate(([0.0], np.cumsum(cash)))[count]
                close = closes[instrument_id].to_numpy(dtype=float)
                value = np.where(cum_qty != 0.0, cum_qty * np.nan_to_num(close) * multiplier, 0.0)
                pnl += cum_cash + value
                gross += np.abs(value)
                net += value
            columns[f"pnl:{strategy_id}"] = pnl
            equity += pnl
    frame = pd.DataFrame(
        {"equity": equity, "gross_exposure": gross, "net_exposure": net, **columns},
        index=index,
    )
    return EquityCurve(frame=frame, starting_equity=float(starting_equity))


def infer_periods_per_year(index: pd.DatetimeIndex) -> int:
    """252 for weekday-only data (exchange calendars), 365 when weekends trade (crypto)."""
    if len(index) == 0:
        return 252
    return 365 if bool((index.dayofweek >= 5).any()) else 252


def daily_returns(equity: pd.Series, starting_equity: float) -> pd.Series:
    """Simple returns of end-of-day equity (UTC days that have bars); the first day is measured
    against ``starting_equity``."""
    daily = equity.groupby(equity.index.normalize()).last()
    previous = daily.shift(1)
    previous.iloc[0] = starting_equity
    return daily / previous - 1.0


def closed_trade_pnls(positions_report: pd.DataFrame) -> pd.DataFrame:
    """Closed round trips from a Nautilus positions report: ``strategy_id``, ``realized_pnl``."""
    if positions_report is None or positions_report.empty:
        return pd.DataFrame(columns=["strategy_id", "realized_pnl"])
    closed = positions_report[positions_report["ts_closed"].notna()]
    return pd.DataFrame(
        {
            "strategy_id": closed["strategy_id"].astype(str),
            "realized_pnl": closed["realized_pnl"].map(money_to_float),
        },
    )


def run_summary(
    curve: EquityCurve,
    fills: pd.DataFrame,
    positions_report: pd.DataFrame,
    periods_per_year: int | None = None,
    multipliers: dict[str, float] | None = None,
) -> dict:
    """The run summary printed by ``grodt backtest`` and logged by tracking.

    Keys: ``total_return, cagr, annual_volatility, sharpe, sortino, max_drawdown, calmar`` (from
    daily returns with :func:`research.metrics.performance_summary`), ``win_rate,
    profit_factor, trades`` (closed round trips), ``fills``, ``turnover`` (traded notional over
    mean equity, per year), ``exposure`` (mean gross exposure over equity), ``time_in_market``
    (fraction of bars with a position), ``starting_equity, final_equity, periods_per_year,
    start, end, bars`` and ``strategies`` (per-strategy PnL, return contribution and trade stats).
    """
    multipliers = multipliers or {}
    frame = curve.frame
    equity = frame["equity"]
    ppy = periods_per_year or infer_periods_per_year(frame.index)
    returns = daily_returns(equity, curve.starting_equity) if len(frame) else pd.Series([])
    stats = performance_summary(returns, ppy)
    trades = closed_trade_pnls(positions_report)
    trade_stats = trade_statistics(trades["realized_pnl"])
    span_years = (
        max((frame.index[-1] - frame.index[0]).value / _NS_PER_YEAR, 1.0 / ppy)
        if len(frame)
        else math.nan
    )
    traded_notional = 0.0
    if not fills.empty:
        mult = fills["instrument_id"].map(lambda i: float(multipliers.get(i, 1.0)))
        traded_notional = float((fills["signed_qty"].abs() * fills["price"] * mult).sum())
    mean_equity = float(equity.mean()) if len(equity) else math.nan
    with np.errstate(divide="ignore", invalid="ignore"):
        exposure_ratio = (frame["gross_exposure"] / equity).replace([np.inf, -np.inf], np.nan)
    summary: dict = {
        "total_return": float(equity.iloc[-1] / curve.starting_equity - 1.0)
        if len(equity)
        else math.nan,
        "cagr": stats["annual_return"],
        "annual_volatility": stats["annual_volatility"],
        "sharpe": stats["sharpe"],
        "sortino": stats["sortino"],
        "max_drawdown": stats["max_drawdown"],
        "calmar": stats["calmar"],
        "win_rate": trade_stats["win_rate"],
        "profit_factor": trade_stats["profit_factor"],
        "trades": int(trade_stats["trades"]),
        "fills": len(fills),
        "turnover": traded_notional / mean_equity / span_years if mean_equity else math.nan,
        "exposure": float(exposure_ratio.mean()) if len(frame) else math.nan,
        "time_in_market": float((frame["gross_exposure"] > 0).mean()) if len(frame) else math.nan,
        "starting_equity": curve.starting_equity,
        "final_equity": float(equity.iloc[-1]) if len(equity) else curve.starting_equity,
        "periods_per_year": ppy,
        "start": frame.index[0].isoformat() if len(frame) else None,
        "end": frame.index[-1].isoformat() if len(frame) else None,
        "bars": len(frame),
        "strategies": {},
    }
    for strategy_id in curve.strategy_ids():
        pnl = frame[f"pnl:{strategy_id}"]
        # Contribution returns: the strategy's PnL change over the whole account's prior equity.
        daily_pnl = pnl.groupby(pnl.index.normalize()).last()
        daily_equity = equity.groupby(equity.index.normalize()).last()
        prior_equity = daily_equity.shift(1).fillna(curve.starting_equity)
        contribution = daily_pnl.diff().fillna(daily_pnl.iloc[0]) / prior_equity
        strategy_stats = performance_summary(contribution, ppy)
        strategy_trades = trade_statistics(
            trades.loc[trades["strategy_id"] == strategy_id, "realized_pnl"],
        )
        summary["strategies"][strategy_id] = {
            "pnl": float(pnl.iloc[-1]),
            "return_contribution": float(pnl.iloc[-1] / curve.starting_equity),
            "sharpe": strategy_stats["sharpe"],
            "max_drawdown": strategy_stats["max_drawdown"],
            "trades": int(strategy_trades["trades"]),
            "win_rate": strategy_trades["win_rate"],
            "profit_factor": strategy_trades["profit_factor"],
            "fills": int((fills["strategy_id"] == strategy_id).sum()),
        }
    return summary
