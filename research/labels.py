"""Labels for supervised learning on prices, with the names readers of López de Prado's *Advances in
Financial Machine Learning* (AFML, 2018, ch. 2–4) know, pandas in and out.

Triple-barrier labelling (AFML ch. 3) and sample weights (ch. 4):

- :func:`get_daily_vol` — EWM standard deviation of one-day returns (the barrier width unit);
- :func:`cusum_filter` — symmetric CUSUM filter on log returns → event timestamps;
- :func:`add_vertical_barrier` — the timestamp ``num_days`` after each event;
- :func:`get_events` — first touch of the horizontal or vertical barriers (``t1``), the target
  width (``trgt``) and, for meta-labelling, the primary model's ``side``;
- :func:`get_bins` — the return to the first touch (``ret``) and its label (``bin``);
- :func:`sample_uniqueness` — average uniqueness of each label over the labels it overlaps.

The multi-target table (fixed-horizon return, direction with a dead zone, volatility regime):
:func:`fixed_horizon_return`, :func:`direction_label`, :func:`volatility_regime`,
:func:`target_table`.

Every ``close`` is a float Series on a sorted, unique :class:`pandas.DatetimeIndex` (any bar
interval). Returns are simple returns (``p1 / p0 - 1``) unless a docstring says log returns.
Where these functions differ from the book's snippets, the docstring says so.
"""

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = [
    "add_vertical_barrier",
    "cusum_filter",
    "direction_label",
    "fixed_horizon_return",
    "get_bins",
    "get_daily_vol",
    "get_events",
    "sample_uniqueness",
    "target_table",
    "volatility_regime",
]


def _check_close(close: pd.Series, name: str = "close") -> pd.Series:
    """Raise a ValueError naming the problem unless ``close`` is a float Series on a sorted,
    unique DatetimeIndex with positive finite values; returns it as float."""
    if not isinstance(close, pd.Series):
        raise ValueError(f"{name} must be a pandas Series, got {type(close).__name__}")
    if not isinstance(close.index, pd.DatetimeIndex):
        raise ValueError(f"{name} must have a DatetimeIndex, got {type(close.index).__name__}")
    if not close.index.is_monotonic_increasing:
        position = int(np.argmax(np.diff(close.index.asi8) < 0)) + 1
        raise ValueError(
            f"{name}'s index is not sorted: row {position} ({close.index[position]}) comes "
            "before the row above it"
        )
    if close.index.has_duplicates:
        duplicate = close.index[close.index.duplicated()][0]
        raise ValueError(f"{name}'s index has a duplicate timestamp: {duplicate}")
    values = close.astype(float)
    bad = ~np.isfinite(values.to_numpy()) | (values.to_numpy() <= 0)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(
            f"{name} must be positive and finite: row {position} ({close.index[position]}) "
            f"is {values.iloc[position]!r}"
        )
    return values


def _check_events_in(t_events: pd.Index, close: pd.Series, what: str) -> None:
    """Raise unless every timestamp of ``t_events`` is a bar of ``close``."""
    missing = pd.Index(t_events).difference(close.index)
    if len(missing):
        raise ValueError(
            f"{len(missing)} {what} timestamp(s) are not bars of close, first {missing[0]}"
        )


def get_daily_vol(close: pd.Series, span: int = 100) -> pd.Series:
    """Daily volatility estimate at each bar (AFML snippet 3.1).

    For each bar at time t, the simple return since the last bar at or before ``t - 1 day``;
    then the exponentially weighted standard deviation of those returns (``span`` returns,
    pandas ``ewm(span=span).std()``, bias-corrected). The book's snippet takes the last bar
    strictly before ``t - 1 day``, which on daily bars is a two-day return; here a bar exactly a
    day back counts, so daily bars give one-day returns.

    Parameters
    ----------
    close : pd.Series
        Closes on a sorted DatetimeIndex.
    span : int
        EWM span, in returns (bars).

    Returns
    -------
    pd.Series
        Volatility as a fraction (0.01 = 1 %), on the bars that have a bar a day or more before
        them; the first value is NaN (one return has no standard deviation).
    """
    close = _check_close(close)
    if span < 1:
        raise ValueError(f"span must be at least 1, got {span}")
    index = close.index
    # Position of the first bar after t - 1 day; the bar before it is the last one at or before.
    previous = index.searchsorted(index - pd.Timedelta(days=1), side="right")
    has_previous = previous > 0
    starts = previous[has_previous] - 1
    ends = np.flatnonzero(has_previous)
    returns = close.to_numpy()[ends] / close.to_numpy()[starts] - 1.0
    daily_returns = pd.Series(returns, index=index[ends])
    return daily_returns.ewm(span=span).std().rename("daily_vol")


