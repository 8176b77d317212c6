"""What the gate costs per command, apart from the strategies' handlers it dispatches to.

Running count and mean over every command; percentiles over the latest :data:`MAX_TIMINGS`.
"""

from collections import deque
from typing import Any

__all__ = ["MAX_TIMINGS", "GateCost"]

MAX_TIMINGS = 100_000
"""Cost samples kept for the percentiles (the latest; mean and count are running)."""


class GateCost:
    """Nanoseconds per command (the gate's own) and per dispatch (the handlers' share)."""

    def __init__(self) -> None:
        self.gate_ns: deque[int] = deque(maxlen=MAX_TIMINGS)
        self.dispatch_ns: deque[int] = deque(maxlen=MAX_TIMINGS)
        self.commands = 0
        self.gate_ns_total = 0
        self.dispatched = 0
        self.dispatch_ns_total = 0

    def add(self, gate_ns: int, dispatch_ns: int) -> None:
        """One command: the gate's own ns, and the ns its event dispatches took (0: none)."""
        self.gate_ns.append(gate_ns)
        self.commands += 1
        self.gate_ns_total += gate_ns
        if dispatch_ns:
            self.dispatch_ns.append(dispatch_ns)
            self.dispatched += 1
            self.dispatch_ns_total += dispatch_ns

    def summary(self) -> dict[str, Any]:
        """Microseconds: mean and count over all commands, p50/p99 over the kept samples."""
        costs = sorted(self.gate_ns)
        n = len(costs)
        commands = self.commands
        dispatched = self.dispatched

        def pct(p: float) -> float | None:
            return costs[min(n - 1, int(p * n))] / 1000.0 if n else None

        return {
            "commands": commands,
            "mean": (self.gate_ns_total / commands / 1000.0) if commands else None,
            "p50": pct(0.5),
            "p99": pct(0.99),
            "events_dispatched": dispatched,
            "events_mean": ((self.dispatch_ns_total / dispatched / 1000.0) if dispatched else None),
        }
