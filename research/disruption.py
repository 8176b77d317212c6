"""Position disruption at regime transitions: how much of the book is churned around a change.

Definition (quoted in the README; see ``docs/regime.md``)
--------------------------------------------------------
Let ``E_s(t)`` be strategy s's **target exposure** at bar close t (held from one change to the
next, 0 before the first). Let ``τ_1 … τ_J`` be the bars at which the **true** regime changes
(the synthetic market's regime path), and ``W_j = {t : τ_j − h ≤ t < τ_j + h}`` the 2h bars
around the j-th change (``h`` = ``half_window`` bars). Then

    turnover_j = Σ_{t ∈ W_j} Σ_s |E_s(t) − E_s(t−1)|
    gross_j    = Σ_{t ∈ W_j} Σ_s |E_s(t)|
    disruption = Σ_j turnover_j / Σ_j gross_j

i.e. the fraction of the gross book traded per bar, on average, in the bars around true regime
transitions. Holding through a transition scores 0; flattening a full position once in a window
in which it was held for h bars scores 1/h; flipping in and out on every argmax change scores a
multiple of that. The same ratio over the bars *outside* every window is the ``baseline``.

Which exposure: the headline figure uses the **regime-gated exposure budget** of each strategy,
``E_s(t) = allocation_weight_s · regime_scale_s(t)``, with ``regime_scale`` exactly as the
strategies compute it (:func:`models.regime.gating.regime_scale`: soft Σ p·affinity, hard 1/0 on
the most likely label) from the *same* run's regime records — so soft and hard gating are
compared on identical probabilities, and the strategies' own entries and exits (which dominate
the raw churn of intraday rules) do not drown the regime layer. :func:`event_disruption` gives
the realised counterpart from a backtest's target changes, optionally restricted to the changes
the strategies attribute to the regime (reasons ``adjust:regime``, ``exit:regime``).
"""

from collections.abc import Iterable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig

from grodt.core.topics import TARGET_EXPOSURE_TOPIC
from models.regime.gating import regime_scale

EXPOSURE_COLUMNS: tuple[str, ...] = (
    "ts_event",
    "strategy_id",
    "instrument_id",
    "target_quantity",
    "target_exposure",
    "reason",
)


def true_transitions(labels: pd.Series) -> pd.DatetimeIndex:
    """Bars at which the label differs from the previous bar's (the first bar is not one).

    Parameters
    ----------
    labels : pd.Series
        True regime label per bar, indexed by bar close time (sorted).
    """
    values = labels.to_numpy()
    changed = np.zeros(len(values), dtype=bool)
    changed[1:] = values[1:] != values[:-1]
    return pd.DatetimeIndex(labels.index[changed])


def exposure_grid(
    events: pd.DataFrame,
    bars: pd.DatetimeIndex,
    value: str = "target_exposure",
) -> pd.DataFrame:
    """Target exposures on a bar grid: each strategy's last target at or before each bar close.

    Parameters
    ----------
    events : pd.DataFrame
        Target changes with ``ts_event`` (int ns or UTC timestamps), ``strategy_id`` and
        ``value``; several changes at one timestamp keep the last.
    bars : pd.DatetimeIndex
        The bar closes (UTC), sorted.

    Returns
    -------
    pd.DataFrame
        Index ``bars``, one column per strategy, 0 before a strategy's first target.
    """
    if events.empty:
        return pd.DataFrame(index=bars)
    stamps = events["ts_event"]
    times = (
        pd.to_datetime(stamps, unit="ns", utc=True)
        if np.issubdtype(stamps.dtype, np.integer)
        else pd.to_datetime(stamps, utc=True)
    )
    frame = pd.DataFrame(
        {"ts": times, "strategy_id": events["strategy_id"].astype(str), "v": events[value]},
    )
    wide = frame.pivot_table(index="ts", columns="strategy_id", values="v", aggfunc="last")
    return wide.reindex(wide.index.union(bars)).ffill().reindex(bars).fillna(0.0)


