"""Out-of-sample evaluation of trained specialists in the env, mode by mode.

Each mode is one deterministic pass (:func:`models.rl.training.rollout`) over every test segment
(one per bar type) in a continuous-action env with the run's fills, costs and safety layer; the
regime probability at bar t is the causal one (:class:`~grodt.experiments.rl_data.RLData`), as
the regime actor publishes it before the strategy sees bar t.

Modes (the comparison of issue 18):

- ``blend``: ``Σ_r p_t(r) · action_r`` (the ensemble);
- ``hard``: the most likely regime's specialist;
- ``always_on``: the equal-weight mean of the specialists' actions (ignores regimes);
- ``finrl``: FinRL's ensemble rule: every ``finrl_window`` bars, the specialist with the best
  Sharpe over the trailing ``finrl_window`` bars (of its own standalone pass) trades alone until
  the next choice; the first choice looks at the last ``finrl_window`` bars before the segment
  (training bars: the specialists have seen them, as FinRL's validation quarter follows its
  training quarter);
- ``specialist:<label>`` (each alone) and ``generalist``;
- ``buy_and_hold``: target +1 (``max_weight`` of equity) throughout, through the same fills.

Metrics per mode, averaged over the segments: ``sharpe`` (annualised, zero risk-free rate),
``total_return``, ``max_drawdown`` (negative), ``turnover`` (traded notional over equity, summed
per year) — :mod:`research.metrics` on the per-bar net returns.
"""

from collections.abc import Callable

import numpy as np

from grodt.core.messages import REGIME_LABELS
from grodt.experiments.rl_data import RLData
from models.rl.specialists import SpecialistSet
from models.rl.training import Trajectory
from models.rl.training import rollout
from research.metrics import max_drawdown
from research.metrics import sharpe_ratio
from research.metrics import total_return

__all__ = ["evaluate_specialists", "trajectory_metrics"]

Act = Callable[[np.ndarray, int], float]


def trajectory_metrics(trajectory: Trajectory, periods_per_year: float) -> dict[str, float]:
    """Sharpe, total return, max drawdown and yearly turnover of one pass."""
    returns = trajectory.returns
    years = max(len(returns) / periods_per_year, 1e-12)
    return {
        "sharpe": sharpe_ratio(returns, periods_per_year),  # type: ignore[arg-type]
        "total_return": total_return(returns),
        "max_drawdown": max_drawdown(returns),
        "turnover": float(np.sum(trajectory.turnover) / years),
    }


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {key: float(np.nanmean([row[key] for row in rows])) for key in rows[0]}


def evaluate_specialists(
    specialists: SpecialistSet,
    data: RLData,
    segments: list[tuple[int, int]],
    finrl_window: int = 63,
    modes: tuple[str, ...] | None = None,
) -> dict[str, dict[str, float]]:
    """``{mode: metrics}`` over ``segments`` (module docstring); ``modes`` limits the modes
    computed (default: all)."""
    env = data.env.build(data.train_windows, action_kind="continuous", matrix=data.matrix)
    labels = specialists.labels
    columns = [REGIME_LABELS.index(label) for label in labels]
    ppy = data.periods_per_year

    def actions(obs: np.ndarray) -> np.ndarray:
        proposed = specialists.predict(obs)
        return np.array([proposed[label] for label in labels])

    def blend(obs: np.ndarray, bar: int) -> float:
        p = data.regimes[bar, columns]
        total = p.sum()
        weights = p / total if total > 0 else np.full(len(labels), 1.0 / len(labels))
        return float(weights @ actions(obs))

    def hard(obs: np.ndarray, bar: int) -> float:
        return float(actions(obs)[int(np.argmax(data.regimes[bar, columns]))])

    def always_on(obs: np.ndarray, _bar: int) -> float:
        return float(actions(obs).mean())

    def alone(label: str) -> Act:
        def act(obs: np.ndarray, _bar: int) -> float:
            return specialists.predict_one(label, obs)

        return act

    def generalist(obs: np.ndarray, _bar: int) -> float:
        value = specialists.predict_generalist(obs)
        return 0.0 if value is None else value

    acts: dict[str, Act] = {
        "buy_and_hold": lambda _obs, _bar: 1.0,
        "blend": blend,
        "hard": hard,
        "always_on": always_on,
        **{f"specialist:{label}": alone(label) for label in labels},
    }
    if specialists.has_generalist:
        acts["generalist"] = generalist
    wanted = set(modes) if modes is not None else None
    results: dict[str, list[dict[str, float]]] = {}
    for first, last in segments:
        window = (first, last)
        passes: dict[str, Trajectory] = {}
        for mode, act in acts.items():
            if wanted is not None and mode not in wanted:
                continue
            specialists.reset()
            passes[mode] = rollout(env, window, act)
            results.setdefault(mode, []).append(trajectory_metrics(passes[mode], ppy))
        if wanted is None or "finrl" in wanted:
            schedule = _finrl_schedule(specialists, env, window, finrl_window, ppy)
            specialists.reset()
            chosen = rollout(
                env, window, lambda obs, bar, pick=schedule: specialists.predict_one(pick(bar), obs)
            )
            results.setdefault("finrl", []).append(trajectory_metrics(chosen, ppy))
    return {mode: _mean(rows) for mode, rows in results.items()}


def _finrl_schedule(
    specialists: SpecialistSet,
    env: object,
    window: tuple[int, int],
    finrl_window: int,
    periods_per_year: float,
) -> Callable[[int], str]:
    """Which specialist trades at each bar under FinRL's rule (module docstring)."""
    first, last = window
    lead_in = max(first - finrl_window, 0)
    standalone: dict[str, np.ndarray] = {}
    for label in specialists.labels:
        specialists.reset()
        trajectory = rollout(
            env,  # type: ignore[arg-type]
            (lead_in, last),
            lambda obs, _bar, label=label: specialists.predict_one(label, obs),
        )
        standalone[label] = trajectory.returns
    choices: dict[int, str] = {}
    for start in range(first, last, finrl_window):
        lo = start - finrl_window - lead_in
        scores = {
            label: sharpe_ratio(returns[max(lo, 0) : start - lead_in], periods_per_year)
            for label, returns in standalone.items()
        }
        finite = {k: v for k, v in scores.items() if np.isfinite(v)}
        choices[start] = max(finite, key=finite.__getitem__) if finite else specialists.labels[0]

    def schedule(bar: int) -> str:
        return choices[first + ((bar - first) // finrl_window) * finrl_window]

    return schedule
