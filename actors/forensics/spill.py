"""Append-only spill files: where records wait, on local disk, for a sink that is down or a queue
that is full — and are read back in the order they were written.

A :class:`SpillLog` is a directory of segment files ``<session>-<first seq, 12 digits>.jsonl``, one
JSON line per record (:func:`actors.forensics.codec.envelope_to_line`): readable with ``jq``, and a
segment name sorts by the global order of its first record, so segments left by earlier sessions
are found and replayed first. Segments are deleted only once every record read from them has been
acknowledged by the sink (:meth:`SpillLog.release`); a crash before that replays them again, which
readers absorb by deduplicating on ``(session, seq)``.

Not thread-safe by itself: the bridge guards the engine-written overflow log with a lock. One
thread may append (under the lock) while another reads what :meth:`SpillLog.plan_read` noted
under the lock (:meth:`SpillLog.read` with that plan, outside it): appending touches only the
writer and the line counts, reading only the reader and the read positions.
"""

import contextlib
import logging
import os
from collections import deque
from collections.abc import Iterable
from pathlib import Path
from typing import IO
from typing import Protocol

import msgspec

from actors.forensics.codec import Envelope
from actors.forensics.codec import envelope_from_line
from actors.forensics.codec import envelope_to_line

__all__ = [
    "SEGMENT_SUFFIX",
    "LogLike",
    "SpillLog",
    "default_log",
    "read_spill_dir",
    "segment_name",
]

SEGMENT_SUFFIX = ".jsonl"


class LogLike(Protocol):
    """What the forensics modules log through (a Nautilus ``Logger`` or a ``logging.Logger``)."""

    def info(self, message: str) -> None: ...

    def warning(self, message: str) -> None: ...

    def error(self, message: str) -> None: ...


def default_log() -> LogLike:
    return logging.getLogger("grodt.forensics")


def segment_name(envelope: Envelope) -> str:
    """The segment file name for a segment whose first record is ``envelope``."""
    return f"{envelope.session}-{envelope.seq:012d}{SEGMENT_SUFFIX}"


class _Segment:
    """One segment file: its path, how many lines it holds and how far it has been read."""

    __slots__ = ("lines", "path", "read_lines", "read_offset")

    def __init__(self, path: Path, lines: int) -> None:
        self.path = path
        self.lines = lines
        self.read_lines = 0
        self.read_offset = 0


