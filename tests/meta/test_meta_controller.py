"""The meta-controller actor in real BacktestNodes on the S&P 500 sample: its allocations reach
the strategies and change their sizes, one audited record per rebalance, the fallback when the
model is missing, a trained model's allocations within their bounds, the bandit's propensities,
and bad configs named."""

import json
from itertools import pairwise
from pathlib import Path

import pytest
from click.testing import CliRunner
from meta_kit import S1
from meta_kit import S2
from meta_kit import injector_actor
from meta_kit import meta_document
from meta_kit import small_model

from grodt.cli import main
from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.forensics.reader import read_run
from grodt.forensics.replay import replay_allocations
from grodt.nodes.backtest import run_backtest
from grodt.tracking.registry_lifecycle import list_versions
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_document


def _run(catalog: Path, run_dir: Path, meta: dict | None, before: list | None = None, **span: str):
    document = meta_document(meta, **span)
    document["actors"] = [*(before or []), *document.get("actors", [])]
    spec = load_backtest_document(document, "meta_test")
    outcome = run_backtest(spec, catalog, run_dir, document=document, quiet=True)
    records = [stored.record for stored in read_run(outcome.run_dir)]
    allocations = [r for r in records if isinstance(r, AllocationRecord)]
    decisions = [r for r in records if isinstance(r, DecisionRecord)]
    return outcome, allocations, decisions


def _entries(decisions: list[DecisionRecord], strategy_id: str) -> dict[int, DecisionRecord]:
    return {
        d.ts_event: d for d in decisions if d.strategy_id == strategy_id and d.action == "entry"
    }


def test_static_allocations_reach_the_strategies_and_change_their_sizes(sp500_catalog, tmp_path):
    _, none, plain = _run(sp500_catalog, tmp_path / "plain", None)
    assert none == []
    _, allocations, decisions = _run(sp500_catalog, tmp_path / "static", {"policy": "static"})
    # One record per rebalance (every 5 of ~500 bars), each naming the weights before and after.
    assert 90 <= len(allocations) <= 110
    first, later = allocations[0], allocations[-1]
    assert first.weights == {S1: 0.2, S2: 0.5}
    assert first.fallback_reason == "warming_up" and first.realised_return is None
    assert later.policy == "static" and later.fallback_reason == ""
    assert later.previous_weights == later.weights
    assert later.realised_return is not None
    assert {f"{S1}:sharpe", f"{S2}:turnover", "p_bull", "market_volatility"} <= set(later.context)
    assert f"{S2}:realised_return" in later.context
    # The strategies size with the published weight (YAML says 1.0).
    with_meta = _entries(decisions, S2)
    without = _entries(plain, S2)
    after_first = [t for t in with_meta if t > first.ts_event and t in without]
    assert after_first, "S2 must enter at least once after the first rebalance"
    for ts in after_first[:3]:
        assert with_meta[ts].allocation_weight == 0.5
        assert without[ts].allocation_weight == 1.0
        meta_qty = float(with_meta[ts].intended_order.quantity)
        plain_qty = float(without[ts].intended_order.quantity)
        assert 0.35 < meta_qty / plain_qty < 0.65
        assert with_meta[ts].model_versions["allocation"] == "static"
        assert with_meta[ts].allocation_trace_id.startswith("MetaController")
        assert without[ts].allocation_trace_id == ""


def test_predictive_without_its_model_falls_back_to_static(sp500_catalog, tmp_path):
    missing = tmp_path / "nowhere" / "model.json"
    _, allocations, _ = _run(
        sp500_catalog,
        tmp_path / "run",
        {"policy": "predictive", "model": str(missing)},
    )
    after_warm_up = [r for r in allocations if r.fallback_reason != "warming_up"]
    assert after_warm_up
    for record in after_warm_up:
        assert record.policy == "static"
        assert record.fallback_reason == f"model_missing: {missing} does not exist"
        assert record.weights == {S1: 0.2, S2: 0.5}


def test_a_model_that_fails_on_the_engine_thread_falls_back_and_the_run_goes_on(
    sp500_catalog, tmp_path
):
    # The file loads and names the actor's features, but its boosters want 5 columns.
    small_model(tmp_path / "broken.json", trained_until="2003-06-30", n_fitted_features=5)
    outcome, allocations, _ = _run(
        sp500_catalog,
        tmp_path / "run",
        {"policy": "predictive", "model": str(tmp_path / "broken.json")},
        end="2003-12-31",
    )
    errors = [r for r in allocations if r.fallback_reason.startswith("policy_error: ValueError")]
    assert errors and all(r.weights == {S1: 0.2, S2: 0.5} for r in errors)
    assert "x must be (n_rows, 5)" in errors[0].fallback_reason
    assert outcome.summary["bars_processed"] > 200  # the node ran to the end


