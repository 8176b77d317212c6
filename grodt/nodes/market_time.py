"""The replay (market) time at which each order of a paper node was created.

A paper node runs on the wall clock, so its orders' own timestamps say nothing about the bar they
answered; ``grodt parity`` compares the replay clock at each ``OrderInitialized`` (written as the
``ts_market`` column of ``orders.csv``) with the backtest's order times.
"""

from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.events import OrderInitialized

from grodt.nodes.replay import ReplayDataClient

__all__ = ["PRUNE_EVERY", "OrderMarketTimes"]

PRUNE_EVERY = 10_000
"""New entries between two prunes (a prune scans the cache's orders once)."""


class OrderMarketTimes:
    """Replay clock (UNIX ns) of each order's ``OrderInitialized``, by client order id.

    Follows the cache's purges, so a node running for weeks does not keep every order id.
    Subscribe :meth:`record` to ``events.order.*``.
    """

    def __init__(self, replay: ReplayDataClient, cache: Cache) -> None:
        self._replay = replay
        self._cache = cache
        self.by_order: dict[str, int] = {}
        self._checked = 0  # entries older than the last prune (checked at the next)

    def record(self, event: Any) -> None:
        if isinstance(event, OrderInitialized):
            self.by_order[event.client_order_id.value] = self._replay.clock_ns
            if len(self.by_order) >= self._checked + PRUNE_EVERY:
                self.prune()

    def prune(self) -> None:
        """Forget orders the cache no longer holds.

        Only entries older than the previous prune are checked: an order's ``OrderInitialized``
        reaches handlers before the order is in the cache (trap 6), so a fresh entry would be
        dropped (and every later order would trigger a prune of its own).
        """
        held = {o.client_order_id.value for o in self._cache.orders()}
        entries = list(self.by_order.items())
        checked = self._checked
        kept = {k: v for k, v in entries[:checked] if k in held}
        kept.update(entries[checked:])
        self.by_order = kept
        self._checked = len(kept)
