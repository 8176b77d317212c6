"""Faults of the pipeline's own making or of its surroundings: a record the broker refuses, a
producer that cannot be created, a crash while the overflow is being absorbed, a full disk, a
sink that hangs at close, a slow overflow read, a Parquet write error, client errors.

Each test reproduces one failure found in review; records must end up delivered, on disk or in
the dead-letter file, and the engine thread must not wait on the worker.
"""

import errno
import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from forensics_kit import consume_all
from test_pipeline import DECISIONS
from test_pipeline import TOPICS
from test_pipeline import decision
from test_pipeline import kafka_pipeline
from test_pipeline import parquet_pipeline

from actors.forensics.codec import Envelope
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.sinks import KafkaSink
from actors.forensics.sinks import ParquetSink
from actors.forensics.spill import read_spill_dir
from grodt.core.records import DecisionRecord
from grodt.forensics.reader import read_run
from grodt.test_kit.ports import free_port
from grodt.test_kit.tansu import TansuBroker


class ListLog:
    """A log that keeps what it is told, by level."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self._lock = threading.Lock()

    def _add(self, level: str, message: str) -> None:
        with self._lock:
            self.lines.append((level, message))

    def debug(self, message: str) -> None:
        self._add("debug", message)

    def info(self, message: str) -> None:
        self._add("info", message)

    def warning(self, message: str) -> None:
        self._add("warning", message)

    def error(self, message: str) -> None:
        self._add("error", message)

    def at(self, *levels: str) -> list[str]:
        with self._lock:
            return [message for level, message in self.lines if level in levels]


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def gate_open(sink: Any) -> threading.Event:
    """Hold the worker in ``sink.open`` until the returned event is set."""
    gate = threading.Event()
    original = sink.open

    def open_when_allowed() -> None:
        gate.wait(30)
        original()

    sink.open = open_when_allowed
    return gate


def big_decision(i: int) -> DecisionRecord:
    record = decision(i)
    return record.model_copy(update={"features": {f"f{k}": float(k) for k in range(2_000)}})


def spilled_seqs(spill: Path) -> set[int]:
    return {e.seq for d in ("outbox", "overflow") for e in read_spill_dir(spill / d)}


class FakeSink:
    """A sink under the test's control: holds what it is sent until told what to do."""

    name = "fake"

    def __init__(self) -> None:
        self.healthy = False
        self.reason = "not opened"
        self.fatal = False
        self.resets = 0
        self.held: list[Envelope] = []
        self.sent: list[int] = []
        self._on_delivered: Callable[[Envelope], None] | None = None
        self._on_failed: Callable[[Envelope, str, bool], None] | None = None

    def bind(
        self,
        on_delivered: Callable[[Envelope], None],
        on_failed: Callable[[Envelope, str, bool], None],
    ) -> None:
        self._on_delivered = on_delivered
        self._on_failed = on_failed

    def open(self) -> None:
        self.healthy = True
        self.reason = ""

    def send(self, envelope: Envelope) -> bool:
        self.sent.append(envelope.seq)
        self.held.append(envelope)
        return True

    def poll(self, timeout: float) -> None:
        if timeout > 0:
            time.sleep(timeout)

    def in_flight(self) -> int:
        return len(self.held)

    def stalled(self, timeout: float) -> bool:
        return False

    def probe(self, timeout_s: float = 10.0) -> bool:
        return True

    def reset(self, timeout_s: float = 5.0) -> None:
        held, self.held = self.held, []
        assert self._on_failed is not None
        for envelope in held:
            self._on_failed(envelope, "reset", False)

    def flush(self, timeout: float) -> None:
        pass

    def close(self) -> None:
        self.healthy = False
        self.reason = "closed"

    def describe(self) -> dict[str, Any]:
        return {"sink": "fake"}


# -- 1. a record over message.max.bytes ------------------------------------------------------------


