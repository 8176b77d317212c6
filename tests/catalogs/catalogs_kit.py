"""Helpers of the catalogs tests: clean bar frames, CSV text, catalog snapshots."""

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

EQUITY_YAML = """\
kind: equity
id: TEST.XNAS
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
timezone: America/New_York
session_close: "16:00"
"""
"""The ``spec_file`` fixture's instrument spec (TEST.XNAS, New York, 16:00 close)."""


def write_text(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text)
    return path


def clean_bars(
    n: int = 50,
    start: str = "2024-01-02 14:31",
    freq: str = "1min",
    seed: int = 0,
    tz: str | None = "UTC",
) -> pd.DataFrame:
    """Consistent 2-decimal OHLCV bars on a regular grid (index = bar close)."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 1e-3, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.05, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.05, n), 2)
    volume = rng.integers(100, 10_000, n).astype(float)
    index = pd.date_range(start, periods=n, freq=freq, tz=tz, name="timestamp")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def bars_csv(frame: pd.DataFrame, delimiter: str = ",") -> str:
    """CSV text with an ISO 'timestamp' column (naive UTC) and OHLCV columns."""
    index = frame.index.tz_convert(None) if frame.index.tz is not None else frame.index
    lines = ["timestamp,open,high,low,close,volume".replace(",", delimiter)]
    for ts, row in zip(index, frame.itertuples(index=False), strict=True):
        values = [ts.strftime("%Y-%m-%d %H:%M:%S"), *(repr(float(v)) for v in row)]
        lines.append(delimiter.join(values))
    return "\n".join(lines) + "\n"


def snapshot(root: Path) -> dict[str, str]:
    """Every file and directory under ``root`` with the sha256 of each file's bytes."""
    state: dict[str, str] = {}
    if not root.exists():
        return state
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        state[rel] = "dir" if path.is_dir() else hashlib.sha256(path.read_bytes()).hexdigest()
    return state
