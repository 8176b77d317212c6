"""``grodt catalog``: validate --json output, exit codes, ingest, list."""

import json

from catalogs_kit import bars_csv
from catalogs_kit import clean_bars
from catalogs_kit import write_text
from click.testing import CliRunner

from grodt.cli import main


def _bad_file(tmp_path):
    text = bars_csv(clean_bars(10))
    lines = text.splitlines()
    fields = lines[3].split(",")
    fields[3] = "-1.0"  # row 3: negative low -> positive/reject
    lines[3] = ",".join(fields)
    fields = lines[6].split(",")
    fields[2] = "1.0"  # row 6: high below open/close -> ohlc/repair
    lines[6] = ",".join(fields)
    return write_text(tmp_path, "bad.csv", "\n".join(lines) + "\n")


def test_validate_json_prints_only_the_findings(tmp_path):
    result = CliRunner().invoke(
        main, ["catalog", "validate", str(_bad_file(tmp_path)), "--json", "--label", "close"]
    )
    assert result.exit_code == 1  # a finding is rejected
    findings = json.loads(result.stdout)
    assert isinstance(findings, list)
    assert {"row", "column", "check", "action"} <= set(findings[0])
    assert [(f["row"], f["column"], f["check"], f["action"]) for f in findings] == [
        (3, "low", "positive", "reject"),
        (6, "high", "ohlc", "repair"),
    ]


def test_validate_policy_option_and_clean_exit(tmp_path):
    args = ["catalog", "validate", str(_bad_file(tmp_path)), "--json", "--label", "close"]
    result = CliRunner().invoke(main, [*args, "--policy", "positive=flag", "--policy", "ohlc=flag"])
    assert result.exit_code == 0
    assert [f["action"] for f in json.loads(result.stdout)] == ["flag", "flag"]


def test_bad_policy_is_a_user_error(tmp_path):
    args = ["catalog", "validate", str(_bad_file(tmp_path)), "--policy", "gap=repair"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 2
    assert "gap=repair is not allowed" in result.stderr


def test_ingest_and_list(tmp_path, spec_file):
    data = write_text(tmp_path, "bars.csv", bars_csv(clean_bars(10)))
    catalog = tmp_path / "catalog"
    args = ["catalog", "ingest", str(data), "--instrument-spec", str(spec_file)]
    result = CliRunner().invoke(main, [*args, "--catalog", str(catalog), "--label", "close"])
    assert result.exit_code == 0, result.output
    assert "TEST.XNAS-1-MINUTE-LAST-EXTERNAL: 10 of 10 rows written" in result.stdout
    listed = CliRunner().invoke(main, ["catalog", "list", "--catalog", str(catalog), "--json"])
    summary = json.loads(listed.stdout)
    assert summary["bar_types"][0]["rows"] == 10
    assert summary["bar_types"][0]["start"] == "2024-01-02T14:31:00Z"


def test_ingest_reject_exits_2_naming_row_and_column(tmp_path, spec_file):
    args = ["catalog", "ingest", str(_bad_file(tmp_path)), "--instrument-spec", str(spec_file)]
    result = CliRunner().invoke(main, [*args, "--catalog", str(tmp_path / "c")])
    assert result.exit_code == 2
    assert "row 3, column 'low'" in result.stderr
    assert not (tmp_path / "c").exists()


def test_sample_command_builds_the_synthetic_dataset(tmp_path):
    args = ["catalog", "sample", "--catalog", str(tmp_path), "--only", "synthetic"]
    result = CliRunner().invoke(main, [*args, "--days", "2", "--seed", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    entry = report["datasets"]["synthetic"]
    assert entry["status"] == "built"
    assert entry["rows"] == {f"SYN{c}.XSYN-1-MINUTE-LAST-EXTERNAL": 780 for c in "ABCD"}
    again = CliRunner().invoke(main, [*args, "--days", "2", "--if-missing"])
    assert "synthetic: skipped" in again.stdout