def test_a_record_too_large_is_dead_lettered_and_the_rest_flows(
    broker: TansuBroker,
    tmp_path: Path,
) -> None:
    spill = tmp_path / "spill"
    sink = KafkaSink(broker.bootstrap, TOPICS, {"message.max.bytes": 20_000}, partitions=3)
    pipeline = ForensicsPipeline(sink, spill, stall_timeout_s=3.0, reconnect_interval_s=0.2)
    pipeline.start()
    for i in range(50):
        pipeline.offer(DECISIONS, big_decision(i) if i == 10 else decision(i))
    assert pipeline.flush(15.0), pipeline.stats()
    stats = pipeline.close(5.0)
    assert (stats.delivered, stats.rejected, stats.undelivered) == (49, 1, 0)
    lines = [json.loads(line) for line in (spill / "rejected.jsonl").open()]
    assert [line["seq"] for line in lines] == [11]
    assert "too large" in lines[0]["error"]
    messages = consume_all(broker.bootstrap, [DECISIONS], 49)
    assert sorted(m.seq for m in messages) == [s for s in range(1, 51) if s != 11]
    assert not list((spill / "outbox").glob("*.jsonl"))


# -- 2. a producer that cannot be created ----------------------------------------------------------


class UncreatableProducerSink(KafkaSink):
    """A Kafka sink whose producer cannot be created while ``broken`` (e.g. a CA file that is
    not there yet)."""

    broken = True

    def _new_producer(self) -> Any:
        if self.broken:
            from confluent_kafka import KafkaError
            from confluent_kafka import KafkaException

            raise KafkaException(
                KafkaError(KafkaError._INVALID_ARG, "ssl.ca.location failed: no such file"),
            )
        return super()._new_producer()


def test_a_producer_that_cannot_be_created_spills_quietly_and_recovers(
    broker: TansuBroker,
    tmp_path: Path,
) -> None:
    log = ListLog()
    sink = UncreatableProducerSink(broker.bootstrap, TOPICS, partitions=3, log=log)
    pipeline = ForensicsPipeline(
        sink,
        tmp_path / "spill",
        stall_timeout_s=3.0,
        reconnect_interval_s=0.1,
        log=log,
    )
    pipeline.start()
    for i in range(100):
        pipeline.offer(DECISIONS, decision(i))
    assert wait_until(lambda: pipeline.stats().spilled == 100, 10.0), pipeline.stats()
    time.sleep(1.0)  # ~10 probes
    errors = log.at("warning", "error")
    assert len(errors) <= 3, errors
    assert any("ssl.ca.location" in line for line in errors)
    sink.broken = False
    assert pipeline.flush(20.0), pipeline.stats()
    stats = pipeline.close(5.0)
    assert (stats.delivered, stats.replayed, stats.undelivered) == (100, 100, 0)


# -- 3. overflow segments deleted before their records are safe ------------------------------------


def test_overflow_absorbed_into_the_outbox_stays_on_disk_until_the_outbox_is(
    tansu: Path,
    tmp_path: Path,
) -> None:
    broker = TansuBroker(tansu)  # never started: the worker spills to the outbox
    spill = tmp_path / "spill"
    pipeline = kafka_pipeline(broker.bootstrap, spill, queue_size=16, reconnect_interval_s=600.0)
    gate = gate_open(pipeline.sink)
    pipeline.start()
    for i in range(500):
        pipeline.offer(DECISIONS, decision(i))
    assert pipeline.stats().spilled == 484  # seqs 17..500 in the overflow file
    gate.set()
    assert wait_until(lambda: pipeline.stats().spilled == 484 + 500), pipeline.stats()
    assert wait_until(lambda: pipeline.stats().queued == 0)
    # What a crash of the process now would leave: the files as the OS has them.
    assert set(range(17, 501)) <= spilled_seqs(spill)
    stats = pipeline.close(0.5)
    assert stats.undelivered == 500
    assert sorted(e.seq for e in read_spill_dir(spill / "outbox")) == list(range(1, 501))
    assert not list((spill / "overflow").glob("*.jsonl"))


