"""Deterministic replay of the RL ensemble's decisions (``grodt.forensics.ensemble_replay``).

Specialists trained for a few PPO steps in the env run in a real BacktestNode (regime records
drifting between the labels, target orders on a margin account, numpy inference); every decision
of the run is recomputed from its record through the strategy's own functions and must be equal
bit for bit, in ``blend`` and ``hard`` mode; a tampered field is named.
"""

from pathlib import Path
from typing import Any

import pytest
from ensemble_kit import run_node

from grodt.core.errors import GrodtError
from grodt.forensics.ensemble_replay import replay_ensemble_decisions

STRATEGY_ID = "RLEnsembleStrategy-900"
LABELS = ("bull", "bear", "sideways")
OBS_0 = "observation[0]"


@pytest.fixture(scope="module")
def market(ensemble_market: dict[str, Any]) -> dict[str, Any]:
    return ensemble_market


@pytest.fixture(scope="module", params=["blend", "hard"])
def run(request: pytest.FixtureRequest, market, tmp_path_factory) -> tuple[Path, list[Any]]:
    strategy = {
        "blend_mode": request.param,
        "specialists": str(market["specialists"]),
        "feature_set": str(market["features_yaml"]),
    }
    return run_node(market, strategy, tmp_path_factory.mktemp(f"run-{request.param}"))


def test_every_decision_replays_bit_for_bit(run):
    directory, decisions = run
    policy = [d for d in decisions if d.specialist_actions]
    assert len(policy) >= 20, "the trained specialists should trade on most bars"
    # The run exercised what replay recomputes: entries, adjustments, both sides, regimes.
    assert {d.action for d in decisions} >= {"entry", "adjust"}
    assert len({d.regime_most_likely for d in policy}) >= 2
    assert len({round(d.blended_action, 9) for d in policy}) > 10
    results = replay_ensemble_decisions(directory, STRATEGY_ID, decisions)
    assert [r.trace_id for r in results] == [d.trace_id for d in decisions]
    unequal = [(r.trace_id, r.difference) for r in results if not r.equal]
    assert unequal == []
    assert {r.policy for r in results} == {decisions[0].blend_mode}


def _other(record: Any) -> str:
    """A regime label the record's blend did not weigh alone."""
    return next(label for label in LABELS if record.blend_weights[label] < 1.0)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (
            lambda d: {"observation": [d.observation[0] + 1e-6, *d.observation[1:]]},
            "observation[0]",
        ),
        (
            lambda d: {"features": {**d.features, "rsi_14": d.features["rsi_14"] + 1.0}},
            "observation[1]",
        ),
        (
            lambda d: {"specialist_actions": {**d.specialist_actions, "bear": 0.5}},
            "specialist_actions[bear]",
        ),
        (
            lambda d: {
                "regime_probabilities": {**dict.fromkeys(LABELS, 0.0), _other(d): 1.0},
                "regime_most_likely": _other(d),
            },
            "blend_weights[",
        ),
        (
            lambda d: {
                "sizing_inputs": {**d.sizing_inputs, "equity": d.sizing_inputs["equity"] * 2}
            },
            "features[full_quantity]",
        ),
        (
            lambda d: {"model_versions": {**d.model_versions, "specialists": "0123456789ab"}},
            "model_versions[specialists]",
        ),
    ],
)
def test_a_tampered_field_is_named(change, field, run):
    directory, decisions = run
    record = next(d for d in decisions if d.specialist_actions and d.action == "adjust")
    tampered = record.model_copy(update=change(record))
    (result,) = replay_ensemble_decisions(directory, STRATEGY_ID, [tampered])
    assert result.difference is not None
    assert result.difference.field.startswith(field)
    (clean,) = replay_ensemble_decisions(directory, STRATEGY_ID, [record])
    assert clean.equal


def test_unknown_strategy_and_old_records_are_errors(run):
    directory, decisions = run
    with pytest.raises(GrodtError, match=r"config\.yaml: no strategies.rl_ensemble.*'Other-1'"):
        replay_ensemble_decisions(directory, "Other-1", decisions)
    old = decisions[0].model_copy(update={"blend_mode": "", "observation": [], "sizing_inputs": {}})
    with pytest.raises(GrodtError, match="written before the RL ensemble recorded"):
        replay_ensemble_decisions(directory, STRATEGY_ID, [old])
