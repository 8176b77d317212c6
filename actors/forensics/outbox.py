"""The outbox: where the worker keeps records, in order, while the sink is down, and what a session
leaves for the next one at close.

On disk it is a :class:`~actors.forensics.spill.SpillLog` (``<spill_dir>/outbox``); in front of it,
records *staged* in memory: taken for the outbox and not written yet, because the disk refused
them (full). Staged records keep their place — they are written, in order, before anything newer —
and the write is retried every ``retry_interval_s``. Stream order here is ``outbox ++ staged``.
"""

import time
from collections import deque
from collections.abc import Iterable
from pathlib import Path

from actors.forensics.codec import Envelope
from actors.forensics.spill import LogLike
from actors.forensics.spill import SpillLog

__all__ = ["Outbox"]


class Outbox:
    """Disk-backed FIFO of the worker, with a write-failure backlog in memory.

    Parameters
    ----------
    directory : Path
        The outbox directory (opened by :meth:`open`; records an earlier session left there are
        read first).
    retry_interval_s : float
        After a refused write, how long before writing is tried again.
    log : LogLike
    """

    def __init__(self, directory: Path, retry_interval_s: float, log: LogLike) -> None:
        self.directory = Path(directory)
        self.retry_interval_s = retry_interval_s
        self._log = log
        self.spill: SpillLog | None = None
        self._staged: deque[Envelope] = deque()
        self._retry_at = 0.0
        self._error = ""
        self.spilled = 0
        """Records this session wrote here (worker thread only)."""
        self.undelivered = 0
        """At close: the records the outbox holds for the next session."""

    def open(self) -> SpillLog:
        """Open the log (adopting segments an earlier session left) and return it."""
        self.spill = SpillLog(self.directory, log=self._log)
        return self.spill

    def absorb(self, other: SpillLog) -> None:
        """Move every unread record of ``other`` to the end of the outbox, fsynced before
        ``other``'s segments are deleted (at start: an overflow left by a crashed session)."""
        assert self.spill is not None
        self.spill.extend(other.read_all())
        self.spill.sync()  # durable before the other segments go
        other.release()

    @property
    def unread(self) -> int:
        """Records on disk not read back yet."""
        return self.spill.unread if self.spill is not None else 0

    @property
    def staged(self) -> int:
        """Records held in memory because the disk refused them."""
        return len(self._staged)

    # -- writing ----------------------------------------------------------------------------------

    def stage(self, batch: Iterable[Envelope]) -> None:
        """Append ``batch`` after what is staged, then write as much as the disk takes."""
        self._staged.extend(batch)
        self.write_staged()

    def write_staged(self) -> bool:
        """Append the staged records to the log, in order; True when none are left. A write
        error (disk full) keeps the rest staged, in memory, and is retried after
        ``retry_interval_s``."""
        staged = self._staged
        if not staged:
            return True
        now = time.monotonic()
        if now < self._retry_at:
            return False
        assert self.spill is not None
        append = self.spill.append
        written = 0
        try:
            while staged:
                append(staged[0])
                staged.popleft()
                written += 1
        except OSError as e:
            self._write_failed(e, f"{len(staged)} records are held in memory, in order,")
            return False
        finally:
            self.spilled += written
        self._writable()
        return True

    def sync(self) -> bool:
        """fsync the log; False (logged) when the disk refuses."""
        assert self.spill is not None
        try:
            self.spill.sync()
        except OSError as e:
            self._write_failed(e, "the records already written are kept")
            return False
        self._writable()
        return True

    def _write_failed(self, error: OSError, what: str) -> None:
        self._retry_at = time.monotonic() + self.retry_interval_s
        if not self._error:
            self._log.error(
                f"Forensics: cannot write the outbox {self.directory} ({error}; disk "
                f"full?); {what} and written when the disk accepts them again (retried every "
                f"{self.retry_interval_s} s; a stop meanwhile keeps what it can)",
            )
        self._error = str(error)

    def _writable(self) -> None:
        if self._error:
            self._error = ""
            self._log.info(f"Forensics: the outbox {self.directory} is writable again")

    # -- reading back -----------------------------------------------------------------------------

    def read(self, max_records: int) -> list[Envelope]:
        """Up to ``max_records`` of the oldest records on disk, in order."""
        assert self.spill is not None
        return self.spill.read(max_records)

    def take_staged(self) -> list[Envelope]:
        """The staged records, in order, no longer staged (read back once the disk is read)."""
        taken = list(self._staged)
        self._staged.clear()
        return taken

    def release_read(self) -> None:
        """Delete the segments read completely (call once all read from them is delivered)."""
        assert self.spill is not None
        if self.spill.paths():
            self.spill.release()

    # -- at close ---------------------------------------------------------------------------------

    def keep(self, head: list[Envelope], tail: list[Envelope]) -> int:
        """Close with everything not delivered on disk, in order ``head ++ outbox ++ staged ++
        tail``, in one fsynced segment (or, with nothing left, no segment). Returns the records
        left for the next session."""
        assert self.spill is not None
        tail = self.take_staged() + tail
        if head or tail or self.spill.unread:
            written_before = len(head) + len(tail)
            self.undelivered = self.spill.rewrite(head, tail)
            self.spilled += written_before
            self.spill.close()
            self._log.warning(
                f"Forensics: {self.undelivered} records could not be delivered before close; "
                f"kept in {self.directory} (delivered by the next session using "
                "this spill directory)",
            )
        else:
            self.spill.release()
            self.spill.close()
        return self.undelivered