def cusum_filter(close: pd.Series, threshold: float | pd.Series) -> pd.DatetimeIndex:
    """Symmetric CUSUM filter on log returns (AFML snippet 2.4).

    ``s+ = max(0, s+ + r_t)``, ``s- = min(0, s- + r_t)`` over the log returns ``r_t``; an event is
    sampled at t when ``s- < -h`` (then ``s-`` resets to 0) or else when ``s+ > h`` (then ``s+``
    resets to 0). Unlike the book's snippet, which runs on price differences and skips the first
    difference, this runs on every log return (the issue's definition; scale-free).

    Parameters
    ----------
    close : pd.Series
        Closes on a sorted DatetimeIndex.
    threshold : float | pd.Series
        ``h`` in log-return units (0.01 ≈ 1 %); a Series gives the threshold at each bar (e.g.
        :func:`get_daily_vol`) and must have a finite positive value on every bar but the first
        (cut ``close`` to the bars where it is defined).

    Returns
    -------
    pd.DatetimeIndex
        The bars where an event is sampled, in time order.
    """
    close = _check_close(close)
    log_returns = np.diff(np.log(close.to_numpy()))
    bars = close.index[1:]
    if isinstance(threshold, pd.Series):
        thresholds = threshold.reindex(bars).astype(float).to_numpy()
    else:
        thresholds = np.full(len(bars), float(threshold))
    bad = ~np.isfinite(thresholds) | (thresholds <= 0)
    if bad.any():
        position = int(np.argmax(bad))
        raise ValueError(
            f"threshold must be positive and finite on every bar after the first: at "
            f"{bars[position]} it is {thresholds[position]!r}"
        )
    events: list[int] = []
    positive = negative = 0.0
    for position, (value, limit) in enumerate(zip(log_returns, thresholds, strict=True)):
        positive = max(0.0, positive + value)
        negative = min(0.0, negative + value)
        if negative < -limit:
            negative = 0.0
            events.append(position)
        elif positive > limit:
            positive = 0.0
            events.append(position)
    return pd.DatetimeIndex(bars[events], name=close.index.name)


def add_vertical_barrier(
    t_events: pd.DatetimeIndex, close: pd.Series, num_days: float = 1
) -> pd.Series:
    """The vertical barrier of each event (AFML snippet 3.4): the first bar at or after
    ``t + num_days`` days.

    Parameters
    ----------
    t_events : pd.DatetimeIndex
        Event timestamps (e.g. from :func:`cusum_filter`).
    close : pd.Series
        Closes on a sorted DatetimeIndex.
    num_days : float
        Holding period in calendar days (fractions allowed: 1/24 is an hour).

    Returns
    -------
    pd.Series
        Indexed by event, the barrier timestamp (a bar of ``close``). Events whose barrier
        falls after the last bar have none and are left out, as in the book.
    """
    close = _check_close(close)
    if num_days <= 0:
        raise ValueError(f"num_days must be positive, got {num_days}")
    t_events = pd.DatetimeIndex(t_events)
    positions = close.index.searchsorted(t_events + pd.Timedelta(days=num_days))
    inside = positions < len(close)
    return pd.Series(close.index[positions[inside]], index=t_events[inside], name="t1")


def _as_pt_sl(pt_sl: float | Sequence[float]) -> tuple[float, float]:
    """``(profit-taking, stop-loss)`` multiples from a scalar (symmetric) or a pair."""
    if isinstance(pt_sl, int | float | np.number):
        pair = (float(pt_sl), float(pt_sl))
    else:
        values = list(pt_sl)
        if len(values) != 2:
            raise ValueError(f"pt_sl must be a number or a pair (pt, sl), got {pt_sl!r}")
        pair = (float(values[0]), float(values[1]))
    if any(not np.isfinite(v) or v < 0 for v in pair):
        raise ValueError(f"pt_sl multiples must be finite and non-negative, got {pt_sl!r}")
    return pair


