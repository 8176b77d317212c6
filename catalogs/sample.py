"""Sample catalogs built without a network, from data shipped in Python packages.

Datasets (each written in one all-or-nothing commit through the normal validation pipeline):

``sp500``
    Real daily OHLCV of the S&P 500 and NASDAQ Composite indices, 1999-2018
    (``arch.data.sp500`` / ``arch.data.nasdaq``): instruments ``SPX.SAMPLE`` and
    ``IXIC.SAMPLE`` (specs ``catalogs/specs/spx_sample.yaml``, ``ixic_sample.yaml``), bar types
    ``SPX.SAMPLE-1-DAY-LAST-EXTERNAL`` and ``IXIC.SAMPLE-1-DAY-LAST-EXTERNAL`` stamped at 16:00
    America/New_York. Raw (unadjusted) OHLC: for a price index Adj Close equals Close. The
    vendor floats carry float32 noise (``1229.229980``): the precision policy is ``repair``
    (rounded to cents, audited).
``stocks``
    Real daily adjusted closes of 20 S&P 500 stocks, 1990-2022
    (``skfolio.datasets.load_sp500_dataset``): instruments ``<TICKER>.SAMPLE`` (Equity, price
    precision 3), bar types ``<TICKER>.SAMPLE-1-DAY-LAST-EXTERNAL``. Close only, so bars are
    formed as open = previous close (the first bar: its close), high = max(open, close),
    low = min(open, close), volume = 0 (unknown). Nautilus' matching engine sizes the simulated
    book at max(volume / 4, size increment): a market order fills one share at the bar's price
    and the rest one tick (0.001) worse, so orders fill in full.
``synthetic``
    The seeded regime-switching market of :mod:`catalogs.synthetic` (``SYNA.XSYN`` ..
    ``SYND.XSYN``, 1-minute bars, truth at ``<catalog>/truth/synthetic_regimes.parquet``).
"""

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from catalogs.specs import SPECS_DIR
from catalogs.specs import EquitySpec
from catalogs.specs import load_instrument_spec
from catalogs.specs import parse_instrument_spec
from catalogs.synthetic import TRUTH_PATH
from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import instrument_spec as synthetic_spec
from catalogs.synthetic import write_synthetic
from catalogs.transaction import bar_directory
from catalogs.validation import ValidationConfig
from grodt.core.errors import ConfigError

DATASETS: tuple[str, ...] = ("sp500", "stocks", "synthetic")
SAMPLE_VENUE = "SAMPLE"
STOCK_TICKERS: tuple[str, ...] = (
    "AAPL",
    "AMD",
    "BAC",
    "BBY",
    "CVX",
    "GE",
    "HD",
    "JNJ",
    "JPM",
    "KO",
    "LLY",
    "MRK",
    "MSFT",
    "PEP",
    "PFE",
    "PG",
    "RRC",
    "UNH",
    "WMT",
    "XOM",
)
"""The columns of ``skfolio.datasets.load_sp500_dataset()`` (checked when building)."""

INDEX_BAR_TYPES: tuple[str, ...] = (
    "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
    "IXIC.SAMPLE-1-DAY-LAST-EXTERNAL",
)


def stock_bar_types() -> list[str]:
    return [f"{ticker}.{SAMPLE_VENUE}-1-DAY-LAST-EXTERNAL" for ticker in STOCK_TICKERS]


def synthetic_bar_types(params: SyntheticParams | None = None) -> list[str]:
    params = params or SyntheticParams()
    return [f"{i.symbol}.XSYN-1-MINUTE-LAST-EXTERNAL" for i in params.instruments]


def build_sample_catalog(
    catalog_dir: str | Path,
    datasets: Iterable[str] = DATASETS,
    seed: int = 7,
    if_missing: bool = False,
    synthetic: SyntheticParams | None = None,
) -> dict[str, Any]:
    """Build (or rebuild) the sample datasets into a catalog.

    Idempotent: a dataset is rewritten in place (its bar types' files replaced in one commit),
    so building twice gives the same bars. With ``if_missing`` a dataset whose bar types (and,
    for ``synthetic``, truth) are all present is skipped.

    Parameters
    ----------
    catalog_dir : str | Path
    datasets : Iterable[str]
        Any of ``sp500``, ``stocks``, ``synthetic``.
    seed : int
        Seed of the synthetic market (the real datasets are fixed).
    if_missing : bool
    synthetic : SyntheticParams | None
        Full synthetic parameters (their ``seed`` is replaced by ``seed``).

    Returns
    -------
    dict
        ``{"catalog": str, "datasets": {name: {"status": "built" | "skipped", "bar_types":
        [...], "rows": {bar_type: n}}}}`` (``synthetic`` adds ``truth`` and ``transitions``).
    """
    names = list(dict.fromkeys(datasets))
    unknown = [name for name in names if name not in DATASETS]
    if unknown:
        raise ConfigError(f"unknown sample dataset(s) {unknown} (choose from {list(DATASETS)})")
    root = Path(catalog_dir)
    params = _synthetic_params(synthetic, seed)
    report: dict[str, Any] = {"catalog": str(root), "datasets": {}}
    for name in names:
        bar_types = {
            "sp500": list(INDEX_BAR_TYPES),
            "stocks": stock_bar_types(),
            "synthetic": synthetic_bar_types(params),
        }[name]
        if if_missing and _present(root, bar_types, name):
            report["datasets"][name] = {"status": "skipped", "bar_types": bar_types}
            continue
        if name == "sp500":
            built = _build_indices(root)
        elif name == "stocks":
            built = _build_stocks(root)
        else:
            built = write_synthetic(root, params, replace=True)
        report["datasets"][name] = {"status": "built", **built}
    return report


