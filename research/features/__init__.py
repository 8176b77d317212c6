"""Features from one definition, computed two ways with equal values (no train/serve skew).

- :mod:`research.features.spec`: :class:`FeatureSpec` (name, kind, parameters, warm-up, version)
  and :class:`FeatureSet` (a YAML list of them; ``FeatureSet.from_yaml``).
- :mod:`research.features.batch`: :func:`compute_batch` over a bar frame.
- :mod:`research.features.streaming`: :class:`StreamingFeatures` per bar (actors, strategies).
- :mod:`research.features.gold`: the Parquet gold table over a catalog (features, targets,
  lineage to the raw file and row), cached by (catalog fingerprint, feature-set version).
- :mod:`research.features.technical`, :mod:`~research.features.statistical`,
  :mod:`~research.features.regime`: the feature kinds.
"""

from research.features.base import FeatureDefinitionError
from research.features.batch import compute_batch
from research.features.spec import FEATURE_KINDS
from research.features.spec import FeatureSet
from research.features.spec import FeatureSpec
from research.features.streaming import StreamingFeatures

__all__ = [
    "FEATURE_KINDS",
    "FeatureDefinitionError",
    "FeatureSet",
    "FeatureSpec",
    "StreamingFeatures",
    "compute_batch",
]
