"""Bracket orders for :class:`strategies.base.RegimeAwareStrategy`.

A bracket is the usual Nautilus ``OrderList``: a MARKET entry (contingency OTO) whose children — a
``STOP_MARKET`` stop loss and a ``LIMIT`` take profit, linked one-cancels-other (OCO) — are
released when the entry fills. It differs from ``OrderFactory.bracket`` in two respects: the
children are **not** flagged reduce-only, and they are linked OCO, not OUO.

Why OCO: Nautilus 1.221 updates an OUO sibling to the *quantity* ``order.leaves_qty`` after every
partial fill (matching engine and OrderManager alike), ignoring what the sibling itself has
filled. When both stop and target fill in parts (orders larger than the bar's simulated
liquidity, e.g. all capital on one strategy), the second partial fill sets the first order's
quantity below its filled quantity: ``leaves = quantity - filled`` underflows and the process
aborts (``Quantity::from_raw`` panic). OCO does no quantity arithmetic: the first fill of either
child cancels the other; the rest of a partly filled stop keeps working, and after a partly
filled target the strategy re-arms a stop for the rest on the next bar (cancelling the target's
remainder, strategies.base ``_protect``).

Why not reduce-only: in Nautilus 1.221 the simulated venue re-sizes every open reduce-only
passive order of a position to the position's quantity after each fill, ignoring what the order
itself has already filled. When a stop or target fills in several parts (an order larger than
the bar's simulated liquidity of about volume / 4 walks the book), that re-sizing closes the
order early — leaving part of the position open and unprotected — or drives its remaining
quantity below zero, which aborts the process (``Quantity::from_raw`` panic). Without the flag
the venue leaves the children alone, and the strategy itself shrinks the children whenever it
reduces the position (rebalances) and checks them against the position on the next bar after
any other change. Exits at market keep the reduce-only flag (market orders are not re-sized).

The exception is a CASH account: Nautilus' own RiskEngine adds the notional of every
non-reduce-only SELL of an order list to a cumulative total that must stay below the free cash,
so a long bracket with plain children is denied as soon as its stop and target together exceed
the free cash (a position above half of it). On CASH accounts the children are therefore
reduce-only (``RegimeAwareStrategyConfig.bracket_reduce_only``, default ``auto``); the re-sizing
hazard remains there for exits larger than the bar's liquidity, and goes away on a simulated venue
with ``use_reduce_only: false`` (see docs/strategies.md).
"""

from nautilus_trader.common.component import Clock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import OrderListId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import LimitOrder
from nautilus_trader.model.orders import MarketOrder
from nautilus_trader.model.orders import OrderList
from nautilus_trader.model.orders import StopMarketOrder

__all__ = ["TIME_IN_FORCE", "bracket", "entry_side", "exit_pair", "exit_side"]

TIME_IN_FORCE = TimeInForce.GTC
"""Time in force of every order of a rule strategy (entries, brackets, exits, adjustments)."""


def entry_side(direction: int) -> OrderSide:
    """The side that opens a position in ``direction`` (+1 long, -1 short)."""
    return OrderSide.BUY if direction > 0 else OrderSide.SELL


def exit_side(direction: int) -> OrderSide:
    """The side that reduces or closes a position in ``direction`` (+1 long, -1 short)."""
    return OrderSide.SELL if direction > 0 else OrderSide.BUY


