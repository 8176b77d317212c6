"""The pipeline on its own (no engine): real Parquet files and a real Kafka-protocol broker.

Overflow, outage, restart of the process with records left on disk, and bad records: every record
ends up delivered exactly once, in order per key, or in the dead-letter file — never lost.
"""

import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
from forensics_kit import consume_all

from actors.forensics.config import TopicNames
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.sinks import KafkaSink
from actors.forensics.sinks import ParquetSink
from grodt.core.records import DecisionRecord
from grodt.core.records import Signal
from grodt.core.records import record_to_json
from grodt.forensics.reader import read_run
from grodt.test_kit.tansu import TansuBroker

TOPICS = list(TopicNames().model_dump().values())
DECISIONS = TopicNames().decisions
STRATEGIES = ("S1-000", "S2-000", "S3-000")
INSTRUMENTS = ("SPX.SAMPLE", "IXIC.SAMPLE")


def decision(i: int) -> DecisionRecord:
    strategy = STRATEGIES[i % 3]
    return DecisionRecord(
        trace_id=f"{strategy}:{i}",
        ts_event=1_700_000_000_000_000_000 + i,
        ts_init=1_700_000_000_000_000_000 + i,
        component_id=strategy,
        strategy_id=strategy,
        instrument_id=INSTRUMENTS[i % 2],
        action="entry",
        reason=f"decision {i}",
        features={"i": float(i)},
        signal=Signal(strength=0.5),
        allocation_weight=0.5,
    )


def parquet_pipeline(out: Path, **kwargs: object) -> ForensicsPipeline:
    session = "1700000000000000000-00000001"
    sink = ParquetSink(out, session)
    return ForensicsPipeline(sink, out / "spill", session=session, **kwargs)  # type: ignore[arg-type]


def kafka_pipeline(bootstrap: str, spill: Path, **kwargs: object) -> ForensicsPipeline:
    sink = KafkaSink(bootstrap, TOPICS, partitions=3)
    options: dict = {"stall_timeout_s": 3.0, "reconnect_interval_s": 0.2, **kwargs}
    return ForensicsPipeline(sink, spill, **options)


def assert_in_order_per_key(items: list[tuple[str, int]]) -> None:
    by_key: dict[str, list[int]] = defaultdict(list)
    for key, seq in items:
        by_key[key].append(seq)
    for key, seqs in by_key.items():
        assert seqs == sorted(seqs), f"order broken for key {key}"


def test_parquet_round_trip_is_exact(tmp_path: Path) -> None:
    pipeline = parquet_pipeline(tmp_path)
    pipeline.start()
    sent = [decision(i) for i in range(500)]
    for record in sent:
        pipeline.offer(DECISIONS, record)
    stats = pipeline.close(10.0)
    assert (stats.enqueued, stats.delivered, stats.spilled, stats.rejected) == (500, 500, 0, 0)
    stored = read_run(tmp_path)
    assert [s.seq for s in stored] == list(range(1, 501))
    assert [record_to_json(s.record) for s in stored] == [record_to_json(r) for r in sent]
    assert {s.key for s in stored} == {f"{s}/{i}" for s in STRATEGIES for i in INSTRUMENTS}


def test_a_full_queue_spills_on_the_engine_thread_and_keeps_order(tmp_path: Path) -> None:
    pipeline = parquet_pipeline(tmp_path, queue_size=16)
    pipeline.start()
    total = 5_000
    for i in range(total):
        pipeline.offer(DECISIONS, decision(i))
    stats = pipeline.close(30.0)
    assert stats.spilled > 0, "a 16-record queue must overflow at this rate"
    assert stats.delivered == total and stats.replayed == stats.spilled
    stored = read_run(tmp_path)
    assert [s.seq for s in stored] == list(range(1, total + 1))
    assert [s.record.reason for s in stored] == [f"decision {i}" for i in range(total)]
    assert not list((tmp_path / "spill" / "overflow").glob("*.jsonl"))


def test_bursts_between_idle_spells_lose_and_reorder_nothing(tmp_path: Path) -> None:
    """The worker is woken once per idle spell: offers in bursts, with pauses in which it
    drains the queue and goes back to sleep, all arrive, each once, in offer order."""
    pipeline = parquet_pipeline(tmp_path, linger_s=0.0)
    pipeline.start()
    rng = np.random.default_rng(3)
    total = 0
    for _ in range(60):
        for _ in range(int(rng.integers(1, 40))):
            pipeline.offer(DECISIONS, decision(total))
            total += 1
        time.sleep(float(rng.uniform(0.0, 0.004)))
    wakeups = pipeline.ingress.wakeups
    stats = pipeline.close(30.0)
    assert (stats.enqueued, stats.delivered, stats.spilled, stats.rejected) == (total, total, 0, 0)
    stored = read_run(tmp_path)
    assert [s.seq for s in stored] == list(range(1, total + 1))
    assert [s.record.reason for s in stored] == [f"decision {i}" for i in range(total)]
    assert 0 < wakeups < total, "the idle worker is woken, but not once per offer"


