"""The risk gate's own kill-switch source: daily loss and drawdown triggers.

Pure state (no engine): the gate feeds it equity observations; it answers with the halts (and
daily re-arms) they cause, which the gate applies to the kernel's
:class:`~risk_engine.kill_switch.KillSwitch`.

- ``daily_loss``: equity ≤ (1 − limit) × equity at the start of the trading day (the last equity
  seen before the day boundary, in ``kill_switch.timezone`` at ``kill_switch.day_start``).
- ``max_drawdown``: equity ≤ (1 − limit) × high-water mark.

A halt caused only by the daily loss (no other halt active) re-arms by itself at the next
trading day when ``auto_reset_daily_loss`` is set. The operator's reset re-bases the high-water
mark and the day's start at the current equity (:meth:`LossTriggers.rebase`), otherwise the
drawdown would trip again at once.
"""

import datetime as dt
import zoneinfo
from collections.abc import Collection
from dataclasses import dataclass

from risk_engine.config import KillSwitchConfig

__all__ = ["DAILY_LOSS", "MAX_DRAWDOWN", "LossTriggers", "Trip"]

_NS = 1_000_000_000
DAILY_LOSS = "daily_loss"
MAX_DRAWDOWN = "max_drawdown"


@dataclass(frozen=True, slots=True)
class Trip:
    """A change the triggers ask of the kill switch: ``halt`` or ``reset`` under ``code``."""

    action: str
    code: str
    reason: str


class LossTriggers:
    """Equity marks and the trading day, compared against the loss limits.

    Parameters
    ----------
    config : KillSwitchConfig
        Day boundary and re-arm behaviour.
    daily_loss, max_drawdown : float | None
        Trigger levels as fractions of equity (None = off).
    """

    def __init__(
        self,
        config: KillSwitchConfig,
        daily_loss: float | None,
        max_drawdown: float | None,
    ) -> None:
        self.config = config
        self.daily_loss = daily_loss
        self.max_drawdown = max_drawdown
        self.high_water: float | None = None
        self.day_start_equity: float | None = None
        self.last_equity: float | None = None
        self._next_boundary_ns = -1
        self._zone = zoneinfo.ZoneInfo(config.timezone)
        self._start = config.day_start_time()

    @property
    def enabled(self) -> bool:
        """Whether any trigger is configured (else equity need not be watched)."""
        return self.daily_loss is not None or self.max_drawdown is not None

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

    def observe(self, equity: float, ts_ns: int, active: Collection[str]) -> list[Trip]:
        """Feed one equity observation (risk currency, at UNIX ns ``ts_ns``), given the kill
        switch's ``active`` halt codes; returns the halts and re-arms it causes, in order."""
        active = set(active)
        caused: list[Trip] = []
        if self._next_boundary_ns < 0:
            self._next_boundary_ns = self._boundary_after(ts_ns)
            self.day_start_equity = equity
        elif ts_ns >= self._next_boundary_ns:
            self._next_boundary_ns = self._boundary_after(ts_ns)
            # The day opens at the last equity of the previous day.
            self.day_start_equity = self.last_equity if self.last_equity is not None else equity
            if self.config.auto_reset_daily_loss and active == {DAILY_LOSS}:
                active.discard(DAILY_LOSS)
                caused.append(Trip("reset", DAILY_LOSS, "new trading day"))
        self.last_equity = equity
        if self.high_water is None or equity > self.high_water:
            self.high_water = equity
        if self.max_drawdown is not None and MAX_DRAWDOWN not in active:
            floor = self.high_water * (1.0 - self.max_drawdown)
            if equity <= floor:
                drawdown = 1.0 - equity / self.high_water
                active.add(MAX_DRAWDOWN)
                caused.append(
                    Trip(
                        "halt",
                        MAX_DRAWDOWN,
                        f"drawdown {drawdown:.2%} from high-water mark {self.high_water:,.2f} "
                        f"reached the limit {self.max_drawdown:.2%}",
                    ),
                )
        if (
            self.daily_loss is not None
            and DAILY_LOSS not in active
            and self.day_start_equity is not None
            and self.day_start_equity > 0.0
        ):
            floor = self.day_start_equity * (1.0 - self.daily_loss)
            if equity <= floor:
                loss = 1.0 - equity / self.day_start_equity
                caused.append(
                    Trip(
                        "halt",
                        DAILY_LOSS,
                        f"daily loss {loss:.2%} from {self.day_start_equity:,.2f} reached the "
                        f"limit {self.daily_loss:.2%}",
                    ),
                )
        return caused

    def state(self) -> dict[str, float | int | None]:
        """The marks (high-water, day start, last equity, next day boundary in UNIX ns), for a
        restarted node (:meth:`restore`)."""
        return {
            "high_water": self.high_water,
            "day_start_equity": self.day_start_equity,
            "last_equity": self.last_equity,
            "next_boundary_ns": self._next_boundary_ns,
        }

    def restore(self, state: dict[str, float | int | None]) -> None:
        """Take the marks :meth:`state` gave (a restarted node continues the crashed one's)."""
        self.high_water = _optional_float(state["high_water"])
        self.day_start_equity = _optional_float(state["day_start_equity"])
        self.last_equity = _optional_float(state["last_equity"])
        boundary = state["next_boundary_ns"]
        self._next_boundary_ns = int(boundary) if boundary is not None else -1

    def rebase(self, equity: float) -> None:
        """Start the marks afresh at ``equity`` (the operator reset every halt)."""
        self.high_water = equity
        self.day_start_equity = equity
        self.last_equity = equity


def _optional_float(value: float | int | None) -> float | None:
    return None if value is None else float(value)
