"""The kill switch: one per kernel, it owns the ``ExecEngine.execute`` endpoint.

Sources halt and reset it; the switch keeps the halts and guards the step after every risk
check. Sources:

- any component, through :data:`grodt.core.topics.KILL_SWITCH_TOPIC`: a message
  ``{"action": "halt" | "reset", "reason": str, "source": str}`` (the live node's kill file and
  ``grodt live kill`` use source ``"operator"``, its flatten-on-stop ``"node"``);
- the risk gate's loss triggers (:mod:`risk_engine.loss_halts`), which :meth:`KillSwitch.trip`
  and :meth:`KillSwitch.rearm` under their own codes (``max_drawdown``, ``daily_loss``) and
  announce it on the topic (strategies listen there and stop entering).

Halts are kept per code: an external source's code is its name (``operator``) or
``source:<name>``. A reset from a source clears that source's halt; the operator's reset clears
every halt (listeners re-base their marks).

While any halt is active the switch guards ``ExecEngine.execute``: a submission passes only if it
reduces the submitting strategy's own position (reduce-only orders, or the opposite side for at
most the open quantity; a list is judged by its first order, a bracket's entry). Others get
``OrderDenied`` with the halts as reason. Cancels and modifications always pass, so flattening
works while halted. Submissions a listener revoked after approving them (:meth:`revoke`: a live
engine queues commands between the risk gate and the venue) are dropped there as well.

Nautilus' ``TradingState.REDUCING`` is instrument-net-wide (a BUY is denied while the instrument is
net long across all strategies): with S0 long 2000 and S1 short 100, S1's reduce-only BUY would
be denied. So the switch moves the risk engine between ``ACTIVE`` and ``REDUCING`` only when a
member asks for it (``mirror_trading_state``), and only undoes a ``REDUCING`` it set itself.

Whoever needs the switch joins it (:meth:`KillSwitch.join`): the first creates and installs it,
later ones find it through an endpoint on the same bus; the last to leave gives the endpoint
back.
"""

import datetime as dt
from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.enums import trading_state_to_str
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.orders import Order

from grodt.core.errors import GrodtError
from grodt.core.topics import KILL_SWITCH_TOPIC
from risk_engine.order_events import order_denied

__all__ = [
    "EXEC_ENDPOINT",
    "JOIN_ENDPOINT",
    "OPERATOR",
    "KillSwitch",
    "KillSwitchEvent",
    "source_code",
]

EXEC_ENDPOINT = "ExecEngine.execute"
JOIN_ENDPOINT = "grodt.KillSwitch.join"
"""Where an installed switch hands itself to a callable (how later members find it)."""
OPERATOR = "operator"
"""Source of the operator's kill file and command; its reset clears every halt."""
_NS = 1_000_000_000


def source_code(source: str) -> str:
    """The halt code of an external source (``operator`` stays ``operator``)."""
    return OPERATOR if source == OPERATOR else f"source:{source}"


@dataclass(frozen=True, slots=True)
class KillSwitchEvent:
    """A halt or reset as the switch applied it (listeners get each one).

    Attributes
    ----------
    action : str
        ``halt`` or ``reset``.
    code : str
        The halt's code (``max_drawdown``, ``operator``, ``source:node``; ``all`` for the
        operator's reset).
    reason : str
        Why, as the source gave it.
    source : str
        Who.
    ts_ns : int
        When the source observed it, UNIX ns (−1: a message from the bus, no time given).
    equity : float
        The equity the source observed (NaN: not given).
    """

    action: str
    code: str
    reason: str
    source: str
    ts_ns: int = -1
    equity: float = float("nan")


@dataclass(frozen=True, slots=True)
class _Halt:
    source: str
    reason: str


