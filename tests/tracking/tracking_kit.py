"""Helpers of the tracking tests: a tiny real catalog and node configs that use the
repository's shared component files."""

from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "node_configs" / "components"
VENUES = REPO / "node_configs" / "venues"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"


def write_tiny_catalog(path: Path, days: int = 320, seed: int = 7) -> Path:
    """A catalog with ``days`` daily bars of ``SPX.SAMPLE`` (a seeded random walk)."""
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.model.identifiers import Symbol
    from nautilus_trader.model.instruments import Equity
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.objects import Quantity
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    instrument = Equity(
        instrument_id=InstrumentId.from_str("SPX.SAMPLE"),
        raw_symbol=Symbol("SPX"),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal("0.0001"),
        taker_fee=Decimal("0.0001"),
    )
    rng = np.random.default_rng(seed)
    index = pd.bdate_range("2015-01-02", periods=days, tz="UTC") + pd.Timedelta(hours=21)
    # Trending regimes so the EMA cross trades both ways.
    drift = np.where((np.arange(days) // 60) % 2 == 0, 0.002, -0.0015)
    close = 1000.0 * np.exp(np.cumsum(drift + rng.normal(0, 0.01, days)))
    open_ = np.concatenate(([close[0]], close[:-1]))
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) * 1.003,
            "low": np.minimum(open_, close) * 0.997,
            "close": close,
            "volume": np.full(days, 1_000_000.0),
        },
        index=index,
    ).round(2)
    bars = BarDataWrangler(BarType.from_str(BAR_TYPE), instrument).process(frame)
    catalog = ParquetDataCatalog(str(path))
    catalog.write_data([instrument])
    catalog.write_data(bars)
    return path


def write_node_config(
    directory: Path, name: str = "tiny_ema", fast: int = 5, slow: int = 20
) -> Path:
    """A backtest config using the repository's shared venue and strategy component files."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "name": name,
        "description": "EMA cross on a tiny synthetic catalog (tracking tests)",
        "venues": [{"include": str(VENUES / "sample_cash.yaml")}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [
            {
                "include": str(COMPONENTS / "strategies" / "ema_cross_spx.yaml"),
                "config": {"fast_ema_period": fast, "slow_ema_period": slow},
            },
        ],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
