"""Bounded cache for long backtests: closed orders and positions leave the cache once their report
rows are written, so per-order cost and memory do not grow with the run's history.

Why: on every fill, Nautilus 1.221's simulated matching engine loops over
``cache.orders_for_position(position.id)``. grodt's strategies run NETTING, so each (instrument,
strategy) keeps one position id for the whole run and that list holds every order the strategy
ever sent (one call: 12 µs with 296 orders, 684 µs with 3,812). The cache also keeps every order
and position snapshot (4.8 GB for 342k orders).

:class:`CachePurgeActor` wakes every ``interval_minutes`` of simulated time, appends the report rows
of every closed order (and its fills) and closed position (and its snapshots) that has been closed
for at least ``buffer_minutes`` to spill files (one per report), and purges them with Nautilus'
own ``Cache.purge_order`` / ``purge_position``. Position snapshots are spilled as the pickled
bytes the cache holds them in (decoded when the report is written, outside the event loop).
A closed order is kept while an order of its contingency family (parent, linked orders,
children) is still working, and a closed position while a working order still names it: the
matching engine and the risk gate read those.
:mod:`grodt.nodes.backtest_reports` writes the reports from the spill files plus what the cache
still holds, row for row what Nautilus' ``ReportProvider`` gives on an unpurged cache.
"""

import gc
import pickle
from pathlib import Path
from typing import Any
from typing import BinaryIO

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import OrderListId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.orders import Order
from nautilus_trader.model.orders import OrderList
from nautilus_trader.model.position import Position

__all__ = [
    "CachePurgeActor",
    "CachePurgeActorConfig",
]

_NANOS_PER_MINUTE = 60_000_000_000
_SPILL_KINDS = ("orders", "fills", "positions", "snapshots", "account_states")


class CachePurgeActorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`CachePurgeActor`.

    Parameters
    ----------
    spill_dir : str
        Directory the purged report rows are appended to: one file of pickled batches per kind
        of row (orders, fills, positions, position snapshots, account states).
    interval_minutes : int, default 60
        Simulated minutes between purges.
    buffer_minutes : int, default 60
        Simulated minutes an order stays closed in the cache before it is purged on its own.
    position_buffer_minutes : int, default 0
        Simulated minutes a position stays closed before it is purged, with every order of its
        order index. 0: at the first pass after it closed. A NETTING position that reopens
        within the buffer is never purged, and the bracket legs it canceled stay in its order
        index (they can only leave with it): a buffer longer than the strategies' flat spells
        lets that index grow for as long as they keep trading.
    """

    spill_dir: str
    interval_minutes: PositiveInt = 60
    buffer_minutes: NonNegativeInt = 60
    position_buffer_minutes: NonNegativeInt = 0


class CachePurgeActor(Actor):
    """Spills the report rows of closed orders and positions, then purges them from the cache."""

    def __init__(self, config: CachePurgeActorConfig) -> None:
        super().__init__(config)
        self._buffer_ns = config.buffer_minutes * _NANOS_PER_MINUTE
        self._position_buffer_ns = config.position_buffer_minutes * _NANOS_PER_MINUTE
        self._waiting = True
        self._last_counts = (-1, -1)
        self.purged_orders = 0
        self.purged_positions = 0
        self.purged_account_states = 0
        self.purged_order_lists = 0
        self._order_lists: dict[OrderListId, OrderList] | None = None
        self._order_lists_missing = False
        self._snapshots: dict[PositionId, list[bytes]] | None = None
        self._snapshots_missing = False

    def on_start(self) -> None:
        spill_dir = Path(self.config.spill_dir)
        spill_dir.mkdir(parents=True, exist_ok=True)
        for kind in _SPILL_KINDS:
            (spill_dir / f"{kind}.pickle").unlink(missing_ok=True)
        self.clock.set_timer_ns(
            name="grodt-cache-purge",
            interval_ns=self.config.interval_minutes * _NANOS_PER_MINUTE,
            start_time_ns=0,
            stop_time_ns=0,
            callback=self._on_timer,
        )

    def on_stop(self) -> None:
        if "grodt-cache-purge" in self.clock.timer_names:
            self.clock.cancel_timer("grodt-cache-purge")

    def _on_timer(self, event: TimeEvent) -> None:
        self.purge(event.ts_event)

    def purge(self, ts_now: int) -> None:
        """Spill and purge what has been closed for at least the buffer at ``ts_now``."""
        cache = self.cache
        # Nothing closed since the last pass, which left nothing waiting for its buffer (nights,
        # weekends): nothing can have become purgeable.
        if not self._waiting and self._closed_counts() == self._last_counts:
            return
        cutoff = ts_now - self._buffer_ns
        position_cutoff = ts_now - self._position_buffer_ns
        working = [order for order in cache.orders() if not order.is_closed]
        busy_orders = set()
        busy_positions = set()
        for order in working:
            busy_orders.add(order.client_order_id)
            if order.parent_order_id is not None:
                busy_orders.add(order.parent_order_id)
            busy_orders.update(order.linked_order_ids or ())
            if order.position_id is not None:
                busy_positions.add(order.position_id)

        def family_done(order: Order) -> bool:
            return (
                order.client_order_id not in busy_orders
                and not any(linked in busy_orders for linked in order.linked_order_ids or ())
                and (order.parent_order_id is None or order.parent_order_id not in busy_orders)
            )

        chosen: dict[ClientOrderId, Order] = {}
        waiting = False
        for order in cache.orders_closed():
            if order.ts_closed > cutoff:
                waiting = True
            # The cheap tests first: most closed orders left behind are bracket legs indexed
            # under a position that is still open (they leave with it).
            elif _unindexes_cleanly(cache, order) and family_done(order):
                chosen[order.client_order_id] = order
        positions = []
        for position in cache.positions_closed():
            if not position.is_closed or position.id in busy_positions:
                continue
            if position.ts_closed > position_cutoff:
                waiting = True
                continue
            # The position's order index goes with it: every order in it leaves too (an order
            # left behind could never be purged: Cache.purge_order fails once its position is
            # gone), so the position stays until all of them can.
            members = cache.orders_for_position(position.id)
            if all(
                order.is_closed and family_done(order) and _member_of(cache, order, position.id)
                for order in members
            ):
                positions.append(position)
                chosen.update((order.client_order_id, order) for order in members)
        orders = list(chosen.values())
        self._waiting = waiting
        states = self._old_account_states(cutoff)
        if orders or positions or states:
            self._spill_and_purge(orders, positions, states)
        self._last_counts = self._closed_counts()

    def _old_account_states(self, cutoff: int) -> list[AccountState]:
        """Account states (one per fill and balance change) older than ``cutoff`` that
        ``Cache.purge_account_events`` removes: all but the latest of each account."""
        old = []
        for account in self.cache.accounts():
            events = account.events
            kept_last = events and events[-1].ts_event <= cutoff
            old.extend(events[:-1] if kept_last else [e for e in events if e.ts_event <= cutoff])
        return old

    def _closed_counts(self) -> tuple[int, int]:
        # Between passes closed orders only accrue (nothing else purges them): an unchanged
        # count means no order closed, so no fill completed and no family finished working.
        return self.cache.orders_closed_count(), self.cache.positions_closed_count()

    def _spill_and_purge(
        self,
        orders: list[Order],
        positions: list[Position],
        states: list[AccountState],
    ) -> None:
        cache = self.cache
        batch = {
            "account_states": [AccountState.to_dict(state) for state in states],
            "orders": [order.to_dict() for order in orders],
            "fills": [
                OrderFilled.to_dict(event)
                for order in orders
                for event in order.events
                if isinstance(event, OrderFilled)
            ],
            "positions": [position.to_dict() for position in positions],
            "snapshots": self._snapshot_pickles(positions),
        }
        spill_dir = Path(self.config.spill_dir)
        for kind, rows in batch.items():
            if rows:
                with open(spill_dir / f"{kind}.pickle", "ab") as spill:
                    _dump(rows, spill)
        for order in orders:
            cache.purge_order(order.client_order_id)
        for position in positions:
            cache.purge_position(position.id)
        if states:
            cutoff_ns = max(state.ts_event for state in states)
            # lookback in whole seconds: events at or before the newest spilled one go.
            cache.purge_account_events(cutoff_ns + 1, 0)
        self.purged_orders += len(orders)
        self.purged_positions += len(positions)
        self.purged_account_states += len(states)
        self._purge_order_lists()

    def _snapshot_pickles(self, positions: list[Position]) -> list[bytes]:
        """The pickled snapshots (``Position`` objects) of ``positions``, as the cache holds them.

        ``Cache.position_snapshots`` unpickles every snapshot it returns; taking the cache's
        bytes instead leaves the decoding and ``to_dict`` (about 60 µs a snapshot) to
        :func:`grodt.nodes.backtest_reports.positions_report`, after the event loop. The same
        bytes, so the same rows. If the cache's dict is not found (another Nautilus version),
        the snapshots are pickled again here, as the cache does.
        """
        if not positions:
            return []
        if self._snapshots is None:
            self._snapshots = _position_snapshots_dict(self.cache)
        if self._snapshots is not None:
            snapshots = self._snapshots
            return [pickled for position in positions for pickled in snapshots.get(position.id, ())]
        if self.cache.position_snapshot_ids() and not self._snapshots_missing:
            self._snapshots_missing = True
            self.log.warning(
                "The cache's position snapshots were not found: they are unpickled and pickled "
                "again at each purge (slower, same reports)",
            )
        return [
            pickle.dumps(snapshot)
            for position in positions
            for snapshot in self.cache.position_snapshots(position.id)
        ]

    def _purge_order_lists(self) -> None:
        """Drop the order lists (brackets, OCO exit pairs) whose orders have all been purged.

        Nautilus 1.221's ``Cache`` keeps every ``OrderList`` it is given, and with it every
        order of the list and all their events, and has no method to purge one:
        ``purge_order`` leaves them, and memory grew by about 3.5 KB per order over the run. The
        dict is the cache's own (found by :func:`_order_lists_dict`); an order list is dropped
        only once none of its orders is left in the cache, so nothing that reads a working
        order's list (the factory checks ids of new lists only) can miss it.
        """
        if self._order_lists is None:
            self._order_lists = _order_lists_dict(self.cache)
            if self._order_lists is None:
                if self.cache.order_lists() and not self._order_lists_missing:
                    self._order_lists_missing = True
                    self.log.warning(
                        "The cache's order lists were not found: they stay in memory with "
                        "their orders (memory grows with the run's orders)",
                    )
                return
        cache = self.cache
        done = [
            list_id
            for list_id, order_list in self._order_lists.items()
            if all(cache.order(order.client_order_id) is None for order in order_list.orders)
        ]
        for list_id in done:
            del self._order_lists[list_id]
        self.purged_order_lists += len(done)


def _dump(rows: list[Any], spill: BinaryIO) -> None:
    """Pickle ``rows`` to ``spill`` without the pickler's memo ("fast" mode).

    The rows are trees of dicts, lists and scalars with no cycle, so the memo only saves
    repeating each row's key strings: without it, pickling took a fifth of the time (20k
    account-state rows: 0.27 -> 0.055 s CPU) for files about 60% larger, and unpickles to
    equal rows (only their key strings are no longer shared objects).
    """
    pickler = pickle.Pickler(spill, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.fast = True  # no memo: safe for acyclic rows only
    pickler.dump(rows)


def _order_lists_dict(cache: Cache) -> dict[OrderListId, OrderList] | None:
    """The cache's dict of order lists (a private ``cdef dict`` of Nautilus 1.221's ``Cache``,
    reached through ``gc.get_referents``), or None while the cache holds no order list.

    It is the one dict the cache references whose values are exactly ``cache.order_lists()``.
    """
    listed = {id(order_list) for order_list in cache.order_lists()}
    if not listed:
        return None
    for referent in gc.get_referents(cache):
        if (
            type(referent) is dict
            and len(referent) == len(listed)
            and {id(value) for value in referent.values()} == listed
            and all(type(key) is OrderListId for key in referent)
        ):
            return referent
    return None


def _position_snapshots_dict(cache: Cache) -> dict[PositionId, list[bytes]] | None:
    """The cache's dict of pickled position snapshots (the private ``cdef dict
    _position_snapshots`` of Nautilus 1.221's ``Cache``, reached through ``gc.get_referents``), or
    None while the cache holds no snapshot.

    It is the one dict the cache references whose keys are exactly
    ``cache.position_snapshot_ids()`` and whose values are lists of bytes; one of them is checked
    to unpickle to what ``cache.position_snapshots`` gives.
    """
    ids = cache.position_snapshot_ids()
    if not ids:
        return None
    for referent in gc.get_referents(cache):
        if (
            type(referent) is dict
            and len(referent) == len(ids)
            and all(type(key) is PositionId for key in referent)
            and set(referent) == ids
            and all(
                type(value) is list and all(type(item) is bytes for item in value)
                for value in referent.values()
            )
        ):
            position_id = next(iter(referent))
            decoded = [pickle.loads(item).to_dict() for item in referent[position_id]]
            if decoded == [s.to_dict() for s in cache.position_snapshots(position_id)]:
                return referent
    return None


def _member_of(cache: Cache, order: Order, position_id: PositionId) -> bool:
    """Whether ``order`` is indexed under ``position_id`` only, so that purging it and then the
    position leaves no trace of it."""
    indexed = cache.position_id(order.client_order_id)
    own = order.position_id
    return indexed is not None and indexed == position_id and (own is None or own == position_id)


def _unindexes_cleanly(cache: Cache, order: Order) -> bool:
    """Whether ``Cache.purge_order`` leaves no trace of ``order`` in a position's order index.

    It removes the order from the index of ``order.position_id`` only, and fails when that
    position was purged already. An order can also be indexed under a position it never filled
    (a closing order submitted with a position id, then denied or canceled: ``position_id`` stays
    unset) or under a second position (a HEDGING flip). A dangling id would make the next fill
    of that position fail (``orders_for_position`` raises ``KeyError``), so such orders stay,
    except an unfilled one whose position is gone (its index went with it).
    """
    indexed = cache.position_id(order.client_order_id)
    own = order.position_id
    if own is None:
        return indexed is None or cache.position(indexed) is None
    if indexed is None:
        # Filled into an earlier round trip of a NETTING position id whose Position object was
        # purged without it (a bracket entry; its children went as closed orders): it is in no
        # index, and purge_order only discards it from its position's order set, which exists
        # while the position does (Cache.add_position creates it). Left alone, such entries
        # stayed for the whole run, and with them their order lists.
        return cache.position(own) is not None
    return indexed == own and cache.position(own) is not None
