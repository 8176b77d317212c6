"""Champion / challenger on real registries (SQLite and PostgreSQL): a challenger fitted on the
recent market is promoted through the gates; one fitted on a different market is refused on
performance, one badly calibrated on calibration; an allocation policy whose off-policy estimate
on the champion's logged allocation records beats the champion's realised value is promoted, a
worse one refused; every outcome is audited."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from lifecycle_kit import fit_on
from lifecycle_kit import small_config

from grodt.cli import main
from grodt.core.errors import GrodtError
from grodt.forensics.ope_logs import read_bandit_log
from grodt.forensics.ope_logs import write_records
from grodt.tracking.registry import register_model
from grodt.tracking.registry import resolve_model
from grodt.tracking.registry_gates import PolicyValueGate
from grodt.tracking.registry_gates import PromotionGates
from grodt.tracking.registry_gates import challenge
from grodt.tracking.registry_gates import regime_scorer
from grodt.tracking.registry_lifecycle import history
from models.regime.features import FeatureExtractor
from models.regime.features import parse_features
from research.ope.market_bandit import AllocationBandit
from research.ope.market_bandit import allocation_records
from research.ope.policies import LinearSoftmaxPolicy
from research.ope.policies import sample_actions


def latest_features(closes: np.ndarray, first: int) -> np.ndarray:
    """Feature rows of bars ``first``.. (computed causally over the whole series)."""
    features = FeatureExtractor(parse_features(small_config().features)).transform(closes)
    latest = features[first:]
    return latest[np.isfinite(latest).all(axis=1)]


def test_a_good_challenger_is_promoted_and_a_bad_one_refused(registry, market):
    champion = fit_on(market, 0, 600)
    register_model(champion, "regime_hmm", aliases=["champion"], filename="regime.json")
    # The latest window: bars 1000-1400, after every training window below.
    scorer = regime_scorer(latest_features(market, 1000))
    gates = PromotionGates(max_score_drop=0.1, max_calibration_error=0.1)

    # Refitted on everything up to the latest window (the champion's bars and 400 more).
    good = fit_on(market, 0, 1000, train_bars=950)
    register_model(good, "regime_hmm", aliases=["challenger"], filename="regime.json")
    decision = challenge("regime_hmm", scorer, gates, store=registry)
    assert decision.promoted, decision.reasons
    assert decision.champion == "regime_hmm/1" and decision.challenger == "regime_hmm/2"
    assert resolve_model("regime_hmm@champion", registry).version == "2"
    assert decision.figures["score_drop"] <= 0.1
    assert decision.figures["policy_estimate_evaluated"] == 0.0

    # A market three times as volatile, trending: its model mispredicts this one.
    rng = np.random.default_rng(3)
    other = 100.0 * np.exp(np.cumsum(rng.normal(0.002, 0.03, 900)))
    bad = fit_on(other, 0, 900)
    register_model(bad, "regime_hmm", aliases=["challenger"], filename="regime.json")
    refused = challenge("regime_hmm", scorer, gates, store=registry)
    assert not refused.promoted
    assert any(r.startswith("performance:") for r in refused.reasons)
    assert resolve_model("regime_hmm@champion", registry).version == "2"

    moves = history("regime_hmm", registry)
    assert [(m.action, m.to_version) for m in moves] == [
        ("promote", "2"),
        ("refuse", "3"),
    ]
    assert moves[0].details and "challenger.score" in moves[0].details


def test_a_badly_calibrated_challenger_is_refused_on_calibration(registry, market):
    register_model(fit_on(market, 0, 600), "regime_hmm", aliases=["champion"])
    register_model(fit_on(market, 0, 1000, train_bars=950), "regime_hmm", aliases=["challenger"])
    scorer = regime_scorer(latest_features(market, 1000))
    # The same challenger passes with a loose bound (above) and is refused with a tight one.
    strict = PromotionGates(max_score_drop=0.1, max_calibration_error=1e-6)
    refused = challenge("regime_hmm", scorer, strict, store=registry)
    assert not refused.promoted
    assert [r.split(":")[0] for r in refused.reasons] == ["calibration"]
    assert resolve_model("regime_hmm@champion", registry).version == "1"


# -- the policy-evaluation gate: allocation policies on logged decisions ----------------------

N_ROUNDS = 300
TRUE_COEF = np.array([[0.004, -0.004, 0.0], [0.0, 0.003, -0.003]])
"""Reward of action a at context x: x @ TRUE_COEF[:, a] + noise (returns per window)."""


def _policy(coef: np.ndarray, temperature: float) -> LinearSoftmaxPolicy:
    return LinearSoftmaxPolicy(coef=coef, temperature=temperature)


@pytest.fixture(scope="module")
def champion_log(tmp_path_factory):
    """The champion's allocation records (a near-uniform softmax bandit logging its choices)
    in a run's Parquet forensics, and the ground truth (every action's reward)."""
    rng = np.random.default_rng(11)
    context = rng.normal(size=(N_ROUNDS, 2))
    rewards = context @ TRUE_COEF + rng.normal(0.0, 0.002, size=(N_ROUNDS, 3))
    bandit = AllocationBandit(
        context=context,
        feature_names=("f_a", "f_b"),
        rewards=rewards,
        allocations=np.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]]),
        instruments=("X.SIM", "Y.SIM"),
        ts_event=(np.arange(N_ROUNDS, dtype=np.int64) + 1) * 86_400_000_000_000,
    )
    champion = _policy(0.2 * TRUE_COEF, temperature=0.01)  # weakly informed, explores a lot
    logging = champion.action_dist(context)
    action, _ = sample_actions(logging, random_state=3)
    run = tmp_path_factory.mktemp("champion-run") / "run"
    write_records(run, allocation_records(bandit, action, logging), session="0" * 19 + "-1")
    return {"run": run, "bandit": bandit, "champion": champion}


def test_the_policy_gate_promotes_a_better_policy_and_refuses_a_worse_one(registry, champion_log):
    bandit = champion_log["bandit"]
    register_model(champion_log["champion"], "meta_bandit", aliases=["champion"])
    log = read_bandit_log([champion_log["run"]])
    assert log.feature_names == ("f_a", "f_b") and log.n_rounds == N_ROUNDS - 1
    gate = PolicyValueGate(log=log, max_value_drop=0.0, min_effective_sample_size=20.0)
    good = _policy(TRUE_COEF, temperature=0.001)
    bad = _policy(-TRUE_COEF, temperature=0.001)
    realised = float(np.mean(log.reward))
    # Ground truth on the logged contexts: the good policy earns more than the champion did,
    # the bad one less.
    assert bandit.value(good.action_dist(bandit.context)) > realised
    assert bandit.value(bad.action_dist(bandit.context)) < realised

    register_model(good, "meta_bandit", aliases=["challenger"])
    promoted = challenge("meta_bandit", None, store=registry, policy=gate)
    assert promoted.promoted, promoted.reasons
    figures = promoted.figures
    assert figures["policy.realised"] == pytest.approx(realised)
    assert figures["policy.estimate"] > realised
    assert figures["policy.effective_sample_size"] >= 20.0
    assert figures["performance_evaluated"] == figures["calibration_evaluated"] == 0.0
    assert resolve_model("meta_bandit@champion", registry).version == "2"

    # The logged decisions are still the first champion's: a worse policy is refused on them.
    register_model(bad, "meta_bandit", aliases=["challenger"])
    refused = challenge("meta_bandit", None, store=registry, policy=gate)
    assert not refused.promoted
    assert refused.reasons[0].startswith("policy evaluation: challenger snips estimate")
    assert refused.figures["policy.estimate"] < realised
    assert resolve_model("meta_bandit@champion", registry).version == "2"

    # A policy the log cannot speak for (all its mass where the logger rarely went) is refused
    # on the effective sample size even when its estimate looks good.
    picky = PolicyValueGate(log=log, max_value_drop=1.0, min_effective_sample_size=N_ROUNDS)
    register_model(good, "meta_bandit", aliases=["challenger"])
    unsupported = challenge("meta_bandit", None, store=registry, policy=picky)
    assert not unsupported.promoted
    assert "effective sample size" in unsupported.reasons[0]

    moves = history("meta_bandit", registry)
    assert [(m.action, m.to_version) for m in moves] == [
        ("promote", "2"),
        ("refuse", "3"),
        ("refuse", "4"),
    ]
    assert moves[1].details and "policy.estimate" in moves[1].details

    with pytest.raises(GrodtError, match="no gate to run"):
        challenge("meta_bandit", None, store=registry)
    with pytest.raises(GrodtError, match="estimator: 'best'"):
        PolicyValueGate(log=log, estimator="best")


def test_models_challenge_cli_runs_the_policy_gate(sqlite_registry, champion_log):
    register_model(champion_log["champion"], "meta_bandit", aliases=["champion"])
    register_model(_policy(-TRUE_COEF, 0.001), "meta_bandit", aliases=["challenger"])
    args = ["models", "challenge", "meta_bandit", "--policy-log", str(champion_log["run"])]
    refused = CliRunner().invoke(main, [*args, "--estimator", "dr", "--json"])
    assert refused.exit_code == 1, refused.output
    verdict = json.loads(refused.output)
    assert verdict["promoted"] is False and verdict["figures"]["policy.value_drop"] > 0
    register_model(_policy(TRUE_COEF, 0.001), "meta_bandit", aliases=["challenger"])
    promoted = CliRunner().invoke(main, args)
    assert promoted.exit_code == 0, promoted.output
    assert "meta_bandit/3 promoted (champion was meta_bandit/1)" in promoted.output
