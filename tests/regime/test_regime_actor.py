"""The regime actor in real BacktestNodes: one record per bar before the bar, the same numbers as
``grodt regime infer``, forensics updates, and replay from the catalog without the actor."""

import itertools
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.backtest.node import BacktestNode
from regime_kit import RegimeRecorder

from grodt.core.errors import ConfigError
from grodt.core.records import RegimeUpdateRecord
from grodt.nodes.backtest import build_run_config
from models.regime.catalog_io import load_bars
from models.regime.catalog_io import read_regime_records
from models.regime.catalog_io import regime_records
from models.regime.catalog_io import replay_data_config
from models.regime.catalog_io import write_regime_records
from models.regime.walk_forward import run_walk_forward
from node_configs.loader import check_component
from node_configs.loader import load_yaml_document
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import ComponentSpec

REPO = Path(__file__).resolve().parents[2]
INSTRUMENT = "REG.TEST"
BAR_TYPE = "REG.TEST-1-MINUTE-LAST-EXTERNAL"
WALK_FORWARD = {
    "train_bars": 600,
    "min_train_bars": 400,
    "refit_every": 250,
    "n_init": 1,
    "n_iter": 50,
}
ACTOR = {"bar_types": [BAR_TYPE], "walk_forward": WALK_FORWARD}
RECORDER = {
    "path": f"{RegimeRecorder.__module__}:RegimeRecorder",
    "config": {"instrument_id": INSTRUMENT, "bar_type": BAR_TYPE},
}


