"""Fill timing of a simulated venue: ``fill_at: close`` or ``fill_at: next_open``.

``close`` is Nautilus' convention on bar data: the venue moves through a bar's open, high, low and
close before strategies see the bar, so a market order sent while a bar is handled fills at that
bar's close, at that bar's time. ``next_open`` is the convention of backtrader, backtesting.py and
zipline: a trader cannot act on a close at that same close, so what a strategy sends while bar t of
an instrument is handled acts from bar t+1 of that instrument on.

The mechanism (the same objects in a BacktestNode and in the paper TradingNode):

1. :class:`NextOpenFills`, a Nautilus ``SimulationModule`` of the venue (``BacktestVenueConfig.
   modules``; the sandbox venue builds its exchange with the same modules). It holds the venue's
   trading commands (submit, submit list, modify, cancel, query) per instrument, each stamped
   with the latest bar time the venue had seen when it arrived.
2. The venue's execution client hands it every command instead of sending it to the exchange: the
   sandbox client does so itself; in a backtest :func:`hold_venue_commands` puts a
   :class:`HeldCommandsExecClient` in front of the engine's own client (the execution engine's
   public ``deregister_client``/``register_client``). Risk gate and kill switch sit upstream,
   unchanged: they judge a command when the strategy sends it.
3. A simulated exchange calls its modules' ``pre_process(bar)`` before its matching engine
   processes the bar. When bar t+1 of an instrument arrives there, the module moves that
   instrument's market to the bar's open (a trade tick at the open, of the size the matching
   engine derives from the bar's volume, at the bar's time), releases the commands held before
   t+1 in arrival order and runs them at once. The matching engine then goes on with the bar's
   high, low and close: a market order fills at the open of t+1 at t+1's time, a limit or stop
   order is matched from t+1's open on.

Why this and not the alternatives: the ``RiskEngine.execute``/``ExecEngine.execute`` endpoints are
owned by the risk gate and the kill switch (a second owner breaks their install), and an
endpoint-level hold would run queued (asynchronously) in a TradingNode; a latency model releases
commands by the command's clock time, which is wall time in a TradingNode. Between the execution
client and the exchange both nodes run the same synchronous code.

Limits: bars only of price type LAST or MID (trade bars; BID/ASK quote bars are an error), one bar
type per instrument on the venue (an error otherwise: the matching engine would execute on the
finer one); commands still held when the data ends (orders sent on the last bar, or in
``on_stop``) never reach the venue; :attr:`NextOpenFills.pending` counts them.
"""

from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nautilus_trader.backtest.config import SimulationModuleConfig
from nautilus_trader.backtest.modules import SimulationModule
from nautilus_trader.common.component import Logger
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.core.data import Data
from nautilus_trader.execution.client import ExecutionClient
from nautilus_trader.execution.messages import BatchCancelOrders
from nautilus_trader.execution.messages import CancelAllOrders
from nautilus_trader.execution.messages import CancelOrder
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import QueryOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.execution.messages import TradingCommand
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.enums import AggressorSide
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import TradeId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Quantity

from grodt.core.errors import ConfigError

__all__ = [
    "FILL_AT_CLOSE",
    "FILL_AT_NEXT_OPEN",
    "FILL_CONVENTIONS",
    "HeldCommandsExecClient",
    "NextOpenFills",
    "NextOpenFillsConfig",
    "fill_convention",
    "fill_timing_modules",
    "hold_venue_commands",
    "next_open_module",
]

FILL_AT_CLOSE = "close"
FILL_AT_NEXT_OPEN = "next_open"
FILL_CONVENTIONS: dict[str, str] = {
    FILL_AT_CLOSE: "market orders fill at the close of the bar they are sent on",
    FILL_AT_NEXT_OPEN: "market orders fill at the open of the next bar of their instrument",
}
"""Each ``fill_at`` value and what it means, as summaries and tearsheets print it."""

_JOIN_PREFIX = "grodt.NextOpenFills."
"""Message-bus endpoint (+ venue) where a venue's module hands itself over."""
_SUPPORTED_PRICE_TYPES = (PriceType.LAST, PriceType.MID)

Forward = Callable[[Any], None]


class NextOpenFillsConfig(SimulationModuleConfig, frozen=True):
    """Configuration of :class:`NextOpenFills` (nothing to set)."""


