"""Helpers of the features tests: a small real catalog ingested from CSV files, and a feature set
with every kind."""

from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from catalogs.ingest import ingest_files
from catalogs.validation import ValidationConfig

SPEC_YAML = """\
kind: equity
id: {id}
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
"""

SUBJECT = "FEATA.XTST-1-MINUTE-LAST-EXTERNAL"
REFERENCE = "FEATB.XTST-1-MINUTE-LAST-EXTERNAL"


def minute_bars(n: int, seed: int, start: str = "2024-01-02 23:00") -> pd.DataFrame:
    """Consistent 2-decimal OHLCV minute bars (index = bar close, UTC) crossing a UTC midnight,
    with flat bars (close == open), a run of zero volume and a run of constant volume."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 2e-3, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    flat = rng.random(n) < 0.05
    close[flat] = open_[flat]
    open_[1:] = close[:-1]
    open_[flat] = close[flat]
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.05, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.05, n), 2)
    volume = rng.integers(100, 10_000, n).astype(float)
    volume[70:75] = 0.0  # VWAP keeps its value, OBV adds nothing
    volume[120:150] = 500.0  # volume z-score: a constant window is NaN, not inf
    index = pd.date_range(start, periods=n, freq="1min", tz="UTC", name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    """CSV with a naive-UTC ISO timestamp column (the bar close)."""
    out = frame.copy()
    out.index = out.index.tz_convert(None).strftime("%Y-%m-%d %H:%M:%S")
    out.to_csv(path, index_label="timestamp")
    return path


def ingest_csv(catalog: Path, frame: pd.DataFrame, instrument_id: str, name: str) -> Path:
    """Write ``frame`` as a CSV file next to the catalog and ingest it (close-labelled)."""
    spec = catalog.parent / f"{instrument_id}.yaml"
    spec.write_text(SPEC_YAML.format(id=instrument_id))
    path = write_csv(frame, catalog.parent / name)
    ingest_files([path], spec, catalog, config=ValidationConfig(label="close"))
    return path


def every_kind_set(path: Path) -> Path:
    """A feature set with every feature kind, short windows (many bars after warm-up)."""
    features = [
        {"kind": "sma", "period": 10},
        {"kind": "ema", "period": 10},
        {"kind": "rsi", "period": 7},
        {"kind": "macd", "fast": 5, "slow": 13},
        {"kind": "bollinger_width", "period": 10, "k": 2.0},
        {"kind": "atr", "period": 7},
        {"kind": "obv", "period": 10},
        {"kind": "vwap"},
        {"kind": "volume_zscore", "window": 10},
        *({"kind": "log_return", "periods": n} for n in (1, 5, 15, 30, 60)),
        {"kind": "volatility", "window": 20},
        {"kind": "correlation", "reference": REFERENCE, "window": 30},
        {"kind": "beta", "reference": REFERENCE, "window": 30},
        {"kind": "value_at_risk", "window": 40, "level": 0.95},
        {"kind": "conditional_value_at_risk", "window": 40, "level": 0.99},
        {"kind": "drawdown", "window": 30},
        {"kind": "regime"},
    ]
    path.write_text(yaml.safe_dump({"name": "every_kind", "features": features}))
    return path


def regime_frame(ts: pd.DatetimeIndex, every: int, seed: int) -> pd.DataFrame:
    """Regime probabilities on every ``every``-th bar close (``grodt regime infer`` columns)."""
    rng = np.random.default_rng(seed)
    stamps = ts[5::every]
    raw = rng.dirichlet([1.0, 1.0, 1.0], size=len(stamps))
    return pd.DataFrame(
        {
            "ts_event": stamps.as_unit("ns").asi8,
            "p_bull": raw[:, 0],
            "p_bear": raw[:, 1],
            "p_sideways": raw[:, 2],
        }
    )
