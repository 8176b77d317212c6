"""The meta-controller and the RL ensemble answer the monitors' requests on
``MODEL_CONTROL_TOPIC`` (``actors.strategy_monitor``'s message: action, reason, source, subject)
in a real BacktestNode: ``retrain`` makes their scheduled refit due at the next row, ``fallback``
puts them on their fallback (static weights; flat) until the next model swap or
``control_fallback_bars``; a request about another strategy is ignored. The records show it and
every decision replays bit for bit.

A tiny actor publishes the requests at chosen bars (as ``tests/meta/meta_kit.py`` does for change
points), so the test does not depend on a monitor's breach.
"""

import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId

from actors.meta_controller import MetaController
from actors.meta_controller import MetaControllerConfig
from grodt.cli import main as cli
from grodt.core.records import AllocationRecord
from grodt.forensics.ensemble_replay import replay_ensemble_decisions
from grodt.forensics.reader import read_run
from grodt.forensics.replay import replay_allocations
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_config
from node_configs.loader import load_backtest_document
from strategies.rl_ensemble import RLEnsembleStrategy
from strategies.rl_ensemble import RLEnsembleStrategyConfig

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "meta"))
sys.path.insert(0, str(TESTS / "rl"))

from ensemble_kit import build_market  # noqa: E402
from ensemble_kit import decisions_of  # noqa: E402
from ensemble_kit import node_document  # noqa: E402
from ensemble_kit import train_specialists  # noqa: E402
from meta_kit import S1  # noqa: E402
from meta_kit import S2  # noqa: E402
from meta_kit import meta_document  # noqa: E402
from meta_kit import small_model  # noqa: E402

SPX_BARS = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
RL_STRATEGY = "RLEnsembleStrategy-900"


def _injector(bar_type: str, requests: dict[int, list[str | None]]) -> dict[str, Any]:
    return {
        "path": "lifecycle_kit:ControlInjector",
        "config": {
            "bar_type": bar_type,
            "requests": requests,
            "component_id": "ControlInjector-001",
        },
    }


# -- the meta-controller ----------------------------------------------------------------------


def test_meta_controller_answers_fallback_and_retrain(sp500_catalog, tmp_path):
    model = small_model(tmp_path / "meta.json", trained_until="2003-06-30")
    # No scheduled refit ever (every 1000 rebalances): only the request makes one.
    retrain = {"window": 30, "every": 1000, "lag": 0, "min_child_samples": 10, "warm_trees": 5}
    document = meta_document(
        {
            "policy": "predictive",
            "model": str(tmp_path / "meta.json"),
            "retrain": retrain,
            "control_fallback_bars": 20,
        },
    )
    requests = {
        200: ["fallback", S1],  # until the retrained model takes over (before 20 bars pass)
        210: ["retrain", S2],
        300: ["fallback", None],  # no swap follows: 20 bars
        400: ["fallback", "SomeoneElse-001"],  # not a strategy it allocates: ignored
        410: ["retrain", "SomeoneElse-001"],
    }
    document["actors"] = [_injector(SPX_BARS, requests), *document["actors"]]
    spec = load_backtest_document(document, "meta_test")
    outcome = run_backtest(spec, sp500_catalog, tmp_path / "run", document=document, quiet=True)
    allocations = [
        s.record for s in read_run(outcome.run_dir) if isinstance(s.record, AllocationRecord)
    ]
    by_bar = {5 * (i + 1): r for i, r in enumerate(allocations)}
    controlled = sorted(b for b, r in by_bar.items() if r.fallback_reason.startswith("control"))
    # The injector's handler runs before the actor's on a bar: the fallback starts at its bar.
    # The first ends when the refit asked for at bar 210 takes over (the next rebalance, 210);
    # the second after 20 clock bars (bar 320 decides with the model again).
    assert controlled == [200, 205, 300, 305, 310, 315]
    for bar in controlled:
        record = by_bar[bar]
        assert record.policy == "static"
        assert record.weights == {S1: 0.2, S2: 0.5}
        assert record.fallback_reason.startswith("control_fallback: from ControlInjector-001: ")
    versions = [r.model_version for r in allocations if r.model_version]
    assert versions[0] == model.version_
    swaps = [b for b, r in by_bar.items() if r.model_version and r.model_version != model.version_]
    assert swaps and min(swaps) == 210 and by_bar[210].policy == "predictive"
    assert len(set(versions)) == 2  # the request about another strategy refitted nothing
    assert by_bar[320].policy == "predictive" and by_bar[400].fallback_reason == ""
    results, _ = replay_allocations(outcome.run_dir)
    assert len(results) == len(allocations)
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    assert any(r.model_control for r in allocations)
    replayed = CliRunner().invoke(cli, ["replay", "trace", "--all", "--run", str(outcome.run_dir)])
    assert replayed.exit_code == 0, replayed.output


