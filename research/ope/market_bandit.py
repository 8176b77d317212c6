"""An allocation bandit on the synthetic market, with every action's reward known: OPE's ground
truth.

At each decision time ``t`` (every ``window_bars`` bars after a ``lookback_bars`` warm-up) the
context is the trailing state of the instruments, an action is one of a discrete set of
allocations (weight vectors over the instruments, summing to at most 1, the rest cash), and its
reward is the allocation's return over the next window, ``Σ_j w_j (close_j[t + window] /
close_j[t] − 1)`` (weights set at ``t`` and held; no costs). Because the market is simulated,
:attr:`AllocationBandit.rewards` holds the reward of *every* action in every round, so a policy's
true value on these rounds is computed exactly rather than estimated.

Context features (per instrument ``j``, from closes up to and including ``t``):

- ``momentum_<symbol>``: the trailing ``lookback_bars`` log return divided by its expected
  standard deviation (the trailing per-bar vol × √lookback), a z-score;
- ``volatility``: the instruments' mean trailing per-bar vol scaled to a 390-bar day, in percent.
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from grodt.core.records import AllocationRecord
from grodt.core.records import make_trace_id

__all__ = ["AllocationBandit", "allocation_bandit", "allocation_records", "default_allocations"]


@dataclass(frozen=True)
class AllocationBandit:
    """Rounds of the allocation bandit.

    Attributes
    ----------
    context : np.ndarray
        (n, d) float features at each decision time.
    feature_names : tuple[str, ...]
        The d column names of ``context``.
    rewards : np.ndarray
        (n, n_actions) float: each allocation's return over the next window (fractions).
    allocations : np.ndarray
        (n_actions, n_instruments) weights.
    instruments : tuple[str, ...]
        Column order of ``allocations``.
    ts_event : np.ndarray
        (n,) int64 UNIX ns of each decision (the close of bar ``t``).
    """

    context: np.ndarray
    feature_names: tuple[str, ...]
    rewards: np.ndarray
    allocations: np.ndarray
    instruments: tuple[str, ...]
    ts_event: np.ndarray

    def value(self, action_dist: np.ndarray) -> float:
        """A policy's true expected reward per round on these contexts: mean Σ_a π(a|x) r(a)."""
        return float(np.mean(np.sum(np.asarray(action_dist) * self.rewards, axis=1)))


def default_allocations(n_instruments: int) -> np.ndarray:
    """Cash, equal weight, and all-in on each instrument: (2 + n_instruments, n_instruments)."""
    return np.vstack(
        [
            np.zeros(n_instruments),
            np.full(n_instruments, 1.0 / n_instruments),
            np.eye(n_instruments),
        ]
    )


def allocation_bandit(
    frames: Mapping[str, pd.DataFrame],
    allocations: np.ndarray | None = None,
    window_bars: int = 65,
    lookback_bars: int = 130,
) -> AllocationBandit:
    """Rounds over the bars of ``frames`` (instrument id → bars with a ``close`` column, one index).

    Parameters
    ----------
    frames : Mapping[str, pd.DataFrame]
        E.g. :attr:`catalogs.synthetic.SyntheticMarket.frames`.
    allocations : np.ndarray, optional
        (n_actions, n_instruments), instruments in ``frames``' order; default
        :func:`default_allocations`.
    window_bars : int
        Bars between decisions (and the reward's horizon).
    lookback_bars : int
        Bars of history behind each context.
    """
    if window_bars < 1 or lookback_bars < 2:
        raise ValueError("window_bars must be >= 1 and lookback_bars >= 2")
    instruments = tuple(frames)
    closes = pd.concat([frames[i]["close"] for i in instruments], axis=1, keys=instruments)
    if closes.isna().any().any():
        raise ValueError("frames must share one index with no missing close")
    prices = closes.to_numpy(dtype=float)
    weights = default_allocations(len(instruments)) if allocations is None else allocations
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2 or weights.shape[1] != len(instruments):
        raise ValueError(
            f"allocations must be (n_actions, {len(instruments)}), has shape {weights.shape}"
        )
    times = np.arange(lookback_bars, prices.shape[0] - window_bars, window_bars)
    if times.size == 0:
        raise ValueError(
            f"{prices.shape[0]} bars hold no round of lookback {lookback_bars} + window "
            f"{window_bars}"
        )
    log_prices = np.log(prices)
    bar_returns = np.diff(log_prices, axis=0)
    momentum = np.empty((times.size, len(instruments)))
    volatility = np.empty(times.size)
    for k, t in enumerate(times):
        trailing = bar_returns[t - lookback_bars : t]  # bars t - lookback + 1 .. t
        vol = trailing.std(axis=0, ddof=1)
        momentum[k] = (log_prices[t] - log_prices[t - lookback_bars]) / (
            vol * np.sqrt(lookback_bars)
        )
        volatility[k] = 100.0 * float(vol.mean()) * np.sqrt(390.0)
    window_return = prices[times + window_bars] / prices[times] - 1.0  # (n, n_instruments)
    symbols = [i.split(".")[0] for i in instruments]
    return AllocationBandit(
        context=np.column_stack([momentum, volatility]),
        feature_names=(*(f"momentum_{s}" for s in symbols), "volatility"),
        rewards=window_return @ weights.T,
        allocations=weights,
        instruments=instruments,
        ts_event=closes.index[times].asi8.astype(np.int64),
    )


def allocation_records(
    bandit: AllocationBandit,
    action: np.ndarray,
    logging_action_dist: np.ndarray,
    component_id: str = "MetaController-000",
    fallback_rounds: tuple[int, ...] = (),
) -> list[AllocationRecord]:
    """The allocation records a bandit meta-controller would log for these choices.

    Record ``k`` carries round ``k``'s context, chosen allocation (``weights``, ``action_index``),
    the distribution it was drawn from and its propensity, and ``realised_return`` = the reward
    of round ``k − 1``'s choice (None for the first). Rounds in ``fallback_rounds`` are logged as
    a static fallback instead (no action, no propensity), as the meta-controller does when its
    policy cannot decide.
    """
    action = np.asarray(action, dtype=np.int64)
    n = action.size
    reward = bandit.rewards[np.arange(n), action]
    records = []
    for k in range(n):
        weights = dict(zip(bandit.instruments, bandit.allocations[action[k]].tolist(), strict=True))
        chosen = k not in fallback_rounds
        ts = int(bandit.ts_event[k])
        records.append(
            AllocationRecord(
                trace_id=make_trace_id(component_id, ts, k + 1),
                ts_event=ts,
                ts_init=ts,
                component_id=component_id,
                weights=weights,
                policy="bandit" if chosen else "static",
                context=dict(zip(bandit.feature_names, bandit.context[k].tolist(), strict=True)),
                action_index=int(action[k]) if chosen else None,
                action_probabilities=logging_action_dist[k].tolist() if chosen else [],
                propensity=float(logging_action_dist[k, action[k]]) if chosen else None,
                realised_return=None if k == 0 else float(reward[k - 1]),
            )
        )
    return records
