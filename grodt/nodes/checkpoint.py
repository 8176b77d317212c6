"""Crash checkpoints of a live node with a cache database: where a restarted node resumes.

Nautilus saves strategy and actor state (``on_save``) only at a graceful stop; a node killed with
SIGKILL would restart from its last *graceful* stop. The live node therefore checkpoints while
it runs: :func:`save_checkpoint` asks the trader to save every strategy's and actor's state into
the cache database, then writes :data:`CHECKPOINT_KEY` (the replay position) into the same
database, through the same ordered writer, so a checkpoint found at restart was written after the
states it goes with. In lockstep replay it runs after every record, once the engines are idle (a
quiescent point: every order that record caused is in the cache), and waits until the
checkpoint is in Redis (:class:`DurableCheckpoint`) before the next record; otherwise every
``cache_database.checkpoint_seconds``.
"""

import asyncio
import json
import socket
import ssl
import time
from dataclasses import asdict
from dataclasses import dataclass
from typing import Any

from grodt.core.errors import GrodtError

__all__ = [
    "CHECKPOINT_KEY",
    "Checkpoint",
    "DurableCheckpoint",
    "load_checkpoint",
    "save_checkpoint",
]

CHECKPOINT_KEY = "grodt.checkpoint"
"""Key of the checkpoint in Nautilus' general cache (persisted by the cache database)."""


@dataclass(frozen=True)
class Checkpoint:
    """Where the node stood at its last checkpoint.

    Attributes
    ----------
    replayed : int
        Replay records dispatched and handled (0 for a node without replay): the restarted
        replay starts at this index.
    market_ts : int
        ``ts_init`` of the last of them, UNIX ns (0 without replay): checked against the catalog
        at resume, so a changed catalog or config is an error, not a silent skip.
    saved_ns : int
        Wall clock at the checkpoint, UNIX ns.
    """

    replayed: int
    market_ts: int
    saved_ns: int


def save_checkpoint(kernel: Any, checkpoint: Checkpoint) -> bytes:
    """Save every strategy's and actor's state, then the checkpoint, into the cache database;
    returns the checkpoint's stored bytes."""
    kernel.trader.save()
    value = json.dumps(asdict(checkpoint)).encode()
    kernel.cache.add(CHECKPOINT_KEY, value)
    return value


class DurableCheckpoint:
    """Waits until a checkpoint is in Redis, not only queued in this process.

    Nautilus' Redis writer is a queue drained by a background thread, in order: once the
    checkpoint written last is readable from the server, every write queued before it (orders,
    positions, strategy states) is there too. Lockstep replay waits for that before the next
    record, so a SIGKILL loses at most the record being handled. Reads go through a connection of
    its own (RESP ``GET``), to the key Nautilus writes (``trader-<trader id>:general:<key>``).

    Parameters
    ----------
    host, port : str, int
        The cache database server.
    trader_id : str
        The node's trader id (Nautilus' key prefix).
    password : str, optional
        Redis AUTH password.
    use_ssl : bool, default False
    timeout : float, default 30.0
        Seconds to wait for one checkpoint before GrodtError.
    """

    def __init__(
        self,
        host: str,
        port: int,
        trader_id: str,
        password: str | None = None,
        use_ssl: bool = False,
        timeout: float = 30.0,
    ) -> None:
        self.host = host
        self.port = port
        self.key = f"trader-{trader_id}:general:{CHECKPOINT_KEY}".encode()
        self.password = password
        self.use_ssl = use_ssl
        self.timeout = timeout
        self.polls = 0
        self._socket: socket.socket | None = None
        self._buffer = b""

    def _connect(self) -> socket.socket:
        if self._socket is None:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
            if self.use_ssl:
                sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
            self._socket = sock
            self._buffer = b""
            if self.password:
                self._command(b"AUTH", self.password.encode())
        return self._socket

    def _command(self, *parts: bytes) -> bytes | None:
        sock = self._connect()
        request = b"*%d\r\n" % len(parts) + b"".join(
            b"$%d\r\n%s\r\n" % (len(part), part) for part in parts
        )
        sock.sendall(request)
        line = self._read_line()
        if line.startswith(b"-"):
            raise GrodtError(f"cache database: {line[1:].decode(errors='replace')}")
        if line.startswith(b"$"):
            length = int(line[1:])
            if length < 0:
                return None
            while len(self._buffer) < length + 2:
                self._receive()
            value, self._buffer = self._buffer[:length], self._buffer[length + 2 :]
            return value
        return line[1:]

    def _receive(self) -> None:
        assert self._socket is not None
        chunk = self._socket.recv(65536)
        if not chunk:
            raise GrodtError("cache database: connection closed")
        self._buffer += chunk

    def _read_line(self) -> bytes:
        while b"\r\n" not in self._buffer:
            self._receive()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line

    async def wait(self, value: bytes) -> None:
        """Return once the server holds ``value`` under the checkpoint key."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.polls += 1
            if self._command(b"GET", self.key) == value:
                return
            if time.monotonic() > deadline:
                raise GrodtError(
                    f"cache database: checkpoint not written to {self.host}:{self.port} "
                    f"after {self.timeout:g} s",
                )
            await asyncio.sleep(0.0002)

    def close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None


def load_checkpoint(cache: Any) -> Checkpoint | None:
    """The checkpoint the cache loaded from its database at build, or None (a first start)."""
    raw = cache.get(CHECKPOINT_KEY)
    if raw is None:
        return None
    try:
        document = json.loads(bytes(raw).decode())
        return Checkpoint(
            replayed=int(document["replayed"]),
            market_ts=int(document["market_ts"]),
            saved_ns=int(document["saved_ns"]),
        )
    except (ValueError, KeyError, TypeError) as e:
        raise GrodtError(
            f"cache database: checkpoint {CHECKPOINT_KEY!r} is unreadable ({e}); "
            "delete the key (or the database) to start afresh",
        ) from e
