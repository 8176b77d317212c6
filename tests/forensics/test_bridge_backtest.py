"""The bridge in real BacktestNode runs: round trip through a Kafka-protocol broker, the broker
killed and restarted mid-run, the connection cut mid-run, and the Parquet default with the risk
gate: one decision per order and every trace joined."""

import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
import pytest
from forensics_kit import HOOKS
from forensics_kit import RECORDED
from forensics_kit import BackgroundConsumer
from forensics_kit import Consumed
from forensics_kit import consume_all
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderInitialized

from actors.forensics.config import TopicNames
from actors.forensics.convert import encode_order_event
from actors.forensics.convert import encode_position_event
from actors.forensics.convert import order_event_record
from actors.forensics.convert import position_event_record
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.pipeline import active_pipelines
from grodt.core.records import DecisionRecord
from grodt.core.records import OrderEventRecord
from grodt.core.records import PositionEventRecord
from grodt.core.records import record_to_json
from grodt.core.records import trace_id_from_tags
from grodt.core.settings import get_settings
from grodt.forensics.reader import read_run
from grodt.forensics.trace import build_traces
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.forensics import BAR_TYPE
from grodt.test_kit.forensics import PUBLISHED
from grodt.test_kit.forensics import node_document
from grodt.test_kit.forensics import traced_cross
from grodt.test_kit.tansu import TansuBroker
from node_configs.schema import BacktestNodeSpec

pytestmark = pytest.mark.slow

TOPICS = TopicNames()
ALL_TOPICS = list(TOPICS.model_dump().values())


def newest_pipeline() -> ForensicsPipeline:
    """The bridge pipeline of the run in progress (sessions sort by start time)."""
    return max(active_pipelines(), key=lambda p: p.session)


def run(document: dict, catalog: Path, run_dir: Path) -> dict:
    spec = BacktestNodeSpec.model_validate(document)
    return run_backtest(spec, catalog, run_dir, quiet=True).summary


def recorder(tag: str) -> dict:
    return {"path": "forensics_kit:EventRecorder", "config": {"run_tag": tag}}


def fault_injector(schedule: dict[int, str]) -> dict:
    return {
        "path": "forensics_kit:FaultInjector",
        "config": {"bar_type": BAR_TYPE, "schedule": schedule},
    }


def expected_wire(tag: str) -> dict[str, list]:
    """What the run published, per destination topic, in publication order: the strategy's
    records as wire JSON, and (event type, client order id, trace id) of every engine event."""
    by_topic: dict[str, list] = defaultdict(list)
    topic_of = {
        "decision": TOPICS.decisions,
        "allocation": TOPICS.allocations,
        "regime_update": TOPICS.regime,
    }
    for record in PUBLISHED[tag]:
        by_topic[topic_of[record.record_type]].append(record_to_json(record))
    traces: dict[str, str] = {}
    last_fill: dict[str, str] = {}
    for event in RECORDED[tag]:
        if isinstance(event, OrderEvent):
            order_id = event.client_order_id.value
            if isinstance(event, OrderInitialized):
                traces[order_id] = trace_id_from_tags(event.tags) or ""
            if type(event).__name__ == "OrderFilled":
                last_fill[event.position_id.value] = order_id
            by_topic[TOPICS.orders].append((type(event).__name__, order_id, traces[order_id]))
        else:
            order_id = last_fill[event.position_id.value]
            by_topic[TOPICS.positions].append((type(event).__name__, order_id, traces[order_id]))
    return by_topic


def actual_wire(messages: list[Consumed]) -> dict[str, list]:
    by_topic: dict[str, list] = defaultdict(list)
    for message in sorted(messages, key=lambda m: m.seq):
        record = message.record()
        if isinstance(record, OrderEventRecord | PositionEventRecord):
            item = (record.event_type, record.client_order_id, record.trace_id)
        else:
            item = record_to_json(record)
        by_topic[message.topic].append(item)
    return by_topic


