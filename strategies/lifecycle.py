"""The position and order lifecycle of one :class:`strategies.base.RegimeAwareStrategy`.

One position per (instrument, strategy) goes through: flat → entry pending (a bracket: market
entry, stop loss, take profit) → open (bars counted, stop trailed, scaled down by rebalances) →
exit pending (a reduce-only market order) → flat. :class:`PositionLifecycle` owns the state of
that cycle in one :class:`LifecycleState` and makes its transitions; it sends no order and reads
no cache. The strategy feeds it what happened (order ids, fills, failures, position events) and
performs the order work the lifecycle asks for, so every transition here can be tested without an
engine (``tests/strategies/test_strategy_lifecycle.py``).

Deferred maintenance: position and order events reach a strategy *inside* the venue's fill
processing (the backtest matching engine calls back synchronously). Sending orders from there
re-enters the matching engine mid-fill, which Nautilus 1.221 does not survive (a quantity
underflow panic). Work those events call for (flatten, re-arm the stop, resize the bracket, cancel
leftovers) is therefore recorded with :meth:`PositionLifecycle.defer` and done by
:meth:`PositionLifecycle.run_deferred` at the start of the next bar, outside any fill, identically
in backtest and live.
"""

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import fields
from decimal import Decimal
from enum import Enum

from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Quantity

from strategies.sizing import floor_to_lot

__all__ = [
    "LifecycleState",
    "OrderFailure",
    "PositionLifecycle",
    "lifecycle_state_from_bytes",
    "lifecycle_state_to_bytes",
    "same_order",
]


def same_order(order_id: ClientOrderId, other: ClientOrderId | None) -> bool:
    """Identifier equality that tolerates ``None`` (Nautilus identifiers raise on it)."""
    return other is not None and order_id == other


class OrderFailure(Enum):
    """Which order of the lifecycle will not fill (see :meth:`PositionLifecycle.order_failed`)."""

    ENTRY = "entry"  # the bracket's entry: stay flat
    EXIT = "exit"  # an exit or a rebalance: re-armed, retried by the strategy's next decision
    STOP = "stop"  # the protective stop of an open position: flatten on the next bar


@dataclass(slots=True)
class LifecycleState:
    """Everything the lifecycle remembers; a fresh instance is the state of a flat strategy.

    Attributes
    ----------
    pending_entry_id, pending_exit_id : ClientOrderId or None
        The entry (bracket parent) or exit/rebalance order in flight.
    stop_order_id, target_order_id : ClientOrderId or None
        The position's protective stop and take profit.
    entry_trace_id : str
        Trace id of the entry decision (trailing-stop adjustments reuse it).
    direction : int
        +1 long, -1 short, 0 flat.
    entry_quantity : Decimal
        Units the entry was sized at (followed when the risk gate resizes it).
    full_quantity : float
        Units before the regime scale and the lot rounding (the rebalance reference).
    entry_allocation : float
        Allocation weight at entry, in [0, 1] (0 for an adopted position).
    stop_price : float
        Current stop level, price units (NaN without one).
    trail_anchor : float
        Highest high (long) or lowest low (short) since entry, price units.
    bars_held : int
        Bars seen with the position open.
    adopted : bool
        Opened without this strategy's entry (restart, external): never regime-rebalanced.
    deferred : bool
        Some maintenance below is due on the next bar.
    flatten_reason : str or None
        Exit at market on the next bar, with this reason.
    protect, sync_bracket, cleanup : bool
        Re-arm a missing stop; resize stop and target to the position; cancel leftovers once flat.
    """

    pending_entry_id: ClientOrderId | None = None
    pending_exit_id: ClientOrderId | None = None
    stop_order_id: ClientOrderId | None = None
    target_order_id: ClientOrderId | None = None
    entry_trace_id: str = ""
    direction: int = 0
    entry_quantity: Decimal = Decimal(0)
    full_quantity: float = 0.0
    entry_allocation: float = 0.0
    stop_price: float = math.nan
    trail_anchor: float = math.nan
    bars_held: int = 0
    adopted: bool = False
    deferred: bool = False
    flatten_reason: str | None = None
    protect: bool = False
    sync_bracket: bool = False
    cleanup: bool = False


