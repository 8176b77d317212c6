"""How the gate's verdicts reach the strategies: Nautilus order events.

- deny: ``OrderDenied`` to ``ExecEngine.process`` (the strategy's ``on_order_denied``);
- resize: ``OrderUpdated`` applied to the still-INITIALIZED orders (the one transition Nautilus
  allows before submission), then published to the strategy (``on_order_updated``);
- refuse a modify: ``OrderModifyRejected`` (``on_order_modify_rejected``).

The strategies' handlers run synchronously inside these dispatches; their time is added to
:attr:`OrderEvents.dispatch_ns`, so the gate can report its own cost apart.
"""

import time
from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order

__all__ = ["OrderEvents", "order_denied"]

PROCESS_ENDPOINT = "ExecEngine.process"


def order_denied(order: Order, reason: str, ts_init: int) -> OrderDenied:
    """The ``OrderDenied`` event of ``order`` (``ts_init``: UNIX ns), for ``ExecEngine.process``."""
    return OrderDenied(
        trader_id=order.trader_id,
        strategy_id=order.strategy_id,
        instrument_id=order.instrument_id,
        client_order_id=order.client_order_id,
        reason=reason,
        event_id=UUID4(),
        ts_init=ts_init,
    )


class OrderEvents:
    """Sends the verdicts' order events on one kernel's bus.

    Parameters
    ----------
    msgbus, cache, clock
        The kernel's parts.
    """

    def __init__(self, msgbus: Any, cache: Any, clock: Any) -> None:
        self._msgbus = msgbus
        self._cache = cache
        self._clock = clock
        self.dispatch_ns = 0
        """Nanoseconds spent in dispatches since the caller last set it to 0."""

    def deny(self, orders: list[Order], reason: str) -> None:
        """``OrderDenied`` for each order not yet submitted (adding it to the cache if needed)."""
        started = time.perf_counter_ns()
        now = self._clock.timestamp_ns()
        for order in orders:
            if order.status not in (OrderStatus.INITIALIZED, OrderStatus.RELEASED):
                continue
            if not self._cache.order_exists(order.client_order_id):
                self._cache.add_order(order)
            self._msgbus.send(PROCESS_ENDPOINT, order_denied(order, reason, now))
        self.dispatch_ns += time.perf_counter_ns() - started

    def deny_command(self, command: Any, reason: str) -> None:
        """Refuse a whole command: its orders denied, or its modify rejected."""
        if isinstance(command, SubmitOrder):
            self.deny([command.order], reason)
        elif isinstance(command, SubmitOrderList):
            self.deny(list(command.order_list.orders), reason)
        elif isinstance(command, ModifyOrder):
            order = self._cache.order(command.client_order_id)
            if order is not None:
                self.reject_modify(order, reason)

    def resize(self, orders: list[Order], entry: Order, approved: float) -> None:
        """Apply ``OrderUpdated`` to the INITIALIZED orders (children first), then tell the
        strategy. Applied directly: a live ExecEngine would queue the event and the command
        would leave with the old quantity. ``approved`` is in the entry's quantity unit."""
        new_quantity = Quantity(approved, entry.quantity.precision)
        events: list[OrderUpdated] = []
        now = self._clock.timestamp_ns()
        for order in sorted(orders, key=lambda o: o is entry):
            if order is not entry and order.quantity <= new_quantity:
                continue
            if order.status != OrderStatus.INITIALIZED:
                continue
            event = OrderUpdated(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                venue_order_id=None,
                account_id=None,
                quantity=new_quantity,
                price=None,
                trigger_price=None,
                event_id=UUID4(),
                ts_event=now,
                ts_init=now,
            )
            order.apply(event)
            self._cache.update_order(order)
            events.append(event)
        started = time.perf_counter_ns()
        for event in events:
            self._msgbus.publish(f"events.order.{event.strategy_id}", event)
        self.dispatch_ns += time.perf_counter_ns() - started

    def reject_modify(self, order: Order, reason: str) -> None:
        """``OrderModifyRejected`` for ``order`` (back from PENDING_UPDATE)."""
        started = time.perf_counter_ns()
        now = self._clock.timestamp_ns()
        rejected = OrderModifyRejected(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            account_id=order.account_id,
            reason=reason,
            event_id=UUID4(),
            ts_event=now,
            ts_init=now,
        )
        self._msgbus.send(PROCESS_ENDPOINT, rejected)
        self.dispatch_ns += time.perf_counter_ns() - started
