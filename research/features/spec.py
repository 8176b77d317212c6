"""Feature specs and feature sets: what to compute, read from YAML.

A feature set is a YAML list of features (or a mapping with ``name`` and ``features``)::

    name: default
    features:
      - {kind: sma, period: 20}                 # column "sma_20"
      - {name: ret_5, kind: log_return, periods: 5}
      - {kind: correlation, reference: SPX.SAMPLE-1-DAY-LAST-EXTERNAL, window: 60}
      - {kind: regime}                          # columns regime_bull, regime_bear, regime_sideways

Each feature has a name (default: the kind and its numeric parameters), a kind, parameters, a
warm-up in bars and a version (a hash of the kind's definition and the parameters). The set's
version hashes its features' names and versions in order.
"""

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from research.features.base import FeatureDefinition
from research.features.base import FeatureDefinitionError
from research.features.regime import RegimeFeature
from research.features.statistical import BetaFeature
from research.features.statistical import ConditionalValueAtRiskFeature
from research.features.statistical import CorrelationFeature
from research.features.statistical import DrawdownFeature
from research.features.statistical import LogReturnFeature
from research.features.statistical import ValueAtRiskFeature
from research.features.statistical import VolatilityFeature
from research.features.technical import AverageTrueRangeFeature
from research.features.technical import BollingerWidthFeature
from research.features.technical import ExponentialMovingAverageFeature
from research.features.technical import MacdFeature
from research.features.technical import OnBalanceVolumeFeature
from research.features.technical import RelativeStrengthIndexFeature
from research.features.technical import SimpleMovingAverageFeature
from research.features.technical import VolumeWeightedAveragePriceFeature
from research.features.technical import VolumeZScoreFeature

__all__ = ["FEATURE_KINDS", "FeatureSet", "FeatureSpec"]

FEATURE_KINDS: dict[str, type[FeatureDefinition]] = {
    cls.kind: cls
    for cls in (
        SimpleMovingAverageFeature,
        ExponentialMovingAverageFeature,
        RelativeStrengthIndexFeature,
        MacdFeature,
        BollingerWidthFeature,
        AverageTrueRangeFeature,
        OnBalanceVolumeFeature,
        VolumeWeightedAveragePriceFeature,
        VolumeZScoreFeature,
        LogReturnFeature,
        VolatilityFeature,
        CorrelationFeature,
        BetaFeature,
        ValueAtRiskFeature,
        ConditionalValueAtRiskFeature,
        DrawdownFeature,
        RegimeFeature,
    )
}
"""Every feature kind by its YAML ``kind``."""


@dataclass(frozen=True)
class FeatureSpec:
    """One feature of a set: a name, a kind and its parameters.

    Attributes
    ----------
    name : str
        Column name (multi-output kinds add ``_<output>``).
    kind : str
        A key of :data:`FEATURE_KINDS`.
    params : dict
        The kind's parameters (defaults filled in by :attr:`definition`).
    """

    name: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def create(cls, kind: str, name: str | None = None, **params: Any) -> "FeatureSpec":
        """A spec with the default name: the kind and its numeric parameters (``sma_20``)."""
        spec = cls(name or kind, kind, dict(params))
        if not name:
            numbers = [
                str(value).replace(".", "p")
                for value in spec.definition.params.values()
                if isinstance(value, int | float) and not isinstance(value, bool)
            ]
            spec = cls("_".join([kind, *numbers]), kind, dict(params))
        return spec

    @cached_property
    def definition(self) -> FeatureDefinition:
        """The kind's definition with these parameters (validated)."""
        kind = FEATURE_KINDS.get(self.kind)
        if kind is None:
            raise FeatureDefinitionError(
                f"feature {self.name!r}: unknown kind {self.kind!r}; known: {sorted(FEATURE_KINDS)}"
            )
        try:
            return kind(**self.params)
        except FeatureDefinitionError as e:
            raise FeatureDefinitionError(f"feature {self.name!r}: {e}") from None

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(
            self.name if not output else f"{self.name}_{output}"
            for output in self.definition.outputs
        )

    @property
    def warm_up(self) -> int:
        """Bars (the current one included) before the first value."""
        return self.definition.warm_up

    @property
    def version(self) -> str:
        return self.definition.version()

    def describe(self) -> dict[str, Any]:
        """Name, kind, parameters (defaults filled in), warm-up, version and columns."""
        return {
            "name": self.name,
            "kind": self.kind,
            "params": self.definition.params,
            "warm_up": self.warm_up,
            "version": self.version,
            "columns": list(self.columns),
        }