_ORDER_ID_FIELDS = ("pending_entry_id", "pending_exit_id", "stop_order_id", "target_order_id")


def lifecycle_state_to_bytes(state: LifecycleState) -> bytes:
    """The whole state as UTF-8 JSON (the strategy's ``on_save``): order ids as strings, the
    Decimal as a string, NaN prices as JSON ``NaN``."""
    document: dict[str, object] = {}
    for item in fields(state):
        value = getattr(state, item.name)
        if isinstance(value, ClientOrderId):
            value = value.value
        elif isinstance(value, Decimal):
            value = str(value)
        document[item.name] = value
    return json.dumps(document, sort_keys=True).encode()


def lifecycle_state_from_bytes(data: bytes) -> LifecycleState:
    """The inverse of :func:`lifecycle_state_to_bytes` (``on_load``); unknown keys are errors."""
    document = json.loads(data.decode())
    known = {item.name for item in fields(LifecycleState)}
    unknown = sorted(set(document) - known)
    if unknown:
        raise ValueError(f"lifecycle state: unknown fields {unknown}")
    for name in _ORDER_ID_FIELDS:
        if document.get(name) is not None:
            document[name] = ClientOrderId(document[name])
    if "entry_quantity" in document:
        document["entry_quantity"] = Decimal(document["entry_quantity"])
    return LifecycleState(**document)


