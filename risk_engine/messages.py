"""What the HRP target actor tells the risk gate (a plain message-bus topic, in-process)."""

from dataclasses import dataclass
from dataclasses import field

import numpy as np


@dataclass(frozen=True)
class RiskTargets:
    """Target weights and the return scenarios they were fitted on.

    Attributes
    ----------
    ts_event : int
        UNIX ns of the last sample in the window.
    instrument_ids : tuple[str, ...]
        The universe, in column order of ``returns``.
    weights : tuple[float, ...]
        HRP/HERC target weight per instrument (non-negative, summing to 1).
    returns : np.ndarray
        (n_periods, n_instruments) returns of the rolling window, one row per sampling period,
        NaN where an instrument had no price yet. The gate's CVaR limit uses the last rows.
    method : str
        ``textbook``, ``hrp`` or ``herc``.
    model_version : str
        Identifies the fit (method, window end, number of fits).
    """

    ts_event: int
    instrument_ids: tuple[str, ...]
    weights: tuple[float, ...]
    returns: np.ndarray = field(repr=False)
    method: str = "textbook"
    model_version: str = ""

    def target_of(self) -> dict[str, float]:
        """Weights keyed by instrument id."""
        return dict(zip(self.instrument_ids, self.weights, strict=True))
