"""How a strategy's size follows the regime: soft blending or hard gating on the regime labels.

Pure functions of a regime probability vector (``grodt.core.messages.REGIME_LABELS``) and a
strategy's affinity per label; strategies size with them and research evaluates them on the same
code.
"""

from collections.abc import Mapping
from typing import Literal

from grodt.core.messages import REGIME_LABELS

__all__ = ["GatingMode", "regime_scale", "validate_affinity"]

GatingMode = Literal["soft", "hard"]


def validate_affinity(affinity: Mapping[str, float], field: str = "regime_affinity") -> None:
    """Raise ``ValueError`` naming ``field.<label>`` for an unknown label or a value outside
    [0, 1]."""
    for label, value in affinity.items():
        if label not in REGIME_LABELS:
            raise ValueError(
                f"{field}.{label}: unknown regime label (expected one of {list(REGIME_LABELS)})",
            )
        if not (isinstance(value, int | float) and 0.0 <= float(value) <= 1.0):
            raise ValueError(f"{field}.{label}: affinity must be in [0, 1], was {value!r}")


def regime_scale(
    probabilities: Mapping[str, float],
    affinity: Mapping[str, float],
    gating: GatingMode = "soft",
    most_likely: str | None = None,
) -> float:
    """The regime multiplier of a strategy's size, in [0, 1].

    Parameters
    ----------
    probabilities : Mapping[str, float]
        p(regime) over ``REGIME_LABELS`` (summing to 1).
    affinity : Mapping[str, float]
        The strategy's affinity per label in [0, 1]; a missing label counts as 0.
    gating : {"soft", "hard"}
        ``soft``: Σ p·affinity (continuous blending). ``hard``: 1 when the most likely regime has
        a positive affinity, else 0.
    most_likely : str, optional
        The most likely label as published with the probabilities. Without it (the neutral
        prior), the argmax is taken over ``probabilities``; on a tie the gate is open when any
        of the tied labels has a positive affinity.
    """
    if gating == "soft":
        return sum(p * affinity.get(label, 0.0) for label, p in probabilities.items())
    if gating != "hard":
        raise ValueError(f"regime_gating must be 'soft' or 'hard', was {gating!r}")
    if most_likely is not None:
        return 1.0 if affinity.get(most_likely, 0.0) > 0.0 else 0.0
    top = max(probabilities.values())
    tied = [label for label, p in probabilities.items() if p >= top - 1e-12]
    return 1.0 if any(affinity.get(label, 0.0) > 0.0 for label in tied) else 0.0
