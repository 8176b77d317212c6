"""The portfolio risk gate: every order of every strategy passes it before Nautilus' own checks.

Installed by replacing the handlers at the message-bus endpoints ``RiskEngine.execute`` (where
strategies, execution algorithms and the order manager send ``SubmitOrder``,
``SubmitOrderList`` and ``ModifyOrder``) and ``OrderEmulator.execute`` (emulated orders, which
Nautilus sends past its risk engine). Both kernels, BacktestNode's and TradingNode's, register
these endpoints the same way, so the gate runs unchanged in both.

This class only coordinates; each concern is its own module:

- :mod:`risk_engine.evaluation` — the verdict, a pure function of snapshot, limits and order;
- :mod:`risk_engine.portfolio_state` — the snapshot, read from the cache;
- :mod:`risk_engine.order_events` — denials, resizes and rejected modifies sent to Nautilus;
- :mod:`risk_engine.verdict_recorder` — records on the bus, ``risk_verdicts.csv`` rows, counts;
- :mod:`risk_engine.kill_switch` — the kernel's one kill switch (it owns ``ExecEngine.execute``);
  :mod:`risk_engine.loss_halts` trips it, :mod:`risk_engine.halt_response` reacts to it;
- :mod:`risk_engine.price_feed` — prices from the bus, before the strategies see them.

Verdicts
--------
``approve``
    The command goes on to Nautilus' own RiskEngine (or the emulator) unchanged.
``resize``
    The order is reduced to the largest quantity that fits every limit (rounded down to the size
    increment), then the command goes on. Bracket children follow their entry.
``deny``
    The strategy gets ``on_order_denied`` with the reason. An order list is denied as a whole. A
    modify that asks for more than fits gets ``OrderModifyRejected`` (or is reduced to what fits).

Risk-reducing orders — reduce-only orders, and orders that only shrink the instrument's net
position even if every other pending order on that side fills — always pass, also while the kill
switch is halted (a gate must never trap a position). An order that flips a position is
exposure-increasing; under a halt it is cut to its reducing part.
"""

import json
import math
import time
from collections.abc import Callable
from typing import Any

import msgspec
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import Clock
from nautilus_trader.common.component import Logger
from nautilus_trader.common.component import MessageBus
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import ModifyOrder
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from grodt.core.errors import GrodtError
from grodt.core.topics import RISK_TARGETS_TOPIC
from risk_engine.config import RiskConfig
from risk_engine.evaluation import OrderRequest
from risk_engine.evaluation import RiskLimits
from risk_engine.evaluation import Verdict
from risk_engine.evaluation import evaluate
from risk_engine.gate_cost import GateCost
from risk_engine.halt_response import HaltResponse
from risk_engine.kill_switch import KillSwitch
from risk_engine.limits import LimitSet
from risk_engine.limits import Scenarios
from risk_engine.loss_halts import LossTriggers
from risk_engine.messages import RiskTargets
from risk_engine.order_events import OrderEvents
from risk_engine.portfolio_state import PortfolioView
from risk_engine.portfolio_state import Snapshot
from risk_engine.portfolio_state import counts_as_opening
from risk_engine.portfolio_state import order_leaves_units
from risk_engine.portfolio_state import order_price
from risk_engine.price_feed import PriceFeed
from risk_engine.tags import stop_price_from_tags
from risk_engine.verdict_recorder import VerdictRecorder

__all__ = ["EMULATOR_ENDPOINT", "LOSS_MARKS_KEY", "RISK_ENDPOINT", "PortfolioRiskGate"]

RISK_ENDPOINT = "RiskEngine.execute"
EMULATOR_ENDPOINT = "OrderEmulator.execute"
LOSS_MARKS_KEY = "grodt.risk_gate.loss_marks"
"""Cache key of the loss triggers' marks (persisted when the node has a cache database)."""
_STOP_TYPES = frozenset(
    {
        OrderType.STOP_MARKET,
        OrderType.STOP_LIMIT,
        OrderType.TRAILING_STOP_MARKET,
        OrderType.TRAILING_STOP_LIMIT,
    },
)


_MARKS_ENCODER = msgspec.json.Encoder()


