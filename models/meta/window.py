"""A fixed-length window of the latest rows, readable as one contiguous array without a copy.

The meta-controller keeps its trailing per-bar returns, turnover and closes in these: each bar
appends one row, each rebalance reads the whole window (oldest first). Stacking a deque of rows
at every rebalance cost more than the features computed from it. Here rows go round the first
half of a buffer twice the window's length; a read copies the rows written since the last
wrap-around (the newest) behind the older ones, so that the window lies in order in one slice of
the buffer: one write per bar, one copy per read.
"""

import numpy as np

__all__ = ["RollingWindow"]


class RollingWindow:
    """The last ``capacity`` rows appended, oldest first.

    Parameters
    ----------
    capacity : int
        Rows kept (older ones drop out, like ``deque(maxlen=capacity)``).
    width : int, optional
        Values per row: rows of shape ``(width,)`` and windows of shape ``(n, width)``; None:
        scalar rows and windows of shape ``(n,)``.
    """

    def __init__(self, capacity: int, width: int | None = None) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1, was {capacity}")
        self.capacity = capacity
        shape = (2 * capacity,) if width is None else (2 * capacity, width)
        self._buffer = np.zeros(shape)
        self._next = 0
        """Where the next row goes, in ``[0, capacity)``."""
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, row: np.ndarray | float) -> None:
        """Append one row (copied: the caller may reuse ``row``)."""
        self._buffer[self._next] = row
        self._next += 1
        if self._next == self.capacity:
            self._next = 0
        if self._count < self.capacity:
            self._count += 1

    def clear(self) -> None:
        self._next = 0
        self._count = 0

    def view(self) -> np.ndarray:
        """The rows held, oldest first: shape ``(len(self),)`` or ``(len(self), width)``.

        A read-only view into the buffer, valid until the next :meth:`append` (copy it to keep
        it longer).
        """
        start = self._next
        if self._count < self.capacity:  # not yet wrapped: rows 0 .. count-1 are in order
            window = self._buffer[: self._count]
        else:  # rows start .. capacity-1 are the oldest; 0 .. start-1 (newest) follow them
            self._buffer[self.capacity : self.capacity + start] = self._buffer[:start]
            window = self._buffer[start : start + self.capacity]
        window = window.view()
        window.flags.writeable = False
        return window