@dataclass(slots=True)
class _Held:
    command: TradingCommand
    forward: Forward
    after_ns: int
    """The venue's latest bar time (UNIX ns) when the command arrived: released on the first bar
    of its instrument later than this."""


class NextOpenFills(SimulationModule):
    """Holds a venue's trading commands until the next bar of their instrument opens (see the
    module docs). ``pending``: commands held now; ``released``: commands run so far."""

    def __init__(self, config: NextOpenFillsConfig | None = None) -> None:
        super().__init__(config or NextOpenFillsConfig())
        self._held: dict[InstrumentId, list[_Held]] = {}
        self._bar_types: dict[InstrumentId, BarType] = {}
        self._venue_ts = 0
        self._ticks = 0
        self.released = 0

    # -- wiring ---------------------------------------------------------------------------------

    def register_venue(self, exchange: Any) -> None:
        super().register_venue(exchange)
        # How the node finds the module of a venue (hold_venue_commands): the kill switch's
        # hand-over pattern, an endpoint on the kernel's own bus.
        exchange.msgbus.register(_JOIN_PREFIX + exchange.id.value, self._hand_over)

    def _hand_over(self, receive: Callable[["NextOpenFills"], None]) -> None:
        receive(self)

    # -- commands -------------------------------------------------------------------------------

    def hold(self, command: TradingCommand, forward: Forward) -> None:
        """Keep ``command`` until the next bar of its instrument; then ``forward(command)``."""
        held = _Held(command, forward, self._venue_ts)
        self._held.setdefault(command.instrument_id, []).append(held)

    @property
    def pending(self) -> int:
        """Commands held and not yet released."""
        return sum(len(held) for held in self._held.values())

    # -- SimulationModule -----------------------------------------------------------------------

    def pre_process(self, data: Data) -> None:
        """Before the venue's matching engine processes ``data``: on a bar, release what was held
        for its instrument at the bar's open."""
        if not isinstance(data, Bar):
            return
        bar_type = data.bar_type
        if bar_type.aggregation_source == AggregationSource.INTERNAL:
            return  # the matching engine ignores internally aggregated bars
        if bar_type.spec.aggregation == BarAggregation.MONTH:
            return  # and monthly ones
        instrument_id = bar_type.instrument_id
        self._check_bar_type(bar_type)
        held = self._held.get(instrument_id)
        if held:
            due = [h for h in held if h.after_ns < data.ts_init]
            if due:
                self._held[instrument_id] = [h for h in held if h.after_ns >= data.ts_init]
                self._release_at_open(data, due)
        if data.ts_init > self._venue_ts:
            self._venue_ts = data.ts_init

    def _check_bar_type(self, bar_type: BarType) -> None:
        instrument_id = bar_type.instrument_id
        known = self._bar_types.setdefault(instrument_id, bar_type)
        if known != bar_type:
            raise ConfigError(
                f"fill_at: next_open on venue {instrument_id.venue}: {instrument_id} has bars "
                f"{known} and {bar_type}; give the venue one bar type per instrument",
            )
        if bar_type.spec.price_type not in _SUPPORTED_PRICE_TYPES:
            raise ConfigError(
                f"fill_at: next_open on venue {instrument_id.venue}: {bar_type} is a quote bar "
                f"({bar_type.spec.price_type.name}); next_open needs LAST or MID bars",
            )

    def _release_at_open(self, bar: Bar, due: list[_Held]) -> None:
        exchange = self.exchange
        # The venue's clock to the bar's time first (fills and events are stamped with it).
        exchange.process(bar.ts_init)
        exchange.process_trade_tick(self._open_tick(bar))
        for held in due:
            held.forward(held.command)
        self.released += len(due)
        # A backtest venue queues commands until it is processed: run them at the open, before
        # the matching engine goes on with the bar's high, low and close.
        exchange.process(bar.ts_init)

    def _open_tick(self, bar: Bar) -> TradeTick:
        """The bar's open as a trade, of the size the matching engine gives each bar price."""
        instrument = self.exchange.instruments[bar.bar_type.instrument_id]
        size = max(bar.volume.as_double() / 4.0, instrument.size_increment.as_double())
        self._ticks += 1
        return TradeTick(
            bar.bar_type.instrument_id,
            bar.open,
            Quantity(size, bar.volume.precision),
            AggressorSide.NO_AGGRESSOR,
            TradeId(f"OPEN-{self._ticks}"),
            bar.ts_init,
            bar.ts_init,
        )

    def process(self, ts_now: int) -> None:
        """Nothing to do after the venue's commands: releases happen in :meth:`pre_process`."""

    def log_diagnostics(self, logger: Logger) -> None:
        logger.info(f"NextOpenFills: {self.released:,} commands released, {self.pending} held")

    def reset(self) -> None:
        self._held.clear()
        self._bar_types.clear()
        self._venue_ts = 0
        self._ticks = 0
        self.released = 0


