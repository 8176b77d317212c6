"""Map fitted HMM states to regime labels by a deterministic rule on their parameters.

EM numbers states arbitrarily (the order depends on the initialisation), so a state index means
nothing across refits. Labels are assigned from what each state *is*: its drift and volatility.

Drift t-statistic of state k: for every drift feature d (``log_return:k``, ``trend:w``,
``efficiency:w``)

    t_kd = μ_kd / (σ_kd / sqrt(n_k / w_d))

with μ_kd and σ_kd the state's mean and standard deviation of the feature in **raw units** (zero
is "no drift", whatever the training window's average), n_k the state's occupancy in the training
window (expected number of bars) and w_d the feature's window (overlapping windows carry about
n_k / w_d independent observations); t_k is the mean over the drift features.

Volatility of state k: its mean ``realized_vol`` (or ``exp`` of its mean ``log_realized_vol``),
else its standard deviation of ``log_return``, else of the first drift feature.

The rule, in order:

1. significant drift: t_k ≥ +z → ``bull``; t_k ≤ −z → ``bear`` (z = ``label_z``);
2. if no state is bear, the most volatile state is ``bear`` unless it is bull (equity markets
   fall in their most volatile regime: the leverage effect);
3. if no state is bull, the unlabelled state with the largest positive t_k is ``bull``;
4. every other state is ``sideways``.

With 3 states this gives one state per label unless the drifts say otherwise; a label with several
states sums their probabilities. The rule uses only fitted parameters, so labels do not depend on
the state order and stay stable across refits that find the same states.
"""

from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

from grodt.core.messages import REGIME_LABELS
from models.regime.features import DRIFT_KINDS
from models.regime.features import FeatureSpec

BULL, BEAR, SIDEWAYS = "bull", "bear", "sideways"
DEFAULT_LABEL_Z = 3.0


def drift_scores(
    raw_means: np.ndarray,
    raw_stds: np.ndarray,
    occupancy: np.ndarray,
    specs: Sequence[FeatureSpec],
) -> np.ndarray:
    """Drift t-statistic of each state (module docstring).

    Parameters
    ----------
    raw_means, raw_stds : np.ndarray
        Shape (K, D), state means and standard deviations in raw feature units.
    occupancy : np.ndarray
        Shape (K,), expected bars spent in each state in the training window.
    specs : Sequence[FeatureSpec]
        The D features, in column order.

    Returns
    -------
    np.ndarray
        Shape (K,).
    """
    columns = [i for i, s in enumerate(specs) if s.kind in DRIFT_KINDS]
    if not columns:
        raise ValueError("the regime labels need at least one drift feature")
    scores = np.zeros(len(occupancy))
    for i in columns:
        effective = np.maximum(np.asarray(occupancy, dtype=float) / specs[i].window, 1.0)
        stds = np.maximum(raw_stds[:, i], np.finfo(float).tiny)
        scores += raw_means[:, i] / (stds / np.sqrt(effective))
    return scores / len(columns)


def state_volatility(
    raw_means: np.ndarray,
    raw_stds: np.ndarray,
    specs: Sequence[FeatureSpec],
) -> np.ndarray:
    """Volatility of each state (module docstring), shape (K,); only its order matters."""
    for i, spec in enumerate(specs):
        if spec.kind == "realized_vol":
            return raw_means[:, i].copy()
        if spec.kind == "log_realized_vol":
            return np.exp(raw_means[:, i])
    for i, spec in enumerate(specs):
        if spec.kind == "log_return":
            return raw_stds[:, i].copy()
    first = next(i for i, spec in enumerate(specs) if spec.kind in DRIFT_KINDS)
    return raw_stds[:, first].copy()


def assign_labels(
    drift_t: np.ndarray,
    volatility: np.ndarray,
    label_z: float = DEFAULT_LABEL_Z,
) -> tuple[str, ...]:
    """``bull`` / ``bear`` / ``sideways`` per state by the rule in the module docstring.

    Parameters
    ----------
    drift_t : np.ndarray
        Shape (K,), drift t-statistics (:func:`drift_scores`).
    volatility : np.ndarray
        Shape (K,), state volatilities (:func:`state_volatility`).
    label_z : float
        Significance threshold of step 1.
    """
    drift_t = np.asarray(drift_t, dtype=float)
    volatility = np.asarray(volatility, dtype=float)
    k = len(drift_t)
    labels: list[str | None] = [None] * k
    for state in range(k):
        if drift_t[state] >= label_z:
            labels[state] = BULL
        elif drift_t[state] <= -label_z:
            labels[state] = BEAR
    if BEAR not in labels:
        riskiest = max(range(k), key=lambda s: (volatility[s], -drift_t[s]))
        if labels[riskiest] is None:
            labels[riskiest] = BEAR
    if BULL not in labels:
        free = [s for s in range(k) if labels[s] is None and drift_t[s] > 0.0]
        if free:
            labels[max(free, key=lambda s: (drift_t[s], -volatility[s]))] = BULL
    return tuple(label if label is not None else SIDEWAYS for label in labels)


def label_matrix(state_labels: Sequence[str]) -> list[list[int]]:
    """For each label in ``REGIME_LABELS`` order, the states carrying it (lists of indices)."""
    return [[s for s, lab in enumerate(state_labels) if lab == label] for label in REGIME_LABELS]


def compile_label_sum(groups: list[list[int]]) -> Callable[[Sequence[float]], tuple[float, ...]]:
    """A function summing state probabilities into label probabilities, e.g. for groups
    ``[[2], [0], [1, 3]]`` the function ``lambda p: (p[2], p[0], p[1] + p[3])`` (per-bar hot
    path: a generated expression instead of loops)."""
    terms = [" + ".join(f"p[{s}]" for s in group) if group else "0.0" for group in groups]
    return eval(f"lambda p: ({', '.join(terms)},)")  # built from integer indices only
