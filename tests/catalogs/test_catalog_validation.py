"""Each check fires on a crafted file with the right row, column and action per policy; repairs
write exactly the expected audit rows; rejects name file, row and column."""

import pandas as pd
import pytest
from catalogs_kit import write_text

from catalogs.ingest import ingest_files
from catalogs.ingest import validate_files
from catalogs.validation import ValidationConfig
from catalogs.validation import parse_policies
from grodt.core.errors import ConfigError
from grodt.core.errors import DataValidationError

HEADER = "timestamp,open,high,low,close,volume"


def _rows(n=12):
    """Clean 1-minute bars, close-labelled, as lists of strings (row i+1 = rows[i])."""
    rows = []
    price = 100.0
    for i in range(n):
        ts = pd.Timestamp("2024-01-02 14:31") + pd.Timedelta(minutes=i)
        close = round(price + (0.05 if i % 2 else -0.04), 2)
        rows.append(
            [
                ts.strftime("%Y-%m-%d %H:%M:%S"),
                f"{price:.2f}",
                f"{max(price, close) + 0.03:.2f}",
                f"{min(price, close) - 0.02:.2f}",
                f"{close:.2f}",
                str(100 + i),
            ]
        )
        price = close
    return rows


def _file(tmp_path, rows, name="bars.csv"):
    return write_text(tmp_path, name, HEADER + "\n" + "\n".join(",".join(r) for r in rows) + "\n")


def _validate(path, spec, **config):
    config.setdefault("label", "close")
    return validate_files([path], spec, config=ValidationConfig(**config))


def _found(result, check):
    frame = result.findings[result.findings["check"] == check]
    return [(int(r.row), r.column, r.action) for r in frame.itertuples()]


def test_clean_file_has_no_findings(tmp_path, equity_spec):
    result = _validate(_file(tmp_path, _rows()), equity_spec)
    assert result.findings.empty
    assert result.audit.empty
    assert result.rows_out == 12
    assert result.bar_spec == "1-MINUTE"


def _mutate(check):
    rows = _rows()
    if check == "parse":
        rows[1][1] = "abc"
        return rows, (2, "open")
    if check == "nan":
        rows[2][4] = ""
        return rows, (3, "close")
    if check == "range":
        rows[7][2] = "1e14"
        return rows, (8, "high")
    if check == "positive":
        rows[3][3] = "-1.00"
        return rows, (4, "low")
    if check == "volume":
        rows[4][5] = "-5"
        return rows, (5, "volume")
    if check == "precision":
        rows[5][1] = rows[5][1] + "3"  # 100.00 -> 100.003
        return rows, (6, "open")
    if check == "ohlc":
        rows[6][2] = f"{float(rows[6][3]) - 0.5:.2f}"  # high below everything
        return rows, (7, "high")
    if check == "unsorted":
        rows[3][0], rows[4][0] = rows[4][0], rows[3][0]
        return rows, (5, "timestamp")
    if check == "duplicate":
        rows.insert(5, list(rows[4]))
        return rows, (6, "timestamp")
    if check == "conflict":
        rows.insert(5, [*rows[4][:4], f"{float(rows[4][4]) + 0.01:.2f}", rows[4][5]])
        rows[5][2] = f"{float(rows[5][4]) + 0.05:.2f}"
        return rows, (6, "timestamp")
    if check == "outlier":
        rows[9][4] = "150.00"
        rows[9][2] = "150.00"
        return rows, (10, "close")
    raise AssertionError(check)


REPAIR_ACTION = {"precision": "repair", "ohlc": "repair", "unsorted": "repair"}


@pytest.mark.parametrize(
    "check",
    [
        "parse",
        "nan",
        "range",
        "positive",
        "volume",
        "precision",
        "ohlc",
        "unsorted",
        "duplicate",
        "conflict",
        "outlier",
    ],
)
@pytest.mark.parametrize("policy", ["reject", "repair", "flag"])
def test_check_fires_with_row_column_and_policy_action(tmp_path, equity_spec, check, policy):
    rows, (row, column) = _mutate(check)
    result = _validate(
        _file(tmp_path, rows), equity_spec, policies={check: policy}, outlier_window=5
    )
    action = {"reject": "reject", "flag": "flag"}.get(policy) or REPAIR_ACTION.get(check, "drop")
    assert _found(result, check) == [(row, column, action)]
    assert len(result.rejected) == (1 if policy == "reject" else 0)
    if action in ("repair", "drop"):
        assert [(int(r.row), r.column, r.check) for r in result.audit.itertuples()] == [
            (row, column, check)
        ]
    else:
        assert result.audit.empty
    assert result.rows_out == len(rows) - (1 if action in ("reject", "drop") else 0)


