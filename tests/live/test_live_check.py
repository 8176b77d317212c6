"""``grodt live CONFIG --check``: config and environment validated without connecting; secrets
never printed, logged or written."""

import importlib.util
import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from live_kit import REPO
from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml

from grodt.cli import main
from grodt.nodes.live import LiveNode
from node_configs.live_schema import load_live_config

LIVE = REPO / "node_configs" / "live"
SECRET_KEY = "sk-test-9f3a71c2e5"
SECRET_VALUE = "ss-test-0b6d44e1aa"
IB_ENV = ("TWS_ACCOUNT", "TWS_USERNAME", "TWS_PASSWORD")
BINANCE_ENV = ("BINANCE_TESTNET_API_KEY", "BINANCE_TESTNET_API_SECRET")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in (*IB_ENV, *BINANCE_ENV, "BINANCE_API_KEY", "BINANCE_API_SECRET"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _check(config: Path, *extra: str):
    return CliRunner().invoke(main, ["live", str(config), "--check", *extra])


IB_INSTALLED = importlib.util.find_spec("ibapi") is not None


def test_ib_check_names_the_missing_account(clean_env):
    result = _check(LIVE / "ema_cross_spy_ib.yaml")
    assert result.exit_code == 1
    assert "FAIL env TWS_ACCOUNT: not set" in result.output
    if IB_INSTALLED:
        assert "ok   adapter interactive_brokers" in result.output
        assert "NOT READY: 1 problem(s): env TWS_ACCOUNT" in result.output
    else:
        assert "FAIL adapter interactive_brokers" in result.output
        assert "pip install -e '.[ib]'" in result.output


def test_ib_check_passes_with_the_environment_and_never_shows_it(clean_env):
    clean_env.setenv("TWS_ACCOUNT", "DU9Z8Y7X6")
    result = _check(LIVE / "ema_cross_spy_ib.yaml")
    assert "DU9Z8Y7X6" not in result.output
    assert "ok   env TWS_ACCOUNT: set" in result.output
    if IB_INSTALLED:
        assert result.exit_code == 0, result.output
        assert "ready: every check passed" in result.output
    else:  # only the adapter (and the client configs needing it) are missing
        assert result.exit_code == 1
        failed = [line for line in result.output.splitlines() if "FAIL" in line]
        assert failed and all("adapter" in line or "client configs" in line for line in failed)


def test_binance_check_lists_both_keys_then_passes_without_echoing(clean_env):
    config = LIVE / "ema_cross_btc_binance_testnet.yaml"
    missing = _check(config, "--json")
    assert missing.exit_code == 1
    report = json.loads(missing.output)
    failed = {c["name"] for c in report["checks"] if not c["ok"]}
    assert failed == {"env BINANCE_TESTNET_API_KEY", "env BINANCE_TESTNET_API_SECRET"}
    clean_env.setenv("BINANCE_TESTNET_API_KEY", SECRET_KEY)
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", SECRET_VALUE)
    ready = _check(config)
    assert ready.exit_code == 0, ready.output
    assert SECRET_KEY not in ready.output and SECRET_VALUE not in ready.output


def test_empty_credential_is_not_accepted(clean_env):
    clean_env.setenv("BINANCE_TESTNET_API_KEY", "  ")
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", SECRET_VALUE)
    result = _check(LIVE / "ema_cross_btc_binance_testnet.yaml")
    assert result.exit_code == 1
    assert "env BINANCE_TESTNET_API_KEY: set but empty" in result.output


def test_broker_node_builds_without_connecting_and_writes_no_secret(clean_env, tmp_path: Path):
    clean_env.setenv("BINANCE_TESTNET_API_KEY", SECRET_KEY)
    clean_env.setenv("BINANCE_TESTNET_API_SECRET", SECRET_VALUE)
    from node_configs.loader import load_yaml_document

    config = LIVE / "ema_cross_btc_binance_testnet.yaml"
    spec = load_live_config(config)
    node = LiveNode(spec, tmp_path / "run", document=load_yaml_document(config), quiet=True)
    node.build()
    try:
        kernel = node.node.kernel
        assert [str(c) for c in kernel.data_engine.registered_clients] == ["BINANCE"]
        assert [str(c) for c in kernel.exec_engine.registered_clients] == ["BINANCE"]
    finally:
        node._dispose()
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert any(p.name == "config.yaml" for p in written)
    for path in written:
        text = path.read_text(errors="replace")
        assert SECRET_KEY not in text and SECRET_VALUE not in text, path


def test_paper_check_names_missing_bar_type_venue_and_instrument(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    document = paper_document(
        "broken",
        [bar_types["AAA"], "ZZZ.PAPER-1-MINUTE-LAST-EXTERNAL"],
        [ema_cross("CCC.PAPER", "CCC.PAPER-1-MINUTE-LAST-EXTERNAL")],
    )
    result = _check(write_yaml(tmp_path / "broken.yaml", document), "--catalog", str(catalog))
    assert result.exit_code == 1
    assert "no bars for 'ZZZ.PAPER-1-MINUTE-LAST-EXTERNAL'" in result.output

    document = paper_document(
        "other_venue",
        [bar_types["AAA"]],
        [ema_cross("CCC.PAPER", "CCC.PAPER-1-MINUTE-LAST-EXTERNAL")],
        venue={"name": "ELSEWHERE", "starting_balances": ["1000 USD"]},
    )
    result = _check(write_yaml(tmp_path / "venue.yaml", document), "--catalog", str(catalog))
    assert result.exit_code == 1
    assert "no sandbox exec client simulates venue PAPER" in result.output
    assert "['CCC.PAPER'] not provided by any data client" in result.output


def test_paper_config_check_passes(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    document = paper_document(
        "fine",
        [bar_types["AAA"]],
        [ema_cross("AAA.PAPER", bar_types["AAA"])],
    )
    result = _check(write_yaml(tmp_path / "fine.yaml", document), "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
