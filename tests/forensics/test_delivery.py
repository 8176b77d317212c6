"""Delivery alone, turned by hand (no worker thread) against a real Parquet sink: in order, failed
deliveries re-sent first, an outage spilled to the outbox and replayed before newer records, and
what is left at the end kept on disk in order."""

import logging
from pathlib import Path

import pytest
from test_ingress import SESSION
from test_ingress import ingress_queue
from test_pipeline import DECISIONS
from test_pipeline import decision

from actors.forensics.dead_letters import DeadLetters
from actors.forensics.delivery import Delivery
from actors.forensics.ingress import IngressQueue
from actors.forensics.outbox import Outbox
from actors.forensics.sinks import ParquetSink
from actors.forensics.spill import read_spill_dir
from grodt.forensics.reader import read_run

LOG = logging.getLogger("tests.forensics.delivery")


def parquet_delivery(
    tmp_path: Path, out: Path, sink: ParquetSink | None = None
) -> tuple[Delivery, IngressQueue, ParquetSink]:
    """A delivery to Parquet files in ``out``, spill under ``tmp_path/spill``, sink opened."""
    spill = tmp_path / "spill"
    ingress = ingress_queue(spill, capacity=1_000)
    outbox = Outbox(spill / "outbox", 0.0, LOG)
    outbox.open()
    sink = sink or ParquetSink(out, SESSION)
    dead_letters = DeadLetters(spill / "rejected.jsonl", SESSION, LOG)
    delivery = Delivery(
        sink,
        ingress,
        outbox,
        dead_letters,
        stall_timeout_s=5.0,
        reconnect_interval_s=0.0,  # probe on every turn while down
        batch_size=100,
        log=LOG,
    )
    delivery.open_sink()
    return delivery, ingress, sink


def turn_until_idle(delivery: Delivery, turns: int = 20) -> None:
    for _ in range(turns):
        if not delivery.turn():
            return
    raise AssertionError("delivery kept moving records")


def offer(ingress: IngressQueue, numbers: range) -> None:
    for i in numbers:
        ingress.offer(DECISIONS, decision(i))


def test_records_reach_the_sink_in_order(tmp_path: Path) -> None:
    delivery, ingress, sink = parquet_delivery(tmp_path, tmp_path)
    offer(ingress, range(250))
    turn_until_idle(delivery)
    assert sink.in_flight() == 250 and delivery.delivered == 0  # buffered, not durable yet
    sink.flush(0.0)
    assert (delivery.delivered, delivery.failed, delivery.replayed) == (250, 0, 0)
    assert delivery.drained()
    assert [s.seq for s in read_run(tmp_path)] == list(range(1, 251))


def test_unacknowledged_records_held_in_memory_are_bounded(tmp_path: Path) -> None:
    # Row groups of 10, at most 25 written-but-unacknowledged rows: files close early, so the
    # sink never holds more than one row group beyond the bound, and nothing is lost.
    sink = ParquetSink(tmp_path, SESSION, row_group_rows=10, max_unacked_rows=25)
    delivery, ingress, sink = parquet_delivery(tmp_path, tmp_path, sink)
    held = []
    for start in range(0, 250, 10):
        offer(ingress, range(start, start + 10))
        turn_until_idle(delivery)
        held.append(sink.in_flight())
    assert max(held) <= 25 + 10
    assert delivery.delivered >= 250 - 35  # acknowledged as their files closed, mid-run
    assert sink.early_closes > 0 and len(sink.files) > 1
    sink.flush(0.0)
    assert delivery.delivered == 250 and delivery.drained()
    assert [s.seq for s in read_run(tmp_path)] == list(range(1, 251))


def test_a_bound_below_one_row_group_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_unacked_rows"):
        ParquetSink(tmp_path, SESSION, row_group_rows=100, max_unacked_rows=10)


def test_failed_deliveries_are_sent_again_before_newer_records(tmp_path: Path) -> None:
    delivery, ingress, sink = parquet_delivery(tmp_path, tmp_path)
    offer(ingress, range(6))
    turn_until_idle(delivery)
    sink.reset()  # buffered records fail: they come back to the delivery
    assert (delivery.failed, delivery.in_memory) == (6, 6)
    offer(ingress, range(6, 9))
    turn_until_idle(delivery)
    sink.flush(0.0)
    assert delivery.delivered == 9
    assert [s.seq for s in read_run(tmp_path)] == list(range(1, 10))


def test_an_outage_spills_to_the_outbox_and_replays_it_first(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a directory")  # the sink cannot create its folder: it is down
    delivery, ingress, sink = parquet_delivery(tmp_path, out)
    assert not sink.healthy
    offer(ingress, range(5))
    turn_until_idle(delivery)
    assert delivery.outbox.unread == 5 and len(ingress) == 0
    assert [e.seq for e in read_spill_dir(tmp_path / "spill" / "outbox")] == [1, 2, 3, 4, 5]
    out.unlink()  # back: the next probe reconnects and the outbox goes out first
    turn_until_idle(delivery)
    assert sink.healthy and sink.in_flight() == 5
    offer(ingress, range(5, 8))
    turn_until_idle(delivery)
    sink.flush(0.0)
    turn_until_idle(delivery)  # everything acknowledged: the outbox segments go
    assert (delivery.delivered, delivery.replayed) == (8, 5)
    assert [s.seq for s in read_run(out)] == list(range(1, 9))
    assert not list((tmp_path / "spill" / "outbox").glob("*.jsonl"))


def test_keep_undelivered_writes_everything_left_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.write_text("not a directory")
    delivery, ingress, _ = parquet_delivery(tmp_path, out)
    offer(ingress, range(4))
    turn_until_idle(delivery)  # into the outbox
    offer(ingress, range(4, 7))  # still queued
    delivery.keep_undelivered()
    assert delivery.outbox.undelivered == 7
    assert [e.seq for e in read_spill_dir(tmp_path / "spill" / "outbox")] == list(range(1, 8))
    assert ingress.empty