@dataclass(frozen=True)
class DisruptionResult:
    """Position disruption around true transitions (see the module docstring).

    Attributes
    ----------
    disruption : float
        Σ turnover / Σ gross over the transition windows (NaN without exposure there).
    baseline : float
        The same ratio over the bars outside every window.
    turnover, gross : float
        The sums behind ``disruption`` (account currency · bars for ``gross``).
    transitions : int
        Transitions with a full window inside the data.
    half_window : int
        h, bars.
    per_transition : pd.DataFrame
        One row per transition: ``ts``, ``turnover``, ``gross``, ``changes`` (bars with any
        target change), ``disruption``.
    """

    disruption: float
    baseline: float
    turnover: float
    gross: float
    transitions: int
    half_window: int
    per_transition: pd.DataFrame

    def as_dict(self) -> dict[str, Any]:
        return {
            "disruption": self.disruption,
            "baseline": self.baseline,
            "turnover": self.turnover,
            "gross": self.gross,
            "transitions": self.transitions,
            "half_window": self.half_window,
        }


def position_disruption(
    exposure: pd.DataFrame,
    transitions: Iterable[pd.Timestamp],
    half_window: int = 30,
) -> DisruptionResult:
    """Position disruption of target exposures around true regime transitions.

    Parameters
    ----------
    exposure : pd.DataFrame
        Target exposure per bar (index: bar closes, sorted) and strategy (columns), e.g. from
        :func:`exposure_grid`.
    transitions : Iterable[pd.Timestamp]
        True transition bars (:func:`true_transitions`); those whose window does not fit in the
        data are left out.
    half_window : int, default 30
        h in bars: the window is the h bars before the transition bar and h from it on.
    """
    if half_window < 1:
        raise ValueError(f"half_window must be at least 1 bar, was {half_window}")
    values = exposure.to_numpy(dtype=float)
    n = len(values)
    previous = np.vstack([np.zeros((1, values.shape[1])), values[:-1]]) if n else values
    change = np.abs(values - previous).sum(axis=1) if n else np.zeros(0)
    gross = np.abs(values).sum(axis=1) if n else np.zeros(0)
    positions = exposure.index.get_indexer(pd.DatetimeIndex(list(transitions)))
    rows = []
    inside = np.zeros(n, dtype=bool)
    for position in positions:
        if position < half_window or position + half_window > n:
            continue
        window = slice(position - half_window, position + half_window)
        inside[window] = True
        turnover_j = float(change[window].sum())
        gross_j = float(gross[window].sum())
        rows.append(
            {
                "ts": exposure.index[position],
                "turnover": turnover_j,
                "gross": gross_j,
                "changes": int((change[window] > 0).sum()),
                "disruption": turnover_j / gross_j if gross_j > 0 else np.nan,
            },
        )
    per_transition = pd.DataFrame(
        rows, columns=["ts", "turnover", "gross", "changes", "disruption"]
    )
    turnover = float(per_transition["turnover"].sum())
    total_gross = float(per_transition["gross"].sum())
    # The first bar's "change" is the opening of the book from 0; leave it out of the baseline.
    outside = ~inside
    if n:
        outside[0] = False
    out_gross = float(gross[outside].sum())
    return DisruptionResult(
        disruption=turnover / total_gross if total_gross > 0 else float("nan"),
        baseline=float(change[outside].sum()) / out_gross if out_gross > 0 else float("nan"),
        turnover=turnover,
        gross=total_gross,
        transitions=len(per_transition),
        half_window=half_window,
        per_transition=per_transition,
    )


def gated_exposure(
    regime: pd.DataFrame,
    affinity: Mapping[str, float],
    gating: str,
    weight: float = 1.0,
) -> pd.Series:
    """A strategy's regime-gated exposure budget per bar, ``weight · regime_scale``.

    Parameters
    ----------
    regime : pd.DataFrame
        Regime records per bar (index: bar closes) with ``p_bull``, ``p_bear``, ``p_sideways``
        and ``most_likely`` (e.g. a ``grodt regime infer`` frame re-indexed by time).
    affinity : Mapping[str, float]
        The strategy's regime affinity per label.
    gating : {"soft", "hard"}
    weight : float
        The strategy's allocation weight (fraction of equity).
    """
    scales = [
        regime_scale({"bull": b, "bear": r, "sideways": s}, affinity, gating, label)  # type: ignore[arg-type]
        for b, r, s, label in regime[["p_bull", "p_bear", "p_sideways", "most_likely"]].itertuples(
            index=False,
            name=None,
        )
    ]
    return pd.Series(np.asarray(scales, dtype=float) * weight, index=regime.index)


