"""An outside reference for the fill conventions: daily bars and a close-vs-SMA strategy simulated
in a few lines of pandas, independently of Nautilus (tests/test_fill_timing.py and
scripts/fill_conventions.py compare the engine with it).

The simulation is what backtrader / backtesting.py do with a fixed-size, long/flat strategy:
signal on bar i's close (close > mean of the last ``period`` closes, bar i included, computed
exactly in cents: a close equal to the mean is not above it), fill at bar i's close (``close``) or
at bar i+1's open (``next_open``; a signal on the last bar never fills), commission ``fee`` ×
notional per fill, to the cent (halves up), the open position marked at the last close.
"""

from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from decimal import Decimal

import numpy as np
import pandas as pd

__all__ = ["ReferenceResult", "daily_bars", "simulate_close_vs_sma"]


def daily_bars(
    days: int = 260,
    seed: int = 7,
    start: str = "2020-01-02",
    first_close: float = 100.0,
) -> pd.DataFrame:
    """Weekday bars of a seeded random walk: DatetimeIndex of dates (naive), columns
    open/high/low/close (2 decimals) and volume (whole units, large enough that the venue's
    liquidity — volume / 4 per price — never limits a fill of a few hundred units).

    Opens gap away from the previous close, so both conventions give different fills.
    """
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range(start, periods=days)
    closes = first_close * np.exp(np.cumsum(rng.normal(0.0003, 0.012, days)))
    previous = np.concatenate([[first_close], closes[:-1]])
    opens = previous * np.exp(rng.normal(0.0, 0.006, days))
    highs = np.maximum(opens, closes) * (1.0 + rng.uniform(0.0, 0.008, days))
    lows = np.minimum(opens, closes) * (1.0 - rng.uniform(0.0, 0.008, days))
    frame = pd.DataFrame(
        {
            "open": opens.round(2),
            "high": highs.round(2),
            "low": lows.round(2),
            "close": closes.round(2),
            "volume": rng.integers(1_000_000, 2_000_000, days).astype(float),
        },
        index=dates,
    )
    # Rounding can push open/close past high/low by a cent: keep the bars valid.
    frame["high"] = frame[["open", "high", "close"]].max(axis=1)
    frame["low"] = frame[["open", "low", "close"]].min(axis=1)
    frame.index.name = "date"
    return frame


def _commission(quantity: float, price: float, fee: float) -> float:
    """``fee`` × notional to the cent, halves up (0.865 → 0.87), computed in decimal."""
    amount = Decimal(str(quantity)) * Decimal(str(price)) * Decimal(str(fee))
    return float(amount.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


@dataclass(frozen=True)
class ReferenceResult:
    """The simulation's outcome: final equity (cash + position at the last close), in the quote
    currency; fills as (bar index, side +1/-1, price); commissions paid."""

    final_equity: float
    fills: list[tuple[int, int, float]]
    commissions: float


def simulate_close_vs_sma(
    bars: pd.DataFrame,
    period: int,
    quantity: float,
    fee: float,
    starting_cash: float,
    fill_at: str,
) -> ReferenceResult:
    """Long ``quantity`` while close > SMA(period), flat otherwise; see the module docs."""
    if fill_at not in ("close", "next_open"):
        raise ValueError(f"fill_at must be 'close' or 'next_open', was {fill_at!r}")
    closes = bars["close"].to_numpy()
    opens = bars["open"].to_numpy()
    # Exact: prices in whole cents, "close > mean" as close × period > sum (ties are not above).
    cents = (bars["close"] * 100).round().astype("int64")
    sums = cents.rolling(period).sum().to_numpy()
    cents = cents.to_numpy()
    cash = starting_cash
    position = 0.0
    long = False
    commissions = 0.0
    fills: list[tuple[int, int, float]] = []
    for i in range(len(bars)):
        if np.isnan(sums[i]):
            continue
        wants_long = int(cents[i]) * period > int(sums[i])
        if wants_long == long:
            continue
        long = wants_long
        if fill_at == "close":
            fill_index, price = i, closes[i]
        elif i + 1 < len(bars):
            fill_index, price = i + 1, opens[i + 1]
        else:
            continue  # decided on the last bar: no next open
        side = 1 if wants_long else -1
        commission = _commission(quantity, float(price), fee)
        cash -= side * quantity * price + commission
        position += side * quantity
        commissions += commission
        fills.append((fill_index, side, float(price)))
    return ReferenceResult(
        final_equity=cash + position * closes[-1],
        fills=fills,
        commissions=commissions,
    )
