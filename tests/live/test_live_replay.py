"""Replay pacing, the engine-idle wait and the latency probe."""

from pathlib import Path

import pytest
from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml
from nautilus_trader.model.identifiers import ClientOrderId

from grodt.nodes.adapters.paper import replay_client_config
from grodt.nodes.latency import LatencyProbe
from grodt.nodes.live import LiveNode
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
    # The node stops: an order sent now (closing a position in on_stop) stems from no record.
    probe.end_attribution()
    probe.on_order_initialized(_initialized("O-at-stop"))
    probe.on_submit(ClientOrderId("O-at-stop"))
    summary = probe.summary()
    assert summary["count"] == 1_000 and summary["at_stop"] == 1 and summary["unattributed"] == 1


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
    assert latency["count"] + latency["at_stop"] == summary["orders"]
    assert latency["unattributed"] == 0
    assert latency["p50_us"] > 0  # the figures: benchmarks/live_latency.py


def _initialized(client_order_id: str) -> object:
    from nautilus_trader.test_kit.stubs.execution import TestExecStubs

    order = TestExecStubs.market_order(client_order_id=ClientOrderId(client_order_id))
    return order.init_event


# -- review fixes -----------------------------------------------------------------------------


def test_a_slow_catalog_load_does_not_time_out_the_connection(
    minute_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """The replay reads its catalog when the node is built, not inside connect (where Nautilus'
    connection deadline is already running)."""
    import time

    from grodt.nodes.replay import ReplayDataClient

    original = ReplayDataClient.load

    def slow_load(self) -> None:
        if not self._records:
            time.sleep(1.0)  # a large replay
        original(self)

    monkeypatch.setattr(ReplayDataClient, "load", slow_load)
    catalog, bar_types = minute_catalog
    document = paper_document(
        "slow",
        [bar_types["AAA"]],
        [ema_cross("AAA.PAPER", bar_types["AAA"])],
        replay=WINDOW,
        timeouts={"connection": 0.5, "post_stop": 0.2, "disconnection": 2},
    )
    spec = load_live_config(write_yaml(tmp_path / "slow.yaml", document))
    summary = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run().summary
    assert summary["stopped_by"] == "replay finished"
    assert summary["replay"]["records"] == 21


def test_bar_requests_never_return_bars_the_node_has_not_dispatched(
    minute_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Accelerated replay queues records ahead of the data engine: a history request is answered
    up to the last bar dispatched to the strategies, not the last one queued."""
    from grodt.nodes.replay import ReplayDataClient

    answers: list[tuple[int, int]] = []  # (latest bar in the answer, latest bar dispatched)
    strategies: list = []
    original = ReplayDataClient._handle_bars

    def spy(self, bar_type, bars, *args) -> None:
        if bars:
            answers.append((bars[-1].ts_init, strategies[0].last_bar_ts))
        original(self, bar_type, bars, *args)

    monkeypatch.setattr(ReplayDataClient, "_handle_bars", spy)
    catalog, bar_types = minute_catalog
    probe = {
        "path": "live_kit_probes:ScriptProbe",
        "config": {
            "instrument_id": "AAA.PAPER",
            "bar_type": bar_types["AAA"],
            "request_every": 3,
        },
    }
    document = paper_document(
        "ahead",
        [bar_types["AAA"]],
        [probe],
        replay={"pacing": "accelerated", "speed": 1_000_000},  # every record due at once
    )
    spec = load_live_config(write_yaml(tmp_path / "ahead.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    strategies.extend(node.node.kernel.trader.strategies())
    summary = node.run().summary
    assert summary["replay"]["records"] == 400
    assert len(answers) > 50 and strategies[0].history_responses > 0
    ahead = [(answer, seen) for answer, seen in answers if answer > seen]
    assert ahead == []
    assert strategies[0].future_bars == 0
    assert node.replay.market_ts == node.replay.last_ts_init  # all dispatched at the end


def test_a_failed_replay_leaves_no_unretrieved_future(
    minute_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
):
    import gc
    import logging

    from grodt.core.errors import GrodtError
    from grodt.nodes.replay import ReplayDataClient

    original = ReplayDataClient._handle_data

    def failing(self, data) -> None:
        if self._position == 5:
            raise ValueError("corrupt record")
        original(self, data)

    monkeypatch.setattr(ReplayDataClient, "_handle_data", failing)
    catalog, bar_types = minute_catalog
    document = paper_document(
        "bad", [bar_types["AAA"]], [ema_cross("AAA.PAPER", bar_types["AAA"])], replay=WINDOW
    )
    spec = load_live_config(write_yaml(tmp_path / "bad.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        with pytest.raises(GrodtError, match="corrupt record"):
            node.run()
        assert node.replay.finished.done()
        # Nobody awaits `finished` when the replay task already failed: once the future is
        # collected, asyncio must have nothing to report.
        client = node.replay
        client.finished = None
        del node, client
        gc.collect()
    assert "exception was never retrieved" not in caplog.text
