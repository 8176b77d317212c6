"""Live operations: kill switch (file, command, bus topic), periodic health line, node files.

Kill switch
-----------
One message contract, :data:`grodt.core.topics.KILL_SWITCH_TOPIC`, carries every halt and reset:
``{"action": "halt" | "reset", "reason": str, "source": str}``. The operator's kill file and
``grodt live kill`` publish on it (source ``"operator"``); the portfolio risk gate listens to it and
publishes its own halts (drawdown, daily loss) on it; the node's flatten-on-stop halts with source
``"node"``. :class:`KillSwitch` listens as well, so the switch also works in a node without the
gate:

- halts are kept per source; a reset from a source clears that source's halt; an operator reset
  clears all of them;
- while any halt is active, the switch guards the ``ExecEngine.execute`` endpoint (the step after
  every risk check, the gate's included): a submission passes only if it reduces the submitting
  strategy's own position (reduce-only orders, or the opposite side for at most the open
  quantity; a bracket list is judged by its entry). Others get ``OrderDenied`` with the halt's
  reason. Cancels and modifications always pass, so flattening works while halted.

Positions can always be reduced, per strategy. Nautilus' own ``TradingState.REDUCING`` is not
that: it is instrument-net-wide (a BUY is denied while the *instrument* is net long across all
strategies, a SELL while net short) and lets an order from a flat position through. With several
strategies on one instrument (S0 long 2000, S1 short 100), S1's reduce-only BUY that closes its own
short would be denied. So the switch does not touch the risk engine's trading state unless
``operations.kill_switch.mirror_trading_state`` is set (then ``REDUCING`` while halted, ``ACTIVE``
again when no halt is left, only if this switch set ``REDUCING``). The health line and
``grodt live status`` show the halt either way.

The kill file is level-triggered: while it exists the node is halted, deleting it resumes. A node
started while the file exists starts halted, so a halt survives restarts.
"""

import asyncio
import contextlib
import getpass
import json
import os
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrder
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.enums import trading_state_to_str
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.orders import Order

from grodt.core.errors import GrodtError
from grodt.core.topics import KILL_SWITCH_TOPIC

NODE_FILE = "node.json"
"""Written into the run directory of a running live node: pid, kill file, start time."""
DEFAULT_KILL_FILE = "KILL"
OPERATOR = "operator"
EXEC_ENDPOINT = "ExecEngine.execute"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- Kill switch --------------------------------------------------------------------------------


