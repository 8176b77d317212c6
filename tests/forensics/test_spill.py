"""Spill files: append-only, read back in order across segments and across processes."""

from pathlib import Path

from actors.forensics.codec import Envelope
from actors.forensics.codec import envelope_from_line
from actors.forensics.codec import envelope_to_line
from actors.forensics.spill import SpillLog
from actors.forensics.spill import read_spill_dir

SESSION = "1704209160000000000-0a1b2c3d"


def envelope(seq: int, session: str = SESSION) -> Envelope:
    value = b'{"record_type":"allocation","n":' + str(seq).encode() + b"}"
    return Envelope(
        session=session,
        seq=seq,
        topic="grodt.forensics.allocations",
        key=f"key-{seq % 3}",
        record_type="allocation",
        trace_id=f"t:{seq}",
        ts_event=seq * 1_000,
        ts_init=seq * 1_000 + 1,
        component_id="MetaController",
        value=value,
    )


def seqs(envelopes: list[Envelope]) -> list[int]:
    return [e.seq for e in envelopes]


def test_line_round_trip_embeds_the_record_as_json() -> None:
    original = envelope(42)
    line = envelope_to_line(original)
    assert line.endswith(b"\n")
    assert b'"record":{"record_type":"allocation","n":42}' in line
    back = envelope_from_line(line)
    assert back.from_spill
    back.from_spill = False
    assert back == original


def test_reads_in_order_across_segments_and_releases_only_what_was_read(tmp_path: Path) -> None:
    log = SpillLog(tmp_path, segment_records=100)
    for seq in range(1, 251):
        log.append(envelope(seq))
    assert log.unread == 250
    assert len(log.paths()) == 3
    assert seqs(log.read(60)) == list(range(1, 61))
    assert seqs(log.read(90)) == list(range(61, 151))
    assert log.unread == 100
    assert log.release() == 1  # the first segment is read completely; the second is not
    assert len(log.paths()) == 2
    # Appending while reading keeps the order.
    log.append(envelope(251))
    assert seqs(log.read(1_000)) == list(range(151, 252))
    assert log.release() == 2
    assert log.paths() == [] and log.unread == 0
    log.close()


def test_a_new_process_adopts_what_was_not_released(tmp_path: Path) -> None:
    first = SpillLog(tmp_path, segment_records=100)
    for seq in range(1, 251):
        first.append(envelope(seq))
    first.read(150)
    first.release()
    first.close()
    # Segments 2 and 3 are still there; segment 2 was half read: it is replayed from its start
    # (at-least-once across crashes; readers deduplicate on session and seq).
    second = SpillLog(tmp_path, segment_records=100)
    assert second.adopted == 150
    assert seqs(second.read(1_000)) == list(range(101, 251))


def test_segments_of_earlier_sessions_come_first(tmp_path: Path) -> None:
    later = "1704209999000000000-ffffffff"
    log = SpillLog(tmp_path)
    for seq in (1, 2):
        log.append(envelope(seq, session=later))
    log.close()
    older = SpillLog(tmp_path / "other")
    for seq in (7, 8):
        older.append(envelope(seq))
    older.close()
    for path in (tmp_path / "other").iterdir():
        path.rename(tmp_path / path.name)
    adopted = SpillLog(tmp_path)
    assert [(e.session, e.seq) for e in adopted.read(10)] == [
        (SESSION, 7),
        (SESSION, 8),
        (later, 1),
        (later, 2),
    ]


def test_a_torn_last_line_is_reported_not_replayed(tmp_path: Path) -> None:
    log = SpillLog(tmp_path)
    for seq in range(1, 4):
        log.append(envelope(seq))
    log.close()
    (path,) = tmp_path.glob("*.jsonl")
    with path.open("ab") as handle:
        handle.write(envelope_to_line(envelope(4))[:25])  # crash in the middle of a write
    adopted = SpillLog(tmp_path)
    assert adopted.unreadable == 1
    assert seqs(adopted.read(10)) == [1, 2, 3]
    assert seqs(read_spill_dir(tmp_path)) == [1, 2, 3]


def test_rewrite_puts_memory_before_disk_before_the_queue(tmp_path: Path) -> None:
    log = SpillLog(tmp_path, segment_records=2)
    for seq in (10, 11, 12, 13):
        log.append(envelope(seq))
    log.read(1)  # 10 was taken (in flight) and failed: it comes back as head
    total = log.rewrite(head=[envelope(10)], tail=[envelope(14), envelope(15)])
    assert total == 6
    log.close()
    reopened = SpillLog(tmp_path)
    assert seqs(reopened.read(100)) == [10, 11, 12, 13, 14, 15]
