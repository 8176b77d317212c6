"""Supervised live node: run it as a child process and start it again when it crashes.

``grodt live CONFIG --supervise`` runs ``python -m grodt live CONFIG --run-dir RUN_DIR ...`` as a
child. A crash (a non-zero exit other than a config error, or death by a signal the supervisor
did not forward) starts the child again in the same run directory after a backoff (``initial``
seconds, doubled at each restart up to ``maximum``), at most ``max_restarts`` times. With a
``cache_database:`` the restarted node resumes as itself (orders, positions, strategy state,
replay position); without one it starts afresh. SIGINT/SIGTERM to the supervisor are the
operator's stop: forwarded to the child (its graceful stop), never followed by a restart.

Each restart prints a health line (``supervisor restart 1/3: ...``) and appends one JSON record
to ``RUN_DIR/restarts.jsonl`` (time, exit status, signal, backoff, the node's last health
snapshot), the restart's forensics.
"""

import json
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grodt.core.errors import EXIT_UNDELIVERED
from grodt.core.errors import EXIT_USER_ERROR
from grodt.nodes.operations import utc_now_iso

__all__ = ["CLEAN_EXITS", "RESTARTS_FILE", "RestartPolicy", "supervise"]

CLEAN_EXITS = frozenset({0, EXIT_USER_ERROR, EXIT_UNDELIVERED})
"""Exit statuses that end supervision: a finished run (with or without forensics records left
undelivered: the shared outbox keeps them), or a config error, which restarting cannot fix."""

RESTARTS_FILE = "restarts.jsonl"


@dataclass(frozen=True)
class RestartPolicy:
    """At most ``max_restarts`` restarts; backoff ``initial`` s, doubled up to ``maximum`` s."""

    max_restarts: int = 3
    initial: float = 1.0
    maximum: float = 60.0

    def backoff(self, restart: int) -> float:
        """Seconds to wait before restart number ``restart`` (1-based)."""
        return min(self.initial * 2 ** (restart - 1), self.maximum)


def _exit_text(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"{signal.Signals(-returncode).name} (exit {returncode})"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit {returncode}"


def _last_health(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "health.jsonl"
    if not path.exists():
        return None
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        return None
    try:
        return json.loads(lines[-1])
    except ValueError:
        return None  # the node died mid-line: the record says no health, nothing is invented


def supervise(
    command: list[str],
    run_dir: Path,
    policy: RestartPolicy,
    on_line: Callable[[str], None],
    env: dict[str, str] | None = None,
) -> int:
    """Run ``command`` until it ends without crashing, the operator stops it, or the restarts
    are spent; returns the last child's exit status (negative: killed by that signal)."""
    run_dir.mkdir(parents=True, exist_ok=True)
    stopping = threading.Event()
    child: list[subprocess.Popen[bytes]] = []

    def forward(signum: int, _frame: object) -> None:
        stopping.set()
        if child and child[-1].poll() is None:
            child[-1].send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    restarts = 0
    try:
        while True:
            child.append(subprocess.Popen(command, env=env))
            returncode = child[-1].wait()
            if stopping.is_set() or returncode in CLEAN_EXITS:
                return returncode
            if restarts >= policy.max_restarts:
                on_line(
                    f"supervisor: node crashed ({_exit_text(returncode)}); "
                    f"{policy.max_restarts} restarts spent, giving up",
                )
                _record(run_dir, restarts, returncode, None, given_up=True)
                return returncode
            restarts += 1
            delay = policy.backoff(restarts)
            _record(run_dir, restarts, returncode, delay, given_up=False)
            on_line(
                f"health {utc_now_iso()} supervisor restart {restarts}/{policy.max_restarts}: "
                f"node crashed ({_exit_text(returncode)}), restarting in {delay:g} s",
            )
            if stopping.wait(delay):
                return returncode
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _record(
    run_dir: Path,
    restart: int,
    returncode: int,
    delay: float | None,
    given_up: bool,
) -> None:
    record = {
        "time": utc_now_iso(),
        "event": "gave_up" if given_up else "restart",
        "restart": restart,
        "exit_code": returncode,
        "signal": signal.Signals(-returncode).name if returncode < 0 else None,
        "backoff_seconds": delay,
        "last_health": _last_health(run_dir),
        "wall_ns": time.time_ns(),
    }
    with (run_dir / RESTARTS_FILE).open("a", encoding="utf-8") as sink:
        sink.write(json.dumps(record, default=str) + "\n")
