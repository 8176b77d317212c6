"""A throw-away local Ray head on loopback for the tests and benchmarks.

``ray start --head --block`` runs in the foreground as a child of this process: its GCS server,
raylet and workers are its own children, and stopping it (SIGTERM to that one process) makes it
stop exactly those processes, never another Ray on the machine (``ray stop`` would kill every
Ray process of the user). The session's files go to a temporary directory of its own.
"""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grodt.test_kit.ports import free_port
from grodt.test_kit.ports import wait_port

__all__ = ["RayHead", "ray_head"]

START_TIMEOUT_S = 90.0
OBJECT_STORE_BYTES = 100 * 1024 * 1024
"""Small: trials exchange kilobytes, and Ray's default (30% of RAM) is a lot on a shared box."""


class RayHead:
    """A running head: ``address`` (``127.0.0.1:PORT``) for ``ray.init`` / ``--ray``."""

    def __init__(self, process: subprocess.Popen[bytes], address: str, temp_dir: Path) -> None:
        self.process = process
        self.address = address
        self.temp_dir = temp_dir

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the head and everything it started; kill it if it does not stop in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                # Its children share its process group (start_new_session below).
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        shutil.rmtree(self.temp_dir, ignore_errors=True)


def _ray_executable() -> str:
    candidate = Path(sys.executable).with_name("ray")
    if candidate.is_file():
        return str(candidate)
    found = shutil.which("ray")
    if found is None:
        raise FileNotFoundError("the `ray` command is not installed (pip install 'grodt[ray]')")
    return found


SINGLE_NODE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""Ray's switch for multi-node networking; 0 keeps a local head and its driver on 127.0.0.1."""


@contextmanager
def ray_head(num_cpus: int = 2) -> Iterator[RayHead]:
    """Start a Ray head on ``127.0.0.1`` with ``num_cpus`` CPUs; stopped on exit."""
    port = free_port()
    temp_dir = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))  # short: socket paths <108 chars
    log = (temp_dir / "head.log").open("wb")
    # Single-node mode: every Ray process (and a driver started after this) binds and connects on
    # loopback only, never on the machine's interface address (Ray's default for a cluster).
    os.environ[SINGLE_NODE_ENV] = "0"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0")
    process = subprocess.Popen(
        [
            _ray_executable(),
            "start",
            "--head",
            "--block",
            "--node-ip-address",
            "127.0.0.1",
            "--port",
            str(port),
            "--num-cpus",
            str(num_cpus),
            "--include-dashboard",
            "false",
            "--dashboard-port",  # the minimal dashboard agent still binds one: not the fixed 8265
            str(free_port()),
            "--disable-usage-stats",
            "--object-store-memory",
            str(OBJECT_STORE_BYTES),
            "--temp-dir",
            str(temp_dir),
            "--min-worker-port",
            "0",
            "--max-worker-port",
            "0",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    head = RayHead(process, f"127.0.0.1:{port}", temp_dir)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:  # the GCS port answers first; ray.init waits for the raylet
            if process.poll() is not None:
                text = (temp_dir / "head.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"ray head exited with {process.returncode}:\n{text}")
            try:
                wait_port(port, timeout=1.0)
                break
            except TimeoutError:
                if time.monotonic() > deadline:
                    raise
        yield head
    finally:
        log.close()
        head.stop()
