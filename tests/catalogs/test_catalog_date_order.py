"""Day-first or month-first numeric dates: decided from the whole column, never mixed, never
guessed when the column is ambiguous (then the caller says which)."""

import json

import numpy as np
import pandas as pd
import pytest
from catalogs_kit import write_text
from click.testing import CliRunner

from catalogs.ingest import ingest_files
from catalogs.ingest import validate_files
from catalogs.parsing import ReadOptions
from catalogs.parsing import read_bars_file
from catalogs.reader import read_bars_frame
from grodt.cli import main
from grodt.core.errors import ConfigError
from grodt.core.errors import DataValidationError


def _daily_csv(dates: pd.DatetimeIndex, fmt: str, sep: str = ",") -> str:
    lines = [sep.join(["Date", "Open", "High", "Low", "Close", "Volume"])]
    for i, day in enumerate(dates):
        price = 100 + i
        lines.append(
            sep.join(
                [
                    day.strftime(fmt),
                    f"{price}",
                    f"{price + 1}",
                    f"{price - 1}",
                    f"{price + 0.5}",
                    "1000",
                ]
            )
        )
    return "\n".join(lines) + "\n"


def _dates(raw) -> list[str]:
    return [str(d.date()) for d in pd.to_datetime(raw.ts)]


# January-December 2024 weekdays whose day of month is 12 or less: every value is ambiguous.
SMALL_DAYS = pd.DatetimeIndex(
    [d for d in pd.bdate_range("2024-01-01", "2024-12-31") if d.day <= 12 and d.month != d.day]
)[:30]
# Consecutive weekdays from 2 January: days run past 12.
RUN_OF_DAYS = pd.bdate_range("2024-01-02", periods=30)


def test_day_first_dates_with_days_above_12_are_read_day_first(tmp_path):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(RUN_OF_DAYS, "%d/%m/%Y"))
    raw = read_bars_file(path)
    assert raw.problems.empty
    assert _dates(raw) == [str(d.date()) for d in RUN_OF_DAYS]


def test_month_first_dates_with_days_above_12_are_read_month_first(tmp_path):
    path = write_text(tmp_path, "mdy.csv", _daily_csv(RUN_OF_DAYS, "%m/%d/%Y"))
    raw = read_bars_file(path)
    assert raw.problems.empty
    assert _dates(raw) == [str(d.date()) for d in RUN_OF_DAYS]


@pytest.mark.parametrize(("fmt", "sep"), [("%d.%m.%Y", ";"), ("%d-%m-%y", ","), ("%d/%m/%Y", "\t")])
def test_other_separators_and_two_digit_years(tmp_path, fmt, sep):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(RUN_OF_DAYS, fmt, sep))
    assert _dates(read_bars_file(path)) == [str(d.date()) for d in RUN_OF_DAYS]


def test_an_ambiguous_column_is_an_error_that_says_how_to_choose(tmp_path):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(SMALL_DAYS, "%d/%m/%Y"))
    with pytest.raises(DataValidationError, match="ambiguous dates") as caught:
        read_bars_file(path)
    message = str(caught.value)
    assert str(path) in message and "--dayfirst" in message and "--date-format" in message


def test_an_ambiguous_column_is_read_as_the_caller_says(tmp_path):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(SMALL_DAYS, "%d/%m/%Y"))
    day_first = read_bars_file(path, ReadOptions(dayfirst=True))
    assert _dates(day_first) == [str(d.date()) for d in SMALL_DAYS]
    by_format = read_bars_file(path, ReadOptions(date_format="%d/%m/%Y"))
    np.testing.assert_array_equal(by_format.ts, day_first.ts)
    month_first = read_bars_file(path, ReadOptions(dayfirst=False))
    swapped = [pd.Timestamp(d.year, d.day, d.month) for d in SMALL_DAYS]
    assert _dates(month_first) == [str(d.date()) for d in swapped]


def test_dates_whose_two_readings_agree_need_no_choice(tmp_path):
    same = pd.DatetimeIndex([f"2024-{m:02d}-{m:02d}" for m in range(1, 13)])
    path = write_text(tmp_path, "same.csv", _daily_csv(same, "%d/%m/%Y"))
    assert _dates(read_bars_file(path)) == [str(d.date()) for d in same]


