"""The shared outbox: records a session could not deliver wait, per sink, for the next process that
uses the same sink — not inside one run's directory.

Layout under one root per sink identity (default ``<runs_dir>/forensics/outbox/<sink key>``, or
the section's ``spill_dir``)::

    <root>/sink.json                      what the sink is (bootstrap servers, topics, settings)
    <root>/sessions/<session>/            one pipeline's spill directory (outbox/, overflow/)
    <root>/sessions/<session>/.lock       locked (flock) while that session's process lives

A starting session creates its own directory (under a hidden name until it holds its lock, so
no other process can take it), then claims every other session directory whose lock it can take
— its process has ended, cleanly or not: the kernel drops the lock of a dead process — and moves
the spill segments found there into its own outbox (a rename each: no copy, no memory), where
the pipeline adopts them as records left by an earlier session and delivers them first (segment
names sort by ``(session, seq)``, so older sessions come first). Two processes using the same
sink at once each keep their own directory and never take the other's.

A root-level ``outbox/`` or ``overflow/`` (the layout of a ``spill_dir`` before the shared
outbox) is claimed the same way, under ``<root>/.legacy.lock``.
"""

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from actors.forensics.spill import SEGMENT_SUFFIX
from actors.forensics.spill import LogLike

__all__ = [
    "SINK_FILE",
    "SPILL_SUBDIRS",
    "SessionLease",
    "SharedOutbox",
    "default_outbox_root",
    "public_producer_config",
    "sink_key",
]

SINK_FILE = "sink.json"
SPILL_SUBDIRS = ("outbox", "overflow")
"""The spill logs of a session directory, in stream order (the outbox holds older records)."""

_SESSIONS = "sessions"
_LOCK = ".lock"
_LEGACY_LOCK = ".legacy.lock"
_SECRET_WORDS = ("password", "secret", "token", "key")


def sink_key(bootstrap_servers: str, topics: Iterable[str]) -> str:
    """A stable name for a Kafka sink: ``kafka-<16 hex>`` of its bootstrap servers (order and
    spaces ignored) and topic set. Two configs naming the same cluster and topics share it."""
    servers = ",".join(sorted({s.strip() for s in bootstrap_servers.split(",") if s.strip()}))
    identity = f"{servers}|{','.join(sorted(set(topics)))}"
    return "kafka-" + hashlib.sha256(identity.encode()).hexdigest()[:16]


def default_outbox_root(runs_dir: Path, bootstrap_servers: str, topics: Iterable[str]) -> Path:
    """``<runs_dir>/forensics/outbox/<sink key>``: where a Kafka sink's records wait."""
    return Path(runs_dir) / "forensics" / "outbox" / sink_key(bootstrap_servers, topics)


def public_producer_config(config: dict[str, Any]) -> dict[str, Any]:
    """The producer settings safe to write to ``sink.json``: ``env:NAME`` references as they
    are; literal values of keys that look like secrets (password, secret, token, key) left out."""
    kept: dict[str, Any] = {}
    for name, value in config.items():
        reference = isinstance(value, str) and value.startswith("env:")
        if reference or not any(word in name.lower() for word in _SECRET_WORDS):
            kept[name] = value
    return kept


def _segments(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SEGMENT_SUFFIX}")) if directory.is_dir() else []


