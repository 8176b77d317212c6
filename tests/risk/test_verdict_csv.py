"""risk_verdicts.csv across a restart: rows are appended, never overwritten."""

import csv

from risk_engine.extension import VerdictCsv


def _rows(path):
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def test_a_restarted_writer_appends_to_its_predecessors_file(tmp_path):
    path = tmp_path / "risk_verdicts.csv"
    first = VerdictCsv(path, ("ts", "verdict"))
    first.write([(1, "approved"), (2, "denied")])
    restarted = VerdictCsv(path, ("ts", "verdict"))  # a new process, same run directory
    restarted.write([(3, "approved")])
    restarted.write([(4, "approved")])
    assert _rows(path) == [
        ["ts", "verdict"],
        ["1", "approved"],
        ["2", "denied"],
        ["3", "approved"],
        ["4", "approved"],
    ]
    assert restarted.rows == 2


def test_a_file_with_other_columns_is_moved_aside_not_overwritten(tmp_path):
    path = tmp_path / "risk_verdicts.csv"
    path.write_text("old_column\nkept\n", encoding="utf-8")
    writer = VerdictCsv(path, ("ts", "verdict"))
    writer.write([(1, "approved")])
    assert _rows(tmp_path / "risk_verdicts.1.csv") == [["old_column"], ["kept"]]
    assert _rows(path) == [["ts", "verdict"], ["1", "approved"]]
