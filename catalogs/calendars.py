"""Exchange calendars (the ``exchange-calendars`` package) for the gap check.

An instrument spec with ``calendar: XNYS`` makes the gap check count only bars missing from the
exchange's trading sessions: weekends, holidays, nights and the early closes of the calendar are
not gaps. Daily bars: a finding per run of missing sessions. Intraday bars: a gap is a finding
only when some of its missing bar closes fall inside a session (after its open, at or before its
close, outside a lunch break); the count is those bars.

Times are int64 ns UTC; session dates are ``datetime64[D]`` (the exchange's session labels).
"""

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError


@lru_cache(maxsize=1)
def calendar_names() -> frozenset[str]:
    """Every calendar name (and alias) exchange-calendars knows, e.g. ``XNYS``, ``NYSE``."""
    import exchange_calendars

    return frozenset(exchange_calendars.get_calendar_names(include_aliases=True))


def check_calendar_name(name: str) -> str:
    """``name`` if exchange-calendars knows it.

    Raises
    ------
    ValueError
        Naming the unknown calendar with a few known ones (pydantic turns it into a field error).
    """
    if name not in calendar_names():
        examples = ", ".join(sorted(n for n in calendar_names() if n.startswith("X"))[:8])
        raise ValueError(f"unknown exchange calendar {name!r} (e.g. {examples}, ...)")
    return name


@dataclass(frozen=True)
class Sessions:
    """The trading sessions of a calendar over a span.

    Attributes
    ----------
    name : str
    timezone : str
        The exchange's zone (IANA).
    dates : np.ndarray
        datetime64[D], shape (s,): session labels, sorted.
    window_start, window_end : np.ndarray
        int64 ns UTC, shape (w,): trading windows (open → close, split at a lunch break),
        sorted; a bar closing at ``t`` is inside one when ``start < t <= end``.
    session_open, session_close : np.ndarray
        int64 ns UTC, shape (s,): each session's open and close (both increasing).
    """

    name: str
    timezone: str
    dates: np.ndarray
    window_start: np.ndarray
    window_end: np.ndarray
    session_open: np.ndarray
    session_close: np.ndarray


def load_sessions(name: str, first_ns: int, last_ns: int) -> Sessions:
    """The sessions of calendar ``name`` from a day before ``first_ns`` to a day after
    ``last_ns`` (ns UTC).

    Raises
    ------
    ConfigError
        When the calendar does not cover the span (its message names the calendar).
    """
    import exchange_calendars
    from exchange_calendars.errors import CalendarError

    day = pd.Timedelta(days=1)
    start = (pd.Timestamp(first_ns, tz="UTC") - day).tz_localize(None).normalize()
    end = (pd.Timestamp(last_ns, tz="UTC") + day).tz_localize(None).normalize()
    try:
        calendar: Any = exchange_calendars.get_calendar(name, start=start, end=end)
    except (CalendarError, ValueError) as e:
        raise ConfigError(
            f"calendar {name}: cannot cover {start.date()}..{end.date()}: {e}"
        ) from None
    opens = _ns(calendar.opens)
    closes = _ns(calendar.closes)
    break_starts = _ns(calendar.break_starts)
    break_ends = _ns(calendar.break_ends)
    has_break = (break_starts != _NAT) & (break_ends != _NAT)
    starts = np.concatenate([opens, break_ends[has_break]])
    ends = np.concatenate([np.where(has_break, break_starts, closes), closes[has_break]])
    order = np.argsort(starts, kind="stable")
    return Sessions(
        name=name,
        timezone=str(calendar.tz),
        dates=calendar.sessions.to_numpy().astype("datetime64[D]"),
        window_start=starts[order],
        window_end=ends[order],
        session_open=opens,
        session_close=closes,
    )


def missing_sessions(sessions: Sessions, present: np.ndarray) -> np.ndarray:
    """Session dates between the first and last present date that have no bar.

    Parameters
    ----------
    present : np.ndarray
        datetime64[D], shape (n,): the session date of each bar, sorted.

    Returns
    -------
    np.ndarray
        datetime64[D], shape (m,), sorted.
    """
    inside = sessions.dates[(sessions.dates > present[0]) & (sessions.dates < present[-1])]
    return inside[~np.isin(inside, present)]


def missing_in_sessions(
    sessions: Sessions, before: np.ndarray, after: np.ndarray, interval_ns: int
) -> tuple[np.ndarray, np.ndarray]:
    """For gaps between bar closes ``before[i]`` and ``after[i]`` (ns UTC, shape (g,)): how many
    of the missing bar closes ``before + k * interval`` (< ``after``) fall in a trading window,
    and how many whole sessions lie in the gap.

    Returns
    -------
    counts, whole : np.ndarray
        int64, shape (g,) each.
    """
    starts, ends = sessions.window_start, sessions.window_end
    counts = np.zeros(before.size, dtype=np.int64)
    for i, (a, b) in enumerate(zip(before.tolist(), after.tolist(), strict=True)):
        last = b - interval_ns  # the last missing bar close, if the grid holds
        first_window = int(np.searchsorted(ends, a, side="right"))
        stop_window = int(np.searchsorted(starts, last, side="left"))
        total = 0
        for w in range(first_window, stop_window):
            low = max(a, int(starts[w]))
            high = min(last, int(ends[w]))
            if high > low:
                # Grid points a + k*I with low < point <= high.
                total += (high - a) // interval_ns - (low - a) // interval_ns
        counts[i] = total
    # A session lies wholly in the gap when all its bar closes (open, close] are in (a, b).
    first_inside = np.searchsorted(sessions.session_open, before, side="left")
    end_inside = np.searchsorted(sessions.session_close, after, side="left")
    whole = np.maximum(end_inside - first_inside, 0).astype(np.int64)
    return counts, whole


_NAT = np.iinfo(np.int64).min


def _ns(series: pd.Series) -> np.ndarray:
    values = pd.DatetimeIndex(series).tz_convert("UTC").tz_localize(None)
    return values.asi8.copy()


__all__ = [
    "Sessions",
    "calendar_names",
    "check_calendar_name",
    "load_sessions",
    "missing_in_sessions",
    "missing_sessions",
]
