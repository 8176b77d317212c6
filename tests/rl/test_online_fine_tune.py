"""Online fine-tuning of the RL specialists (``retrain``: ``models.rl.online``) in a BacktestNode.

A tiny schedule (a 40-row window, a fine-tune every 25 rows, swapped in 2 rows after its window
ends) over the drifting daily market, in a BacktestNode and in the lockstep paper node (``grodt
parity``): fine-tunes run in each node's worker process and take over exactly at their scheduled
bars (whenever the worker finished: the swap waits), so both nodes make the same decisions; the
decision records show each switch, warm starts chain the sets, and every decision replays bit
for bit across the switches.
"""

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from ensemble_kit import decisions_of
from ensemble_kit import write_node

from grodt.cli import main as cli
from grodt.core.errors import ConfigError
from grodt.forensics.ensemble_replay import replay_ensemble_decisions
from grodt.nodes.parity import run_parity
from models.rl.online import FineTuneConfig
from models.rl.online import parameter_version
from models.rl.specialists import SpecialistSet
from node_configs.loader import load_backtest_config
from node_configs.model_refs import resolve_model_file

STRATEGY_ID = "RLEnsembleStrategy-900"
SCHEDULE = {
    "window": 40,
    "every": 25,
    "lag_bars": 2,
    "min_window": 30,
    "timesteps": 32,
    "episode_bars": 10,
    "stride": 5,
    "learning_rate": 0.003,
    "seed": 1,
}


def _strategy(market: dict[str, Any], directory: Path, **changes: Any) -> dict[str, Any]:
    directory.mkdir(parents=True, exist_ok=True)
    schedule = directory / "fine_tune.yaml"
    schedule.write_text(yaml.safe_dump({**SCHEDULE, "output": str(directory / "ft"), **changes}))
    return {
        "blend_mode": "blend",
        "specialists": str(market["specialists"]),
        "feature_set": str(market["features_yaml"]),
        "retrain": str(schedule),
    }


def _expected_swaps(market: dict[str, Any]) -> list[int]:
    """ts_event of the bars where fine-tunes take over: rows are the bars with every feature
    defined; fits at rows 30, 55, 80, ... (1-based), each in use from 2 rows later."""
    batch = market["batch"]
    defined = batch.notna().all(axis=1)
    rows = [int(ts.value) for ts, ok in zip(batch.index, defined, strict=True) if ok]
    lag = SCHEDULE["lag_bars"]
    fits = range(SCHEDULE["min_window"], len(rows) + 1, SCHEDULE["every"])
    return [rows[fit + lag - 1] for fit in fits if fit + lag <= len(rows)]


@pytest.fixture(scope="module")
def parity(ensemble_market, tmp_path_factory) -> tuple[Any, Path, Path]:
    """The schedule in a BacktestNode and in the lockstep paper node (``grodt parity``)."""
    directory = tmp_path_factory.mktemp("fine-tune-parity")
    path = write_node(_strategy(ensemble_market, directory), directory)
    catalog = ensemble_market["catalog"]
    report = run_parity(load_backtest_config(path), directory / "parity", catalog)
    return report, directory / "parity" / "backtest", directory / "parity" / "paper"


@pytest.fixture(scope="module")
def worker_run(parity) -> tuple[Path, list[Any]]:
    _, backtest, _ = parity
    return backtest, decisions_of(backtest)


def test_backtest_and_paper_node_switch_at_the_same_bars(parity):
    report, backtest, paper = parity
    assert report.identical, report.first_divergence
    in_backtest, in_paper = decisions_of(backtest), decisions_of(paper)

    def key(d: Any) -> tuple[Any, ...]:
        # Client order ids carry the node's clock (wall time in the paper node): left out.
        order = d.intended_order.model_copy(update={"client_order_id": None})
        return (d.ts_event, d.model_versions["specialists"], d.specialist_actions, order)

    assert [key(d) for d in in_paper] == [key(d) for d in in_backtest]
    assert len({d.model_versions["specialists"] for d in in_backtest}) >= 3


def test_fine_tunes_take_over_at_their_scheduled_bars(ensemble_market, worker_run):
    run, decisions = worker_run
    swaps = _expected_swaps(ensemble_market)
    assert len(swaps) >= 3
    policy = [d for d in decisions if d.specialist_actions]
    versions = [d.model_versions["specialists"] for d in policy]
    base = versions[0]
    assert not base.startswith("ft-")
    # The version of every decision is the one scheduled at its bar: the base set before the
    # first swap, the k-th fine-tune from its swap bar on.
    in_use = [np.searchsorted(swaps, d.ts_event, side="right") for d in policy]
    by_slot: dict[int, set[str]] = {}
    for slot, version in zip(in_use, versions, strict=True):
        by_slot.setdefault(int(slot), set()).add(version)
    assert all(len(v) == 1 for v in by_slot.values()), by_slot
    assert by_slot[0] == {base}
    fine_tuned = [next(iter(by_slot[k])) for k in sorted(by_slot) if k > 0]
    assert len(fine_tuned) >= 2 and len(set(fine_tuned)) == len(fine_tuned)
    assert all(v.startswith("ft-") for v in fine_tuned)
    # Warm start: each set was fine-tuned from the one before it.
    output = run.parent.parent / "ft"
    sources = [
        json.loads((output / v / "manifest.json").read_text())["extra"]["fine_tuned_from"]
        for v in fine_tuned
    ]
    assert sources[0] == str(ensemble_market["specialists"])
    assert [Path(s).name for s in sources[1:]] == fine_tuned[:-1]
    # The fine-tuned policies act differently from the base set on the same bars.
    assert any(d.specialist_actions != policy[0].specialist_actions for d in policy[1:])


def test_every_decision_replays_across_the_switches(worker_run):
    run, decisions = worker_run
    results = replay_ensemble_decisions(run, STRATEGY_ID, decisions)
    assert [(r.trace_id, r.difference) for r in results if not r.equal] == []
    assert len({d.model_versions["specialists"] for d in decisions}) >= 3


def test_a_bad_schedule_names_the_file_and_field(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**SCHEDULE, "every": 1}))
    with pytest.raises(ConfigError, match=r"bad\.yaml: lag_bars: must be below every=1"):
        FineTuneConfig.from_yaml(path)
    path.write_text(yaml.safe_dump({**SCHEDULE, "windw": 3}))
    with pytest.raises(ConfigError, match=r"bad\.yaml: windw: Extra inputs"):
        FineTuneConfig.from_yaml(path)


def test_fine_tuned_sets_register_as_challenger(worker_run):
    """``grodt rl fine-tuned --register`` lists the sets the run used and puts the last into a
    real (SQLite) registry as challenger, loadable by a node."""
    run, decisions = worker_run
    used = list(dict.fromkeys(d.model_versions["specialists"] for d in decisions))[1:]
    result = CliRunner().invoke(
        cli, ["rl", "fine-tuned", "--run", str(run), "--register", "rl_ft_test", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [row["version"] for row in rows] == used
    assert [row["registered"] is not None for row in rows] == [False] * (len(rows) - 1) + [True]
    assert rows[-1]["registered"].startswith("rl_ft_test/")
    challenger = resolve_model_file("rl_ft_test@challenger")
    assert parameter_version(SpecialistSet.load(challenger.path)) == used[-1]
