"""Exchange calendars in the gap check: with ``calendar: XNYS`` in the spec, weekends, holidays,
nights and early closes are not gaps; a missing trading session (or minutes of one) is."""

import json

import pandas as pd
import pytest
from catalogs_kit import write_text
from click.testing import CliRunner

from catalogs.ingest import validate_files
from catalogs.parsing import ReadOptions
from catalogs.specs import parse_instrument_spec
from catalogs.validation import ValidationConfig
from grodt.cli import main
from grodt.core.errors import ConfigError

# NYSE holidays between 2 January and 28 March 2024 (published exchange calendar): Martin Luther
# King Jr. Day and Washington's Birthday. Written out here, not taken from the library under test.
NYSE_HOLIDAYS_Q1_2024 = ("2024-01-15", "2024-02-19")
DROPPED_SESSION = "2024-02-07"  # an ordinary Wednesday the file lacks


def _daily_file(tmp_path):
    days = pd.bdate_range("2024-01-02", "2024-03-28")
    days = days[~days.isin(pd.to_datetime([*NYSE_HOLIDAYS_Q1_2024, DROPPED_SESSION]))]
    lines = ["Date,Open,High,Low,Close,Volume"]
    lines += [f"{d:%Y-%m-%d},100,101,99,100.5,1000" for d in days]
    return write_text(tmp_path, "daily.csv", "\n".join(lines) + "\n")


def _spec(equity_spec, **update):
    return parse_instrument_spec(
        {**equity_spec.model_dump(mode="json"), "kind": "equity", **update}
    )


def _gaps(result):
    findings = result.findings
    return findings[findings["check"] == "gap"]


def test_daily_without_a_calendar_flags_holidays_too(tmp_path, equity_spec):
    gaps = _gaps(validate_files([_daily_file(tmp_path)], equity_spec))
    assert len(gaps) == 3  # two holidays and the dropped session, all "holiday"
    assert set(gaps["value"]) == {"holiday"}


def test_daily_with_the_xnys_calendar_flags_only_the_missing_session(tmp_path, equity_spec):
    spec = _spec(equity_spec, calendar="XNYS")
    gaps = _gaps(validate_files([_daily_file(tmp_path)], spec))
    assert gaps["value"].tolist() == ["trading_session"]
    (detail,) = gaps["detail"]
    assert "1 missing XNYS session (2024-02-07)" in detail
    assert gaps["row"].tolist() == [26]  # the 8 February bar: row 26 of the file
    rejected = validate_files(
        [_daily_file(tmp_path)], spec, config=ValidationConfig(policies={"gap": "reject"})
    )
    assert _gaps(rejected)["action"].tolist() == ["reject"]


def _minute_file(tmp_path, drop_session="2024-07-05", drop_minutes=("2024-07-02 10:00", 10)):
    """Close-stamped New York minute bars 09:31-16:00 on the XNYS sessions of 1-8 July 2024
    (3 July closes at 13:00, 4 July is a holiday; written out, not from the library)."""
    closes = {
        "2024-07-01": "16:00",
        "2024-07-02": "16:00",
        "2024-07-03": "13:00",
        "2024-07-05": "16:00",
        "2024-07-08": "16:00",
    }
    stamps = []
    for day, close in closes.items():
        if day == drop_session:
            continue
        stamps.extend(pd.date_range(f"{day} 09:31", f"{day} {close}", freq="1min"))
    index = pd.DatetimeIndex(stamps)
    start, count = drop_minutes
    index = index[
        (index <= pd.Timestamp(start)) | (index > pd.Timestamp(start) + pd.Timedelta(minutes=count))
    ]
    lines = ["timestamp,open,high,low,close,volume"]
    lines += [f"{t:%Y-%m-%d %H:%M:%S},100,101,99,100.5,10" for t in index]
    return write_text(tmp_path, "minutes.csv", "\n".join(lines) + "\n")


def test_intraday_with_the_calendar_counts_only_missing_session_minutes(tmp_path, equity_spec):
    path = _minute_file(tmp_path)
    options = ReadOptions(timezone="America/New_York")
    close_label = ValidationConfig(label="close")
    plain = _gaps(validate_files([path], equity_spec, options, close_label))
    assert len(plain) == 4  # three nights (one spans the holiday and the lost session) + 10 min
    spec = _spec(equity_spec, calendar="XNYS")
    gaps = _gaps(validate_files([path], spec, options, close_label))
    assert gaps["value"].tolist() == ["intraday", "trading_session"]
    assert "10 missing bars in XNYS sessions" in gaps["detail"].iloc[0]
    assert "390 missing bars in XNYS sessions" in gaps["detail"].iloc[1]
    assert "(1 whole session)" in gaps["detail"].iloc[1]


def test_intraday_without_missing_sessions_has_no_gap_findings(tmp_path, equity_spec):
    path = _minute_file(tmp_path, drop_session="", drop_minutes=("2024-07-02 10:00", 0))
    spec = _spec(equity_spec, calendar="XNYS")
    result = validate_files(
        [path], spec, ReadOptions(timezone="America/New_York"), ValidationConfig(label="close")
    )
    assert _gaps(result).empty


def test_an_unknown_calendar_is_a_config_error_naming_the_field(equity_spec):
    with pytest.raises(ConfigError, match=r"calendar: .*unknown exchange calendar 'XNYZ'"):
        _spec(equity_spec, calendar="XNYZ")


def test_cli_validate_with_a_calendar_spec(tmp_path, spec_file):
    spec_file.write_text(spec_file.read_text() + "calendar: XNYS\n")
    args = ["catalog", "validate", str(_daily_file(tmp_path)), "--instrument-spec", str(spec_file)]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 0, result.output
    findings = json.loads(result.stdout)
    assert [f["value"] for f in findings] == ["trading_session"]
    assert [f["row"] for f in findings] == [26]