def test_a_file_mixing_the_conventions_is_an_error_naming_both_rows(tmp_path):
    text = _daily_csv(RUN_OF_DAYS[:12], "%d/%m/%Y")  # row 10: 15/01/2024, day-first only
    text += "01/25/2024,1,2,0.5,1.5,10\n"  # row 13: month-first only
    path = write_text(tmp_path, "mixed.csv", text)
    with pytest.raises(DataValidationError, match="mixes day-first and month-first") as caught:
        read_bars_file(path)
    assert "row 10 ('15/01/2024')" in str(caught.value)
    assert "row 13 ('01/25/2024')" in str(caught.value)


def test_a_value_impossible_in_the_chosen_order_is_a_parse_finding_with_the_reason(tmp_path):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(SMALL_DAYS[:10], "%d/%m/%Y"))
    text = path.read_text() + "01/25/2024,1,2,0.5,1.5,10\n"
    path.write_text(text)
    result = validate_files([path], options=ReadOptions(dayfirst=True))
    rejected = result.rejected
    assert rejected["row"].tolist() == [11]
    assert "month 25 > 12 reading the dates day-first" in rejected["detail"].iloc[0]


def test_date_and_time_columns_day_first(tmp_path):
    text = "Date;Time;Open;High;Low;Close;Volume\n"
    text += "15/01/2024;14:31:00;100;101;99;100.5;10\n15/01/2024;14:32:00;100.5;101;100;100.7;20\n"
    raw = read_bars_file(write_text(tmp_path, "bars.csv", text))
    assert pd.to_datetime(raw.ts).tolist() == [
        pd.Timestamp("2024-01-15 14:31"),
        pd.Timestamp("2024-01-15 14:32"),
    ]


def test_the_spec_can_say_day_first_and_an_explicit_option_wins(tmp_path, equity_spec):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(SMALL_DAYS, "%d/%m/%Y"))
    spec = equity_spec.model_copy(update={"dayfirst": True})
    catalog = tmp_path / "catalog"
    result = ingest_files([path], spec, catalog)
    frame = read_bars_frame(catalog, result.bar_type)
    local = frame.index.tz_convert("America/New_York")
    assert [str(d.date()) for d in local] == [str(d.date()) for d in SMALL_DAYS]
    overridden = validate_files([path], spec, ReadOptions(dayfirst=False))
    assert len(overridden.ts) == len(SMALL_DAYS)
    assert set(overridden.ts.tolist()) != set(frame.index.asi8.tolist())  # other dates


def test_a_bad_date_format_is_a_config_error():
    with pytest.raises(ConfigError, match="date_format '%Q'"):
        ReadOptions(date_format="%Q")


def test_cli_ambiguous_file_exits_2_then_dayfirst_ingests_the_right_dates(tmp_path, spec_file):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(SMALL_DAYS, "%d/%m/%Y"))
    catalog = tmp_path / "catalog"
    args = [
        "catalog",
        "ingest",
        str(path),
        "--instrument-spec",
        str(spec_file),
        "--catalog",
        str(catalog),
        "--json",
    ]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 2
    assert "ambiguous dates" in refused.stderr and "--dayfirst" in refused.stderr
    assert not catalog.exists()
    accepted = CliRunner().invoke(main, [*args, "--dayfirst"])
    assert accepted.exit_code == 0, accepted.output
    bar_type = json.loads(accepted.stdout)["bar_type"]
    local = read_bars_frame(catalog, bar_type).index.tz_convert("America/New_York")
    assert [str(d.date()) for d in local] == [str(d.date()) for d in SMALL_DAYS]


def test_cli_day_first_file_with_days_above_12_validates_clean(tmp_path):
    path = write_text(tmp_path, "dmy.csv", _daily_csv(RUN_OF_DAYS, "%d/%m/%Y"))
    result = CliRunner().invoke(main, ["catalog", "validate", str(path), "--json"])
    assert result.exit_code == 0, result.output
    assert [f for f in json.loads(result.stdout) if f["check"] == "parse"] == []