class SpillLog:
    """Ordered, append-only, disk-backed FIFO of envelopes.

    Parameters
    ----------
    directory : Path
        Where segments live (created if missing). Segments already there — left by an earlier
        session — are adopted and read first.
    segment_records : int, default 100_000
        Records per segment before a new one is started (bounds what a crash can replay twice).
    log : LogLike, optional
        Where torn or unreadable lines are reported.
    """

    def __init__(
        self,
        directory: Path,
        segment_records: int = 100_000,
        log: LogLike | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segment_records = segment_records
        self._log = log or default_log()
        self._segments: deque[_Segment] = deque()
        self._writer: IO[bytes] | None = None
        self._unsynced = False
        self._rotated: deque[Path] = deque()
        self._reader: IO[bytes] | None = None
        self._reader_segment: _Segment | None = None
        self.written = 0
        """Lines appended by this process."""
        self.adopted = 0
        """Lines found in segments left by earlier sessions."""
        self.unreadable = 0
        """Lines skipped because they could not be decoded (torn by a crash)."""
        # Counters kept as plain ints so that another thread may read ``unread`` safely.
        self._total = 0
        self._read_total = 0
        for path in sorted(self.directory.glob(f"*{SEGMENT_SUFFIX}")):
            lines, torn = _count_lines(path)
            if torn:
                self.unreadable += 1
                self._log.error(f"Forensics spill {path}: last line incomplete (torn by a crash)")
            if lines == 0:
                path.unlink(missing_ok=True)
                continue
            self._segments.append(_Segment(path, lines))
            self.adopted += lines
            self._total += lines

    # -- writing ----------------------------------------------------------------------------------

    def append(self, envelope: Envelope) -> None:
        """Append one record (buffered; visible to :meth:`read` at once)."""
        if self._writer is None or self._segments[-1].lines >= self._segment_records:
            self._open_segment(envelope)
        assert self._writer is not None
        self._writer.write(envelope_to_line(envelope))
        self._unsynced = True
        self._segments[-1].lines += 1
        self.written += 1
        self._total += 1

    def extend(self, envelopes: Iterable[Envelope]) -> int:
        count = 0
        for envelope in envelopes:
            self.append(envelope)
            count += 1
        return count

    def sync(self) -> None:
        """Flush buffered lines to the OS and to the disk (fsync), including segments closed
        since the last sync; nothing to do when nothing was appended since then."""
        while self._rotated:
            path = self._rotated[0]
            with contextlib.suppress(FileNotFoundError):  # released meanwhile
                fd = os.open(path, os.O_RDONLY)
                try:
                    os.fsync(fd)
                finally:
                    os.close(fd)
            self._rotated.popleft()
        if self._writer is not None and self._unsynced:
            self._writer.flush()
            os.fsync(self._writer.fileno())
        self._unsynced = False

    def _open_segment(self, first: Envelope) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
            if self._unsynced:
                self._rotated.append(self._segments[-1].path)  # fsynced by the next sync()
                self._unsynced = False
        path = self.directory / segment_name(first)
        while path.exists():  # same first record written twice (compaction): keep both, in order
            path = path.with_name(path.stem + "_" + SEGMENT_SUFFIX)
        self._writer = path.open("ab")
        self._segments.append(_Segment(path, 0))

    # -- reading ----------------------------------------------------------------------------------

    @property
    def unread(self) -> int:
        """Records written (or adopted) and not yet read."""
        return self._total - self._read_total

    def plan_read(self, max_records: int) -> list[tuple[_Segment, int]]:
        """Note up to ``max_records`` of the oldest unread records, after flushing the writer so
        that they are all in the files: ``(segment, read up to line)``. Call it where appends
        cannot run (under the writer's lock), then :meth:`read` with the plan anywhere."""
        if self._writer is not None:
            self._writer.flush()
        plan: list[tuple[_Segment, int]] = []
        noted = 0
        for segment in self._segments:
            if noted >= max_records:
                break
            unread = segment.lines - segment.read_lines
            if unread <= 0:
                continue
            take = min(unread, max_records - noted)
            plan.append((segment, segment.read_lines + take))
            noted += take
        return plan

    def read(
        self,
        max_records: int,
        plan: list[tuple[_Segment, int]] | None = None,
    ) -> list[Envelope]:
        """Up to ``max_records`` of the oldest unread records, in order (those of ``plan`` when
        given; see :meth:`plan_read`)."""
        if plan is None:
            plan = self.plan_read(max_records)
        out: list[Envelope] = []
        for segment, upto in plan:
            if self._reader_segment is not segment:
                if self._reader is not None:
                    self._reader.close()
                self._reader = segment.path.open("rb")
                self._reader.seek(segment.read_offset)
                self._reader_segment = segment
            assert self._reader is not None
            while segment.read_lines < upto:
                line = self._reader.readline()
                if not line:
                    # Fewer lines than counted: the file was cut short (disk full, crash). The
                    # missing lines count as read (skipped); later appends land after them.
                    missing = upto - segment.read_lines
                    self._log.error(
                        f"Forensics spill {segment.path}: ended after {segment.read_lines} "
                        f"of {segment.lines} lines",
                    )
                    self.unreadable += missing
                    segment.read_lines = upto
                    self._read_total += missing
                    break
                segment.read_offset += len(line)
                segment.read_lines += 1
                self._read_total += 1
                try:
                    out.append(envelope_from_line(line))
                except msgspec.DecodeError as e:
                    self.unreadable += 1
                    self._log.error(
                        f"Forensics spill {segment.path}, line {segment.read_lines}: "
                        f"unreadable record skipped ({e}): {line[:200]!r}",
                    )
        return out

    def read_all(self, chunk_records: int = 10_000) -> list[Envelope]:
        """Every unread record, in order (read ``chunk_records`` at a time)."""
        out: list[Envelope] = []
        while True:
            chunk = self.read(chunk_records)
            if not chunk:
                return out
            out.extend(chunk)

    def release(self) -> int:
        """Delete segments that have been read completely (call once what was read from them is
        acknowledged). Returns the number of segments deleted."""
        deleted = 0
        while self._segments and self._segments[0].read_lines >= self._segments[0].lines:
            segment = self._segments[0]
            is_writer = len(self._segments) == 1 and self._writer is not None
            if is_writer:
                assert self._writer is not None
                self._writer.close()
                self._writer = None
            if self._reader_segment is segment:
                assert self._reader is not None
                self._reader.close()
                self._reader = None
                self._reader_segment = None
            segment.path.unlink(missing_ok=True)
            self._segments.popleft()
            self._total -= segment.lines
            self._read_total -= segment.read_lines
            deleted += 1
        return deleted

    def rewrite(self, head: list[Envelope], tail: Iterable[Envelope]) -> int:
        """Replace the log by ``head`` + its unread records + ``tail``, in that order, in a fresh
        fsynced segment (used at shutdown, so that what is in memory keeps its place in order).
        Returns the number of records the log then holds."""
        pending = list(head)
        while True:
            chunk = self.read(10_000)
            if not chunk:
                break
            pending.extend(chunk)
        pending.extend(tail)
        old = [s.path for s in self._segments]
        self._close_files()
        self._segments.clear()
        self._total = 0
        self._read_total = 0
        for envelope in pending:
            envelope.from_spill = False
            self.append(envelope)
        self.sync()
        for path in old:
            path.unlink(missing_ok=True)
        for segment in self._segments:
            segment.read_lines = 0
            segment.read_offset = 0
        return len(pending)

    def paths(self) -> list[Path]:
        return [s.path for s in self._segments]

    def _close_files(self) -> None:
        if self._writer is not None:
            self._writer.flush()
            self._writer.close()
            self._writer = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
            self._reader_segment = None

    def close(self) -> None:
        """Flush, fsync and close; segments with unread records stay on disk."""
        if self._writer is not None:
            self.sync()
        self._close_files()


def _count_lines(path: Path) -> tuple[int, bool]:
    """Complete lines in ``path``, and whether a final line lacks its newline (torn)."""
    count = 0
    torn = False
    with path.open("rb") as handle:
        for line in handle:
            if line.endswith(b"\n"):
                count += 1
            else:
                torn = True
    return count, torn


def read_spill_dir(directory: Path, log: LogLike | None = None) -> list[Envelope]:
    """Every record in the spill segments of ``directory`` (read-only; for inspection)."""
    if not Path(directory).is_dir():
        return []
    out: list[Envelope] = []
    for path in sorted(Path(directory).glob(f"*{SEGMENT_SUFFIX}")):
        with path.open("rb") as handle:
            for number, line in enumerate(handle, start=1):
                if not line:
                    continue
                try:
                    out.append(envelope_from_line(line))
                except msgspec.DecodeError as e:
                    (log or default_log()).error(f"{path}, line {number}: unreadable: {e}")
    return out