def get_events(
    close: pd.Series,
    t_events: pd.DatetimeIndex,
    pt_sl: float | Sequence[float],
    target: pd.Series,
    min_ret: float,
    vertical_barrier_times: pd.Series | None = None,
    side: pd.Series | None = None,
) -> pd.DataFrame:
    """First barrier touch of each event: the triple-barrier method (AFML snippets 3.2, 3.3, 3.6).

    For an event at t0 with width ``trgt = target[t0]`` and side ``s`` (1 without ``side``), the
    path return is ``(close[t] / close[t0] - 1) * s`` for bars t0..t1_vertical. The upper
    (profit-taking) barrier is touched at the first bar where it is ``> pt * trgt``, the lower
    (stop-loss) one where it is ``< -sl * trgt``; a multiple of 0 disables that barrier. ``t1``
    is the earliest of the touches and the vertical barrier.

    ``pt_sl`` is honoured as given with or without ``side``. (The book's snippet 3.6 uses
    ``ptSl[0]`` for both barriers when ``side`` is None; pass a scalar for that.)

    Parameters
    ----------
    close : pd.Series
        Closes on a sorted DatetimeIndex.
    t_events : pd.DatetimeIndex
        Event timestamps; each must be a bar of ``close``.
    pt_sl : float | Sequence[float]
        Barrier widths as multiples of ``trgt``: a scalar (both) or ``(pt, sl)``.
    target : pd.Series
        Barrier width unit per bar as a return fraction (e.g. :func:`get_daily_vol`).
    min_ret : float
        Events whose ``trgt`` is not above ``min_ret`` (or is NaN) are dropped.
    vertical_barrier_times : pd.Series | None
        Vertical barrier per event (:func:`add_vertical_barrier`); an event without one runs to
        the last bar. None: no vertical barrier.
    side : pd.Series | None
        The primary model's side per event (1 long, -1 short); enables meta-labelling. Events
        without a side (missing or NaN) are dropped.

    Returns
    -------
    pd.DataFrame
        Indexed by event: ``t1`` (first touch; NaT when no barrier is touched before the data
        ends), ``trgt``, and ``side`` when ``side`` was given.
    """
    close = _check_close(close)
    profit_taking, stop_loss = _as_pt_sl(pt_sl)
    t_events = pd.DatetimeIndex(t_events)
    _check_events_in(t_events, close, "t_events")
    trgt = target.reindex(t_events).astype(float)
    trgt = trgt[trgt > min_ret]
    if side is not None:
        side_ = side.reindex(trgt.index).astype(float)
        side_ = side_[side_.notna()]
        bad_side = ~side_.isin([-1.0, 1.0])
        if bad_side.any():
            raise ValueError(
                f"side must be 1 or -1: at {side_.index[bad_side][0]} it is "
                f"{side_[bad_side].iloc[0]!r}"
            )
        trgt = trgt.loc[side_.index]
    else:
        side_ = pd.Series(1.0, index=trgt.index)
    if vertical_barrier_times is not None:
        vertical = pd.DatetimeIndex(vertical_barrier_times.reindex(trgt.index))
    else:
        vertical = pd.DatetimeIndex([pd.NaT] * len(trgt), tz=close.index.tz)

    prices = close.to_numpy()
    index = close.index
    starts = index.get_indexer(trgt.index)
    # Each path runs to the last bar at or before its vertical barrier, or to the last bar.
    ends = np.full(len(trgt), len(close) - 1)
    has_barrier = vertical.notna()
    ends[has_barrier] = index.searchsorted(vertical[has_barrier], side="right") - 1
    first_touch: list[pd.Timestamp] = []
    for start, end, width, direction, barrier in zip(
        starts, ends, trgt.to_numpy(), side_.to_numpy(), vertical, strict=True
    ):
        path = (prices[start : end + 1] / prices[start] - 1.0) * direction
        touches = [barrier] if not pd.isna(barrier) else []
        if profit_taking > 0:
            above = np.flatnonzero(path > profit_taking * width)
            if len(above):
                touches.append(index[start + above[0]])
        if stop_loss > 0:
            below = np.flatnonzero(path < -stop_loss * width)
            if len(below):
                touches.append(index[start + below[0]])
        first_touch.append(min(touches) if touches else pd.NaT)

    events = pd.DataFrame(
        {"t1": pd.DatetimeIndex(first_touch, tz=index.tz), "trgt": trgt.to_numpy()},
        index=trgt.index,
    )
    if side is not None:
        events["side"] = side_.to_numpy()
    return events


