"""research.labels against definitions: hand-computed toy series (AFML ch. 2–4)."""

import numpy as np
import pandas as pd
import pytest

from research.labels import add_vertical_barrier
from research.labels import cusum_filter
from research.labels import direction_label
from research.labels import fixed_horizon_return
from research.labels import get_bins
from research.labels import get_daily_vol
from research.labels import get_events
from research.labels import sample_uniqueness
from research.labels import target_table
from research.labels import volatility_regime


def daily(values: list[float], start: str = "2024-01-01") -> pd.Series:
    """Closes on consecutive days at 21:00 UTC."""
    index = pd.date_range(f"{start} 21:00", periods=len(values), freq="D", tz="UTC")
    return pd.Series(values, index=index, dtype=float)


def from_log_returns(returns: list[float]) -> pd.Series:
    return daily(list(100.0 * np.exp(np.cumsum([0.0, *returns]))))


def test_cusum_samples_at_the_known_crossings():
    # s+ : .02, .04 > .03 → event at bar 2, reset; s- : -.01, -.06 < -.03 → event at bar 4;
    # then s+ : .01, .02, .025 stays below .03.
    close = from_log_returns([0.02, 0.02, -0.01, -0.05, 0.01, 0.01, 0.005])
    events = cusum_filter(close, 0.03)
    assert list(events) == [close.index[2], close.index[4]]


def test_cusum_threshold_series_is_read_per_bar():
    close = from_log_returns([0.02, 0.02, -0.01, -0.05, 0.01, 0.01, 0.005])
    # A lower threshold from bar 5 on: s+ after bar 5 is .01+.01 = .02 > .015 → event at bar 6.
    threshold = pd.Series([0.03] * 6 + [0.015] * 2, index=close.index)
    assert list(cusum_filter(close, threshold)) == [close.index[i] for i in (2, 4, 6)]
    with pytest.raises(ValueError, match="threshold must be positive and finite"):
        cusum_filter(close, threshold.where(threshold.index != close.index[3]))


def test_daily_vol_is_ewm_std_of_one_day_returns():
    close = daily([100, 101, 99, 102, 103, 101, 104, 105])
    expected = close.pct_change().dropna().ewm(span=3).std()
    pd.testing.assert_series_equal(
        get_daily_vol(close, span=3), expected, check_names=False, check_freq=False
    )


def test_daily_vol_on_hourly_bars_uses_the_bar_a_day_back():
    index = pd.date_range("2024-01-01", periods=60, freq="h", tz="UTC")
    close = pd.Series(100.0 + np.arange(60.0) ** 1.5 / 10, index=index)
    vol = get_daily_vol(close, span=5)
    assert vol.index[0] == index[24]
    one_day = close.iloc[24:].to_numpy() / close.iloc[:-24].to_numpy() - 1
    expected = pd.Series(one_day, index=index[24:]).ewm(span=5).std()
    np.testing.assert_allclose(vol.to_numpy(), expected.to_numpy(), rtol=1e-12)


def test_vertical_barrier_is_the_first_bar_a_day_later():
    # A weekend gap: Friday's barrier is Monday's bar; the last bar has none.
    index = pd.DatetimeIndex(
        ["2024-01-04", "2024-01-05", "2024-01-08", "2024-01-09"], tz="UTC"
    ) + pd.Timedelta(hours=21)
    close = pd.Series([1.0, 2.0, 3.0, 4.0], index=index)
    barriers = add_vertical_barrier(index, close, num_days=1)
    assert list(barriers.index) == list(index[:3])
    assert list(barriers) == [index[1], index[2], index[3]]


def triple_barrier_close() -> pd.Series:
    # Three 4-bar episodes starting at bars 0, 4 and 8 (each starts at 100).
    up = [100, 100.5, 101.5, 99.0]  # up 1.5 % at bar 2 (then down)
    down = [100, 99.5, 98.8, 101.0]  # down 1.2 % at bar 6 (then up)
    flat = [100, 100.2, 99.9, 100.1, 100.0]  # inside ±1 % until the vertical barrier at bar 10
    return daily([*up, *down, *flat])


