"""Causal features: definitions against a vectorised reference, causality, invalid input."""

import math

import numpy as np
import pytest

from grodt.core.errors import ConfigError
from models.regime.features import FeatureExtractor
from models.regime.features import FeatureSpec
from models.regime.features import parse_features

ALL = ("log_return", "log_return:5", "realized_vol:20", "log_realized_vol:10", "trend:50")
ALL += ("efficiency:30",)


def reference(closes: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    """Each feature computed directly from its definition (pandas-free numpy)."""
    log_c = np.log(closes)
    r = np.diff(log_c, prepend=np.nan)
    out = np.full(len(closes), np.nan)
    w = spec.window
    for t in range(len(closes)):
        if t - w < 0:
            continue
        window = r[t - w + 1 : t + 1]
        if spec.kind == "log_return":
            out[t] = log_c[t] - log_c[t - w]
        elif spec.kind == "trend":
            out[t] = (log_c[t] - log_c[t - w]) / w
        elif spec.kind == "realized_vol":
            out[t] = math.sqrt(np.mean(window**2))
        elif spec.kind == "log_realized_vol":
            out[t] = 0.5 * math.log(np.mean(window**2))
        elif spec.kind == "efficiency":
            out[t] = (log_c[t] - log_c[t - w]) / np.abs(window).sum()
    return out


def test_features_match_their_definitions(series):
    closes = series[0][:600]
    specs = parse_features(ALL)
    values = FeatureExtractor(specs).transform(closes)
    warmup = max(s.lookback for s in specs)
    assert np.isnan(values[: warmup - 1]).all()
    assert np.isfinite(values[warmup - 1 :]).all()
    for column, spec in enumerate(specs):
        expected = reference(closes, spec)[warmup - 1 :]
        np.testing.assert_allclose(values[warmup - 1 :, column], expected, rtol=1e-10, atol=1e-15)


def test_rolling_sums_stay_exact_over_long_series():
    rng = np.random.default_rng(0)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 20_000)))
    spec = FeatureSpec.parse("realized_vol:20")
    values = FeatureExtractor([spec]).transform(closes)[:, 0]
    np.testing.assert_allclose(values[-500:], reference(closes, spec)[-500:], rtol=1e-12)


def test_features_at_t_do_not_depend_on_later_closes(series):
    closes = series[0][:400]
    extractor = FeatureExtractor(parse_features(ALL))
    full = extractor.transform(closes)
    altered = closes.copy()
    altered[250:] *= np.linspace(0.5, 2.0, 150)
    changed = extractor.transform(altered)
    np.testing.assert_array_equal(full[:250], changed[:250])
    assert not np.allclose(full[260:], changed[260:])


def test_invalid_close_is_not_admitted():
    extractor = FeatureExtractor(parse_features(["log_return"]))
    assert extractor.update(100.0) is None
    assert extractor.update(float("nan")) is None
    assert extractor.update(-1.0) is None
    assert extractor.count == 1
    (value,) = extractor.update(110.0)
    assert value == pytest.approx(math.log(1.1))


def test_flat_prices_give_a_non_finite_log_volatility():
    extractor = FeatureExtractor(parse_features(["log_return", "log_realized_vol:3"]))
    rows = [extractor.update(50.0) for _ in range(6)]
    assert rows[-1] is not None
    assert rows[-1][0] == 0.0
    assert rows[-1][1] == -math.inf


@pytest.mark.parametrize(
    ("specs", "message"),
    [
        (["log_return", "bogus:3"], r"features\[1\]: unknown feature kind 'bogus'"),
        (["trend"], r"features\[0\]: feature 'trend' needs a window"),
        (["trend:x"], r"features\[0\]: window of 'trend:x' must be an integer"),
        (["realized_vol:1", "trend:5"], r"features\[0\]: window .* at least 2"),
        (["log_return", "log_return:1"], r"features\[1\]: duplicate feature 'log_return'"),
        (["realized_vol:20"], r"features: needs a drift feature"),
        ([], r"features: at least one feature"),
    ],
)
def test_bad_feature_specs_name_the_item(specs, message):
    with pytest.raises(ConfigError, match=message):
        parse_features(specs)


def test_spec_round_trips_as_text():
    for text in ALL:
        assert str(FeatureSpec.parse(text)) == text
