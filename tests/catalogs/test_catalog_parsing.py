"""CSV/Parquet dialects: delimiters, headers, date/time layouts, epochs, gz, row numbering."""

import gzip

import numpy as np
import pandas as pd
import pytest
from catalogs_kit import bars_csv
from catalogs_kit import clean_bars
from catalogs_kit import write_text

from catalogs.parsing import NAT_NS
from catalogs.parsing import ReadOptions
from catalogs.parsing import read_bars_file
from grodt.core.errors import DataValidationError

FIRST_UTC = pd.Timestamp("2024-01-02 14:31", tz="UTC").value
MINUTE = 60_000_000_000


def _assert_two_minute_bars(raw, first=FIRST_UTC):
    assert raw.ts.tolist() == [first, first + MINUTE]
    assert raw.values["open"].tolist() == [100.0, 100.5]
    assert raw.values["volume"].tolist() == [10.0, 20.0]
    assert raw.rows.tolist() == [1, 2]
    assert raw.problems.empty
    assert not raw.date_only


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_delimiter_is_detected(tmp_path, delimiter):
    text = (
        "Timestamp;Open;High;Low;Close;Volume\n"
        "2024-01-02 14:31:00;100.0;101;99;100.5;10\n"
        "2024-01-02 14:32:00;100.5;101;100;100.7;20\n"
    ).replace(";", delimiter)
    raw = read_bars_file(write_text(tmp_path, "bars.csv", text))
    _assert_two_minute_bars(raw)


def test_column_aliases_and_case(tmp_path):
    text = (
        "TIMESTAMP_UTC,o,HIGH,Low,Adj Close,Close,Vol,OpenInterest\n"
        "2024-01-02T14:31:00,100,101,99,50.25,100.5,10,7\n"
        "2024-01-02T14:32:00,100.5,101,100,50.35,100.7,20,8\n"
    )
    raw = read_bars_file(write_text(tmp_path, "bars.csv", text))
    _assert_two_minute_bars(raw)
    assert raw.values["adj_close"].tolist() == [50.25, 50.35]
    assert raw.values["close"].tolist() == [100.5, 100.7]


def test_separate_date_and_time_columns(tmp_path):
    text = (
        "Date;Time;Open;High;Low;Close;Volume\n"
        "02/01/2024;14:31:00;100;101;99;100.5;10\n"
        "02/01/2024;14:32:00;100.5;101;100;100.7;20\n"
    )
    raw = read_bars_file(
        write_text(tmp_path, "bars.csv", text), ReadOptions(date_format="%d/%m/%Y %H:%M:%S")
    )
    _assert_two_minute_bars(raw)


def test_compact_date_and_time_integers(tmp_path):
    text = "date,time,open,high,low,close,volume\n20240102,1431,100,101,99,100.5,10\n"
    text += "20240102,1432,100.5,101,100,100.7,20\n"
    _assert_two_minute_bars(read_bars_file(write_text(tmp_path, "bars.csv", text)))


def test_header_with_one_column_fewer_than_the_rows(tmp_path):
    # The shape of backtrader's sample: the header names Date only, rows carry date AND time.
    text = (
        "Date,Open,High,Low,Close,Volume,OpenInterest\n"
        "2024-01-02,14:31:00,100,101,99,100.5,10,0\n"
        "2024-01-02,14:32:00,100.5,101,100,100.7,20,0\n"
    )
    _assert_two_minute_bars(read_bars_file(write_text(tmp_path, "bars.txt", text)))


def test_header_and_row_widths_that_do_not_fit_are_an_error(tmp_path):
    text = "timestamp,open,high,low,close,volume\n2024-01-02 14:31:00,1,2,0.5,1.5\n"
    with pytest.raises(DataValidationError, match="header names 6 columns") as info:
        read_bars_file(write_text(tmp_path, "bars.csv", text))
    assert info.value.row == 1


@pytest.mark.parametrize(
    ("scale", "unit"), [(1, "s"), (1_000, "ms"), (1_000_000, "us"), (10**9, "ns")]
)
def test_epoch_unit_follows_from_magnitude(tmp_path, scale, unit):
    seconds = FIRST_UTC // 10**9
    text = "ts,open,high,low,close,volume\n"
    text += (
        f"{seconds * scale},100,101,99,100.5,10\n{(seconds + 60) * scale},100.5,101,100,100.7,20\n"
    )
    raw = read_bars_file(write_text(tmp_path, f"epoch_{unit}.csv", text))
    _assert_two_minute_bars(raw)


def test_headerless_file(tmp_path):
    text = "2024-01-02 14:31:00,100,101,99,100.5,10\n2024-01-02 14:32:00,100.5,101,100,100.7,20\n"
    _assert_two_minute_bars(read_bars_file(write_text(tmp_path, "bars.csv", text)))