def _synthetic_params(params: SyntheticParams | None, seed: int) -> SyntheticParams:
    from dataclasses import replace

    return replace(params or SyntheticParams(), seed=seed)


def _present(root: Path, bar_types: list[str], dataset: str) -> bool:
    bars = all(any((root / bar_directory(b)).glob("*.parquet")) for b in bar_types)
    return bars and (dataset != "synthetic" or (root / TRUTH_PATH).is_file())


def _build_indices(root: Path) -> dict[str, Any]:
    import arch.data.nasdaq
    import arch.data.sp500

    from catalogs.ingest import prepare_frame
    from catalogs.ingest import write_prepared

    config = ValidationConfig(policies={"precision": "repair"})
    prepared = []
    for spec_file, frame, source in (
        ("spx_sample.yaml", arch.data.sp500.load(), "arch.data.sp500"),
        ("ixic_sample.yaml", arch.data.nasdaq.load(), "arch.data.nasdaq"),
    ):
        spec = load_instrument_spec(SPECS_DIR / spec_file)
        # Raw OHLC: Adj Close of a price index equals Close (no dividends are reinvested).
        bars = frame[["Open", "High", "Low", "Close", "Volume"]]
        prepared.append(prepare_frame(bars, spec, source=source, config=config))
    results = write_prepared(root, prepared, replace=True)
    return {
        "bar_types": [r.bar_type for r in results],
        "rows": {r.bar_type: r.rows_written for r in results},
        "repairs": {r.bar_type: len(r.audit) for r in results},
    }


def stock_spec(ticker: str) -> EquitySpec:
    """Equity spec of a sample stock: USD, price precision 3, lot 1, 1 bp fees, NYSE close."""
    spec = parse_instrument_spec(
        {
            "kind": "equity",
            "id": f"{ticker}.{SAMPLE_VENUE}",
            "currency": "USD",
            "price_precision": 3,
            "lot_size": 1,
            "maker_fee": "0.0001",
            "taker_fee": "0.0001",
            "timezone": "America/New_York",
            "session_close": "16:00",
        },
        source=f"sample:{ticker}",
    )
    assert isinstance(spec, EquitySpec)
    return spec


def close_only_bars(close: pd.Series) -> pd.DataFrame:
    """Bars from closes alone: open = previous close (first: its close), high/low = max/min of
    open and close, volume = 0 (unknown). NaN closes are dropped first.

    Parameters
    ----------
    close : pd.Series
        Closes indexed by date, float64.

    Returns
    -------
    pd.DataFrame
        Same index (NaN rows removed), float columns ``open high low close volume``.
    """
    close = close.dropna().astype("float64")
    open_ = close.shift(1).fillna(close)
    return pd.DataFrame(
        {
            "open": open_,
            "high": pd.concat([open_, close], axis=1).max(axis=1),
            "low": pd.concat([open_, close], axis=1).min(axis=1),
            "close": close,
            "volume": 0.0,
        }
    )


def _build_stocks(root: Path) -> dict[str, Any]:
    from skfolio.datasets import load_sp500_dataset

    from catalogs.ingest import prepare_frame
    from catalogs.ingest import write_prepared

    prices = load_sp500_dataset()
    missing = [ticker for ticker in STOCK_TICKERS if ticker not in prices.columns]
    if missing:
        raise ConfigError(f"skfolio's S&P 500 dataset lacks {missing}; its columns changed")
    prepared = [
        prepare_frame(
            close_only_bars(prices[ticker]),
            stock_spec(ticker),
            source=f"skfolio.sp500:{ticker}",
        )
        for ticker in STOCK_TICKERS
    ]
    results = write_prepared(root, prepared, replace=True)
    return {
        "bar_types": [r.bar_type for r in results],
        "rows": {r.bar_type: r.rows_written for r in results},
    }


__all__ = [
    "DATASETS",
    "INDEX_BAR_TYPES",
    "STOCK_TICKERS",
    "build_sample_catalog",
    "close_only_bars",
    "stock_bar_types",
    "stock_spec",
    "synthetic_bar_types",
    "synthetic_spec",
]
