"""Session and rolling VWAP (strategies.indicators) against first-principles computations and
Nautilus' own VolumeWeightedAveragePrice; WindowBands/WindowMean against Nautilus' BollingerBands
and SimpleMovingAverage, bit for bit."""

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.indicators import BollingerBands
from nautilus_trader.indicators import SimpleMovingAverage
from nautilus_trader.indicators import VolumeWeightedAveragePrice
from nautilus_trader.model.data import BarType
from strategies_kit import make_bars

from strategies.indicators import RollingVwap
from strategies.indicators import SessionSchedule
from strategies.indicators import SessionVwap
from strategies.indicators import WindowBands
from strategies.indicators import WindowMean

NS = 1_000_000_000


def ts(text: str) -> int:
    return pd.Timestamp(text).value


def synthetic_sessions(days: int, seed: int = 3) -> list:
    """1-minute bars of ``days`` weekday sessions, 14:31-21:00 UTC (like the synthetic market)."""
    rng = np.random.default_rng(seed)
    stamps = []
    for day in pd.bdate_range("2024-01-02", periods=days, tz="UTC"):
        first = day + pd.Timedelta(hours=14, minutes=31)
        stamps += [first + pd.Timedelta(minutes=i) for i in range(390)]
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 5e-4, len(stamps))))
    rows = []
    for close in closes:
        spread = abs(rng.normal(0, 0.05)) + 0.01
        rows.append((close, close + spread, close - spread, close, float(rng.integers(1, 5000))))
    return make_bars(rows, timestamps=stamps)


def reference_session_vwap(bars, session_of) -> list[float]:
    frame = pd.DataFrame(
        {
            "tp": [
                (b.high.as_double() + b.low.as_double() + b.close.as_double()) / 3 for b in bars
            ],
            "v": [b.volume.as_double() for b in bars],
            "session": [session_of(b.ts_event) for b in bars],
        },
    )
    frame["pv"] = frame["tp"] * frame["v"]
    grouped = frame.groupby("session", sort=False)
    return list(grouped["pv"].cumsum() / grouped["v"].cumsum())


def test_session_vwap_matches_nautilus_on_sessions_inside_one_utc_day():
    bars = synthetic_sessions(3)
    ours, theirs = SessionVwap(SessionSchedule("UTC", "14:30")), VolumeWeightedAveragePrice()
    values = []
    for bar in bars:
        ours.handle_bar(bar)
        theirs.handle_bar(bar)
        values.append((ours.value, theirs.value))
    assert np.allclose([v[0] for v in values], [v[1] for v in values], rtol=1e-12)
    reference = reference_session_vwap(bars, lambda t: pd.Timestamp(t, tz="UTC").date())
    assert np.allclose([v[0] for v in values], reference, rtol=1e-12)
    assert ours.bars_in_session == 390


def test_session_crossing_utc_midnight_resets_at_the_local_start():
    # CME-style session: 17:00 Chicago to 16:00 next day. Nautilus' VWAP resets at UTC midnight,
    # in the middle of the session; SessionVwap resets at 17:00 Chicago (23:00 UTC in winter).
    start = pd.Timestamp("2024-01-09 21:01", tz="UTC")
    stamps = [start + pd.Timedelta(minutes=10 * i) for i in range(36)]  # to 02:51 UTC
    rows = [
        (100 + i * 0.1, 100.2 + i * 0.1, 99.9 + i * 0.1, 100 + i * 0.1, 100.0 + i)
        for i in range(36)
    ]
    bars = make_bars(rows, timestamps=stamps)
    schedule = SessionSchedule("America/Chicago", "17:00", "16:00")
    vwap = SessionVwap(schedule)
    starts = []
    for bar in bars:
        vwap.handle_bar(bar)
        starts.append(vwap.session_start_ns)
    boundary = ts("2024-01-09 23:00Z")
    assert sorted(set(starts)) == [ts("2024-01-08 23:00Z"), boundary]
    reference = reference_session_vwap(bars, lambda t: t > boundary)
    assert vwap.value == pytest.approx(reference[-1], rel=1e-12)
    # The session's close is on the next calendar day, 16:00 Chicago = 22:00 UTC.
    assert schedule.session_close_ns(bars[-1].ts_event) == ts("2024-01-10 22:00Z")


def test_session_start_follows_daylight_saving_time():
    schedule = SessionSchedule("America/New_York", "09:30", "16:00")
    # Winter: 09:30 New York = 14:30 UTC; summer: 13:30 UTC.
    assert schedule.session_start_ns(ts("2024-03-08 15:00Z")) == ts("2024-03-08 14:30Z")
    assert schedule.session_start_ns(ts("2024-03-11 14:00Z")) == ts("2024-03-11 13:30Z")
    assert schedule.session_close_ns(ts("2024-03-11 14:00Z")) == ts("2024-03-11 20:00Z")


def test_a_bar_closing_exactly_at_the_session_start_belongs_to_the_previous_session():
    schedule = SessionSchedule("UTC", "14:30")
    assert schedule.session_start_ns(ts("2024-01-02 14:30Z")) == ts("2024-01-01 14:30Z")
    assert schedule.session_start_ns(ts("2024-01-02 14:31Z")) == ts("2024-01-02 14:30Z")


