"""Kill switch state: daily loss and drawdown triggers, operator halts, resets.

Pure state (no engine): the gate feeds it equity observations and operator messages and asks
whether it is halted. While halted, only risk-reducing orders pass the gate.

- ``daily_loss``: equity ≤ (1 − limit) × equity at the start of the trading day (the last equity
  seen before the day boundary, in ``kill_switch.timezone`` at ``kill_switch.day_start``).
- ``max_drawdown``: equity ≤ (1 − limit) × high-water mark.
- any other component: a ``{"action": "halt", "source": ...}`` message on
  :data:`grodt.core.topics.KILL_SWITCH_TOPIC` (the operator's kill file and command use source
  ``"operator"``).

Halts are kept per source, like the live node's kill switch (``grodt.nodes.operations``), so both
read one state from one topic: a ``reset`` from a source clears that source's halt; a reset from
the operator clears every halt, this gate's own included, and re-bases the high-water mark and
the day's start equity at the current equity (otherwise the drawdown switch would trip again at
once). A halt caused only by the daily loss re-arms by itself at the next trading day when
``auto_reset_daily_loss`` is set.
"""

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from dataclasses import field

from risk_engine.config import KillSwitchConfig

_NS = 1_000_000_000
OPERATOR = "operator"
"""Source of the operator's kill file and command; its reset clears every halt."""
OWN_CODES = ("max_drawdown", "daily_loss")


def source_code(source: str) -> str:
    """The halt code of an external source (``operator`` stays ``operator``)."""
    return OPERATOR if source == OPERATOR else f"source:{source}"


@dataclass(frozen=True, slots=True)
class KillSwitchEvent:
    """A halt or reset, for logs and the run summary."""

    ts_ns: int
    action: str
    reason_code: str
    reason: str
    source: str
    equity: float


@dataclass
class KillSwitch:
    """Halt state and the equity marks the automatic triggers compare against.

    Parameters
    ----------
    config : KillSwitchConfig
        Day boundary and reset behaviour.
    daily_loss, max_drawdown : float | None
        Trigger levels as fractions of equity (None = off).
    """

    config: KillSwitchConfig
    daily_loss: float | None
    max_drawdown: float | None
    reasons: dict[str, str] = field(default_factory=dict)
    high_water: float | None = None
    day_start_equity: float | None = None
    last_equity: float | None = None
    events: list[KillSwitchEvent] = field(default_factory=list)
    _next_boundary_ns: int = -1

    def __post_init__(self) -> None:
        self._zone = zoneinfo.ZoneInfo(self.config.timezone)
        self._start = self.config.day_start_time()

    @property
    def halted(self) -> bool:
        return bool(self.reasons)

    def describe(self) -> str:
        return "; ".join(f"{code}: {text}" for code, text in self.reasons.items())

    def _boundary_after(self, ts_ns: int) -> int:
        """The first day boundary strictly after ``ts_ns``."""
        local = dt.datetime.fromtimestamp(ts_ns / _NS, tz=self._zone)
        candidate = local.replace(
            hour=self._start.hour,
            minute=self._start.minute,
            second=0,
            microsecond=0,
        )
        if candidate.timestamp() * _NS <= ts_ns:
            candidate = (candidate + dt.timedelta(days=1)).replace(
                hour=self._start.hour,
                minute=self._start.minute,
            )
        return int(candidate.timestamp()) * _NS

    def observe(self, equity: float, ts_ns: int) -> list[KillSwitchEvent]:
        """Feed one equity observation; returns the halts (and daily re-arms) it caused."""
        caused: list[KillSwitchEvent] = []
        if self._next_boundary_ns < 0:
            self._next_boundary_ns = self._boundary_after(ts_ns)
            self.day_start_equity = equity
        elif ts_ns >= self._next_boundary_ns:
            self._next_boundary_ns = self._boundary_after(ts_ns)
            # The day opens at the last equity of the previous day.
            self.day_start_equity = self.last_equity if self.last_equity is not None else equity
            if (
                self.config.auto_reset_daily_loss
                and "daily_loss" in self.reasons
                and len(self.reasons) == 1
            ):
                del self.reasons["daily_loss"]
                caused.append(self._event(ts_ns, "reset", "daily_loss", "new trading day", equity))
        self.last_equity = equity
        if self.high_water is None or equity > self.high_water:
            self.high_water = equity
        if self.max_drawdown is not None and "max_drawdown" not in self.reasons:
            floor = self.high_water * (1.0 - self.max_drawdown)
            if equity <= floor:
                drawdown = 1.0 - equity / self.high_water
                caused.append(
                    self.halt(
                        ts_ns,
                        "max_drawdown",
                        f"drawdown {drawdown:.2%} from high-water mark {self.high_water:,.2f} "
                        f"reached the limit {self.max_drawdown:.2%}",
                        "RiskGate",
                        equity,
                    ),
                )
        if (
            self.daily_loss is not None
            and "daily_loss" not in self.reasons
            and self.day_start_equity is not None
            and self.day_start_equity > 0.0
        ):
            floor = self.day_start_equity * (1.0 - self.daily_loss)
            if equity <= floor:
                loss = 1.0 - equity / self.day_start_equity
                caused.append(
                    self.halt(
                        ts_ns,
                        "daily_loss",
                        f"daily loss {loss:.2%} from {self.day_start_equity:,.2f} reached the "
                        f"limit {self.daily_loss:.2%}",
                        "RiskGate",
                        equity,
                    ),
                )
        return caused

    def halt(
        self,
        ts_ns: int,
        code: str,
        reason: str,
        source: str,
        equity: float | None,
    ) -> KillSwitchEvent:
        self.reasons[code] = reason
        return self._event(ts_ns, "halt", code, reason, equity, source)

    def external_halt(
        self,
        ts_ns: int,
        reason: str,
        source: str,
        equity: float | None,
    ) -> KillSwitchEvent:
        """A halt published by another component (the operator, the live node)."""
        return self.halt(ts_ns, source_code(source), reason, source, equity)

    def reset(self, ts_ns: int, reason: str, source: str, equity: float | None) -> KillSwitchEvent:
        """Clear ``source``'s halt; the operator's reset clears all and re-bases the marks."""
        if source != OPERATOR:
            self.reasons.pop(source_code(source), None)
            return self._event(ts_ns, "reset", source_code(source), reason, equity, source)
        self.reasons.clear()
        if equity is not None:
            self.high_water = equity
            self.day_start_equity = equity
            self.last_equity = equity
        return self._event(ts_ns, "reset", "all", reason, equity, source)

    def own_halt(self) -> bool:
        """Whether one of this switch's own triggers (drawdown, daily loss) holds a halt."""
        return any(code in self.reasons for code in OWN_CODES)

    def _event(
        self,
        ts_ns: int,
        action: str,
        code: str,
        reason: str,
        equity: float | None,
        source: str = "RiskGate",
    ) -> KillSwitchEvent:
        event = KillSwitchEvent(
            ts_ns=ts_ns,
            action=action,
            reason_code=code,
            reason=reason,
            source=source,
            equity=float("nan") if equity is None else equity,
        )
        self.events.append(event)
        return event
