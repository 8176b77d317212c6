"""The observation contract between the training env and the strategy that runs the policy.

A policy sees, at bar t, the feature row of bar t (the columns of a research feature set, in the
set's order) normalised, and the position it holds::

    obs = [clip((x_1 - mean_1) / scale_1, -clip, clip), ..., (same for x_n), position]

- **features** ``x``: float values of ``feature_names`` at bar t, computed as of the bar's close
  (batch from the gold table or :mod:`research.features.matrix` for training, streaming from
  ``research.features.StreamingFeatures`` in the strategy; the feature library tests that the
  two are equal). No window: one row per observation (RecurrentPPO carries memory itself).
- **normalisation**: ``mean`` and ``scale`` per feature, fitted on the training rows only
  (:meth:`ObservationSpec.fit`; NaN rows ignored); without them the features pass unscaled.
  Values are clipped to ±``clip`` after scaling.
- **NaN** (a feature still warming up, a missing regime record): 0.0 after normalisation, i.e.
  the training mean. The env starts episodes after the feature set's warm-up, so this only
  matters at a strategy's first bars.
- **position** (when ``include_position``): the target position the policy holds, in action
  units (:mod:`models.rl.actions`): the last target *after* the safety layer, in [-1, 1]; 0 before
  the first action. The env and the strategy both pass that value, not a marked-to-market
  weight, so the observation does not depend on how fills are booked.

The spec travels with the trained models in the specialists' manifest (:meth:`to_dict` /
:meth:`from_dict`) and the strategy checks its feature set's columns against ``feature_names``.
"""

import math
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from dataclasses import fields
from dataclasses import replace
from typing import Any

import numpy as np

__all__ = ["ObservationSpec"]


