"""Indicators that Nautilus does not ship, written as Nautilus ``Indicator`` subclasses.

Nautilus' own ``VolumeWeightedAveragePrice`` resets when the *day of the month* of the bar's
``ts_init`` changes in UTC. That is right for a session that lies inside one UTC day (US equities,
the synthetic market's 14:30–21:00 UTC), wrong for a session that crosses UTC midnight (CME
futures open 17:00 Chicago) and meaningless on daily bars (every bar is its own "day", so the
VWAP equals the bar's typical price). grodt therefore uses:

* :class:`SessionVwap` on intraday bars: resets at a configurable local session start
  (``SessionSchedule``, time zone aware, DST-correct);
* :class:`RollingVwap` on daily (and coarser) bars: volume-weighted mean of the typical price over
  the last ``window`` bars.

Both weigh the typical price ``(high + low + close) / 3`` by bar volume, like Nautilus' VWAP. When
the volume in the window (or session) is zero — index bars, close-only data — they fall back to
the equal-weighted mean of the typical price, so the value is defined and never divides by zero.

Cost: a Python ``handle_bar`` of a few microseconds; session boundaries are computed once per
session (an integer comparison per bar).
"""

import datetime as dt
import math
import zoneinfo
from collections import deque

from nautilus_trader.indicators import Indicator
from nautilus_trader.model.data import Bar

NANOS_PER_SECOND = 1_000_000_000


def parse_time_of_day(value: str, field: str) -> dt.time:
    """Parse ``"HH:MM"`` (or ``"HH:MM:SS"``); ``ValueError`` names ``field``."""
    try:
        return dt.time.fromisoformat(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a time of day 'HH:MM', got {value!r}") from None


def parse_timezone(value: str, field: str) -> zoneinfo.ZoneInfo:
    """Resolve an IANA time zone name; ``ValueError`` names ``field``."""
    try:
        return zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, TypeError):
        raise ValueError(f"{field}: unknown time zone {value!r}") from None


class SessionSchedule:
    """Daily trading sessions in a time zone.

    A session starts every calendar day at ``start`` local time and lasts until the next day's
    start; ``close`` (optional) is the local time trading stops within it (it may lie on the next
    calendar day when ``close <= start``, e.g. start 17:00, close 16:00 for CME futures).

    A bar belongs to the session that contains ``ts_event - 1 ns``: bars are stamped at their
    close, so the bar that closes exactly at the session start belongs to the previous session.

    Parameters
    ----------
    timezone : str, default "UTC"
        IANA time zone of ``start`` and ``close`` (DST is handled).
    start : str, default "00:00"
        Local session start, ``HH:MM``.
    close : str, optional
        Local session close, ``HH:MM``.
    """

    def __init__(
        self,
        timezone: str = "UTC",
        start: str = "00:00",
        close: str | None = None,
    ) -> None:
        self.timezone = parse_timezone(timezone, "session_timezone")
        self.start = parse_time_of_day(start, "session_start")
        self.close = parse_time_of_day(close, "session_close") if close is not None else None
        self._start_ns = 1  # cached [start, next_start) of the last session looked up
        self._next_start_ns = 0
        self._close_ns: int | None = None

    def _local_start(self, day: dt.date) -> int:
        moment = dt.datetime.combine(day, self.start, tzinfo=self.timezone)
        return int(moment.timestamp()) * NANOS_PER_SECOND + moment.microsecond * 1000

    def _locate(self, ts_ns: int) -> None:
        inside = ts_ns - 1
        local = dt.datetime.fromtimestamp(inside / NANOS_PER_SECOND, tz=self.timezone)
        day = local.date()
        start = self._local_start(day)
        if start > inside:
            day -= dt.timedelta(days=1)
            start = self._local_start(day)
        self._start_ns = start
        self._next_start_ns = self._local_start(day + dt.timedelta(days=1))
        if self.close is None:
            self._close_ns = None
        else:
            close_day = day if self.close > self.start else day + dt.timedelta(days=1)
            moment = dt.datetime.combine(close_day, self.close, tzinfo=self.timezone)
            self._close_ns = int(moment.timestamp()) * NANOS_PER_SECOND

    def session_start_ns(self, ts_ns: int) -> int:
        """Start (UNIX ns) of the session that the bar closing at ``ts_ns`` belongs to."""
        if not self._start_ns < ts_ns <= self._next_start_ns:
            self._locate(ts_ns)
        return self._start_ns

    def session_close_ns(self, ts_ns: int) -> int | None:
        """Close (UNIX ns) of the session of the bar closing at ``ts_ns``; ``None`` without a
        configured ``close``."""
        if not self._start_ns < ts_ns <= self._next_start_ns:
            self._locate(ts_ns)
        return self._close_ns


