"""The risk section: defaults, impossible values refused at start (naming ``risk.<field>``), the
shipped component files, the extension factory and ``grodt risk check``."""

from pathlib import Path

import msgspec
import pytest
import yaml
from click.testing import CliRunner

from grodt.cli import main
from grodt.core.errors import ConfigError
from node_configs.loader import import_object
from node_configs.loader import load_backtest_config
from node_configs.schema import BacktestNodeSpec
from risk_engine.config import parse_risk_config
from risk_engine.extension import create_extension

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "node_configs" / "components" / "risk"


def test_defaults_are_the_issue_defaults():
    config = parse_risk_config({})
    assert config.limits.max_weight == 0.25
    assert config.limits.trade_risk == 0.01
    assert config.limits.gross_exposure == 1.0
    assert config.hrp is None
    assert config.allow_resize


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"limits": {"max_weight": 1.5}}, "risk.limits.max_weight"),
        ({"limits": {"gross_exposure": -1}}, "risk.limits.gross_exposure"),
        ({"limits": {"net_exposure": 0}}, "risk.limits.net_exposure"),
        ({"limits": {"trade_risk": 2}}, "risk.limits.trade_risk"),
        ({"limits": {"max_order_notional": -10}}, "risk.limits.max_order_notional"),
        ({"limits": {"daily_loss": 1.0}}, "risk.limits.daily_loss"),
        ({"limits": {"max_drawdown": -0.1}}, "risk.limits.max_drawdown"),
        ({"limits": {"max_wieght": 0.2}}, "risk.limits.max_wieght"),
        (
            {"limits": {"groups": {"tech": {"members": ["AAPL.X"], "max_weight": 1.2}}}},
            "risk.limits.groups.tech.max_weight",
        ),
        (
            {"limits": {"groups": {"tech": {"members": ["not an id"], "max_weight": 0.2}}}},
            "risk.limits.groups.tech.members",
        ),
        ({"limits": {"missing_stop": "assume"}}, "risk.limits"),
        (
            {"limits": {"cvar": {"limit": 0.02, "alpha": 1.2}}, "hrp": {}},
            "risk.limits.cvar.alpha",
        ),
        ({"limits": {"cvar": {"limit": 0.02}}}, "risk: limits.cvar needs the hrp section"),
        ({"hrp": {"window": 50, "min_history": 60}}, "risk.hrp: min_history (60) exceeds"),
        ({"hrp": {"linkage": "ward"}}, "risk.hrp: textbook HRP uses single linkage"),
        ({"hrp": {"method": "nco"}}, "risk.hrp.method"),
        ({"hrp": {"sampling": "5 parsecs"}}, "risk.hrp.sampling"),
        ({"hrp": {"tolerance": -0.5}}, "risk.hrp.tolerance"),
        ({"hrp": {"bar_types": ["nonsense"]}}, "risk.hrp.bar_types"),
        ({"kill_switch": {"timezone": "Mars/Olympus"}}, "risk.kill_switch.timezone"),
        ({"kill_switch": {"day_start": "25:99"}}, "risk.kill_switch.day_start"),
    ],
)
def test_impossible_values_refuse_to_start_naming_the_field(section, field):
    with pytest.raises(ConfigError) as error:
        parse_risk_config(section)
    assert field in str(error.value)


def _node(tmp_path: Path, risk: dict | None) -> Path:
    document = {
        "name": "t",
        "venues": [{"name": "SAMPLE", "starting_balances": ["1000000 USD"]}],
        "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
        "strategies": [
            {
                "path": "strategies.ema_cross:EMACross",
                "config": {
                    "instrument_id": "SPX.SAMPLE",
                    "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
                },
            },
        ],
        "risk": risk,
    }
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


def test_node_config_error_names_the_file_and_the_risk_field(tmp_path):
    path = _node(tmp_path, {"limits": {"max_weight": 3}})
    with pytest.raises(ConfigError) as error:
        load_backtest_config(path)
    assert "node.yaml" in str(error.value)
    assert "risk.limits.max_weight" in str(error.value)


def test_node_config_includes_the_shared_component(tmp_path):
    path = _node(tmp_path, {"include": str(COMPONENTS / "default.yaml")})
    spec = load_backtest_config(path)
    assert spec.risk["limits"]["max_weight"] == 0.25


@pytest.mark.parametrize("name", ["default.yaml", "intraday.yaml", "stocks_sectors.yaml"])
def test_shipped_components_validate(name):
    result = CliRunner().invoke(main, ["risk", "check", str(COMPONENTS / name)])
    assert result.exit_code == 0, result.output
    assert "risk section OK" in result.output


@pytest.mark.parametrize("name", ["risk_rules_synthetic.yaml", "risk_rules_stocks.yaml"])
def test_shipped_backtest_configs_load(name):
    spec = load_backtest_config(REPO / "node_configs" / "backtest" / name)
    assert spec.risk is not None
    extension = create_extension(spec.risk, spec, None)
    (actor,) = extension.actors()
    assert len(actor.config["bar_types"]) == len(spec.data[0].bar_types)


def test_risk_check_reports_errors_with_exit_code_2(tmp_path):
    path = tmp_path / "risk.yaml"
    path.write_text("limits: {max_weight: 1.5}\n")
    result = CliRunner().invoke(main, ["risk", "check", str(path)])
    assert result.exit_code == 2
    assert "risk.limits.max_weight" in result.output


def test_extension_resolves_auto_bar_types_and_builds_a_valid_actor_config(tmp_path):
    spec = load_backtest_config(_node(tmp_path, {"hrp": {"window": 100, "min_history": 20}}))
    extension = create_extension(spec.risk, spec, tmp_path)
    (actor,) = extension.actors()
    assert actor.config["bar_types"] == ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]
    config_cls = import_object(actor.config_path)
    config_cls.parse(msgspec.json.encode(actor.config))  # what the node does when it builds
    import_object(actor.actor_path)
    assert extension.gate is None  # nothing opened before install


def test_auto_bar_types_without_any_is_an_error():
    spec = BacktestNodeSpec.model_validate(
        {
            "name": "t",
            "venues": [{"name": "SAMPLE", "starting_balances": ["1 USD"]}],
            "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
            "risk": {"hrp": {}},
        },
    )
    with pytest.raises(ConfigError, match=r"risk\.hrp\.bar_types"):
        create_extension(spec.risk, spec, None)
