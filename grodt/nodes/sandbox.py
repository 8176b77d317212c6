"""Sandbox execution client: the backtest's simulated venue inside a TradingNode.

Nautilus' stock ``SandboxExecutionClient`` gets a paper node trading, but not trading like the
backtest. This subclass builds its ``SimulatedExchange`` exactly as ``BacktestEngine.add_venue``
does for the same ``BacktestVenueConfig`` (fill model with its seed, fee model, margin model,
leverages, bar ordering, ...) and fixes the traps met when a live node trades on replayed bars:

1. Bars never reached the stock exchange: it subscribes to ``data.*.{venue}.*`` while bar topics
   are ``data.bars.<bar_type>``, so every order was rejected "no market". Here bars of the
   venue's instruments are subscribed explicitly, with a priority above every strategy and actor,
   so the venue moves before anyone reacts to a bar (the backtest order).
2. ``TradingNodeBuilder`` passes ``portfolio=`` only to a factory whose ``__name__`` is
   ``"SandboxLiveExecClientFactory"``: the factory below keeps that name.
3. Venue events were applied asynchronously (the live execution engine queues them), so the
   matching engine read stale order state: a market order larger than the bar's liquidity was
   left PARTIALLY_FILLED (the backtest fills the rest a tick worse), and fills of resting orders
   reached strategies after the bar that caused them. While the exchange runs (bar processing,
   submit, modify, cancel), this client routes its events straight into the execution engine,
   synchronously, as in a backtest; all other events keep the queued path.
4. Instruments arriving after ``connect`` (the replay client puts them in the cache in its own,
   asynchronous ``connect``) get their matching engines on the venue's first data or first
   command, whichever comes first (an order sent in a strategy's ``on_start`` precedes every
   bar), always all of the venue's instruments at once in cache (= catalog) order, as the
   BacktestEngine adds them: venue order ids follow that order.
5. ``fill_at: next_open`` (:mod:`grodt.nodes.fill_timing`): the exchange gets the venue config's
   simulation modules, as ``BacktestEngine.add_venue`` gives them, and this client hands every
   command to the ``NextOpenFills`` module, which runs it at the open of its instrument's next bar.

6. A restarted node (cache database, :mod:`grodt.nodes.checkpoint`) gets its venue back from the
   cache: the account keeps the cached balances (no fresh starting balances), and
   :meth:`GrodtSandboxExecutionClient.restore` moves the exchange's market through the bars the
   crashed node had seen, then re-enters the cached open orders into the matching engines (the
   bracket stop and target of a restored position rest at the venue again). The venue's own
   events during a restore are held back (:meth:`SynchronousEvents.held`): an order already
   accepted is not accepted twice; any other event is news and goes to the engine.

Synchronous venue events go through one router registered at the ``ExecEngine.process`` endpoint
when the client is bound (:class:`SynchronousEvents`): entering and leaving a synchronous section
is a counter, not a re-registration of the endpoint per bar and per command.
"""

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from types import TracebackType
from typing import Any

from nautilus_trader.accounting.factory import AccountFactory
from nautilus_trader.adapters.sandbox.execution import SandboxExecutionClient
from nautilus_trader.backtest.config import BacktestVenueConfig
from nautilus_trader.backtest.engine import SimulatedExchange
from nautilus_trader.backtest.execution_client import BacktestExecClient
from nautilus_trader.backtest.models import FillModel
from nautilus_trader.backtest.models import LeveragedMarginModel
from nautilus_trader.backtest.models import MakerTakerFeeModel
from nautilus_trader.backtest.node import get_account_type
from nautilus_trader.backtest.node import get_base_currency
from nautilus_trader.backtest.node import get_book_type
from nautilus_trader.backtest.node import get_fee_model
from nautilus_trader.backtest.node import get_fill_model
from nautilus_trader.backtest.node import get_latency_model
from nautilus_trader.backtest.node import get_leverages
from nautilus_trader.backtest.node import get_margin_model
from nautilus_trader.backtest.node import get_oms_type
from nautilus_trader.backtest.node import get_starting_balances
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.config import ActorFactory
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import LiveExecClientConfig
from nautilus_trader.core.data import Data
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import BatchCancelOrders
from nautilus_trader.execution.messages import CancelAllOrders
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import QueryOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.execution.messages import TradingCommand
from nautilus_trader.live.execution_client import LiveExecutionClient
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderAccepted
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.orders import Order
from nautilus_trader.model.orders import OrderList
from nautilus_trader.portfolio.base import PortfolioFacade

