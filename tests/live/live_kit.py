"""Tiny catalogs and configs for the live-node tests (fast: a few hundred bars)."""

from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "node_configs" / "components"
VENUES = REPO / "node_configs" / "venues"


def equity(symbol: str, venue: str) -> Equity:
    """A share-level equity (lot size 1, 1 bp fees)."""
    return Equity(
        instrument_id=InstrumentId(Symbol(symbol), _venue(venue)),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal("0.0001"),
        taker_fee=Decimal("0.0001"),
    )


def _venue(name: str) -> Any:
    from nautilus_trader.model.identifiers import Venue

    return Venue(name)


def wavy_prices(n: int, seed: int, start: float = 100.0, period: int = 40) -> np.ndarray:
    """A noisy sine trend: EMA crosses every ``period / 2`` bars or so."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    path = start * (1 + 0.08 * np.sin(2 * np.pi * t / period)) + rng.normal(0, 0.3, n).cumsum()
    return np.maximum(path, 1.0)


def write_minute_catalog(
    path: Path,
    symbols: dict[str, int],
    venue: str = "PAPER",
    bars: int = 400,
    volume: float = 1_000_000.0,
    start: str = "2024-03-04 14:31",
) -> dict[str, str]:
    """Write 1-minute bars (closing at ``start`` + k minutes) for each symbol (value = seed).

    Returns ``{symbol: bar_type}``.
    """
    catalog = ParquetDataCatalog(str(path))
    index = pd.date_range(start, periods=bars, freq="1min", tz="UTC")
    bar_types = {}
    for symbol, seed in symbols.items():
        instrument = equity(symbol, venue)
        close = wavy_prices(bars, seed)
        open_ = np.concatenate(([close[0]], close[:-1]))
        frame = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) + 0.05,
                "low": np.minimum(open_, close) - 0.05,
                "close": close,
                "volume": np.full(bars, volume),
            },
            index=index,
        ).round({"open": 2, "high": 2, "low": 2, "close": 2})
        bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
        catalog.write_data([instrument])
        catalog.write_data(BarDataWrangler(bar_type, instrument).process(frame))
        bar_types[symbol] = str(bar_type)
    return bar_types


def write_yaml(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def paper_document(
    name: str,
    bar_types: list[str],
    strategies: list[dict[str, Any]],
    venue: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """A paper live config (replay + sandbox) as a YAML document."""
    replay = {"type": "replay", "data": [{"bar_types": bar_types}], "pacing": "lockstep"}
    replay.update(extra.pop("replay", {}))
    document: dict[str, Any] = {
        "name": name,
        "kind": "live",
        "data_clients": [replay],
        "exec_clients": [
            {
                "type": "sandbox",
                "venue": venue
                or {
                    "name": "PAPER",
                    "oms_type": "NETTING",
                    "account_type": "CASH",
                    "base_currency": "USD",
                    "starting_balances": ["1000000 USD"],
                },
            },
        ],
        "strategies": strategies,
        "reconciliation": {"enabled": False},
        "timeouts": {"post_stop": 0.2, "disconnection": 2},
    }
    document.update(extra)
    return document


def ema_cross(instrument_id: str, bar_type: str, **config: Any) -> dict[str, Any]:
    """The shared EMA cross component, included by path and overridden, as the configs do."""
    return {
        "include": str(COMPONENTS / "strategies" / "ema_cross_spx.yaml"),
        "config": {
            "instrument_id": instrument_id,
            "bar_type": bar_type,
            "fast_ema_period": 5,
            "slow_ema_period": 15,
            **config,
        },
    }