def fill_convention(venues: Sequence[Any]) -> str:
    """The run's fill convention from its venue specs: their common ``fill_at``, or
    ``"VENUE=value, ..."`` when venues differ."""
    values = {venue.fill_at for venue in venues}
    if len(values) == 1:
        return values.pop()
    return ", ".join(f"{venue.name}={venue.fill_at}" for venue in venues)


def fill_timing_modules(fill_at: str) -> list[ImportableActorConfig] | None:
    """The venue modules a ``fill_at`` value needs (``BacktestVenueConfig.modules``)."""
    if fill_at == FILL_AT_CLOSE:
        return None
    if fill_at == FILL_AT_NEXT_OPEN:
        return [
            ImportableActorConfig(
                actor_path=f"{__name__}:NextOpenFills",
                config_path=f"{__name__}:NextOpenFillsConfig",
                config={},
            ),
        ]
    raise ConfigError(f"fill_at must be one of {sorted(FILL_CONVENTIONS)}, was {fill_at!r}")


def next_open_module(msgbus: Any, venue: Venue) -> NextOpenFills | None:
    """The :class:`NextOpenFills` module of ``venue`` on this bus, if it has one."""
    endpoint = _JOIN_PREFIX + venue.value
    if endpoint not in msgbus.endpoints():
        return None
    found: list[NextOpenFills] = []
    msgbus.send(endpoint, found.append)
    return found[0] if found else None


class HeldCommandsExecClient(ExecutionClient):
    """Stands in the execution engine for a backtest venue's own client: every trading command
    goes to the venue's :class:`NextOpenFills` and reaches ``inner`` when it is released."""

    def __init__(
        self, inner: ExecutionClient, module: NextOpenFills, msgbus: Any, cache: Any, clock: Any
    ) -> None:
        super().__init__(
            client_id=inner.id,
            venue=inner.venue,
            oms_type=inner.oms_type,
            account_type=inner.account_type,
            base_currency=inner.base_currency,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
        )
        self.inner = inner
        self.module = module

    # The execution engine starts and stops the clients registered with it: this one, in place
    # of the venue's own client, which then needs it passed on.
    def _start(self) -> None:
        self.inner.start()
        self._set_connected(True)

    def _stop(self) -> None:
        self.inner.stop()
        self._set_connected(False)

    def submit_order(self, command: SubmitOrder) -> None:
        self.module.hold(command, self.inner.submit_order)

    def submit_order_list(self, command: SubmitOrderList) -> None:
        self.module.hold(command, self.inner.submit_order_list)

    def modify_order(self, command: ModifyOrder) -> None:
        self.module.hold(command, self.inner.modify_order)

    def cancel_order(self, command: CancelOrder) -> None:
        self.module.hold(command, self.inner.cancel_order)

    def cancel_all_orders(self, command: CancelAllOrders) -> None:
        self.module.hold(command, self.inner.cancel_all_orders)

    def batch_cancel_orders(self, command: BatchCancelOrders) -> None:
        self.module.hold(command, self.inner.batch_cancel_orders)

    def query_order(self, command: QueryOrder) -> None:
        self.module.hold(command, self.inner.query_order)


def hold_venue_commands(kernel: Any, venue: Venue) -> bool:
    """Route a BacktestEngine venue's commands through its :class:`NextOpenFills` module, if it
    has one: the engine's own client of the venue (the exchange's) is replaced in the execution
    engine by a :class:`HeldCommandsExecClient` around it. Returns whether it was.

    Only for venues the BacktestEngine built: a sandbox venue's client holds its commands itself.
    """
    module = next_open_module(kernel.msgbus, venue)
    if module is None:
        return False
    own_client = module.exchange.exec_client
    wrapper = HeldCommandsExecClient(own_client, module, kernel.msgbus, kernel.cache, kernel.clock)
    kernel.exec_engine.deregister_client(own_client)
    kernel.exec_engine.register_client(wrapper)
    return True