def node_spec(data: list[dict], actors: list[dict]) -> BacktestNodeSpec:
    return BacktestNodeSpec.model_validate(
        {
            "name": "regime-test",
            "venues": [{"name": "TEST", "starting_balances": ["1000000 USD"]}],
            "data": data,
            "actors": actors,
            "strategies": [RECORDER],
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
    )


def run_node(spec: BacktestNodeSpec, catalog: Path) -> tuple[RegimeRecorder, list]:
    config = build_run_config(spec, catalog, quiet=True)
    node = BacktestNode(configs=[config])
    try:
        node.build()
        engine = node.get_engine(config.id)
        node.run()
        recorder = engine.trader.strategies()[0]
        actors = engine.trader.actors()
        return recorder, actors
    finally:
        node.dispose()


@pytest.fixture(scope="module")
def actor_run(regime_catalog, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("models")
    spec = node_spec(
        data=[{"bar_types": [BAR_TYPE]}],
        actors=[
            {
                "path": "actors.regime_actor:RegimeActor",
                "config": {**ACTOR, "model_dir": str(model_dir)},
            },
        ],
    )
    recorder, actors = run_node(spec, regime_catalog)
    return recorder, actors, model_dir


def test_one_record_per_bar_published_before_the_bar(actor_run):
    recorder, _, _ = actor_run
    events = recorder.events
    assert len(events) == 2 * 1500
    for regime, bar in zip(events[0::2], events[1::2], strict=True):
        assert regime[0] == "regime" and bar[0] == "bar"
        assert regime[1:3] == bar[1:3]  # ts_event and ts_init of the bar
        assert regime[3] == INSTRUMENT
        assert sum(regime[4:7]) == pytest.approx(1.0, abs=1e-12)


def test_actor_records_equal_the_offline_walk_forward(actor_run, regime_catalog):
    recorder, actors, _ = actor_run
    bars = load_bars(regime_catalog, BAR_TYPE)
    frame, _ = run_walk_forward(
        bars.close,
        bars.ts_event,
        actors[0].walk_forward,
        on_info=lambda _m: None,
    )
    records = [e for e in recorder.events if e[0] == "regime"]
    assert [r[1] for r in records] == frame["ts_event"].tolist()
    np.testing.assert_array_equal(
        np.array([r[4:7] for r in records]),
        frame[["p_bull", "p_bear", "p_sideways"]].to_numpy(),
    )
    assert [r[7] for r in records] == frame["most_likely"].tolist()
    assert [r[9] for r in records] == frame["model_version"].tolist()
    assert records[0][9] == "prior"
    assert len(set(frame["model_version"])) >= 4  # the prior and at least three fits


def test_forensics_updates_on_refits_and_label_changes_only(actor_run):
    recorder, actors, _ = actor_run
    updates = recorder.updates
    assert updates and all(isinstance(u, RegimeUpdateRecord) for u in updates)
    summary = actors[0].summary()[BAR_TYPE]
    reasons = [u.reason for u in updates]
    assert sum("fit" in r.split(",") or "refit" in r.split(",") for r in reasons) == summary["fits"]
    records = [e for e in recorder.events if e[0] == "regime"]
    label_changes = sum(a[7] != b[7] for a, b in itertools.pairwise(records))
    assert sum("label_change" in r for r in reasons) == label_changes
    assert len(updates) < len(records) / 5  # sampled, not per bar
    first = updates[0]
    assert first.component_id == "RegimeActor"
    assert first.model_versions["regime"].startswith("hmm-")
    assert first.instrument_id == INSTRUMENT
    assert len({u.trace_id for u in updates}) == len(updates)


def test_fitted_models_are_saved_with_their_versions(actor_run):
    _, actors, model_dir = actor_run
    saved = sorted(p.stem for p in (model_dir / INSTRUMENT).glob("*.json"))
    assert saved, f"no fitted model saved under {model_dir / INSTRUMENT}"
    assert saved == sorted(
        {f.version for f in actors[0].filters[actors[0].config.bar_types[0]].fits}
    )


def test_replayed_records_reach_a_strategy_exactly_as_the_actor_published_them(
    actor_run,
    regime_catalog,
    tmp_path,
):
    """Write the offline records into the catalog, replay them without the actor: the strategy
    sees identical records, in the same order relative to the bars."""
    recorder, actors, _ = actor_run
    bars = load_bars(regime_catalog, BAR_TYPE)
    frame, _ = run_walk_forward(
        bars.close,
        bars.ts_event,
        actors[0].walk_forward,
        on_info=lambda _m: None,
    )
    frame.insert(1, "ts_init", bars.ts_init)
    written = write_regime_records(regime_catalog, regime_records(frame, INSTRUMENT), INSTRUMENT)
    assert written == len(bars)
    stored = read_regime_records(regime_catalog, INSTRUMENT)
    assert [r.model_version for r in stored] == frame["model_version"].tolist()

    spec = node_spec(
        data=[replay_data_config(INSTRUMENT), {"bar_types": [BAR_TYPE]}],
        actors=[],
    )
    replayed, replay_actors = run_node(spec, regime_catalog)
    assert replay_actors == []
    assert replayed.events == recorder.events


def test_component_files_load_with_the_actor_config():
    for name in ("regime_spx.yaml", "regime_synthetic.yaml"):
        path = REPO / "node_configs" / "components" / "actors" / name
        check_component(ComponentSpec.model_validate(load_yaml_document(path)), "actors[0]", name)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            {"walk_forward": {**WALK_FORWARD, "train_bars": 100}},
            r"actors\[0\]\.config: train_bars: 100 is too few bars to fit",
        ),
        (
            {"walk_forward": {**WALK_FORWARD, "features": ["log_return", "nope:3"]}},
            r"features\[1\]: unknown feature kind 'nope'",
        ),
        ({"bar_types": [BAR_TYPE, BAR_TYPE]}, "one bar type per instrument"),
        ({"model": "/nonexistent/model.json"}, "model: /nonexistent/model.json is neither"),
        (
            {"walk_forward": {**WALK_FORWARD, "n_states": 0}},
            r"actors\[0\]\.config: n_states: must be at least 2, was 0",
        ),
    ],
)
def test_bad_actor_configs_fail_at_load_naming_the_field(override, message):
    component = ComponentSpec(path="actors.regime_actor:RegimeActor", config={**ACTOR, **override})
    with pytest.raises(ConfigError, match=message):
        check_component(component, "actors[0]", "node.yaml")
