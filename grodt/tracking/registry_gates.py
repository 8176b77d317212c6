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
3. policy evaluation (:class:`PolicyValueGate`, for models that choose allocations: the
   meta-controller's bandit policies): on the champion's logged decisions (its
   ``AllocationRecord``s, rebuilt into bandit rounds by :mod:`grodt.forensics.ope_logs`), the
   challenger's off-policy value estimate (:mod:`research.ope`, SNIPS by default) must be at
   least the champion's *realised* value on the same rounds (the mean logged reward: the
   champion chose those actions, so its value there is measured, not estimated) minus
   ``max_value_drop``, and the log must support the challenger's choices (Kish's effective
   sample size of the importance weights at least ``min_effective_sample_size``). Without a
   ``policy`` the gate is reported as not evaluated. A registered meta-controller model
   (:class:`~models.meta.model.MetaModel`) acts on the log through replay
   (:func:`replayed_policy_action_dist`): the run's own meta-controller config with the
   challenger as its ``predictive`` model, choosing among the allocation arms.
   Refused without an estimate when the log has no support for the challenger (it puts
   probability on an arm the logging policy could not take: the champion did not explore).

A passed challenge promotes the challenger (an audited ``promote`` whose details hold every
figure); a failed one is an audited ``refuse`` that moves nothing
(:mod:`grodt.tracking.registry_lifecycle`). With no champion yet, gate 1 passes vacuously (gate 3
compares with the logged rewards, whoever logged them).
"""

import dataclasses
import math
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from actors.meta_controller import load_meta_model
from grodt.core.errors import GrodtError
from grodt.forensics.ope_logs import BanditLog
from grodt.forensics.replay import replayed_action_dist
from grodt.tracking.native import native_dir_of
from grodt.tracking.registry import LoadedModel
from grodt.tracking.registry import load_model
from grodt.tracking.registry_lifecycle import AliasMove
from grodt.tracking.registry_lifecycle import move_alias
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import resolve_store
from models.meta.model import MetaModel
from models.regime.scoring import score_window
from research.ope.bootstrap import bootstrap_ci
from research.ope.diagnostics import effective_sample_size
from research.ope.estimators import direct_method
from research.ope.estimators import doubly_robust
from research.ope.estimators import importance_weights
from research.ope.estimators import ipw
from research.ope.estimators import self_normalized_doubly_robust
from research.ope.estimators import snips
from research.ope.estimators import switch_doubly_robust
from research.ope.reward_model import CrossFittedRewardModel

__all__ = [
    "GateDecision",
    "ModelScore",
    "PolicyValueGate",
    "PromotionGates",
    "challenge",
    "policy_action_dist",
    "regime_bars_scorer",
    "regime_scorer",
    "replayed_policy_action_dist",
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


def policy_action_dist(challenger: LoadedModel, log: BanditLog) -> np.ndarray:
    """How a registered policy acts on the logged contexts: ``model.action_dist(context)``
    (the :mod:`research.ope.policies` protocol; ``context`` columns in ``log.feature_names``
    order), shape (n_rounds, n_actions)."""
    model = challenger.model
    act = getattr(model, "action_dist", None)
    if not callable(act):
        raise GrodtError(
            f"{type(model).__name__} has no action_dist(context): it cannot be evaluated on "
            "logged decisions (pass PolicyValueGate(action_dist=...))",
        )
    return np.asarray(act(log.context), dtype=float)


def replayed_policy_action_dist(
    runs: Sequence[Path], component_id: str | None = None
) -> Callable[[LoadedModel, BanditLog], np.ndarray]:
    """How a registered challenger acts on the logged allocation records of ``runs``.

    A meta-controller model (:class:`~models.meta.model.MetaModel`, from ``grodt meta train``
    or online retraining) is run through the replay of each run's meta-controller
    (:func:`grodt.forensics.replay.replayed_action_dist`): the recorded config with
    ``policy: predictive``, ``predictive_actions: arms``, the challenger's file as ``model``
    (loaded by the actor's loader) and no retraining, on the recorded inputs; its probability
    of each arm at each logged record (its exploration ε is the config's
    ``predictive_exploration``). Rounds at or before the model's last training row
    (``trained_until_ns``) are NaN rows: in-sample for the challenger, left out by the gate.
    Any other model acts by :func:`policy_action_dist`.
    """
    runs = [Path(r) for r in runs]

    def action_dist(challenger: LoadedModel, log: BanditLog) -> np.ndarray:
        model = challenger.model
        if not isinstance(model, MetaModel):
            return policy_action_dist(challenger, log)
        path = native_dir_of(challenger.path) / challenger.meta.filename
        loaded, error = load_meta_model(str(path))
        if loaded is None:
            raise GrodtError(f"{challenger.tag}: the meta-controller cannot load it: {error}")
        overrides = {
            "policy": "predictive",
            "predictive_actions": "arms",
            "model": str(path),
            "retrain": None,
        }
        target = replayed_action_dist(
            runs, log.sources, log.trace_ids, overrides, component_id=component_id
        )
        target[log.ts_event <= loaded.trained_until_ns] = np.nan
        return target

    return action_dist


def _rounds(log: BanditLog, keep: np.ndarray) -> BanditLog:
    """The rounds of ``log`` where ``keep`` (bool, (n_rounds,)) holds."""
    index = np.flatnonzero(keep)
    return dataclasses.replace(
        log,
        context=log.context[index],
        action=log.action[index],
        pscore=log.pscore[index],
        logging_action_dist=log.logging_action_dist[index],
        reward=log.reward[index],
        ts_event=log.ts_event[index],
        trace_ids=tuple(log.trace_ids[i] for i in index),
        sources=tuple(log.sources[i] for i in index),
    )


_NEEDS_REWARD_MODEL = ("dm", "dr", "sndr", "switch_dr")


@dataclass(frozen=True)
class PolicyValueGate:
    """Gate 3: the challenger's off-policy value on the champion's logged decisions.

    Compared: ``estimate`` = the challenger's value per round on ``log`` by ``estimator``
    (reward units: the portfolio's return over one rebalance window, a fraction) against
    ``realised`` = the mean logged reward of those rounds (what the champion, the logging
    policy, earned). Passes when ``estimate ≥ realised − max_value_drop`` and the effective
    sample size of the challenger's importance weights is at least
    ``min_effective_sample_size`` (else the log says too little about the challenger's
    choices to trust the estimate).

    Parameters
    ----------
    log : BanditLog
        The champion's rounds (:func:`grodt.forensics.ope_logs.read_bandit_log` of its runs).
    action_dist : Callable[[LoadedModel, BanditLog], np.ndarray]
        ``(challenger, log) → (n_rounds, n_actions)`` probabilities; default
        :func:`policy_action_dist`; :func:`replayed_policy_action_dist` for meta-controller
        models. A row of NaN is a round the challenger cannot be evaluated on (in its training
        window): it is left out of the estimate and of the realised value.
    estimator : str, default "snips"
        One of ``ipw``, ``snips`` (no reward model), ``dm``, ``dr``, ``sndr``, ``switch_dr``
        (a cross-fitted LightGBM reward model, :mod:`research.ope.reward_model`).
    max_value_drop : float, default 0.0
    min_effective_sample_size : float, default 10.0
    confidence : float, optional
        When set (e.g. 0.95), the drop compared with ``max_value_drop`` is the upper end of
        the drop's two-sided percentile bootstrap interval at this level (rounds resampled,
        realised value and estimate on the same resample; ``n_bootstrap`` resamples, seeded),
        not its point value: the challenger must be shown not to lose more than the margin,
        not merely estimated not to. None: the point value.
    n_bootstrap : int, default 1000
    """

    log: BanditLog
    action_dist: Callable[[LoadedModel, BanditLog], np.ndarray] = policy_action_dist
    estimator: str = "snips"
    max_value_drop: float = 0.0
    min_effective_sample_size: float = 10.0
    confidence: float | None = None
    n_bootstrap: int = 1000

    def __post_init__(self) -> None:
        if self.confidence is not None and not 0.0 < self.confidence < 1.0:
            raise GrodtError(f"confidence: {self.confidence} is not in (0, 1)")
        known = ("ipw", "snips", *_NEEDS_REWARD_MODEL)
        if self.estimator not in known:
            raise GrodtError(f"estimator: {self.estimator!r} is not one of {list(known)}")
        if self.log.n_rounds < 2:
            raise GrodtError(
                f"policy gate: the log has {self.log.n_rounds} usable round(s) (skipped: "
                f"{self.log.skipped}); need at least 2",
            )

    def evaluate(self, challenger: LoadedModel) -> dict[str, float]:
        """The figures of ``challenger`` on the log: ``estimate``, ``realised``,
        ``value_drop``, ``effective_sample_size``, ``rounds`` (evaluated), ``rounds_excluded``
        (in the challenger's training window) and ``unsupported_share`` (mean probability the
        challenger puts on arms the logging policy could not take). ``estimate`` and
        ``value_drop`` are NaN when the log does not support the challenger or fewer than 2
        rounds are left."""
        log = self.log
        target = np.asarray(self.action_dist(challenger, log), dtype=float)
        if target.shape != (log.n_rounds, log.n_actions):
            raise GrodtError(
                f"policy gate: the policy's action distribution has shape {target.shape}, the "
                f"log needs ({log.n_rounds}, {log.n_actions})",
            )
        keep = np.isfinite(target).all(axis=1)
        log, target = _rounds(log, keep), target[keep]
        nan = float("nan")
        unsupported = (target * (log.logging_action_dist <= 0.0)).sum(axis=1)
        figures = {
            "estimate": nan,
            "realised": float(np.mean(log.reward)) if log.n_rounds else nan,
            "value_drop": nan,
            "effective_sample_size": 0.0,
            "rounds": float(log.n_rounds),
            "rounds_excluded": float(keep.size - log.n_rounds),
            "unsupported_share": float(unsupported.mean()) if log.n_rounds else 0.0,
            "unsupported_rounds": float((unsupported > 0.0).sum()),
        }
        if log.n_rounds < 2 or figures["unsupported_rounds"] > 0:
            return figures
        q_hat = (
            CrossFittedRewardModel(n_folds=min(5, log.n_rounds)).fit_predict(
                log.context, log.action, log.reward, log.n_actions
            )
            if self.estimator in _NEEDS_REWARD_MODEL
            else np.zeros_like(target)
        )
        logged = (log.reward, log.action, log.pscore, target, q_hat)
        estimate = _estimate(self.estimator, *logged)
        weights = importance_weights(log.action, log.pscore, target)
        figures["estimate"] = estimate
        figures["value_drop"] = figures["realised"] - estimate
        figures["effective_sample_size"] = effective_sample_size(weights)
        if self.confidence is not None:
            interval = bootstrap_ci(
                lambda *rounds: float(np.mean(rounds[0])) - _estimate(self.estimator, *rounds),
                *logged,
                n_bootstrap=self.n_bootstrap,
                alpha=1.0 - self.confidence,
                random_state=0,
            )
            figures["value_drop_lower"] = interval.lower
            figures["value_drop_upper"] = interval.upper
        return figures


def _estimate(
    estimator: str,
    reward: np.ndarray,
    action: np.ndarray,
    pscore: np.ndarray,
    target: np.ndarray,
    q_hat: np.ndarray,
) -> float:
    """``estimator``'s value of ``target`` on the rounds (``q_hat`` unused by IPW and SNIPS)."""
    logged = (reward, action, pscore, target)
    if estimator == "ipw":
        return float(ipw(*logged))
    if estimator == "snips":
        return float(snips(*logged))
    if estimator == "dm":
        return float(direct_method(target, q_hat))
    if estimator == "dr":
        return float(doubly_robust(*logged, q_hat))
    if estimator == "sndr":
        return float(self_normalized_doubly_robust(*logged, q_hat))
    return float(switch_doubly_robust(*logged, q_hat))


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
    scorer: Callable[[Any], ModelScore] | None,
    gates: PromotionGates | None = None,
    store: TrackingStore | None = None,
    policy: PolicyValueGate | None = None,
    champion_alias: str = "champion",
    challenger_alias: str = "challenger",
) -> GateDecision:
    """Run the gates on ``name@challenger`` against ``name@champion`` and promote or refuse
    (both audited). ``scorer`` None: a model without a score on bars (an allocation policy);
    gates 1 and 2 are then reported as not evaluated and ``policy`` is required. Raises
    GrodtError when there is no challenger or no gate to run."""
    if scorer is None and policy is None:
        raise GrodtError(f"{name}: no gate to run (give a scorer, a policy gate or both)")
    gates = gates or PromotionGates()
    store = store or resolve_store()
    challenger = _load(f"{name}@{challenger_alias}", store)
    if challenger is None:
        raise GrodtError(f"{name}@{challenger_alias}: no such version in {store.display_uri}")
    champion = _load(f"{name}@{champion_alias}", store)
    reasons: list[str] = []
    figures: dict[str, float] = {}
    passed = True
    if scorer is not None:
        passed = _score_gates(scorer, gates, challenger, champion, figures, reasons)
    else:
        figures["performance_evaluated"] = 0.0
        figures["calibration_evaluated"] = 0.0
    if policy is not None:
        passed = _policy_gate(policy, challenger, champion, figures, reasons) and passed
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


