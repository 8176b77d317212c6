"""Bounded cache for long backtests: closed orders and positions leave the cache once their report
rows are written, so per-order cost and memory do not grow with the run's history.

Why: on every fill, Nautilus 1.221's simulated matching engine loops over
``cache.orders_for_position(position.id)``. grodt's strategies run NETTING, so each (instrument,
strategy) keeps one position id for the whole run and that list holds every order the strategy
ever sent (one call: 12 µs with 296 orders, 684 µs with 3,812). The cache also keeps every order
and position snapshot (4.8 GB for 342k orders).

:class:`CachePurgeActor` wakes every ``interval_minutes`` of simulated time, appends the report rows
of every closed order (and its fills) and closed position (and its snapshots) that has been closed
for at least ``buffer_minutes`` to a spill file, and purges them with Nautilus' own
``Cache.purge_order`` / ``purge_position``. A closed order is kept while an order of its contingency
family (parent, linked orders, children) is still working, and a closed position while a working
order still names it: the matching engine and the risk gate read those.
:func:`reports_with_purged` builds the fills, orders and positions reports from the spill file
plus what the cache still holds, row for row what Nautilus' ``ReportProvider`` gives on an
unpurged cache (position snapshot ids carry a random UUID suffix either way).
"""

import pickle
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveInt
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.orders import Order
from nautilus_trader.model.position import Position

__all__ = [
    "CachePurgeActor",
    "CachePurgeActorConfig",
    "PurgedReports",
    "reports_with_purged",
]

_NANOS_PER_MINUTE = 60_000_000_000


class CachePurgeActorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`CachePurgeActor`.

    Parameters
    ----------
    spill_path : str
        File the purged report rows are appended to (pickled batches).
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

    spill_path: str
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

    def on_start(self) -> None:
        Path(self.config.spill_path).unlink(missing_ok=True)
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
        batch = PurgedBatch(
            account_states=[AccountState.to_dict(state) for state in states],
            orders=[order.to_dict() for order in orders],
            fills=[
                OrderFilled.to_dict(event)
                for order in orders
                for event in order.events
                if isinstance(event, OrderFilled)
            ],
            positions=[position.to_dict() for position in positions],
            snapshots=[
                snapshot.to_dict()
                for position in positions
                for snapshot in cache.position_snapshots(position.id)
            ],
        )
        with open(self.config.spill_path, "ab") as spill:
            pickle.dump(batch, spill, protocol=pickle.HIGHEST_PROTOCOL)
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
    return indexed is not None and indexed == own and cache.position(own) is not None


class PurgedBatch:
    """Report rows of one purge: ``to_dict()`` of orders, fills, positions, snapshots and
    account states."""

    __slots__ = ("account_states", "fills", "orders", "positions", "snapshots")

    def __init__(
        self,
        orders: list[dict[str, Any]],
        fills: list[dict[str, Any]],
        positions: list[dict[str, Any]],
        snapshots: list[dict[str, Any]],
        account_states: list[dict[str, Any]] | None = None,
    ) -> None:
        self.orders = orders
        self.fills = fills
        self.positions = positions
        self.snapshots = snapshots
        self.account_states = account_states or []

    def __getstate__(self) -> tuple:
        return self.orders, self.fills, self.positions, self.snapshots, self.account_states

    def __setstate__(self, state: tuple) -> None:
        self.orders, self.fills, self.positions, self.snapshots, self.account_states = state


def _batches(path: Path) -> Iterator[PurgedBatch]:
    if not path.exists():
        return
    with open(path, "rb") as spill:
        while True:
            try:
                yield pickle.load(spill)
            except EOFError:
                return


class PurgedReports:
    """The fills, orders and positions reports of a run whose cache was purged."""

    def __init__(
        self,
        fills: pd.DataFrame,
        orders: pd.DataFrame,
        positions: pd.DataFrame,
        account_states: dict[str, list[dict[str, Any]]],
    ) -> None:
        self.fills = fills
        self.orders = orders
        self.positions = positions
        self._account_states = account_states

    def account(self, cache: Cache, venue: Venue) -> pd.DataFrame:
        """The account report of ``venue`` (``Trader.generate_account_report``): the spilled
        account states, then the ones the account still holds."""
        account = cache.account_for_venue(venue)
        if account is None:
            return pd.DataFrame()
        states = self._account_states.get(account.id.value, [])
        states = states + [AccountState.to_dict(state) for state in account.events]
        return _account_report(states)


