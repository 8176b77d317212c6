"""The outbox alone: what is written comes back in order, a full disk keeps records in memory in
their place, and what is left at close is one fsynced segment the next session reads first."""

import errno
import logging
from pathlib import Path

from test_pipeline import DECISIONS
from test_pipeline_faults import ListLog

from actors.forensics.codec import Envelope
from actors.forensics.outbox import Outbox
from actors.forensics.spill import SpillLog
from actors.forensics.spill import read_spill_dir

SESSION = "1700000000000000000-00000004"


def envelope(seq: int) -> Envelope:
    return Envelope(
        SESSION,
        seq,
        DECISIONS,
        f"S1-000/{seq % 2}",
        "decision",
        f"S1-000:{seq}",
        seq,
        seq,
        "S1-000",
        b'{"record_type":"decision","n":%d}' % seq,
    )


def opened_outbox(directory: Path, log: object = None) -> Outbox:
    outbox = Outbox(directory, 60.0, log or logging.getLogger("tests.forensics.outbox"))  # type: ignore[arg-type]
    outbox.open()
    return outbox


def test_staged_records_are_written_and_read_back_in_order(tmp_path: Path) -> None:
    outbox = opened_outbox(tmp_path / "outbox")
    outbox.stage([envelope(i) for i in range(1, 6)])
    outbox.stage([envelope(i) for i in range(6, 9)])
    assert (outbox.staged, outbox.unread, outbox.spilled) == (0, 8, 8)
    assert [e.seq for e in outbox.read(5)] == [1, 2, 3, 4, 5]
    assert [e.seq for e in outbox.read(5)] == [6, 7, 8]
    assert outbox.unread == 0
    outbox.release_read()
    assert not list((tmp_path / "outbox").glob("*.jsonl"))


def test_a_full_disk_keeps_the_rest_staged_in_order_and_logs_once(tmp_path: Path) -> None:
    log = ListLog()
    outbox = opened_outbox(tmp_path / "outbox", log)
    outbox.retry_interval_s = 0.0
    assert outbox.spill is not None
    original = outbox.spill.append
    state = {"full": True}

    def append(item: Envelope) -> None:
        if state["full"] and item.seq > 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        original(item)

    outbox.spill.append = append  # type: ignore[method-assign]
    outbox.stage([envelope(i) for i in range(1, 7)])
    assert (outbox.unread, outbox.staged, outbox.spilled) == (3, 3, 3)
    assert not outbox.write_staged()
    assert len([m for m in log.at("error") if "cannot write the outbox" in m]) == 1
    state["full"] = False
    assert outbox.write_staged()
    assert (outbox.unread, outbox.staged, outbox.spilled) == (6, 0, 6)
    assert any("writable again" in m for m in log.at("info"))
    assert [e.seq for e in outbox.read(100)] == list(range(1, 7))


def test_keep_writes_head_then_unread_then_tail_for_the_next_session(tmp_path: Path) -> None:
    directory = tmp_path / "outbox"
    outbox = opened_outbox(directory)
    outbox.stage([envelope(i) for i in (3, 4, 5)])
    taken = outbox.read(1)  # read for sending, not delivered: the caller hands it back as head
    assert [e.seq for e in taken] == [3]
    left = outbox.keep([envelope(1), envelope(2), *taken], [envelope(6), envelope(7)])
    assert left == outbox.undelivered == 7
    assert [e.seq for e in read_spill_dir(directory)] == list(range(1, 8))
    # The next session adopts them and reads them first.
    again = opened_outbox(directory)
    assert again.spill is not None and again.spill.adopted == 7
    assert [e.seq for e in again.read(100)] == list(range(1, 8))


def test_keep_with_nothing_left_leaves_no_segment(tmp_path: Path) -> None:
    outbox = opened_outbox(tmp_path / "outbox")
    outbox.stage([envelope(1)])
    outbox.read(10)
    assert outbox.keep([], []) == 0
    assert not list((tmp_path / "outbox").glob("*.jsonl"))


def test_absorb_moves_another_log_to_the_end_and_deletes_it(tmp_path: Path) -> None:
    outbox = opened_outbox(tmp_path / "outbox")
    outbox.stage([envelope(1)])
    other = SpillLog(tmp_path / "overflow")
    other.extend([envelope(2), envelope(3)])
    outbox.absorb(other)
    assert not list((tmp_path / "overflow").glob("*.jsonl"))
    assert [e.seq for e in outbox.read(10)] == [1, 2, 3]
