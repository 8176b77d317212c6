"""Live operations: the operator's kill file (a kill-switch source), health line, node files.

Kill switch
-----------
The kernel has one kill switch, :class:`risk_engine.kill_switch.KillSwitch`: it keeps the halts
of every source and guards ``ExecEngine.execute`` while any is active (only submissions that
reduce the submitting strategy's own position pass). Every halt and reset travels on
:data:`grodt.core.topics.KILL_SWITCH_TOPIC` as ``{"action": "halt" | "reset", "reason": str,
"source": str}``. The live node joins the switch and adds its sources: the operator's kill file
and ``grodt live kill`` (source ``"operator"``, :class:`KillFile`) and its flatten-on-stop
(source ``"node"``); the portfolio risk gate, when configured, joins the same switch with its
drawdown and daily-loss halts.

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

from nautilus_trader.model.enums import trading_state_to_str
from nautilus_trader.model.identifiers import Venue

from grodt.core.errors import GrodtError
from risk_engine.kill_switch import OPERATOR
from risk_engine.kill_switch import KillSwitch

NODE_FILE = "node.json"
"""Written into the run directory of a running live node: pid, kill file, start time."""
DEFAULT_KILL_FILE = "KILL"


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


# -- Kill file ----------------------------------------------------------------------------------


class KillFile:
    """The operator's kill file as a source of the kernel's kill switch.

    Parameters
    ----------
    switch : KillSwitch
        The kernel's switch (its state shows the file's path).
    path : Path
        The kill file.
    poll_seconds : float
        How often :meth:`watch` checks the file.
    logger
        Where a failing check is reported.
    """

    def __init__(self, switch: KillSwitch, path: Path, poll_seconds: float, logger: Any) -> None:
        self.switch = switch
        self.path = Path(path)
        self.poll_seconds = poll_seconds
        self._log = logger
        self._present = False
        switch.labels["kill_file"] = str(self.path)

    def check(self) -> None:
        """Apply the file's presence (level-triggered): a halt while it exists."""
        present = self.path.exists()
        if present and not self._present:
            self._present = True
            self.switch.halt(read_kill_reason(self.path), OPERATOR)
        elif not present and self._present:
            self._present = False
            self.switch.reset(f"kill file {self.path} removed", OPERATOR)

    async def watch(self) -> None:
        while True:
            try:
                self.check()
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
