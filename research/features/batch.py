"""Batch features: a whole bar frame at once, equal to the streaming values on every bar.

>>> frame = read_bars_frame("data/catalog", "SPX.SAMPLE-1-DAY-LAST-EXTERNAL")
>>> features = compute_batch(frame, FeatureSet.from_yaml("node_configs/features/default.yaml"))
"""

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from research.features.base import BarArrays
from research.features.base import FeatureDefinitionError
from research.features.regime import align_regimes
from research.features.spec import FeatureSet

__all__ = ["align_closes", "bar_arrays", "compute_batch"]

_BAR_COLUMNS = ("open", "high", "low", "close", "volume")


def align_closes(ts: np.ndarray, reference: pd.DataFrame | pd.Series) -> np.ndarray:
    """The reference's latest close at or before each ``ts`` (int64 ns), NaN before its first."""
    closes = reference["close"] if isinstance(reference, pd.DataFrame) else reference
    reference_ts = pd.DatetimeIndex(closes.index).as_unit("ns").asi8
    position = np.searchsorted(reference_ts, ts, side="right") - 1
    out = np.full(ts.shape[0], math.nan)
    found = position >= 0
    out[found] = closes.to_numpy(dtype=np.float64)[position[found]]
    return out


def bar_arrays(
    bars_frame: pd.DataFrame,
    references: Mapping[str, pd.DataFrame | pd.Series] | None = None,
    regimes: pd.DataFrame | None = None,
) -> BarArrays:
    """Arrays of a bar frame (:func:`catalogs.reader.read_bars_frame` layout: UTC DatetimeIndex
    of bar closes, float columns open/high/low/close/volume), with references and regimes
    aligned as of each bar."""
    missing = [name for name in _BAR_COLUMNS if name not in bars_frame.columns]
    if missing:
        raise FeatureDefinitionError(f"bar frame: missing column(s) {missing}")
    index = pd.DatetimeIndex(bars_frame.index)
    if not index.is_monotonic_increasing:
        raise FeatureDefinitionError("bar frame: the index is not sorted by bar close")
    ts = index.as_unit("ns").asi8
    columns = {name: bars_frame[name].to_numpy(dtype=np.float64) for name in _BAR_COLUMNS}
    return BarArrays(
        ts=ts,
        **columns,
        references={key: align_closes(ts, frame) for key, frame in (references or {}).items()},
        regimes=align_regimes(ts, regimes) if regimes is not None else None,
    )


def compute_batch(
    bars_frame: pd.DataFrame,
    feature_set: FeatureSet,
    references: Mapping[str, pd.DataFrame | pd.Series] | None = None,
    regimes: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every feature of the set on every bar of one instrument.

    Parameters
    ----------
    bars_frame : pd.DataFrame
        One instrument's bars: UTC DatetimeIndex of bar closes (sorted), float columns
        open/high/low/close/volume.
    feature_set : FeatureSet
    references : Mapping[str, pd.DataFrame | pd.Series] | None
        Reference bar type → its bars (or closes) for correlation/beta features.
    regimes : pd.DataFrame | None
        Regime records of the instrument (``ts_event``, ``p_bull``, ``p_bear``, ``p_sideways``)
        for the regime feature.

    Returns
    -------
    pd.DataFrame
        Index of ``bars_frame``; one float64 column per :attr:`FeatureSet.columns`, NaN before
        each feature's warm-up.

    Raises
    ------
    FeatureDefinitionError
        A reference bar type or the regime records the set needs were not given.
    """
    given = dict(references or {})
    absent = [name for name in feature_set.references if name not in given]
    if absent:
        raise FeatureDefinitionError(
            f"feature set {feature_set.name!r}: no bars given for {absent}"
        )
    if feature_set.needs_regime and regimes is None:
        raise FeatureDefinitionError(
            f"feature set {feature_set.name!r}: the regime feature needs regime records"
        )
    arrays = bar_arrays(bars_frame, given, regimes)
    columns: dict[str, np.ndarray] = {}
    for spec in feature_set:
        values = spec.definition.batch(arrays)
        for position, column in enumerate(spec.columns):
            columns[column] = values[:, position]
    return pd.DataFrame(columns, index=bars_frame.index)
