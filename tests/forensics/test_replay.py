"""grodt.forensics.replay and `grodt replay`: every allocation decision of a meta-controller in a
real BacktestNode (S1 + S2 on the S&P 500 sample) recomputed through MetaPolicy equal bit for
bit; a changed seed or a changed recorded outcome is named at the first field that differs; a
policy diff on the logged inputs checked against the rule it applies."""

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from grodt.cli import main
from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.forensics.decision_replay import diff_decisions
from grodt.forensics.decision_replay import summarise_decision_changes
from grodt.forensics.ope_logs import write_records
from grodt.forensics.reader import read_run
from grodt.forensics.replay import diff_allocations
from grodt.forensics.replay import replay_allocations
from grodt.forensics.replay import replay_trace
from grodt.forensics.replay import summarise_changes
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = REPO / "node_configs" / "components" / "strategies"


def _meta_run(catalog: Path, run_dir: Path, policy: str) -> Path:
    document = resolve_includes(
        {
            "name": f"replay_{policy}",
            "venues": [{"include": "node_configs/venues/sample_cash_per_strategy.yaml"}],
            "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
            "start": "2003-01-01",
            "end": "2003-12-31",
            "strategies": [
                {"include": str(STRATEGIES / "s1_vwap_ema_spx.yaml")},
                {"include": str(STRATEGIES / "s2_mean_reversion_spx.yaml")},
            ],
            "actors": [
                {
                    "path": "actors.meta_controller:MetaController",
                    "config": {
                        "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
                        "static_weights": {"S1VwapEmaScalper-001": 0.2, "S2MeanReversion-002": 0.5},
                        "rebalance_every": 5,
                        "performance_window": 20,
                        "policy": policy,
                        "bandit_seed": 11,
                    },
                }
            ],
            "forensics": {"sink": "parquet"},
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
        REPO,
    )
    spec = load_backtest_document(document, f"replay_{policy}")
    return run_backtest(spec, catalog, run_dir, document=document, quiet=True).run_dir


@pytest.fixture(scope="module")
def bandit_run(sp500_catalog, tmp_path_factory):
    return _meta_run(sp500_catalog, tmp_path_factory.mktemp("replay") / "run", "bandit")


def _allocations(run: Path) -> list[AllocationRecord]:
    records = [s.record for s in read_run(run) if isinstance(s.record, AllocationRecord)]
    return sorted(records, key=lambda r: r.ts_event)


def test_every_bandit_decision_replays_bit_for_bit(bandit_run):
    results, seconds = replay_allocations(bandit_run)
    records = _allocations(bandit_run)
    assert [r.trace_id for r in results] == [r.trace_id for r in records]
    assert sum(r.policy == "bandit" for r in results) > 30
    assert {r.policy for r in results} == {"static", "bandit"}  # warm-up fallbacks included
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    assert seconds > 0.0
    # One trace: everything of its component up to it is replayed.
    last = records[-1].trace_id
    result, replayed, _ = replay_trace(bandit_run, last)
    assert result.equal and result.trace_id == last and replayed == len(records)
    cli = CliRunner().invoke(main, ["replay", last, "--run", str(bandit_run)])
    assert cli.exit_code == 0, cli.output
    assert f"{last}  (bandit): equal bit for bit" in cli.output


def test_trailing_sharpe_replays_bit_for_bit(sp500_catalog, tmp_path):
    run = _meta_run(sp500_catalog, tmp_path / "run", "trailing_sharpe")
    results, _ = replay_allocations(run)
    assert sum(r.policy == "trailing_sharpe" for r in results) > 30
    assert all(r.equal for r in results)


def test_another_seed_is_named(bandit_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(bandit_run, run)
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["actors"][0]["config"]["bandit_seed"] = 12
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    results, _ = replay_allocations(run)
    first = next(r for r in results if not r.equal)
    assert first.policy == "bandit"
    assert first.difference.field.startswith(("action_probabilities", "action_index", "weights"))
    cli = CliRunner().invoke(main, ["replay", "--all", "--run", str(run)])
    assert cli.exit_code == 1
    assert f"first: {first.trace_id}  (bandit): differs at {first.difference.field}" in cli.output


def test_a_changed_outcome_changes_later_decisions_only(bandit_run, tmp_path):
    # The bandit learns each window's portfolio return before choosing: a different recorded
    # outcome leaves every earlier decision equal and changes a later one.
    records = _allocations(bandit_run)
    bandit_positions = [i for i, r in enumerate(records) if r.policy == "bandit"]
    changed_at = bandit_positions[5]
    records[changed_at] = records[changed_at].model_copy(update={"realised_return": 0.5})
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(bandit_run / "config.yaml", run / "config.yaml")
    write_records(run, records, session="0000000000000000001-00000001")
    results, _ = replay_allocations(run)
    assert all(r.equal for r in results[:changed_at])
    assert not all(r.equal for r in results[changed_at:])


def test_errors(bandit_run, tmp_path):
    with pytest.raises(GrodtError, match="no allocation record with trace id 'nope'"):
        replay_trace(bandit_run, "nope")
    cli = CliRunner().invoke(main, ["replay", "--run", str(bandit_run)])
    assert cli.exit_code == 2 and "give a TRACE_ID or --all" in cli.output


def test_policy_diff(bandit_run, tmp_path):
    records = _allocations(bandit_run)
    same = diff_allocations(bandit_run, {"bandit_seed": 11})
    assert len(same) == len(records) and not any(c.changed for c in same)
    changes = diff_allocations(bandit_run, {"policy": "trailing_sharpe"})
    names = ["S1VwapEmaScalper-001", "S2MeanReversion-002"]
    for record, change in zip(records, changes, strict=True):
        if record.fallback_reason == "warming_up":
            assert not change.changed and change.regime == "warming_up"
            continue
        # trailing_sharpe: all capital to the best trailing Sharpe, from the logged context.
        best = max(names, key=lambda n: record.context[f"{n}:sharpe"])
        assert change.new == {n: float(n == best) for n in names}
        assert change.changed == (change.new != record.weights)
    summary = summarise_changes(changes)
    assert summary["changed"] == sum(c.changed for c in changes) > 0
    assert sum(v["decisions"] for v in summary["by_regime"].values()) == len(records)
    policy = tmp_path / "new.yaml"
    policy.write_text(
        "path: actors.meta_controller:MetaController\nconfig: {policy: trailing_sharpe}\n"
    )
    cli = CliRunner().invoke(
        main, ["replay", "diff", "--run", str(bandit_run), "--policy", str(policy), "--json"]
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["summary"] == summary
    text = CliRunner().invoke(
        main, ["replay", "diff", "--run", str(bandit_run), "--set", "policy=trailing_sharpe"]
    )
    assert text.exit_code == 0, text.output
    assert f"{summary['changed']} of {len(records)} decisions allocate differently" in text.output
    bad = CliRunner().invoke(
        main, ["replay", "diff", "--run", str(bandit_run), "--set", "policy=greedy"]
    )
    assert bad.exit_code == 2 and "the new config of MetaController" in bad.output


def test_the_tearsheet_shows_a_policy_diff(bandit_run, tmp_path):
    page = tmp_path / "tearsheet.html"
    arguments = ["tracking", "tearsheet", str(bandit_run), "--output", str(page)]
    cli = CliRunner().invoke(main, [*arguments, "--diff-set", "policy=trailing_sharpe"])
    assert cli.exit_code == 0, cli.output
    summary = summarise_changes(diff_allocations(bandit_run, {"policy": "trailing_sharpe"}))
    text = page.read_text()
    assert "Policy diff: the new config on the logged decisions" in text
    assert "chart-policy_diff" in text  # the chart of the weight changes
    assert (
        f"{summary['changed']:,} of {summary['decisions']:,} decisions allocate differently" in text
    )
    for regime, entry in summary["by_regime"].items():
        assert f"<td>{regime}</td><td>{entry['changed']:,}</td>" in text
    # The same config again: nothing changes, and the page says so instead of an empty chart.
    policy = tmp_path / "same.yaml"
    policy.write_text("path: actors.meta_controller:MetaController\nconfig: {bandit_seed: 11}\n")
    same = CliRunner().invoke(main, [*arguments, "--diff-policy", str(policy)])
    assert same.exit_code == 0, same.output
    assert "The new config allocates as logged at every decision." in page.read_text()
    bad = CliRunner().invoke(main, [*arguments, "--diff-set", "policy=greedy"])
    assert bad.exit_code == 2 and "the new config of MetaController" in bad.output
    # A rule strategy's new config: its decisions recomputed on their logged inputs.
    setting = "strategies[1].config.risk_per_trade=0.02"
    strategy = CliRunner().invoke(main, [*arguments, "--diff-set", setting])
    assert strategy.exit_code == 0, strategy.output
    decisions = summarise_decision_changes(
        diff_decisions(bandit_run, {1: {"risk_per_trade": 0.02}})
    )
    assert decisions["changed"] > 0
    text = page.read_text()
    assert "Strategy diff: the new configs on the logged decisions" in text
    assert "chart-decision_diff" in text and "Policy diff" not in text
    assert (
        f"{decisions['changed']:,} of {decisions['decisions']:,} strategy decisions differ" in text
    )
