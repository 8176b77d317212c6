"""Walk-forward windows by time over a bar index, and the bars inside them.

:func:`time_walk_forward` is a stand-in for ``research.cv.time_walk_forward`` (same signature
and meaning: half-open windows ``[train_start, train_end)``, ``[test_start, test_end)`` with
``test_start = train_end``; no partial last window) until that module is committed; the
walk-forward then imports it from there. :func:`bar_windows` maps windows to the first and last
bar inside each, which is what a node's inclusive ``start``/``end`` and a fit need.
"""

import re

import pandas as pd

from grodt.core.errors import ConfigError

__all__ = ["bar_windows", "check_windows", "time_walk_forward"]

_DURATION = re.compile(r"^\s*(\d+)\s*(y|m|w|d|h|min)\s*$")
_UNITS = {"y": "years", "m": "months", "w": "weeks", "d": "days", "h": "hours", "min": "minutes"}

Window = tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]


def parse_duration(text: str) -> pd.DateOffset:
    """``"3y"``, ``"6m"`` (months), ``"2w"``, ``"30d"``, ``"4h"``, ``"15min"``."""
    match = _DURATION.match(str(text))
    if match is None or int(match.group(1)) < 1:
        raise ValueError(
            f"duration {text!r} is not a positive <integer><unit> with unit y, m (months), w, d, "
            "h or min (e.g. '3y', '6m', '30d')",
        )
    return pd.DateOffset(**{_UNITS[match.group(2)]: int(match.group(1))})


def time_walk_forward(
    index: pd.DatetimeIndex,
    train: str,
    test: str,
    step: str | None = None,
    expanding: bool = False,
) -> list[Window]:
    """Half-open ``(train_start, train_end, test_start, test_end)`` windows by calendar time;
    see the module docstring."""
    index = pd.DatetimeIndex(index)
    if len(index) == 0:
        raise ValueError("time_walk_forward needs a non-empty index")
    train_span, test_span = parse_duration(train), parse_duration(test)
    step_span = parse_duration(step) if step is not None else test_span
    first, last = index[0], index[-1]
    folds: list[Window] = []
    fold = 0
    while True:
        test_start = first + train_span + step_span * fold
        test_end = test_start + test_span
        if test_end > last:
            return folds
        train_start = first if expanding else first + step_span * fold
        counts = index.searchsorted([train_start, test_start, test_end])
        if counts[1] > counts[0] and counts[2] > counts[1]:
            folds.append((train_start, test_start, test_start, test_end))
        fold += 1


def check_windows(train: str, test: str, step: str | None) -> None:
    """Durations that parse, and a ``step`` not shorter than ``test`` (overlapping test windows
    have no single stitched path); errors name the option."""
    spans = {}
    for option, text in (("--train", train), ("--test", test), ("--step", step)):
        if text is None:
            continue
        try:
            spans[option] = parse_duration(text)
        except ValueError as e:
            raise ConfigError(f"{option}: {e}") from None
    anchor = pd.Timestamp("2000-01-01")
    if "--step" in spans and anchor + spans["--step"] < anchor + spans["--test"]:
        raise ConfigError(
            f"--step: {step} is shorter than --test {test}: overlapping test windows cannot be "
            "stitched into one out-of-sample path",
        )


def bar_windows(index: pd.DatetimeIndex, windows: list[Window]) -> list[Window]:
    """The first and last bar of ``index`` inside each half-open train and test window
    (inclusive bounds); windows without bars are dropped."""
    found: list[Window] = []
    for train_start, train_end, test_start, test_end in windows:
        train_bars = index[(index >= train_start) & (index < train_end)]
        test_bars = index[(index >= test_start) & (index < test_end)]
        if len(train_bars) and len(test_bars):
            found.append((train_bars[0], train_bars[-1], test_bars[0], test_bars[-1]))
    return found
