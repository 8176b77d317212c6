"""Replay pacing, the engine-idle wait and the latency probe."""

from pathlib import Path

import pytest
from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml

from grodt.nodes.latency import LatencyProbe
from grodt.nodes.live import LiveNode
from grodt.nodes.live import replay_client_config
from node_configs.live_schema import load_live_config

WINDOW = {"start": "2024-03-04T14:31:00Z", "end": "2024-03-04T14:51:00Z"}  # 21 bars


def _run(catalog, bar_types, tmp_path: Path, **replay) -> dict:
    document = paper_document(
        "pacing",
        [bar_types["AAA"]],
        [ema_cross("AAA.PAPER", bar_types["AAA"])],
        replay={**WINDOW, **replay},
    )
    spec = load_live_config(write_yaml(tmp_path / "pacing.yaml", document))
    return LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run().summary


def test_accelerated_pacing_follows_the_data_clock(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    summary = _run(catalog, bar_types, tmp_path, pacing="accelerated", speed=600)
    replay = summary["replay"]
    assert replay["records"] == replay["total"] == 21
    # 20 one-minute gaps at 600x: 2 s of wall time (a loaded machine may add a little).
    assert 1.9 <= replay["wall_seconds"] < 5.0


def test_gaps_are_capped(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    summary = _run(
        catalog, bar_types, tmp_path, pacing="accelerated", speed=600, max_gap_seconds=0.01
    )
    assert summary["replay"]["records"] == 21
    assert summary["replay"]["wall_seconds"] < 1.0


def test_realtime_pacing_runs_at_speed_one():
    document = paper_document(
        "rt", ["AAA.PAPER-1-MINUTE-LAST-EXTERNAL"], [], replay={"pacing": "realtime", "speed": 99}
    )
    from node_configs.live_schema import LiveNodeSpec

    spec = LiveNodeSpec.model_validate(document)
    config = replay_client_config(spec.replay, Path("/catalog"))
    assert config.speed == 1.0 and config.pacing == "realtime"


def test_lockstep_waits_for_idle_engines(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    summary = _run(catalog, bar_types, tmp_path, pacing="lockstep", idle_turns=3)
    replay = summary["replay"]
    # At least `idle_turns` quiet loop turns after each of the 21 records.
    assert replay["idle_loop_turns"] >= 3 * 21
    assert summary["stopped_by"] == "replay finished"


def test_latency_probe_is_bounded_and_attributes_orders():
    from nautilus_trader.model.identifiers import ClientOrderId

    probe = LatencyProbe(max_samples=100)
    bar = object()
    probe.on_arrival(bar)
    probe.on_dispatch(bar)
    for i in range(1_000):
        cid = ClientOrderId(f"O-{i}")
        # as on_order_initialized records it
        probe._orders[cid] = (
            probe._current_arrival_ns,
            probe._current_dispatch_ns,
            probe._current_dispatch_ns,
        )
        probe.on_submit(cid)
    summary = probe.summary()
    assert summary["count"] == 1_000 and summary["sampled"] == 100
    assert 0 < summary["p50_us"] <= summary["p99_us"] <= summary["max_us"]
    probe.on_submit(ClientOrderId("O-unknown"))
    assert probe.summary()["unattributed"] == 1


@pytest.mark.parametrize("pacing", ["lockstep", "accelerated"])
def test_every_order_reaching_the_venue_is_measured(minute_catalog, tmp_path: Path, pacing):
    catalog, bar_types = minute_catalog
    document = paper_document(
        "latency",
        [bar_types["AAA"]],
        [ema_cross("AAA.PAPER", bar_types["AAA"])],
        replay={"pacing": pacing, "speed": 60_000},
    )
    spec = load_live_config(write_yaml(tmp_path / "latency.yaml", document))
    summary = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run().summary
    latency = summary["latency"]
    assert summary["orders"] > 5
    assert latency["count"] == summary["orders"]
    assert latency["unattributed"] == 0
    assert 0 < latency["p50_us"] < 1_000_000