def reports_with_purged(cache: Cache, spill_path: Path) -> PurgedReports:
    """The reports Nautilus' ``Trader.generate_{fills,orders,positions}_report`` would give had
    nothing been purged: the spilled rows plus the cache's orders and positions, in the same row
    order and with the same columns and types (``nautilus_trader.analysis.reporter``)."""
    order_rows: list[dict[str, Any]] = []
    fill_rows: list[dict[str, Any]] = []
    # Per position id, its round trips in time order: (row, is a cache snapshot already).
    trips: dict[str, list[dict[str, Any]]] = {}
    snapshot_rows: list[dict[str, Any]] = []
    account_states: dict[str, list[dict[str, Any]]] = {}
    for batch in _batches(Path(spill_path)):
        for state in batch.account_states:
            account_states.setdefault(state["account_id"], []).append(state)
        order_rows.extend(batch.orders)
        fill_rows.extend(batch.fills)
        snapshot_rows.extend(batch.snapshots)
        for row in batch.positions:
            trips.setdefault(row["position_id"], []).append(row)
    for order in cache.orders():
        order_rows.append(order.to_dict())
        fill_rows.extend(_fill_rows(order))
    for position in cache.positions():
        trips.setdefault(position.id.value, []).append(position.to_dict())
    snapshot_rows.extend(snapshot.to_dict() for snapshot in cache.position_snapshots())
    # A NETTING position id reopened after a purge: Nautilus would have snapshotted the closed
    # round trip when it reopened (id suffixed with a UUID); the last round trip keeps the id.
    position_rows = []
    for rows in trips.values():
        rows.sort(key=lambda row: row["ts_opened"])
        for row in rows[:-1]:
            snapshot_rows.append({**row, "position_id": f"{row['position_id']}-{uuid.uuid4()}"})
        position_rows.append(rows[-1])
    # Nautilus lists orders by client order id (Cache._get_orders_for_ids sorts the ids), each
    # order's fills in event order: a stable sort by id gives the same input order.
    order_rows.sort(key=lambda row: row["client_order_id"])
    fill_rows.sort(key=lambda row: row["client_order_id"])
    return PurgedReports(
        fills=_fills_report(fill_rows),
        orders=_orders_report(order_rows),
        positions=_positions_report(position_rows, snapshot_rows),
        account_states=account_states,
    )


def _fill_rows(order: Order) -> Iterator[dict[str, Any]]:
    for event in order.events:
        if isinstance(event, OrderFilled):
            yield OrderFilled.to_dict(event)


def _orders_report(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # ReportProvider.generate_orders_report
    if not rows:
        return pd.DataFrame()
    return pd.DataFrame(data=rows).set_index("client_order_id").sort_index()


def _fills_report(rows: list[dict[str, Any]]) -> pd.DataFrame:
    # ReportProvider.generate_fills_report
    if not rows:
        return pd.DataFrame()
    report = pd.DataFrame(data=rows).set_index("client_order_id").sort_index()
    report["ts_event"] = [unix_nanos_to_dt(ts or 0) for ts in report["ts_event"]]
    report["ts_init"] = [unix_nanos_to_dt(ts) for ts in report["ts_init"]]
    del report["type"]
    return report


def _positions_report(
    rows: list[dict[str, Any]],
    snapshots: list[dict[str, Any]],
) -> pd.DataFrame:
    # ReportProvider.generate_positions_report(positions, snapshots)
    data = rows + snapshots
    if not data:
        return pd.DataFrame()
    snapshot_ids = {row["position_id"] for row in snapshots}
    sort = ["ts_opened", "ts_closed", "position_id"]
    report = pd.DataFrame(data=data).set_index("position_id").sort_values(sort)
    del report["signed_qty"]
    del report["quote_currency"]
    del report["base_currency"]
    del report["settlement_currency"]
    report["ts_opened"] = [unix_nanos_to_dt(ts) for ts in report["ts_opened"]]
    report["ts_closed"] = [
        unix_nanos_to_dt(ts) if not pd.isna(ts) else pd.NA for ts in report["ts_closed"]
    ]
    report["is_snapshot"] = report.index.isin(snapshot_ids)
    return report


def _account_report(states: list[dict[str, Any]]) -> pd.DataFrame:
    # ReportProvider.generate_account_report
    if not states:
        return pd.DataFrame()
    balances = [
        {**balance, **state}
        for state in ({**row} for row in states)
        for balance in state.pop("balances", [])
    ]
    report = pd.DataFrame(data=balances).set_index("ts_event").sort_index()
    report.index = [unix_nanos_to_dt(ts_event) for ts_event in report.index]
    del report["ts_init"]
    del report["type"]
    del report["event_id"]
    return report
