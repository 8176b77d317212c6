"""Reading forensics back: from a run directory's Parquet files (and spill leftovers) or from Kafka.

Both return :class:`StoredRecord` (the record and its envelope identity) deduplicated on
``(session, seq)``, which absorbs the re-sends the bridge may make after a crash or a producer
restart.
"""

import time
from collections.abc import Iterable
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds

from actors.forensics.codec import HEADER_SEQ
from actors.forensics.codec import HEADER_SESSION
from actors.forensics.codec import header_value
from actors.forensics.config import TopicNames
from actors.forensics.spill import read_spill_dir
from grodt.core.errors import GrodtError
from grodt.core.records import RecordBase
from grodt.core.records import RecordDecodeError
from grodt.core.records import record_from_json

DEFAULT_TOPICS: tuple[str, ...] = tuple(TopicNames().model_dump().values())


@dataclass(frozen=True)
class StoredRecord:
    """A record as stored, with where it was found.

    Attributes
    ----------
    topic, key : str
        Destination topic and partition key.
    session : str
        Bridge session that accepted it.
    seq : int
        Its position in that session's stream.
    record : RecordBase
        The decoded record.
    delivered : bool
        False for records still waiting in a spill directory.
    """

    topic: str
    key: str
    session: str
    seq: int
    record: RecordBase
    delivered: bool = True

    @property
    def identity(self) -> tuple[str, int]:
        return (self.session, self.seq)


def forensics_dir(run: Path) -> Path:
    """The forensics folder of a run directory (``<run>/forensics``), or ``run`` itself."""
    run = Path(run)
    if (run / "forensics").is_dir():
        return run / "forensics"
    if run.is_dir() and any(p.is_dir() and list(p.glob("*.parquet")) for p in run.iterdir()):
        return run
    raise GrodtError(f"{run}: no forensics output (expected {run / 'forensics'})")


def _decode(raw: bytes | str, where: str) -> RecordBase:
    try:
        return record_from_json(raw)
    except RecordDecodeError as e:
        raise GrodtError(f"{where}: {e}") from None


def read_run(
    run: Path,
    topics: Iterable[str] | None = None,
    trace_id: str | None = None,
    include_spill: bool = True,
) -> list[StoredRecord]:
    """Every record of a run, in stream order (session, seq), deduplicated.

    Parameters
    ----------
    run : Path
        A run directory (or its ``forensics`` folder).
    topics : Iterable[str], optional
        Only these topics (default: all found).
    trace_id : str, optional
        Only records of this trace.
    include_spill : bool, default True
        Also read records still waiting in ``forensics/spill/outbox`` (``delivered=False``).
    """
    folder = forensics_dir(run)
    wanted = set(topics) if topics is not None else None
    found: dict[tuple[str, int], StoredRecord] = {}
    for topic_dir in sorted(p for p in folder.iterdir() if p.is_dir() and p.name != "spill"):
        if wanted is not None and topic_dir.name not in wanted:
            continue
        files = sorted(topic_dir.glob("*.parquet"))
        if not files:
            continue
        dataset = ds.dataset([str(f) for f in files], format="parquet")
        expression = ds.field("trace_id") == trace_id if trace_id is not None else None
        try:
            table = dataset.to_table(filter=expression)
        except (OSError, pa.ArrowException) as e:
            raise GrodtError(f"{topic_dir}: cannot read forensics Parquet: {e}") from None
        columns = table.to_pydict()
        for i in range(table.num_rows):
            identity = (columns["session"][i], columns["seq"][i])
            found[identity] = StoredRecord(
                topic=columns["topic"][i],
                key=columns["key"][i],
                session=columns["session"][i],
                seq=columns["seq"][i],
                record=_decode(columns["payload"][i], f"{topic_dir}, seq {identity[1]}"),
            )
    if include_spill:
        for sub in ("outbox", "overflow"):
            for envelope in read_spill_dir(folder / "spill" / sub):
                if wanted is not None and envelope.topic not in wanted:
                    continue
                if trace_id is not None and envelope.trace_id != trace_id:
                    continue
                found.setdefault(
                    (envelope.session, envelope.seq),
                    StoredRecord(
                        topic=envelope.topic,
                        key=envelope.key,
                        session=envelope.session,
                        seq=envelope.seq,
                        record=_decode(envelope.value, f"spill {envelope.session}:{envelope.seq}"),
                        delivered=False,
                    ),
                )
    return sorted(found.values(), key=lambda r: r.identity)


def consume(
    bootstrap_servers: str,
    topics: Iterable[str] = DEFAULT_TOPICS,
    from_beginning: bool = True,
    follow: bool = False,
    idle_timeout_s: float = 3.0,
    max_records: int | None = None,
    client_config: dict[str, Any] | None = None,
    dedupe: bool = True,
) -> Iterator[StoredRecord]:
    """Read records from Kafka topics (every partition; no consumer group, no commits).

    Parameters
    ----------
    bootstrap_servers : str
    topics : Iterable[str]
        Topics to read (missing ones are skipped, or picked up later when ``follow``).
    from_beginning : bool, default True
        Start at the earliest offset (else only new records).
    follow : bool, default False
        Keep reading forever; otherwise stop after ``idle_timeout_s`` without a new record.
    max_records : int, optional
        Stop after this many records.
    client_config : dict, optional
        Extra librdkafka consumer settings (security, SASL).
    dedupe : bool, default True
        Skip records whose ``(session, seq)`` was already seen.
    """
    from confluent_kafka import OFFSET_BEGINNING
    from confluent_kafka import OFFSET_END
    from confluent_kafka import Consumer
    from confluent_kafka import KafkaException
    from confluent_kafka import TopicPartition

    topics = list(topics)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap_servers,
            "group.id": "grodt-forensics-reader",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest" if from_beginning else "latest",
            "log_level": 3,
            **(client_config or {}),
        },
    )
    start = OFFSET_BEGINNING if from_beginning else OFFSET_END
    assigned: set[tuple[str, int]] = set()
    seen: set[tuple[str, int]] = set()
    count = 0
    last_record = time.monotonic()
    next_metadata = 0.0
    try:
        while True:
            now = time.monotonic()
            if now >= next_metadata:
                next_metadata = now + (2.0 if follow else 0.5)
                try:
                    metadata = consumer.list_topics(timeout=5.0)
                except KafkaException as e:
                    raise GrodtError(f"Kafka at {bootstrap_servers}: {e}") from None
                new = [
                    TopicPartition(t, p, start)
                    for t in topics
                    if t in metadata.topics
                    for p in metadata.topics[t].partitions
                    if (t, p) not in assigned
                ]
                if new:
                    consumer.incremental_assign(new)
                    assigned |= {(tp.topic, tp.partition) for tp in new}
            messages = consumer.consume(1_000, 0.2)
            for message in messages:
                if message.error():
                    continue
                headers = message.headers()
                session = header_value(headers, HEADER_SESSION) or ""
                seq = int(header_value(headers, HEADER_SEQ) or -1)
                last_record = time.monotonic()
                if dedupe and seq >= 0:
                    if (session, seq) in seen:
                        continue
                    seen.add((session, seq))
                where = f"{message.topic()}[{message.partition()}]@{message.offset()}"
                yield StoredRecord(
                    topic=message.topic(),
                    key=(message.key() or b"").decode(),
                    session=session,
                    seq=seq,
                    record=_decode(message.value(), where),
                )
                count += 1
                if max_records is not None and count >= max_records:
                    return
            if not follow and time.monotonic() - last_record > idle_timeout_s:
                return
    finally:
        consumer.close()
