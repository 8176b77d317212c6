"""The ``forensics:`` section of a node config, validated, and how it resolves to a sink.

Example (every key optional; ``forensics: {}`` turns the bridge on with the defaults)::

    forensics:
      sink: auto                  # auto | kafka | parquet
      kafka:
        bootstrap_servers: null   # null: GRODT_KAFKA_BOOTSTRAP; unset too: Parquet in the run dir
        producer: {}              # librdkafka settings; "env:NAME" reads a variable
        create_topics: true
        partitions: 6
        replication_factor: 1
      topics:
        decisions: grodt.forensics.decisions
        orders: grodt.events.orders
      order_events: true
      position_events: true
      validation: sampled         # all | sampled | off
      queue_size: 65536
      spill_dir: null             # Kafka: the sink's shared outbox (default
                                  # <runs_dir>/forensics/outbox/<sink key>); Parquet:
                                  # default <run_dir>/forensics/spill
      flush_timeout_s: 30
"""

from pathlib import Path
from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PositiveFloat
from pydantic import PositiveInt
from pydantic import ValidationError

from grodt.core.errors import ConfigError
from grodt.core.topics import Topics

__all__ = [
    "BUS_TOPICS",
    "TOPIC_PATTERN",
    "ForensicsSection",
    "KafkaSection",
    "TopicNames",
    "bridge_config",
    "parse_section",
    "resolve_sink",
]

TOPIC_PATTERN = r"^[A-Za-z0-9._-]{1,249}$"
"""Legal Kafka topic names."""

