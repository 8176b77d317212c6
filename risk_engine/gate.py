"""The portfolio risk gate: every order of every strategy passes it before Nautilus' own checks.

Installed by replacing the handlers at the message-bus endpoints ``RiskEngine.execute`` (where
strategies, execution algorithms and the order manager send ``SubmitOrder``,
``SubmitOrderList`` and ``ModifyOrder``) and ``OrderEmulator.execute`` (emulated orders, which
Nautilus sends past its risk engine). Both kernels, BacktestNode's and TradingNode's, register
these endpoints the same way, so the gate runs unchanged in both.

Verdicts
--------
``approve``
    The command goes on to Nautilus' own RiskEngine (or the emulator) unchanged.
``resize``
    The order is reduced to the largest quantity that fits every limit (rounded down to the size
    increment): an ``OrderUpdated`` event is applied to the still-INITIALIZED order (the one
    transition Nautilus allows before submission, no FSM change) and published to the strategy
    (``on_order_updated``), then the command goes on. Bracket children follow their entry.
``deny``
    An ``OrderDenied`` with the reason goes to ``ExecEngine.process``: the strategy gets
    ``on_order_denied``. An order list is denied as a whole. A modify that asks for more than
    fits gets ``OrderModifyRejected`` (or is reduced to what fits).

Risk-reducing orders — reduce-only orders, and orders that only shrink the instrument's net
position even if every other pending order on that side fills — always pass, also while the kill
switch is halted (a gate must never trap a position). An order that flips a position is
exposure-increasing; under a halt it is cut to its reducing part.

Every verdict, approvals included, is published as a
:class:`grodt.core.records.RiskVerdictRecord` on
:data:`grodt.core.topics.Topics.RISK`, with the order's trace id from its tags.
"""

import math
import time
from collections import Counter
from collections import deque
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import Clock
from nautilus_trader.common.component import Logger
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.component import is_matching_py
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from grodt.core.errors import GrodtError
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import trace_id_from_tags
from grodt.core.topics import KILL_SWITCH_TOPIC
from grodt.core.topics import RISK_TARGETS_TOPIC
from grodt.core.topics import Topics
from risk_engine.config import RiskConfig
from risk_engine.kill_switch import KillSwitch
from risk_engine.kill_switch import KillSwitchEvent
from risk_engine.limits import INF
from risk_engine.limits import LimitResult
from risk_engine.limits import LimitSet
from risk_engine.limits import OrderIntent
from risk_engine.limits import Scenarios
from risk_engine.messages import RiskTargets
from risk_engine.portfolio_state import InstrumentInfo
from risk_engine.portfolio_state import PortfolioView
from risk_engine.portfolio_state import Snapshot
from risk_engine.portfolio_state import counts_as_opening
from risk_engine.portfolio_state import id_str
from risk_engine.portfolio_state import order_leaves_units
from risk_engine.portfolio_state import order_price
from risk_engine.tags import stop_price_from_tags

RISK_ENDPOINT = "RiskEngine.execute"
EMULATOR_ENDPOINT = "OrderEmulator.execute"
EXEC_ENDPOINT = "ExecEngine.execute"
_STOP_TYPES = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TRAILING_STOP_MARKET,
        OrderType.TRAILING_STOP_LIMIT,
    },
)
_MONITOR_TICK_INTERVAL_NS = 1_000_000_000
MAX_KEPT = 10_000
"""Verdict rows kept in memory (the latest): ``risk_verdicts.csv`` is streamed as they come
(:meth:`PortfolioRiskGate.stream_verdicts`), the summary's counts are counters."""
MAX_TIMINGS = 100_000
"""Cost samples kept for the summary's percentiles (the latest; mean and count are running)."""
VERDICT_FLUSH_ROWS = 1_000
"""Verdict rows buffered before they are handed to the stream's sink."""
_SCHEMA_VERSION = RiskVerdictRecord.model_fields["schema_version"].default


@dataclass(slots=True)
class Verdict:
    """The gate's answer for one order.

    Attributes
    ----------
    verdict : str
        ``approve``, ``resize`` or ``deny``.
    code : str
        Reason code: the binding limit (``max_weight``, ``kill_switch``, ...), ``reducing`` for a
        risk-reducing approval, ``""`` for a plain approval.
    reason : str
        Human-readable reason (what the strategy's ``on_order_denied`` receives).
    requested, approved : float
        Quantities in the order's own quantity unit.
    results : list[LimitResult]
        Each limit's answer (empty for reducing orders).
    """

    verdict: str
    code: str
    reason: str
    requested: float
    approved: float
    results: list[LimitResult]


