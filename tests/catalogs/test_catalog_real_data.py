"""Optional: the real files in ../shared/data (GRODT_REAL_DATA) through validate and ingest."""

import os
from pathlib import Path

import pytest

from catalogs.ingest import ingest_files
from catalogs.ingest import validate_files
from catalogs.parsing import ReadOptions
from catalogs.reader import read_bars_frame
from catalogs.specs import SPECS_DIR
from catalogs.validation import ValidationConfig

pytestmark = pytest.mark.real_data

_ROOT = os.environ.get("GRODT_REAL_DATA")
DATA = Path(_ROOT) if _ROOT else None


def _file(name: str) -> Path:
    if DATA is None:
        pytest.skip("GRODT_REAL_DATA is not set (e.g. GRODT_REAL_DATA=../shared/data)")
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"{path} is missing")
    return path


def test_btc_perp_interpolated_rows_fail_precision_then_repair(tmp_path):
    path = _file("btc-perp-20211231-20220201_1m.csv")
    spec = SPECS_DIR / "btcusdt_perp_binance.yaml"
    checked = validate_files([path], spec, config=ValidationConfig(label="close"))
    rejected = checked.rejected
    # Rows 243-249 (and 17523-17529) are linear fills with prices off the 0.1 tick.
    assert set(rejected["check"]) == {"precision"}
    assert rejected["row"].min() == 243
    config = ValidationConfig(label="close", policies={"precision": "repair"})
    result = ingest_files([path], spec, tmp_path, config=config)
    assert result.rows_written == 45_031
    assert len(read_bars_frame(tmp_path, result.bar_type)) == 45_031


def test_6e_future_gz_with_session_and_weekend_gaps(tmp_path):
    path = _file("6EH4.XCME_1min_bars_20240101_20240131.csv.gz")
    result = ingest_files(
        [path], SPECS_DIR / "6eh4_xcme.yaml", tmp_path, config=ValidationConfig(label="close")
    )
    assert result.rows_written == 29_996
    kinds = result.findings.loc[result.findings["check"] == "gap", "value"].value_counts()
    assert kinds["weekend"] == 4
    assert kinds["session"] >= 15  # CME's daily 16:00-17:00 Chicago halt


def test_2006_index_future_seven_header_eight_fields(tmp_path):
    path = _file("2006-01-02-volume-min-001.txt")
    result = ingest_files(
        [path],
        SPECS_DIR / "fesx_2006_sample.yaml",
        tmp_path,
        options=ReadOptions(timezone="Europe/Berlin"),
        config=ValidationConfig(label="close"),
    )
    assert result.rows_written == 30_889
    bars = read_bars_frame(tmp_path, result.bar_type)
    assert bars.index[0].isoformat() == "2006-01-02T08:01:00+00:00"  # 09:01 Berlin
    assert bars["open"].iloc[0] == 3602.0
