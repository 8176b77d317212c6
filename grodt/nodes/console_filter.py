"""Keep Nautilus' "handler was called when not overridden" warnings off the console.

Nautilus 1.221's ``Strategy`` and ``Actor`` warn from their default ``on_start``, ``on_stop``,
``on_resume`` and ``on_reset`` ("The `Strategy.on_stop` handler was called when not overridden.
…"), so every run of a plain strategy that has nothing to do on stop prints one. It is noise to
a researcher, but it belongs in the run's log file.

Nautilus' logger is Rust and its only filter is per *component* (``log_component_levels``),
which applies to the console and the file alike: muting the strategy's component would also
drop every other warning it logs, from both. So the filter works on the console stream itself:
while a node runs, file descriptor 1 is a pipe, and a thread forwards every line to the real
standard output except those matching :data:`UNOVERRIDDEN_HANDLER`. The log file is written by
Nautilus' own writer and never passes through here, so it keeps the warnings.
"""

import contextlib
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from collections.abc import Sequence

__all__ = ["UNOVERRIDDEN_HANDLER", "filtered_console"]

UNOVERRIDDEN_HANDLER = re.compile(
    rb"The `(?:Strategy|Actor)\.on_(?:start|stop|resume|reset)` handler was called when not "
    rb"overridden",
)
"""The console lines dropped by default (a line = one Nautilus log record)."""

logger = logging.getLogger("grodt.nodes")

_SETTLE_S = 0.05
_JOIN_TIMEOUT_S = 2.0


def _deliver(fd: int, data: bytes) -> bool:
    """Write all of ``data``; False when the console is gone (said once on the log)."""
    view = memoryview(data)
    try:
        while view:
            written = os.write(fd, view)
            view = view[written:]
    except OSError as e:
        logger.warning("console output stopped (%s); the run goes on, its log file is complete", e)
        return False
    return True


def _forward(source: int, target: int, patterns: Sequence[re.Pattern[bytes]]) -> None:
    """Copy ``source`` to ``target`` line by line, dropping matching lines, until EOF.

    If the console goes away (a closed pipe: ``grodt backtest … | head``), the rest is read and
    discarded: the writers (Nautilus' logger thread) must never block on a full pipe.
    """
    pending = b""
    console_open = True
    while True:
        chunk = os.read(source, 65536)
        if not chunk:
            break
        if not console_open:
            continue
        pending += chunk
        *lines, pending = pending.split(b"\n")
        kept = [line + b"\n" for line in lines if not any(p.search(line) for p in patterns)]
        console_open = _deliver(target, b"".join(kept))
    if console_open and pending and not any(p.search(pending) for p in patterns):
        _deliver(target, pending)
    os.close(source)
    # This thread owns its duplicate of the console: closing it here, not in the caller, so a
    # late EOF (a forked child still holding the pipe) never meets a closed or reused fd.
    os.close(target)


@contextlib.contextmanager
def filtered_console(
    enabled: bool = True,
    patterns: Sequence[re.Pattern[bytes]] = (UNOVERRIDDEN_HANDLER,),
) -> Iterator[None]:
    """Drop console lines matching ``patterns`` from standard output while the block runs.

    Every other byte written to file descriptor 1 (Nautilus' console log, Python's
    ``sys.stdout``) reaches the real standard output, in order. ``enabled=False`` (console
    logging off) does nothing.
    """
    if not enabled:
        yield
        return
    sys.stdout.flush()
    console = os.dup(1)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 1)
    os.close(write_end)
    forwarder = threading.Thread(
        target=_forward,
        args=(read_end, console, tuple(patterns)),
        name="grodt-console-filter",
        daemon=True,
    )
    forwarder.start()
    try:
        yield
    finally:
        sys.stdout.flush()
        _flush_nautilus_logger()
        # fd 1 back to the console closes the pipe's last write end: the thread drains what is
        # left, sees EOF and ends. A Nautilus line written after this goes straight to the
        # console (unfiltered, never lost).
        os.dup2(console, 1)
        forwarder.join(_JOIN_TIMEOUT_S)


def _flush_nautilus_logger() -> None:
    """Ask Nautilus' logger thread to write what it holds, and give it a moment to do so (it
    writes from its own thread; records reach it within microseconds)."""
    from nautilus_trader.common.component import flush_logger
    from nautilus_trader.common.component import is_logging_initialized

    if is_logging_initialized():
        flush_logger()
        time.sleep(_SETTLE_S)