def assert_exactly_once_in_order(messages: list[Consumed], enqueued: int) -> None:
    """Every record once (no duplicate identity), and seq increasing along every key."""
    identities = [(m.session, m.seq) for m in messages]
    assert len(set(identities)) == len(identities), "a record arrived twice"
    assert sorted(m.seq for m in messages) == list(range(1, enqueued + 1)), "records missing"
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for message in messages:  # consumption order within each partition
        by_key[(message.topic, message.key)].append(message.seq)
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"order broken for {key}"


def test_kafka_round_trip_is_exact(
    broker: TansuBroker,
    catalog: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The operator's way: GRODT_KAFKA_BOOTSTRAP turns the embedded default into Kafka.
    monkeypatch.setenv("GRODT_KAFKA_BOOTSTRAP", broker.bootstrap)
    get_settings.cache_clear()
    try:
        document = node_document(
            "round_trip",
            [traced_cross("round_trip")],
            actors=[recorder("round_trip")],
            forensics={"stall_timeout_s": 60.0},  # no false outage on a loaded machine
        )
        summary = run(document, catalog, tmp_path / "run")
    finally:
        monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP")
        get_settings.cache_clear()
    figures = summary["extensions"]["forensics"]
    assert figures["output"]["sink"] == "kafka"
    expected = expected_wire("round_trip")
    total = sum(len(v) for v in expected.values())
    assert figures["enqueued"] == figures["delivered"] == total
    assert figures["spilled"] == figures["failed"] == figures["rejected"] == 0
    assert len(expected[TOPICS.decisions]) == summary["orders"] > 50

    messages = consume_all(broker.bootstrap, ALL_TOPICS, total)
    assert len(messages) == total
    assert_exactly_once_in_order(messages, total)
    assert actual_wire(messages) == expected
    # Keys: strategy/instrument; every order event carries its decision's trace id.
    assert {m.key for m in messages if m.topic == TOPICS.orders} == {"TracedCross-000/TEST.SIM"}
    assert all(item[2] for item in expected[TOPICS.orders])


def test_broker_killed_and_restarted_mid_run_loses_and_repeats_nothing(
    broker: TansuBroker,
    catalog: Path,
    tmp_path: Path,
) -> None:
    """SIGKILL the broker a third into the run and restart it two thirds in.

    The broker is in-memory: a restarted one is empty, and records it acknowledged but nobody
    read are gone with it (a real cluster keeps them). So the kill waits until the bridge has
    nothing in flight and the first consumer has read everything acknowledged; what the engine
    publishes next meets a dead broker, then a new broker that does not know the producer id.
    A second consumer reads the new broker from the start. Together they must hold every record
    exactly once, in order per key."""
    first = BackgroundConsumer(broker.bootstrap, ALL_TOPICS).__enter__()
    seen: dict[str, object] = {}

    def kill() -> None:
        pipeline = newest_pipeline()
        deadline = time.monotonic() + 120
        while True:
            stats = pipeline.stats()
            quiet = stats.queued == stats.in_flight == stats.spill_pending == 0
            if quiet and first.count() == stats.delivered:
                break
            assert time.monotonic() < deadline, f"the bridge never went quiet: {stats}"
            time.sleep(0.02)
        seen["before_kill"] = pipeline.stats()
        first.stop()
        broker.stop()
        # The bridge notices the outage while the engine waits (about a second on a quiet
        # machine; waited for, not slept: under load it took longer and nothing was spilled).
        deadline = time.monotonic() + 60
        while not pipeline.stats().sink_state.startswith("down"):
            assert time.monotonic() < deadline, f"the outage went unnoticed: {pipeline.stats()}"
            time.sleep(0.05)

    def restart() -> None:
        seen["during_outage"] = newest_pipeline().stats()
        broker.start()

    HOOKS.update(kill=kill, restart=restart)
    document = node_document(
        "broker_restart",
        [traced_cross("broker_restart")],
        actors=[fault_injector({1_000: "kill", 2_000: "restart"})],
        forensics={
            "kafka": {"bootstrap_servers": broker.bootstrap},
            "stall_timeout_s": 1.5,
            "reconnect_interval_s": 0.2,
            "flush_timeout_s": 90.0,
        },
    )
    figures = run(document, catalog, tmp_path / "run")["extensions"]["forensics"]
    before = seen["before_kill"]
    assert before.delivered > 100  # type: ignore[attr-defined]
    assert seen["during_outage"].delivered == before.delivered  # type: ignore[attr-defined]
    assert figures["enqueued"] == figures["delivered"] > len(PUBLISHED["broker_restart"])
    assert figures["undelivered"] == 0 and figures["rejected"] == 0
    assert figures["spilled"] > 0 and figures["replayed"] == figures["spilled"]

    after = consume_all(broker.bootstrap, ALL_TOPICS, figures["enqueued"] - len(first.messages))
    assert all(m.seq > before.delivered for m in after)  # type: ignore[attr-defined]
    assert_exactly_once_in_order(first.messages + after, figures["enqueued"])
    decisions = [m for m in first.messages + after if m.topic == TOPICS.decisions]
    published = [r for r in PUBLISHED["broker_restart"] if isinstance(r, DecisionRecord)]
    assert [m.value for m in sorted(decisions, key=lambda m: m.seq)] == [
        record_to_json(r) for r in published
    ]


def test_connection_cut_mid_run_keeps_one_producer_and_duplicates_nothing(
    broker: TansuBroker,
    tansu: Path,
    catalog: Path,
    tmp_path: Path,
) -> None:
    """The bridge reaches the broker through a proxy that is killed mid-run (the engine publishes
    fast enough that records are usually in flight) and restarted later. The broker keeps its
    log, the producer keeps its id: its retries are deduplicated by the broker, so the log holds
    every record once, in order."""
    proxy = TansuBroker(tansu, origin=broker.port)
    proxy.start()

    def cut() -> None:
        proxy.stop()  # whatever is in flight stays with the producer
        time.sleep(0.5)

    HOOKS.update(cut=cut, back=proxy.start)
    document = node_document(
        "connection_cut",
        [traced_cross("connection_cut")],
        actors=[fault_injector({1_000: "cut", 2_000: "back"})],
        forensics={
            "kafka": {"bootstrap_servers": proxy.bootstrap},
            # Generous: after the cut the same producer must finish on its own (no reset, no
            # re-send), even on a loaded machine.
            "stall_timeout_s": 30.0,
            "flush_timeout_s": 90.0,
            "reconnect_interval_s": 0.2,
        },
    )
    try:
        figures = run(document, catalog, tmp_path / "run")["extensions"]["forensics"]
    finally:
        proxy.stop()
    assert figures["enqueued"] == figures["delivered"] and figures["undelivered"] == 0
    assert figures["spilled"] > 0
    messages = consume_all(broker.bootstrap, ALL_TOPICS, figures["enqueued"])
    assert_exactly_once_in_order(messages, figures["enqueued"])


def test_one_decision_per_order_and_every_trace_joins(traced_run: tuple[Path, dict]) -> None:
    run_dir, summary = traced_run
    figures = summary["extensions"]["forensics"]
    assert figures["enqueued"] == figures["delivered"] and figures["rejected"] == 0
    stored = read_run(run_dir)
    assert len(stored) == figures["delivered"]
    records = [s.record for s in stored]
    decisions = [r for r in records if isinstance(r, DecisionRecord)]
    orders = pd.read_csv(run_dir / "orders.csv")
    fills = pd.read_csv(run_dir / "fills.csv")
    assert len(decisions) == len(orders) == summary["orders"]

    traces = build_traces(records)
    order_traces = {
        r.client_order_id: r.trace_id
        for r in records
        if isinstance(r, OrderEventRecord) and r.event_type == "OrderInitialized"
    }
    assert set(order_traces) == set(orders["client_order_id"])
    for decision in decisions:
        trace = traces[decision.trace_id]
        assert trace.decisions == [decision]
        assert decision.intended_order is not None
        assert list(trace.orders) == [decision.intended_order.client_order_id]
        assert trace.problems(require_verdicts=True) == []
        assert order_traces[decision.intended_order.client_order_id] == decision.trace_id
    # Fills in the forensics are exactly the engine's fills.
    forensic_fills = sorted(
        (r.client_order_id, r.last_qty, r.last_px)
        for r in records
        if isinstance(r, OrderEventRecord) and r.event_type == "OrderFilled"
    )
    report_fills = sorted(
        (row.client_order_id, f"{row.last_qty:g}", f"{row.last_px:.2f}")
        for row in fills.itertuples()
    )
    assert forensic_fills == report_fills
    positions = [r for r in records if isinstance(r, PositionEventRecord)]
    assert len(positions) == len(fills) and all(p.trace_id for p in positions)


def test_risk_verdicts_join_their_orders(traced_run: tuple[Path, dict]) -> None:
    run_dir, summary = traced_run
    records = [s.record for s in read_run(run_dir, topics=[TOPICS.risk])]
    assert len(records) == summary["orders"]
    traces = build_traces(s.record for s in read_run(run_dir))
    for verdict in records:
        trail = traces[verdict.trace_id].orders[verdict.client_order_id]
        assert trail.verdicts == [verdict]
        assert trail.initialized is not None


def test_fast_wire_encoding_is_byte_identical_to_the_records(
    traced_run: tuple[Path, dict],
) -> None:
    """The bridge encodes order and position events without building pydantic records; on every
    event of a run the bytes equal the validated record's wire form."""
    events = RECORDED["traced"]
    assert len(events) > 500
    traces: dict[str, str] = {}
    for event in events:
        if isinstance(event, OrderEvent):
            trace_id = trace_id_from_tags(getattr(event, "tags", None))
            if trace_id:
                traces[event.client_order_id.value] = trace_id
            trace_id = traces.get(event.client_order_id.value)
            fast = encode_order_event(event, trace_id)
            slow = record_to_json(order_event_record(event, trace_id))
        else:
            order_id = event.opening_order_id.value
            fast = encode_position_event(event, order_id, traces.get(order_id))
            slow = record_to_json(position_event_record(event, order_id, traces.get(order_id)))
        assert fast.value == slow
        assert fast.key == f"{event.strategy_id}/{event.instrument_id}"


REPO = Path(__file__).parents[2]
RULES_CONFIG = REPO / "node_configs" / "backtest" / "rules_sp500.yaml"
RISK_COMPONENT = REPO / "node_configs" / "components" / "risk" / "default.yaml"


def test_the_rule_strategies_and_the_risk_gate_join_completely(
    sp500_catalog: Path,
    tmp_path: Path,
) -> None:
    """The project's own S1 + S2 + S3 on the real S&P 500 sample, through the risk gate, with
    every record validated: every order carries a trace with its decision, and every trace joins
    (verdicts included; bracket children are judged with their entry)."""
    from node_configs.loader import load_yaml_document

    document = load_yaml_document(RULES_CONFIG)
    document["risk"] = load_yaml_document(RISK_COMPONENT)
    document["forensics"] = {"sink": "parquet", "validation": "all"}
    document["logging"] = {"level": "ERROR", "file_level": "OFF"}
    summary = run(document, sp500_catalog, tmp_path / "run")
    figures = summary["extensions"]["forensics"]
    assert figures["enqueued"] == figures["delivered"] and figures["rejected"] == 0
    records = [s.record for s in read_run(tmp_path / "run")]
    traces = build_traces(records)
    initialized = [
        r for r in records if isinstance(r, OrderEventRecord) and r.event_type == "OrderInitialized"
    ]
    assert len(initialized) == summary["orders"] > 100
    assert all(r.trace_id and traces[r.trace_id].decisions for r in initialized)
    incomplete = {
        trace_id: trace.problems(require_verdicts=True)
        for trace_id, trace in traces.items()
        if trace.problems(require_verdicts=True)
    }
    assert incomplete == {}