@dataclass(frozen=True)
class ObservationSpec:
    """What a policy observes; builds observation vectors (float32, shape ``(n_obs,)``).

    Attributes
    ----------
    feature_names : tuple[str, ...]
        Feature columns in order (``research.features.FeatureSet.columns``).
    feature_set : str
        Name of the feature set (provenance; e.g. ``"default"``).
    feature_set_version : str
        ``FeatureSet.version`` of the set the models were trained on ("" when unknown).
    mean, scale : tuple[float, ...] | None
        Per-feature normalisation (both or neither), in the features' own units.
    clip : float
        Bound of the normalised features (positive).
    include_position : bool
        Append the held target position as the last element.
    """

    feature_names: tuple[str, ...]
    feature_set: str = "features"
    feature_set_version: str = ""
    mean: tuple[float, ...] | None = None
    scale: tuple[float, ...] | None = None
    clip: float = 10.0
    include_position: bool = True
    _offset: np.ndarray = field(init=False, repr=False, compare=False)
    _inverse: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = tuple(str(name) for name in self.feature_names)
        object.__setattr__(self, "feature_names", names)
        if not names:
            raise ValueError("observation: feature_names is empty")
        duplicated = sorted({name for name in names if names.count(name) > 1})
        if duplicated:
            raise ValueError(f"observation: feature_names repeats {duplicated}")
        if (self.mean is None) != (self.scale is None):
            raise ValueError("observation: give both mean and scale, or neither")
        if not (math.isfinite(self.clip) and self.clip > 0):
            raise ValueError(f"observation: clip must be a positive number, was {self.clip!r}")
        n = len(names)
        if self.mean is not None and self.scale is not None:
            mean = tuple(float(v) for v in self.mean)
            scale = tuple(float(v) for v in self.scale)
            for label, values in (("mean", mean), ("scale", scale)):
                if len(values) != n:
                    raise ValueError(
                        f"observation: {label} has {len(values)} values for {n} features"
                    )
            bad = [names[i] for i, s in enumerate(scale) if not (math.isfinite(s) and s > 0)]
            bad += [names[i] for i, m in enumerate(mean) if not math.isfinite(m)]
            if bad:
                raise ValueError(f"observation: non-finite mean or non-positive scale of {bad}")
            object.__setattr__(self, "mean", mean)
            object.__setattr__(self, "scale", scale)
            offset = np.asarray(mean, dtype=np.float64)
            inverse = 1.0 / np.asarray(scale, dtype=np.float64)
        else:
            offset = np.zeros(n)
            inverse = np.ones(n)
        object.__setattr__(self, "_offset", offset)
        object.__setattr__(self, "_inverse", inverse)

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    @property
    def n_obs(self) -> int:
        """Length of an observation vector."""
        return self.n_features + int(self.include_position)

    def fit(self, features: np.ndarray) -> "ObservationSpec":
        """A copy with ``mean``/``scale`` from training rows ``features`` (n_rows, n_features).

        Per column: the mean and population standard deviation over its finite values; a
        constant or empty column gets scale 1 (and mean 0 when empty).
        """
        features = np.asarray(features, dtype=np.float64)
        if features.ndim != 2 or features.shape[1] != self.n_features:
            raise ValueError(
                f"observation.fit: expected shape (n_rows, {self.n_features}), got {features.shape}"
            )
        finite = np.isfinite(features)
        counts = finite.sum(axis=0)
        filled = np.where(finite, features, 0.0)
        present = counts > 0
        mean = np.divide(filled.sum(axis=0), counts, out=np.zeros(self.n_features), where=present)
        squares = np.where(finite, (features - mean) ** 2, 0.0).sum(axis=0)
        std = np.sqrt(np.divide(squares, counts, out=np.zeros(self.n_features), where=present))
        scale = np.where(std > 1e-12, std, 1.0)
        return replace(self, mean=tuple(mean.tolist()), scale=tuple(scale.tolist()))

    def normalise(self, features: np.ndarray) -> np.ndarray:
        """Normalised, clipped features of any leading shape (..., n_features), float32; NaN → 0."""
        features = np.asarray(features, dtype=np.float64)
        if features.shape[-1] != self.n_features:
            raise ValueError(
                f"observation: expected {self.n_features} features "
                f"({', '.join(self.feature_names[:3])}, ...), got {features.shape[-1]}"
            )
        out = (features - self._offset) * self._inverse
        np.clip(out, -self.clip, self.clip, out=out)
        out[~np.isfinite(out)] = 0.0
        return out.astype(np.float32)

    def build(self, features_row: np.ndarray | Sequence[float], position: float) -> np.ndarray:
        """The observation of one bar: float32, shape ``(n_obs,)``.

        Parameters
        ----------
        features_row : array-like, shape (n_features,)
            The bar's feature values in ``feature_names`` order (NaN allowed).
        position : float
            The held target position in action units, [-1, 1] (ignored when
            ``include_position`` is False).
        """
        row = np.asarray(features_row, dtype=np.float64)
        if row.ndim != 1:
            raise ValueError(f"observation.build: features_row must be 1-D, got {row.shape}")
        normalised = self.normalise(row)
        if not self.include_position:
            return normalised
        # Written into one preallocated vector: np.append's concatenate cost more than the
        # normalisation itself on the strategy's per-bar path.
        obs = np.empty(self.n_features + 1, dtype=np.float32)
        obs[:-1] = normalised
        obs[-1] = np.float32(position)
        return obs

    def build_from_mapping(self, values: Mapping[str, float], position: float) -> np.ndarray:
        """:meth:`build` from ``{column: value}`` (``StreamingFeatures.update``'s result);
        a missing column raises ``KeyError`` naming it."""
        missing = [name for name in self.feature_names if name not in values]
        if missing:
            raise KeyError(f"observation: the feature values lack {missing}")
        return self.build([values[name] for name in self.feature_names], position)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (the manifest's ``observation``)."""
        return {
            "feature_names": list(self.feature_names),
            "feature_set": self.feature_set,
            "feature_set_version": self.feature_set_version,
            "mean": None if self.mean is None else list(self.mean),
            "scale": None if self.scale is None else list(self.scale),
            "clip": self.clip,
            "include_position": self.include_position,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "ObservationSpec":
        unknown = sorted(set(data) - {item.name for item in fields(cls) if item.init})
        if unknown:
            raise ValueError(f"observation: unknown key(s) {unknown}")
        if "feature_names" not in data:
            raise ValueError("observation: 'feature_names' is required")
        return cls(
            feature_names=tuple(data["feature_names"]),
            feature_set=str(data.get("feature_set", "features")),
            feature_set_version=str(data.get("feature_set_version", "")),
            mean=None if data.get("mean") is None else tuple(data["mean"]),
            scale=None if data.get("scale") is None else tuple(data["scale"]),
            clip=float(data.get("clip", 10.0)),
            include_position=bool(data.get("include_position", True)),
        )