def test_meta_controller_keeps_its_fallback_across_a_restart():
    """The fallback and its bar count are in the state a node saves and a restarted one
    loads."""
    config = MetaControllerConfig(
        bar_type=BarType.from_str(SPX_BARS),
        static_weights={S1: 0.2, S2: 0.5},
        control_fallback_bars=10,
    )
    before = MetaController(config)
    assert before.on_save() == {}
    before._on_model_control({"action": "fallback", "reason": "why", "source": "Monitor-1"})
    before._control_bars = 3
    after = MetaController(config)
    after.on_load(before.on_save())
    assert after._control_reason == "control_fallback: from Monitor-1: why"
    assert after._control_bars == 3


# -- the RL ensemble ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rl_market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("control-rl-market")
    market = build_market(root)
    market["specialists"] = train_specialists(market, root / "specialists", train_bars=80)
    return market


def test_rl_ensemble_answers_fallback_and_retrain(rl_market, tmp_path):
    schedule = tmp_path / "fine_tune.yaml"
    schedule.write_text(
        yaml.safe_dump(
            {
                "window": 40,
                "every": 1000,  # never on schedule: only the request fine-tunes
                "lag_bars": 1,
                "min_window": 30,
                "timesteps": 32,
                "episode_bars": 10,
                "stride": 5,
                "learning_rate": 0.003,
                "seed": 1,
                "worker": False,
                "output": str(tmp_path / "ft"),
            },
        ),
    )
    strategy = {
        "blend_mode": "blend",
        "specialists": str(rl_market["specialists"]),
        "feature_set": str(rl_market["features_yaml"]),
        "retrain": str(schedule),
        "control_fallback_bars": 10,
    }
    document = node_document(strategy)
    requests = {
        55: ["fallback", RL_STRATEGY],  # until the fine-tune asked for at bar 60 takes over
        60: ["retrain", None],
        90: ["fallback", RL_STRATEGY],  # no swap follows: 10 bars
        110: ["fallback", "S1VwapEmaScalper-001"],  # another strategy's: ignored
    }
    document["actors"] = [_injector("SYN.XNAS-1-DAY-LAST-EXTERNAL", requests)]
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    run = tmp_path / "run"
    run_backtest(load_backtest_config(path), rl_market["catalog"], run, quiet=True)
    decisions = decisions_of(run)
    stamps = rl_market["stamps"]
    bar_of = {ts: i + 1 for i, ts in enumerate(stamps)}
    controlled = [d for d in decisions if d.features.get("control_fallback") == 1.0]
    assert controlled, "the fallback should have steered at least one decision"
    for d in controlled:
        # Flat: the specialists still ran (recorded), the decided action is 0.
        assert d.specialist_actions and d.blended_action == 0.0
        assert d.action == "exit"
        bar = bar_of[d.ts_event]
        assert 55 <= bar < 62 or 90 <= bar < 100
    # The fine-tune asked for at bar 60 is due at the next row and takes over one row later.
    versions = [d.model_versions["specialists"] for d in decisions]
    base = versions[0]
    fine_tuned = sorted({v for v in versions if v != base})
    assert len(fine_tuned) == 1 and fine_tuned[0].startswith("ft-")
    first = min(bar_of[d.ts_event] for d in decisions if d.model_versions["specialists"] != base)
    assert 61 <= first <= 70
    # After each fallback ends the policy trades again (not flat on every decision).
    later = [d for d in decisions if bar_of[d.ts_event] >= 100]
    assert any(d.blended_action not in (None, 0.0) for d in later)
    results = replay_ensemble_decisions(run, RL_STRATEGY, decisions)
    unequal = [(r.trace_id, r.difference) for r in results if not r.equal]
    assert unequal == []
    replayed = CliRunner().invoke(cli, ["replay", "trace", "--all", "--run", str(run)])
    assert replayed.exit_code == 0, replayed.output


def test_rl_ensemble_keeps_its_fallback_across_a_restart():
    """The fallback and its bar count are in the state a node saves (``on_save``) and a
    restarted node loads (``on_load``); the remaining bars still end it."""
    config = RLEnsembleStrategyConfig(
        instrument_id=InstrumentId.from_str("SYN.XNAS"),
        bar_type=BarType.from_str("SYN.XNAS-1-DAY-LAST-EXTERNAL"),
        blend_mode="scripted",
        scripted_actions=[0.5],
        control_fallback_bars=10,
    )
    before = RLEnsembleStrategy(config)
    request = {"action": "fallback", "reason": "why", "source": "Monitor-1", "subject": None}
    before._on_model_control(request)
    before._count_control_bar()
    after = RLEnsembleStrategy(config)
    after.on_load(before.on_save())
    assert after.features()["control_fallback"] == 1.0
    for _ in range(8):
        after._count_control_bar()
    assert after.features()["control_fallback"] == 1.0
    after._count_control_bar()  # the 10th bar since the request
    assert "control_fallback" not in after.features()
