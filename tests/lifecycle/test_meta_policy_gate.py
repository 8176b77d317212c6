"""The policy-value gate on a real meta-controller challenger (issue 19 §3), on real registries
(SQLite and PostgreSQL).

A BacktestNode runs S1 + S2 on the S&P 500 sample (2003-2004) with the meta-controller's
``predictive`` policy choosing among the allocation arms with exploration (ε = 0.3), so its
allocation records carry the propensity of each chosen arm. Challengers registered as
``meta_performance`` versions are evaluated on those records through replay: the run's own config
with the challenger as its model (loaded by the actor's loader), on the recorded inputs. The
champion's own model re-registered reproduces the logged distribution exactly (importance weights
1, the estimate equals the realised value) and is promoted; a model fitted on inverted labels is
refused on its estimate; a log without exploration (ε = 0) supports no challenger that chooses
differently, and the gate refuses it without an estimate; rounds inside a challenger's training
window are left out.
"""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from grodt.cli import main
from grodt.core.records import AllocationRecord
from grodt.forensics.ope_logs import read_bandit_log
from grodt.forensics.ope_logs import write_records
from grodt.forensics.reader import read_run
from grodt.forensics.replay import replay_allocations
from grodt.nodes.backtest import run_backtest
from grodt.tracking.registry import register_model
from grodt.tracking.registry import resolve_model
from grodt.tracking.registry_gates import PolicyValueGate
from grodt.tracking.registry_gates import challenge
from grodt.tracking.registry_gates import replayed_policy_action_dist
from grodt.tracking.registry_lifecycle import history
from models.meta import MetaModel
from node_configs.loader import load_backtest_document

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "meta"))

from meta_kit import meta_document
from meta_kit import small_model

NAME = "meta_performance"
TRAINED_UNTIL = "2002-12-31"
"""Every model's last training row: before the logged span (the estimates are out of sample)."""


def _run(catalog: Path, run_dir: Path, model: Path, exploration: float) -> Path:
    meta = {
        "policy": "predictive",
        "model": str(model),
        "predictive_actions": "arms",
        "predictive_exploration": exploration,
        "bandit_seed": 3,
    }
    document = meta_document(meta, start="2003-01-01", end="2004-12-31")
    spec = load_backtest_document(document, "meta_test")
    return run_backtest(spec, catalog, run_dir, document=document, quiet=True).run_dir


