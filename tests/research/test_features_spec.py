"""Feature specs and sets: names, warm-ups, versions, and YAML errors that name what to fix."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from grodt.cli import main
from research.features import FeatureDefinitionError
from research.features import FeatureSet
from research.features import FeatureSpec

DEFAULT_SET = str(Path(__file__).resolve().parents[2] / "node_configs/features/default.yaml")


def test_the_default_set_has_the_features_of_the_issue():
    feature_set = FeatureSet.from_yaml(DEFAULT_SET)
    kinds = {spec.kind for spec in feature_set}
    assert {"sma", "ema", "rsi", "macd", "bollinger_width", "atr", "obv", "vwap"} <= kinds
    assert {"volume_zscore", "volatility", "value_at_risk", "conditional_value_at_risk"} <= kinds
    periods = sorted(s.definition.params["periods"] for s in feature_set if s.kind == "log_return")
    assert periods == [1, 5, 15, 30, 60]
    assert feature_set.warm_up == 101  # VaR/CVaR over 100 returns need 101 bars


def test_names_warm_ups_and_versions():
    sma = FeatureSpec.create("sma", period=20)
    assert (sma.name, sma.columns, sma.warm_up) == ("sma_20", ("sma_20",), 20)
    assert FeatureSpec.create("log_return", periods=5).warm_up == 6
    assert FeatureSpec.create("volatility", window=20).warm_up == 21
    assert FeatureSpec.create("regime").columns == ("regime_bull", "regime_bear", "regime_sideways")
    # The version follows the definition and its parameters, not the name.
    assert sma.version == FeatureSpec.create("sma", name="trend", period=20).version
    assert sma.version != FeatureSpec.create("sma", period=21).version
    assert sma.version != FeatureSpec.create("ema", period=20).version
    assert len(sma.version) == 16


def test_a_set_version_changes_with_any_feature(tmp_path):
    one = tmp_path / "one.yaml"
    one.write_text("- {kind: sma, period: 20}\n- {kind: rsi}\n")
    two = tmp_path / "two.yaml"
    two.write_text("- {kind: sma, period: 20}\n- {kind: rsi, period: 9}\n")
    assert FeatureSet.from_yaml(one).version == FeatureSet.from_yaml(one).version
    assert FeatureSet.from_yaml(one).version != FeatureSet.from_yaml(two).version


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- {kind: smma, period: 3}\n", "feature 1: feature 'smma': unknown kind 'smma'"),
        ("- {kind: sma, window: 3}\n", "feature 1: feature 'sma': feature kind 'sma': unknown"),
        (
            "- {kind: sma}\n- {kind: sma, period: 0}\n",
            "feature 2: feature 'sma': feature kind 'sma': period must be >= 1",
        ),
        ("- {kind: sma, period: ten}\n", "period must be int, got 'ten'"),
        ("- {kind: correlation, window: 30}\n", "['reference'] required"),
        ("- {kind: obv, period: 0}\n", "period must be >= 1"),
        ("- {kind: macd, fast: 30, slow: 10}\n", "fast (30) must be below slow (10)"),
        ("- {kind: value_at_risk, level: 1.5}\n", "level must be in (0.5, 1)"),
        ("- {kind: sma, period: 5}\n- {kind: ema, name: sma_5}\n", "column 'sma_5'"),
        ("features: []\n", "non-empty list"),
        ("name: x\nfeature: []\n", "unknown key(s) ['feature']"),
        ("- sma\n", "feature 1: a mapping with a 'kind' is expected"),
        ("- {kind: [\n", "not valid YAML"),
    ],
)
def test_bad_feature_sets_name_the_file_feature_and_field(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(FeatureDefinitionError) as raised:
        FeatureSet.from_yaml(path)
    assert str(path) in str(raised.value)
    assert message in str(raised.value)


def test_show_lists_every_feature():
    result = CliRunner().invoke(main, ["features", "show", DEFAULT_SET])
    assert result.exit_code == 0, result.output
    assert "default: 18 features, 18 columns, warm-up 101 bars" in result.output
    assert "macd_12_26" in result.output and "macd(fast=12, slow=26)" in result.output


def test_show_says_what_is_wrong_with_a_set(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("- {kind: smma}\n")
    result = CliRunner().invoke(main, ["features", "show", str(path)])
    assert result.exit_code == 2
    assert "unknown kind 'smma'" in result.output
