"""Ingest into a real ParquetDataCatalog: round trip, writer vs Nautilus, all-or-nothing writes."""

import os

import numpy as np
import pandas as pd
import pytest
from catalogs_kit import bars_csv
from catalogs_kit import clean_bars
from catalogs_kit import snapshot
from catalogs_kit import write_text
from nautilus_trader.model.data import BarType
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler

from catalogs.ingest import ingest_files
from catalogs.ingest import ingest_frame
from catalogs.reader import catalog_summary
from catalogs.reader import list_bar_types
from catalogs.reader import read_bars_frame
from catalogs.specs import parse_instrument_spec
from catalogs.transaction import CatalogConflictError
from catalogs.validation import ValidationConfig
from grodt.core.errors import DataValidationError

BAR_TYPE = "TEST.XNAS-1-MINUTE-LAST-EXTERNAL"
CLOSE = ValidationConfig(label="close")


def test_round_trip_equals_the_input(tmp_path, spec_file):
    frame = clean_bars(300)
    path = write_text(tmp_path, "bars.csv", bars_csv(frame))
    result = ingest_files([path], spec_file, tmp_path / "catalog", config=CLOSE)
    assert (result.bar_type, result.rows_in, result.rows_written) == (BAR_TYPE, 300, 300)
    back = read_bars_frame(tmp_path / "catalog", BAR_TYPE)
    expected = frame.rename_axis("ts_event")
    pd.testing.assert_frame_equal(back, expected, check_freq=False)
    bars = ParquetDataCatalog(str(tmp_path / "catalog")).bars([BAR_TYPE])
    assert [b.ts_event for b in bars] == frame.index.asi8.tolist()
    assert [b.ts_init for b in bars] == frame.index.asi8.tolist()
    assert [float(b.close) for b in bars] == frame["close"].tolist()
    assert list_bar_types(tmp_path / "catalog") == [BAR_TYPE]


def test_read_bars_frame_bounds_are_inclusive(tmp_path, equity_spec):
    frame = clean_bars(30)
    ingest_frame(frame, equity_spec, tmp_path)
    start, end = frame.index[5], frame.index[9]
    part = read_bars_frame(tmp_path, BAR_TYPE, start=start, end=end.isoformat())
    assert part.index.tolist() == frame.index[5:10].tolist()
    assert read_bars_frame(tmp_path, BAR_TYPE, start="2030-01-01").empty
    with pytest.raises(FileNotFoundError):
        read_bars_frame(tmp_path, "NOPE.XNAS-1-MINUTE-LAST-EXTERNAL")


def _through_nautilus(frame, spec, directory):
    instrument = spec.to_instrument()
    bar_type = BarType.from_str(spec.bar_type("1-MINUTE"))
    bars = BarDataWrangler(bar_type, instrument).process(
        frame[["open", "high", "low", "close", "volume"]]
    )
    catalog = ParquetDataCatalog(str(directory))
    catalog.write_data([instrument])
    catalog.write_data(bars)
    return catalog.bars([str(bar_type)])


def test_fast_writer_matches_nautilus_wrangler(tmp_path):
    # Negative prices, prices whose raw value needs the int128 high word (> 922.33...), and a
    # volume precision above 0.
    spec = parse_instrument_spec(
        {
            "kind": "crypto_perpetual",
            "id": "XBT-PERP.TEST",
            "base_currency": "BTC",
            "quote_currency": "USD",
            "settlement_currency": "USD",
            "price_precision": 3,
            "size_precision": 4,
            "allow_negative_prices": True,
        }
    )
    rng = np.random.default_rng(11)
    n = 400
    close = np.r_[rng.uniform(-50, 50, n // 2), rng.uniform(900, 5e6, n // 2)]
    open_ = close + rng.normal(0, 1, n)
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + rng.uniform(0, 2, n),
            "low": np.minimum(open_, close) - rng.uniform(0, 2, n),
            "close": close,
            "volume": rng.uniform(0, 1e6, n),
        },
        index=pd.date_range("2024-01-01 00:01", periods=n, freq="1min", tz="UTC"),
    ).round({"open": 3, "high": 3, "low": 3, "close": 3, "volume": 4})
    ingest_frame(frame, spec, tmp_path / "ours", config=ValidationConfig(outlier_k=1e9))
    ours = ParquetDataCatalog(str(tmp_path / "ours")).bars([spec.bar_type("1-MINUTE")])
    theirs = _through_nautilus(frame, spec, tmp_path / "theirs")
    assert len(ours) == len(theirs) == n
    assert ours == theirs
    fields = [
        (b.open.raw, b.high.raw, b.low.raw, b.close.raw, b.volume.raw, b.volume.precision)
        for b in ours
    ]
    assert fields == [
        (b.open.raw, b.high.raw, b.low.raw, b.close.raw, b.volume.raw, b.volume.precision)
        for b in theirs
    ]
    assert min(b.low.raw for b in ours) < 0
    assert max(b.high.raw for b in ours) > 2**63