def test_predictive_allocations_stay_in_their_bounds_and_are_audited(sp500_catalog, tmp_path):
    model = small_model(tmp_path / "meta.json", trained_until="2004-06-30")
    outcome, allocations, decisions = _run(
        sp500_catalog,
        tmp_path / "run",
        {
            "policy": "predictive",
            "model": str(tmp_path / "meta.json"),
            "max_model_age_days": 90,
            "max_step": 0.05,
        },
    )
    predictive = [r for r in allocations if r.policy == "predictive"]
    assert len(predictive) > 40
    for previous, record in pairwise(allocations):
        assert record.previous_weights == previous.weights
        weights = list(record.weights.values())
        assert sum(weights) <= 1.0 + 1e-9
        if record.policy == "predictive":
            assert record.model_version == model.version_
            assert set(record.quantiles) == {S1, S2}
            q = record.quantiles[S1]
            assert q["q10"] <= q["q50"] <= q["q90"]
            for name, weight in record.weights.items():
                step = abs(weight - record.previous_weights[name])
                assert step <= 0.05 + 1e-9
                if weight > 0 and weight not in (0.2, 0.5):
                    assert weight >= 0.1 - 0.05 - 1e-9 and weight <= 0.6 + 1e-9
    assert any(r.weights != {S1: 0.2, S2: 0.5} for r in predictive), "the model moved nothing"
    # Stale 90 days after the model's last training row: static again, with the reason.
    stale = [r for r in allocations if r.fallback_reason == "stale_model"]
    assert stale and stale[0].ts_event > predictive[0].ts_event
    # A strategy decides with the weight (and the version) of the last allocation before it.
    published = {(r.ts_event, name): w for r in allocations for name, w in r.weights.items()}
    traces = {r.ts_event: r.trace_id for r in allocations}
    model_entries = [d for d in decisions if d.model_versions.get("allocation") == model.version_]
    assert model_entries
    for d in model_entries:
        last = max(t for (t, name) in published if name == d.strategy_id and t <= d.ts_event)
        assert d.allocation_weight == pytest.approx(published[(last, d.strategy_id)])
        assert d.allocation_trace_id == traces[last]
    # Every decision replays bit for bit from the records (the correlation the allocator used,
    # the coverage monitor rebuilt from the recorded intervals and outcomes) and the model file.
    assert all(len(r.correlation) == 2 for r in predictive)
    assert predictive[-1].calibration_outcomes > 0
    results, _ = replay_allocations(outcome.run_dir)
    assert [r.trace_id for r in results] == [r.trace_id for r in allocations]
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    # Another model is refused by name, not replayed into differences.
    small_model(tmp_path / "meta.json", trained_until="2004-06-30", seed=1)
    with pytest.raises(GrodtError, match=f"decided by model {model.version_}"):
        replay_allocations(outcome.run_dir)


def test_online_retraining_switches_models_at_rebalance_boundaries(sp500_catalog, tmp_path):
    # Refits every 12 rebalances on the last 30, in a worker process, each taking over one
    # rebalance later; warm-started from the configured model (LightGBM continued training).
    model = small_model(tmp_path / "meta.json", trained_until="2003-06-30")
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    retrain = {
        "window": 30,
        "every": 12,
        "lag": 1,
        "min_child_samples": 10,
        "warm_trees": 5,
        "register_as": "meta_online_test",
        "tracking_uri": store,
    }
    outcome, allocations, _ = _run(
        sp500_catalog,
        tmp_path / "run",
        {"policy": "predictive", "model": str(tmp_path / "meta.json"), "retrain": retrain},
    )
    predictive = [r for r in allocations if r.policy == "predictive"]
    versions = list(dict.fromkeys(r.model_version for r in predictive))
    assert versions[0] == model.version_ and len(versions) >= 4
    # A version takes over at a rebalance and stays until the next switch.
    changes = [
        i for i, (a, b) in enumerate(pairwise(predictive)) if a.model_version != b.model_version
    ]
    assert len(changes) == len(versions) - 1
    assert all(b - a >= 12 for a, b in pairwise(changes))
    # Not stale: each refit's trained_until is its last training window's end.
    assert not [r for r in allocations if r.fallback_reason == "stale_model"]
    # Replay refits synchronously and switches at the same rebalances: equal bit for bit, so
    # the switch does not depend on when the worker finished.
    results, _ = replay_allocations(outcome.run_dir)
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    # Each retrained version that took over is in the registry (a real SQLite store), the last
    # one as challenger; the replay registered nothing more.
    registered = list_versions("meta_online_test", store=resolve_store(store))
    assert sorted(v.model_version for v in registered) == sorted(versions[1:])
    newest = max(registered, key=lambda v: int(v.version))
    assert newest.aliases == ("challenger",) and newest.model_version == versions[-1]


