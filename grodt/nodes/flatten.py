"""Flatten on stop: cancel every working order and close every position of a node's strategies.

Used by the live node when ``operations.on_stop: flatten`` (the node halts new risk first, through
its kill switch). Cancels and closes are repeated while waiting: an in-flight order can still be
accepted and an in-flight fill can still open a position. Only the node's own strategies are
touched; positions of other strategies (``EXTERNAL`` ones from reconciliation) are reported.
"""

import asyncio
import time
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from grodt.nodes.replay import EngineIdle

__all__ = ["FLATTEN_TAG", "flatten_strategies", "working_orders"]

FLATTEN_TAG = "grodt-flatten"
"""Tag of the closing orders the node sends when it flattens (never canceled by the flatten)."""
FLATTEN_RETRY_SECONDS = 1.0
"""A position whose closing order vanished (denied, rejected) is closed again after this long."""
FLATTEN_NOT_YET_AT_VENUE = (
    OrderStatus.INITIALIZED,
    OrderStatus.RELEASED,
    OrderStatus.PENDING_CANCEL,
)
"""Working orders not canceled in this state: on their way to the venue (canceled once their
state changes) or already being canceled."""
POLL_SECONDS = 0.05
"""Wall time between two rounds of cancels and closes."""


async def flatten_strategies(
    kernel: Any,
    timeout_seconds: float,
    idle: EngineIdle | None,
) -> dict[str, Any]:
    """Cancel and close until nothing of the node's strategies is at risk, or ``timeout_seconds``
    (wall) passed; ``idle`` (lockstep replay) lets the engines settle between rounds.

    Returns ``{"flattened", "open_positions", "working_orders", "external_positions"}`` (ids of
    what was left).
    """
    cache = kernel.cache
    strategies = list(kernel.trader.strategies())
    canceled: dict[ClientOrderId, OrderStatus] = {}
    closed: dict[PositionId, tuple[Any, float]] = {}
    deadline = time.monotonic() + timeout_seconds
    while True:
        if not _flatten_step(cache, strategies, canceled, closed):
            break
        if time.monotonic() >= deadline:
            break
        if idle is not None:
            await idle()
        if not _at_risk(cache, strategies):
            break
        await asyncio.sleep(POLL_SECONDS)
    ids = {strategy.id for strategy in strategies}
    remaining = [str(p.id) for s in strategies for p in cache.positions_open(strategy_id=s.id)]
    working = [str(o.client_order_id) for s in strategies for o in working_orders(cache, s.id)]
    external = [str(p.id) for p in cache.positions_open() if p.strategy_id not in ids]
    if remaining or working:
        kernel.logger.error(
            f"Flatten incomplete after {timeout_seconds}s: open positions {remaining}, "
            f"working orders {working}",
        )
    if external:
        kernel.logger.warning(
            f"Positions of no strategy of this node left open (not flattened): {external}",
        )
    return {
        "flattened": not remaining and not working,
        "open_positions": remaining,
        "working_orders": working,
        "external_positions": external,
    }


def working_orders(cache: Cache, strategy_id: StrategyId) -> list[Order]:
    """Every order of the strategy not closed yet: open, emulated, in flight, initialized."""
    return [o for o in cache.orders(strategy_id=strategy_id) if not o.is_closed]


def _at_risk(cache: Cache, strategies: list[Strategy]) -> bool:
    return any(
        cache.positions_open(strategy_id=s.id) or working_orders(cache, s.id) for s in strategies
    )


def _flatten_step(
    cache: Cache,
    strategies: list[Strategy],
    canceled: dict[ClientOrderId, OrderStatus],
    closed: dict[PositionId, tuple[Any, float]],
) -> bool:
    """Cancel and close what is still at risk; returns whether anything is."""
    at_risk = False
    now = time.monotonic()
    for strategy in strategies:
        working = working_orders(cache, strategy.id)
        closing: set[InstrumentId] = set()
        for order in working:
            at_risk = True
            if order.tags and FLATTEN_TAG in order.tags:
                closing.add(order.instrument_id)
                continue
            status = order.status
            if status in FLATTEN_NOT_YET_AT_VENUE or canceled.get(order.client_order_id) == status:
                continue  # on its way, being canceled, or asked already in this state
            canceled[order.client_order_id] = status
            strategy.cancel_order(order)
        for position in cache.positions_open(strategy_id=strategy.id):
            at_risk = True
            if position.instrument_id in closing:
                continue
            last = closed.get(position.id)
            if (
                last is not None
                and last[0] == position.quantity
                and now - last[1] < FLATTEN_RETRY_SECONDS
            ):
                continue  # its closing order is on its way
            closed[position.id] = (position.quantity, now)
            strategy.close_position(position, tags=[FLATTEN_TAG])
    return at_risk