from grodt.core.errors import GrodtError
from grodt.core.topics import NAUTILUS_BARS
from grodt.core.topics import venue_data_pattern
from grodt.nodes.fill_timing import NextOpenFills
from grodt.nodes.latency import LatencyProbe

__all__ = [
    "EXEC_ENGINE_PROCESS",
    "VENUE_DATA_PRIORITY",
    "GrodtSandboxExecClientConfig",
    "GrodtSandboxExecutionClient",
    "RestoredVenue",
    "SandboxLiveExecClientFactory",
    "SynchronousEvents",
    "register_calculated_accounts",
]

EXEC_ENGINE_PROCESS = "ExecEngine.process"
VENUE_DATA_PRIORITY = 100_000
"""Bar subscription priority of the simulated venue: above strategies and actors (0)."""


class SynchronousEvents:
    """The ``ExecEngine.process`` endpoint of a node with sandbox venues.

    Registered once (:meth:`for_engine`), in place of the engine's queued ``process``: while a
    sandbox's exchange runs (``with router:``, re-entrant), venue events are handled at once by
    the engine, as in a backtest; otherwise they take the queued path. Every sandbox of a node
    shares the one router of its execution engine.
    """

    def __init__(self, msgbus: MessageBus, exec_engine: Any) -> None:
        self.engine = exec_engine
        self._queued = exec_engine.process
        self._synchronous = exec_engine._handle_event_with_tracking
        self.depth = 0
        self._held: list[Any] | None = None
        msgbus.deregister(EXEC_ENGINE_PROCESS, exec_engine.process)
        msgbus.register(EXEC_ENGINE_PROCESS, self)

    @classmethod
    def for_engine(cls, msgbus: MessageBus, exec_engine: Any) -> "SynchronousEvents":
        """The router of ``exec_engine``, registered on first use."""
        key = id(exec_engine)
        ref = _ROUTERS.get(key)
        router = ref() if ref is not None else None
        if router is not None and router.engine is exec_engine:
            return router
        router = cls(msgbus, exec_engine)
        for stale in [k for k, r in _ROUTERS.items() if r() is None]:
            del _ROUTERS[stale]
        _ROUTERS[key] = weakref.ref(router)
        return router

    def __call__(self, event: Any) -> None:
        if self._held is not None:
            self._held.append(event)
        elif self.depth:
            self._synchronous(event)
        else:
            self._queued(event)

    @contextlib.contextmanager
    def held(self) -> Iterator[list[Any]]:
        """Context: venue events are collected into the yielded list, not handled (a restore
        decides which of them are news, :meth:`GrodtSandboxExecutionClient.restore`)."""
        if self._held is not None:
            raise GrodtError("venue events are already held (nested restore)")
        self._held = held = []
        try:
            yield held
        finally:
            self._held = None

    def handle(self, event: Any) -> None:
        """Hand ``event`` to the engine at once (a restore's news)."""
        self._synchronous(event)

    def __enter__(self) -> None:
        self.depth += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.depth -= 1


_ROUTERS: dict[int, "weakref.ref[SynchronousEvents]"] = {}
"""Routers by ``id(exec_engine)``, held weakly (a router lives as long as the endpoint holding
it). By identity: Nautilus components hash and compare by component id ("ExecEngine" in every
node), so a mapping keyed by the engine itself would mix up the nodes of one process."""


class _QueuedEvents:
    """No synchronous section: an unbound sandbox (stock behaviour, the negative control)."""

    depth = 0

    def __enter__(self) -> None:
        return None

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