class SessionVwap(Indicator):
    """Volume-weighted average of the typical price since the session start.

    Parameters
    ----------
    schedule : SessionSchedule, optional
        Where sessions start (default: midnight UTC, Nautilus' convention).

    Attributes
    ----------
    value : float
        The VWAP, in price units (0.0 before the first bar).
    bars_in_session : int
        Bars seen in the current session, including the last one.
    session_start_ns : int
        Start of the current session, UNIX ns.
    """

    def __init__(self, schedule: SessionSchedule | None = None) -> None:
        super().__init__(params=[])
        self.schedule = schedule or SessionSchedule()
        self.value = 0.0
        self.bars_in_session = 0
        self.session_start_ns = 0
        self._price_volume = 0.0
        self._volume = 0.0
        self._price_sum = 0.0

    def handle_bar(self, bar: Bar) -> None:
        """Update with a bar (typical price, volume, close timestamp)."""
        self.update_raw(
            (bar.high.as_double() + bar.low.as_double() + bar.close.as_double()) / 3.0,
            bar.volume.as_double(),
            bar.ts_event,
        )

    def update_raw(self, price: float, volume: float, ts_ns: int) -> None:
        """Update with a typical ``price``, its ``volume`` and the bar's close time (UNIX ns)."""
        start = self.schedule.session_start_ns(ts_ns)
        if start != self.session_start_ns:
            self.session_start_ns = start
            self.bars_in_session = 0
            self._price_volume = 0.0
            self._volume = 0.0
            self._price_sum = 0.0
        self.bars_in_session += 1
        self._price_sum += price
        if volume > 0.0:
            self._price_volume += price * volume
            self._volume += volume
        if self._volume > 0.0:
            self.value = self._price_volume / self._volume
        else:
            self.value = self._price_sum / self.bars_in_session
        if not self.initialized:
            self._set_has_inputs(True)
            self._set_initialized(True)

    def _reset(self) -> None:
        self.value = 0.0
        self.bars_in_session = 0
        self.session_start_ns = 0
        self._price_volume = 0.0
        self._volume = 0.0
        self._price_sum = 0.0


class RollingVwap(Indicator):
    """Volume-weighted average of the typical price over the last ``window`` bars.

    Initialised once ``window`` bars have been seen.

    Parameters
    ----------
    window : int
        Number of bars (> 0).

    Attributes
    ----------
    value : float
        The rolling VWAP, in price units.
    """

    # Running sums are recomputed from the window every this many updates (float drift).
    _RESUM_EVERY = 1000

    def __init__(self, window: int) -> None:
        if window <= 0:
            raise ValueError(f"vwap_window must be positive, was {window}")
        super().__init__(params=[window])
        self.window = window
        self.value = 0.0
        self._bars: deque[tuple[float, float]] = deque(maxlen=window)
        self._price_volume = 0.0
        self._volume = 0.0
        self._price_sum = 0.0
        self._volume_bars = 0  # bars in the window with volume > 0
        self._updates = 0

    def handle_bar(self, bar: Bar) -> None:
        """Update with a bar (typical price and volume)."""
        self.update_raw(
            (bar.high.as_double() + bar.low.as_double() + bar.close.as_double()) / 3.0,
            bar.volume.as_double(),
        )

    def update_raw(self, price: float, volume: float) -> None:
        """Update with a typical ``price`` and its ``volume``."""
        volume = volume if volume > 0.0 else 0.0
        if len(self._bars) == self.window:
            old_price, old_volume = self._bars[0]
            self._price_volume -= old_price * old_volume
            self._volume -= old_volume
            self._price_sum -= old_price
            self._volume_bars -= old_volume > 0.0
        self._bars.append((price, volume))
        self._volume_bars += volume > 0.0
        self._price_volume += price * volume
        self._volume += volume
        self._price_sum += price
        self._updates += 1
        if self._updates % self._RESUM_EVERY == 0:
            self._price_volume = math.fsum(p * v for p, v in self._bars)
            self._volume = math.fsum(v for _, v in self._bars)
            self._price_sum = math.fsum(p for p, _ in self._bars)
        if self._volume_bars > 0:
            self.value = self._price_volume / self._volume
        else:
            self.value = self._price_sum / len(self._bars)
        self._set_has_inputs(True)
        if not self.initialized and len(self._bars) >= self.window:
            self._set_initialized(True)

    def _reset(self) -> None:
        self.value = 0.0
        self._bars.clear()
        self._price_volume = 0.0
        self._volume = 0.0
        self._price_sum = 0.0
        self._volume_bars = 0
        self._updates = 0