def test_audit_files_live_beside_the_data_and_nautilus_ignores_them(tmp_path, equity_spec):
    frame = clean_bars(20)
    frame.iloc[3, frame.columns.get_loc("high")] = frame["low"].iloc[3] - 1  # ohlc -> repaired
    result = ingest_frame(frame, equity_spec, tmp_path)
    assert result.audit_path is not None
    assert result.audit_path.parent == tmp_path / "_audit" / BAR_TYPE
    audit = pd.read_csv(result.audit_path)
    assert audit[["row", "column", "check"]].values.tolist() == [[4, "high", "ohlc"]]
    catalog = ParquetDataCatalog(str(tmp_path))
    assert len(catalog.bars([BAR_TYPE])) == 20
    assert sorted(catalog.list_data_types()) == ["bar", "equity"]
    assert not (tmp_path / "_staging").exists()


def test_failed_validation_leaves_the_catalog_untouched(tmp_path, equity_spec):
    catalog = tmp_path / "catalog"
    ingest_frame(clean_bars(20), equity_spec, catalog)
    before = snapshot(catalog)
    bad = clean_bars(20, start="2024-01-03 14:31")
    bad.iloc[7, bad.columns.get_loc("close")] = np.nan
    with pytest.raises(DataValidationError) as info:
        ingest_frame(bad, equity_spec, catalog)
    assert (info.value.row, info.value.column, info.value.check) == (8, "close", "nan")
    assert snapshot(catalog) == before


def test_overlap_is_refused_before_anything_moves(tmp_path, equity_spec):
    catalog = tmp_path / "catalog"
    ingest_frame(clean_bars(20), equity_spec, catalog)
    before = snapshot(catalog)
    with pytest.raises(CatalogConflictError, match="overlap"):
        ingest_frame(clean_bars(5, start="2024-01-02 14:40"), equity_spec, catalog)
    assert snapshot(catalog) == before
    # Touching intervals overlap too (closed intervals, as Nautilus checks them).
    with pytest.raises(CatalogConflictError):
        ingest_frame(clean_bars(5, start="2024-01-02 14:50"), equity_spec, catalog)
    assert snapshot(catalog) == before
    later = ingest_frame(clean_bars(5, start="2024-01-02 15:31"), equity_spec, catalog)
    assert later.rows_written == 5
    assert len(read_bars_frame(catalog, BAR_TYPE)) == 25


def test_crash_during_commit_rolls_back_byte_for_byte(tmp_path, equity_spec, monkeypatch):
    catalog = tmp_path / "catalog"
    ingest_frame(clean_bars(20), equity_spec, catalog)
    before = snapshot(catalog)
    real_replace = os.replace
    calls = {"n": 0}

    def failing_replace(source, target):
        calls["n"] += 1
        # 1: the journal; 2, 3: the instrument swapped; 4: the bars placed; 5: the audit file
        if calls["n"] == 5:
            raise OSError("disk full")
        return real_replace(source, target)

    monkeypatch.setattr("catalogs.journal.os.replace", failing_replace)
    frame = clean_bars(20, start="2024-01-02 15:31")
    frame.iloc[2, frame.columns.get_loc("high")] = 1.0  # a repair -> an audit file to place too
    with pytest.raises(OSError, match="disk full"):
        ingest_frame(frame, equity_spec, catalog)
    assert calls["n"] > 5  # the rollback moved files back
    assert snapshot(catalog) == before


def test_failed_first_ingest_leaves_no_directory(tmp_path, equity_spec):
    bad = clean_bars(5)
    bad.iloc[1, bad.columns.get_loc("open")] = -1.0
    with pytest.raises(DataValidationError):
        ingest_frame(bad, equity_spec, tmp_path / "new")
    assert not (tmp_path / "new").exists()


def test_replace_swaps_the_bar_type_data(tmp_path, equity_spec):
    ingest_frame(clean_bars(20), equity_spec, tmp_path)
    again = clean_bars(10, seed=5)
    ingest_frame(again, equity_spec, tmp_path, replace=True)
    back = read_bars_frame(tmp_path, BAR_TYPE)
    assert back["close"].tolist() == again["close"].tolist()
    assert len(list((tmp_path / "data" / "bar" / BAR_TYPE).glob("*.parquet"))) == 1


def test_instrument_precision_change_is_refused(tmp_path, equity_spec):
    ingest_frame(clean_bars(5), equity_spec, tmp_path)
    before = snapshot(tmp_path)
    finer = equity_spec.model_copy(update={"price_precision": 3})
    with pytest.raises(CatalogConflictError, match="precision"):
        ingest_frame(clean_bars(5, start="2024-01-03 14:31"), finer, tmp_path)
    assert snapshot(tmp_path) == before


def test_catalog_summary(tmp_path, equity_spec):
    ingest_frame(clean_bars(7), equity_spec, tmp_path)
    summary = catalog_summary(tmp_path)
    assert summary["instruments"] == [{"id": "TEST.XNAS", "class": "equity"}]
    assert summary["bar_types"] == [
        {
            "bar_type": BAR_TYPE,
            "rows": 7,
            "files": 1,
            "start": "2024-01-02T14:31:00Z",
            "end": "2024-01-02T14:37:00Z",
        }
    ]
    assert summary["other_data"] == []