def test_overflow_read_by_a_healthy_sink_stays_on_disk_until_delivered(tmp_path: Path) -> None:
    pipeline = parquet_pipeline(tmp_path, queue_size=16)
    gate = gate_open(pipeline.sink)
    pipeline.start()
    for i in range(500):
        pipeline.offer(DECISIONS, decision(i))
    gate.set()
    # The Parquet sink holds the records until its files close (unacknowledged).
    assert wait_until(lambda: pipeline.stats().in_flight == 500), pipeline.stats()
    assert pipeline.stats().queued == 0
    overflow = {e.seq for e in read_spill_dir(tmp_path / "spill" / "overflow")}
    assert overflow == set(range(17, 501))
    stats = pipeline.close(10.0)
    assert stats.delivered == 500
    assert [s.seq for s in read_run(tmp_path)] == list(range(1, 501))
    assert not list((tmp_path / "spill" / "overflow").glob("*.jsonl"))


# -- 4. disk full while spilling -------------------------------------------------------------------


def test_a_full_disk_during_an_outage_keeps_the_records(tansu: Path, tmp_path: Path) -> None:
    broker = TansuBroker(tansu)
    log = ListLog()
    spill = tmp_path / "spill"
    pipeline = kafka_pipeline(broker.bootstrap, spill, log=log)
    gate = gate_open(pipeline.sink)
    pipeline.start()
    assert pipeline.outbox.spill is not None
    outbox = pipeline.outbox.spill
    original = outbox.append
    state = {"calls": 0, "full": True}

    def append(envelope: Envelope) -> None:
        state["calls"] += 1
        if state["full"] and state["calls"] > 50:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(envelope)

    outbox.append = append  # type: ignore[method-assign]
    total = 300
    try:
        for i in range(total):
            pipeline.offer(DECISIONS, decision(i))
        gate.set()
        assert wait_until(lambda: state["calls"] >= 51)
        time.sleep(0.5)  # a few write attempts (every reconnect_interval_s)
        errors = [line for line in log.at("error") if "No space left" in line]
        assert len(errors) == 1 and "cannot write the outbox" in errors[0], log.at("error")
        state["full"] = False
        broker.start()
        assert pipeline.flush(20.0), pipeline.stats()
        stats = pipeline.close(5.0)
        assert (stats.delivered, stats.undelivered, stats.rejected) == (total, 0, 0)
        messages = consume_all(broker.bootstrap, [DECISIONS], total)
    finally:
        broker.stop()
    assert sorted(m.seq for m in messages) == list(range(1, total + 1))


# -- 5. close while the worker is busy -------------------------------------------------------------


class StuckSink(FakeSink):
    """Reachable, but acknowledges nothing: the worker waits for its in-flight records."""

    def stalled(self, timeout: float) -> bool:
        return bool(self.held)


def test_close_keeps_its_deadline_while_the_worker_waits_on_a_reconnect(tmp_path: Path) -> None:
    sink = StuckSink()
    spill = tmp_path / "spill"
    pipeline = ForensicsPipeline(sink, spill, stall_timeout_s=60.0, reconnect_interval_s=0.1)
    pipeline.start()
    for i in range(10):
        pipeline.offer(DECISIONS, decision(i))
    assert wait_until(lambda: not sink.healthy and sink.held, 5.0)
    time.sleep(0.2)  # inside the wait for the in-flight records
    started = time.monotonic()
    stats = pipeline.close(1.0)
    elapsed = time.monotonic() - started
    assert elapsed < 8.0
    assert pipeline.worker.thread is not None and not pipeline.worker.is_alive()
    assert stats.undelivered == 10
    assert sorted(e.seq for e in read_spill_dir(spill / "outbox")) == list(range(1, 11))


class HangingSink(FakeSink):
    """Hangs in ``poll`` once ``hang`` is set, until ``release`` is."""

    def __init__(self) -> None:
        super().__init__()
        self.hang = threading.Event()
        self.release = threading.Event()
        self.hanging = threading.Event()

    def poll(self, timeout: float) -> None:
        if self.hang.is_set():
            self.hanging.set()
            self.release.wait(60)
        super().poll(timeout)