def test_gzip_csv(tmp_path):
    text = bars_csv(clean_bars(5))
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    raw = read_bars_file(path)
    assert len(raw) == 5
    assert raw.values["close"].tolist() == clean_bars(5)["close"].tolist()


def test_iso_offsets_are_absolute_and_naive_times_use_the_timezone(tmp_path):
    aware = "timestamp,open,high,low,close,volume\n"
    aware += "2024-01-02T09:31:00-05:00,100,101,99,100.5,10\n"
    aware += "2024-01-02T14:32:00Z,100.5,101,100,100.7,20\n"
    _assert_two_minute_bars(read_bars_file(write_text(tmp_path, "aware.csv", aware)))
    naive = "timestamp,open,high,low,close,volume\n"
    naive += "2024-01-02 09:31:00,100,101,99,100.5,10\n2024-01-02 09:32:00,100.5,101,100,100.7,20\n"
    raw = read_bars_file(write_text(tmp_path, "naive.csv", naive), ReadOptions("America/New_York"))
    _assert_two_minute_bars(raw)


def test_date_only_text_marks_daily_data(tmp_path):
    text = "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1.5,2,1,1.8,20\n"
    raw = read_bars_file(write_text(tmp_path, "daily.csv", text))
    assert raw.date_only
    assert raw.ts.tolist() == [pd.Timestamp("2024-01-02").value, pd.Timestamp("2024-01-03").value]


def test_blank_lines_keep_their_row_numbers(tmp_path):
    text = "timestamp,open,high,low,close,volume\n"
    text += (
        "2024-01-02 14:31:00,100,101,99,100.5,10\n\n2024-01-02 14:33:00,100.5,101,100,100.7,20\n"
    )
    raw = read_bars_file(write_text(tmp_path, "blank.csv", text))
    assert raw.rows.tolist() == [1, 3]


def test_malformed_rows_and_bad_values_are_located(tmp_path):
    text = (
        "timestamp,open,high,low,close,volume\n"
        "2024-01-02 14:31:00,100,101,99,100.5,10\n"
        "2024-01-02 14:32:00,100,101,99\n"
        "2024-01-02 14:33:00,abc,101,99,100.5,10\n"
        "not a time,100,101,99,100.5,10\n"
    )
    raw = read_bars_file(write_text(tmp_path, "bad.csv", text))
    problems = {
        (raw.rows[p], c): d
        for p, c, d in raw.problems[["pos", "column", "detail"]].itertuples(index=False)
    }
    assert problems[(2, None)] == "malformed row: expected 6 fields, got 4"
    assert problems[(3, "open")] == "not a number"
    assert problems[(4, "timestamp")] == "unparseable timestamp"
    assert raw.ts[3] == NAT_NS
    assert np.isnan(raw.values["open"][2])


def test_nonexistent_local_time_is_a_problem(tmp_path):
    # 02:30 on 2024-03-10 does not exist in New York (clocks jump from 02:00 to 03:00).
    text = "timestamp,open,high,low,close,volume\n"
    text += "2024-03-10 01:59:00,1,1,1,1,1\n2024-03-10 02:30:00,1,1,1,1,1\n"
    raw = read_bars_file(write_text(tmp_path, "dst.csv", text), ReadOptions("America/New_York"))
    assert raw.problems["detail"].tolist() == [
        "nonexistent local time in America/New_York (DST change)"
    ]
    assert raw.rows[raw.problems["pos"].iloc[0]] == 2


def test_parquet_with_datetime_index(tmp_path):
    frame = clean_bars(4)
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)
    raw = read_bars_file(path)
    assert raw.ts.tolist() == frame.index.asi8.tolist()
    assert raw.values["high"].tolist() == frame["high"].tolist()


def test_missing_columns_are_named(tmp_path):
    with pytest.raises(DataValidationError, match="no timestamp column"):
        read_bars_file(write_text(tmp_path, "a.csv", "foo,open,high,low,close\nx,1,2,0,1\n"))
    text = "timestamp,open,high,close\n2024-01-02 14:31:00,1,2,1\n"
    with pytest.raises(DataValidationError, match="no low column"):
        read_bars_file(write_text(tmp_path, "b.csv", text))
    text = "timestamp,open,high,low,close\n2024-01-02 14:31:00,1,2,0.5,1\n"
    with pytest.raises(DataValidationError, match="no volume column"):
        read_bars_file(write_text(tmp_path, "c.csv", text))
    raw = read_bars_file(write_text(tmp_path, "c.csv", text), ReadOptions(default_volume=0))
    assert raw.values["volume"].tolist() == [0.0]
