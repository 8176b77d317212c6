"""Champion / challenger on real registries (SQLite and PostgreSQL): a challenger fitted on the
recent market is promoted through the gates; one fitted on a different market is refused; both
outcomes are audited."""

import numpy as np
from lifecycle_kit import fit_on
from lifecycle_kit import small_config

from grodt.tracking.registry import register_model
from grodt.tracking.registry import resolve_model
from grodt.tracking.registry_gates import PromotionGates
from grodt.tracking.registry_gates import challenge
from grodt.tracking.registry_gates import regime_scorer
from grodt.tracking.registry_lifecycle import history
from models.regime.features import FeatureExtractor
from models.regime.features import parse_features


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

    # A policy-evaluation hook that prefers the champion blocks an otherwise good challenger.
    register_model(
        fit_on(market, 0, 1000, seed=1, train_bars=900), "regime_hmm", aliases=["challenger"]
    )
    blocked = challenge(
        "regime_hmm",
        scorer,
        gates,
        store=registry,
        policy_estimate=lambda loaded: 1.0 if loaded.version == "2" else 0.5,
    )
    assert not blocked.promoted
    assert any(r.startswith("policy evaluation:") for r in blocked.reasons)

    moves = history("regime_hmm", registry)
    assert [(m.action, m.to_version) for m in moves] == [
        ("promote", "2"),
        ("refuse", "3"),
        ("refuse", "4"),
    ]
    assert moves[0].details and "challenger.score" in moves[0].details
