"""What the risk gate does when the kill switch halts or resets.

On a halt (``kill_switch.cancel_open_orders``), orders that would add exposure go — exits of the
strategy's own position stay:

- approved orders a (live, queued) engine has not submitted yet are denied and their submission
  revoked at the switch's ``ExecEngine.execute`` guard, bracket children with their entry;
- open, in-flight and emulated ones are cancelled through their strategies.

On the operator's reset (every halt cleared) the loss triggers re-base at the current equity.
Every event is kept, with its market time and equity, for the gate's summary.
"""

import dataclasses
import math
from collections.abc import Callable
from typing import Any

from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from risk_engine.config import KillSwitchConfig
from risk_engine.kill_switch import OPERATOR
from risk_engine.kill_switch import KillSwitch
from risk_engine.kill_switch import KillSwitchEvent
from risk_engine.loss_halts import LossTriggers
from risk_engine.order_events import OrderEvents
from risk_engine.portfolio_state import PortfolioView
from risk_engine.portfolio_state import counts_as_opening

__all__ = ["HaltResponse"]


class HaltResponse:
    """The gate's listener on the kill switch.

    Parameters
    ----------
    config : KillSwitchConfig
        Whether a halt cancels opening orders.
    switch : KillSwitch
        The kernel's switch (revocations go to its guard).
    triggers : LossTriggers
        Re-based on the operator's reset.
    view : PortfolioView
        Equity and positions.
    pending : dict[ClientOrderId, Order]
        The gate's approved orders not yet seen submitted (shared, pruned by snapshots).
    events : OrderEvents
        Sends the denials of revoked orders.
    market_time_ns : Callable[[], int]
        The newest market-data time, UNIX ns (the events' timestamps).
    strategy_lookup : Callable[[StrategyId], Strategy | None] | None
        Finds the strategy that cancels an order (None: open orders are left alone).
    logger
        The gate's logger.
    """

    def __init__(
        self,
        config: KillSwitchConfig,
        switch: KillSwitch,
        triggers: LossTriggers,
        view: PortfolioView,
        pending: dict[ClientOrderId, Order],
        events: OrderEvents,
        market_time_ns: Callable[[], int],
        strategy_lookup: Callable[[StrategyId], Strategy | None] | None,
        logger: Any,
    ) -> None:
        self.config = config
        self._switch = switch
        self._triggers = triggers
        self._view = view
        self._cache = view.cache
        self._pending = pending
        self._events = events
        self._market_time_ns = market_time_ns
        self._strategy_lookup = strategy_lookup
        self._log = logger
        self.history: list[KillSwitchEvent] = []
        """Every halt and reset, with market time (UNIX ns) and equity (NaN: not valued)."""

    def __call__(self, event: KillSwitchEvent) -> None:
        if event.ts_ns < 0:  # from the bus: stamp it with the market's time and equity
            equity = self.safe_equity()
            event = dataclasses.replace(
                event,
                ts_ns=self._market_time_ns(),
                equity=math.nan if equity is None else equity,
            )
            if event.action == "reset" and event.source == OPERATOR and equity is not None:
                self._triggers.rebase(equity)
        self.history.append(event)
        if event.action == "halt" and self.config.cancel_open_orders:
            self.cancel_opening_orders()

    def safe_equity(self) -> float | None:
        """The portfolio's equity, or None (logged) when it cannot be valued."""
        try:
            return self._view.equity()
        except Exception as e:
            self._log.exception("Risk gate could not value the portfolio", e)
            return None

    def cancel_opening_orders(self) -> None:
        """Cancel orders that would add exposure (entries; exits stay): open, in flight and
        emulated ones through their strategies; approved ones a (live) engine has not
        submitted yet are denied and their submission dropped."""
        cache = self._cache
        # Pending approvals not yet submitted: the snapshot prunes the ones that have been.
        snapshot = self._view.snapshot(frozenset(), self._pending)

        def is_exit(order: Order) -> bool:
            held = snapshot.by_strategy.get((order.instrument_id, order.strategy_id), 0.0)
            side = 1 if order.side == OrderSide.BUY else -1
            return side * held < 0 and order.leaves_qty.as_double() <= abs(held)

        revoked = [
            order
            for order in self._pending.values()
            if order.status == OrderStatus.INITIALIZED
            and counts_as_opening(order, cache)
            and not is_exit(order)
        ]
        if revoked:
            ids = {order.client_order_id for order in revoked}
            # Their bracket children go with them (never submitted on their own).
            revoked += [
                order
                for order in self._pending.values()
                if order.parent_order_id in ids and order.client_order_id not in ids
            ]
            reason = f"kill switch halted ({self._switch.describe()})"
            for order in revoked:
                self._log.warning(
                    f"Kill switch: revoking approved order {order.client_order_id} (not yet "
                    "submitted)",
                )
                self._pending.pop(order.client_order_id, None)
                self._switch.revoke(order.client_order_id)
            self._events.deny(revoked, reason)
        if self._strategy_lookup is None:
            return
        seen: set[ClientOrderId] = set()
        orders = cache.orders_open() + cache.orders_inflight() + cache.orders_emulated()
        # In id order: the cache lists them in the order of sets seeded per process, and the
        # cancels' events must come in the same order in every run.
        for order in sorted(orders, key=lambda o: o.client_order_id.value):
            if order.client_order_id in seen:
                continue  # pending update/cancel: open and in flight
            seen.add(order.client_order_id)
            if (
                order.is_closed
                or order.status == OrderStatus.PENDING_CANCEL
                or not counts_as_opening(order, cache)
                or is_exit(order)
            ):
                continue
            strategy = self._strategy_lookup(order.strategy_id)
            if strategy is None:
                self._log.error(f"Cannot cancel {order.client_order_id}: strategy not found")
                continue
            self._log.warning(f"Kill switch: canceling opening order {order.client_order_id}")
            strategy.cancel_order(order)