def test_close_never_spills_from_the_engine_thread_while_the_worker_runs(tmp_path: Path) -> None:
    log = ListLog()
    sink = HangingSink()
    spill = tmp_path / "spill"
    pipeline = ForensicsPipeline(sink, spill, log=log)
    pipeline.close_grace_s = 0.3
    pipeline.start()
    for i in range(10):
        pipeline.offer(DECISIONS, decision(i))
    assert wait_until(lambda: len(sink.held) == 10, 5.0)
    sink.hang.set()
    assert sink.hanging.wait(5.0)
    for i in range(10, 20):
        pipeline.offer(DECISIONS, decision(i))  # stays queued: the worker hangs
    try:
        pipeline.close(0.2)
        # The engine thread did not touch the worker's state or its files.
        assert not list((spill / "outbox").glob("*.jsonl"))
        errors = [line for line in log.at("error") if "did not stop" in line]
        assert errors and str(spill) in errors[0], log.at("error")
        assert "10 queued" in errors[0] and "10 in flight" in errors[0], errors[0]
    finally:
        sink.release.set()
    assert pipeline.worker.wait_stopped(10.0)
    # The worker, once free, kept everything.
    assert sorted(e.seq for e in read_spill_dir(spill / "outbox")) == list(range(1, 21))


# -- 6. the engine thread and the overflow lock ----------------------------------------------------


def test_the_engine_does_not_wait_while_the_worker_reads_the_overflow(tmp_path: Path) -> None:
    pipeline = parquet_pipeline(tmp_path, queue_size=16)
    gate = gate_open(pipeline.sink)
    pipeline.start()
    for i in range(500):
        pipeline.offer(DECISIONS, decision(i))
    assert pipeline.ingress.overflow is not None
    overflow = pipeline.ingress.overflow
    original = overflow.read
    reading = threading.Event()

    def slow_read(*args: Any, **kwargs: Any) -> list[Envelope]:
        reading.set()
        time.sleep(1.0)
        return original(*args, **kwargs)

    overflow.read = slow_read  # type: ignore[method-assign]
    gate.set()
    assert reading.wait(10.0)
    started = time.perf_counter()
    pipeline.offer(DECISIONS, decision(500))
    waited = time.perf_counter() - started
    del overflow.read
    assert waited < 0.5
    stats = pipeline.close(20.0)
    assert stats.delivered == 501
    assert [s.seq for s in read_run(tmp_path)] == list(range(1, 502))


# -- 7. Parquet after a write error ----------------------------------------------------------------


def test_parquet_does_not_spin_after_a_write_error(tmp_path: Path) -> None:
    session = "1700000000000000000-00000002"
    sink = ParquetSink(tmp_path, session, row_group_rows=10)
    pipeline = ForensicsPipeline(
        sink,
        tmp_path / "spill",
        session=session,
        stall_timeout_s=3.0,
        reconnect_interval_s=0.2,
    )
    blocked = "grodt.forensics.blocked"
    (tmp_path / blocked).write_text("a file where the topic's folder should be")
    polls = {"count": 0}
    original = sink.poll

    def counting_poll(timeout: float) -> None:
        polls["count"] += 1
        original(timeout)

    sink.poll = counting_poll  # type: ignore[method-assign]
    pipeline.start()
    for i in range(5):
        pipeline.offer(DECISIONS, decision(i))  # buffered: in flight
    for i in range(5, 15):
        pipeline.offer(blocked, decision(i))  # a row group: the write fails
    assert wait_until(lambda: pipeline.stats().failed >= 10, 10.0)
    polls["count"] = 0
    time.sleep(1.0)
    assert polls["count"] < 300, polls
    (tmp_path / blocked).unlink()
    assert pipeline.flush(20.0), pipeline.stats()
    stats = pipeline.close(5.0)
    assert stats.delivered == 15
    assert sorted(s.seq for s in read_run(tmp_path)) == list(range(1, 16))


# -- 8. client errors ------------------------------------------------------------------------------


def test_client_errors_are_logged_once_in_a_while(tmp_path: Path) -> None:
    log = ListLog()
    sink = KafkaSink(f"127.0.0.1:{free_port()}", TOPICS, log=log)
    sink.bind(lambda envelope: None, lambda envelope, error, permanent: None)
    sink.open()
    started = time.monotonic()
    while time.monotonic() - started < 3.0:  # several reconnect attempts
        sink.poll(0.1)
    sink.close()
    refused = [line for line in log.at("warning", "error") if "Connection refused" in line]
    assert len(refused) == 1, log.at("warning", "error")


