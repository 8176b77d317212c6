"""Live config schema and loader: shared components, secrets rejected, twins, rate scaling."""

from pathlib import Path

import pytest
import yaml
from live_kit import REPO
from live_kit import write_yaml

from grodt.core.errors import ConfigError
from grodt.nodes.trading_config import LOCKSTEP_MIN_SUBMIT_LIMIT
from grodt.nodes.trading_config import scaled_rate
from grodt.nodes.trading_config import trading_node_config
from node_configs.live_schema import ReplaySpec
from node_configs.live_schema import backtest_twin
from node_configs.live_schema import load_live_config
from node_configs.live_schema import load_node_config
from node_configs.live_schema import paper_twin
from node_configs.loader import load_backtest_config

LIVE = REPO / "node_configs" / "live"
BACKTEST = REPO / "node_configs" / "backtest"


def test_paper_config_shares_strategy_and_venue_with_the_backtest():
    paper = load_live_config(LIVE / "ema_cross_sp500_paper.yaml")
    backtest = load_backtest_config(BACKTEST / "ema_cross_sp500.yaml")
    assert paper.strategies == backtest.strategies
    assert [s.venue for s in paper.sandboxes] == backtest.venues
    assert paper.replay is not None and paper.replay.data == backtest.data
    assert paper.is_paper


@pytest.mark.parametrize("name", ["ema_cross_spy_ib.yaml", "ema_cross_btc_binance_testnet.yaml"])
def test_broker_configs_load_and_name_their_environment(name):
    spec = load_live_config(LIVE / name)
    assert not spec.is_paper
    assert spec.required_env()
    assert spec.operations.on_stop == "flatten"
    # The strategy is the backtests' EMA cross file, overridden for the live instrument.
    assert spec.strategies[0].path == "strategies.ema_cross:EMACross"