@dataclass(frozen=True)
class FeatureSet:
    """An ordered list of features with distinct column names."""

    features: tuple[FeatureSpec, ...]
    name: str = "features"

    def __post_init__(self) -> None:
        seen: dict[str, str] = {}
        for spec in self.features:
            spec.definition  # noqa: B018 - validates kind and parameters now, not at first use
            for column in spec.columns:
                if column in seen:
                    raise FeatureDefinitionError(
                        f"feature set {self.name!r}: column {column!r} of feature {spec.name!r} "
                        f"is also produced by {seen[column]!r}; give one a different name"
                    )
                seen[column] = spec.name

    def __iter__(self) -> Iterator[FeatureSpec]:
        return iter(self.features)

    def __len__(self) -> int:
        return len(self.features)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(column for spec in self.features for column in spec.columns)

    @property
    def warm_up(self) -> int:
        """The longest warm-up of the set, in bars."""
        return max((spec.warm_up for spec in self.features), default=0)

    @property
    def references(self) -> tuple[str, ...]:
        """Reference bar types any feature needs, in first-use order."""
        found: dict[str, None] = {}
        for spec in self.features:
            found.update(dict.fromkeys(spec.definition.references))
        return tuple(found)

    @property
    def needs_regime(self) -> bool:
        return any(spec.definition.needs_regime for spec in self.features)

    @property
    def version(self) -> str:
        """16 hex digits of SHA-256 over the features' names and versions, in order."""
        text = "\n".join(f"{spec.name}={spec.version}" for spec in self.features)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @classmethod
    def from_yaml(cls, path: str | Path) -> "FeatureSet":
        """Read a feature set; errors name the file, the feature's position and the field."""
        path = Path(path)
        try:
            document = yaml.safe_load(path.read_text())
        except FileNotFoundError:
            raise FeatureDefinitionError(f"{path}: no such feature-set file") from None
        except yaml.YAMLError as e:
            raise FeatureDefinitionError(f"{path}: not valid YAML: {e}") from None
        name = path.stem
        items = document
        if isinstance(document, dict):
            unknown = sorted(set(document) - {"name", "features"})
            if unknown:
                raise FeatureDefinitionError(
                    f"{path}: unknown key(s) {unknown}; a feature set has 'name' and 'features'"
                )
            name = str(document.get("name", name))
            items = document.get("features")
        if not isinstance(items, list) or not items:
            raise FeatureDefinitionError(
                f"{path}: a feature set is a non-empty list of features "
                "(or 'features:' holding one)"
            )
        specs = []
        for position, item in enumerate(items, start=1):
            where = f"{path}: feature {position}"
            if not isinstance(item, dict) or "kind" not in item:
                raise FeatureDefinitionError(f"{where}: a mapping with a 'kind' is expected")
            params = {k: v for k, v in item.items() if k not in {"kind", "name"}}
            try:
                specs.append(FeatureSpec.create(str(item["kind"]), item.get("name"), **params))
            except FeatureDefinitionError as e:
                raise FeatureDefinitionError(f"{where}: {e}") from None
        try:
            return cls(tuple(specs), name=name)
        except FeatureDefinitionError as e:
            raise FeatureDefinitionError(f"{path}: {e}") from None