def bracket(
    *,
    factory: OrderFactory,
    clock: Clock,
    trader_id: TraderId,
    strategy_id: StrategyId,
    instrument_id: InstrumentId,
    side: OrderSide,
    quantity: Quantity,
    stop_price: Price,
    target_price: Price,
    tags: list[str],
    reduce_only_children: bool = False,
) -> OrderList:
    """A MARKET entry with a STOP_MARKET stop loss and a LIMIT take profit (OTO, then OCO).

    ``tags`` are added to every order of the list after its role tag (``ENTRY``, ``STOP_LOSS``,
    ``TAKE_PROFIT``), e.g. the decision's ``trace_id=<id>``. ``reduce_only_children`` flags the
    stop and target reduce-only (see the module docstring for when that is needed).
    """
    entry_id = factory.generate_client_order_id()
    stop_id = factory.generate_client_order_id()
    target_id = factory.generate_client_order_id()
    list_id = factory.generate_order_list_id()
    exit_side = OrderSide.SELL if side == OrderSide.BUY else OrderSide.BUY
    ts_init = clock.timestamp_ns()
    entry = MarketOrder(
        trader_id=trader_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        client_order_id=entry_id,
        order_side=side,
        quantity=quantity,
        init_id=UUID4(),
        ts_init=ts_init,
        time_in_force=TIME_IN_FORCE,
        contingency_type=ContingencyType.OTO,
        order_list_id=list_id,
        linked_order_ids=[stop_id, target_id],
        tags=["ENTRY", *tags],
    )
    stop, target = _oco_exits(
        trader_id=trader_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        stop_id=stop_id,
        target_id=target_id,
        list_id=list_id,
        exit_side=exit_side,
        quantity=quantity,
        stop_price=stop_price,
        target_price=target_price,
        ts_init=ts_init,
        reduce_only=reduce_only_children,
        tags=tags,
        parent_order_id=entry_id,
    )
    return OrderList(order_list_id=list_id, orders=[entry, stop, target])


def exit_pair(
    *,
    factory: OrderFactory,
    clock: Clock,
    trader_id: TraderId,
    strategy_id: StrategyId,
    instrument_id: InstrumentId,
    exit_side: OrderSide,
    quantity: Quantity,
    stop_price: Price,
    target_price: Price,
    tags: list[str],
    reduce_only: bool = False,
) -> OrderList:
    """A STOP_MARKET stop loss and a LIMIT take profit for an open position, linked OCO: what
    re-arms a bracket whose children the venue cancelled after a partial fill (module docstring).
    """
    stop_id = factory.generate_client_order_id()
    target_id = factory.generate_client_order_id()
    list_id = factory.generate_order_list_id()
    stop, target = _oco_exits(
        trader_id=trader_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        stop_id=stop_id,
        target_id=target_id,
        list_id=list_id,
        exit_side=exit_side,
        quantity=quantity,
        stop_price=stop_price,
        target_price=target_price,
        ts_init=clock.timestamp_ns(),
        reduce_only=reduce_only,
        tags=tags,
    )
    return OrderList(order_list_id=list_id, orders=[stop, target])


def _oco_exits(
    *,
    trader_id: TraderId,
    strategy_id: StrategyId,
    instrument_id: InstrumentId,
    stop_id: ClientOrderId,
    target_id: ClientOrderId,
    list_id: OrderListId,
    exit_side: OrderSide,
    quantity: Quantity,
    stop_price: Price,
    target_price: Price,
    ts_init: int,
    reduce_only: bool,
    tags: list[str],
    parent_order_id: ClientOrderId | None = None,
) -> tuple[StopMarketOrder, LimitOrder]:
    """The STOP_MARKET stop loss and LIMIT take profit of a position, linked OCO (a bracket's
    children when ``parent_order_id`` names their entry)."""
    stop = StopMarketOrder(
        trader_id=trader_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        client_order_id=stop_id,
        order_side=exit_side,
        quantity=quantity,
        trigger_price=stop_price,
        trigger_type=TriggerType.DEFAULT,
        init_id=UUID4(),
        ts_init=ts_init,
        time_in_force=TIME_IN_FORCE,
        reduce_only=reduce_only,
        contingency_type=ContingencyType.OCO,
        order_list_id=list_id,
        linked_order_ids=[target_id],
        parent_order_id=parent_order_id,
        tags=["STOP_LOSS", *tags],
    )
    target = LimitOrder(
        trader_id=trader_id,
        strategy_id=strategy_id,
        instrument_id=instrument_id,
        client_order_id=target_id,
        order_side=exit_side,
        quantity=quantity,
        price=target_price,
        init_id=UUID4(),
        ts_init=ts_init,
        time_in_force=TIME_IN_FORCE,
        post_only=False,
        reduce_only=reduce_only,
        contingency_type=ContingencyType.OCO,
        order_list_id=list_id,
        linked_order_ids=[stop_id],
        parent_order_id=parent_order_id,
        tags=["TAKE_PROFIT", *tags],
    )
    return stop, target