def test_credentials_in_yaml_are_rejected_without_echoing_them(tmp_path: Path):
    config = write_yaml(
        tmp_path / "leaky.yaml",
        {
            "name": "leaky",
            "kind": "live",
            "data_clients": [
                {"type": "binance", "instrument_ids": ["BTCUSDT.BINANCE"], "api_key": "SEKRIT-1"},
            ],
            "exec_clients": [{"type": "binance", "api_secret": "SEKRIT-2"}],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_live_config(config)
    message = str(info.value)
    assert "data_clients[0].api_key" in message
    assert "exec_clients[0].api_secret" in message
    assert "SEKRIT" not in message


def test_replayed_prices_never_reach_a_broker(tmp_path: Path):
    config = write_yaml(
        tmp_path / "mixed.yaml",
        {
            "name": "mixed",
            "kind": "live",
            "data_clients": [
                {"type": "replay", "data": [{"bar_types": ["A.B-1-DAY-LAST-EXTERNAL"]}]}
            ],
            "exec_clients": [{"type": "binance"}],
        },
    )
    with pytest.raises(ConfigError, match="replayed prices must never reach a broker"):
        load_live_config(config)


def test_bad_field_is_named(tmp_path: Path):
    config = write_yaml(
        tmp_path / "bad.yaml",
        {
            "name": "bad",
            "kind": "live",
            "data_clients": [
                {
                    "type": "replay",
                    "data": [{"bar_types": ["A.B-1-DAY-LAST-EXTERNAL"]}],
                    "pacing": "warp",
                },
            ],
            "exec_clients": [{"type": "sandbox", "venue": {"name": "B", "starting_balances": []}}],
        },
    )
    with pytest.raises(ConfigError) as info:
        load_live_config(config)
    message = str(info.value)
    assert "data_clients[0].replay.pacing" in message
    assert "exec_clients[0].sandbox.venue.starting_balances" in message


def test_load_node_config_dispatches_on_kind():
    assert load_node_config(BACKTEST / "ema_cross_sp500.yaml").kind == "backtest"
    assert load_node_config(LIVE / "ema_cross_sp500_paper.yaml").kind == "live"
    with pytest.raises(ConfigError, match="not a live config"):
        load_live_config(BACKTEST / "ema_cross_sp500.yaml")


def test_twins_round_trip():
    backtest = load_backtest_config(BACKTEST / "ema_cross_sp500.yaml")
    paper = paper_twin(backtest)
    assert paper.replay is not None and paper.replay.pacing == "lockstep"
    back = backtest_twin(paper)
    assert back.strategies == backtest.strategies
    assert back.venues == backtest.venues
    assert back.data == backtest.data
    broker = load_live_config(LIVE / "ema_cross_spy_ib.yaml")
    with pytest.raises(ConfigError, match="parity needs a paper config"):
        backtest_twin(broker)


def test_order_rate_is_scaled_from_data_time_to_wall_time():
    def replay(pacing: str, speed: float = 60.0) -> ReplaySpec:
        data = [{"bar_types": ["A.B-1-DAY-LAST-EXTERNAL"]}]
        return ReplaySpec.model_validate(
            {"type": "replay", "data": data, "pacing": pacing, "speed": speed},
        )

    assert scaled_rate("100/00:00:01", None) == "100/00:00:01"
    assert scaled_rate("100/00:00:01", replay("realtime")) == "100/00:00:01"
    assert scaled_rate("100/00:00:01", replay("accelerated", 60)) == "6000/00:00:01"
    assert scaled_rate("100/00:00:01", replay("accelerated", 3600)) == (
        f"{LOCKSTEP_MIN_SUBMIT_LIMIT}/00:00:01"
    )
    assert scaled_rate("100/00:00:01", replay("lockstep")) == (
        f"{LOCKSTEP_MIN_SUBMIT_LIMIT}/00:00:01"
    )
    with pytest.raises(ConfigError, match=r"engine\.risk_engine"):
        scaled_rate("fast/00:00:01", replay("lockstep"))


def _with_cache_database(tmp_path: Path, section: dict) -> Path:
    document = yaml.safe_load((LIVE / "ema_cross_sp500_paper.yaml").read_text())
    document["exec_clients"][0]["venue"] = {
        "include": str(REPO / "node_configs/venues/sample_cash.yaml")
    }
    document["strategies"] = [
        {"include": str(REPO / "node_configs/components/strategies/ema_cross_spx.yaml")}
    ]
    document["cache_database"] = section
    return write_yaml(tmp_path / "cached.yaml", document)


def test_cache_database_section_becomes_nautilus_redis_cache(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("GRODT_TEST_CACHE_HOST", "10.1.2.3")
    monkeypatch.setenv("GRODT_TEST_CACHE_AUTH", "s3cret-value")
    path = _with_cache_database(
        tmp_path,
        {"host": "env:GRODT_TEST_CACHE_HOST", "port": 6390, "auth_env": "GRODT_TEST_CACHE_AUTH"},
    )
    spec = load_live_config(path)
    assert spec.required_env() == {
        "GRODT_TEST_CACHE_HOST": "cache database host",
        "GRODT_TEST_CACHE_AUTH": "cache database password (Redis AUTH)",
    }
    config, _, _ = trading_node_config(spec, REPO / "data" / "catalog", None)
    database = config.cache.database
    assert (database.type, database.host, database.port) == ("redis", "10.1.2.3", 6390)
    assert database.password == "s3cret-value"
    assert "s3cret-value" not in repr(config.cache)
    assert config.load_state and config.save_state
    # Without the section: Nautilus' in-memory cache, no state loaded or saved.
    plain = load_live_config(LIVE / "ema_cross_sp500_paper.yaml")
    plain_config, _, _ = trading_node_config(plain, REPO / "data" / "catalog", None)
    assert plain_config.cache is None and not plain_config.load_state


def test_cache_database_rejects_literal_passwords_and_unset_variables(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"cache_database\.password"):
        load_live_config(_with_cache_database(tmp_path, {"password": "hunter2"}))
    spec = load_live_config(_with_cache_database(tmp_path, {"port": "env:GRODT_TEST_UNSET_PORT"}))
    with pytest.raises(ConfigError, match="GRODT_TEST_UNSET_PORT is not set"):
        trading_node_config(spec, REPO / "data" / "catalog", None)
