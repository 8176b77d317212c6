"""A throw-away local Redis server for the tests: the live node's cache database.

:class:`TemporaryRedis` runs ``redis-server`` (Debian package ``redis-server``; ``make
install-dev`` installs it when missing and root) on a free loopback port with its working
directory in a fresh temporary directory. Persistence to disk is off (no RDB snapshots, no AOF):
the node's state must survive the *node's* crash, and the server outlives the node in the tests.
"""

import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from grodt.core.errors import GrodtError
from grodt.test_kit.ports import free_port
from grodt.test_kit.ports import wait_port

__all__ = ["TemporaryRedis", "find_redis_server"]


def find_redis_server() -> Path:
    """The ``redis-server`` executable on ``PATH`` (GrodtError naming the package if absent)."""
    found = shutil.which("redis-server")
    if found is None:
        raise GrodtError(
            "redis-server not found: install the Debian package redis-server "
            "(`make install-dev` does when run as root)",
        )
    return Path(found)


class TemporaryRedis:
    """A Redis server on ``127.0.0.1:port``, stopped and its directory deleted by :meth:`stop`.

    Parameters
    ----------
    port : int, optional
        TCP port (default: a free one).
    """

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.host = "127.0.0.1"
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> "TemporaryRedis":
        """Start the server and wait until it accepts connections."""
        executable = find_redis_server()
        self._dir = Path(tempfile.mkdtemp(prefix="grodt-redis-"))
        self._process = subprocess.Popen(
            [
                str(executable),
                "--port",
                str(self.port),
                "--bind",
                self.host,
                "--dir",
                str(self._dir),
                "--save",
                "",
                "--appendonly",
                "no",
                "--protected-mode",
                "yes",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            wait_port(self.port, timeout=15.0)
        except TimeoutError:
            self.stop()
            raise
        return self

    def flush(self) -> None:
        """Delete every key (``FLUSHALL``, sent in RESP over a socket)."""

        with socket.create_connection((self.host, self.port), timeout=5.0) as sock:
            sock.sendall(b"*1\r\n$8\r\nFLUSHALL\r\n")
            reply = sock.recv(64)
        if not reply.startswith(b"+OK"):
            raise GrodtError(f"redis FLUSHALL failed: {reply!r}")

    def stop(self) -> None:
        """Terminate the server and delete its directory (idempotent)."""
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5.0)
        if process is not None and process.stderr is not None:
            process.stderr.close()
        self._process = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    def __enter__(self) -> "TemporaryRedis":
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
