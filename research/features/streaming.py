"""Streaming features: one bar at a time, inside an actor or a strategy.

>>> features = StreamingFeatures(FeatureSet.from_yaml("node_configs/features/default.yaml"))
>>> def on_bar(self, bar):          # in a Strategy or Actor
...     values = features.update(bar)          # {column: float}, NaN while warming up
>>> def on_data(self, data):        # RegimeProbabilities from the regime actor
...     features.update_regime(data)

State is kept per bar type, so one instance serves every instrument of a component. A bar type
named as a ``reference`` by a correlation/beta feature must be updated too (its latest close is
what the other instruments' features read); update it first when both close at the same time,
as the batch side reads the reference's close at or before each bar.
"""

import math
from typing import Any

from research.features.base import BarValues
from research.features.base import FeatureStream
from research.features.spec import FeatureSet

__all__ = ["StreamingFeatures"]


class StreamingFeatures:
    """Per-bar feature values equal to :func:`~research.features.batch.compute_batch`'s."""

    def __init__(self, feature_set: FeatureSet) -> None:
        self.feature_set = feature_set
        self._streams: dict[str, list[tuple[tuple[str, ...], FeatureStream]]] = {}
        self._closes: dict[str, float] = dict.fromkeys(feature_set.references, math.nan)
        self._regimes: dict[str, tuple[float, float, float]] = {}

    def update(self, bar: Any) -> dict[str, float]:
        """Feed a Nautilus ``Bar``; returns ``{column: value}`` for its bar type."""
        bar_type = bar.bar_type
        return self.update_values(
            str(bar_type),
            str(bar_type.instrument_id),
            BarValues(
                ts=bar.ts_event,
                open=bar.open.as_double(),
                high=bar.high.as_double(),
                low=bar.low.as_double(),
                close=bar.close.as_double(),
                volume=bar.volume.as_double(),
            ),
        )

    def update_values(self, bar_type: str, instrument_id: str, bar: BarValues) -> dict[str, float]:
        """Feed one bar given as floats; its ``references`` and ``regime`` are set here."""
        if bar_type in self._closes:
            self._closes[bar_type] = bar.close
        streams = self._streams.get(bar_type)
        if streams is None:
            streams = [(spec.columns, spec.definition.stream()) for spec in self.feature_set]
            self._streams[bar_type] = streams
        bar.references = self._closes
        bar.regime = self._regimes.get(instrument_id)
        out: dict[str, float] = {}
        for columns, stream in streams:
            out.update(zip(columns, stream.update(bar), strict=True))
        return out

    def update_regime(self, record: Any) -> None:
        """Feed a ``RegimeProbabilities`` record (its instrument's later bars read it)."""
        self._regimes[str(record.instrument_id)] = (
            float(record.p_bull),
            float(record.p_bear),
            float(record.p_sideways),
        )