BUS_TOPICS: dict[str, str] = {
    "decisions": Topics.DECISIONS,
    "risk": Topics.RISK,
    "allocations": Topics.ALLOCATIONS,
    "regime": Topics.REGIME,
}
"""Message-bus topic producers publish each stream on (the bridge listens to all of
``grodt.forensics.*`` and routes by record class)."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TopicNames(_Strict):
    """Destination topic per record stream (Kafka topics; Parquet folder names).

    Attributes
    ----------
    decisions, risk, allocations, regime : str
        Topic of the strategies' decision records, the risk gate's verdicts, allocation records
        and regime updates.
    orders, positions : str
        Topic of order/fill events and of position events.
    """

    decisions: str = Field(default="grodt.forensics.decisions", pattern=TOPIC_PATTERN)
    risk: str = Field(default="grodt.forensics.risk", pattern=TOPIC_PATTERN)
    allocations: str = Field(default="grodt.forensics.allocations", pattern=TOPIC_PATTERN)
    regime: str = Field(default="grodt.forensics.regime", pattern=TOPIC_PATTERN)
    orders: str = Field(default="grodt.events.orders", pattern=TOPIC_PATTERN)
    positions: str = Field(default="grodt.events.positions", pattern=TOPIC_PATTERN)


class KafkaSection(_Strict):
    """Where and how to produce when the sink is Kafka.

    Attributes
    ----------
    create_topics : bool
        Create missing topics at start and after a broker restart.
    partitions, replication_factor : int
        Of the topics the bridge creates.
    """

    bootstrap_servers: str | None = Field(
        default=None,
        description="host:port[,host:port]; None reads GRODT_KAFKA_BOOTSTRAP.",
    )
    producer: dict[str, str | int | float | bool] = Field(
        default_factory=dict,
        description="librdkafka settings over the bridge's defaults; 'env:NAME' reads NAME.",
    )
    create_topics: bool = True
    partitions: PositiveInt = 6
    replication_factor: PositiveInt = 1


class ForensicsSection(_Strict):
    """The validated ``forensics:`` section (docs/forensics.md explains delivery and spills).

    Attributes
    ----------
    sink : "auto" | "kafka" | "parquet"
        auto: Kafka when a bootstrap is configured (here or GRODT_KAFKA_BOOTSTRAP), else Parquet
        files in the run directory.
    kafka : KafkaSection
        Broker, producer settings and topic creation.
    topics : TopicNames
        Destination topic per record stream.
    order_events, position_events : bool
        Ship order/fill events and position events too.
    validation : "all" | "sampled" | "off"
        Check records against their contract on the worker thread: every record, the first 100
        per producer and record type then 1 in 100, or none.
    queue_size : int
        Records the bounded queue between the engine and the worker holds.
    spill_dir : str | None
        Where records that cannot be delivered yet are kept; null: the default location.
    flush_timeout_s : float
        At stop, seconds to wait for acknowledgements before the rest is kept on disk.
    stall_timeout_s : float
        Seconds without an acknowledgement before the broker counts as down (or a stuck
        producer is replaced).
    reconnect_interval_s : float
        Seconds between probes of a broker that is down.
    """

    sink: Literal["auto", "kafka", "parquet"] = "auto"
    kafka: KafkaSection = Field(default_factory=KafkaSection)
    topics: TopicNames = Field(default_factory=TopicNames)
    order_events: bool = True
    position_events: bool = True
    validation: Literal["all", "sampled", "off"] = "sampled"
    queue_size: PositiveInt = 65_536
    spill_dir: str | None = None
    flush_timeout_s: PositiveFloat = 30.0
    stall_timeout_s: PositiveFloat = 10.0
    reconnect_interval_s: PositiveFloat = 1.0


def parse_section(section: dict[str, Any] | None) -> ForensicsSection:
    """Validate a ``forensics:`` mapping; errors name ``forensics.<field>``."""
    try:
        return ForensicsSection.model_validate(section or {})
    except ValidationError as e:
        lines = [
            "forensics."
            + ".".join(str(p) for p in err["loc"])
            + f": {err['msg']}"
            + (f" (got {err['input']!r})" if err["type"] != "missing" else "")
            for err in e.errors()
        ]
        raise ConfigError("invalid forensics section\n  " + "\n  ".join(lines)) from None


def resolve_sink(sink: str, bootstrap_servers: str | None) -> tuple[str, str | None]:
    """``(sink, bootstrap)`` after defaults: ``auto`` is Kafka when a bootstrap is configured
    (section, else ``GRODT_KAFKA_BOOTSTRAP``), Parquet otherwise."""
    from grodt.core.settings import get_settings

    bootstrap = bootstrap_servers or get_settings().kafka_bootstrap
    if sink == "parquet":
        return "parquet", None
    if sink == "kafka" and not bootstrap:
        raise ConfigError(
            "forensics.kafka.bootstrap_servers: required when forensics.sink is 'kafka' "
            "(or set GRODT_KAFKA_BOOTSTRAP)",
        )
    if bootstrap:
        return "kafka", bootstrap
    return "parquet", None


def bridge_config(
    section: ForensicsSection,
    run_dir: Path | None,
    component_id: str = "ForensicsBridge",
) -> dict[str, Any]:
    """The :class:`actors.forensics_bridge.ForensicsBridgeConfig` fields for ``section``."""
    sink, bootstrap = resolve_sink(section.sink, section.kafka.bootstrap_servers)
    if sink == "kafka":
        from actors.forensics.sinks import check_producer_config

        check_producer_config(dict(section.kafka.producer), "forensics.kafka.producer")
    output_dir = str(run_dir / "forensics") if run_dir is not None else None
    return {
        "component_id": component_id,
        "sink": sink,
        "bootstrap_servers": bootstrap,
        "producer_config": dict(section.kafka.producer),
        "create_topics": section.kafka.create_topics,
        "partitions": section.kafka.partitions,
        "replication_factor": section.kafka.replication_factor,
        "topics": section.topics.model_dump(),
        "output_dir": output_dir,
        "spill_dir": section.spill_dir,
        "order_events": section.order_events,
        "position_events": section.position_events,
        "validation": section.validation,
        "queue_size": section.queue_size,
        "flush_timeout_s": section.flush_timeout_s,
        "stall_timeout_s": section.stall_timeout_s,
        "reconnect_interval_s": section.reconnect_interval_s,
    }