def event_disruption(
    events: pd.DataFrame,
    bars: pd.DatetimeIndex,
    transitions: Iterable[pd.Timestamp],
    half_window: int = 30,
    reasons: Sequence[str] | None = None,
) -> dict[str, float]:
    """Realised disruption from a backtest's target changes (:class:`TargetExposureRecorder`).

    Every change of a strategy's target counts ``|new − previous|`` at its bar; with
    ``reasons``, only changes whose reason starts with one of them count in the numerator (the
    gross exposure is always the whole book). Returns ``disruption`` (inside the windows) and
    ``baseline`` (outside), as in :func:`position_disruption`.
    """
    ordered = events.sort_values("ts_event", kind="stable")
    previous = ordered.groupby("strategy_id")["target_exposure"].shift(1).fillna(0.0)
    change = (ordered["target_exposure"] - previous).abs()
    if reasons is not None:
        change = change.where(ordered["reason"].str.startswith(tuple(reasons)), 0.0)
    times = pd.to_datetime(ordered["ts_event"], unit="ns", utc=True)
    position = bars.get_indexer(times, method="bfill")
    per_bar = np.zeros(len(bars))
    valid = position >= 0
    np.add.at(per_bar, position[valid], change.to_numpy()[valid])
    gross = np.abs(exposure_grid(events, bars).to_numpy()).sum(axis=1)
    inside = np.zeros(len(bars), dtype=bool)
    counted = 0
    for p in bars.get_indexer(pd.DatetimeIndex(list(transitions))):
        if half_window <= p and p + half_window <= len(bars):
            inside[p - half_window : p + half_window] = True
            counted += 1
    gross_in, gross_out = gross[inside].sum(), gross[~inside].sum()
    return {
        "disruption": float(per_bar[inside].sum() / gross_in) if gross_in > 0 else float("nan"),
        "baseline": float(per_bar[~inside].sum() / gross_out) if gross_out > 0 else float("nan"),
        "transitions": counted,
        "half_window": half_window,
    }


class TargetExposureRecorderConfig(ActorConfig, frozen=True):
    """Configuration for :class:`TargetExposureRecorder`.

    Parameters
    ----------
    topic : str
        The message-bus topic of target changes.
    output_path : str, optional
        Write the recorded changes as Parquet here when the actor is disposed.
    """

    topic: str = TARGET_EXPOSURE_TOPIC
    output_path: str | None = None


class TargetExposureRecorder(Actor):
    """Records every strategy target change published on the bus (for the disruption figure).

    The subscription lives until dispose: strategies stop after actors and may still publish.
    """

    def __init__(self, config: TargetExposureRecorderConfig) -> None:
        super().__init__(config)
        self.records: list[tuple[Any, ...]] = []

    def on_start(self) -> None:
        self.msgbus.subscribe(topic=self.config.topic, handler=self._on_target)

    def _on_target(self, message: Any) -> None:
        self.records.append(
            (
                int(message.ts_event),
                str(message.strategy_id),
                str(message.instrument_id),
                float(message.target_quantity),
                float(message.target_exposure),
                str(message.reason),
            ),
        )

    def to_frame(self) -> pd.DataFrame:
        """The recorded changes (:data:`EXPOSURE_COLUMNS`)."""
        return pd.DataFrame.from_records(self.records, columns=list(EXPOSURE_COLUMNS))

    def on_dispose(self) -> None:
        if self.msgbus.is_subscribed(topic=self.config.topic, handler=self._on_target):
            self.msgbus.unsubscribe(topic=self.config.topic, handler=self._on_target)
        if self.config.output_path:
            try:
                self.to_frame().to_parquet(self.config.output_path, index=False)
            except OSError as e:
                self.log.error(
                    f"Could not write target exposures to {self.config.output_path}: {e}"
                )
