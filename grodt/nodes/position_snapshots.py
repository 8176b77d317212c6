"""Closed position cycles of a node with a cache database, kept across a restart.

A NETTING position keeps one id for all its open/close cycles: when a closed position opens
again, Nautilus' cache snapshots the closed cycle (``Cache.snapshot_position``) and the positions
report lists every snapshot. The snapshots live only in the process' memory (the cache database
does not store them), so a restarted node would report only the cycles since the restart.

:class:`PositionSnapshots` writes each closed cycle into the cache database as it closes (the
state a snapshot at reopening will hold: nothing changes a closed position) and gives a restarted
node's cache its snapshots back: every saved cycle but the latest one of a position that is
still closed (the cached position itself is that cycle).
"""

import pickle
from typing import Any

from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.identifiers import PositionId

from grodt.core.topics import NAUTILUS_POSITION_EVENTS

__all__ = ["PositionSnapshots"]

_KEY_PREFIX = "grodt.position_cycle"


def _key(position_id: PositionId, number: int) -> str:
    return f"{_KEY_PREFIX}.{position_id}.{number}"


class PositionSnapshots:
    """Saves closed position cycles into the cache database; restores them as snapshots.

    Parameters
    ----------
    cache : Cache
        The node's cache (with a database: ``cache.add`` writes through it).
    """

    def __init__(self, cache: Any) -> None:
        self._cache = cache
        self._cycles: dict[PositionId, int] = {}
        self.saved = 0
        self.restored = 0

    def subscribe(self, msgbus: Any) -> None:
        """Save each cycle as its position closes."""
        msgbus.subscribe(NAUTILUS_POSITION_EVENTS, self._on_position_event)

    def _on_position_event(self, event: Any) -> None:
        if not isinstance(event, PositionClosed):
            return
        position = self._cache.position(event.position_id)
        if position is None:
            return
        number = self._cycles.get(position.id, 0) + 1
        self._cycles[position.id] = number
        self._cache.add(_key(position.id, number), pickle.dumps(position))
        self.saved += 1

    def restore(self) -> int:
        """Snapshot the saved cycles of every cached position (a restarted node, before its
        replay goes on); returns how many snapshots were added."""
        added = 0
        for position in self._cache.positions():
            cycles: list[bytes] = []
            while (raw := self._cache.get(_key(position.id, len(cycles) + 1))) is not None:
                cycles.append(bytes(raw))
            self._cycles[position.id] = len(cycles)
            if cycles and position.is_closed:
                latest = pickle.loads(cycles[-1])  # the node's own database
                if latest.ts_closed == position.ts_closed:
                    cycles.pop()  # the cached position is this cycle
            for cycle in cycles:
                self._cache.snapshot_position(pickle.loads(cycle))
                added += 1
        self.restored = added
        return added