def test_triple_barrier_upper_lower_and_vertical_first():
    close = triple_barrier_close()
    t_events = close.index[[0, 4, 8]]
    vertical = pd.Series(close.index[[3, 7, 10]], index=t_events)
    target = pd.Series(0.01, index=close.index)
    events = get_events(close, t_events, [1, 1], target, 0.0, vertical)
    assert list(events["t1"]) == list(close.index[[2, 6, 10]])
    assert list(events["trgt"]) == [0.01] * 3
    assert "side" not in events
    bins = get_bins(events, close)
    np.testing.assert_allclose(bins["ret"], [0.015, -0.012, -0.001], atol=1e-12)
    assert list(bins["bin"]) == [1, -1, -1]


def test_a_disabled_or_wider_barrier_is_not_touched():
    close = triple_barrier_close()
    t_events = close.index[[0, 4]]
    vertical = pd.Series(close.index[[3, 7]], index=t_events)
    target = pd.Series(0.01, index=close.index)
    # pt = 0 disables profit taking: the first episode runs to its vertical barrier at bar 3,
    # where it is down 1 %, not below -1 %: the stop is not touched either.
    no_pt = get_events(close, t_events, [0, 1], target, 0.0, vertical)
    assert list(no_pt["t1"]) == list(close.index[[3, 6]])
    # (pt, sl) = (2, 1) is honoured without side: +1.5 % is below the 2 % upper barrier.
    wide_pt = get_events(close, t_events, (2, 1), target, 0.0, vertical)
    assert list(wide_pt["t1"]) == list(close.index[[3, 6]])


def test_meta_labels_follow_the_side():
    close = triple_barrier_close()
    # The falling episode from bar 4 (100, 99.5, 98.8): for a short its -1.2 % at bar 6 is
    # +1.2 %, profit taking → bin 1; for a long the stop is hit there → bin 0 (do not act).
    t_events = close.index[[4]]
    vertical = pd.Series(close.index[[7]], index=t_events)
    target = pd.Series(0.01, index=close.index)
    labels = {}
    for side in (-1.0, 1.0):
        events = get_events(
            close, t_events, [1, 1], target, 0.0, vertical, side=pd.Series(side, index=t_events)
        )
        assert list(events["side"]) == [side]
        assert list(events["t1"]) == [close.index[6]]
        labels[side] = get_bins(events, close)
    np.testing.assert_allclose(labels[-1.0]["ret"], [0.012], atol=1e-12)
    assert list(labels[-1.0]["bin"]) == [1.0]
    np.testing.assert_allclose(labels[1.0]["ret"], [-0.012], atol=1e-12)
    assert list(labels[1.0]["bin"]) == [0.0]


def test_min_ret_and_missing_target_drop_events():
    close = triple_barrier_close()
    t_events = close.index[[0, 4, 8]]
    target = pd.Series([0.01, 0.002, np.nan], index=t_events).reindex(close.index)
    events = get_events(close, t_events, 1, target, 0.005)
    assert list(events.index) == [close.index[0]]


def test_bad_events_are_named():
    close = triple_barrier_close()
    stray = pd.DatetimeIndex([close.index[0] + pd.Timedelta(hours=1)])
    with pytest.raises(ValueError, match="not bars of close"):
        get_events(close, stray, 1, pd.Series(0.01, index=close.index), 0.0)
    with pytest.raises(ValueError, match="side must be 1 or -1"):
        get_events(
            close,
            close.index[[0]],
            1,
            pd.Series(0.01, index=close.index),
            0.0,
            side=pd.Series([0.5], index=close.index[[0]]),
        )
    shuffled = close.iloc[[1, 0, 2]]
    with pytest.raises(ValueError, match="row 1"):
        cusum_filter(shuffled, 0.01)


def test_uniqueness_of_known_overlaps():
    close = daily([100.0] * 10)
    bars = close.index
    # A spans bars 0-3, B 2-5, C 7-8 alone. Concurrency: 1 1 2 2 1 1 0 1 1.
    t1 = pd.Series(bars[[3, 5, 8]], index=bars[[0, 2, 7]])
    weights = sample_uniqueness(t1, close)
    np.testing.assert_allclose(weights, [0.75, 0.75, 1.0], rtol=1e-12)
    # The same through an events frame; an open label (NaT) runs to the last bar.
    events = pd.DataFrame({"t1": pd.DatetimeIndex([bars[9], pd.NaT])}, index=bars[[4, 6]])
    # Both span 6..9 together; the first also 4..5 alone: (1+1+4*.5)/6 and 4*.5/4.
    np.testing.assert_allclose(sample_uniqueness(events, close), [4 / 6, 0.5], rtol=1e-12)