class PortfolioRiskGate:
    """Portfolio-level pre-trade risk for a Nautilus kernel (backtest or live alike).

    Parameters
    ----------
    config : RiskConfig
        The validated ``risk:`` section.
    """

    def __init__(self, config: RiskConfig) -> None:
        self.config = config
        self.component_id = config.component_id
        self.limits = LimitSet(
            config.limits,
            config.hrp.tolerance if config.hrp is not None else None,
        )
        self.kill_switch = KillSwitch(
            config.kill_switch,
            config.limits.daily_loss,
            config.limits.max_drawdown,
        )
        self._slippage = config.limits.slippage_allowance
        self._monitor_equity = (
            config.limits.daily_loss is not None or config.limits.max_drawdown is not None
        )
        self.targets: dict[InstrumentId, float] = {}
        self.targets_version = ""
        self.targets_updates = 0
        self.scenarios: Scenarios | None = None
        self.counts: Counter[str] = Counter()
        self.denials: Counter[str] = Counter()
        self.resizes: Counter[str] = Counter()
        # Bounded: a long-running live node keeps the latest verdicts and cost samples here;
        # every row goes to the stream's sink (``risk_verdicts.csv``) and the forensics topic.
        self.verdict_log: deque[tuple[Any, ...]] = deque(maxlen=MAX_KEPT)
        self._verdict_sink: Callable[[list[tuple[Any, ...]]], None] | None = None
        self._unflushed: list[tuple[Any, ...]] = []
        self.gate_ns: deque[int] = deque(maxlen=MAX_TIMINGS)
        self.dispatch_ns: deque[int] = deque(maxlen=MAX_TIMINGS)
        self.commands = 0
        self.gate_ns_total = 0
        self.dispatched = 0
        self.dispatch_ns_total = 0
        self._dispatch_ns = 0
        self._pending: dict[ClientOrderId, Order] = {}
        # Approved orders a halt revoked before a (live, queued) engine submitted them: their
        # submission is dropped at ``ExecEngine.execute`` (see ``_execute_exec``).
        self._revoked: set[ClientOrderId] = set()
        self._forward_exec: Callable[[Any], None] | None = None
        self._installed = False
        self._last_monitor_ns = -1
        self._market_ns = -1
        self._last_message: Any = None

    # -- installation ------------------------------------------------------------------------

    def attach(
        self,
        msgbus: MessageBus,
        cache: Cache,
        clock: Clock,
        risk_engine_execute: Callable[[Any], None],
        emulator_execute: Callable[[Any], None] | None = None,
        risk_engine: Any | None = None,
        strategy_lookup: Callable[[StrategyId], Strategy | None] | None = None,
        exec_engine_execute: Callable[[Any], None] | None = None,
    ) -> None:
        """Hook into a built kernel's parts (``install`` does this from a ``NautilusKernel``).

        ``risk_engine_execute`` / ``emulator_execute`` are the handlers currently registered at
        the endpoints; the gate forwards approved commands to them. ``exec_engine_execute``, the
        execution engine's own handler: when it is still the one at ``ExecEngine.execute``, the
        gate wraps it to drop submissions a halt revoked after approving them (a live engine
        queues commands between the gate and the venue). When another component already
        guards that endpoint (a live node's kill switch denies non-closing submissions while
        halted), the gate leaves it alone.
        """
        if self._installed:
            raise RuntimeError("the risk gate is already installed")
        self._msgbus = msgbus
        self._cache = cache
        self._clock = clock
        self._risk_engine = risk_engine
        self._strategy_lookup = strategy_lookup
        self._log = Logger(self.component_id)
        self.view = PortfolioView(cache, self._log)
        self._forward_risk = risk_engine_execute
        self._forward_emulator = emulator_execute
        for endpoint, current, replacement in (
            (RISK_ENDPOINT, risk_engine_execute, self._execute_risk),
            (EMULATOR_ENDPOINT, emulator_execute, self._execute_emulator),
        ):
            if current is None:
                continue
            try:
                msgbus.deregister(endpoint, current)
            except ValueError as e:
                raise GrodtError(
                    f"cannot install the risk gate: the handler at {endpoint!r} is not the one "
                    f"expected (another component replaced it?): {e}",
                ) from None
            msgbus.register(endpoint, replacement)
        if exec_engine_execute is not None:
            try:
                msgbus.deregister(EXEC_ENDPOINT, exec_engine_execute)
            except ValueError:
                self._log.info(
                    f"{EXEC_ENDPOINT!r} is already guarded by another component: revoked "
                    "approvals are left to it",
                )
            else:
                msgbus.register(EXEC_ENDPOINT, self._execute_exec)
                self._forward_exec = exec_engine_execute
        # Prices before any strategy sees the bar (higher priority runs first).
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []
        for pattern, handler in (
            ("data.bars.*", self._on_bar),
            ("data.quotes.*", self._on_quote),
            ("data.trades.*", self._on_trade),
        ):
            msgbus.subscribe(pattern, handler, priority=100)
            self._subscriptions.append((pattern, handler))
            # Nautilus 1.221's MessageBus.subscribe matches a new wildcard against the topics
            # already published with its arguments swapped, so a topic published before this
            # call would never reach the wildcard: subscribe those exactly as well (the
            # handlers ignore a message they have just seen).
            for topic in msgbus.topics():
                if "*" in topic or "?" in topic or not is_matching_py(topic, pattern):
                    continue
                msgbus.subscribe(topic, handler, priority=100)
                self._subscriptions.append((topic, handler))
        msgbus.subscribe(RISK_TARGETS_TOPIC, self._on_targets)
        msgbus.subscribe(KILL_SWITCH_TOPIC, self._on_kill_switch)
        self._installed = True
        self._log.info(f"Portfolio risk gate installed: {self.limits.describe()}")

    def install(self, kernel: Any) -> None:
        """Install into a built ``NautilusKernel`` (BacktestNode's or TradingNode's)."""
        trader = kernel.trader

        def lookup(strategy_id: StrategyId) -> Strategy | None:
            for strategy in trader.strategies():
                if strategy.id == strategy_id:
                    return strategy
            return None

        self.attach(
            msgbus=kernel.msgbus,
            cache=kernel.cache,
            clock=kernel.clock,
            risk_engine_execute=kernel.risk_engine.execute,
            emulator_execute=kernel.emulator.execute if kernel.emulator is not None else None,
            risk_engine=kernel.risk_engine,
            strategy_lookup=lookup,
            exec_engine_execute=kernel.exec_engine.execute,
        )

    def uninstall(self) -> None:
        """Give the endpoints back to Nautilus and stop listening."""
        if not self._installed:
            return
        msgbus = self._msgbus
        msgbus.deregister(RISK_ENDPOINT, self._execute_risk)
        msgbus.register(RISK_ENDPOINT, self._forward_risk)
        if self._forward_emulator is not None:
            msgbus.deregister(EMULATOR_ENDPOINT, self._execute_emulator)
            msgbus.register(EMULATOR_ENDPOINT, self._forward_emulator)
        if self._forward_exec is not None:
            msgbus.deregister(EXEC_ENDPOINT, self._execute_exec)
            msgbus.register(EXEC_ENDPOINT, self._forward_exec)
            self._forward_exec = None
        for topic, handler in (
            *self._subscriptions,
            (RISK_TARGETS_TOPIC, self._on_targets),
            (KILL_SWITCH_TOPIC, self._on_kill_switch),
        ):
            msgbus.unsubscribe(topic, handler)
        self._installed = False

    # -- endpoints ---------------------------------------------------------------------------

    def _execute_risk(self, command: Any) -> None:
        self._execute(command, self._forward_risk)

    def _execute_emulator(self, command: Any) -> None:
        assert self._forward_emulator is not None
        self._execute(command, self._forward_emulator)

    def _execute_exec(self, command: Any) -> None:
        revoked = self._revoked
        if revoked and isinstance(command, SubmitOrder | SubmitOrderList):
            if isinstance(command, SubmitOrder):
                ids = [command.order.client_order_id]
            else:
                ids = [o.client_order_id for o in command.order_list.orders]
            if any(i in revoked for i in ids):
                revoked.difference_update(ids)
                self._log.warning(
                    f"Dropped the submission of {', '.join(map(str, ids))}: revoked by the kill "
                    "switch after approval",
                )
                return
        assert self._forward_exec is not None
        self._forward_exec(command)

    def _execute(self, command: Any, forward: Callable[[Any], None]) -> None:
        started = time.perf_counter_ns()
        self._dispatch_ns = 0
        try:
            if isinstance(command, SubmitOrder):
                passed = self._submit_order(command)
            elif isinstance(command, SubmitOrderList):
                passed = self._submit_order_list(command)
            elif isinstance(command, ModifyOrder):
                command, passed = self._modify_order(command)
            else:
                passed = True
        except Exception as e:
            # Fail closed: a gate that cannot evaluate an order must not let it through.
            self._log.exception(f"Risk gate failed on {command}; denying", e)
            self.counts["deny"] += 1
            self.denials["gate_error"] += 1
            self._deny_command(command, f"gate_error: {e!r}")
            passed = False
        # The gate's own cost: what the strategies' handlers do with an OrderUpdated/OrderDenied
        # (dispatched synchronously) is measured apart.
        cost = time.perf_counter_ns() - started - self._dispatch_ns
        self.gate_ns.append(cost)
        self.commands += 1
        self.gate_ns_total += cost
        if self._dispatch_ns:
            self.dispatch_ns.append(self._dispatch_ns)
            self.dispatched += 1
            self.dispatch_ns_total += self._dispatch_ns
        if passed:
            forward(command)

    # -- market data -------------------------------------------------------------------------

    def _on_bar(self, bar: Bar) -> None:
        if bar is self._last_message:
            return
        self._last_message = bar
        self._market_ns = max(self._market_ns, bar.ts_event)
        self.view.prices[bar.bar_type.instrument_id] = bar.close.as_double()
        if self._monitor_equity and bar.ts_event > self._last_monitor_ns:
            self._monitor(bar.ts_event)

    def _on_quote(self, quote: QuoteTick) -> None:
        if quote is self._last_message:
            return
        self._last_message = quote
        self._market_ns = max(self._market_ns, quote.ts_event)
        mid = (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2.0
        self.view.prices[quote.instrument_id] = mid
        if self._monitor_equity and quote.ts_event >= (
            self._last_monitor_ns + _MONITOR_TICK_INTERVAL_NS
        ):
            self._monitor(quote.ts_event)

    def _on_trade(self, trade: TradeTick) -> None:
        if trade is self._last_message:
            return
        self._last_message = trade
        self._market_ns = max(self._market_ns, trade.ts_event)
        self.view.prices[trade.instrument_id] = trade.price.as_double()
        if self._monitor_equity and trade.ts_event >= (
            self._last_monitor_ns + _MONITOR_TICK_INTERVAL_NS
        ):
            self._monitor(trade.ts_event)

    def market_time_ns(self) -> int:
        """The newest market-data timestamp seen (the node's clock before any data).

        The kill switch's trading day follows this, not the clock: a paper node replaying
        history runs on the wall clock, and its days must roll with the data, as in the
        backtest. Live, the two differ by the feed's latency.
        """
        return self._market_ns if self._market_ns >= 0 else self._clock.timestamp_ns()

    def _monitor(self, ts_ns: int) -> None:
        self._last_monitor_ns = ts_ns
        try:
            equity = self.view.equity()
        except Exception as e:
            self._log.exception("Risk gate could not value the portfolio", e)
            return
        events = self.kill_switch.observe(equity, ts_ns)
        if events:
            self._after_kill_switch(events)

    # -- HRP targets -------------------------------------------------------------------------

    def _on_targets(self, targets: RiskTargets) -> None:
        instrument_ids = [InstrumentId.from_str(i) for i in targets.instrument_ids]
        self.targets = dict(zip(instrument_ids, targets.weights, strict=True))
        self.targets_version = targets.model_version
        self.targets_updates += 1
        cvar = self.config.limits.cvar
        if cvar is not None:
            self.scenarios = Scenarios(instrument_ids, targets.returns, cvar)

    # -- kill switch -------------------------------------------------------------------------

    def _on_kill_switch(self, message: Any) -> None:
        if not isinstance(message, Mapping) or message.get("action") not in {"halt", "reset"}:
            self._log.error(
                f"Ignored kill-switch message {message!r}: expected a mapping with action "
                "'halt' or 'reset'",
            )
            return
        source = str(message.get("source", "operator"))
        if source == self.component_id:
            return  # our own announcement
        reason = str(message.get("reason", "")) or "operator request"
        now = self.market_time_ns()
        equity = self._safe_equity()
        if message["action"] == "halt":
            event = self.kill_switch.external_halt(now, reason, source, equity)
        else:
            event = self.kill_switch.reset(now, reason, source, equity)
        self._after_kill_switch([event], announce=False)

    def _safe_equity(self) -> float | None:
        try:
            return self.view.equity()
        except Exception as e:
            self._log.exception("Risk gate could not value the portfolio", e)
            return None

    def _after_kill_switch(self, events: list[KillSwitchEvent], announce: bool = True) -> None:
        for event in events:
            if event.action == "halt":
                self._log.warning(
                    f"KILL SWITCH HALT ({event.reason_code}, from {event.source}): "
                    f"{event.reason}. Only risk-reducing orders pass until reset.",
                )
                if announce:
                    self._msgbus.publish(
                        KILL_SWITCH_TOPIC,
                        {
                            "action": "halt",
                            "reason": f"{event.reason_code}: {event.reason}",
                            "source": self.component_id,
                        },
                    )
                if self.config.kill_switch.cancel_open_orders:
                    self._cancel_opening_orders()
            else:
                self._log.warning(
                    f"Kill switch reset ({event.reason_code}, from {event.source}): {event.reason}",
                )
                if announce:
                    self._msgbus.publish(
                        KILL_SWITCH_TOPIC,
                        {"action": "reset", "reason": event.reason, "source": self.component_id},
                    )
        self._mirror_trading_state()

    def _mirror_trading_state(self) -> None:
        engine = self._risk_engine
        if engine is None or not self.config.kill_switch.mirror_trading_state:
            return
        # Never override HALTED set by someone else; only move between ACTIVE and REDUCING.
        state = engine.trading_state
        if self.kill_switch.halted and state == TradingState.ACTIVE:
            engine.set_trading_state(TradingState.REDUCING)
        elif not self.kill_switch.halted and state == TradingState.REDUCING:
            engine.set_trading_state(TradingState.ACTIVE)

    def _cancel_opening_orders(self) -> None:
        """Cancel orders that would add exposure (entries; exits stay): open, in flight and
        emulated ones through their strategies; approved ones a (live) engine has not
        submitted yet are denied and their submission dropped."""
        cache = self._cache
        # Pending approvals not yet submitted: the snapshot prunes the ones that have been.
        snapshot = self.view.snapshot(frozenset(), self._pending)

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
            reason = f"kill switch halted ({self.kill_switch.describe()})"
            for order in revoked:
                self._log.warning(
                    f"Kill switch: revoking approved order {order.client_order_id} (not yet "
                    "submitted)",
                )
                self._pending.pop(order.client_order_id, None)
                if self._forward_exec is not None:
                    self._revoked.add(order.client_order_id)
            self._deny_orders(revoked, reason)
        if self._strategy_lookup is None:
            return
        seen: set[ClientOrderId] = set()
        orders = cache.orders_open() + cache.orders_inflight() + cache.orders_emulated()
        for order in orders:
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

    # -- evaluation --------------------------------------------------------------------------

    def _snapshot(self, exclude: frozenset[ClientOrderId] | set[ClientOrderId]) -> Snapshot:
        snapshot = self.view.snapshot(exclude, self._pending)
        if self._monitor_equity:
            events = self.kill_switch.observe(snapshot.equity, self.market_time_ns())
            if events:
                self._after_kill_switch(events)
        return snapshot

    def evaluate(
        self,
        order: Order,
        snapshot: Snapshot,
        stop_price: float | None,
        quantity: float | None = None,
    ) -> Verdict:
        """The verdict for ``order`` (or for adding ``quantity`` units to it) on ``snapshot``."""
        requested = order.quantity.as_double() if quantity is None else quantity
        info = self.view.info(order.instrument_id)
        if info is None:
            # Nautilus' own engine denies orders for unknown instruments, with its reason.
            return Verdict("approve", "unknown_instrument", "", requested, requested, [])
        if info.is_inverse:
            return Verdict(
                "deny",
                "unsupported",
                f"inverse instrument {order.instrument_id}: the gate values linear instruments",
                requested,
                0.0,
                [],
            )
        exposure = self.view.exposure(snapshot, order.instrument_id)
        side = 1 if order.side == OrderSide.BUY else -1
        units = order_leaves_units(order, self.view) if quantity is None else quantity
        per_unit = units / requested if requested > 0.0 else 1.0  # quote-quantity orders
        closing = snapshot.reducible(order.instrument_id, order.strategy_id, side)
        if order.is_reduce_only or units <= closing + 1e-12 * max(units, 1.0):
            return Verdict("approve", "reducing", "risk-reducing", requested, requested, [])
        if self.kill_switch.halted:
            allowed = closing
            reason = f"kill switch halted ({self.kill_switch.describe()})"
            return self._sized("kill_switch", reason, info, requested, allowed / per_unit, [])
        unit_value = exposure.unit_value
        if math.isnan(unit_value) or unit_value <= 0.0:
            price = order_price(order)
            unit_value = price * info.multiplier * self.view.fx(info)
            if math.isnan(unit_value) or unit_value <= 0.0:
                return Verdict(
                    "deny",
                    "no_price",
                    f"no price for {order.instrument_id} to value the order",
                    requested,
                    0.0,
                    [],
                )
            exposure.unit_value = unit_value
        fx = self.view.fx(info)
        entry_price = self._entry_price(order, info, unit_value)
        entry_value = entry_price * info.multiplier * fx
        stop_distance = None
        if stop_price is not None and not math.isnan(stop_price):
            stop_distance = abs(entry_price - stop_price) * info.multiplier * fx
        intent = OrderIntent(
            instrument_id=order.instrument_id,
            side=side,
            quantity=units,
            unit_value=unit_value,
            entry_value=entry_value,
            stop_distance=stop_distance,
            fee_rate=info.taker_fee + self._slippage,
            size_increment=info.size_increment,
            closing=closing,
        )
        results = self.limits.check(
            snapshot,
            exposure,
            intent,
            self.targets.get(order.instrument_id),
            self.scenarios,
        )
        binding: LimitResult | None = None
        fit = units
        for result in results:
            if result.max_quantity < fit:
                fit = max(result.max_quantity, 0.0)
                binding = result
        if binding is None:
            return Verdict("approve", "", "", requested, requested, results)
        reason = self._reason(binding, snapshot.equity, units, fit)
        return self._sized(binding.name, reason, info, requested, fit / per_unit, results)

    def _sized(
        self,
        code: str,
        reason: str,
        info: InstrumentInfo,
        requested: float,
        allowed: float,
        results: list[LimitResult],
    ) -> Verdict:
        """Resize to ``allowed`` (rounded down) or deny when nothing tradable fits."""
        approved = info.floor_quantity(allowed)
        minimum = max(info.min_quantity, info.size_increment)
        if approved >= requested - 1e-9 * requested:
            return Verdict("approve", "", "", requested, requested, results)
        if not self.config.allow_resize or approved < minimum - 1e-12:
            return Verdict("deny", code, reason, requested, 0.0, results)
        return Verdict("resize", code, reason, requested, approved, results)

    def _entry_price(self, order: Order, info: InstrumentInfo, unit_value: float) -> float:
        """The order's own price (limit/trigger), else the mark implied by ``unit_value``."""
        price = order_price(order)
        if math.isnan(price) or price <= 0.0:
            return unit_value / (info.multiplier * self.view.fx(info))
        return price

    @staticmethod
    def _reason(binding: LimitResult, equity: float, requested: float, fit: float) -> str:
        name = binding.name
        if name == "order_notional":
            return (
                f"order_notional: {binding.value:,.2f} exceeds max order notional "
                f"{binding.cap:,.2f} (fits {fit:g} of {requested:g})"
            )
        if name == "trade_risk:no_stop":
            return "trade_risk: the order has no stop and missing_stop is 'deny'"
        if name == "equity":
            return f"equity: non-positive equity {equity:,.2f}"
        return (
            f"{name}: limit {binding.cap:.4g} of equity {equity:,.2f}, "
            f"before the order {binding.value:.4g} (fits {fit:g} of {requested:g})"
        )

    # -- commands ----------------------------------------------------------------------------

    def _submit_order(self, command: SubmitOrder) -> bool:
        order = command.order
        snapshot = self._snapshot({order.client_order_id})
        stop = self._stop_of(order, [])
        verdict = self.evaluate(order, snapshot, stop)
        self._conclude(command.strategy_id, [order], order, verdict, snapshot)
        return verdict.verdict != "deny"

    def _submit_order_list(self, command: SubmitOrderList) -> bool:
        orders = list(command.order_list.orders)
        ids = {o.client_order_id for o in orders}
        snapshot = self._snapshot(ids)
        entries = [o for o in orders if o.parent_order_id is None or o.parent_order_id not in ids]
        verdicts: list[tuple[Order, Verdict, list[Order]]] = []
        for entry in entries:
            children = [
                o
                for o in orders
                if o.parent_order_id is not None and o.parent_order_id == entry.client_order_id
            ]
            verdict = self.evaluate(entry, snapshot, self._stop_of(entry, children))
            verdicts.append((entry, verdict, children))
            if verdict.verdict == "deny":
                break
            # Later legs of the list see this one as pending: in the bounds (if it adds
            # exposure) and in the strategy's pending orders, so that two closing legs cannot
            # both count the same position as closable.
            if verdict.approved > 0.0:
                units = verdict.approved * (
                    order_leaves_units(entry, self.view) / entry.quantity.as_double()
                )
                buy = entry.side == OrderSide.BUY
                key = (entry.instrument_id, entry.strategy_id)
                sums = snapshot.pending_by_strategy.get(key)
                if sums is None:
                    sums = snapshot.pending_by_strategy[key] = [0.0, 0.0]
                sums[0 if buy else 1] += units
                if counts_as_opening(entry, self._cache):
                    exposure = self.view.exposure(snapshot, entry.instrument_id)
                    if buy:
                        snapshot.add_pending(exposure, units, 0.0)
                    else:
                        snapshot.add_pending(exposure, 0.0, units)
        denied = next((v for v in verdicts if v[1].verdict == "deny"), None)
        if denied is not None:
            entry, verdict, _ = denied
            self._count(verdict)
            self._record(command.strategy_id, entry, verdict, snapshot, orders)
            self._deny_orders(orders, verdict.reason)
            return False
        for entry, verdict, children in verdicts:
            self._conclude(command.strategy_id, [entry, *children], entry, verdict, snapshot)
        return True

    def _modify_order(self, command: ModifyOrder) -> tuple[ModifyOrder, bool]:
        order = self._cache.order(command.client_order_id)
        if order is None or command.quantity is None or order.is_reduce_only:
            return command, True
        increase = command.quantity.as_double() - order.quantity.as_double()
        if increase <= 0.0:
            return command, True
        snapshot = self._snapshot(frozenset())
        stop = self._stop_of(order, self._children_of(order))
        verdict = self.evaluate(order, snapshot, stop, quantity=increase)
        self._count(verdict)
        self._record(command.strategy_id, order, verdict, snapshot)
        if verdict.verdict == "approve":
            return command, True
        if verdict.verdict == "resize":
            quantity = Quantity(
                order.quantity.as_double() + verdict.approved,
                order.quantity.precision,
            )
            resized = ModifyOrder(
                trader_id=command.trader_id,
                strategy_id=command.strategy_id,
                instrument_id=command.instrument_id,
                client_order_id=command.client_order_id,
                venue_order_id=command.venue_order_id,
                quantity=quantity,
                price=command.price,
                trigger_price=command.trigger_price,
                command_id=UUID4(),
                ts_init=self._clock.timestamp_ns(),
                client_id=command.client_id,
                params=command.params,
            )
            return resized, True
        self._reject_modify(order, verdict.reason)
        return command, False

    def _reject_modify(self, order: Order, reason: str) -> None:
        """``OrderModifyRejected`` for ``order`` (back from PENDING_UPDATE; the strategy gets
        ``on_order_modify_rejected``)."""
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
        self._msgbus.send("ExecEngine.process", rejected)
        self._dispatch_ns += time.perf_counter_ns() - started

    def _children_of(self, order: Order) -> list[Order]:
        """The contingent children (stop-loss/take-profit) of a bracket entry, from the cache."""
        children: list[Order] = []
        for linked_id in order.linked_order_ids or ():
            child = self._cache.order(linked_id)
            if child is not None and child.parent_order_id == order.client_order_id:
                children.append(child)
        return children

    def _stop_of(self, order: Order, children: list[Order]) -> float | None:
        """The stop price that bounds this order's loss: its bracket's stop-loss child, else the
        ``stop_loss=<price>`` tag (:func:`risk_engine.tags.stop_loss_tag`)."""
        for child in children:
            if child.order_type in _STOP_TYPES and child.side != order.side:
                trigger = getattr(child, "trigger_price", None)
                if trigger is not None:
                    return trigger.as_double()
        tagged = stop_price_from_tags(order.tags)
        if tagged is not None:
            return tagged
        return None

    def _conclude(
        self,
        strategy_id: StrategyId,
        orders: list[Order],
        order: Order,
        verdict: Verdict,
        snapshot: Snapshot,
    ) -> None:
        self._count(verdict)
        self._record(strategy_id, order, verdict, snapshot, orders)
        if verdict.verdict == "deny":
            self._deny_orders(orders, verdict.reason)
            return
        if verdict.verdict == "resize":
            self._resize(orders, order, verdict.approved)
        for each in orders:
            self._pending[each.client_order_id] = each

    def _count(self, verdict: Verdict) -> None:
        self.counts[verdict.verdict] += 1
        if verdict.verdict == "deny":
            self.denials[verdict.code] += 1
        elif verdict.verdict == "resize":
            self.resizes[verdict.code] += 1
        elif verdict.code == "reducing":
            self.counts["approve_reducing"] += 1

    def _resize(self, orders: list[Order], entry: Order, approved: float) -> None:
        """Apply ``OrderUpdated`` to the INITIALIZED orders (children first), then tell the
        strategy. Applied directly: a live ExecEngine would queue the event and the command
        would leave with the old quantity."""
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
        self._dispatch_ns += time.perf_counter_ns() - started

    def _deny_orders(self, orders: list[Order], reason: str) -> None:
        started = time.perf_counter_ns()
        now = self._clock.timestamp_ns()
        for order in orders:
            if order.status not in (OrderStatus.INITIALIZED, OrderStatus.RELEASED):
                continue
            if not self._cache.order_exists(order.client_order_id):
                self._cache.add_order(order)
            denied = OrderDenied(
                trader_id=order.trader_id,
                strategy_id=order.strategy_id,
                instrument_id=order.instrument_id,
                client_order_id=order.client_order_id,
                reason=reason,
                event_id=UUID4(),
                ts_init=now,
            )
            self._msgbus.send("ExecEngine.process", denied)
        self._dispatch_ns += time.perf_counter_ns() - started

    def _deny_command(self, command: Any, reason: str) -> None:
        if isinstance(command, SubmitOrder):
            self._deny_orders([command.order], reason)
        elif isinstance(command, SubmitOrderList):
            self._deny_orders(list(command.order_list.orders), reason)
        elif isinstance(command, ModifyOrder):
            order = self._cache.order(command.client_order_id)
            if order is not None:
                self._reject_modify(order, reason)

    # -- forensics ---------------------------------------------------------------------------

    def _record(
        self,
        strategy_id: StrategyId,
        order: Order,
        verdict: Verdict,
        snapshot: Snapshot,
        orders: list[Order] | None = None,
    ) -> None:
        now = self._clock.timestamp_ns()
        trace_id = trace_id_from_tags(order.tags) or ""
        high, low = snapshot.net_high, snapshot.net_low
        equity = snapshot.equity
        gross = snapshot.gross
        net = snapshot.net_position()
        target = self.targets.get(order.instrument_id)
        limits: dict[str, Any] = {
            "binding": verdict.code or None,
            "halted": self.kill_switch.halted,
            "hrp_target": target,
            "net_bounds": [high, low],
        }
        for result in verdict.results:
            limits[result.name] = {
                "cap": result.cap,
                "before": None if math.isnan(result.value) else result.value,
                "max_quantity": None if result.max_quantity == INF else result.max_quantity,
            }
        requested = f"{verdict.requested:g}"
        approved = f"{verdict.approved:g}"
        strategy = id_str(strategy_id)
        instrument = id_str(order.instrument_id)
        client_order_id = str(order.client_order_id)
        record = RiskVerdictRecord.model_construct(
            schema_version=_SCHEMA_VERSION,
            trace_id=trace_id,
            ts_event=now,
            ts_init=now,
            component_id=self.component_id,
            model_versions={"hrp": self.targets_version} if self.targets_version else {},
            strategy_id=strategy,
            instrument_id=instrument,
            client_order_id=client_order_id,
            verdict=verdict.verdict,
            reason=verdict.reason,
            requested_quantity=requested,
            approved_quantity=approved,
            equity=equity,
            gross_exposure=gross,
            net_exposure=net,
            weights=snapshot.weights(),
            limits=limits,
        )
        self._msgbus.publish(Topics.RISK, record)
        row = (
            now,
            strategy,
            instrument,
            client_order_id,
            verdict.verdict,
            verdict.code,
            verdict.reason,
            verdict.requested,
            verdict.approved,
            equity,
            gross,
            net,
            math.nan if target is None else target,
            trace_id,
            "|".join(str(o.client_order_id) for o in orders) if orders else "",
        )
        self.verdict_log.append(row)
        if self._verdict_sink is not None:
            self._unflushed.append(row)
            if len(self._unflushed) >= VERDICT_FLUSH_ROWS:
                self.flush_verdicts()

    # -- results -----------------------------------------------------------------------------

    VERDICT_COLUMNS = (
        "ts",
        "strategy_id",
        "instrument_id",
        "client_order_id",
        "verdict",
        "code",
        "reason",
        "requested",
        "approved",
        "equity",
        "gross_exposure",
        "net_exposure",
        "hrp_target",
        "trace_id",
        "order_ids",
    )

    def stream_verdicts(self, sink: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Hand every verdict row (:attr:`VERDICT_COLUMNS`) to ``sink``, in chunks of
        :data:`VERDICT_FLUSH_ROWS` and at :meth:`flush_verdicts`; memory keeps only the latest
        :data:`MAX_KEPT` rows."""
        self._verdict_sink = sink

    def flush_verdicts(self) -> None:
        """Hand the buffered verdict rows to the sink."""
        if self._verdict_sink is not None and self._unflushed:
            rows, self._unflushed = self._unflushed, []
            try:
                self._verdict_sink(rows)
            except Exception as e:
                # The verdicts' file must not stop the gate: the forensics topic has them all.
                self._log.exception(f"Risk gate could not write {len(rows)} verdict rows", e)

    def summary(self) -> dict[str, Any]:
        """Verdict counts, denials/resizes by reason, kill-switch history and gate cost.

        Counts and means are running totals; the percentiles are over the latest
        :data:`MAX_TIMINGS` commands."""
        costs = sorted(self.gate_ns)
        n = len(costs)
        commands = self.commands
        dispatched = self.dispatched

        def pct(p: float) -> float | None:
            return costs[min(n - 1, int(p * n))] / 1000.0 if n else None

        return {
            "verdicts": {
                "approve": self.counts.get("approve", 0),
                "resize": self.counts.get("resize", 0),
                "deny": self.counts.get("deny", 0),
                "approve_reducing": self.counts.get("approve_reducing", 0),
            },
            "denials_by_reason": dict(sorted(self.denials.items())),
            "resizes_by_reason": dict(sorted(self.resizes.items())),
            "kill_switch": {
                "halted": self.kill_switch.halted,
                "reasons": dict(self.kill_switch.reasons),
                "events": [
                    {
                        "ts": e.ts_ns,
                        "action": e.action,
                        "code": e.reason_code,
                        "reason": e.reason,
                        "source": e.source,
                        "equity": None if math.isnan(e.equity) else e.equity,
                    }
                    for e in self.kill_switch.events
                ],
            },
            "hrp": {"updates": self.targets_updates, "model_version": self.targets_version},
            "gate_us": {
                "commands": commands,
                "mean": (self.gate_ns_total / commands / 1000.0) if commands else None,
                "p50": pct(0.5),
                "p99": pct(0.99),
                "events_dispatched": dispatched,
                "events_mean": (
                    (self.dispatch_ns_total / dispatched / 1000.0) if dispatched else None
                ),
            },
            "limits": self.limits.describe(),
        }
