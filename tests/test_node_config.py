"""Node config loading: includes, and errors that name the file and the field path."""

from pathlib import Path

import pytest
import yaml

from grodt.core.errors import ConfigError
from node_configs.loader import load_backtest_config
from node_configs.loader import load_yaml_document

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"

STRATEGY = {
    "path": "strategies.ema_cross:EMACross",
    "config": {
        "instrument_id": "SPX.SAMPLE",
        "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
        "fast_ema_period": 10,
        "slow_ema_period": 30,
    },
}


def _node(**overrides) -> dict:
    document = {
        "name": "t",
        "venues": [
            {
                "name": "SAMPLE",
                "account_type": "CASH",
                "starting_balances": ["1000000 USD"],
            },
        ],
        "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
        "strategies": [STRATEGY],
    }
    document.update(overrides)
    return document


def _write(tmp_path: Path, document: dict, name: str = "node.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def test_demo_config_loads_through_includes():
    spec = load_backtest_config(DEMO)
    assert spec.name == "ema_cross_sp500"
    assert spec.venues[0].name == "SAMPLE"
    assert spec.strategies[0].path == "strategies.ema_cross:EMACross"
    assert spec.strategies[0].config["slow_ema_period"] == 50


def test_include_overrides_are_deep_merged(tmp_path):
    component = _write(tmp_path, STRATEGY, "strategy.yaml")
    document = _node(
        strategies=[{"include": component.name, "config": {"fast_ema_period": 5}}],
    )
    spec = load_backtest_config(_write(tmp_path, document))
    config = spec.strategies[0].config
    assert config["fast_ema_period"] == 5  # overridden
    assert config["slow_ema_period"] == 30  # kept from the included file
    assert config["instrument_id"] == "SPX.SAMPLE"


def test_unknown_key_names_its_path(tmp_path):
    document = _node()
    document["venues"][0]["starting_balance"] = ["1 USD"]  # typo for starting_balances
    with pytest.raises(ConfigError) as error:
        load_backtest_config(_write(tmp_path, document))
    message = str(error.value)
    assert "node.yaml" in message
    assert "venues[0].starting_balance" in message


def test_wrong_type_in_strategy_config_names_the_field(tmp_path):
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"], "fast_ema_period": "x"}}
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.config\.fast_ema_period"):
        load_backtest_config(_write(tmp_path, _node(strategies=[strategy])))


def test_strategy_config_invariant_is_reported(tmp_path):
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"], "fast_ema_period": 40}}
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.config.*must be less than"):
        load_backtest_config(_write(tmp_path, _node(strategies=[strategy])))


def test_unimportable_component(tmp_path):
    strategy = {"path": "strategies.nope:Missing", "config": {}}
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.path: cannot import"):
        load_backtest_config(_write(tmp_path, _node(strategies=[strategy])))


def test_missing_include_names_the_file(tmp_path):
    document = _node(strategies=[{"include": "missing.yaml"}])
    with pytest.raises(ConfigError, match=r"missing\.yaml: file not found"):
        load_backtest_config(_write(tmp_path, document))


def test_wrong_value_types_and_missing_fields(tmp_path):
    document = _node(chunk_size=-5)
    del document["data"]
    with pytest.raises(ConfigError) as error:
        load_backtest_config(_write(tmp_path, document))
    message = str(error.value)
    assert "chunk_size" in message
    assert "data: Field required" in message


def test_invalid_yaml_is_reported(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml: invalid YAML"):
        load_yaml_document(path)