class KillSwitch:
    """Halt state of one kernel and the guard at its ``ExecEngine.execute``.

    Construct through :meth:`join`. Parameters are the kernel's parts.
    """

    def __init__(self, msgbus: Any, cache: Any, clock: Any, logger: Any, risk_engine: Any) -> None:
        self._msgbus = msgbus
        self._cache = cache
        self._clock = clock
        self._log = logger
        self._risk = risk_engine
        self._halts: dict[str, _Halt] = {}
        self.history: list[dict[str, Any]] = []
        self.denied = 0
        self.mirror_trading_state = False
        self.labels: dict[str, str] = {}
        """What sources want shown with the state (the kill file's path)."""
        self._listeners: list[Callable[[KillSwitchEvent], None]] = []
        self._revoked: set[ClientOrderId] = set()
        self._members = 0
        self._exec_execute: Callable[[Any], None] | None = None
        self._echo: dict[str, str] | None = None
        self._we_set_reducing = False

    # -- membership -----------------------------------------------------------------------------

    @classmethod
    def join(
        cls,
        kernel: Any,
        mirror_trading_state: bool = False,
    ) -> "KillSwitch":
        """The kernel's switch (installed by the first member); every member :meth:`leave` s.

        ``mirror_trading_state``: this member wants Nautilus' trading state to follow the halts.
        """
        msgbus = kernel.msgbus
        if JOIN_ENDPOINT in msgbus.endpoints():
            found: list[KillSwitch] = []
            msgbus.send(JOIN_ENDPOINT, found.append)
            switch = found[0]
        else:
            switch = cls(msgbus, kernel.cache, kernel.clock, kernel.logger, kernel.risk_engine)
            switch._install(kernel.exec_engine.execute)
        switch._members += 1
        switch.mirror_trading_state = switch.mirror_trading_state or mirror_trading_state
        return switch

    def listen(self, listener: Callable[[KillSwitchEvent], None]) -> None:
        """Call ``listener`` with every halt and reset this switch applies (after announcing it)."""
        self._listeners.append(listener)

    def leave(self, listener: Callable[[KillSwitchEvent], None] | None = None) -> None:
        """Give back one membership (and stop calling ``listener``); the last one gives the
        endpoint back and stops listening to the topic."""
        if listener is not None and listener in self._listeners:
            self._listeners.remove(listener)
        if self._members == 0:
            return
        self._members -= 1
        if self._members == 0:
            self._uninstall()

    def _install(self, exec_execute: Callable[[Any], None]) -> None:
        msgbus = self._msgbus
        try:
            msgbus.deregister(EXEC_ENDPOINT, exec_execute)
        except ValueError as e:
            raise GrodtError(
                f"cannot install the kill switch: the handler at {EXEC_ENDPOINT!r} is not the "
                f"execution engine's (another component replaced it?): {e}",
            ) from None
        msgbus.register(EXEC_ENDPOINT, self._guard_execute)
        self._exec_execute = exec_execute
        msgbus.register(JOIN_ENDPOINT, self._hand_over)
        msgbus.subscribe(KILL_SWITCH_TOPIC, self.on_message)

    def _uninstall(self) -> None:
        msgbus = self._msgbus
        msgbus.unsubscribe(KILL_SWITCH_TOPIC, self.on_message)
        msgbus.deregister(JOIN_ENDPOINT, self._hand_over)
        if self._exec_execute is not None:
            msgbus.deregister(EXEC_ENDPOINT, self._guard_execute)
            msgbus.register(EXEC_ENDPOINT, self._exec_execute)
            self._exec_execute = None

    def _hand_over(self, receive: Callable[["KillSwitch"], None]) -> None:
        receive(self)

    # -- state ----------------------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        return bool(self._halts)

    @property
    def reasons(self) -> dict[str, str]:
        """Active halts by code."""
        return {code: halt.reason for code, halt in self._halts.items()}

    @property
    def halts(self) -> dict[str, str]:
        """Active halts by source, each with the reason its source announced."""
        return {
            halt.source: halt.reason
            if code == source_code(halt.source)
            else f"{code}: {halt.reason}"
            for code, halt in self._halts.items()
        }

    def describe(self) -> str:
        """The active halts, ``code: reason; ...``."""
        return "; ".join(f"{code}: {halt.reason}" for code, halt in self._halts.items())

    def state(self) -> dict[str, Any]:
        """For the health line and the run summary."""
        return {
            "halted": self.halted,
            "halts": self.halts,
            "denied": self.denied,
            "trading_state": trading_state_to_str(self._risk.trading_state),
            "mirror_trading_state": self.mirror_trading_state,
            **self.labels,
        }

    def active(self) -> list[tuple[str, str, str]]:
        """The active halts as ``(code, source, reason)``, in the order they were applied."""
        return [(code, halt.source, halt.reason) for code, halt in self._halts.items()]

    def restore(self, halts: list[tuple[str, str, str]]) -> None:
        """Apply halts a crashed node had active (``active()`` of its last checkpoint) in a
        restarted node: no announcement and no listener call, since the responses to them
        (cancels) happened before the crash; logged and kept in the history as ``restore``."""
        for code, source, reason in halts:
            self._halts[code] = _Halt(source, reason)
            now = self._clock.timestamp_ns()
            self.history.append(
                {
                    "ts": dt.datetime.fromtimestamp(now / _NS, tz=dt.UTC).isoformat(
                        timespec="seconds"
                    ),
                    "action": "restore",
                    "source": source,
                    "reason": f"{code}: {reason}",
                },
            )
            self._log.warning(
                f"KILL SWITCH HALT restored ({code}, from {source}): {reason}. Only orders "
                "reducing the submitting strategy's position pass until reset.",
            )
        self._mirror()

    def announce_active(self) -> None:
        """Announce every active halt on the topic again, for components that subscribed after
        it was applied (a restarted node's strategies start after its halts are restored); the
        switch ignores these announcements itself."""
        for code, halt in list(self._halts.items()):
            reason = halt.reason if code == source_code(halt.source) else f"{code}: {halt.reason}"
            announce = {"action": "halt", "reason": reason, "source": halt.source}
            self._echo = announce
            try:
                self._msgbus.publish(KILL_SWITCH_TOPIC, announce)
            finally:
                self._echo = None

    # -- sources --------------------------------------------------------------------------------

    def halt(self, reason: str, source: str = OPERATOR) -> None:
        """Announce a halt on the topic; this switch applies it as it reaches the bus."""
        self._msgbus.publish(
            KILL_SWITCH_TOPIC, {"action": "halt", "reason": reason, "source": source}
        )

    def reset(self, reason: str, source: str = OPERATOR) -> None:
        """Announce a reset on the topic."""
        self._msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "reset", "reason": reason, "source": source},
        )

    def trip(self, code: str, reason: str, source: str, ts_ns: int, equity: float) -> None:
        """Halt under a code the caller owns (a loss trigger); announced as ``code: reason``."""
        self._halts[code] = _Halt(source, reason)
        self._apply(
            KillSwitchEvent("halt", code, reason, source, ts_ns, equity),
            {"action": "halt", "reason": f"{code}: {reason}", "source": source},
        )

    def rearm(self, code: str, reason: str, source: str, ts_ns: int, equity: float) -> None:
        """Clear a halt the caller tripped (a new trading day), and announce it."""
        self._halts.pop(code, None)
        self._apply(
            KillSwitchEvent("reset", code, reason, source, ts_ns, equity),
            {"action": "reset", "reason": reason, "source": source},
        )

    def on_message(self, message: Any) -> None:
        """A halt or reset from the topic."""
        if message is self._echo:
            return  # our own announcement
        if not isinstance(message, Mapping) or message.get("action") not in ("halt", "reset"):
            self._log.error(
                f"Ignored kill-switch message {message!r}: expected a mapping with action "
                "'halt' or 'reset'",
            )
            return
        source = str(message.get("source") or OPERATOR)
        reason = str(message.get("reason") or "")
        code = source_code(source)
        if message["action"] == "halt":
            self._halts[code] = _Halt(source, reason or "operator request")
            event = KillSwitchEvent("halt", code, reason or "operator request", source)
        elif source == OPERATOR:
            self._halts.clear()
            event = KillSwitchEvent("reset", "all", reason, source)
        else:
            self._halts.pop(code, None)
            event = KillSwitchEvent("reset", code, reason, source)
        self._apply(event, None, message)

    def _apply(
        self,
        event: KillSwitchEvent,
        announce: dict[str, str] | None,
        received: Mapping[str, Any] | None = None,
    ) -> None:
        message = announce if announce is not None else received or {}
        now = self._clock.timestamp_ns()
        self.history.append(
            {
                "ts": dt.datetime.fromtimestamp(now / _NS, tz=dt.UTC).isoformat(timespec="seconds"),
                "action": event.action,
                "source": event.source,
                "reason": str(message.get("reason") or ""),
            },
        )
        if event.action == "halt":
            self._log.warning(
                f"KILL SWITCH HALT ({event.code}, from {event.source}): {event.reason}. Only "
                "orders reducing the submitting strategy's position pass until reset.",
            )
        else:
            self._log.warning(
                f"Kill switch reset ({event.code}, from {event.source}): {event.reason}",
            )
        if announce is not None:
            self._echo = announce
            try:
                self._msgbus.publish(KILL_SWITCH_TOPIC, announce)
            finally:
                self._echo = None
        for listener in list(self._listeners):
            listener(event)
        self._mirror()

    def _mirror(self) -> None:
        if not self.mirror_trading_state:
            return
        # Never override HALTED set by someone else; only move between ACTIVE and REDUCING.
        state = self._risk.trading_state
        if self._halts and state == TradingState.ACTIVE:
            self._risk.set_trading_state(TradingState.REDUCING)
            self._we_set_reducing = True
        elif not self._halts and state == TradingState.REDUCING and self._we_set_reducing:
            self._risk.set_trading_state(TradingState.ACTIVE)
            self._we_set_reducing = False

    # -- guard ----------------------------------------------------------------------------------

    def revoke(self, client_order_id: ClientOrderId) -> None:
        """Drop the submission of an order approved earlier (its denial is the caller's)."""
        self._revoked.add(client_order_id)

    def _guard_execute(self, command: Any) -> None:
        if isinstance(command, SubmitOrder | SubmitOrderList):
            if isinstance(command, SubmitOrder):
                orders = [command.order]
            else:
                orders = list(command.order_list.orders)
            revoked = self._revoked
            if revoked:
                ids = [order.client_order_id for order in orders]
                if any(i in revoked for i in ids):
                    revoked.difference_update(ids)
                    self._log.warning(
                        f"Dropped the submission of {', '.join(map(str, ids))}: revoked by the "
                        "kill switch after approval",
                    )
                    return
            if self._halts and not self.reduces(orders, command.position_id):
                reason = "kill switch: " + "; ".join(
                    f"{source}: {why}" for source, why in self.halts.items()
                )
                for order in orders:
                    self._deny(order, reason)
                return
        assert self._exec_execute is not None
        self._exec_execute(command)

    def reduces(self, orders: list[Order], position_id: Any = None) -> bool:
        """Whether a submission only reduces its strategy's position (its first order decides)."""
        if all(order.is_reduce_only for order in orders):
            return True
        entry = orders[0]
        cache = self._cache
        if position_id is not None:
            position = cache.position(position_id)
            held = float(position.signed_qty) if position is not None and position.is_open else 0.0
        else:
            held = sum(
                float(p.signed_qty)
                for p in cache.positions_open(
                    instrument_id=entry.instrument_id,
                    strategy_id=entry.strategy_id,
                )
            )
        signed = float(entry.quantity) * (1.0 if entry.side == OrderSide.BUY else -1.0)
        return held != 0.0 and (held > 0) != (signed > 0) and abs(signed) <= abs(held) + 1e-12

    def _deny(self, order: Order, reason: str) -> None:
        self.denied += 1
        self._msgbus.send(
            "ExecEngine.process", order_denied(order, reason, self._clock.timestamp_ns())
        )
