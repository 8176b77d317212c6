"""Reports streamed to CSV in chunks (grodt.nodes.backtest_reports.write_report) give the text of
``pd.DataFrame(data=rows).to_csv`` of all the rows at once, whatever the chunk size: the column
dtypes are those pandas infers for the whole column, not for one chunk."""

import pickle
from pathlib import Path

import pandas as pd
import pytest

from grodt.nodes.backtest_reports import write_report


def _rows() -> list[dict]:
    """Rows whose columns change dtype between chunks: an int column a later row lacks (float
    with NaN), a bool column with one None (object), mixed str/None, lists, a key that appears
    only late (its column is placed where it first appears)."""
    rows = []
    for i in range(23):
        row = {"id": f"O-{i % 7:02d}-{i:03d}", "ts": 1_700_000_000_000_000_000 + i, "qty": i}
        row["flag"] = None if i == 17 else bool(i % 2)
        row["tag"] = None if i % 5 else f"t{i}"
        row["links"] = [f"L{i}"] if i % 3 == 0 else None
        if i == 20:
            del row["qty"]
        if i >= 12:
            row["price"] = 100.0 + i / 8
        rows.append(row)
    return rows


def _spill(path: Path, rows: list[dict], batch: int) -> None:
    with open(path, "wb") as spill:
        for start in range(0, len(rows), batch):
            pickle.dump(rows[start : start + batch], spill)


@pytest.mark.parametrize("chunk_rows", [1, 4, 100])
def test_chunks_write_the_text_of_the_whole_frame(tmp_path: Path, chunk_rows: int) -> None:
    rows = _rows()

    def finish(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.set_index("id").sort_index()

    expected = tmp_path / "expected.csv"
    whole = sorted(rows, key=lambda row: row["id"])  # stable, as the writer sorts
    finish(pd.DataFrame(data=whole)).to_csv(expected)
    spill = tmp_path / "rows.pickle"
    _spill(spill, rows[:20], batch=3)
    kept: list[pd.DataFrame] = []
    written = tmp_path / "written.csv"
    count = write_report(
        written,
        spill,
        rows[20:],
        finish=finish,
        sort_by="id",
        keep=kept.append,
        chunk_rows=chunk_rows,
    )
    assert count == len(rows)
    assert written.read_text() == expected.read_text()
    pd.testing.assert_frame_equal(pd.concat(kept), finish(pd.DataFrame(data=whole)))


def test_unsorted_key_is_written_in_one_chunk(tmp_path: Path) -> None:
    """A report ``finish`` sorts without a stable sort (the account report's ``sort_index``)
    must not be cut into chunks when its rows do not come in order."""
    rows = [{"ts": ts, "balance": str(i)} for i, ts in enumerate([3, 1, 2, 2, 5, 4, 4])]

    def finish(frame: pd.DataFrame) -> pd.DataFrame:
        return frame.set_index("ts").sort_index()

    expected = tmp_path / "expected.csv"
    finish(pd.DataFrame(data=rows)).to_csv(expected)
    written = tmp_path / "written.csv"
    write_report(
        written, tmp_path / "none.pickle", rows, finish=finish, keep_sorted="ts", chunk_rows=2
    )
    assert written.read_text() == expected.read_text()


def test_no_rows_writes_the_empty_frame(tmp_path: Path) -> None:
    expected = tmp_path / "expected.csv"
    pd.DataFrame().to_csv(expected)
    written = tmp_path / "written.csv"
    assert write_report(written, tmp_path / "none.pickle", [], finish=lambda f: f) == 0
    assert written.read_text() == expected.read_text()