class KillSwitch:
    """Halts new risk on a live node; see the module docstring for the coordination rules.

    Parameters
    ----------
    kernel : NautilusKernel
        The node's kernel (message bus, risk engine, logger).
    kill_file : Path
        The operator's kill file.
    poll_seconds : float
        How often the file is checked.
    mirror_trading_state : bool, default False
        Also set Nautilus' risk engine to ``REDUCING`` while halted (instrument-net-wide: it can
        deny a strategy's own closing order; see the module docstring).
    """

    def __init__(
        self,
        kernel: Any,
        kill_file: Path,
        poll_seconds: float = 1.0,
        mirror_trading_state: bool = False,
    ) -> None:
        self._kernel = kernel
        self._msgbus = kernel.msgbus
        self._risk = kernel.risk_engine
        self._log = kernel.logger
        self.kill_file = Path(kill_file)
        self.poll_seconds = poll_seconds
        self.mirror_trading_state = mirror_trading_state
        self.halts: dict[str, str] = {}
        self.history: list[dict[str, Any]] = []
        self._file_present = False
        self._we_set_reducing = False
        self._exec_execute = kernel.exec_engine.execute
        self._guarding = False
        self.denied = 0

    # -- bus ------------------------------------------------------------------------------------

    def attach(self) -> None:
        """Listen on the kill-switch topic and guard the execution endpoint."""
        self._msgbus.subscribe(KILL_SWITCH_TOPIC, self.on_message)
        self._msgbus.deregister(EXEC_ENDPOINT, self._exec_execute)
        self._msgbus.register(EXEC_ENDPOINT, self._guard_execute)
        self._guarding = True

    def detach(self) -> None:
        if self._msgbus.is_subscribed(KILL_SWITCH_TOPIC, self.on_message):
            self._msgbus.unsubscribe(KILL_SWITCH_TOPIC, self.on_message)
        if self._guarding:
            self._msgbus.deregister(EXEC_ENDPOINT, self._guard_execute)
            self._msgbus.register(EXEC_ENDPOINT, self._exec_execute)
            self._guarding = False

    # -- guard ----------------------------------------------------------------------------------

    def _guard_execute(self, command: Any) -> None:
        if self.halts and isinstance(command, SubmitOrder | SubmitOrderList):
            if isinstance(command, SubmitOrder):
                orders = [command.order]
            else:
                orders = list(command.order_list.orders)
            if not self.reduces(orders, command.position_id):
                reason = "kill switch: " + "; ".join(
                    f"{source}: {why}" for source, why in self.halts.items()
                )
                for order in orders:
                    self._deny(order, reason)
                return
        self._exec_execute(command)

    def reduces(self, orders: list[Order], position_id: Any = None) -> bool:
        """Whether a submission only reduces its strategy's position (entry order decides)."""
        if all(order.is_reduce_only for order in orders):
            return True
        entry = orders[0]
        cache = self._kernel.cache
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
        event = OrderDenied(
            trader_id=order.trader_id,
            strategy_id=order.strategy_id,
            instrument_id=order.instrument_id,
            client_order_id=order.client_order_id,
            reason=reason,
            event_id=UUID4(),
            ts_init=self._kernel.clock.timestamp_ns(),
        )
        self._msgbus.send("ExecEngine.process", event)

    def halt(self, reason: str, source: str = OPERATOR) -> None:
        """Publish a halt (everyone listening, this switch included, reacts)."""
        self._msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "halt", "reason": reason, "source": source},
        )

    def reset(self, reason: str, source: str = OPERATOR) -> None:
        """Publish a reset."""
        self._msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "reset", "reason": reason, "source": source},
        )

    def on_message(self, message: Any) -> None:
        if not isinstance(message, dict) or message.get("action") not in ("halt", "reset"):
            self._log.error(f"Malformed kill-switch message ignored: {message!r}")
            return
        action = message["action"]
        source = str(message.get("source") or "unknown")
        reason = str(message.get("reason") or "")
        self.history.append(
            {"ts": utc_now_iso(), "action": action, "source": source, "reason": reason},
        )
        if action == "halt":
            self.halts[source] = reason
            self._log.warning(
                f"KILL SWITCH halt from {source}: {reason} (orders reducing the submitting "
                "strategy's position only)",
            )
        elif source == OPERATOR:
            self.halts.clear()
            self._log.warning(f"KILL SWITCH reset by operator: {reason}")
        else:
            self.halts.pop(source, None)
            self._log.warning(f"KILL SWITCH reset from {source}: {reason}")
        self._apply()

    def _apply(self) -> None:
        if not self.mirror_trading_state:
            return
        state = self._risk.trading_state
        if self.halts and state == TradingState.ACTIVE:
            self._risk.set_trading_state(TradingState.REDUCING)
            self._we_set_reducing = True
        elif not self.halts and state == TradingState.REDUCING and self._we_set_reducing:
            self._risk.set_trading_state(TradingState.ACTIVE)
            self._we_set_reducing = False

    @property
    def halted(self) -> bool:
        return bool(self.halts)

    def state(self) -> dict[str, Any]:
        return {
            "halted": self.halted,
            "halts": dict(self.halts),
            "denied": self.denied,
            "trading_state": trading_state_to_str(self._risk.trading_state),
            "mirror_trading_state": self.mirror_trading_state,
            "kill_file": str(self.kill_file),
        }

    # -- file -----------------------------------------------------------------------------------

    def check_file(self) -> None:
        """Apply the kill file's presence (level-triggered)."""
        present = self.kill_file.exists()
        if present and not self._file_present:
            self._file_present = True
            self.halt(read_kill_reason(self.kill_file), OPERATOR)
        elif not present and self._file_present:
            self._file_present = False
            self.reset(f"kill file {self.kill_file} removed", OPERATOR)

    async def watch(self) -> None:
        while True:
            try:
                self.check_file()
            except Exception as e:  # the switch must keep watching whatever the file holds
                self._log.exception("Kill-file check failed", e)
            await asyncio.sleep(self.poll_seconds)