def _try_lock(path: Path) -> int | None:
    """An fd holding an exclusive flock on ``path``, or None when another process holds it or
    the file is gone (its directory was claimed and removed meanwhile)."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if os.fstat(fd).st_nlink == 0:  # removed by the process that held it before us
        os.close(fd)
        return None
    return fd


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class SessionLease:
    """A session's own spill directory, locked while this process lives (or until
    :meth:`close`).

    Attributes
    ----------
    path : Path
        The spill directory to give the pipeline.
    claimed_sessions : list[str]
        Ended sessions whose records were moved into this one's outbox.
    claimed_segments : int
        Segment files moved.
    """

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd
        self.claimed_sessions: list[str] = []
        self.claimed_segments = 0

    def close(self) -> None:
        """Release the lock (idempotent). The directory stays: what is left in it is claimed
        by the next process using the sink, which removes it."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class SharedOutbox:
    """The outbox root of one sink (see the module docstring).

    Parameters
    ----------
    root : Path
    log : LogLike
    """

    def __init__(self, root: Path, log: LogLike) -> None:
        self.root = Path(root)
        self._log = log

    @property
    def sessions_dir(self) -> Path:
        return self.root / _SESSIONS

    # -- the sink's description ------------------------------------------------------------------

    def write_sink(self, description: dict[str, Any]) -> None:
        """Write ``sink.json`` (atomically): what ``grodt forensics flush`` delivers to."""
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / SINK_FILE
        text = json.dumps(description, indent=2, sort_keys=True) + "\n"
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            return
        temporary = path.with_name(f".{SINK_FILE}.{os.getpid()}")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)

    def read_sink(self) -> dict[str, Any] | None:
        path = self.root / SINK_FILE
        if not path.is_file():
            return None
        loaded = json.loads(path.read_text(encoding="utf-8"))
        return loaded if isinstance(loaded, dict) else None

    # -- sessions ---------------------------------------------------------------------------------

    def open_session(self, session: str) -> SessionLease:
        """Create and lock this session's directory, then move the records of every ended
        session into its outbox (see the module docstring)."""
        self.sessions_dir.mkdir(parents=True, exist_ok=True)
        hidden = self.sessions_dir / f".new-{session}"
        hidden.mkdir()
        (hidden / _LOCK).touch()
        fd = _try_lock(hidden / _LOCK)
        assert fd is not None, "a fresh lock file is free"
        path = self.sessions_dir / session
        os.replace(hidden, path)
        lease = SessionLease(path, fd)
        self._claim_ended(lease)
        return lease

    def pending(self) -> int:
        """Records waiting in the outbox (every session, live or ended; lines counted)."""
        total = 0
        for directory in self._spill_dirs(include_legacy=True):
            for sub in SPILL_SUBDIRS:
                for segment in _segments(directory / sub):
                    with segment.open("rb") as handle:
                        total += sum(1 for line in handle if line.endswith(b"\n"))
        return total

    def _spill_dirs(self, include_legacy: bool) -> list[Path]:
        found = []
        if include_legacy and any(_segments(self.root / sub) for sub in SPILL_SUBDIRS):
            found.append(self.root)
        if self.sessions_dir.is_dir():
            found += sorted(
                p for p in self.sessions_dir.iterdir() if p.is_dir() and not p.name.startswith(".")
            )
        return found

    def _claim_ended(self, lease: SessionLease) -> None:
        target = lease.path / "outbox"
        target.mkdir(exist_ok=True)
        for directory in self._spill_dirs(include_legacy=True):
            if directory == lease.path:
                continue
            legacy = directory == self.root
            lock_path = directory / (_LEGACY_LOCK if legacy else _LOCK)
            if legacy:
                lock_path.touch()
            fd = _try_lock(lock_path)
            if fd is None:
                continue  # a live session, or claimed by another process right now
            try:
                moved = self._move_segments(directory, target)
                if moved:
                    lease.claimed_sessions.append(directory.name)
                    lease.claimed_segments += moved
                if not legacy:
                    with contextlib.suppress(OSError):
                        shutil.rmtree(directory)
                    # A session's dead letters stay in its run directory; an older layout may
                    # have left them here: kept beside the root, never deleted.
            finally:
                os.close(fd)
        if lease.claimed_segments:
            self._log.warning(
                f"Forensics: records of {len(lease.claimed_sessions)} ended session(s) found in "
                f"{self.root} ({lease.claimed_segments} spill segments); delivering them first",
            )

    def _move_segments(self, directory: Path, target: Path) -> int:
        """Rename every spill segment of ``directory`` into ``target`` (fsynced), outbox before
        overflow; keep a dead-letter file beside the root. Returns the segments moved."""
        moved = 0
        for sub in SPILL_SUBDIRS:
            for segment in _segments(directory / sub):
                destination = target / segment.name
                while destination.exists():  # the same first record in two logs: keep both
                    destination = destination.with_name(destination.stem + "_" + SEGMENT_SUFFIX)
                os.replace(segment, destination)
                moved += 1
        rejected = directory / "rejected.jsonl"
        if directory != self.root and rejected.is_file():
            os.replace(rejected, self.root / f"rejected-{directory.name}.jsonl")
        if moved:
            _fsync_dir(target)
        return moved