def get_bins(events: pd.DataFrame, close: pd.Series) -> pd.DataFrame:
    """Label each event by the return to its first barrier touch (AFML snippet 3.7).

    ``ret = close[t1] / close[t0] - 1`` (times ``side`` when the events have one). Without
    ``side``: ``bin = sign(ret)`` (-1, 0, 1). With ``side`` (meta-labelling): ``bin = 1`` if the
    side's return is > 0, else 0 — whether to act on the primary model's call.

    Parameters
    ----------
    events : pd.DataFrame
        :func:`get_events` output (``t1``, optionally ``side``); events with no ``t1`` are
        dropped, as in the book.
    close : pd.Series
        The closes the events were built on.

    Returns
    -------
    pd.DataFrame
        Indexed by event: ``ret`` (fraction) and ``bin``.
    """
    close = _check_close(close)
    labelled = events.dropna(subset=["t1"])
    _check_events_in(labelled.index, close, "event")
    _check_events_in(pd.DatetimeIndex(labelled["t1"]), close, "t1")
    start_prices = close.reindex(labelled.index).to_numpy()
    end_prices = close.reindex(pd.DatetimeIndex(labelled["t1"])).to_numpy()
    returns = end_prices / start_prices - 1.0
    if "side" in labelled:
        returns = returns * labelled["side"].to_numpy()
        bins = (returns > 0).astype(float)
    else:
        bins = np.sign(returns)
    return pd.DataFrame({"ret": returns, "bin": bins}, index=labelled.index)


def _label_spans(events: pd.DataFrame | pd.Series, close: pd.Series) -> tuple[np.ndarray, ...]:
    """Bar positions ``(start, end)`` (inclusive) of each label's [t0, t1] on ``close``."""
    t1 = events["t1"] if isinstance(events, pd.DataFrame) else events
    t1 = t1.fillna(close.index[-1])  # an open label runs to the last bar (AFML snippet 4.1)
    _check_events_in(t1.index, close, "event")
    if (pd.DatetimeIndex(t1.to_numpy()) < t1.index).any():
        bad = t1.index[pd.DatetimeIndex(t1.to_numpy()) < t1.index][0]
        raise ValueError(f"the label at {bad} ends (t1 = {t1[bad]}) before it starts")
    starts = close.index.get_indexer(t1.index)
    ends = close.index.searchsorted(pd.DatetimeIndex(t1.to_numpy()), side="right") - 1
    return starts, ends


def sample_uniqueness(events: pd.DataFrame | pd.Series, close: pd.Series) -> pd.Series:
    """Average uniqueness of each label (AFML snippets 4.1, 4.2).

    The label of an event spans the bars t0..t1 (inclusive). ``c_t`` is the number of labels
    spanning bar t; the uniqueness of a label at t is ``1 / c_t`` and its average uniqueness is
    the mean of ``1 / c_t`` over its bars. A label that overlaps no other has 1; n labels over
    exactly the same bars have 1/n each. Use it as a sample weight (or its mean as the bagging
    ``max_samples``).

    Parameters
    ----------
    events : pd.DataFrame | pd.Series
        :func:`get_events` output (its ``t1`` column) or the ``t1`` Series itself, indexed by
        event; a NaT ``t1`` runs to the last bar.
    close : pd.Series
        The bars the labels are defined on.

    Returns
    -------
    pd.Series
        ``tW`` per event, in (0, 1].
    """
    close = _check_close(close)
    starts, ends = _label_spans(events, close)
    # Concurrency per bar by a difference array: +1 at each start, -1 after each end.
    changes = np.zeros(len(close) + 1)
    np.add.at(changes, starts, 1.0)
    np.add.at(changes, ends + 1, -1.0)
    concurrency = np.cumsum(changes[:-1])
    inverse = np.divide(1.0, concurrency, out=np.zeros_like(concurrency), where=concurrency > 0)
    cumulative = np.concatenate([[0.0], np.cumsum(inverse)])
    average = (cumulative[ends + 1] - cumulative[starts]) / (ends - starts + 1)
    index = events.index
    return pd.Series(average, index=index, name="tW")