_QUEUED = _QueuedEvents()


def register_calculated_accounts(venues: Iterable[str]) -> None:
    """Accounts of these simulated venues are calculated by the portfolio from fills.

    The venue's exec client registers its venue as it is built (``BacktestExecClient``), but a
    node with a cache database loads the venue's account earlier, when its kernel is built: an
    account loaded unregistered is a reported one, which fills never update (its balances would
    stay where the crashed node left them). The live node registers its sandbox venues before
    it builds the kernel.
    """
    for venue in venues:
        AccountFactory.register_calculated_account(venue)


@dataclass(frozen=True)
class RestoredVenue:
    """What :meth:`GrodtSandboxExecutionClient.restore` rebuilt.

    Attributes
    ----------
    bars : int
        Bars of the venue's instruments the exchange moved through (the crashed node's history).
    orders : int
        Open orders re-entered into the matching engines.
    news : int
        Venue events of the restore handed to the engine (anything but the re-acceptance of an
        order already accepted: normally 0).
    account_restored : bool
        The account kept the cached balances (False: the venue's starting balances).
    """

    bars: int
    orders: int
    news: int
    account_restored: bool
    held: int = 0
    """Commands a ``fill_at: next_open`` venue held at the crash, held again for the next open
    (submissions never accepted, cancels of pending-cancel orders)."""


# OrderMatchingEngine keeps its id counters in private C fields. Cython's generated pickling
# state (``__reduce_cython__``/``__setstate_cython__``) lists every field, sorted by name; the
# layout is identified by its checksum, so another Nautilus version is an error here, not a
# silent write into the wrong field.
_MATCHING_ENGINE_LAYOUT = 108702144
_EXECUTION_COUNT = 10
_ORDER_COUNT = 21


def _counters(engine: Any) -> tuple[int, int]:
    """``(order_count, execution_count)`` of a matching engine: venue order ids and trade ids
    issued so far (``{venue}-{raw_id}-{count:03d}``; a trade id for every bar and every fill)."""
    state = _matching_engine_state(engine)
    return state[_ORDER_COUNT], state[_EXECUTION_COUNT]


def _set_counters(engine: Any, order_count: int, execution_count: int) -> None:
    state = list(_matching_engine_state(engine))
    state[_ORDER_COUNT] = order_count
    state[_EXECUTION_COUNT] = execution_count
    engine.__setstate_cython__(tuple(state))


def _matching_engine_state(engine: Any) -> tuple[Any, ...]:
    _, (_, layout, _), state = engine.__reduce_cython__()
    if layout != _MATCHING_ENGINE_LAYOUT:
        raise GrodtError(
            f"OrderMatchingEngine field layout {layout} is not the one of nautilus_trader 1.221.0 "
            f"({_MATCHING_ENGINE_LAYOUT}): the venue's id counters cannot be restored",
        )
    return state


def _issued_count(ids: Iterable[Any], prefix: str) -> int:
    """The highest ``count`` among ids ``{prefix}{count}`` (0 without one)."""
    highest = 0
    for value in ids:
        text = str(value)
        if text.startswith(prefix) and text[len(prefix) :].isdigit():
            highest = max(highest, int(text[len(prefix) :]))
    return highest


def _order_sequence(order: Order) -> tuple[int, int, str]:
    """Submission order of cached orders: creation time, then the client order id's count."""
    text = order.client_order_id.value
    tail = text.rsplit("-", 1)[-1]
    return (order.ts_init, int(tail) if tail.isdigit() else 0, text)


class GrodtSandboxExecClientConfig(LiveExecClientConfig, frozen=True, kw_only=True):
    """Configuration for :class:`GrodtSandboxExecutionClient`.

    Parameters
    ----------
    venue : BacktestVenueConfig
        The simulated venue, as the backtest builds it (``grodt.nodes.components.venue_config``).
    """

    venue: BacktestVenueConfig


