"""The ingress queue alone (no worker thread, no sink): its bound, its overflow file and the
accounting of both — every offer is queued, spilled in order, or dead-lettered."""

import json
import logging
import threading
import time
from pathlib import Path

from test_pipeline import DECISIONS
from test_pipeline import decision

from actors.forensics.dead_letters import DeadLetters
from actors.forensics.encoder import RecordEncoder
from actors.forensics.ingress import IngressQueue
from actors.forensics.spill import read_spill_dir

SESSION = "1700000000000000000-00000003"
LOG = logging.getLogger("tests.forensics.ingress")


def ingress_queue(spill: Path, capacity: int) -> IngressQueue:
    """An opened ingress queue of ``capacity`` records spilling to ``spill/overflow``."""
    spill.mkdir(parents=True, exist_ok=True)
    dead_letters = DeadLetters(spill / "rejected.jsonl", SESSION, LOG)
    encoder = RecordEncoder(SESSION, dead_letters, LOG)
    ingress = IngressQueue(spill / "overflow", capacity, encoder, dead_letters, LOG)
    ingress.open()
    return ingress


def test_offers_beyond_capacity_spill_to_the_overflow_in_order(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=4)
    for i in range(10):
        ingress.offer(DECISIONS, decision(i))
    assert (ingress.enqueued, len(ingress), ingress.spilled) == (10, 4, 6)
    assert ingress.overflowing and ingress.overflow_unread == 6
    assert ingress.overflow is not None
    ingress.overflow.sync()  # the engine's appends are buffered until the worker reads
    assert [e.seq for e in read_spill_dir(tmp_path / "overflow")] == list(range(5, 11))


def test_take_reads_the_queue_then_the_overflow_then_the_queue_again(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=4)
    for i in range(10):
        ingress.offer(DECISIONS, decision(i))
    assert [e.seq for e in ingress.take(100)] == [1, 2, 3, 4]
    # The queue has room now, but the overflow is not read yet: a new offer must not overtake it.
    ingress.offer(DECISIONS, decision(10))
    assert len(ingress) == 0 and ingress.spilled == 7
    assert [e.seq for e in ingress.take(3)] == [5, 6, 7]
    assert ingress.overflowing
    overflow = ingress.take(100)
    assert [e.seq for e in overflow] == [8, 9, 10, 11]
    assert all(e.from_spill for e in overflow)
    assert not ingress.overflowing and ingress.overflow_read
    ingress.offer(DECISIONS, decision(11))
    assert len(ingress) == 1 and ingress.spilled == 7
    assert [e.seq for e in ingress.take(100)] == [12]
    ingress.release_overflow()
    assert not list((tmp_path / "overflow").glob("*.jsonl"))
    assert ingress.empty


def test_an_item_that_cannot_be_encoded_while_spilling_is_dead_lettered(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=1)
    ingress.offer(DECISIONS, decision(0))
    ingress.offer(DECISIONS, object())  # not a record, and no converter
    ingress.offer(DECISIONS, decision(2))
    assert (ingress.enqueued, len(ingress), ingress.spilled) == (3, 1, 1)
    lines = [json.loads(line) for line in (tmp_path / "rejected.jsonl").open()]
    assert [line["seq"] for line in lines] == [2]
    assert "not a forensics record" in lines[0]["error"]
    assert [e.seq for e in ingress.take(10)] + [e.seq for e in ingress.take(10)] == [1, 3]


def test_reject_takes_a_place_in_the_stream_and_goes_to_the_dead_letters(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=8)
    ingress.offer(DECISIONS, decision(0))
    ingress.reject(DECISIONS, "junk", "not a record")
    ingress.offer(DECISIONS, decision(2))
    assert ingress.enqueued == 3
    assert [e.seq for e in ingress.take(10)] == [1, 3]
    lines = [json.loads(line) for line in (tmp_path / "rejected.jsonl").open()]
    assert [(line["seq"], line["error"]) for line in lines] == [(2, "not a record")]


def test_offers_after_close_go_to_the_overflow_file_fsynced(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=8)
    ingress.close_to_engine()
    ingress.offer(DECISIONS, decision(0))
    assert (len(ingress), ingress.spilled) == (0, 1)
    assert [e.seq for e in read_spill_dir(tmp_path / "overflow")] == [1]


def test_drain_returns_the_queue_then_the_overflow(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=3)
    for i in range(7):
        ingress.offer(DECISIONS, decision(i))
    assert [e.seq for e in ingress.drain()] == list(range(1, 8))
    assert ingress.empty
    # The segments stay until what was drained is safe elsewhere.
    assert list((tmp_path / "overflow").glob("*.jsonl"))
    ingress.release_closed_overflow()
    assert not list((tmp_path / "overflow").glob("*.jsonl"))


def _idle_worker(ingress: IngressQueue) -> threading.Thread:
    """A thread waiting in ``wait_for_items`` (for a minute at most), returned once it waits."""
    waiter = threading.Thread(target=ingress.wait_for_items, args=(60.0,), daemon=True)
    waiter.start()
    while not ingress.worker_idle:
        time.sleep(0.001)
    return waiter


def test_offers_wake_an_idle_worker_once_per_idle_spell(tmp_path: Path) -> None:
    ingress = ingress_queue(tmp_path, capacity=100)
    for spell in (1, 2):
        waiter = _idle_worker(ingress)
        for i in range(5):
            ingress.offer(DECISIONS, decision(i))
        waiter.join(30.0)
        assert not waiter.is_alive(), "the first offer must wake the waiting worker"
        # One Event.set for the five offers of this idle spell, not one per offer.
        assert ingress.wakeups == spell
        assert [e.seq for e in ingress.take(100)] == list(range(5 * spell - 4, 5 * spell + 1))
    # While the worker is awake (not waiting), offers do not signal at all.
    ingress.offer(DECISIONS, decision(10))
    assert ingress.wakeups == 2 and len(ingress) == 1
