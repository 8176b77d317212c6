"""Regime probabilities as a feature: the latest RegimeProbabilities record at or before each bar.

Streaming: :class:`~research.features.streaming.StreamingFeatures` keeps each instrument's latest
record (``update_regime``); inside a node the regime actor publishes bar t's record before a
strategy's ``on_bar(t)`` (actors start first), so bar t sees record t. Batch: the records of the
catalog (``grodt regime infer --to-catalog``) or a ``grodt regime infer --out`` Parquet file,
joined as of each bar close. Outputs ``<name>_bull``, ``<name>_bear``, ``<name>_sideways``, in
[0, 1]; NaN before the first record.
"""

import math
from collections.abc import Mapping
from typing import Any
from typing import ClassVar

import numpy as np
import pandas as pd

from research.features.base import REGIME_COLUMNS
from research.features.base import BarArrays
from research.features.base import BarValues
from research.features.base import FeatureDefinition
from research.features.base import FeatureStream

__all__ = ["RegimeFeature", "align_regimes"]

_NAN_ROW = (math.nan, math.nan, math.nan)


class RegimeFeature(FeatureDefinition):
    kind = "regime"
    defaults: ClassVar[Mapping[str, Any]] = {}

    @property
    def outputs(self) -> tuple[str, ...]:
        return REGIME_COLUMNS

    @property
    def needs_regime(self) -> bool:
        return True

    @property
    def warm_up(self) -> int:
        return 1

    def batch(self, bars: BarArrays) -> np.ndarray:
        if bars.regimes is None:
            return np.full((len(bars), len(REGIME_COLUMNS)), math.nan)
        return np.asarray(bars.regimes, dtype=np.float64).reshape(len(bars), len(REGIME_COLUMNS))

    def stream(self) -> FeatureStream:
        return _RegimeStream()


class _RegimeStream(FeatureStream):
    def update(self, bar: BarValues) -> tuple[float, ...]:
        return tuple(bar.regime) if bar.regime is not None else _NAN_ROW


def align_regimes(ts: np.ndarray, records: pd.DataFrame) -> np.ndarray:
    """Probabilities of the latest record at or before each bar close.

    Parameters
    ----------
    ts : np.ndarray
        int64 ns UTC bar closes, shape (n,), sorted.
    records : pd.DataFrame
        Columns ``ts_event`` (int64 ns or UTC datetimes) and ``p_bull``, ``p_bear``,
        ``p_sideways`` (the ``grodt regime infer`` output).

    Returns
    -------
    np.ndarray
        Shape (n, 3): bull, bear, sideways; NaN rows before the first record.
    """
    stamps = records["ts_event"]
    if pd.api.types.is_datetime64_any_dtype(stamps):
        record_ts = pd.DatetimeIndex(stamps).as_unit("ns").asi8
    else:
        record_ts = stamps.to_numpy(dtype=np.int64)
    order = np.argsort(record_ts, kind="stable")
    record_ts = record_ts[order]
    values = records[[f"p_{label}" for label in REGIME_COLUMNS]].to_numpy(dtype=np.float64)[order]
    position = np.searchsorted(record_ts, ts, side="right") - 1
    out = np.full((ts.shape[0], len(REGIME_COLUMNS)), math.nan)
    found = position >= 0
    out[found] = values[position[found]]
    return out
