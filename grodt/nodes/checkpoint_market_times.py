"""Orders' market times across a restart: the ``ts_market`` column of a restarted paper node.

:class:`grodt.nodes.market_time.OrderMarketTimes` keeps, in memory, the replay clock at each
order's ``OrderInitialized``; a restarted node would leave the crashed node's orders without
it. :class:`SavedMarketTimes` writes the entries recorded since the previous checkpoint into the
cache database at each checkpoint (one general key ``grodt.market_times.<n>`` per checkpoint that
has any, inside that checkpoint's transaction) and gives a restarted node's map the saved
entries of the orders its cache holds.
"""

import json
from typing import Any

from nautilus_trader.model.events import OrderInitialized

from grodt.nodes.market_time import OrderMarketTimes

__all__ = ["KEY_PREFIX", "SavedMarketTimes"]

KEY_PREFIX = "grodt.market_times"
"""Prefix of the saved chunks (general keys of the cache: ``<prefix>.1``, ``<prefix>.2``, ...)."""


class SavedMarketTimes:
    """Saves :class:`OrderMarketTimes` entries at checkpoints; restores them at a restart.

    Parameters
    ----------
    cache : Cache
        The node's cache (with a database: ``cache.add`` writes through it).
    times : OrderMarketTimes
        The node's map (client order id → replay clock, UNIX ns).
    """

    def __init__(self, cache: Any, times: OrderMarketTimes) -> None:
        self._cache = cache
        self._times = times
        self._unsaved: list[str] = []
        self.chunks = 0
        self.restored = 0

    def record(self, event: Any) -> None:
        """Note a new order (subscribe after :meth:`OrderMarketTimes.record`)."""
        if isinstance(event, OrderInitialized):
            self._unsaved.append(event.client_order_id.value)

    def save(self) -> None:
        """Write the entries of the orders created since the last save (a checkpoint)."""
        if not self._unsaved:
            return
        by_order = self._times.by_order
        entries = {order: by_order[order] for order in self._unsaved if order in by_order}
        self._unsaved.clear()
        self.chunks += 1
        self._cache.add(f"{KEY_PREFIX}.{self.chunks}", json.dumps(entries).encode())

    def restore(self) -> int:
        """Give the map the saved entries of every order the cache holds (a restarted node,
        before its replay goes on); returns how many."""
        saved: dict[str, int] = {}
        while (raw := self._cache.get(f"{KEY_PREFIX}.{self.chunks + 1}")) is not None:
            saved.update(json.loads(bytes(raw).decode()))
            self.chunks += 1
        held = {order.client_order_id.value for order in self._cache.orders()}
        entries = {order: int(ts) for order, ts in saved.items() if order in held}
        self._times.by_order = {**entries, **self._times.by_order}
        self.restored = len(entries)
        return self.restored