class PositionLifecycle:
    """State and transitions of the strategy's position, its bracket and its pending orders.

    Attributes
    ----------
    state : LifecycleState
        The whole state; replaced by :meth:`reset`.
    """

    def __init__(self) -> None:
        self.state = LifecycleState()

    def reset(self) -> None:
        """Forget everything (the strategy's reset)."""
        self.state = LifecycleState()

    @property
    def idle(self) -> bool:
        """No entry and no exit in flight."""
        return self.state.pending_entry_id is None and self.state.pending_exit_id is None

    def is_pending(self, order_id: ClientOrderId) -> bool:
        """``order_id`` is the entry or the exit in flight."""
        state = self.state
        return same_order(order_id, state.pending_entry_id) or same_order(
            order_id,
            state.pending_exit_id,
        )

    # -- entries and exits ----------------------------------------------------------------------

    def entry_submitted(
        self,
        *,
        entry_id: ClientOrderId,
        stop_id: ClientOrderId,
        target_id: ClientOrderId,
        trace_id: str,
        direction: int,
        quantity: Decimal,
        full_quantity: float,
        allocation: float,
        stop_price: float,
    ) -> None:
        """A bracket went out: ``quantity`` units (``full_quantity`` before the regime scale and
        the lot), ``direction`` ±1, at ``allocation`` weight, stop at ``stop_price``."""
        state = self.state
        state.pending_entry_id = entry_id
        state.stop_order_id = stop_id
        state.target_order_id = target_id
        state.entry_trace_id = trace_id
        state.direction = direction
        state.entry_quantity = quantity
        state.full_quantity = full_quantity
        state.entry_allocation = allocation
        state.stop_price = stop_price

    def exit_submitted(self, order_id: ClientOrderId) -> None:
        """An exit or rebalance order went out; no other decision until it is done."""
        self.state.pending_exit_id = order_id

    def order_done(self, order_id: ClientOrderId) -> None:
        """The pending entry or exit ``order_id`` is closed (completely filled)."""
        state = self.state
        if same_order(order_id, state.pending_entry_id):
            state.pending_entry_id = None
        elif same_order(order_id, state.pending_exit_id):
            state.pending_exit_id = None

    def entry_resized(self, order_id: ClientOrderId, quantity: Decimal) -> bool:
        """The risk gate resized the pending entry to ``quantity`` units: scale the rebalance
        reference with it. Returns whether the entry changed."""
        state = self.state
        if not same_order(order_id, state.pending_entry_id):
            return False
        if quantity == state.entry_quantity or state.entry_quantity <= 0:
            return False
        state.full_quantity *= float(quantity / state.entry_quantity)
        state.entry_quantity = quantity
        return True

    def order_failed(self, order_id: ClientOrderId, has_position: bool) -> OrderFailure | None:
        """``order_id`` will not fill (denied, rejected, or canceled/expired while pending):
        reset what it held. Returns which order it was, ``None`` when none that matters (the
        children of a failed bracket: the entry's own failure resets the state)."""
        state = self.state
        if same_order(order_id, state.pending_entry_id):
            state.pending_entry_id = None
            if not has_position:
                self.clear_position()
            return OrderFailure.ENTRY
        if same_order(order_id, state.pending_exit_id):
            state.pending_exit_id = None
            if has_position:
                self.defer(protect=True)
            return OrderFailure.EXIT
        if (
            same_order(order_id, state.stop_order_id)
            and state.pending_entry_id is None
            and has_position
            and state.pending_exit_id is None
        ):
            self.defer(flatten="stop_order_failed")
            return OrderFailure.STOP
        return None

    def stop_lost(self, order_id: ClientOrderId, has_position: bool) -> bool:
        """The protective stop left the market without the strategy asking (an operator, the
        venue, a cancel-all from another client): re-arm it on the next bar. Returns whether
        ``order_id`` was that stop of an open, idle position."""
        state = self.state
        if (
            same_order(order_id, state.stop_order_id)
            and state.pending_entry_id is None
            and state.pending_exit_id is None
            and has_position
        ):
            self.defer(protect=True)
            return True
        return False

    def stop_rearmed(self, order_id: ClientOrderId, target_id: ClientOrderId | None = None) -> None:
        """A new stop replaces the lost one, with a new take profit ``target_id`` or none."""
        self.state.stop_order_id = order_id
        self.state.target_order_id = target_id

    # -- position events ------------------------------------------------------------------------

    def position_opened(
        self, signed_quantity: float, quantity: Decimal, avg_px_open: float
    ) -> None:
        """The position opened at ``avg_px_open``; one opened without our entry is adopted."""
        state = self.state
        state.bars_held = 0
        if state.direction == 0:  # opened without our entry (external/recovered)
            state.direction = 1 if signed_quantity > 0 else -1
            state.entry_quantity = quantity
            state.full_quantity = float(quantity)
            state.adopted = True
        state.trail_anchor = avg_px_open

    def position_changed(self) -> None:
        """After a reduction (a rebalance, a partial target fill) the stop and target must not
        exceed the position: checked on the next bar (not while an entry is still filling)."""
        if self.state.pending_entry_id is None:
            self.defer(sync_bracket=True)

    def position_closed(self) -> None:
        """Flat again: forget the position and cancel what is left of its bracket next bar."""
        self.state.pending_exit_id = None
        self.clear_position()
        self.defer(cleanup=True)

    def adopt(self, direction: int, quantity: Decimal, avg_px_open: float) -> None:
        """Take over a position open at start (live restart). The regime scale and allocation it
        was sized at are unknown: rebalancing it against them (the neutral prior right after a
        restart) would cut it for no reason, so it is adopted (never rebalanced)."""
        state = self.state
        state.direction = direction
        state.entry_quantity = quantity
        state.full_quantity = float(quantity)
        state.adopted = True
        state.trail_anchor = avg_px_open

    def adopt_stop(self, order_id: ClientOrderId, stop_price: float, trace_id: str) -> None:
        """The adopted position's working stop loss, at ``stop_price``."""
        self.state.stop_order_id = order_id
        self.state.stop_price = stop_price
        self.state.entry_trace_id = trace_id

    def adopt_target(self, order_id: ClientOrderId) -> None:
        """The adopted position's working take profit."""
        self.state.target_order_id = order_id

    def clear_position(self) -> None:
        """Forget the position and its bracket; pending orders and deferred work stay."""
        state = self.state
        state.adopted = False
        state.stop_order_id = None
        state.target_order_id = None
        state.entry_trace_id = ""
        state.direction = 0
        state.entry_quantity = Decimal(0)
        state.full_quantity = 0.0
        state.entry_allocation = 0.0
        state.stop_price = math.nan
        state.trail_anchor = math.nan
        state.bars_held = 0

    # -- per bar --------------------------------------------------------------------------------

    def count_bar(self) -> int:
        """One more bar with the position open; returns the bars held."""
        self.state.bars_held += 1
        return self.state.bars_held

    def trail_level(self, high: float, low: float, distance: float, direction: int) -> float:
        """Move the anchor with the bar (its ``high`` for a long, ``low`` for a short) and return
        the chandelier level ``anchor ∓ distance``, price units."""
        state = self.state
        if direction > 0:
            state.trail_anchor = max(state.trail_anchor, high)
            return state.trail_anchor - distance
        state.trail_anchor = min(state.trail_anchor, low)
        return state.trail_anchor + distance

    def trail_improves(self, level: float, direction: int) -> bool:
        """``level`` tightens the stop (above it for a long, below for a short) and there is a
        stop order to move."""
        state = self.state
        if state.stop_order_id is None:
            return False
        return level > state.stop_price if direction > 0 else level < state.stop_price

    def rebalance_plan(
        self,
        held: Quantity,
        allocation_weight: float,
        regime_scale: float,
        threshold: float,
        lot: Decimal,
    ) -> tuple[Decimal, str] | None:
        """``(desired quantity, reason)`` when the ``held`` position must shrink, else ``None``.

        Scale down (never up) when allocation × regime scale fell far enough: target = entry's
        full size × (allocation now / at entry) × regime scale now, capped at the entry
        quantity; acts when the held quantity exceeds it by ``threshold`` (a fraction of the
        entry quantity). A desired quantity below one lot means an exit. Reason ``regime`` when
        the allocation is unchanged, else ``rebalance``.
        """
        state = self.state
        allocation_ratio = (
            allocation_weight / state.entry_allocation if state.entry_allocation > 0 else 1.0
        )
        desired_units = state.full_quantity * allocation_ratio * regime_scale
        held_units = held.as_double()
        entry_units = float(state.entry_quantity)
        # Float pre-check: the common case (nothing to do) costs no Decimal arithmetic.
        if desired_units >= held_units or (
            desired_units >= 1e-12 and held_units - desired_units < threshold * entry_units
        ):
            return None
        desired = min(floor_to_lot(desired_units, lot), state.entry_quantity)
        if desired >= held.as_decimal():
            return None
        return desired, "regime" if allocation_ratio == 1.0 else "rebalance"

    # -- deferred maintenance -------------------------------------------------------------------

    def defer(
        self,
        flatten: str | None = None,
        protect: bool = False,
        sync_bracket: bool = False,
        cleanup: bool = False,
    ) -> None:
        """Record work for the next bar (see the module docstring)."""
        state = self.state
        if flatten is not None:
            state.flatten_reason = flatten
        state.protect |= protect
        state.sync_bracket |= sync_bracket
        state.cleanup |= cleanup
        state.deferred = True

    def run_deferred(
        self,
        has_position: bool,
        cancel_orders: Callable[[], None],
        flatten: Callable[[str], None],
        protect: Callable[[], None],
        sync_bracket: Callable[[], None],
    ) -> None:
        """Do the recorded work through the strategy's callbacks, in this order: cancel leftovers
        once flat; then, with a position and no exit in flight, either flatten (which supersedes
        the rest) or re-arm the stop and resize the bracket. Work for a position that is gone or
        already exiting is dropped. Callbacks may record new work (for the next bar)."""
        state = self.state
        state.deferred = False
        if state.cleanup:
            state.cleanup = False
            if not has_position:
                cancel_orders()
        if not has_position or state.pending_exit_id is not None:
            state.flatten_reason = None
            state.protect = state.sync_bracket = False
            return
        if state.flatten_reason is not None:
            reason, state.flatten_reason = state.flatten_reason, None
            state.protect = state.sync_bracket = False
            flatten(reason)
            return
        if state.protect:
            state.protect = False
            protect()
        if state.sync_bracket:
            state.sync_bracket = False
            sync_bracket()