def read_kill_reason(path: Path) -> str:
    """The reason stored in a kill file (JSON from ``grodt live kill`` or free text)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except OSError:
        return f"kill file {path}"
    if not text:
        return f"kill file {path}"
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        return text[:500]
    if isinstance(payload, dict) and payload.get("reason"):
        who = payload.get("user")
        return str(payload["reason"]) + (f" (by {who})" if who else "")
    return text[:500]


def write_kill_file(path: Path, reason: str) -> dict[str, Any]:
    """Create the kill file (atomically) with the operator's reason."""
    payload = {
        "action": "halt",
        "reason": reason,
        "source": OPERATOR,
        "user": _user(),
        "ts": utc_now_iso(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return payload


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def resolve_kill_file(target: Path) -> Path:
    """The kill file of a run directory (from its node file), or ``target`` itself."""
    target = Path(target)
    if target.is_dir():
        node_file = target / NODE_FILE
        if node_file.exists():
            info = json.loads(node_file.read_text(encoding="utf-8"))
            return Path(info["kill_file"])
        return target / DEFAULT_KILL_FILE
    return target


def read_node_file(run_dir: Path) -> dict[str, Any]:
    path = Path(run_dir) / NODE_FILE
    if not path.exists():
        raise GrodtError(f"{path}: no live node file (is {run_dir} a live run directory?)")
    return json.loads(path.read_text(encoding="utf-8"))


def write_node_file(run_dir: Path, payload: dict[str, Any]) -> Path:
    path = Path(run_dir) / NODE_FILE
    path.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return path


# -- Health -------------------------------------------------------------------------------------


def _money(value: Any) -> float:
    return float(value.as_double()) if value is not None else 0.0


def queue_depths(kernel: Any) -> dict[str, int]:
    data, risk, exe = kernel.data_engine, kernel.risk_engine, kernel.exec_engine
    return {
        "data": data.data_qsize(),
        "data_cmd": data.cmd_qsize(),
        "data_req": data.req_qsize(),
        "data_res": data.res_qsize(),
        "risk_cmd": risk.cmd_qsize(),
        "risk_evt": risk.evt_qsize(),
        "exec_cmd": exe.cmd_qsize(),
        "exec_evt": exe.evt_qsize(),
    }


def _market_values(kernel: Any, account: Any, venue: Venue) -> dict[str, float]:
    """Signed market value of a cash account's open positions, per settlement currency.

    Positions in an instrument whose base currency the account holds as a balance (spot FX,
    crypto) are already in the balances and not added again.
    """
    cache, portfolio = kernel.cache, kernel.portfolio
    by_instrument: dict[Any, tuple[float, float]] = {}
    for position in cache.positions_open(venue=venue):
        signed = float(position.signed_qty)
        net, gross = by_instrument.get(position.instrument_id, (0.0, 0.0))
        by_instrument[position.instrument_id] = (net + signed, gross + abs(signed))
    values: dict[str, float] = {}
    for instrument_id, (net, gross) in by_instrument.items():
        instrument = cache.instrument(instrument_id)
        base = instrument.get_base_currency() if instrument is not None else None
        if base is not None and account.balance(base) is not None:
            continue
        # Nautilus' net exposure is the notional of the summed absolute quantities.
        exposure = portfolio.net_exposure(instrument_id)
        if exposure is None or gross == 0.0:
            continue
        currency = str(exposure.currency)
        values[currency] = values.get(currency, 0.0) + _money(exposure) * net / gross
    return values


def health_snapshot(kernel: Any, extras: dict[str, Any] | None = None) -> dict[str, Any]:
    """Positions, exposure, PnL, equity, orders and queue depths of a node, JSON-ready.

    Amounts are per currency (summed across accounts). Equity per account: a cash account's
    balance already paid for its positions (a buy debits the notional), so its equity is the
    balance plus the positions' market value; a margin account's balance is not debited, so its
    equity is the balance plus the unrealised PnL.
    """
    cache, portfolio = kernel.cache, kernel.portfolio
    positions: dict[str, float] = {}
    gross = 0.0
    for position in cache.positions_open():
        key = str(position.instrument_id)
        positions[key] = positions.get(key, 0.0) + float(position.signed_qty)
    for instrument_id in {p.instrument_id for p in cache.positions_open()}:
        gross += abs(_money(portfolio.net_exposure(instrument_id)))
    net: dict[str, float] = {}
    realized: dict[str, float] = {}
    unrealized: dict[str, float] = {}
    equity: dict[str, float] = {}
    for account in cache.accounts():
        venue = Venue(account.id.get_issuer())
        venue_unrealized: dict[str, float] = {}
        for store, values in (
            (net, portfolio.net_exposures(venue)),
            (realized, portfolio.realized_pnls(venue)),
            (venue_unrealized, portfolio.unrealized_pnls(venue)),
        ):
            for currency, money in (values or {}).items():
                store[str(currency)] = store.get(str(currency), 0.0) + _money(money)
        for currency, value in venue_unrealized.items():
            unrealized[currency] = unrealized.get(currency, 0.0) + value
        for currency, money in account.balances_total().items():
            equity[str(currency)] = equity.get(str(currency), 0.0) + _money(money)
        if account.is_margin_account:
            on_top = venue_unrealized
        else:
            on_top = _market_values(kernel, account, venue)
        for currency, value in on_top.items():
            equity[currency] = equity.get(currency, 0.0) + value
    snapshot: dict[str, Any] = {
        "ts": utc_now_iso(),
        "trading_state": trading_state_to_str(kernel.risk_engine.trading_state),
        "positions": positions,
        "positions_open": len(positions),
        "gross_exposure": gross,
        "net_exposure": net,
        "realized_pnl": realized,
        "unrealized_pnl": unrealized,
        "equity": equity,
        "orders_open": cache.orders_open_count(),
        "orders_total": cache.orders_total_count(),
        "queues": queue_depths(kernel),
        "rss_mb": _rss_mb(),
    }
    if extras:
        snapshot.update(extras)
    return snapshot


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def _fmt_amounts(values: dict[str, float]) -> str:
    if not values:
        return "0"
    return ",".join(f"{v:,.2f} {c}" for c, v in sorted(values.items()))


def format_health_line(snapshot: dict[str, Any]) -> str:
    """One human line: state, positions, exposure, PnL, orders, queues (and extras)."""
    positions = snapshot["positions"]
    shown = " ".join(f"{k}:{v:+g}" for k, v in sorted(positions.items())[:5])
    if len(positions) > 5:
        shown += f" (+{len(positions) - 5} more)"
    queues = snapshot["queues"]
    parts = [
        f"health {snapshot['ts']}",
        f"state={snapshot['trading_state']}",
        f"positions={snapshot['positions_open']}" + (f" [{shown}]" if shown else ""),
        f"gross={snapshot['gross_exposure']:,.2f}",
        f"net={_fmt_amounts(snapshot['net_exposure'])}",
        f"pnl realized={_fmt_amounts(snapshot['realized_pnl'])}"
        f" unrealized={_fmt_amounts(snapshot['unrealized_pnl'])}",
        f"equity={_fmt_amounts(snapshot['equity'])}",
        f"orders open={snapshot['orders_open']} total={snapshot['orders_total']}",
        f"queues data={queues['data']}/{queues['data_cmd']} "
        f"risk={queues['risk_cmd']}/{queues['risk_evt']} "
        f"exec={queues['exec_cmd']}/{queues['exec_evt']}",
        f"rss={snapshot['rss_mb']:.0f}MB",
    ]
    replay = snapshot.get("replay")
    if replay:
        parts.append(
            f"replay={replay['replayed']:,}/{replay['total']:,} @ {replay['market_time']}",
        )
    latency = snapshot.get("latency")
    if latency and latency.get("count"):
        parts.append(
            f"latency p50={latency['p50_us']:.0f}us p99={latency['p99_us']:.0f}us",
        )
    for name, figures in (snapshot.get("extensions") or {}).items():
        if figures:
            inner = " ".join(f"{k}={v}" for k, v in figures.items() if not isinstance(v, dict))
            parts.append(f"{name}[{inner}]")
    kill = snapshot.get("kill_switch")
    if kill and kill.get("halted"):
        parts.append("HALTED by " + ",".join(sorted(kill["halts"])))
    return " ".join(parts)


class HealthMonitor:
    """Emits :func:`health_snapshot` every ``interval`` seconds to ``sinks``.

    Parameters
    ----------
    kernel : NautilusKernel
        The node's kernel.
    interval : float
        Seconds between lines.
    extras : Callable[[], dict], optional
        Adds node-level figures (replay progress, latency, kill switch, extension counters).
    sinks : list[Callable[[dict], None]]
        Receivers of each snapshot (log, ``health.jsonl``, the CLI's stderr).
    """

    def __init__(
        self,
        kernel: Any,
        interval: float,
        extras: Callable[[], dict[str, Any]] | None = None,
        sinks: list[Callable[[dict[str, Any]], None]] | None = None,
    ) -> None:
        self._kernel = kernel
        self.interval = interval
        self._extras = extras
        self.sinks = list(sinks or [])
        self.last: dict[str, Any] | None = None
        self.count = 0

    def emit(self) -> dict[str, Any]:
        snapshot = health_snapshot(self._kernel, self._extras() if self._extras else None)
        self.last = snapshot
        self.count += 1
        for sink in self.sinks:
            try:
                sink(snapshot)
            except Exception as e:  # a broken sink must not stop the node
                self._kernel.logger.exception("Health sink failed", e)
        return snapshot

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.emit()
            except Exception as e:
                self._kernel.logger.exception("Health snapshot failed", e)


class JsonlSink:
    """Appends each snapshot as a JSON line to a file (flushed per line)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._handle = self.path.open("a", encoding="utf-8")

    def __call__(self, snapshot: dict[str, Any]) -> None:
        self._handle.write(json.dumps(snapshot, default=str) + "\n")
        self._handle.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._handle.close()
