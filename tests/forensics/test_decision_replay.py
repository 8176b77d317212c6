"""grodt.forensics.decision_replay and `grodt replay --all`: a small full-stack backtest on the
generated (synthetic) market — regime actor, meta-controller bandit, S1/S2/S3 and the RL ensemble
(scripted policy) — has EVERY decision record replayed bit for bit by `grodt replay --all`
(allocations through grodt.forensics.replay, the ensemble's through grodt.forensics.ensemble_replay,
the rule strategies' through the strategies' own sizing/order/rule functions); a tampered record
is named at its first differing field; a changed strategy config is diffed against the logged
decisions."""

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from catalogs.sample import build_sample_catalog
from catalogs.synthetic import SyntheticParams
from grodt.cli import main
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.forensics.decision_replay import diff_decisions
from grodt.forensics.decision_replay import replay_decisions
from grodt.forensics.decision_replay import summarise_decision_changes
from grodt.forensics.ope_logs import write_records
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes

REPO = Path(__file__).resolve().parents[2]
STRATEGIES = REPO / "node_configs" / "components" / "strategies"
BAR_TYPE = "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL"
S1, S2, S3 = "S1VwapEmaScalper-101", "S2MeanReversion-201", "S3Breakout-301"
RL = "RLEnsembleStrategy-401"


