"""Champion / challenger: a registered challenger becomes champion only through gates.

::

    from grodt.tracking.registry_gates import PromotionGates, challenge, regime_scorer

    decision = challenge("regime_hmm", regime_scorer(latest_features), PromotionGates())
    decision.promoted, decision.reasons, decision.figures

The gates, each on the latest window (rows neither model was fitted on):

1. performance: the challenger's out-of-sample score is no worse than the champion's by more
   than ``max_score_drop`` (the regime HMM's score: predictive log-likelihood per bar, nats,
   :mod:`models.regime.scoring`);
2. calibration: the challenger's calibration error is at most ``max_calibration_error`` (the
   regime HMM: |coverage − nominal| of its one-step predictive interval);
3. policy evaluation: when a ``policy_estimate`` hook is given (the off-policy estimate of the
   decisions each model would make, issue 20), the challenger's estimate is not below the
   champion's. Without the hook the gate is reported as not evaluated.

A passed challenge promotes the challenger (an audited ``promote`` whose details hold every
figure); a failed one is an audited ``refuse`` that moves nothing
(:mod:`grodt.tracking.registry_lifecycle`). With no champion yet, gates 1 and 3 pass vacuously.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np

from grodt.core.errors import GrodtError
from grodt.tracking.registry import LoadedModel
from grodt.tracking.registry import load_model
from grodt.tracking.registry_lifecycle import AliasMove
from grodt.tracking.registry_lifecycle import move_alias
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import resolve_store
from models.regime.scoring import score_window

__all__ = [
    "GateDecision",
    "ModelScore",
    "PromotionGates",
    "challenge",
    "regime_bars_scorer",
    "regime_scorer",
]


@dataclass(frozen=True)
class ModelScore:
    """A model's out-of-sample figures on the latest window: ``score`` (higher is better),
    ``calibration_error`` (≥ 0, lower is better) and any other figures to record."""

    score: float
    calibration_error: float
    figures: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class PromotionGates:
    """Margins of the gates (see the module docstring).

    Parameters
    ----------
    max_score_drop : float, default 0.01
        How far the challenger's score may fall below the champion's (score units; for the
        regime HMM nats per bar).
    max_calibration_error : float, default 0.05
        The largest calibration error a challenger may have (coverage units).
    """

    max_score_drop: float = 0.01
    max_calibration_error: float = 0.05


@dataclass(frozen=True)
class GateDecision:
    """The outcome of :func:`challenge`."""

    promoted: bool
    champion: str | None
    challenger: str
    reasons: list[str]
    figures: dict[str, float]
    audit: AliasMove


def regime_scorer(features: np.ndarray, nominal: float = 0.9) -> Callable[[Any], ModelScore]:
    """Score regime HMMs on ``features`` (N, D raw feature rows of the latest window)."""

    def score(model: Any) -> ModelScore:
        result = score_window(model, features, nominal)
        return ModelScore(
            score=result.log_likelihood_per_bar,
            calibration_error=result.calibration_error,
            figures={"coverage": result.coverage, "bars": float(result.bars)},
        )

    return score


def regime_bars_scorer(
    closes: np.ndarray,
    first: int,
    nominal: float = 0.9,
) -> Callable[[Any], ModelScore]:
    """Score regime HMMs on the bars from index ``first`` of ``closes`` (bars before it only
    warm the features up), each with its own features, so models on different feature sets
    compare on the same bars."""
    from models.regime.features import FeatureExtractor

    def score(model: Any) -> ModelScore:
        features = FeatureExtractor(model.features).transform(np.asarray(closes, dtype=float))
        latest = features[first:]
        latest = latest[np.isfinite(latest).all(axis=1)]
        return regime_scorer(latest, nominal)(model)

    return score


def _load(ref: str, store: TrackingStore) -> LoadedModel | None:
    try:
        return load_model(ref, store=store, offline_fallback=False)
    except GrodtError:
        return None


def challenge(
    name: str,
    scorer: Callable[[Any], ModelScore],
    gates: PromotionGates | None = None,
    store: TrackingStore | None = None,
    policy_estimate: Callable[[LoadedModel], float | None] | None = None,
    champion_alias: str = "champion",
    challenger_alias: str = "challenger",
) -> GateDecision:
    """Run the gates on ``name@challenger`` against ``name@champion`` and promote or refuse
    (both audited). Raises GrodtError when there is no challenger."""
    gates = gates or PromotionGates()
    store = store or resolve_store()
    challenger = _load(f"{name}@{challenger_alias}", store)
    if challenger is None:
        raise GrodtError(f"{name}@{challenger_alias}: no such version in {store.display_uri}")
    champion = _load(f"{name}@{champion_alias}", store)
    reasons: list[str] = []
    challenger_score = scorer(challenger.model)
    figures: dict[str, float] = {
        "challenger.score": challenger_score.score,
        "challenger.calibration_error": challenger_score.calibration_error,
        **{f"challenger.{k}": v for k, v in challenger_score.figures.items()},
        "gate.max_score_drop": gates.max_score_drop,
        "gate.max_calibration_error": gates.max_calibration_error,
    }
    passed = True
    if champion is not None:
        champion_score = scorer(champion.model)
        figures["champion.score"] = champion_score.score
        figures["champion.calibration_error"] = champion_score.calibration_error
        figures.update({f"champion.{k}": v for k, v in champion_score.figures.items()})
        drop = champion_score.score - challenger_score.score
        figures["score_drop"] = drop
        if not (math.isfinite(challenger_score.score) and drop <= gates.max_score_drop):
            passed = False
            reasons.append(
                f"performance: challenger score {challenger_score.score:.4f} is "
                f"{drop:.4f} below the champion's {champion_score.score:.4f} "
                f"(allowed {gates.max_score_drop})",
            )
    if not challenger_score.calibration_error <= gates.max_calibration_error:
        passed = False
        reasons.append(
            f"calibration: error {challenger_score.calibration_error:.4f} exceeds "
            f"{gates.max_calibration_error}",
        )
    if policy_estimate is not None and champion is not None:
        ours, theirs = policy_estimate(challenger), policy_estimate(champion)
        if ours is not None and theirs is not None:
            figures["challenger.policy_estimate"] = ours
            figures["champion.policy_estimate"] = theirs
            if not ours >= theirs:
                passed = False
                reasons.append(
                    f"policy evaluation: challenger {ours:.4f} below champion {theirs:.4f}",
                )
    else:
        figures["policy_estimate_evaluated"] = 0.0
    if passed:
        reasons.append("all gates passed")
    audit = move_alias(
        name,
        champion_alias,
        challenger.version,
        "promote" if passed else "refuse",
        "; ".join(reasons),
        store,
        details={k: f"{v:.6g}" for k, v in figures.items()},
    )
    return GateDecision(
        promoted=passed,
        champion=champion.tag if champion is not None else None,
        challenger=challenger.tag,
        reasons=reasons,
        figures=figures,
        audit=audit,
    )
