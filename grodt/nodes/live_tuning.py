"""Engine-thread settings of a live node's process: the GIL switch interval and the collector.

Both are process-wide Python settings that decide how long the event-loop thread can be kept
waiting by something that is not its own work:

- **GIL switch interval.** A thread that wants the GIL waits up to ``sys.getswitchinterval()``
  (5 ms by default) before it asks the holder to drop it. The forensics worker thread and the
  regime refit's helper thread run Python; when one of them holds the GIL as a bar arrives, the
  engine thread waits up to the interval: the size of the paper node's P99. A shorter interval
  bounds that wait (at the price of more hand-overs while both threads are busy).
- **Garbage collector.** A generation-2 collection walks every tracked object; after start the
  heap holds the imported libraries, the catalog's records and the cache. ``gc.freeze()`` after
  the node is built moves everything allocated so far into a permanent generation that
  collections skip, so a collection during the run only walks what the run allocated. (No
  ``gc.collect()`` first: over the ~200k objects of an imported stack it takes ~0.3 s, paid by
  every node start; what garbage exists at the freeze stays until the run ends.)

:class:`EngineThreadTuning` applies both around a run and restores the previous values after it
(the process may run other nodes: tests, ``grodt parity``). Nothing here changes a decision: the
same records in the same order reach the same handlers.
"""

import gc
import sys
from dataclasses import dataclass

__all__ = ["DEFAULT_TUNING", "UNTUNED", "EngineThreadTuning"]


@dataclass(frozen=True, slots=True)
class EngineThreadTuning:
    """Process settings for the duration of a live node's run.

    Attributes
    ----------
    switch_interval_s : float | None
        ``sys.setswitchinterval`` while the node runs (seconds); None keeps the process' value.
    gc_freeze : bool
        ``gc.freeze()`` once the node is built, ``gc.unfreeze()`` after the run.
    """

    switch_interval_s: float | None = 0.0005
    gc_freeze: bool = True

    def apply(self) -> "AppliedTuning":
        """Apply the settings; the returned object restores the previous ones."""
        previous_interval = sys.getswitchinterval()
        if self.switch_interval_s is not None:
            sys.setswitchinterval(self.switch_interval_s)
        if self.gc_freeze:
            gc.freeze()
        return AppliedTuning(self, previous_interval)

    def describe(self) -> dict[str, object]:
        return {"switch_interval_s": self.switch_interval_s, "gc_freeze": self.gc_freeze}


@dataclass(slots=True)
class AppliedTuning:
    """What :meth:`EngineThreadTuning.apply` changed, to undo it once."""

    tuning: EngineThreadTuning
    previous_interval_s: float
    restored: bool = False

    def restore(self) -> None:
        if self.restored:
            return
        self.restored = True
        sys.setswitchinterval(self.previous_interval_s)
        if self.tuning.gc_freeze:
            gc.unfreeze()


DEFAULT_TUNING = EngineThreadTuning()
"""What a live node applies unless told otherwise (measured: ``docs/live.md``, "Latency")."""

UNTUNED = EngineThreadTuning(switch_interval_s=None, gc_freeze=False)
"""Python's defaults left alone (the benchmark's "before")."""
