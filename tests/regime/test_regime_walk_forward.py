"""Walk-forward inference (the actor's path): causality with refits, prior, invalid input."""

import math

import numpy as np
import pandas as pd
import pytest

from grodt.core.errors import ConfigError
from models.regime.features import FeatureExtractor
from models.regime.hmm import GaussianRegimeHMM
from models.regime.hmm import RegimeFitError
from models.regime.walk_forward import STEP_COLUMNS
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import WalkForwardRegime
from models.regime.walk_forward import run_walk_forward

STAMPS_START = 1_704_205_860_000_000_000
MINUTE = 60_000_000_000


def stamps(n: int) -> np.ndarray:
    return STAMPS_START + MINUTE * np.arange(n, dtype=np.int64)


def quiet(_message: str) -> None:
    pass


@pytest.fixture(scope="module")
def walk(series, small_config) -> tuple[pd.DataFrame, WalkForwardRegime]:
    closes = series[0][:1500]
    return run_walk_forward(closes, stamps(len(closes)), small_config, on_info=quiet)


def assert_frames_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    numeric = ["ts_event", "p_bull", "p_bear", "p_sideways", "entropy"]
    np.testing.assert_allclose(a[numeric].to_numpy(), b[numeric].to_numpy(), rtol=0, atol=1e-12)
    for column in ("most_likely", "model_version", "status", "events"):
        assert a[column].tolist() == b[column].tolist(), column


def test_prior_until_the_first_fit_then_filtered(walk, small_config):
    frame, regime = walk
    warmup = FeatureExtractor(regime.extractor.specs).warmup_bars
    first_fit = warmup - 1 + small_config.first_fit_rows - 1  # bar index of the 400th row
    prior = frame.iloc[:first_fit]
    assert (prior["status"] == "prior").all()
    assert (prior["model_version"] == "prior").all()
    np.testing.assert_allclose(prior[["p_bull", "p_bear", "p_sideways"]], 1 / 3)
    assert frame.loc[first_fit, "status"] == "fitted"
    assert frame.loc[first_fit, "events"].startswith("fit")
    after = frame.iloc[first_fit + 1 :]
    assert set(after["status"]) == {"filtered", "fitted"}
    np.testing.assert_allclose(after[["p_bull", "p_bear", "p_sideways"]].sum(axis=1), 1.0)
    assert list(frame.columns) == ["ts_event", *STEP_COLUMNS]


def test_refits_follow_the_schedule(walk, small_config):
    frame, regime = walk
    rows = [fit.row for fit in regime.fits]
    assert rows[0] == small_config.first_fit_rows
    assert np.diff(rows).tolist() == [small_config.refit_every] * (len(rows) - 1)
    assert len(regime.fits) >= 4
    assert (frame["events"].str.contains("refit")).sum() == len(rows) - 1


def test_causality_of_the_walk_forward_path(series, small_config, walk):
    """Probabilities for bars 1..t computed on a prefix equal those on the full series (1e-12),
    at cut points before, at and after refits — and a different future changes nothing."""
    full, _ = walk
    closes = series[0][:1500]
    fit_bars = [int(full.index[full["status"] == "fitted"][i]) for i in range(3)]
    cuts = [120, fit_bars[0], fit_bars[0] + 1, fit_bars[1] - 1, fit_bars[2] + 7, 1499]
    for cut in cuts:
        prefix, _ = run_walk_forward(closes[:cut], stamps(cut), small_config, on_info=quiet)
        assert_frames_equal(prefix, full.iloc[:cut].reset_index(drop=True))
    altered = closes.copy()
    altered[1000:] = altered[1000] * np.exp(np.cumsum(np.full(500, -0.004)))
    other, _ = run_walk_forward(altered, stamps(1500), small_config, on_info=quiet)
    assert_frames_equal(other.iloc[:1000], full.iloc[:1000])
    assert not np.allclose(other["p_bear"].iloc[1100:], full["p_bear"].iloc[1100:])


def test_each_refit_uses_exactly_the_trailing_window_ending_at_its_bar(series, small_config, walk):
    """Refitting offline on the feature rows that end at the refit bar reproduces the model."""
    _, regime = walk
    closes = series[0][:1500]
    rows = FeatureExtractor(regime.extractor.specs).transform(closes)
    rows = rows[np.isfinite(rows).all(axis=1)]
    previous = None
    for fit in regime.fits:
        window = rows[max(0, fit.row - small_config.train_bars) : fit.row]
        model = small_config.new_model().fit(window, init_from=previous)
        assert model.version_ == fit.version
        previous = model


