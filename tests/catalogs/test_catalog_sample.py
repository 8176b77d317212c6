"""The sample catalog: datasets, ids and bar types, bar forming, idempotence, zero-volume fills."""

import numpy as np
import pandas as pd
import pytest
from catalogs_kit import snapshot
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.trading.strategy import Strategy

from catalogs.reader import list_bar_types
from catalogs.reader import read_bars_frame
from catalogs.sample import STOCK_TICKERS
from catalogs.sample import build_sample_catalog
from catalogs.sample import close_only_bars
from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import load_regime_truth
from grodt.core.errors import ConfigError


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    path = tmp_path_factory.mktemp("sample")
    report = build_sample_catalog(path, seed=3, synthetic=SyntheticParams(days=3))
    return path, report


def test_datasets_instruments_and_bar_types(sample):
    path, report = sample
    assert {name: entry["status"] for name, entry in report["datasets"].items()} == {
        "sp500": "built",
        "stocks": "built",
        "synthetic": "built",
    }
    expected = {
        "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
        "IXIC.SAMPLE-1-DAY-LAST-EXTERNAL",
        *(f"{t}.SAMPLE-1-DAY-LAST-EXTERNAL" for t in STOCK_TICKERS),
        *(f"SYN{c}.XSYN-1-MINUTE-LAST-EXTERNAL" for c in "ABCD"),
    }
    assert set(list_bar_types(path)) == expected
    instruments = ParquetDataCatalog(str(path)).instruments()
    by_id = {str(i.id): i for i in instruments}
    assert len(by_id) == 26
    spx = by_id["SPX.SAMPLE"]
    assert (type(spx).__name__, spx.price_precision, spx.lot_size, str(spx.taker_fee)) == (
        "Equity",
        2,
        1,
        "0.0001",
    )
    assert by_id["AAPL.SAMPLE"].price_precision == 3
    assert by_id["SYNA.XSYN"].price_precision == 2


def test_index_bars_are_raw_ohlc_stamped_at_the_new_york_close(sample):
    import arch.data.sp500

    path, _ = sample
    bars = read_bars_frame(path, "SPX.SAMPLE-1-DAY-LAST-EXTERNAL")
    source = arch.data.sp500.load()
    assert len(bars) == len(source)
    local = bars.index.tz_convert("America/New_York")
    assert set(zip(local.hour, local.minute, strict=True)) == {(16, 0)}
    assert local.date.tolist() == source.index.date.tolist()
    np.testing.assert_allclose(bars["close"], source["Close"].round(2), atol=1e-9)
    np.testing.assert_allclose(bars["volume"], source["Volume"])


def test_stock_bars_are_formed_from_closes(sample):
    from skfolio.datasets import load_sp500_dataset

    path, _ = sample
    bars = read_bars_frame(path, "AAPL.SAMPLE-1-DAY-LAST-EXTERNAL")
    closes = load_sp500_dataset()["AAPL"]
    assert len(bars) == len(closes)
    np.testing.assert_allclose(bars["close"], closes)
    np.testing.assert_allclose(bars["open"].iloc[1:], closes.iloc[:-1])
    assert bars["open"].iloc[0] == bars["close"].iloc[0]
    assert (bars["high"] == bars[["open", "close"]].max(axis=1)).all()
    assert (bars["low"] == bars[["open", "close"]].min(axis=1)).all()
    assert (bars["volume"] == 0).all()


def test_close_only_bars():
    bars = close_only_bars(pd.Series([10.0, 11.0, np.nan, 9.5]))
    assert bars.values.tolist() == [
        [10.0, 10.0, 10.0, 10.0, 0.0],
        [10.0, 11.0, 10.0, 11.0, 0.0],
        [11.0, 11.0, 9.5, 9.5, 0.0],
    ]


def test_synthetic_truth_is_stored_beside_the_catalog(sample):
    path, report = sample
    truth = load_regime_truth(path)
    bars = read_bars_frame(path, "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL")
    assert truth["ts_event"].tolist() == bars.index.asi8.tolist()
    assert truth.dtypes["ts_event"] == np.int64
    assert set(truth["label"]) <= {"bull", "bear", "sideways"}
    assert report["datasets"]["synthetic"]["rows"]["SYNA.XSYN-1-MINUTE-LAST-EXTERNAL"] == 3 * 390


def test_if_missing_skips_and_rebuild_is_idempotent(sample, tmp_path):
    path, _ = sample
    skipped = build_sample_catalog(path, if_missing=True, synthetic=SyntheticParams(days=3))
    assert {e["status"] for e in skipped["datasets"].values()} == {"skipped"}
    fresh = tmp_path / "again"
    build_sample_catalog(fresh, datasets=["synthetic"], seed=3, synthetic=SyntheticParams(days=3))
    first = {k: v for k, v in snapshot(fresh).items() if not k.startswith("_audit")}
    build_sample_catalog(fresh, datasets=["synthetic"], seed=3, synthetic=SyntheticParams(days=3))
    assert {k: v for k, v in snapshot(fresh).items() if not k.startswith("_audit")} == first


def test_unknown_dataset_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="unknown sample dataset"):
        build_sample_catalog(tmp_path, datasets=["crypto"])


class _BuySellConfig(StrategyConfig, frozen=True):
    bar_type: str
    quantity: int = 100


class _BuySell(Strategy):
    """Buys on the 2nd bar and sells on the 4th with market orders."""

    def __init__(self, config: _BuySellConfig) -> None:
        super().__init__(config)
        self.seen = 0

    def on_start(self) -> None:
        self.bar_type = BarType.from_str(self.config.bar_type)
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar) -> None:
        self.seen += 1
        if self.seen in (2, 4):
            side = OrderSide.BUY if self.seen == 2 else OrderSide.SELL
            quantity = Quantity.from_int(self.config.quantity)
            self.submit_order(
                self.order_factory.market(self.bar_type.instrument_id, side, quantity)
            )


def test_market_orders_fill_on_zero_volume_bars(sample):
    path, _ = sample
    bar_type = "AAPL.SAMPLE-1-DAY-LAST-EXTERNAL"
    catalog = ParquetDataCatalog(str(path))
    bars = catalog.bars([bar_type], start="2020-01-02", end="2020-01-10")
    assert bars and all(b.volume == 0 for b in bars)
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="OFF")))
    engine.add_venue(
        Venue("SAMPLE"), OmsType.NETTING, AccountType.CASH, [Money(1_000_000, USD)], USD
    )
    engine.add_instrument(catalog.instruments(instrument_ids=["AAPL.SAMPLE"])[0])
    engine.add_data(bars)
    engine.add_strategy(_BuySell(_BuySellConfig(bar_type=bar_type)))
    engine.run()
    orders = engine.trader.generate_order_fills_report()
    assert orders["status"].tolist() == ["FILLED", "FILLED"]
    assert orders["filled_qty"].astype(int).tolist() == [100, 100]
    fills = engine.trader.generate_fills_report()
    # The simulated book holds max(volume / 4, 1 share): one share at the close, the rest a tick
    # (0.001) worse.
    buy = fills[fills["order_side"] == "BUY"]
    prices = sorted(buy["last_px"].astype(float))
    assert buy["last_qty"].astype(int).tolist() == [1, 99]
    assert prices[1] - prices[0] == pytest.approx(0.001)
    assert prices[0] == pytest.approx(float(bars[1].close))
    engine.dispose()