class GrodtSandboxExecutionClient(SandboxExecutionClient):
    """A paper venue that fills like the backtest's ``SimulatedExchange`` (see module docs)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: GrodtSandboxExecClientConfig,
    ) -> None:
        # The stock constructor hard-codes FillModel()/MakerTakerFeeModel() and omits margin
        # model and bar ordering; build the exchange the way BacktestEngine.add_venue does.
        venue_config = config.venue
        venue = Venue(venue_config.name)
        oms_type = get_oms_type(venue_config)
        account_type = get_account_type(venue_config)
        base_currency = get_base_currency(venue_config)
        self.test_clock = TestClock()
        LiveExecutionClient.__init__(
            self,
            loop=loop,
            client_id=ClientId(venue_config.name),
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            base_currency=base_currency,
            instrument_provider=InstrumentProvider(),
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=None,
        )
        self.exchange = SimulatedExchange(
            venue=venue,
            oms_type=oms_type,
            account_type=account_type,
            starting_balances=get_starting_balances(venue_config),
            base_currency=base_currency,
            default_leverage=Decimal(venue_config.default_leverage),
            leverages=get_leverages(venue_config),
            margin_model=get_margin_model(venue_config) or LeveragedMarginModel(),
            modules=[ActorFactory.create(module) for module in venue_config.modules or []],
            portfolio=portfolio,
            msgbus=msgbus,
            cache=cache,
            clock=self.test_clock,
            fill_model=get_fill_model(venue_config) or FillModel(),
            fee_model=get_fee_model(venue_config) or MakerTakerFeeModel(),
            latency_model=get_latency_model(venue_config),
            book_type=get_book_type(venue_config),
            frozen_account=venue_config.frozen_account,
            reject_stop_orders=venue_config.reject_stop_orders,
            support_gtd_orders=venue_config.support_gtd_orders,
            support_contingent_orders=venue_config.support_contingent_orders,
            use_position_ids=venue_config.use_position_ids,
            use_random_ids=venue_config.use_random_ids,
            use_reduce_only=venue_config.use_reduce_only,
            use_message_queue=False,  # commands run at once, on the current market
            bar_execution=venue_config.bar_execution,
            bar_adaptive_high_low_ordering=venue_config.bar_adaptive_high_low_ordering,
            trade_execution=venue_config.trade_execution,
        )
        self._client = BacktestExecClient(
            exchange=self.exchange,
            msgbus=msgbus,
            cache=cache,
            clock=self.test_clock,
        )
        self.exchange.register_client(self._client)
        self._engine: Any = None
        self._instrument_order: list[InstrumentId] = []
        self._router: SynchronousEvents | _QueuedEvents = _QUEUED
        self._probe: LatencyProbe | None = None
        # fill_at: next_open — commands wait in the venue's module for the next bar's open.
        self._next_open = next(
            (m for m in self.exchange.modules if isinstance(m, NextOpenFills)),
            None,
        )
        # A restarted node's cache database holds the venue's account: its balances are the
        # crashed node's, not the starting balances (a fresh account state would reset them).
        cached_account = cache.account_for_venue(venue)
        self.account_restored = cached_account is not None
        if cached_account is None:
            self.exchange.initialize_account()
        elif not cached_account.calculate_account_state:
            raise GrodtError(
                f"sandbox {venue}: the cached account {cached_account.id} was loaded as a "
                "reported account (fills would not update it): register the venue with "
                "register_calculated_accounts before the node is built",
            )
        elif cached_account.is_margin_account:
            cached_account.set_default_leverage(self.exchange.default_leverage)
            for instrument_id, leverage in self.exchange.leverages.items():
                cached_account.set_leverage(instrument_id, leverage)

    # -- wiring by the node runner --------------------------------------------------------------

    def order_instruments(self, instrument_ids: Sequence[InstrumentId]) -> None:
        """Give matching engines to these instruments first, in this order (the replay's catalog
        order): a restarted node's cache lists the instruments it loaded from its database
        first, in the database's order, and raw ids (hence venue order ids) follow the order."""
        self._instrument_order = list(instrument_ids)

    def bind(self, exec_engine: Any, probe: LatencyProbe | None = None) -> None:
        """Apply venue events synchronously through ``exec_engine`` (trap 3) and report order
        submissions to ``probe``. ``exec_engine=None`` keeps the queued path (stock behaviour)."""
        self._engine = exec_engine
        self._probe = probe
        if exec_engine is None:
            self._router = _QUEUED
        else:
            self._router = SynchronousEvents.for_engine(self._msgbus, exec_engine)

    def _synchronous_events(self) -> SynchronousEvents | _QueuedEvents:
        """Context: ``ExecEngine.process`` goes straight into the engine while the exchange runs."""
        return self._router

    # -- connection -----------------------------------------------------------------------------

    def connect(self) -> None:
        self._log.info("Connecting...")
        if self._engine is None:
            self._log.error(
                "Sandbox not bound to the execution engine: venue events are applied "
                "asynchronously and fills can diverge from the backtest",
            )
        self._msgbus.subscribe(
            venue_data_pattern(self.venue),
            handler=self._on_venue_data,
            priority=VENUE_DATA_PRIORITY,
        )
        self._msgbus.subscribe(NAUTILUS_BARS, handler=self.on_bar, priority=VENUE_DATA_PRIORITY)
        for instrument in self._cache.instruments(venue=self.venue):
            self._ensure_instrument(instrument.id)
        self._client._set_connected(True)
        self._set_connected(True)
        self._log.info("Connected")

    def disconnect(self) -> None:
        self._log.info("Disconnecting...")
        for topic, handler in (
            (venue_data_pattern(self.venue), self._on_venue_data),
            (NAUTILUS_BARS, self.on_bar),
        ):
            if self._msgbus.is_subscribed(topic, handler):
                self._msgbus.unsubscribe(topic, handler)
        self._set_connected(False)
        self._log.info("Disconnected")

    def _ensure_instrument(self, instrument_id: InstrumentId) -> bool:
        if self.exchange.get_matching_engine(instrument_id) is not None:
            return True
        if self._cache.instrument(instrument_id) is None:
            return False
        self.ensure_instruments()
        return self.exchange.get_matching_engine(instrument_id) is not None

    def ensure_instruments(self) -> int:
        """Give every cached instrument of the venue a matching engine; returns how many are new.

        All of them, in catalog order (:meth:`order_instruments`, then cache order), as the
        BacktestEngine does: matching-engine ids, hence venue order ids, follow that order.
        """
        added = 0
        ordered = [self._cache.instrument(i) for i in self._instrument_order]
        for instrument in (*ordered, *self._cache.instruments(venue=self.venue)):
            if instrument is None or instrument.id.venue != self.venue:
                continue
            if self.exchange.get_matching_engine(instrument.id) is None:
                self.exchange.add_instrument(instrument)
                added += 1
        return added

    # -- restart --------------------------------------------------------------------------------

    def restore(self, history: Sequence[Data]) -> RestoredVenue:
        """Rebuild the venue of a restarted node from its cache (see the module docs, item 6).

        ``history`` is what the crashed node had replayed (:meth:`ReplayDataClient.history`):
        its bars of this venue's instruments move the exchange's market (no order rests there
        yet, so no event), then every open order of the venue in the cache is processed again,
        in submission order. The re-acceptance of an order the cache already holds as accepted
        is held back; any other event of the restore is handed to the engine and counted as
        news (logged). An order whose OCO/OUO sibling is closed is cancelled instead (news):
        a crash between the venue's fill of one and its cancel of the other, whose fill
        reached the cache database while the cancel did not.
        """
        if not isinstance(self._router, SynchronousEvents):
            raise GrodtError("sandbox restore needs the client bound to the execution engine")
        self.ensure_instruments()
        bars = 0
        news: list[Any] = []
        with self._router, self._router.held() as held:
            for record in history:
                if isinstance(record, Bar) and record.bar_type.instrument_id.venue == self.venue:
                    SandboxExecutionClient.on_data(self, record)
                    bars += 1
            news.extend(held)
            held.clear()
            self._restore_counters()
            # Open and in-flight overlap (PENDING_UPDATE / PENDING_CANCEL): once each.
            by_id = {
                order.client_order_id: order
                for order in (
                    *self._cache.orders_open(venue=self.venue),
                    *self._cache.orders_inflight(venue=self.venue),
                )
            }
            orders = sorted(by_id.values(), key=_order_sequence)
            accepted_before = {
                order.client_order_id for order in orders if order.venue_order_id is not None
            }
            account_id = self._client.account_id
            held_again = 0
            for order in orders:
                if not self._ensure_instrument(order.instrument_id):
                    continue
                engine = self.exchange.get_matching_engine(order.instrument_id)
                if self._sibling_closed(order):
                    # The crashed venue filled (or cancelled) its OCO/OUO sibling and died before
                    # cancelling it: finish that (news), as the uninterrupted venue did.
                    engine.cancel_order(order, False)
                else:
                    engine.process_order(order, order.account_id or account_id)
                    if self._next_open is not None and order.status == OrderStatus.PENDING_CANCEL:
                        # fill_at: next_open — the cancel the crashed venue held, held again.
                        self._send(self._cancellation(order), self._client.cancel_order)
                        held_again += 1
            if self._next_open is not None:
                held_again += self._hold_submissions_again()
            for event in held:
                if not (
                    isinstance(event, OrderAccepted) and event.client_order_id in accepted_before
                ):
                    news.append(event)
        for event in news:
            self._log.warning(f"Venue restore: {event}")
            self._router.handle(event)
        restored = RestoredVenue(
            bars=bars,
            orders=len(orders),
            news=len(news),
            account_restored=self.account_restored,
            held=held_again,
        )
        self._log.info(f"Venue restored from the cache: {restored}")
        return restored

    def _hold_submissions_again(self) -> int:
        """``fill_at: next_open``: the submissions the crashed venue held for the next open
        (their orders are still INITIALIZED: the client's OrderSubmitted comes when the venue
        runs them) held again, in submission order, a bracket as its order list; returns the
        commands held."""
        orders = self._cache.orders(venue=self.venue)
        waiting = sorted(
            (o for o in orders if o.status == OrderStatus.INITIALIZED), key=_order_sequence
        )
        lists: set[Any] = set()
        commands = 0
        for order in waiting:
            list_id = order.order_list_id
            if list_id is None:
                command: TradingCommand = SubmitOrder(
                    trader_id=order.trader_id,
                    strategy_id=order.strategy_id,
                    order=order,
                    command_id=UUID4(),
                    ts_init=self._clock.timestamp_ns(),
                    position_id=order.position_id,
                    client_id=self.id,
                )
                self._send(command, self._client.submit_order)
            elif list_id not in lists:
                lists.add(list_id)
                members = [o for o in waiting if o.order_list_id == list_id]
                command = SubmitOrderList(
                    trader_id=order.trader_id,
                    strategy_id=order.strategy_id,
                    order_list=OrderList(list_id, members),
                    command_id=UUID4(),
                    ts_init=self._clock.timestamp_ns(),
                    position_id=order.position_id,
                    client_id=self.id,
                )
                self._send(command, self._client.submit_order_list)
            else:
                continue
            commands += 1
            self._log.info(f"Venue restore: {command} held again for the next open")
        return commands

    def _cancellation(self, order: Order) -> CancelOrder:
        return CancelOrder(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            venue_order_id=order.venue_order_id,
            command_id=UUID4(),
            ts_init=self._clock.timestamp_ns(),
            client_id=self.id,
        )

    def _sibling_closed(self, order: Order) -> bool:
        """Whether ``order`` is one of an OCO/OUO pair whose other order is closed."""
        if order.contingency_type not in (ContingencyType.OCO, ContingencyType.OUO):
            return False
        for linked_id in order.linked_order_ids or []:
            linked = self._cache.order(linked_id)
            if linked is not None and linked.is_closed:
                return True
        return False

    def _restore_counters(self) -> None:
        """Continue each matching engine's venue order id and trade id counts where the crashed
        venue stood, so no id is issued twice: orders accepted = the highest venue order id in
        the cache; trade ids = one per bar the restore moved through plus one per cached fill."""
        for instrument in self._cache.instruments(venue=self.venue):
            engine = self.exchange.get_matching_engine(instrument.id)
            if engine is None:
                continue
            orders = self._cache.orders(instrument_id=instrument.id)
            prefix = f"{self.venue}-{engine.raw_id}-"
            order_count = _issued_count((o.venue_order_id for o in orders), prefix)
            fills = sum(len(order.trade_ids) for order in orders)
            _, bar_trades = _counters(engine)
            _set_counters(engine, order_count, bar_trades + fills)

    # -- market data ----------------------------------------------------------------------------

    def _on_venue_data(self, data: Data) -> None:
        # Quotes, trades, books, statuses of the venue; bars come through on_bar only.
        if not isinstance(data, Bar):
            self.on_data(data)

    def on_bar(self, bar: Bar) -> None:
        """Bars of this venue's instruments move the simulated market."""
        if bar.bar_type.instrument_id.venue != self.venue:
            return
        self.on_data(bar)

    def on_data(self, data: Data) -> None:
        instrument_id = getattr(data, "instrument_id", None)
        if isinstance(data, Bar):
            instrument_id = data.bar_type.instrument_id
        elif isinstance(data, Instrument):
            instrument_id = None
        if instrument_id is not None and not self._ensure_instrument(instrument_id):
            self._log.warning(f"No instrument {instrument_id} in the cache; {data} ignored")
            return
        with self._router:
            super().on_data(data)

    # -- commands -------------------------------------------------------------------------------
    # An order can precede the venue's first data (a strategy's on_start): each command makes
    # sure its instrument has a matching engine (a dict lookup once it has).

    def submit_order(self, command: SubmitOrder) -> None:
        if self._probe is not None:
            self._probe.on_submit(command.order.client_order_id)
        self._send(command, self._client.submit_order)

    def submit_order_list(self, command: SubmitOrderList) -> None:
        if self._probe is not None:
            for order in command.order_list.orders:
                self._probe.on_submit(order.client_order_id)
        self._send(command, self._client.submit_order_list)

    def modify_order(self, command: ModifyOrder) -> None:
        self._send(command, self._client.modify_order)

    def cancel_order(self, command: CancelOrder) -> None:
        self._send(command, self._client.cancel_order)

    def cancel_all_orders(self, command: CancelAllOrders) -> None:
        self._send(command, self._client.cancel_all_orders)

    def batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        self._send(command, self._client.batch_cancel_orders)

    def query_order(self, command: QueryOrder) -> None:
        self._send(command, self._client.query_order)

    def _send(self, command: TradingCommand, run: Callable[[Any], None]) -> None:
        """Run ``command`` on the exchange now, or (``fill_at: next_open``) hand it to the venue's
        module, which runs it at the next bar's open."""
        if self._next_open is not None:
            self._next_open.hold(command, lambda held: self._run_command(held, run))
        else:
            self._run_command(command, run)

    def _run_command(self, command: TradingCommand, run: Callable[[Any], None]) -> None:
        self._ensure_instrument(command.instrument_id)
        with self._router:
            run(command)


class SandboxLiveExecClientFactory(LiveExecClientFactory):
    """Factory of :class:`GrodtSandboxExecutionClient`.

    The class name is load-bearing: ``TradingNodeBuilder`` passes the portfolio only to a factory
    named ``SandboxLiveExecClientFactory``.
    """

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: GrodtSandboxExecClientConfig,
        portfolio: PortfolioFacade,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> GrodtSandboxExecutionClient:
        return GrodtSandboxExecutionClient(
            loop=loop,
            portfolio=portfolio,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
        )