def test_repairs_write_exactly_the_expected_audit_rows(tmp_path, equity_spec):
    rows = _rows()
    rows[1][2] = "99.00"  # row 2: high below open/close -> widened
    rows[3][4] = "100.004"  # row 4: close with 3 decimals -> rounded
    rows.insert(6, list(rows[5]))  # row 7 repeats row 6 exactly -> dropped
    rows[8][5] = "-3"  # row 9: negative volume -> dropped
    path = _file(tmp_path, rows)
    config = {"policies": {"precision": "repair", "volume": "repair"}}
    result = _validate(path, equity_spec, **config)
    audit = result.audit.drop(columns="reason")
    expected_high = rows[1][1] if float(rows[1][1]) > float(rows[1][4]) else rows[1][4]
    assert audit.to_dict("records") == [
        {
            "file": str(path),
            "row": 2,
            "column": "high",
            "old": "99.0",
            "new": repr(float(expected_high)),
            "check": "ohlc",
        },
        {
            "file": str(path),
            "row": 4,
            "column": "close",
            "old": "100.004",
            "new": "100.0",
            "check": "precision",
        },
        {
            "file": str(path),
            "row": 7,
            "column": "timestamp",
            "old": rows[6][0].replace(" ", "T") + "Z",
            "new": "",
            "check": "duplicate",
        },
        {
            "file": str(path),
            "row": 9,
            "column": "volume",
            "old": "-3.0",
            "new": "",
            "check": "volume",
        },
    ]
    assert result.rows_out == len(rows) - 2
    assert result.audit["reason"].str.startswith("row dropped").tolist() == [
        False,
        False,
        True,
        True,
    ]


def test_reject_raises_naming_file_row_and_column(tmp_path, equity_spec):
    rows = _rows()
    rows[4][3] = "0"
    path = _file(tmp_path, rows)
    with pytest.raises(DataValidationError) as info:
        ingest_files(
            [path], equity_spec, tmp_path / "catalog", config=ValidationConfig(label="close")
        )
    error = info.value
    assert (error.path, error.row, error.column, error.check) == (str(path), 5, "low", "positive")
    assert f"{path}, row 5, column 'low'" in str(error)
    assert not (tmp_path / "catalog").exists()


def test_flagged_row_nautilus_cannot_store_fails_the_ingest(tmp_path, equity_spec):
    rows = _rows()
    rows[2][4] = "nan"
    path = _file(tmp_path, rows)
    config = ValidationConfig(label="close", policies={"nan": "flag"})
    assert _found(validate_files([path], equity_spec, config=config), "nan") == [
        (3, "close", "flag")
    ]
    with pytest.raises(DataValidationError, match="cannot store") as info:
        ingest_files([path], equity_spec, tmp_path / "catalog", config=config)
    assert (info.value.row, info.value.column) == (3, "close")


def test_policy_parsing_and_gap_repair_is_a_config_error():
    assert parse_policies(["ohlc=flag", "outlier = repair"]) == {
        "ohlc": "flag",
        "outlier": "repair",
    }
    with pytest.raises(ConfigError, match="gap=repair"):
        parse_policies(["gap=repair"])
    with pytest.raises(ConfigError, match="unknown check"):
        parse_policies(["spikes=flag"])
    with pytest.raises(ConfigError, match="CHECK=POLICY"):
        parse_policies(["ohlc"])


def test_label_open_shifts_bars_to_their_close(tmp_path, equity_spec):
    path = _file(tmp_path, _rows(3))
    opened = validate_files([path], equity_spec, config=ValidationConfig(label="open"))
    closed = validate_files([path], equity_spec, config=ValidationConfig(label="close"))
    assert (opened.ts - closed.ts).tolist() == [60_000_000_000] * 3


def test_explicit_interval_overrides_inference(tmp_path, equity_spec):
    path = _file(tmp_path, _rows(6))
    result = validate_files(
        [path], equity_spec, config=ValidationConfig(interval="5min", label="close")
    )
    assert result.bar_spec == "5-MINUTE"
    assert _found(result, "gap") == [(r, "timestamp", "flag") for r in range(2, 7)]
    irregular = result.findings["detail"].str.startswith("irregular").all()
    assert irregular


def _intraday_file(tmp_path, stamps):
    rows = [[s, "10.00", "10.00", "10.00", "10.00", "1"] for s in stamps]
    return _file(tmp_path, rows, "gaps.csv")


def test_gap_kinds(tmp_path, equity_spec):
    # New York session bars, close-labelled, given in local time.
    stamps = [
        "2024-01-05 15:58:00",
        "2024-01-05 15:59:00",
        "2024-01-05 16:00:00",  # Friday close
        "2024-01-08 09:31:00",
        "2024-01-08 09:32:00",  # Monday: weekend gap
        "2024-01-08 09:35:00",  # two minutes missing: intraday
        "2024-01-08 16:00:00",  # a long same-day hole: intraday too
        "2024-01-09 09:31:00",  # overnight: session
        "2024-01-09 16:00:00",
        "2024-01-11 09:31:00",  # Wednesday missing: holiday (>= 24 h, no weekend day)
    ]
    from catalogs.parsing import ReadOptions

    result = validate_files(
        [_intraday_file(tmp_path, stamps)],
        equity_spec,
        options=ReadOptions(timezone="America/New_York"),
        config=ValidationConfig(label="close"),
    )
    gaps = result.findings[result.findings["check"] == "gap"]
    assert list(zip(gaps["row"], gaps["value"], strict=True)) == [
        (4, "weekend"),
        (6, "intraday"),
        (7, "intraday"),
        (8, "session"),
        (9, "intraday"),
        (10, "holiday"),
    ]
    assert gaps["detail"].iloc[1].startswith("intraday gap: 2 missing bars between")


