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

Synchronous venue events go through one router registered at the ``ExecEngine.process`` endpoint
when the client is bound (:class:`SynchronousEvents`): entering and leaving a synchronous section
is a counter, not a re-registration of the endpoint per bar and per command.
"""

import asyncio
import weakref
from collections.abc import Callable
from decimal import Decimal
from types import TracebackType
from typing import Any

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
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.portfolio.base import PortfolioFacade

from grodt.core.topics import NAUTILUS_BARS
from grodt.core.topics import venue_data_pattern
from grodt.nodes.fill_timing import NextOpenFills
from grodt.nodes.latency import LatencyProbe

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
        if self.depth:
            self._synchronous(event)
        else:
            self._queued(event)

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
        self._router: SynchronousEvents | _QueuedEvents = _QUEUED
        self._probe: LatencyProbe | None = None
        # fill_at: next_open — commands wait in the venue's module for the next bar's open.
        self._next_open = next(
            (m for m in self.exchange.modules if isinstance(m, NextOpenFills)),
            None,
        )
        self.exchange.initialize_account()

    # -- wiring by the node runner --------------------------------------------------------------

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

        All of them, in cache (= catalog) order, as the BacktestEngine does: matching-engine ids,
        hence venue order ids, follow that order.
        """
        added = 0
        for instrument in self._cache.instruments(venue=self.venue):
            if self.exchange.get_matching_engine(instrument.id) is None:
                self.exchange.add_instrument(instrument)
                added += 1
        return added

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