def _score_gates(
    scorer: Callable[[Any], ModelScore],
    gates: PromotionGates,
    challenger: LoadedModel,
    champion: LoadedModel | None,
    figures: dict[str, float],
    reasons: list[str],
) -> bool:
    """Gates 1 (performance, when there is a champion) and 2 (calibration)."""
    challenger_score = scorer(challenger.model)
    figures.update(
        {
            "challenger.score": challenger_score.score,
            "challenger.calibration_error": challenger_score.calibration_error,
            **{f"challenger.{k}": v for k, v in challenger_score.figures.items()},
            "gate.max_score_drop": gates.max_score_drop,
            "gate.max_calibration_error": gates.max_calibration_error,
        },
    )
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
    return passed


def _policy_gate(
    policy: PolicyValueGate,
    challenger: LoadedModel,
    champion: LoadedModel | None,
    figures: dict[str, float],
    reasons: list[str],
) -> bool:
    """Gate 3: the challenger's off-policy estimate on the champion's logged decisions against
    the champion's realised value there (:class:`PolicyValueGate`)."""
    result = policy.evaluate(challenger)
    figures.update({f"policy.{k}": v for k, v in result.items()})
    figures["gate.max_value_drop"] = policy.max_value_drop
    figures["gate.min_effective_sample_size"] = policy.min_effective_sample_size
    if policy.confidence is not None:
        figures["gate.confidence"] = policy.confidence
    rounds = int(result["rounds"])
    if result["unsupported_rounds"] > 0:
        reasons.append(
            f"policy evaluation: the log has no support for the challenger: on "
            f"{int(result['unsupported_rounds'])} of {rounds} logged rounds it puts probability "
            f"(mean {result['unsupported_share']:.3f} per round) on allocations the logging "
            "policy could not take (probability 0: it did not explore there; log with "
            "bandit_exploration or predictive_exploration > 0); no estimate",
        )
        return False
    if rounds < 2:
        reasons.append(
            f"policy evaluation: {rounds} logged round(s) left after the "
            f"{int(result['rounds_excluded'])} in the challenger's training window; need at "
            "least 2 (give a log of decisions after its training data)",
        )
        return False
    passed = True
    drop = result["value_drop"] if policy.confidence is None else result["value_drop_upper"]
    if not (math.isfinite(result["estimate"]) and drop <= policy.max_value_drop):
        passed = False
        logger_name = champion.tag if champion is not None else "the logging policy"
        bound = (
            ""
            if policy.confidence is None
            else f"; the upper end of its {policy.confidence:.0%} interval is {drop:.6f}"
        )
        reasons.append(
            f"policy evaluation: challenger {policy.estimator} estimate "
            f"{result['estimate']:.6f} per round is {result['value_drop']:.6f} below the "
            f"realised {result['realised']:.6f} of {logger_name} on its "
            f"{rounds} logged rounds{bound} (allowed {policy.max_value_drop})",
        )
    if not result["effective_sample_size"] >= policy.min_effective_sample_size:
        passed = False
        reasons.append(
            f"policy evaluation: effective sample size {result['effective_sample_size']:.1f} "
            f"of {rounds} rounds is below {policy.min_effective_sample_size}: "
            "the log says too little about the challenger's choices",
        )
    return passed
