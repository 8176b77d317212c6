"""The synthetic regime market: deterministic per seed, regimes distinguishable as designed."""

import numpy as np
import pandas as pd
import pytest

from catalogs.synthetic import REGIMES
from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market


@pytest.fixture(scope="module")
def market():
    return generate_market(SyntheticParams(days=60, seed=7))


def test_same_seed_same_market_other_seed_other_market():
    small = SyntheticParams(days=3, seed=3)
    first, again = generate_market(small), generate_market(small)
    for instrument_id, frame in first.frames.items():
        pd.testing.assert_frame_equal(frame, again.frames[instrument_id])
    pd.testing.assert_frame_equal(first.truth, again.truth)
    other = generate_market(SyntheticParams(days=3, seed=4))
    assert not first.frames["SYNA.XSYN"]["close"].equals(other.frames["SYNA.XSYN"]["close"])


def test_layout_sessions_and_truth(market):
    assert sorted(market.frames) == ["SYNA.XSYN", "SYNB.XSYN", "SYNC.XSYN", "SYND.XSYN"]
    frame = market.frames["SYNA.XSYN"]
    assert len(frame) == 60 * 390
    assert frame.index[0] == pd.Timestamp("2024-01-02 14:31", tz="UTC")
    assert frame.index[389] == pd.Timestamp("2024-01-02 21:00", tz="UTC")
    assert set(frame.index.dayofweek) <= {0, 1, 2, 3, 4}
    truth = market.truth
    assert truth.columns.tolist() == ["ts_event", "label", "p_bull", "p_bear", "p_sideways"]
    assert truth["ts_event"].tolist() == frame.index.asi8.tolist()
    weights = truth[["p_bull", "p_bear", "p_sideways"]].to_numpy()
    np.testing.assert_allclose(weights.sum(axis=1), 1.0)
    assert (truth["label"].to_numpy() == np.array(REGIMES)[weights.argmax(axis=1)]).all()
    # OHLC consistent; volume positive whole shares
    assert (frame["high"] >= frame[["open", "close"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    assert (frame["volume"] >= 1).all() and (frame["volume"] % 1 == 0).all()


def test_regimes_persist_with_a_few_dozen_transitions_and_mixtures(market):
    labels = market.truth["label"].to_numpy()
    transitions = int(np.count_nonzero(labels[1:] != labels[:-1]))
    assert 15 <= transitions <= 80
    assert set(labels) == set(REGIMES)
    weights = market.truth[["p_bull", "p_bear", "p_sideways"]].to_numpy()
    mixed = weights.max(axis=1) < 0.99
    assert 0.05 < mixed.mean() < 0.5  # blends exist but do not dominate


def _pure_intraday_returns(market, instrument_id):
    frame = market.frames[instrument_id]
    returns = np.log(frame["close"]).diff()
    same_session = frame.index.to_series().diff() == pd.Timedelta("1min")
    pure = market.truth[["p_bull", "p_bear", "p_sideways"]].max(axis=1).to_numpy() > 0.99
    keep = same_session.to_numpy() & pure
    return pd.DataFrame({"r": returns.to_numpy()[keep], "label": market.truth["label"][keep]})


def test_regimes_differ_in_drift_and_volatility_as_designed(market):
    for instrument_id in ("SYNA.XSYN", "SYNB.XSYN"):
        stats = _pure_intraday_returns(market, instrument_id).groupby("label")["r"]
        vol = stats.std()
        mean = stats.mean()
        assert vol["bear"] > 1.4 * vol["bull"] > 1.4 * 1.4 * vol["sideways"]
        assert mean["bull"] > 0 > mean["bear"]
        # per-bar vol of liquid 1-minute equity bars: a few basis points
        assert vol["sideways"] > 1e-4 and vol["bear"] < 2e-3


def test_sideways_mean_reverts(market):
    factor = pd.Series(market.factor)
    labels = market.truth["label"]
    pure = market.truth[["p_bull", "p_bear", "p_sideways"]].max(axis=1) > 0.99
    horizon = 120  # ~2.7 half-lives of the sideways pull
    # windows that stay inside one pure regime
    same = pure & pure.shift(-horizon, fill_value=False) & (labels == labels.shift(-horizon))
    moves = (factor.shift(-horizon) - factor).abs()[same]
    per_bar = factor.diff()[pure].groupby(labels[pure]).std()
    ratio = moves.groupby(labels[same]).mean() / (per_bar * np.sqrt(horizon))
    # a random walk's E|move| / (vol sqrt(h)) is sqrt(2/pi) = 0.8; the OU pull shrinks it
    assert ratio["bull"] > 0.7
    assert ratio["sideways"] < 0.8 * ratio["bull"]


def test_instruments_are_correlated_through_the_factor(market):
    returns = pd.DataFrame(
        {k: np.log(v["close"]).diff() for k, v in market.frames.items()}
    ).dropna()
    corr = returns.corr().to_numpy()
    off_diagonal = corr[~np.eye(4, dtype=bool)]
    assert off_diagonal.min() > 0.2
    assert corr[0, 1] > corr[0, 3]  # higher betas co-move more


def test_volume_is_u_shaped_and_reacts_to_regime(market):
    frame = market.frames["SYNB.XSYN"]
    minute = np.arange(len(frame)) % 390
    volume = frame["volume"].to_numpy()
    assert volume[minute < 30].mean() > 1.3 * volume[(minute > 150) & (minute < 240)].mean()
    assert volume[minute >= 360].mean() > volume[(minute > 150) & (minute < 240)].mean()
    by_label = pd.Series(volume).groupby(market.truth["label"].to_numpy()).mean()
    assert by_label["bear"] > by_label["bull"] > by_label["sideways"]


def test_overnight_gaps_exist(market):
    frame = market.frames["SYNA.XSYN"]
    first_bars = frame.iloc[390::390]
    previous_closes = frame["close"].iloc[389:-1:390].to_numpy()
    assert (first_bars["open"].to_numpy() != previous_closes).mean() > 0.9
