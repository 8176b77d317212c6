"""Hostile or broken input files at the CLI: an error naming the file (exit 2), never a
traceback, and the catalog untouched."""

import gzip
import os

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from catalogs_kit import bars_csv
from catalogs_kit import clean_bars
from catalogs_kit import snapshot
from click.testing import CliRunner

from catalogs.bar_table import build_bar_table
from grodt.cli import main


def _good_text() -> str:
    return bars_csv(clean_bars(30))


def _parquet_renamed_csv(path):
    clean_bars(30).to_parquet(path)


def _nautilus_bar_file_renamed_csv(path):
    # A catalog bar file: int128 fixed-point prices in fixed_size_binary[16] columns.
    frame = clean_bars(5)
    values = {name: frame[name].to_numpy() for name in frame.columns}
    table = build_bar_table("TEST.XNAS-1-MINUTE-LAST-EXTERNAL", frame.index.asi8, values, 2, 0)
    pq.write_table(table, path)


def _truncated_gzip(path):
    data = gzip.compress(_good_text().encode())
    path.write_bytes(data[: len(data) // 2])


def _corrupt_gzip(path):
    path.write_bytes(b"\x1f\x8b" + bytes(range(256)) * 4)


def _corrupt_parquet(path):
    path.write_bytes(b"PAR1" + os.urandom(2000))


def _binary_junk(path):
    path.write_bytes(bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)))


def _zip_archive(path):
    path.write_bytes(b"PK\x03\x04" + b"x" * 500)


def _huge_line(path):
    path.write_text(_good_text() + "2024-01-02 15:10:00," + "x" * 200_000 + ",1,1,1,1\n")


def _huge_first_line(path):
    path.write_text("timestamp,open,high,low,close,volume\n" + "1" * 100_000 + "\n")


def _unclosed_quote(path):
    lines = _good_text().splitlines()
    lines[1] = '"' + lines[1]
    path.write_text("\n".join(lines) + "\n")


def _empty(path):
    path.write_bytes(b"")


def _header_only(path):
    path.write_text("timestamp,open,high,low,close,volume\n")


def _empty_parquet(path):
    clean_bars(30).iloc[:0].to_parquet(path)


HOSTILE = {
    "parquet_renamed_csv": None,  # read as Parquet: fine
    "nautilus_bar_file.csv": "holds fixed_size_binary[16], not numbers or text (a Nautilus",
    "truncated.csv.gz": "truncated gzip file",
    "corrupt.csv.gz": "corrupt gzip file",
    "corrupt.parquet": "not a readable Parquet file",
    "junk.bin": "not a CSV or Parquet file: binary data",
    "archive.csv": "not a CSV or Parquet file: a ZIP archive",
    "huge_line.csv": "row 31: cannot split the row into fields",
    "huge_first_line.csv": "a line is far too long",
    "unclosed_quote.csv": "unclosed quote",
    "empty.csv": "the file is empty",
    "header_only.csv": "the file has a header but no data rows",
    "empty.parquet": "the Parquet file has no rows",
}
WRITERS = {
    "parquet_renamed_csv": _parquet_renamed_csv,
    "nautilus_bar_file.csv": _nautilus_bar_file_renamed_csv,
    "truncated.csv.gz": _truncated_gzip,
    "corrupt.csv.gz": _corrupt_gzip,
    "corrupt.parquet": _corrupt_parquet,
    "junk.bin": _binary_junk,
    "archive.csv": _zip_archive,
    "huge_line.csv": _huge_line,
    "huge_first_line.csv": _huge_first_line,
    "unclosed_quote.csv": _unclosed_quote,
    "empty.csv": _empty,
    "header_only.csv": _header_only,
    "empty.parquet": _empty_parquet,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_file_is_an_error_naming_it_and_the_catalog_stays(tmp_path, spec_file, name):
    path = tmp_path / name
    WRITERS[name](path)
    catalog = tmp_path / "catalog"
    args = ["--instrument-spec", str(spec_file), "--label", "close"]
    before = snapshot(catalog)
    for command in (["validate"], ["ingest", "--catalog", str(catalog)]):
        result = CliRunner().invoke(main, ["catalog", *command, str(path), *args])
        if HOSTILE[name] is None:
            assert result.exit_code == 0, result.output
            continue
        assert result.exit_code == 2, (command, result.output, result.exception)
        assert "Traceback" not in result.output
        assert f"error: {path}" in result.stderr
        assert HOSTILE[name] in result.stderr
        assert snapshot(catalog) == before


def test_a_utf16_file_with_its_bom_reads_like_utf8(tmp_path):
    text = _good_text()
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(text)
    utf16 = tmp_path / "utf16.csv"
    utf16.write_bytes(text.encode("utf-16"))
    results = [
        CliRunner().invoke(main, ["catalog", "validate", str(p), "--label", "close", "--json"])
        for p in (utf8, utf16)
    ]
    assert [r.exit_code for r in results] == [0, 0]
    assert results[0].stdout == results[1].stdout


def test_a_gzipped_parquet_file_is_read(tmp_path):
    frame = clean_bars(30)
    plain = tmp_path / "bars.parquet"
    frame.to_parquet(plain)
    packed = tmp_path / "bars.parquet.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    result = CliRunner().invoke(main, ["catalog", "validate", str(packed), "--label", "close"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("30 rows, interval 1-MINUTE, 30 would be written")


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--date-format", "%Q"], "date_format '%Q'"),
        (["--default-volume", "nan"], "default_volume must be a finite number"),
        (["--delimiter", "ab"], "delimiter must be one character"),
    ],
)
def test_bad_read_options_are_errors_naming_the_option(tmp_path, option, message):
    path = tmp_path / "bars.csv"
    path.write_text(_good_text())
    result = CliRunner().invoke(main, ["catalog", "validate", str(path), *option])
    assert result.exit_code == 2
    assert message in result.stderr


def test_rows_missing_dates_are_findings_not_a_crash(tmp_path):
    frame = clean_bars(30)
    text = bars_csv(frame).replace(pd.Timestamp(frame.index[4]).strftime("%Y-%m-%d %H:%M:%S"), "")
    path = tmp_path / "bars.csv"
    path.write_text(text)
    result = CliRunner().invoke(main, ["catalog", "validate", str(path), "--json"])
    assert result.exit_code == 1
    assert '"row": 5' in result.stdout
