"""Walk-forward windows over a bar index: option checks, and the bars inside each window.

The windows come from :func:`research.cv.time_walk_forward` (by calendar time, half-open
``[train_start, train_end)`` then ``[test_start, test_end)`` with ``test_start = train_end``; no
partial last window). :func:`bar_windows` maps them to the first and last bar inside each, which
is what a node's inclusive ``start``/``end`` and a fit on the train bars need.
"""

import pandas as pd

from grodt.core.errors import ConfigError
from research.cv import parse_duration

__all__ = ["Window", "bar_windows", "check_windows"]

Window = tuple[pd.Timestamp, pd.Timestamp, pd.Timestamp, pd.Timestamp]
"""``(train_start, train_end, test_start, test_end)``."""


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