def test_invalid_records_go_to_the_dead_letter_file_and_the_rest_flows(tmp_path: Path) -> None:
    pipeline = parquet_pipeline(tmp_path)
    pipeline.start()
    pipeline.offer(DECISIONS, decision(0))
    # Built without validation on the engine thread: caught by the worker's validation.
    bad = DecisionRecord.model_construct(
        **{**dict(decision(1)), "signal": Signal.model_construct(strength=5.0)}
    )
    pipeline.offer(DECISIONS, bad)
    pipeline.offer(DECISIONS, {"not": "a record"})
    # numpy scalars are converted (with a warning), not rejected.
    pipeline.offer(
        DECISIONS,
        DecisionRecord.model_construct(**{**dict(decision(3)), "features": {"x": np.float32(1.5)}}),
    )
    stats = pipeline.close(10.0)
    assert (stats.enqueued, stats.delivered, stats.rejected) == (4, 2, 2)
    lines = [json.loads(line) for line in (tmp_path / "spill" / "rejected.jsonl").open()]
    assert [line["seq"] for line in lines] == [2, 3]
    assert "signal.strength" in lines[0]["error"]
    assert "not a forensics record" in lines[1]["error"]
    stored = read_run(tmp_path)
    assert [s.seq for s in stored] == [1, 4]
    assert stored[1].record.features == {"x": 1.5}


def test_kafka_down_at_start_spills_then_replays_in_order(tansu: Path, tmp_path: Path) -> None:
    broker = TansuBroker(tansu)  # not started yet: its port refuses connections
    pipeline = kafka_pipeline(broker.bootstrap, tmp_path / "spill")
    pipeline.start()
    total = 900
    try:
        for i in range(total // 2):
            pipeline.offer(DECISIONS, decision(i))
        deadline = time.monotonic() + 60
        while pipeline.stats().spilled < total // 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert pipeline.stats().delivered == 0
        assert pipeline.stats().spilled == total // 2
        broker.start()
        for i in range(total // 2, total):
            pipeline.offer(DECISIONS, decision(i))
        assert pipeline.flush(30.0)
        stats = pipeline.close(10.0)
        assert stats.delivered == total and stats.replayed >= total // 2
        messages = consume_all(broker.bootstrap, [DECISIONS], total)
    finally:
        broker.stop()
    assert sorted(m.seq for m in messages) == list(range(1, total + 1))
    assert_in_order_per_key([(m.key, m.seq) for m in messages])
    by_seq = {m.seq: m.record() for m in messages}
    assert all(by_seq[i + 1].reason == f"decision {i}" for i in range(total))


def test_what_is_left_at_close_is_delivered_by_the_next_session(
    tansu: Path,
    tmp_path: Path,
) -> None:
    broker = TansuBroker(tansu)
    spill = tmp_path / "spill"
    first = kafka_pipeline(broker.bootstrap, spill)
    first.start()
    for i in range(300):
        first.offer(DECISIONS, decision(i))
    stats = first.close(1.0)  # the broker never came: everything stays on disk
    assert stats.delivered == 0 and stats.undelivered == 300
    first.offer(DECISIONS, decision(300))  # late: kept on disk too
    assert len(list((spill / "outbox").glob("*.jsonl"))) >= 1

    broker.start()
    try:
        second = kafka_pipeline(broker.bootstrap, spill)
        second.start()
        for i in range(301, 311):
            second.offer(DECISIONS, decision(i))
        assert second.flush(30.0)
        stats = second.close(10.0)
        assert stats.recovered == 301 and stats.delivered == 311
        messages = consume_all(broker.bootstrap, [DECISIONS], 311)
    finally:
        broker.stop()
    assert len(messages) == 311
    first_session = [m for m in messages if m.session == first.session]
    assert sorted(m.seq for m in first_session) == list(range(1, 302))
    assert sorted(m.seq for m in messages if m.session == second.session) == list(range(1, 11))
    assert_in_order_per_key([(m.key, m.seq) for m in first_session])
    assert not list((spill / "outbox").glob("*.jsonl"))


def test_offer_never_waits_for_a_dead_broker(tansu: Path, tmp_path: Path) -> None:
    broker = TansuBroker(tansu)  # never started
    pipeline = kafka_pipeline(broker.bootstrap, tmp_path / "spill", queue_size=1_000)
    pipeline.start()
    records = [decision(i) for i in range(5_000)]
    started = time.perf_counter()
    for record in records:
        pipeline.offer(DECISIONS, record)
    elapsed = time.perf_counter() - started
    stats = pipeline.close(0.5)
    assert stats.enqueued == 5_000 and stats.undelivered == 5_000
    assert stats.spilled >= 4_000  # the 1,000-record queue overflowed to disk
    # Nothing waits on the network: a hang would show as wall time far beyond encoding 5,000
    # records (bound generous for a loaded CI machine). The cost per record on the engine thread
    # is a figure of benchmarks/forensics_bridge.py.
    assert elapsed < 60.0