def test_invalid_close_skips_the_update_and_says_so(series, small_config):
    closes = series[0][:700].copy()
    closes[650] = float("nan")
    closes[660] = 0.0
    warnings: list[str] = []
    frame, regime = run_walk_forward(
        closes, stamps(700), small_config, on_warning=warnings.append, on_info=quiet
    )
    assert frame.loc[650, "status"] == "skipped" and frame.loc[660, "status"] == "skipped"
    assert regime.skipped == 2
    assert sum("not a positive finite number; regime update skipped" in w for w in warnings) == 2
    assert warnings[0].startswith("bar at 2024-01-03T01:21:00+00:00: close nan")
    probabilities = frame[["p_bull", "p_bear", "p_sideways"]].to_numpy()
    assert np.isfinite(probabilities).all()
    # the skipped bar only predicts: from a confident state, the prediction is less confident
    assert frame.loc[650, "entropy"] >= frame.loc[649, "entropy"] - 1e-12
    assert regime.rows == 700 - 2 - (regime.extractor.warmup_bars - 1)


def test_non_finite_feature_skips_the_update_and_says_so():
    closes = np.concatenate([100 * np.exp(np.cumsum(np.full(300, 0.001))), np.full(10, 50.0)])
    config = WalkForwardConfig(
        features=("log_return", "log_realized_vol:3"),
        train_bars=200,
        n_init=1,
    )
    warnings: list[str] = []
    frame, regime = run_walk_forward(
        closes, stamps(len(closes)), config, on_warning=warnings.append, on_info=quiet
    )
    assert any("feature log_realized_vol:3 is not finite" in w for w in warnings)
    assert (frame["status"].iloc[-5:] == "skipped").all()
    assert regime.skipped >= 5


def test_a_failed_fit_is_logged_and_retried(series, small_config, monkeypatch):
    original = GaussianRegimeHMM.fit
    calls = {"n": 0}

    def failing_once(self, x, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RegimeFitError("every EM run failed: injected")
        return original(self, x, **kwargs)

    monkeypatch.setattr(GaussianRegimeHMM, "fit", failing_once)
    warnings: list[str] = []
    frame, regime = run_walk_forward(
        series[0][:900], stamps(900), small_config, on_warning=warnings.append, on_info=quiet
    )
    assert regime.failed_fits == 1
    assert any("failed: every EM run failed: injected; keeping prior" in w for w in warnings)
    first_attempt = frame.index[frame["events"] == "fit_failed"][0]
    first_fit = frame.index[frame["status"] == "fitted"][0]
    assert (frame.loc[first_attempt : first_fit - 1, "status"] == "prior").all()
    assert first_fit - first_attempt == small_config.refit_every


def test_a_supplied_model_is_used_from_the_first_feature_row(series, small_config):
    closes = series[0]
    rows = FeatureExtractor(small_config.new_model().features).transform(closes[:800])
    model = small_config.new_model().fit(rows[np.isfinite(rows).all(axis=1)])
    config = WalkForwardConfig(**{**small_config.__dict__, "refit_every": 0})
    frame, regime = run_walk_forward(
        closes[1000:1300], stamps(300), config, model=model, on_info=quiet
    )
    warmup = regime.extractor.warmup_bars
    assert (frame["status"].iloc[: warmup - 1] == "prior").all()
    assert set(frame["model_version"].iloc[warmup - 1 :]) == {model.version_}
    assert regime.fits == []
    features = FeatureExtractor(model.features).transform(closes[1000:1300])
    expected = model.filter_proba(features[warmup - 1 :])
    np.testing.assert_allclose(
        frame[["p_bull", "p_bear", "p_sideways"]].to_numpy()[warmup - 1 :],
        expected,
        rtol=0,
        atol=1e-15,
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"train_bars": 100}, r"train_bars: 100 is too few bars to fit .* need at least 165"),
        ({"train_bars": 500, "min_train_bars": 600}, r"min_train_bars: must be in \[165, "),
        ({"refit_every": -1}, "refit_every: must be >= 0"),
        ({"n_states": 1}, "n_states: must be at least 2"),
        ({"features": ("bogus",)}, r"features\[0\]: unknown feature kind"),
    ],
)
def test_bad_schedules_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        WalkForwardConfig(**kwargs)


def test_a_model_with_other_features_is_refused(series, small_config):
    other = WalkForwardConfig(features=("log_return", "realized_vol:10"), train_bars=600)
    rows = FeatureExtractor(other.new_model().features).transform(series[0][:700])
    model = other.new_model().fit(rows[np.isfinite(rows).all(axis=1)])
    with pytest.raises(ConfigError, match="model: fitted on features"):
        WalkForwardRegime(small_config, model=model)


def test_entropy_and_most_likely_are_consistent(walk):
    frame, _ = walk
    p = frame[["p_bull", "p_bear", "p_sideways"]].to_numpy()
    entropy = -(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0)).sum(axis=1)
    np.testing.assert_allclose(frame["entropy"], entropy, atol=1e-12)
    assert frame["entropy"].max() <= math.log(3) + 1e-12
    fitted = frame["status"] != "prior"
    argmax = np.array(["bull", "bear", "sideways"])[p.argmax(axis=1)]
    assert (frame.loc[fitted, "most_likely"] == argmax[fitted]).all()
    assert (frame.loc[~fitted, "most_likely"] == "sideways").all()