def _window_mean(values: deque[float]) -> float:
    """Σ values / n, summed left to right in doubles: Nautilus' ``fast_mean`` (so its
    ``SimpleMovingAverage`` value) bit for bit. A plain loop, not ``sum()``: Python 3.12's
    ``sum`` of floats compensates, which would not be the same number."""
    total = 0.0
    for value in values:
        total += value
    return total / len(values)


class WindowMean(Indicator):
    """Nautilus ``SimpleMovingAverage(period)`` fed with ``update_raw``, the same value bit for
    bit (same window, same summation order), without the numpy array Nautilus builds from its
    window at every update (~10 µs a bar; this costs ~1-2 µs for a 20-bar window).

    Initialised once ``period`` values have been seen.

    Attributes
    ----------
    value : float
        The mean of the last ``period`` values (of all values before that many).
    count : int
        Values seen since the last reset.
    """

    def __init__(self, period: int) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, was {period}")
        super().__init__(params=[period])
        self.period = period
        self.value = 0.0
        self.count = 0
        self._inputs: deque[float] = deque(maxlen=period)

    def update_raw(self, value: float) -> None:
        """Add ``value`` to the window."""
        self._inputs.append(value)
        self.value = _window_mean(self._inputs)
        self.count += 1
        if not self.initialized:
            self._set_has_inputs(True)
            if self.count >= self.period:
                self._set_initialized(True)

    def _reset(self) -> None:
        self._inputs.clear()
        self.value = 0.0
        self.count = 0


class WindowBands(Indicator):
    """Nautilus ``BollingerBands(period, k)`` (simple moving average) fed with ``update_raw``:
    the same ``upper``/``middle``/``lower`` bit for bit (the typical price ``(h + l + c) / 3``,
    the mean as :class:`WindowMean`, the population standard deviation summed in window order
    as Nautilus' ``fast_std_with_mean``), without the two numpy arrays Nautilus builds from its
    windows at every update (~20 µs a bar).

    Initialised once ``period`` values have been seen.
    """

    def __init__(self, period: int, k: float) -> None:
        if period <= 0:
            raise ValueError(f"period must be positive, was {period}")
        if not k > 0.0:
            raise ValueError(f"k must be positive, was {k}")
        super().__init__(params=[period, k])
        self.period = period
        self.k = k
        self.upper = 0.0
        self.middle = 0.0
        self.lower = 0.0
        self._prices: deque[float] = deque(maxlen=period)

    def update_raw(self, high: float, low: float, close: float) -> None:
        """Add the typical price of ``high``, ``low``, ``close`` to the window."""
        prices = self._prices
        prices.append((high + low + close) / 3.0)
        if not self.initialized:
            self._set_has_inputs(True)
            if len(prices) >= self.period:
                self._set_initialized(True)
        mean = _window_mean(prices)
        total = 0.0
        for price in prices:
            deviation = price - mean
            total += deviation * deviation
        width = self.k * math.sqrt(total / len(prices))
        self.upper = mean + width
        self.middle = mean
        self.lower = mean - width

    def _reset(self) -> None:
        self._prices.clear()
        self.upper = 0.0
        self.middle = 0.0
        self.lower = 0.0
