"""One date range governs everything a run reports, and ``--set`` overrides change a run without
writing a file (typed by YAML, validated like it, recorded with the run)."""

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from grodt.cli import main
from grodt.core.errors import ConfigError
from grodt.nodes.backtest import run_backtest
from grodt.tracking.bundle import read_bundle
from node_configs.loader import load_backtest_config
from node_configs.overrides import apply_overrides
from node_configs.overrides import parse_override

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
START, END = "2004-01-01", "2007-06-30"


def _demo_document(**node_level) -> dict:
    document = {
        "name": "range",
        "venues": [{"include": str(REPO / "node_configs" / "venues" / "sample_cash.yaml")}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [
            {"include": str(REPO / "node_configs/components/strategies/ema_cross_spx.yaml")}
        ],
    }
    document.update(node_level)
    return document


def _run(tmp_path: Path, name: str, document: dict, catalog: Path):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(document))
    return run_backtest(load_backtest_config(path), catalog, tmp_path / name, quiet=True)


def test_a_data_entry_range_governs_the_reports(sp500_catalog, tmp_path):
    entry_range = _demo_document(data=[{"bar_types": [BAR_TYPE], "start": START, "end": END}])
    node_range = _demo_document(start=START, end=END)
    by_entry = _run(tmp_path, "entry", entry_range, sp500_catalog)
    by_node = _run(tmp_path, "node", node_range, sp500_catalog)

    lo, hi = pd.Timestamp(START, tz="UTC"), pd.Timestamp(END, tz="UTC")
    equity = pd.read_parquet(tmp_path / "entry" / "equity.parquet")
    assert equity.index.min() >= lo and equity.index.max() <= hi
    assert lo <= pd.Timestamp(by_entry.summary["start"]) <= pd.Timestamp(by_entry.summary["end"])
    assert pd.Timestamp(by_entry.summary["end"]) <= hi
    assert by_entry.summary["bars"] == by_entry.summary["bars_processed"]
    # An open position is marked at the range's last close, where the engine marked it too.
    assert by_entry.summary["final_equity"] == pytest.approx(
        by_entry.summary["engine_final_equity"], abs=0.01
    )
    for key in ("bars", "final_equity", "total_return", "cagr", "sharpe", "annual_volatility"):
        assert by_entry.summary[key] == by_node.summary[key], key


def test_a_range_without_bars_is_an_error_before_the_run(sp500_catalog, tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text(yaml.safe_dump(_demo_document(start="2030-01-01")))
    with pytest.raises(ConfigError, match=r"start/end: no bars of 'SPX\.SAMPLE-1-DAY"):
        run_backtest(load_backtest_config(path), sp500_catalog, tmp_path / "run", quiet=True)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_overrides_are_typed_by_yaml_and_copy_only_their_path():
    document = {"start": None, "strategies": [{"config": {"period": 10, "keep": [1]}}]}
    result = apply_overrides(
        document,
        ["strategies[0].config.period=23", "start=2000-01-01", "report.periods_per_year=252"],
    )
    assert result["strategies"][0]["config"] == {"period": 23, "keep": [1]}
    assert str(result["start"]) == "2000-01-01"
    assert result["report"] == {"periods_per_year": 252}
    assert document["strategies"][0]["config"]["period"] == 10  # the input is not modified
    assert parse_override("a.b[2].c=[1, x]") == (("a", "b", 2, "c"), [1, "x"])


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ("period", "expected PATH=VALUE"),
        ("strategies[0]config=1", "malformed path"),
        ("strategies[4].config.period=1", "strategies has 1 entries"),
        ("name.first=1", "name is not a mapping"),
        ("start=[unclosed", "--set start: invalid YAML"),
    ],
)
def test_bad_overrides_name_themselves(override, fragment):
    document = {"name": "x", "strategies": [{"config": {}}]}
    with pytest.raises(ConfigError, match=r"--set ") as error:
        apply_overrides(document, [override])
    assert fragment in str(error.value)


def test_cli_set_changes_the_run_and_is_recorded(sp500_catalog, tmp_path):
    run_dir = tmp_path / "run"
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(DEMO),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(run_dir),
            "--json",
            "--no-track",
            "--no-tearsheet",
            "--set",
            "strategies[0].config.fast_ema_period=12",
            "--set",
            "start=2010-01-01",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert pd.Timestamp(summary["start"]) >= pd.Timestamp("2010-01-01", tz="UTC")
    recorded = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert recorded["strategies"][0]["config"]["fast_ema_period"] == 12
    assert str(recorded["start"]) == "2010-01-01"
    params = read_bundle(run_dir).params
    assert params["strategies.0.config.fast_ema_period"] == "12"


def test_cli_set_is_validated_like_the_file(sp500_catalog, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(DEMO),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(tmp_path / "run"),
            "--set",
            "strategies[0].config.fast_ema_perod=12",
        ],
    )
    assert result.exit_code == 2
    assert "strategies[0].config.fast_ema_perod: unknown field; did you mean " in result.output
    assert not (tmp_path / "run").exists()


def test_a_paper_replay_range_without_bars_fails_the_deployment_check(sp500_catalog, tmp_path):
    from grodt.nodes.checks import check_deployment
    from node_configs.loader import load_document

    paper = REPO / "node_configs" / "live" / "ema_cross_sp500_paper.yaml"
    document = load_document(paper, ["data_clients[0].start=2030-01-01"])
    path = tmp_path / "paper.yaml"
    path.write_text(yaml.safe_dump(document))
    result = check_deployment(path, sp500_catalog)
    failed = {item.name: item.detail for item in result.missing}
    assert "data_clients[0].start/end: no bars of 'SPX.SAMPLE-1-DAY" in failed["replay catalog"]
