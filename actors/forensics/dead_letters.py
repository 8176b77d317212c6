"""The dead-letter file: where a message that cannot become a delivered record is kept, one JSON
line each, so that nothing is ever dropped silently.

A line holds ``session``, ``seq``, ``topic``, ``component``, ``error`` and either ``record`` (the
encoded record, for a delivery that failed permanently) or ``repr`` (the message, cut at 4,000
characters, when it could not be encoded at all).
"""

import json
import threading
from pathlib import Path
from typing import Any

from actors.forensics.codec import Envelope
from actors.forensics.spill import LogLike

__all__ = ["DeadLetters"]

LOGGED_FIRST = 20
"""The first this many rejections of each thread are logged one by one, then one in 1,000."""


class DeadLetters:
    """Appends rejected messages to ``path`` (both threads may write: a lock orders the lines).

    Parameters
    ----------
    path : Path
        The dead-letter file (``<spill_dir>/rejected.jsonl``), appended to, created on first use.
    session : str
        The pipeline session, written on every line.
    log : LogLike
    """

    def __init__(self, path: Path, session: str, log: LogLike) -> None:
        self.path = Path(path)
        self.session = session
        self._log = log
        self._lock = threading.Lock()
        # One counter per thread, each written only by its thread.
        self.engine_count = 0
        self.worker_count = 0

    @property
    def count(self) -> int:
        """Messages rejected so far, by both threads."""
        return self.engine_count + self.worker_count

    def add(
        self,
        seq: int,
        topic: str,
        item: Any,
        error: str,
        on_engine: bool,
        envelope: Envelope | None = None,
    ) -> None:
        """Keep one rejected message (``envelope``: its encoded form, when there is one). Never
        raises: a file that cannot be written is logged with the line it would have held."""
        if on_engine:
            self.engine_count += 1
            count = self.engine_count
        else:
            self.worker_count += 1
            count = self.worker_count
        component = getattr(item, "component_id", None) or type(item).__name__
        if count <= LOGGED_FIRST or count % 1000 == 0:
            self._log.error(
                f"Forensics: record {seq} on {topic} from {component} rejected ({error}); "
                f"kept in {self.path}",
            )
        line: dict[str, Any] = {
            "session": self.session,
            "seq": seq,
            "topic": topic,
            "component": str(component),
            "error": error,
        }
        if envelope is not None:
            line["record"] = envelope.value.decode(errors="replace")
        else:
            line["repr"] = repr(item)[:4000]
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as handle:
                handle.write(json.dumps(line) + "\n")
        except OSError as e:
            self._log.error(f"Forensics: cannot write {self.path}: {e}; record {seq} was {line}")