# -- 9. permanent delivery failures ----------------------------------------------------------------


class RefusingSink(FakeSink):
    """Acknowledges everything at the next poll, except seq 2, which fails permanently."""

    def poll(self, timeout: float) -> None:
        held, self.held = self.held, []
        assert self._on_delivered is not None and self._on_failed is not None
        for envelope in held:
            if envelope.seq == 2:
                self._on_failed(envelope, "Broker: Message size too large", True)
            else:
                self._on_delivered(envelope)
        super().poll(timeout)


def test_a_permanent_delivery_failure_is_dead_lettered_at_once(tmp_path: Path) -> None:
    sink = RefusingSink()
    spill = tmp_path / "spill"
    pipeline = ForensicsPipeline(sink, spill)
    pipeline.start()
    for i in range(5):
        pipeline.offer(DECISIONS, decision(i))
        assert wait_until(lambda n=i + 1: not sink.held and len(sink.sent) >= n, 5.0)
        time.sleep(0.05)  # the next record follows the previous one's failure
    stats = pipeline.close(5.0)
    assert sink.sent == [1, 2, 3, 4, 5]
    assert (stats.delivered, stats.rejected, stats.undelivered) == (4, 1, 0)
    lines = [json.loads(line) for line in (spill / "rejected.jsonl").open()]
    assert [line["seq"] for line in lines] == [2]


# -- a producer that failed fatally ----------------------------------------------------------------


class FailedProducer:
    """A real producer that failed fatally after ``healthy_sends`` messages: from then on its
    ``produce`` raises what librdkafka raises then — code ``_FATAL`` ("Local: Fatal error") with
    ``fatal() == False`` (seen after a broker restart that forgot the producer id)."""

    def __init__(self, producer: Any, healthy_sends: int) -> None:
        self._producer = producer
        self._left = healthy_sends

    def produce(self, *args: Any, **kwargs: Any) -> None:
        if self._left <= 0:
            from confluent_kafka import KafkaError
            from confluent_kafka import KafkaException

            raise KafkaException(
                KafkaError(KafkaError._FATAL, "Unable to produce message: Local: Fatal error"),
            )
        self._left -= 1
        self._producer.produce(*args, **kwargs)

    def __len__(self) -> int:
        return len(self._producer)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._producer, name)


class FatalOnceSink(KafkaSink):
    """A Kafka sink whose first producer fails fatally after 50 messages."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.producers = 0

    def _new_producer(self) -> Any:
        self.producers += 1
        producer = super()._new_producer()
        return FailedProducer(producer, 50) if self.producers == 1 else producer


def test_a_fatal_error_raised_by_produce_replaces_the_producer(
    broker: TansuBroker,
    tmp_path: Path,
) -> None:
    from confluent_kafka import KafkaError

    assert not KafkaError(KafkaError._FATAL).fatal()  # why fatal() alone cannot tell
    log = ListLog()
    sink = FatalOnceSink(broker.bootstrap, TOPICS, partitions=3, log=log)
    pipeline = ForensicsPipeline(
        sink,
        tmp_path / "spill",
        stall_timeout_s=3.0,
        reconnect_interval_s=0.1,
        log=log,
    )
    pipeline.start()
    for i in range(500):
        pipeline.offer(DECISIONS, decision(i))
    delivered = pipeline.flush(20.0)
    stats = pipeline.close(5.0)
    assert delivered, f"never recovered: {stats.summary_line()}"
    assert (stats.delivered, stats.rejected, stats.undelivered, stats.sink_resets) == (
        500,
        0,
        0,
        1,
    )
    assert sink.producers == 2
    assert len([line for line in log.at("error") if "fatal producer error" in line]) == 1
    messages = consume_all(broker.bootstrap, TOPICS, 500)
    assert sorted(m.seq for m in messages) == list(range(1, 501))  # each once
    by_key: dict[str, list[int]] = {}
    for message in messages:
        by_key.setdefault(message.key, []).append(message.seq)
    assert all(seqs == sorted(seqs) for seqs in by_key.values())
