"""The ``forensics:`` section: validation with field paths, sink resolution, component files."""

from pathlib import Path

import msgspec
import pytest

from actors.forensics.config import parse_section
from actors.forensics.config import resolve_sink
from actors.forensics.sinks import resolve_client_config
from actors.forensics_bridge import ForensicsBridgeConfig
from actors.forensics_extension import create_extension
from grodt.core.errors import ConfigError
from grodt.core.settings import get_settings
from node_configs.loader import load_backtest_config
from node_configs.schema import NodeSpec

COMPONENTS = Path(__file__).parents[2] / "node_configs" / "components" / "forensics"


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ({"sink": "kafak"}, "forensics.sink"),
        ({"queue_size": 0}, "forensics.queue_size"),
        ({"topics": {"decisions": "bad topic!"}}, "forensics.topics.decisions"),
        ({"topics": {"trades": "x"}}, "forensics.topics.trades"),
        ({"kafka": {"partitions": -1}}, "forensics.kafka.partitions"),
        ({"flush_timeout": 5}, "forensics.flush_timeout"),
    ],
)
def test_bad_sections_name_the_field(section: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_section(section)


def test_kafka_without_bootstrap_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"forensics\.kafka\.bootstrap_servers"):
        create_extension({"sink": "kafka"}, NodeSpec(name="x"), None)


def test_librdkafka_typos_fail_at_load() -> None:
    section = {"kafka": {"bootstrap_servers": "b:9092", "producer": {"compresion.type": "lz4"}}}
    with pytest.raises(ConfigError, match=r"forensics\.kafka\.producer: .*compresion\.type"):
        create_extension(section, NodeSpec(name="x"), None)


def test_auto_picks_kafka_only_when_a_bootstrap_is_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    assert resolve_sink("auto", None) == ("parquet", None)
    assert resolve_sink("auto", "broker:9092") == ("kafka", "broker:9092")
    monkeypatch.setenv("GRODT_KAFKA_BOOTSTRAP", "env-broker:9092")
    get_settings.cache_clear()
    try:
        assert resolve_sink("auto", None) == ("kafka", "env-broker:9092")
        assert resolve_sink("parquet", None) == ("parquet", None)
    finally:
        monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP")
        get_settings.cache_clear()


def test_extension_adds_the_bridge_with_the_run_directory(tmp_path: Path) -> None:
    extension = create_extension(
        {"sink": "parquet", "queue_size": 128}, NodeSpec(name="x"), tmp_path
    )
    (actor,) = extension.actors()
    assert actor.actor_path == "actors.forensics_bridge:ForensicsBridge"
    config = ForensicsBridgeConfig.parse(msgspec.json.encode(actor.config))
    assert config.sink == "parquet" and config.queue_size == 128
    assert config.output_dir == str(tmp_path / "forensics")


def test_bridge_config_rejects_unknown_streams() -> None:
    with pytest.raises(ValueError, match="unknown stream"):
        ForensicsBridgeConfig(topics={"trades": "x"})
    with pytest.raises(ValueError, match="sink must be"):
        ForensicsBridgeConfig(sink="s3")


def test_credentials_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORENSICS_TEST_SECRET", "s3cret")
    resolved = resolve_client_config(
        {"sasl.password": "env:FORENSICS_TEST_SECRET", "acks": "all"},
        "forensics.kafka.producer",
    )
    assert resolved == {"sasl.password": "s3cret", "acks": "all"}
    with pytest.raises(ConfigError, match=r"forensics\.kafka\.producer\.sasl\.username"):
        resolve_client_config(
            {"sasl.username": "env:FORENSICS_TEST_MISSING"}, "forensics.kafka.producer"
        )


SASL_SECTION = {
    "kafka": {
        "bootstrap_servers": "kafka-1:9092",
        "producer": {
            "security.protocol": "SASL_SSL",
            "sasl.mechanisms": "SCRAM-SHA-512",
            "sasl.username": "env:FORENSICS_TEST_USER",
            "sasl.password": "env:FORENSICS_TEST_PASSWORD",
        },
    },
}


def test_env_credentials_pass_the_load_check_when_the_variables_are_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The documented SASL form: the load check resolves ``env:`` values (librdkafka refuses
    SASL without a username and password), and the config carries the references, not the
    values."""
    monkeypatch.setenv("FORENSICS_TEST_USER", "grodt")
    monkeypatch.setenv("FORENSICS_TEST_PASSWORD", "canary-s3cret")
    extension = create_extension(SASL_SECTION, NodeSpec(name="x"), None)
    producer = extension.config["producer_config"]
    assert producer["sasl.password"] == "env:FORENSICS_TEST_PASSWORD"
    assert "canary-s3cret" not in repr(extension.config)
    monkeypatch.delenv("FORENSICS_TEST_PASSWORD")
    with pytest.raises(
        ConfigError,
        match=r"forensics\.kafka\.producer\.sasl\.password: environment variable "
        r"FORENSICS_TEST_PASSWORD is not set",
    ):
        create_extension(SASL_SECTION, NodeSpec(name="x"), None)


def test_a_bad_value_read_from_the_environment_is_not_echoed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FORENSICS_TEST_CODEC", "canary-s3cret")
    section = {
        "kafka": {
            "bootstrap_servers": "kafka-1:9092",
            "producer": {"compression.type": "env:FORENSICS_TEST_CODEC"},
        },
    }
    with pytest.raises(ConfigError, match=r"forensics\.kafka\.producer: .*compression") as error:
        create_extension(section, NodeSpec(name="x"), None)
    assert "canary-s3cret" not in str(error.value)


def _node_file(tmp_path: Path, component: str) -> Path:
    path = tmp_path / "node.yaml"
    path.write_text(
        "name: with_forensics\n"
        "venues:\n"
        "  - {name: SIM, starting_balances: ['1000000 USD']}\n"
        "data:\n"
        "  - {bar_types: [TEST.SIM-1-MINUTE-LAST-EXTERNAL]}\n"
        "strategies:\n"
        "  - path: grodt.test_kit.forensics:TracedCross\n"
        "    config: {instrument_id: TEST.SIM, bar_type: TEST.SIM-1-MINUTE-LAST-EXTERNAL}\n"
        "forensics:\n"
        f"  include: {COMPONENTS / component}\n"
        "  queue_size: 1024\n",
    )
    return path


@pytest.mark.parametrize("component", ["default.yaml", "parquet.yaml"])
def test_shipped_components_load(tmp_path: Path, component: str) -> None:
    spec = load_backtest_config(_node_file(tmp_path, component))
    assert spec.forensics is not None and spec.forensics["queue_size"] == 1024


def test_kafka_component_needs_a_bootstrap(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    with pytest.raises(ConfigError, match=r"node\.yaml: .*forensics\.kafka\.bootstrap_servers"):
        load_backtest_config(_node_file(tmp_path, "kafka.yaml"))
    monkeypatch.setenv("GRODT_KAFKA_BOOTSTRAP", "kafka-1:9092,kafka-2:9092")
    get_settings.cache_clear()
    try:
        spec = load_backtest_config(_node_file(tmp_path, "kafka.yaml"))
        extension = create_extension(spec.forensics or {}, spec, tmp_path)
        assert extension.config["bootstrap_servers"] == "kafka-1:9092,kafka-2:9092"
        assert extension.config["replication_factor"] == 3
    finally:
        monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP")
        get_settings.cache_clear()