def test_invalid_session_settings_name_the_field():
    with pytest.raises(ValueError, match="session_timezone: unknown time zone"):
        SessionSchedule("Mars/Olympus")
    with pytest.raises(ValueError, match="session_start: expected a time of day"):
        SessionSchedule("UTC", "9h30")


def test_rolling_vwap_is_the_windowed_volume_weighted_typical_price():
    bars = synthetic_sessions(2)[:700]
    window = 20
    vwap = RollingVwap(window)
    values, ready = [], []
    for bar in bars:
        vwap.handle_bar(bar)
        values.append(vwap.value)
        ready.append(vwap.initialized)
    tp = np.array(
        [(b.high.as_double() + b.low.as_double() + b.close.as_double()) / 3 for b in bars]
    )
    v = np.array([b.volume.as_double() for b in bars])
    pv = pd.Series(tp * v).rolling(window).sum() / pd.Series(v).rolling(window).sum()
    assert np.allclose(values[window - 1 :], pv[window - 1 :], rtol=1e-10)
    assert ready.index(True) == window - 1


def test_rolling_vwap_stays_exact_over_long_runs():
    vwap = RollingVwap(3)
    rng = np.random.default_rng(1)
    prices = rng.uniform(1e4, 2e4, 5000)
    volumes = rng.uniform(0, 1e6, 5000)
    for price, volume in zip(prices, volumes, strict=True):
        vwap.update_raw(float(price), float(volume))
    expected = np.dot(prices[-3:], volumes[-3:]) / volumes[-3:].sum()
    assert vwap.value == pytest.approx(expected, rel=1e-12)


def test_zero_volume_falls_back_to_the_mean_typical_price():
    rolling, session = RollingVwap(3), SessionVwap()
    for i, price in enumerate((10.0, 11.0, 12.0, 13.0)):
        rolling.update_raw(price, 0.0)
        session.update_raw(price, 0.0, ts("2024-01-02 15:00Z") + i * 60 * NS)
    assert rolling.value == pytest.approx(12.0)
    assert session.value == pytest.approx(11.5)
    # Volume in the window dominates as soon as there is any; when it leaves, the mean is back.
    rolling.update_raw(20.0, 5.0)
    assert rolling.value == pytest.approx(20.0)
    for _ in range(3):
        rolling.update_raw(30.0, 0.0)
    assert rolling.value == pytest.approx(30.0)


def test_vwap_indicators_reset():
    vwap = RollingVwap(2)
    vwap.update_raw(10.0, 1.0)
    vwap.update_raw(12.0, 1.0)
    assert vwap.initialized
    vwap.reset()
    assert not vwap.initialized
    assert vwap.value == 0.0
    daily = make_bars(
        [(10, 11, 9, 10, 5)], bar_type=BarType.from_str("TEST.SIM-1-DAY-LAST-EXTERNAL")
    )
    vwap.handle_bar(daily[0])
    assert vwap.value == pytest.approx(10.0)


@pytest.mark.parametrize("period", [1, 2, 5, 20, 37])
def test_window_bands_and_mean_equal_nautilus_bit_for_bit(period):
    # S2's bands and S3's volume mean replaced Nautilus' BollingerBands / SimpleMovingAverage:
    # every value, flag and reset must be the same double, or the decisions change.
    rng = np.random.default_rng(period)
    closes = (100 * np.exp(np.cumsum(rng.normal(0, 3e-3, 1500)))).tolist()
    volumes = rng.lognormal(8, 1.5, 1500).tolist()
    theirs_bands, ours_bands = BollingerBands(period, 1.0), WindowBands(period, 1.0)
    theirs_mean, ours_mean = SimpleMovingAverage(period), WindowMean(period)
    for i, (close, volume) in enumerate(zip(closes, volumes, strict=True)):
        if i == 900:  # a reset mid-stream, as on_reset does
            for indicator in (theirs_bands, ours_bands, theirs_mean, ours_mean):
                indicator.reset()
        high, low = close * 1.001, close * 0.998
        theirs_bands.update_raw(high, low, close)
        ours_bands.update_raw(high, low, close)
        theirs_mean.update_raw(volume)
        ours_mean.update_raw(volume)
        assert (ours_bands.upper, ours_bands.middle, ours_bands.lower) == (
            theirs_bands.upper,
            theirs_bands.middle,
            theirs_bands.lower,
        ), i
        assert (ours_bands.initialized, ours_bands.has_inputs) == (
            theirs_bands.initialized,
            theirs_bands.has_inputs,
        ), i
        assert (ours_mean.value, ours_mean.count, ours_mean.initialized) == (
            theirs_mean.value,
            theirs_mean.count,
            theirs_mean.initialized,
        ), i
    ours_bands.reset()
    ours_mean.reset()
    assert not ours_bands.initialized and ours_bands.upper == 0.0
    assert not ours_mean.initialized and ours_mean.value == 0.0 and ours_mean.count == 0


def test_window_indicators_reject_bad_parameters():
    with pytest.raises(ValueError, match="period"):
        WindowMean(0)
    with pytest.raises(ValueError, match="period"):
        WindowBands(0, 1.0)
    with pytest.raises(ValueError, match="k must"):
        WindowBands(20, 0.0)