def test_recurring_same_day_break_is_a_session_gap(tmp_path, equity_spec):
    stamps = []
    for day in ("2024-01-02", "2024-01-03", "2024-01-04", "2024-01-05"):
        for minute in ("10:00", "10:01", "10:02", "11:03", "11:04"):
            stamps.append(f"{day} {minute}:00")
    result = _validate(_intraday_file(tmp_path, stamps), equity_spec)
    kinds = result.findings.loc[result.findings["check"] == "gap", "value"]
    # a daily 10:02 -> 11:03 break on every date; overnight gaps cross dates
    assert kinds.value_counts().to_dict() == {"session": 7}


def test_gap_reject_fails_only_on_unexpected_gaps(tmp_path, equity_spec):
    stamps = [
        "2024-01-05 20:59:00",
        "2024-01-05 21:00:00",
        "2024-01-08 14:31:00",
        "2024-01-08 14:35:00",
    ]
    result = _validate(_intraday_file(tmp_path, stamps), equity_spec, policies={"gap": "reject"})
    assert _found(result, "gap") == [(3, "timestamp", "flag"), (4, "timestamp", "reject")]


def test_daily_dates_are_stamped_at_the_session_close(tmp_path, equity_spec):
    text = "Date,Open,High,Low,Close,Volume\n"
    text += "2024-01-02,1,2,0.5,1.5,10\n2024-07-01,1.5,2,1,1.8,20\n2024-07-03,1.8,2,1,1.9,20\n"
    path = write_text(tmp_path, "daily.csv", text)
    result = validate_files([path], equity_spec)
    assert result.bar_spec == "1-DAY"
    assert [pd.Timestamp(t, tz="UTC").isoformat() for t in result.ts] == [
        "2024-01-02T21:00:00+00:00",  # 16:00 EST
        "2024-07-01T20:00:00+00:00",  # 16:00 EDT
        "2024-07-03T20:00:00+00:00",
    ]
    gaps = result.findings[result.findings["check"] == "gap"]
    assert gaps[["row", "value"]].values.tolist() == [[2, "holiday"], [3, "holiday"]]
    assert gaps["detail"].iloc[1].startswith("holiday gap: 1 missing bar ")  # Tuesday 2 July
    spec = equity_spec.model_copy(update={"session_close": None})
    with pytest.raises(ConfigError, match="session_close"):
        validate_files([path], spec)


def test_adjust_scales_by_adj_close(tmp_path, equity_spec):
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,12,8,10,5,100\n"
    text += "2024-01-03,10,11,9,10,5,100\n"
    result = validate_files(
        [write_text(tmp_path, "yahoo.csv", text)], equity_spec, config=ValidationConfig(adjust=True)
    )
    assert result.values["open"].tolist() == [5.0, 5.0]
    assert result.values["high"].tolist() == [6.0, 5.5]
    assert result.values["close"].tolist() == [5.0, 5.0]
    assert result.values["volume"].tolist() == [200.0, 200.0]


def test_several_files_are_one_stream(tmp_path, equity_spec):
    rows = _rows(8)
    first = _file(tmp_path, rows[:5], "a.csv")
    second = _file(tmp_path, rows[4:], "b.csv")  # row 1 of b.csv repeats row 5 of a.csv
    result = validate_files([first, second], equity_spec, config=ValidationConfig(label="close"))
    dup = result.findings[result.findings["check"] == "duplicate"]
    assert dup[["file", "row"]].values.tolist() == [[str(second), 1]]
    assert f"row 5 of {first}" in dup["detail"].iloc[0]
    assert result.rows_out == 8


def test_unsorted_rows_kept_by_flag_cannot_be_ingested(tmp_path, equity_spec):
    rows = _rows()
    rows[3][0], rows[4][0] = rows[4][0], rows[3][0]
    config = ValidationConfig(label="close", policies={"unsorted": "flag"})
    with pytest.raises(DataValidationError, match="not in timestamp order") as info:
        ingest_files([_file(tmp_path, rows)], equity_spec, tmp_path / "catalog", config=config)
    assert (info.value.row, info.value.check) == (5, "unwritable")
    repaired = ingest_files(
        [_file(tmp_path, rows)],
        equity_spec,
        tmp_path / "catalog",
        config=ValidationConfig(label="close"),
    )
    assert repaired.audit[["row", "old", "new"]].values.tolist() == [
        [5, "position 5", "position 4"]
    ]