def test_identical_labels_share_uniqueness():
    close = daily([100.0] * 6)
    t1 = pd.Series(close.index[[4, 4, 4]], index=close.index[[1, 1, 1]])
    np.testing.assert_allclose(sample_uniqueness(t1, close), [1 / 3] * 3, rtol=1e-12)


def test_fixed_horizon_return_and_direction():
    close = daily([100, 101, 100.5, 103, 102])
    returns = fixed_horizon_return(close, 2)
    np.testing.assert_allclose(returns.iloc[:3], [0.005, 103 / 101 - 1, 102 / 100.5 - 1])
    assert returns.iloc[3:].isna().all()
    direction = direction_label(close, 2, threshold=0.01)
    # .5 % is inside the ±1 % dead zone; +1.98 % and +1.49 % are up.
    assert list(direction.iloc[:3]) == [0.0, 1.0, 1.0]
    assert direction.iloc[3:].isna().all()
    assert list(direction_label(daily([100, 98, 99]), 1, 0.0).iloc[:2]) == [-1.0, 1.0]


def random_walk(n: int, seed: int, scale: np.ndarray | float = 0.01) -> pd.Series:
    rng = np.random.default_rng(seed)
    return from_log_returns(list(rng.normal(0.0, 1.0, n) * scale))


def test_volatility_regime_is_causal():
    close = random_walk(400, seed=3, scale=np.repeat([0.005, 0.02, 0.01, 0.03], 100))
    full = volatility_regime(close, window=10)
    for cut in (40, 157, 260, 399):
        prefix = volatility_regime(close.iloc[:cut], window=10)
        pd.testing.assert_series_equal(prefix, full.iloc[:cut])
    assert full.iloc[: 2 * 10 - 1].isna().all()
    assert full.iloc[2 * 10 - 1 :].notna().all()
    assert set(full.dropna().unique()) == {0.0, 1.0, 2.0}


def test_volatility_regime_tracks_a_volatility_change():
    # 200 calm bars then 60 at eight times the volatility: once the 10-return window is inside
    # the turbulence, its volatility is above two thirds of all the history (quantiles expand
    # with the history, so a long turbulent stretch would become "medium" in time).
    close = random_walk(260, seed=5, scale=np.repeat([0.002, 0.016], [200, 60]))
    regime = volatility_regime(close, window=10)
    assert (regime.iloc[211:] == 2.0).all()
    assert (regime.iloc[60:200] == 2.0).mean() < 0.5


def test_target_table_columns():
    close = random_walk(80, seed=7)
    table = target_table(close, horizons=(1, 5), direction_threshold=0.001, regime_window=10)
    assert list(table.columns) == ["ret_1", "direction_1", "ret_5", "direction_5", "vol_regime"]
    assert table.index.equals(close.index)
    pd.testing.assert_series_equal(table["ret_5"], fixed_horizon_return(close, 5))
    pd.testing.assert_series_equal(table["vol_regime"], volatility_regime(close, 10))


def test_first_touch_matches_the_definition_on_a_random_walk():
    index = pd.date_range("2024-01-01", periods=600, freq="h", tz="UTC")
    rng = np.random.default_rng(11)
    close = pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.004, 600))), index=index)
    t_events = cusum_filter(close, 0.01)
    vertical = add_vertical_barrier(t_events, close, num_days=2)
    target = pd.Series(0.01, index=index)
    events = get_events(close, t_events, (1, 2), target, 0.0, vertical)
    assert len(events) > 20
    for t0, t1 in events["t1"].items():
        if pd.isna(t1):  # no vertical barrier (too close to the end) and no touch before it
            assert t0 not in vertical.index
            path = close.loc[t0:] / close[t0] - 1
            assert ((path <= 0.01) & (path >= -0.02)).all()
            continue
        barrier = vertical.get(t0, index[-1])
        assert t0 < t1 <= barrier
        path = close.loc[t0:t1] / close[t0] - 1
        # Inside both horizontal barriers until t1; at t1 outside one of them or at the vertical.
        assert ((path.iloc[:-1] <= 0.01) & (path.iloc[:-1] >= -0.02)).all()
        assert path.iloc[-1] > 0.01 or path.iloc[-1] < -0.02 or t1 == barrier
