"""A Markov-switching price series with known regimes, and a bar catalog holding it.

Used by the regime tests and ``benchmarks/regime_forward.py``: the true regime of every bar is
known, so detection can be scored.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

__all__ = [
    "LABELS",
    "REGIME_DRIFT",
    "REGIME_VOL",
    "bar_frame",
    "equity",
    "regime_series",
    "write_catalog",
]

# bull, bear, sideways: per-bar drift and volatility of log returns
REGIME_DRIFT = (0.0012, -0.0015, 0.0)
REGIME_VOL = (0.006, 0.014, 0.003)
LABELS = ("bull", "bear", "sideways")


def regime_series(
    n: int,
    seed: int = 7,
    stay: float = 0.99,
    start_price: float = 100.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Closes (n,) and true regime indices (n,) of a 3-regime Markov-switching random walk."""
    rng = np.random.default_rng(seed)
    switch = (1.0 - stay) / 2.0
    transmat = np.full((3, 3), switch) + np.eye(3) * (stay - switch)
    states = np.empty(n, dtype=int)
    state = 2
    for t in range(n):
        state = rng.choice(3, p=transmat[state])
        states[t] = state
    drift = np.asarray(REGIME_DRIFT)[states]
    vol = np.asarray(REGIME_VOL)[states]
    log_returns = rng.normal(drift, vol)
    closes = start_price * np.exp(np.cumsum(log_returns))
    return np.round(closes, 4), states


def equity(instrument_id: str) -> Equity:
    """A USD equity priced to 4 decimals, without fees."""
    iid = InstrumentId.from_str(instrument_id)
    return Equity(
        instrument_id=iid,
        raw_symbol=Symbol(iid.symbol.value),
        currency=USD,
        price_precision=4,
        price_increment=Price.from_str("0.0001"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=0,
        taker_fee=0,
    )


def bar_frame(
    closes: np.ndarray, start: str = "2024-01-02 14:31", freq: str = "1min"
) -> pd.DataFrame:
    """OHLCV frame stamped at bar close (UTC), open = previous close."""
    index = pd.date_range(start, periods=len(closes), freq=freq, tz="UTC")
    closes = np.asarray(closes, dtype=float)
    opens = np.concatenate([[closes[0]], closes[:-1]])
    return pd.DataFrame(
        {
            "open": opens,
            "high": np.maximum(opens, closes) * 1.0005,
            "low": np.minimum(opens, closes) * 0.9995,
            "close": closes,
            "volume": np.full(len(closes), 1_000_000.0),
        },
        index=index,
    )


def write_catalog(
    path: Path,
    series: dict[str, np.ndarray],
    freq: str = "1min",
    start: str = "2024-01-02 14:31",
) -> dict[str, str]:
    """Write instruments and bars; returns instrument id → bar type string."""
    catalog = ParquetDataCatalog(str(path))
    step = "1-MINUTE" if freq == "1min" else "1-DAY"
    bar_types = {}
    for instrument_id, closes in series.items():
        instrument = equity(instrument_id)
        catalog.write_data([instrument])
        bar_type = BarType.from_str(f"{instrument_id}-{step}-LAST-EXTERNAL")
        bars = BarDataWrangler(bar_type, instrument).process(bar_frame(closes, start, freq))
        catalog.write_data(bars)
        bar_types[instrument_id] = str(bar_type)
    return bar_types