def _encode_marks(state: dict[str, float | int | None]) -> bytes:
    """The loss marks as JSON bytes (read back with ``json.loads``). Encoded on every new bar
    timestamp on the engine thread: msgspec (~1 µs) rather than ``json.dumps`` (~12 µs); a
    non-finite value, which msgspec would write as null, goes through ``json.dumps`` so that it
    reads back as itself."""
    if all(v is None or isinstance(v, int) or math.isfinite(v) for v in state.values()):
        return _MARKS_ENCODER.encode(state)
    return json.dumps(state).encode()


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
        self.limits = RiskLimits(
            checks=LimitSet(
                config.limits,
                config.hrp.tolerance if config.hrp is not None else None,
            ),
            allow_resize=config.allow_resize,
            slippage=config.limits.slippage_allowance,
        )
        self.triggers = LossTriggers(
            config.kill_switch,
            config.limits.daily_loss,
            config.limits.max_drawdown,
        )
        self.targets: dict[InstrumentId, float] = {}
        self.targets_version = ""
        self.targets_updates = 0
        self.cost = GateCost()
        self._saved_marks = b""
        self._pending: dict[ClientOrderId, Order] = {}
        self._installed = False

    # -- installation ------------------------------------------------------------------------

    def attach(
        self,
        msgbus: MessageBus,
        cache: Cache,
        clock: Clock,
        risk_engine_execute: Callable[[Any], None],
        kill_switch: KillSwitch,
        emulator_execute: Callable[[Any], None] | None = None,
        strategy_lookup: Callable[[StrategyId], Strategy | None] | None = None,
    ) -> None:
        """Hook into a built kernel's parts (``install`` does this from a ``NautilusKernel``).

        ``risk_engine_execute`` / ``emulator_execute`` are the handlers currently registered at
        the endpoints; the gate forwards approved commands to them. ``kill_switch`` is the
        kernel's switch, joined for this gate (:meth:`uninstall` leaves it).
        """
        if self._installed:
            raise RuntimeError("the risk gate is already installed")
        self._msgbus = msgbus
        self._cache = cache
        self._clock = clock
        self._log = Logger(self.component_id)
        self.view = PortfolioView(cache, self._log)
        self.events = OrderEvents(msgbus, cache, clock)
        self.recorder = VerdictRecorder(self.component_id, msgbus, clock, self._log)
        self.kill_switch = kill_switch
        self.feed = PriceFeed(self.view, self._monitor if self.triggers.enabled else None)
        self.halt_response = HaltResponse(
            self.config.kill_switch,
            kill_switch,
            self.triggers,
            self.view,
            self._pending,
            self.events,
            self.market_time_ns,
            strategy_lookup,
            self._log,
        )
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
        # A node restarted from its cache database continues the crashed node's loss marks.
        saved_marks = cache.get(LOSS_MARKS_KEY)
        if saved_marks is not None:
            self.triggers.restore(json.loads(bytes(saved_marks).decode()))
            self._saved_marks = bytes(saved_marks)
            self._log.info(f"Loss marks restored: {self.triggers.state()}")
        kill_switch.listen(self.halt_response)
        self.feed.subscribe(msgbus)
        msgbus.subscribe(RISK_TARGETS_TOPIC, self._on_targets)
        self._installed = True
        self._log.info(f"Portfolio risk gate installed: {self.limits.checks.describe()}")

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
            kill_switch=KillSwitch.join(
                kernel,
                mirror_trading_state=self.config.kill_switch.mirror_trading_state,
            ),
            emulator_execute=kernel.emulator.execute if kernel.emulator is not None else None,
            strategy_lookup=lookup,
        )

    def uninstall(self) -> None:
        """Give the endpoints back to Nautilus, stop listening, leave the kill switch."""
        if not self._installed:
            return
        msgbus = self._msgbus
        msgbus.deregister(RISK_ENDPOINT, self._execute_risk)
        msgbus.register(RISK_ENDPOINT, self._forward_risk)
        if self._forward_emulator is not None:
            msgbus.deregister(EMULATOR_ENDPOINT, self._execute_emulator)
            msgbus.register(EMULATOR_ENDPOINT, self._forward_emulator)
        self.feed.unsubscribe()
        msgbus.unsubscribe(RISK_TARGETS_TOPIC, self._on_targets)
        self.kill_switch.leave(self.halt_response)
        self._installed = False

    # -- endpoints ---------------------------------------------------------------------------

    def _execute_risk(self, command: Any) -> None:
        self._execute(command, self._forward_risk)

    def _execute_emulator(self, command: Any) -> None:
        assert self._forward_emulator is not None
        self._execute(command, self._forward_emulator)

    def _execute(self, command: Any, forward: Callable[[Any], None]) -> None:
        started = time.perf_counter_ns()
        events = self.events
        events.dispatch_ns = 0
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
            self.recorder.count_error()
            events.deny_command(command, f"gate_error: {e!r}")
            passed = False
        # The gate's own cost: what the strategies' handlers do with an OrderUpdated/OrderDenied
        # (dispatched synchronously) is measured apart.
        dispatch_ns = events.dispatch_ns
        self.cost.add(time.perf_counter_ns() - started - dispatch_ns, dispatch_ns)
        if passed:
            forward(command)

    # -- market time and equity --------------------------------------------------------------

    def market_time_ns(self) -> int:
        """The newest market-data timestamp seen (the node's clock before any data).

        The loss triggers' trading day follows this, not the clock: a paper node replaying
        history runs on the wall clock, and its days must roll with the data, as in the
        backtest. Live, the two differ by the feed's latency.
        """
        market_ns = self.feed.market_time_ns()
        return market_ns if market_ns >= 0 else self._clock.timestamp_ns()

    def _monitor(self, ts_ns: int) -> None:
        try:
            equity = self.view.equity()
        except Exception as e:
            self._log.exception("Risk gate could not value the portfolio", e)
            return
        self._observe(equity, ts_ns)

    def _observe(self, equity: float, ts_ns: int) -> None:
        """Feed the loss triggers; their halts and re-arms go to the kill switch."""
        switch = self.kill_switch
        for trip in self.triggers.observe(equity, ts_ns, switch.reasons.keys()):
            if trip.action == "halt":
                switch.trip(trip.code, trip.reason, self.component_id, ts_ns, equity)
            else:
                switch.rearm(trip.code, trip.reason, self.component_id, ts_ns, equity)
        # Into the cache when they change: with a cache database they survive a crash.
        marks = _encode_marks(self.triggers.state())
        if marks != self._saved_marks:
            self._cache.add(LOSS_MARKS_KEY, marks)
            self._saved_marks = marks

    # -- HRP targets -------------------------------------------------------------------------

    def _on_targets(self, targets: RiskTargets) -> None:
        instrument_ids = [InstrumentId.from_str(i) for i in targets.instrument_ids]
        self.targets = dict(zip(instrument_ids, targets.weights, strict=True))
        self.limits.targets = self.targets
        self.targets_version = targets.model_version
        self.targets_updates += 1
        cvar = self.config.limits.cvar
        if cvar is not None:
            self.limits.scenarios = Scenarios(instrument_ids, targets.returns, cvar)

    # -- evaluation --------------------------------------------------------------------------

    def _snapshot(self, exclude: frozenset[ClientOrderId] | set[ClientOrderId]) -> Snapshot:
        snapshot = self.view.snapshot(exclude, self._pending)
        if self.triggers.enabled:
            self._observe(snapshot.equity, self.market_time_ns())
        switch = self.kill_switch
        self.limits.halt = switch.describe() if switch.halted else None
        return snapshot

    def _evaluate(
        self,
        order: Order,
        snapshot: Snapshot,
        stop_price: float | None,
        quantity: float | None = None,
    ) -> Verdict:
        """The verdict for ``order`` (or for adding ``quantity`` units to it) on ``snapshot``."""
        view = self.view
        info = view.info(order.instrument_id)
        if info is not None:
            view.exposure(snapshot, order.instrument_id)  # priced from the book if absent
        request = OrderRequest(
            instrument_id=order.instrument_id,
            strategy_id=order.strategy_id,
            side=1 if order.side == OrderSide.BUY else -1,
            requested=order.quantity.as_double() if quantity is None else quantity,
            units=order_leaves_units(order, view) if quantity is None else quantity,
            price=order_price(order),
            stop_price=stop_price,
            reduce_only=order.is_reduce_only,
            instrument=info,
            fx=view.fx(info) if info is not None else 1.0,
        )
        return evaluate(request, snapshot, self.limits)

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
        return stop_price_from_tags(order.tags)

    # -- commands ----------------------------------------------------------------------------

    def _submit_order(self, command: SubmitOrder) -> bool:
        order = command.order
        snapshot = self._snapshot({order.client_order_id})
        verdict = self._evaluate(order, snapshot, self._stop_of(order, []))
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
            verdict = self._evaluate(entry, snapshot, self._stop_of(entry, children))
            verdicts.append((entry, verdict, children))
            if verdict.verdict == "deny":
                break
            if verdict.approved > 0.0:
                self._count_as_pending(snapshot, entry, verdict.approved)
        denied = next((v for v in verdicts if v[1].verdict == "deny"), None)
        if denied is not None:
            entry, verdict, _ = denied
            self.recorder.count(verdict)
            self._record(command.strategy_id, entry, verdict, snapshot, orders)
            self.events.deny(orders, verdict.reason)
            return False
        for entry, verdict, children in verdicts:
            self._conclude(command.strategy_id, [entry, *children], entry, verdict, snapshot)
        return True

    def _count_as_pending(self, snapshot: Snapshot, entry: Order, approved: float) -> None:
        """Later legs of a list see this approved one as pending: in the bounds (if it adds
        exposure) and in the strategy's pending orders, so that two closing legs cannot both
        count the same position as closable. ``approved`` is in the entry's quantity unit."""
        units = approved * (order_leaves_units(entry, self.view) / entry.quantity.as_double())
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

    def _modify_order(self, command: ModifyOrder) -> tuple[ModifyOrder, bool]:
        order = self._cache.order(command.client_order_id)
        if order is None or command.quantity is None or order.is_reduce_only:
            return command, True
        increase = command.quantity.as_double() - order.quantity.as_double()
        if increase <= 0.0:
            return command, True
        snapshot = self._snapshot(frozenset())
        stop = self._stop_of(order, self._children_of(order))
        verdict = self._evaluate(order, snapshot, stop, quantity=increase)
        self.recorder.count(verdict)
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
        self.events.reject_modify(order, verdict.reason)
        return command, False

    def _conclude(
        self,
        strategy_id: StrategyId,
        orders: list[Order],
        order: Order,
        verdict: Verdict,
        snapshot: Snapshot,
    ) -> None:
        self.recorder.count(verdict)
        self._record(strategy_id, order, verdict, snapshot, orders)
        if verdict.verdict == "deny":
            self.events.deny(orders, verdict.reason)
            return
        if verdict.verdict == "resize":
            self.events.resize(orders, order, verdict.approved)
        for each in orders:
            self._pending[each.client_order_id] = each

    def _record(
        self,
        strategy_id: StrategyId,
        order: Order,
        verdict: Verdict,
        snapshot: Snapshot,
        orders: list[Order] | None = None,
    ) -> None:
        self.recorder.record(
            strategy_id,
            order,
            verdict,
            snapshot,
            orders,
            self.targets.get(order.instrument_id),
            self.targets_version,
            self.kill_switch.halted,
        )

    # -- results -----------------------------------------------------------------------------

    def stream_verdicts(self, sink: Callable[[list[tuple[Any, ...]]], None]) -> None:
        """Hand every verdict row to ``sink`` (see :meth:`VerdictRecorder.stream`)."""
        self.recorder.stream(sink)

    def flush_verdicts(self) -> None:
        """Hand the buffered verdict rows to the sink."""
        self.recorder.flush()

    def summary(self) -> dict[str, Any]:
        """Verdict counts, denials/resizes by reason, kill-switch history and gate cost."""
        switch = self.kill_switch
        return {
            **self.recorder.summary(),
            "kill_switch": {
                "halted": switch.halted,
                "reasons": switch.reasons,
                "events": [
                    {
                        "ts": e.ts_ns,
                        "action": e.action,
                        "code": e.code,
                        "reason": e.reason,
                        "source": e.source,
                        "equity": None if e.equity != e.equity else e.equity,  # NaN: none
                    }
                    for e in self.halt_response.history
                ],
                "loss_marks": self.triggers.state(),
            },
            "hrp": {"updates": self.targets_updates, "model_version": self.targets_version},
            "gate_us": self.cost.summary(),
            "limits": self.limits.checks.describe(),
        }