def fixed_horizon_return(close: pd.Series, horizon: int) -> pd.Series:
    """Forward simple return over ``horizon`` bars: ``close[t + horizon] / close[t] - 1``.

    A label (it looks ahead by design); the last ``horizon`` bars are NaN.
    """
    close = _check_close(close)
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1 bar, got {horizon}")
    return (close.shift(-horizon) / close - 1.0).rename(f"ret_{horizon}")


def direction_label(close: pd.Series, horizon: int, threshold: float) -> pd.Series:
    """Direction of the forward ``horizon``-bar return with a dead zone.

    1 where the return is ``> threshold``, -1 where it is ``< -threshold``, else 0 (float; NaN on
    the last ``horizon`` bars, which have no forward return). ``threshold`` is a return fraction.
    """
    if threshold < 0:
        raise ValueError(f"threshold must be non-negative, got {threshold}")
    returns = fixed_horizon_return(close, horizon)
    labels = np.where(returns > threshold, 1.0, np.where(returns < -threshold, -1.0, 0.0))
    labels[returns.isna().to_numpy()] = np.nan
    return pd.Series(labels, index=returns.index, name=f"direction_{horizon}")


def volatility_regime(
    close: pd.Series, window: int, quantiles: tuple[float, float] = (1 / 3, 2 / 3)
) -> pd.Series:
    """Volatility regime at each bar from data up to that bar: 0 low, 1 medium, 2 high.

    ``vol_t`` is the sample standard deviation of the last ``window`` log returns ending at t.
    The regime compares ``vol_t`` with the ``quantiles`` of ``vol`` over an expanding window
    ending at t (t included): 0 when ``vol_t <= q_low``, 1 when ``<= q_high``, else 2. Causal:
    the value at t is the same whether the series ends at t or later. NaN until ``window``
    volatilities exist (the first regime is at bar ``2 * window - 1``).
    """
    close = _check_close(close)
    if window < 2:
        raise ValueError(f"window must be at least 2 returns, got {window}")
    low, high = quantiles
    if not 0 < low < high < 1:
        raise ValueError(f"quantiles must satisfy 0 < low < high < 1, got {quantiles!r}")
    volatility = np.log(close).diff().rolling(window).std()
    history = volatility.expanding(min_periods=window)
    low_cut = history.quantile(low)
    high_cut = history.quantile(high)
    regime = np.where(volatility <= low_cut, 0.0, np.where(volatility <= high_cut, 1.0, 2.0))
    regime[low_cut.isna().to_numpy()] = np.nan
    return pd.Series(regime, index=close.index, name="vol_regime")


def target_table(
    close: pd.Series,
    horizons: Sequence[int] = (1, 5, 15),
    *,
    direction_threshold: float = 0.0,
    regime_window: int = 20,
) -> pd.DataFrame:
    """The multi-target table on the bars of ``close``.

    Columns, in order: ``ret_{h}`` (:func:`fixed_horizon_return`) and ``direction_{h}``
    (:func:`direction_label` with ``direction_threshold``) for each horizon h in bars, then
    ``vol_regime`` (:func:`volatility_regime` over ``regime_window`` returns, causal).
    Forward targets are NaN on the last h bars; nothing is dropped.
    """
    columns: dict[str, pd.Series] = {}
    for horizon in horizons:
        columns[f"ret_{horizon}"] = fixed_horizon_return(close, horizon)
        columns[f"direction_{horizon}"] = direction_label(close, horizon, direction_threshold)
    columns["vol_regime"] = volatility_regime(close, regime_window)
    return pd.DataFrame(columns, index=close.index)