@pytest.fixture(scope="module")
def full_stack_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    catalog = tmp_path_factory.mktemp("synthetic-catalog")
    build_sample_catalog(catalog, datasets=("synthetic",), synthetic=SyntheticParams(days=5))
    document = resolve_includes(
        {
            "name": "decision_replay",
            "venues": [{"include": "node_configs/venues/synthetic_margin.yaml"}],
            "data": [{"bar_types": [BAR_TYPE]}],
            "actors": [
                {
                    "path": "actors.regime_actor:RegimeActor",
                    "config": {
                        "bar_types": [BAR_TYPE],
                        "walk_forward": {"train_bars": 390, "refit_every": 390},
                    },
                },
                {
                    "path": "actors.meta_controller:MetaController",
                    "config": {
                        "bar_type": BAR_TYPE,
                        "static_weights": {S1: 0.25, S2: 0.25, S3: 0.25, RL: 0.2},
                        "rebalance_every": 30,
                        "performance_window": 60,
                        "policy": "bandit",
                        "bandit_seed": 5,
                    },
                },
            ],
            "strategies": [
                {"include": str(STRATEGIES / "s1_vwap_ema_syn.yaml")},
                {"include": str(STRATEGIES / "s2_mean_reversion_syn.yaml")},
                {"include": str(STRATEGIES / "s3_breakout_syn.yaml")},
                {
                    "include": str(STRATEGIES / "rl_ensemble_scripted_spx.yaml"),
                    "config": {
                        "instrument_id": "SYNA.XSYN",
                        "bar_type": BAR_TYPE,
                        "order_id_tag": "401",
                        "allocation_weight": 0.2,
                        # The base's exit at the strategy's stop is recorded through the
                        # ensemble's own records, which its replay does not cover yet.
                        "close_positions_on_stop": False,
                    },
                },
            ],
            "forensics": {"sink": "parquet"},
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
        REPO,
    )
    spec = load_backtest_document(document, "decision_replay")
    run_dir = tmp_path_factory.mktemp("decision-replay") / "run"
    return run_backtest(spec, catalog, run_dir, document=document, quiet=True).run_dir


def _decisions(run: Path) -> list[DecisionRecord]:
    records = [s.record for s in read_run(run) if isinstance(s.record, DecisionRecord)]
    return sorted(records, key=lambda r: r.ts_event)


def test_every_decision_of_a_full_stack_run_replays_bit_for_bit(full_stack_run):
    run = full_stack_run
    stored = [s.record for s in read_run(run)]
    logged = sorted((r for r in stored if isinstance(r, DecisionRecord)), key=lambda r: r.ts_event)
    allocations = [r for r in stored if isinstance(r, AllocationRecord)]
    # The run exercises what replay must cover: every strategy, entries on both sides, exits of
    # several kinds, trailing-stop and rebalance adjustments, and the bandit's allocations.
    ensemble = [r for r in logged if r.strategy_id == RL]
    logged = [r for r in logged if r.strategy_id != RL]
    assert len(ensemble) > 5
    kinds = Counter((r.strategy_id, r.action) for r in logged)
    assert {sid for sid, _ in kinds} == {S1, S2, S3}
    assert {r.intended_order.side for r in logged if r.action == "entry"} == {"BUY", "SELL"}
    exits = {r.reason for r in logged if r.action == "exit"}
    assert {"regime", "vwap_reached", "trailing_stop"} <= exits
    assert any(r.reason == "trailing_stop" and r.action == "adjust" for r in logged)
    assert sum(a.policy == "bandit" for a in allocations) > 5

    results, not_replayable, seconds = replay_decisions(run, logged)
    assert not_replayable == []
    assert [r.trace_id for r in results] == [r.trace_id for r in logged]
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    assert all(r.policy in ("entry", "exit", "adjust") for r in results)  # rules recomputed too
    assert seconds > 0.0

    cli = CliRunner().invoke(main, ["replay", "--all", "--run", str(run)])
    assert cli.exit_code == 0, cli.output
    total = len(logged) + len(ensemble) + len(allocations)
    # The allocations through grodt.forensics.replay, the decisions through this replay.
    assert f"{len(allocations)} allocation decisions replayed" in cli.output
    assert f"{len(logged)} rule-strategy decisions replayed" in cli.output
    assert f"{len(ensemble)} {RL} decisions replayed" in cli.output
    assert f"{total} of {total} logged decisions reproduced bit for bit (100.00%)" in cli.output
    one = next(r for r in logged if r.action == "entry" and r.intended_order.side == "SELL")
    cli = CliRunner().invoke(main, ["replay", one.trace_id, "--run", str(run)])
    assert cli.exit_code == 0, cli.output
    assert f"{one.trace_id}  (entry): equal bit for bit" in cli.output


def _tampered_run(run: Path, tmp_path: Path, records: list) -> Path:
    copy = tmp_path / "run"
    copy.mkdir()
    shutil.copy(run / "config.yaml", copy / "config.yaml")
    write_records(copy, records, session="0000000000000000001-00000001")
    return copy


def test_a_tampered_record_is_named_at_its_first_differing_field(full_stack_run, tmp_path):
    logged = _decisions(full_stack_run)
    entry = next(i for i, r in enumerate(logged) if r.action == "entry" and r.strategy_id != RL)
    record = logged[entry]
    inputs = dict(record.sizing_inputs)
    inputs["equity"] = inputs["equity"] * 1.5  # the sizing read another equity
    logged[entry] = record.model_copy(update={"sizing_inputs": inputs})
    exit_at = next(i for i, r in enumerate(logged) if r.reason == "vwap_reached")
    logged[exit_at] = logged[exit_at].model_copy(update={"reason": "time_stop"})
    run = _tampered_run(full_stack_run, tmp_path, logged)
    results, _, _ = replay_decisions(run)
    differing = {r.trace_id: r.difference for r in results if not r.equal}
    assert set(differing) == {record.trace_id, logged[exit_at].trace_id}
    equity_difference = differing[record.trace_id]
    # The cap or the risk term moves first: both read the equity.
    assert equity_difference.field in ("sizing_inputs.max_notional", "features.allocated_equity")
    assert equity_difference.recorded != equity_difference.replayed
    reason_difference = differing[logged[exit_at].trace_id]
    assert reason_difference.field == "reason"
    assert (reason_difference.recorded, reason_difference.replayed) == (
        "time_stop",
        "vwap_reached",
    )
    cli = CliRunner().invoke(main, ["replay", record.trace_id, "--run", str(run)])
    assert cli.exit_code == 1
    assert f"differs at {equity_difference.field}" in cli.output
    assert "(why: a recorded input is not what the strategy read" in cli.output

    # A config.yaml that is not the run's is named as such.
    config = yaml.safe_load((run / "config.yaml").read_text())
    config["strategies"][0]["config"]["risk_per_trade"] = 0.02
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    results, _, _ = replay_decisions(run)
    s1 = [r for r in results if r.trace_id.startswith(S1)]
    assert s1[0].difference.field == "config.risk_per_trade"
    assert (s1[0].difference.recorded, s1[0].difference.replayed) == (0.01, 0.02)
    cli = CliRunner().invoke(main, ["replay", s1[0].trace_id, "--run", str(run)])
    assert cli.exit_code == 1
    assert "the run's config.yaml does not hold the config the strategy ran with" in cli.output


def test_a_changed_strategy_config_is_diffed_on_the_logged_inputs(full_stack_run):
    run = full_stack_run
    same = diff_decisions(run, {1: {"vwap_deviation_threshold": 2.0}})
    assert same and not any(c.changed for c in same)
    # S2 with half the notional cap: no entry grows or changes side (the cap binds on these
    # one-minute bars, so most entries shrink; some may fall below a lot).
    changes = diff_decisions(run, {1: {"max_notional_fraction": 0.5}})
    entries = [c for c in changes if c.recorded_action == "entry"]
    assert entries and all(c.strategy_id == S2 for c in changes)
    for change in entries:
        if change.new_action is None:
            assert change.new_reason == "skipped:size"
        else:
            assert change.new_side == change.recorded_side
            assert change.new_quantity <= change.recorded_quantity
    assert any(c.kind == "size" for c in entries)
    summary = summarise_decision_changes(changes)
    assert summary["changed"] == sum(c.changed for c in changes) > 0
    assert 0.0 < summary["mean_size_ratio"] <= 1.0
    # A stricter threshold drops the entries whose recorded |z| is below it.
    strict = diff_decisions(run, {1: {"vwap_deviation_threshold": 3.0, "full_size_deviation": 4.0}})
    z = {r.trace_id: abs(r.features["deviation_z"]) for r in _decisions(run) if r.strategy_id == S2}
    strict_entries = [c for c in strict if c.recorded_action == "entry"]
    assert any(z[c.trace_id] < 3.0 for c in strict_entries)
    for change in strict_entries:
        assert (change.new_reason == "no_signal") == (z[change.trace_id] < 3.0)
    cli = CliRunner().invoke(
        main,
        [
            "replay",
            "diff",
            "--run",
            str(run),
            "--set",
            "strategies[1].config.max_notional_fraction=0.5",
            "--json",
        ],
    )
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["strategies"]["summary"] == summary
    text = CliRunner().invoke(
        main,
        [
            "replay",
            "diff",
            "--run",
            str(run),
            "--set",
            "strategies[1].config.max_notional_fraction=0.5",
        ],
    )
    assert text.exit_code == 0, text.output
    assert f"{summary['changed']} of {len(changes)} strategy decisions differ" in text.output
    bad = CliRunner().invoke(
        main, ["replay", "diff", "--run", str(run), "--set", "strategies[7].config.x=1"]
    )
    assert bad.exit_code == 2 and "strategies[7]: the run has 4 strategies" in bad.output