@pytest.fixture(scope="module")
def logged(sp500_catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The champion's model and two others, the champion's exploring run and a run without
    exploration."""
    root = tmp_path_factory.mktemp("meta-policy-gate")
    champion = small_model(root / "champion.json", trained_until=TRAINED_UNTIL)
    inverted = small_model(root / "inverted.json", trained_until=TRAINED_UNTIL, sharpe_effect=-0.02)
    recent = small_model(root / "recent.json", trained_until="2004-01-01", seed=2)
    return {
        "champion": champion,
        "inverted": inverted,
        "recent": recent,
        "exploring": _run(sp500_catalog, root / "exploring", root / "champion.json", 0.3),
        "greedy": _run(sp500_catalog, root / "greedy", root / "champion.json", 0.0),
    }


def _register(model: MetaModel, alias: str) -> str:
    return register_model(model, NAME, aliases=[alias], filename="meta_model.json").version


def _gate(run: Path, **margins: float) -> PolicyValueGate:
    return PolicyValueGate(
        log=read_bandit_log([run]),
        action_dist=replayed_policy_action_dist([run]),
        **margins,
    )


def test_the_logged_arms_carry_their_propensities_and_replay(logged):
    results, _ = replay_allocations(logged["exploring"])
    assert results and all(r.equal for r in results), next(r for r in results if not r.equal)
    log = read_bandit_log([logged["exploring"]])
    assert log.n_rounds > 80 and log.n_actions == 4  # static, equal, a tilt per strategy
    assert len(set(log.action.tolist())) == 4  # exploration reached every arm
    assert np.all(log.logging_action_dist >= 0.3 / 4 - 1e-12)
    assert set(log.pscore.round(12).tolist()) <= {0.075, 0.775}
    greedy = read_bandit_log([logged["greedy"]])
    assert np.all(greedy.pscore == 1.0) and np.all(greedy.logging_action_dist.max(axis=1) == 1.0)


def test_a_meta_challenger_is_gated_on_the_champions_logged_allocations(registry, logged):
    _register(logged["champion"], "champion")
    gate = _gate(logged["exploring"], max_value_drop=0.0, min_effective_sample_size=10.0)
    log = gate.log
    realised = float(np.mean(log.reward))

    # The champion's own model as the challenger: replay reproduces the logged distribution
    # bit for bit, so every importance weight is 1 and the estimate is the realised value.
    assert _register(logged["champion"], "challenger") == "2"
    same = challenge(NAME, None, store=registry, policy=gate)
    assert same.promoted, same.reasons
    assert same.figures["policy.estimate"] == realised == same.figures["policy.realised"]
    assert same.figures["policy.effective_sample_size"] == pytest.approx(log.n_rounds)
    assert same.figures["policy.unsupported_rounds"] == 0.0
    assert same.figures["policy.rounds_excluded"] == 0.0
    assert resolve_model(f"{NAME}@champion", registry).version == "2"

    # Fitted on inverted labels: it tilts towards the strategy with the worse trailing Sharpe.
    assert _register(logged["inverted"], "challenger") == "3"
    refused = challenge(NAME, None, store=registry, policy=gate)
    assert not refused.promoted
    assert refused.reasons[0].startswith("policy evaluation: challenger snips estimate")
    assert refused.figures["policy.estimate"] < realised
    assert refused.figures["policy.effective_sample_size"] >= 10.0
    assert resolve_model(f"{NAME}@champion", registry).version == "2"

    # Trained into the logged span: the rounds up to its last training row are left out.
    _register(logged["recent"], "challenger")
    recent = challenge(NAME, None, store=registry, policy=_gate(logged["exploring"]))
    in_sample = int(np.sum(log.ts_event <= logged["recent"].trained_until_ns))
    assert 0 < in_sample < log.n_rounds
    assert recent.figures["policy.rounds_excluded"] == in_sample
    assert recent.figures["policy.rounds"] == log.n_rounds - in_sample

    # Without exploration the log supports only the champion's own choices.
    greedy = _gate(logged["greedy"])
    _register(logged["inverted"], "challenger")
    unsupported = challenge(NAME, None, store=registry, policy=greedy)
    assert not unsupported.promoted
    assert unsupported.reasons[0].startswith("policy evaluation: the log has no support")
    assert np.isnan(unsupported.figures["policy.estimate"])
    assert unsupported.figures["policy.unsupported_rounds"] > 0

    assert [m.action for m in history(NAME, registry)] == [
        "promote",
        "refuse",
        recent.audit.action,
        "refuse",
    ]


def test_models_challenge_cli_gates_a_meta_challenger(sqlite_registry, logged):
    _register(logged["champion"], "champion")
    _register(logged["inverted"], "challenger")
    args = ["models", "challenge", NAME, "--policy-log", str(logged["exploring"]), "--json"]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code == 1, refused.output
    verdict = json.loads(refused.output)
    assert verdict["promoted"] is False and verdict["figures"]["policy.value_drop"] > 0
    # Judged on the upper end of the drop's 95% bootstrap interval: still refused.
    cautious = CliRunner().invoke(main, [*args, "--confidence", "0.95"])
    assert cautious.exit_code == 1, cautious.output
    figures = json.loads(cautious.output)["figures"]
    assert figures["policy.value_drop_upper"] > figures["policy.value_drop"] > 0
    # The champion's own model: the drop is 0 on every resample.
    _register(logged["champion"], "challenger")
    promoted = CliRunner().invoke(main, [*args, "--confidence", "0.95"])
    assert promoted.exit_code == 0, promoted.output
    figures = json.loads(promoted.output)["figures"]
    assert figures["policy.value_drop"] == figures["policy.value_drop_upper"] == 0.0


def test_a_log_without_propensities_is_refused_for_lack_of_support(
    sqlite_registry, logged, tmp_path
):
    # The continuous predictive policy's records: the same decisions without the arm's fields.
    records = [
        stored.record.model_copy(
            update={"action_index": None, "action_probabilities": [], "propensity": None}
        )
        for stored in read_run(logged["exploring"])
        if isinstance(stored.record, AllocationRecord)
    ]
    write_records(tmp_path / "continuous", records, session="0" * 19 + "-1")
    _register(logged["champion"], "champion")
    _register(logged["inverted"], "challenger")
    args = ["models", "challenge", NAME, "--policy-log", str(tmp_path / "continuous")]
    refused = CliRunner().invoke(main, args)
    assert refused.exit_code != 0
    assert "the log has no support for any other policy" in refused.output
    assert "no propensity (policy 'predictive')" in refused.output
