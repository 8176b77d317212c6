"""A config means what it says: unknown keys, bad values and empty runs are errors at load time,
naming the file and the field; hostile YAML is refused cheaply with a bounded message."""

import json
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from grodt.core.errors import ConfigError
from grodt.tracking.flatten import MAX_PARAMS
from grodt.tracking.flatten import flatten_params
from node_configs.bounded_yaml import MAX_DOCUMENT_BYTES
from node_configs.bounded_yaml import MAX_EXPANDED_NODES
from node_configs.bounded_yaml import read_yaml
from node_configs.loader import load_backtest_config
from node_configs.loader import load_yaml_document

BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
STRATEGY = {
    "path": "strategies.ema_cross:EMACross",
    "config": {
        "instrument_id": "SPX.SAMPLE",
        "bar_type": BAR_TYPE,
        "fast_ema_period": 10,
        "slow_ema_period": 30,
    },
}

PLAIN_STRATEGY_MODULE = '''
"""A plain Nautilus Strategy, as a user writes it (no grodt base class)."""

from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy


class PlainSmaConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    bar_type: BarType
    period: PositiveInt = 15


class PlainSma(Strategy):
    def __init__(self, config: PlainSmaConfig) -> None:
        super().__init__(config)
'''


def _node(**overrides) -> dict:
    document = {
        "name": "t",
        "venues": [{"name": "SAMPLE", "starting_balances": ["1000000 USD"]}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [STRATEGY],
    }
    document.update(overrides)
    return document


def _write(tmp_path: Path, document: dict, name: str = "node.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(document))
    return path


def _error(path: Path) -> str:
    with pytest.raises(ConfigError) as error:
        load_backtest_config(path)
    return str(error.value)


# -- unknown keys ------------------------------------------------------------------------------


def test_misspelt_strategy_parameter_is_an_error_with_a_suggestion(tmp_path):
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"], "slow_ema_perod": 40}}
    message = _error(_write(tmp_path, _node(strategies=[strategy])))
    assert "node.yaml: strategies[0].config.slow_ema_perod: unknown field" in message
    assert "did you mean 'slow_ema_period'?" in message


def test_plain_nautilus_strategy_from_the_python_path_is_checked_too(tmp_path, monkeypatch):
    modules = tmp_path / "mine"
    modules.mkdir()
    (modules / "user_plain_sma.py").write_text(PLAIN_STRATEGY_MODULE)
    monkeypatch.syspath_prepend(str(modules))
    strategy = {
        "path": "user_plain_sma:PlainSma",
        "config": {"instrument_id": "SPX.SAMPLE", "bar_type": BAR_TYPE, "period": 23},
    }
    spec = load_backtest_config(_write(tmp_path, _node(strategies=[strategy])))
    assert spec.strategies[0].config["period"] == 23

    strategy["config"] = {"instrument_id": "SPX.SAMPLE", "bar_type": BAR_TYPE, "perod": 23}
    message = _error(_write(tmp_path, _node(strategies=[strategy])))
    assert "strategies[0].config.perod: unknown field; did you mean 'period'?" in message


def test_unknown_key_inside_a_nested_dataclass_is_an_error(tmp_path):
    actor = {
        "path": "actors.regime_actor:RegimeActor",
        "config": {"bar_types": [BAR_TYPE], "walk_forward": {"n_state": 3}},
    }
    message = _error(_write(tmp_path, _node(actors=[actor])))
    assert "actors[0].config.walk_forward.n_state: unknown field; did you mean 'n_states'?" in (
        message
    )


def test_150k_junk_keys_fail_at_load_with_a_bounded_message(tmp_path):
    junk = {f"junk_{index}": index for index in range(150_000)}
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"], **junk}}
    path = tmp_path / "junk.yaml"
    path.write_text(json.dumps(_node(strategies=[strategy])))  # JSON is YAML, and fast to write
    message = _error(path)
    assert message.startswith(f"{path}: 3,")  # its size: refused before it is parsed
    assert f"at most {MAX_DOCUMENT_BYTES:,} bytes" in message


def test_thousands_of_junk_keys_are_reported_bounded(tmp_path):
    junk = {f"j{index}": 0 for index in range(20_000)}
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"], **junk}}
    message = _error(_write(tmp_path, _node(strategies=[strategy])))
    assert "strategies[0].config.j0: unknown field" in message
    assert "… and 19,990 more unknown fields" in message
    assert len(message) < 1_000


def test_logged_params_are_bounded():
    params = flatten_params({"strategies": [{"config": {f"k{i}": i for i in range(10_000)}}]})
    assert len(params) == MAX_PARAMS + 1
    assert params["params.truncated"] == str(10_000 - MAX_PARAMS)


# -- hostile YAML ------------------------------------------------------------------------------

ALIAS_BOMB = textwrap.dedent(
    """\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """,
)


def test_alias_bomb_is_refused_before_it_expands(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500
    with pytest.raises(ConfigError, match=r"bomb\.yaml: aliases expand the document") as error:
        read_yaml(path)
    assert len(str(error.value)) < 300


def test_a_modest_alias_bomb_in_a_node_config_gives_a_short_error(tmp_path):
    # 10^6 leaves: loads in seconds without the bound, then floods the error with its repr.
    levels = ["x0: &x0 [0,0,0,0,0,0,0,0,0,0]"] + [
        f"x{n}: &x{n} [" + ",".join([f"*x{n - 1}"] * 10) + "]" for n in range(1, 6)
    ]
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(_node()) + "\n".join(levels) + "\n")
    message = _error(path)
    assert f"more than {MAX_EXPANDED_NODES:,} YAML nodes" in message
    assert len(message) < 300


def test_a_self_referencing_alias_is_refused(tmp_path):
    path = tmp_path / "loop.yaml"
    path.write_text("a: &a [1, *a]\n")
    with pytest.raises(ConfigError, match=r"loop\.yaml: a YAML alias refers to a node"):
        read_yaml(path)


def test_a_huge_value_is_echoed_bounded(tmp_path):
    message = _error(_write(tmp_path, _node(name="x y" * 100_000)))
    assert "name: String should match pattern" in message
    assert len(message) < 500


# -- includes ----------------------------------------------------------------------------------


def test_missing_include_names_the_including_file_and_where_it_looked(tmp_path):
    sub = tmp_path / "sub"
    sub.mkdir()
    _write(sub, {"include": "../nowhere/venue.yaml", "name": "SAMPLE"}, "venue.yaml")
    document = _node(venues=[{"include": "sub/venue.yaml"}])
    with pytest.raises(ConfigError) as error:
        load_yaml_document(_write(tmp_path, document))
    message = str(error.value)
    assert message.startswith(f"{sub / 'venue.yaml'}: include: ")
    assert f"{tmp_path / 'nowhere' / 'venue.yaml'}: file not found" in message
    assert f"relative to {sub}" in message

    document = _node(strategies=[{"include": "missing.yaml"}])
    with pytest.raises(ConfigError, match=r"node\.yaml: strategies\[0\]\.include: .*missing\.yaml"):
        load_yaml_document(_write(tmp_path, document))


# -- values and empty runs ---------------------------------------------------------------------


def test_starting_balances_must_be_money(tmp_path):
    venues = [{"name": "SAMPLE", "starting_balances": ["lots of USD"]}]
    message = _error(_write(tmp_path, _node(venues=venues)))
    assert "venues[0].starting_balances: 'lots of USD' (entry 0) is not money" in message


def test_a_config_without_strategies_is_an_error(tmp_path):
    message = _error(_write(tmp_path, _node(strategies=[])))
    assert "node.yaml: strategies: a node needs at least one strategy" in message


def test_a_strategy_on_an_instrument_no_data_provides_is_an_error(tmp_path):
    strategy = {"path": STRATEGY["path"], "config": {**STRATEGY["config"]}}
    strategy["config"]["instrument_id"] = "NDX.SAMPLE"
    strategy["config"]["bar_type"] = "NDX.SAMPLE-1-DAY-LAST-EXTERNAL"
    message = _error(_write(tmp_path, _node(strategies=[strategy])))
    assert "strategies[0].config.bar_type: 'NDX.SAMPLE-1-DAY-LAST-EXTERNAL' is not read" in message


def test_start_after_end_names_the_field(tmp_path):
    message = _error(_write(tmp_path, _node(start="2010-01-01", end="2009-01-01")))
    assert "start: '2010-01-01' is after end ('2009-01-01')" in message


def test_two_different_ranges_are_an_error_naming_both(tmp_path):
    data = [{"bar_types": [BAR_TYPE], "start": "2005-01-01"}]
    message = _error(_write(tmp_path, _node(data=data, start="2006-01-01")))
    assert "data[0].start ('2005-01-01') and start ('2006-01-01') differ" in message


def test_an_unparseable_date_names_the_field(tmp_path):
    message = _error(_write(tmp_path, _node(end="yesterday-ish")))
    assert "end: 'yesterday-ish' is not an ISO date" in message


def test_the_data_entries_range_becomes_the_runs_range(tmp_path):
    # Unquoted YAML dates (datetime.date) are accepted as their ISO text.
    path = tmp_path / "node.yaml"
    document = _node(data=[{"bar_types": [BAR_TYPE], "start": "X", "end": "Y"}])
    text = yaml.safe_dump(document).replace("start: X", "start: 2005-01-03")
    path.write_text(text.replace("end: Y", "end: 2006-12-29"))
    spec = load_backtest_config(path)
    assert (spec.start, spec.end) == ("2005-01-03", "2006-12-29")


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"\xff\xfe not utf-8", "not UTF-8"),
        (b"[1, 2, 3]", "the JSON is a list, expected an object"),
    ],
)
def test_a_corrupt_regime_model_fails_when_the_config_loads(tmp_path, content, fragment):
    model = tmp_path / "model.json"
    model.write_bytes(content)
    actor = {
        "path": "actors.regime_actor:RegimeActor",
        "config": {"bar_types": [BAR_TYPE], "model": str(model)},
    }
    message = _error(_write(tmp_path, _node(actors=[actor])))
    assert "actors[0].config: model: " in message
    assert str(model) in message
    assert fragment in message


def test_own_strategy_module_in_the_working_directory_is_found(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from grodt.cli import main

    (tmp_path / "user_cwd_sma.py").write_text(PLAIN_STRATEGY_MODULE)
    strategy = {
        "path": "user_cwd_sma:PlainSma",
        "config": {"instrument_id": "SPX.SAMPLE", "bar_type": BAR_TYPE},
    }
    config = _write(tmp_path, _node(strategies=[strategy]))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    result = CliRunner().invoke(main, ["config", "check", str(config), "--no-catalog"])
    assert result.exit_code == 0, result.output