def test_bandit_logs_its_propensities(sp500_catalog, tmp_path):
    _, allocations, _ = _run(
        sp500_catalog,
        tmp_path / "run",
        {"policy": "bandit", "bandit_seed": 7, "bandit_exploration": 0.05},
    )
    bandit = [r for r in allocations if r.policy == "bandit"]
    assert len(bandit) > 40
    indexes = {r.action_index for r in bandit}
    assert len(indexes) > 1
    for record in bandit:
        assert record.propensity == record.action_probabilities[record.action_index]
        assert sum(record.action_probabilities) == pytest.approx(1.0)
        assert len(record.action_probabilities) == 4  # static, equal, one tilt per strategy
        assert min(record.action_probabilities) >= 0.05 / 4 - 1e-12


def test_a_change_point_freezes_exploration_and_replays_bit_for_bit(sp500_catalog, tmp_path):
    # Change points at bar 150 of the regime instrument (frozen for 15 bars: the rebalances at
    # bars 150, 155, 160) and at bar 300 of another instrument (ignored).
    outcome, allocations, _ = _run(
        sp500_catalog,
        tmp_path / "run",
        {
            "policy": "bandit",
            "bandit_seed": 7,
            "bandit_exploration": 0.05,
            "exploration_freeze_bars": 15,
        },
        before=[injector_actor([150]), injector_actor([300], instrument_id="AAPL.XNAS")],
    )
    changepoints = [
        r
        for r in (s.record for s in read_run(outcome.run_dir))
        if isinstance(r, RegimeUpdateRecord)
    ]
    assert [r.instrument_id for r in changepoints] == ["SPX.SAMPLE", "AAPL.XNAS"]
    frozen_at = [5 * (i + 1) for i, r in enumerate(allocations) if r.exploration_frozen]
    assert frozen_at == [150, 155, 160]
    for i, record in enumerate(allocations):
        bar = 5 * (i + 1)
        if bar < 150:
            assert record.bars_since_changepoint is None and record.changepoint_trace_id == ""
        else:
            assert record.bars_since_changepoint == bar - 150
            assert record.changepoint_trace_id == changepoints[0].trace_id
        if record.policy != "bandit":
            continue
        if record.exploration_frozen:
            # Greedy on the posterior mean: the distribution it acted on is one-hot.
            assert record.propensity == 1.0
            assert sorted(record.action_probabilities) == [0.0, 0.0, 0.0, 1.0]
        else:
            assert min(record.action_probabilities) >= 0.05 / 4 - 1e-12
    # The freeze is derived from the records: every decision replays bit for bit.
    results, _ = replay_allocations(outcome.run_dir)
    assert len(results) == len(allocations)
    assert all(r.equal for r in results), next(r for r in results if not r.equal)
    # Off-policy evaluation of the uniform policy on this log: the frozen rounds never take three
    # of the four actions, and the overlap warning says so.
    policy = tmp_path / "uniform.yaml"
    policy.write_text("kind: uniform\n")
    arguments = ["ope", "evaluate", "--run", str(outcome.run_dir), "--policy", str(policy)]
    report = CliRunner().invoke(main, [*arguments, "--json", "--n-bootstrap", "20"])
    assert report.exit_code == 0, report.output
    overlap = json.loads(report.output)
    assert overlap["unsupported_share"] > 0
    assert any("actions the logger never takes" in w for w in overlap["warnings"])


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"static_weights": {S1: 0.7, S2: 0.5}}, r"static_weights: the weights sum to 1\.2"),
        ({"min_allocation": 0.7}, r"min_allocation \(0\.7\) ≤ max_allocation"),
        ({"policy": "greedy"}, r"actors\[0\]\.config\.policy"),
        ({"rebalance_every": 0}, r"actors\[0\]\.config\.rebalance_every"),
        ({"performance_window": 2}, r"performance_window: 2 bars are too few"),
        ({"bandit_exploration": 1.5}, r"bandit_exploration: 1\.5 is not in \[0, 1\]"),
        ({"exploration_freeze_bars": -1}, r"actors\[0\]\.config\.exploration_freeze_bars"),
        ({"predictive_actions": "discrete"}, r"actors\[0\]\.config\.predictive_actions"),
        ({"predictive_exploration": 1.5}, r"predictive_exploration: 1\.5 is not in \[0, 1\]"),
        ({"predictive_exploration": 0.1}, r"predictive_exploration: needs predictive_actions"),
        ({"retrain": {"every": 2, "lag": 2}}, r"retrain\.lag_bars: must be below every=2"),
    ],
)
def test_bad_meta_controller_configs_name_the_field(config, message):
    with pytest.raises(ConfigError, match=message) as error:
        load_backtest_document(meta_document(config), "meta_test")
    assert "actors[0]" in str(error.value)
