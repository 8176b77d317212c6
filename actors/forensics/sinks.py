"""Where the bridge delivers records: Kafka (confluent-kafka) or Parquet files in the run directory.

Both implement :class:`Sink` and are driven by one thread, the bridge's worker: ``send`` never
blocks (``False`` = back-pressure, try later), acknowledgements and failures come back through the
callbacks given to ``bind`` during ``poll``, and ``healthy`` turns False when the sink detects an
outage, after which the worker spills to disk and calls ``probe`` until the sink is back.
"""

import contextlib
import logging
import os
import time
from collections.abc import Callable
from operator import attrgetter
from pathlib import Path
from typing import Any
from typing import Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from actors.forensics.codec import Envelope
from actors.forensics.spill import LogLike
from grodt.core.errors import ConfigError

__all__ = [
    "DEFAULT_PRODUCER_CONFIG",
    "ENV_PREFIX",
    "ERROR_LOG_INTERVAL_S",
    "PARQUET_SCHEMA",
    "DeliveredCallback",
    "FailedCallback",
    "KafkaSink",
    "ParquetSink",
    "Sink",
    "check_producer_config",
    "is_fatal",
    "resolve_client_config",
]

DeliveredCallback = Callable[[Envelope], None]
FailedCallback = Callable[[Envelope, str, bool], None]
"""``(envelope, error text, permanent)``: a permanent failure will not succeed by retrying."""


class Sink(Protocol):
    """A destination for envelopes, driven by a single worker thread."""

    name: str
    healthy: bool
    reason: str
    fatal: bool
    """The client cannot go on (a fatal producer error): only :meth:`reset` brings it back."""
    resets: int
    """Clients replaced so far by :meth:`reset`."""
    linger_s: float
    """How long (wall time) the worker lets records gather after waking before a turn: what
    the destination's readers can wait for against the engine thread's cost of many small
    turns (the worker holds the GIL the engine needs)."""

    def bind(self, on_delivered: DeliveredCallback, on_failed: FailedCallback) -> None: ...

    def open(self) -> None:
        """Connect; sets ``healthy`` (an unreachable destination is not an error here)."""

    def send(self, envelope: Envelope) -> bool:
        """Hand over one envelope; False when the sink cannot take more right now."""
        ...

    def poll(self, timeout: float) -> None:
        """Serve acknowledgements and errors (callbacks run here)."""

    def in_flight(self) -> int:
        """Envelopes handed over and not yet acknowledged or failed."""
        ...

    def stalled(self, timeout: float) -> bool:
        """True when envelopes are in flight and nothing was acknowledged for ``timeout`` s."""
        ...

    def probe(self, timeout_s: float = 10.0) -> bool:
        """Check whether the destination is reachable again (blocks up to about ``timeout_s``,
        usually ~1 s)."""
        ...

    def reset(self, timeout_s: float = 5.0) -> None:
        """Give up on what is in flight (each comes back through ``on_failed``, waiting up to
        ``timeout_s`` for that) and start over with a fresh client."""

    def flush(self, timeout: float) -> None:
        """Push buffered envelopes out and wait up to ``timeout`` s for acknowledgements."""

    def close(self) -> None: ...

    def describe(self) -> dict[str, Any]:
        """Where records go, for the run summary."""
        ...


# -- Kafka -----------------------------------------------------------------------------------------

DEFAULT_PRODUCER_CONFIG: dict[str, Any] = {
    "enable.idempotence": True,
    "acks": "all",
    "compression.type": "lz4",
    "linger.ms": 5,
    "batch.num.messages": 10_000,
    "queue.buffering.max.messages": 200_000,
    "queue.buffering.max.kbytes": 262_144,
    "reconnect.backoff.ms": 100,
    "reconnect.backoff.max.ms": 1_000,
    "socket.keepalive.enable": True,
    "log_level": 4,
}
"""librdkafka settings of the bridge's producer; the section's ``producer:`` overrides them."""

ENV_PREFIX = "env:"

ERROR_LOG_INTERVAL_S = 60.0
"""A client error (authentication, TLS, DNS, refused connection) is logged at most this often per
error code; the report counts the ones left out."""


def resolve_client_config(config: dict[str, Any], where: str) -> dict[str, Any]:
    """Replace ``"env:NAME"`` values by the environment variable ``NAME`` (credentials stay out
    of config files)."""
    resolved: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, str) and value.startswith(ENV_PREFIX):
            name = value[len(ENV_PREFIX) :]
            if name not in os.environ:
                raise ConfigError(f"{where}.{key}: environment variable {name} is not set")
            value = os.environ[name]
        resolved[key] = value
    return resolved


def check_producer_config(config: dict[str, Any], where: str) -> None:
    """Fail fast on a librdkafka setting the producer would reject (a typo in a property name, a
    bad value, SASL without its credentials): builds a producer with no brokers and throws it
    away. ``env:NAME`` values are resolved first, as the bridge will resolve them (a variable
    that is not set is an error naming the field), so the check sees what the producer gets; an
    error never echoes a value read from the environment."""
    from confluent_kafka import KafkaException
    from confluent_kafka import Producer

    resolved = resolve_client_config(config, where)
    secrets = [
        str(resolved[key])
        for key, value in config.items()
        if isinstance(value, str) and value.startswith(ENV_PREFIX) and str(resolved[key])
    ]
    checked = {**DEFAULT_PRODUCER_CONFIG, **resolved, "bootstrap.servers": "", "log_level": 0}
    try:
        producer = Producer(checked)
    except KafkaException as e:
        text = e.args[0].str()
        for secret in secrets:
            text = text.replace(secret, "***")
        raise ConfigError(f"{where}: {text}") from None
    producer.close()


class _LibrdkafkaLog(logging.Handler):
    """Forwards librdkafka's own log lines (connection refused, retries) at debug level: the
    bridge reports outages itself, once, instead of once per reconnect attempt."""

    def __init__(self, log: LogLike) -> None:
        super().__init__(level=logging.DEBUG)
        self._log = log

    def emit(self, record: logging.LogRecord) -> None:
        debug = getattr(self._log, "debug", None)
        if debug is not None:
            debug(f"librdkafka: {record.getMessage()}")


_CONNECTIVITY_ERRORS: frozenset[int] | None = None


def _connectivity_errors() -> frozenset[int]:
    global _CONNECTIVITY_ERRORS
    if _CONNECTIVITY_ERRORS is None:
        from confluent_kafka import KafkaError

        _CONNECTIVITY_ERRORS = frozenset(
            {
                KafkaError._ALL_BROKERS_DOWN,
                KafkaError._TRANSPORT,
                KafkaError._MSG_TIMED_OUT,
                KafkaError._TIMED_OUT,
                KafkaError._PURGE_QUEUE,
                KafkaError._PURGE_INFLIGHT,
                KafkaError._FATAL,
                # A broker restarted without its state answers for a topic before the topic is
                # created again: the partition or topic is unknown for a moment, not for good.
                KafkaError._UNKNOWN_PARTITION,
                KafkaError._UNKNOWN_TOPIC,
                KafkaError._DESTROY,
                KafkaError.REQUEST_TIMED_OUT,
                KafkaError.NOT_ENOUGH_REPLICAS,
                KafkaError.NOT_ENOUGH_REPLICAS_AFTER_APPEND,
                KafkaError.LEADER_NOT_AVAILABLE,
                KafkaError.NOT_LEADER_FOR_PARTITION,
                KafkaError.UNKNOWN_PRODUCER_ID,
                KafkaError.OUT_OF_ORDER_SEQUENCE_NUMBER,
                KafkaError.UNKNOWN_TOPIC_OR_PART,
            },
        )
    return _CONNECTIVITY_ERRORS


def is_fatal(error: Any) -> bool:
    """Whether a ``KafkaError`` leaves the producer unusable. ``error.fatal()`` alone is not
    enough: the error that ``produce`` raises once the producer has failed fatally has the code
    ``_FATAL`` ("Local: Fatal error") with ``fatal() == False``."""
    from confluent_kafka import KafkaError

    return bool(error.fatal()) or error.code() == KafkaError._FATAL


class KafkaSink:
    """Produces envelopes to Kafka with an idempotent producer (acks=all, compressed), keyed by
    :func:`~actors.forensics.codec.record_key` so that order is kept per key.

    Idempotence: while one producer lives, librdkafka retries a batch with the same producer id
    and sequence numbers, so a broker restart or a network cut does not duplicate or reorder
    records on a durable cluster. The bridge replaces the producer only when it cannot go on
    (fatal error, or nothing acknowledged for ``stall_timeout_s`` after the broker is reachable
    again, e.g. a broker that lost its state); records whose fate is then unknown are sent again,
    so a reader may see them twice and deduplicates on ``(session, seq)``.

    A fatal error is recognised wherever it surfaces — the error callback, a delivery report,
    ``produce`` raising ``_FATAL`` (whose ``fatal()`` is False), ``poll``/``flush`` raising it —
    and sets :attr:`fatal`; the worker then calls :meth:`reset`, which replaces the producer (a new
    producer id: a new idempotent session).

    A producer that cannot be created (a bad CA file, a missing SASL plugin) is an outage like an
    unreachable broker: ``probe`` tries again to create it.

    Parameters
    ----------
    bootstrap_servers : str
        ``host:port[,host:port...]``.
    topics : list[str]
        Topics the bridge produces to (created at open when ``create_topics``).
    producer_config : dict, optional
        librdkafka settings merged over :data:`DEFAULT_PRODUCER_CONFIG`.
    create_topics : bool, default True
        Create missing topics with ``partitions`` and ``replication_factor``.
    client_id : str, default "grodt-forensics"
    log : LogLike
    """

    name = "kafka"
    linger_s = 0.01
    """Consumers read records as they arrive: 10 ms of gathering, then a turn."""

    def __init__(
        self,
        bootstrap_servers: str,
        topics: list[str],
        producer_config: dict[str, Any] | None = None,
        create_topics: bool = True,
        partitions: int = 6,
        replication_factor: int = 1,
        client_id: str = "grodt-forensics",
        log: LogLike | None = None,
    ) -> None:
        self.bootstrap_servers = bootstrap_servers
        self.topics = list(dict.fromkeys(topics))
        self.create_topics = create_topics
        self.partitions = partitions
        self.replication_factor = replication_factor
        self._log = log or logging.getLogger("grodt.forensics")
        self._config = {
            **DEFAULT_PRODUCER_CONFIG,
            **(producer_config or {}),
            "bootstrap.servers": bootstrap_servers,
            "client.id": client_id,
        }
        self._producer: Any = None
        self._on_delivered: DeliveredCallback | None = None
        self._on_failed: FailedCallback | None = None
        self.healthy = False
        self.reason = "not opened"
        self.fatal = False
        self.resets = 0
        self._last_progress = time.monotonic()
        self._progressed = False
        self._create_warning = ""
        self._producer_error = ""
        self._report = self._delivery  # one bound method for every message's delivery report
        self._error_log: dict[int, tuple[float, int]] = {}
        self._librdkafka_logger = logging.getLogger(f"grodt.forensics.librdkafka.{id(self)}")
        self._librdkafka_logger.propagate = False
        self._librdkafka_logger.setLevel(logging.DEBUG)
        self._librdkafka_logger.addHandler(_LibrdkafkaLog(self._log))

    def bind(self, on_delivered: DeliveredCallback, on_failed: FailedCallback) -> None:
        self._on_delivered = on_delivered
        self._on_failed = on_failed

    def describe(self) -> dict[str, Any]:
        return {"sink": "kafka", "bootstrap_servers": self.bootstrap_servers, "topics": self.topics}

    # -- lifecycle --------------------------------------------------------------------------------

    def _new_producer(self) -> Any:
        from confluent_kafka import Producer

        config = dict(self._config)
        config["error_cb"] = self._on_error
        config["logger"] = self._librdkafka_logger
        return Producer(config)

    def _ensure_producer(self) -> bool:
        """Create the producer if there is none; False (and ``reason`` set, logged once per
        distinct error) when it cannot be created."""
        if self._producer is not None:
            return True
        try:
            self._producer = self._new_producer()
        except Exception as e:
            text = e.args[0].str() if e.args and hasattr(e.args[0], "str") else str(e)
            self.reason = f"cannot create the producer: {text}"
            if self.reason != self._producer_error:
                self._producer_error = self.reason
                self._log.error(f"Forensics Kafka sink: {self.reason} (retrying)")
            return False
        if self._producer_error:
            self._producer_error = ""
            self._log.info("Forensics Kafka sink: producer created")
        self.fatal = False
        self._last_progress = time.monotonic()
        return True

    def open(self) -> None:
        if self.probe():
            self.healthy = True
            self.reason = ""
        else:
            self.healthy = False

    def probe(self, timeout_s: float = 10.0) -> bool:
        """Reachable when a metadata request answers within 1 s; then make sure the topics
        exist (a broker that restarted without its state has lost them). Creates the producer
        first if there is none. Blocks up to about ``timeout_s``."""
        from confluent_kafka import KafkaException

        if not self._ensure_producer():
            return False
        deadline = time.monotonic() + timeout_s
        if self.fatal:  # reachable or not, this producer cannot send: reset() first
            return False
        try:
            metadata = self._producer.list_topics(timeout=max(0.1, min(1.0, timeout_s)))
        except KafkaException as e:
            error = e.args[0] if e.args else None
            if error is not None and hasattr(error, "fatal") and is_fatal(error):
                self._failed_fatally(error.str())
            else:
                self.reason = f"broker unreachable: {e}"
            return False
        if self.create_topics:
            missing = [t for t in self.topics if t not in metadata.topics]
            if missing:
                try:
                    self._create(missing, deadline)
                except Exception as e:
                    # Go on: the broker may create topics on first use; if it does not, the
                    # deliveries fail, the records spill and this is retried.
                    warning = f"cannot create topics {missing}: {e}"
                    if warning != self._create_warning:
                        self._create_warning = warning
                        self._log.warning(f"Forensics Kafka sink: {warning}")
        self._last_progress = time.monotonic()
        return True

    def _create(self, topics: list[str], deadline: float) -> None:
        from confluent_kafka import KafkaError
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient
        from confluent_kafka.admin import NewTopic

        admin_config = {
            k: v
            for k, v in self._config.items()
            if k.startswith(("bootstrap.", "security.", "sasl.", "ssl.", "client."))
        }
        admin_config["logger"] = self._librdkafka_logger
        admin_config["log_level"] = 4
        admin = AdminClient(admin_config)
        budget = max(0.5, min(5.0, deadline - time.monotonic()))
        futures = admin.create_topics(
            [NewTopic(t, self.partitions, self.replication_factor) for t in topics],
            operation_timeout=budget,
            request_timeout=budget,
        )
        created = []
        for topic, future in futures.items():
            try:
                future.result(timeout=max(0.1, deadline - time.monotonic()))
            except KafkaException as e:
                if e.args and e.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    continue
                raise
            created.append(topic)
        if created:
            self._log.info(
                f"Forensics Kafka sink: created topics {', '.join(created)} "
                f"({self.partitions} partitions, replication {self.replication_factor})",
            )

    def _on_error(self, error: Any) -> None:
        from confluent_kafka import KafkaError

        code = error.code()
        if is_fatal(error):
            self._failed_fatally(error.str())
        elif code == KafkaError._ALL_BROKERS_DOWN:
            self._mark_down(f"all brokers down: {error.str()}")
        else:
            # Authentication, TLS, name resolution, a refused connection: not an outage by
            # itself (librdkafka retries), but the reason for one; logged once a minute per code.
            now = time.monotonic()
            logged_at, suppressed = self._error_log.get(code, (-ERROR_LOG_INTERVAL_S, 0))
            if now - logged_at < ERROR_LOG_INTERVAL_S:
                self._error_log[code] = (logged_at, suppressed + 1)
                return
            self._error_log[code] = (now, 0)
            more = f" ({suppressed} more since the last report)" if suppressed else ""
            self._log.warning(
                f"Forensics Kafka sink: client error {error.name()}: {error.str()}{more}",
            )

    def _mark_down(self, reason: str) -> None:
        if self.healthy:
            self.healthy = False
            self.reason = reason

    def _failed_fatally(self, text: str) -> None:
        """The producer cannot go on: down, and replaced by the worker's next :meth:`reset`
        (logged once per producer)."""
        if not self.fatal:
            self.fatal = True
            self._log.error(
                f"Forensics Kafka sink: fatal producer error ({text}); replacing the producer "
                "(a new idempotent session) and sending what it held again",
            )
        self.healthy = False
        self.reason = f"fatal producer error: {text}"

    def _raised(self, exception: Exception) -> None:
        """A client call raised ``exception``: a fatal Kafka error marks the producer for
        replacement; anything else (a callback's own error) goes on up."""
        error = exception.args[0] if exception.args else None
        if error is not None and hasattr(error, "fatal") and is_fatal(error):
            self._failed_fatally(error.str())
            return
        raise exception

    # -- data path --------------------------------------------------------------------------------

    def send(self, envelope: Envelope) -> bool:
        envelope.report_to = self._report
        try:
            self._producer.produce(
                envelope.topic,
                envelope.value,
                envelope.key.encode(),
                headers=envelope.headers(),
                on_delivery=envelope,  # calls self._report(envelope, error, message)
            )
        except BufferError:
            return False
        except Exception as e:  # refused before it was queued (too large, fatal error, ...)
            self._refused(envelope, e)
        return True

    def _refused(self, envelope: Envelope, exception: Exception) -> None:
        """``produce`` raised: a permanent Kafka error (a record over ``message.max.bytes``)
        fails the record alone, for the dead-letter file; anything else is an outage (the record
        is retried after it, once the sink is back)."""
        error = exception.args[0] if exception.args else None
        if error is not None and hasattr(error, "code") and hasattr(error, "retriable"):
            text = error.str()
            fatal = is_fatal(error)
            if fatal:
                self._failed_fatally(text)
            permanent = (
                error.code() not in _connectivity_errors() and not error.retriable() and not fatal
            )
        else:  # not a Kafka error: nothing says the record is at fault
            text = f"{type(exception).__name__}: {exception}"
            permanent = False
        if not permanent:
            self._mark_down(f"produce failed: {text}")
        assert self._on_failed is not None
        self._on_failed(envelope, f"produce refused: {text}", permanent)

    def _delivery(self, envelope: Envelope, error: Any, message: Any) -> None:
        if error is None:
            self._progressed = True
            assert self._on_delivered is not None
            self._on_delivered(envelope)
            return
        code = error.code()
        fatal = is_fatal(error)
        if fatal:
            self._failed_fatally(error.str())
        permanent = code not in _connectivity_errors() and not error.retriable() and not fatal
        if not permanent:
            self._mark_down(f"delivery failed: {error.str()}")
        assert self._on_failed is not None
        self._on_failed(envelope, error.str(), permanent)

    def poll(self, timeout: float) -> None:
        producer = self._producer
        if producer is None:  # not created (yet): nothing to serve
            if timeout > 0:
                time.sleep(timeout)
            return
        from confluent_kafka import KafkaException

        try:
            producer.poll(timeout)
        except KafkaException as e:  # librdkafka raises a fatal error from poll, too
            self._raised(e)
        if self._progressed or len(producer) == 0:
            self._progressed = False
            self._last_progress = time.monotonic()

    def in_flight(self) -> int:
        return len(self._producer) if self._producer is not None else 0

    def stalled(self, timeout: float) -> bool:
        return (
            self._producer is not None
            and len(self._producer) > 0
            and time.monotonic() - self._last_progress > timeout
        )

    def reset(self, timeout_s: float = 5.0) -> None:
        """Purge what librdkafka holds (each message fails back through ``on_failed``, waiting up
        to ``timeout_s`` for that) and replace the producer: a new producer id, so a broker that
        lost our state accepts us. A producer that cannot be created now is created by the next
        ``probe``."""
        from confluent_kafka import KafkaException

        if self._producer is not None:
            self.resets += 1
            try:
                self._producer.purge(in_queue=True, in_flight=True, blocking=False)
            except KafkaException as e:  # a failed producer may refuse even this: replace it
                self._log.warning(f"Forensics Kafka sink: purging the old producer: {e}")
            deadline = time.monotonic() + timeout_s
            while len(self._producer) > 0 and time.monotonic() < deadline:
                try:
                    self._producer.poll(0.05)
                except KafkaException as e:  # the failed producer repeats its fatal error
                    self._raised(e)
            left = len(self._producer)
            if left:
                self._log.error(
                    f"Forensics Kafka sink: {left} purged messages did not report back; "
                    "they stay counted as in flight",
                )
            self._close_producer()
        self._ensure_producer()
        self.fatal = False
        self._last_progress = time.monotonic()

    def flush(self, timeout: float) -> None:
        from confluent_kafka import KafkaException

        if self._producer is not None:
            try:
                self._producer.flush(timeout)
            except KafkaException as e:
                self._raised(e)
            if self._progressed:
                self._progressed = False
                self._last_progress = time.monotonic()

    def _close_producer(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                producer.close()
            except Exception as e:  # close after a fatal error may complain; the data is purged
                self._log.warning(f"Forensics Kafka sink: closing the producer: {e}")

    def close(self) -> None:
        self._close_producer()
        self.healthy = False
        self.reason = "closed"


# -- Parquet ---------------------------------------------------------------------------------------

PARQUET_SCHEMA = pa.schema(
    [
        ("session", pa.string()),
        ("seq", pa.int64()),
        ("topic", pa.string()),
        ("key", pa.string()),
        ("record_type", pa.string()),
        ("trace_id", pa.string()),
        ("ts_event", pa.int64()),
        ("ts_init", pa.int64()),
        ("component_id", pa.string()),
        ("payload", pa.string()),
    ],
)
"""Columns of the forensics Parquet files: the envelope, and the record's JSON in ``payload``."""


_ENVELOPE_COLUMNS = [
    (attrgetter(name), type_)
    for name, type_ in zip(PARQUET_SCHEMA.names[:-1], PARQUET_SCHEMA.types[:-1], strict=True)
]
_VALUE = attrgetter("value")


def _table(envelopes: list[Envelope]) -> pa.Table:
    """One row group: the envelope's columns, and its wire bytes as the ``payload`` string.

    Column-wise (``map`` over an ``attrgetter``: no per-row bytecode), and the payload's bytes
    are handed to Arrow as they are and checked as UTF-8 there, instead of being decoded into a
    ``str`` each first. A payload that is not UTF-8 fails as before (``UnicodeDecodeError``)."""
    arrays = [pa.array(list(map(get, envelopes)), type_) for get, type_ in _ENVELOPE_COLUMNS]
    values = list(map(_VALUE, envelopes))
    try:
        payload = pa.array(values, pa.binary()).cast(pa.string())
    except pa.ArrowInvalid:
        payload = pa.array([value.decode() for value in values], pa.string())
    arrays.append(payload)
    return pa.Table.from_arrays(arrays, schema=PARQUET_SCHEMA)


class ParquetSink:
    """Writes envelopes to ``<directory>/<topic>/part-<session>-<n>.parquet``, one folder per
    topic: a row group every ``row_group_rows`` records of a topic, and every ``file_interval_s``
    seconds (and at flush/close) all buffers written and the files closed — a Parquet file is
    readable only once closed, so that is when records become durable and visible; they are
    acknowledged then. A new file starts after each close or every ``rows_per_file`` rows.

    Written but unacknowledged records stay in memory until their file closes (a file that
    fails before closing is lost, and its records are sent again), so their number is bounded:
    once more than ``max_unacked_rows`` are held across topics, the file just written to is
    closed early. In a backtest, where ``file_interval_s`` of wall time can exceed the run, this
    keeps the sink's memory flat instead of holding every record of the run."""

    name = "parquet"
    linger_s = 0.1
    """Records reach a reader only when their file closes (``file_interval_s``, flush, close),
    so gathering 0.1 s delays nobody; batches ~6x larger than at 10 ms took about a quarter
    off the worker's CPU per record in the full-stack benchmark (fewer wake-ups and turns)."""

    def __init__(
        self,
        directory: Path,
        session: str,
        row_group_rows: int = 10_000,
        rows_per_file: int = 1_000_000,
        file_interval_s: float = 600.0,
        max_unacked_rows: int = 50_000,
        log: LogLike | None = None,
    ) -> None:
        if max_unacked_rows < row_group_rows:
            raise ValueError(
                f"max_unacked_rows ({max_unacked_rows}) must be >= row_group_rows "
                f"({row_group_rows}): one row group is written before a file can close",
            )
        self.directory = Path(directory)
        self.session = session
        self.row_group_rows = row_group_rows
        self.rows_per_file = rows_per_file
        self.file_interval_s = file_interval_s
        self.max_unacked_rows = max_unacked_rows
        self._log = log or logging.getLogger("grodt.forensics")
        self._buffers: dict[str, list[Envelope]] = {}
        self._writers: dict[str, tuple[pq.ParquetWriter, Path, int]] = {}
        self._parts: dict[str, int] = {}
        self._buffered = 0
        self._buffered_since = 0.0
        self._unacked: dict[str, list[Envelope]] = {}
        self._unacked_rows = 0
        self._on_delivered: DeliveredCallback | None = None
        self._on_failed: FailedCallback | None = None
        self.healthy = False
        self.reason = "not opened"
        self.fatal = False  # a file error is an outage, never fatal: the next probe retries
        self.resets = 0
        self.files: list[Path] = []
        self.early_closes = 0

    def bind(self, on_delivered: DeliveredCallback, on_failed: FailedCallback) -> None:
        self._on_delivered = on_delivered
        self._on_failed = on_failed

    def describe(self) -> dict[str, Any]:
        return {"sink": "parquet", "directory": str(self.directory)}

    def open(self) -> None:
        self.healthy = self.probe()

    def probe(self, timeout_s: float = 10.0) -> bool:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            self.reason = f"cannot create {self.directory}: {e}"
            return False
        self.reason = ""
        return True

    def send(self, envelope: Envelope) -> bool:
        buffer = self._buffers.get(envelope.topic)
        if buffer is None:
            buffer = self._buffers[envelope.topic] = []
        if not self._buffered:
            self._buffered_since = time.monotonic()
        buffer.append(envelope)
        self._buffered += 1
        if len(buffer) >= self.row_group_rows:
            self._write(envelope.topic, buffer)
        return True

    def poll(self, timeout: float) -> None:
        if self._buffered and time.monotonic() - self._buffered_since >= self.file_interval_s:
            self.flush(0.0)
        elif timeout > 0:
            # Nothing to serve: buffered records wait for their file to close, which polling
            # does not hasten (the caller waits ``timeout`` instead of spinning).
            time.sleep(timeout)

    def in_flight(self) -> int:
        return self._buffered

    def stalled(self, timeout: float) -> bool:
        return False

    def _write(self, topic: str, envelopes: list[Envelope]) -> None:
        """Write one row group; its records are acknowledged when the file is closed."""
        self._buffers[topic] = []
        try:
            table = _table(envelopes)
            writer, path, rows = self._writer_for(topic)
            writer.write_table(table)
            self._writers[topic] = (writer, path, rows + len(envelopes))
            self._unacked.setdefault(topic, []).extend(envelopes)
            self._unacked_rows += len(envelopes)
            if rows + len(envelopes) >= self.rows_per_file:
                self._close_writer(topic)
            elif self._unacked_rows > self.max_unacked_rows:
                self.early_closes += 1
                self._close_writer(topic)
        except (OSError, pa.ArrowException) as e:
            self._fail(topic, envelopes, e)

    def _fail(self, topic: str, envelopes: list[Envelope], error: Exception) -> None:
        """A write or close failed: the file is lost; its records and ``envelopes`` go back as
        failed (the pipeline retries or spills them)."""
        self.healthy = False
        self.reason = f"writing {topic}: {error}"
        unacked = self._unacked.pop(topic, [])
        self._unacked_rows -= len(unacked)
        lost = unacked + envelopes
        self._buffered -= len(lost)
        entry = self._writers.pop(topic, None)
        if entry is not None:
            with contextlib.suppress(OSError, pa.ArrowException):
                entry[0].close()
            entry[1].unlink(missing_ok=True)
        assert self._on_failed is not None
        for envelope in lost:
            self._on_failed(envelope, str(error), False)

    def _writer_for(self, topic: str) -> tuple[pq.ParquetWriter, Path, int]:
        if topic in self._writers:
            return self._writers[topic]
        folder = self.directory / topic
        folder.mkdir(parents=True, exist_ok=True)
        part = self._parts.get(topic, 0)
        self._parts[topic] = part + 1
        path = folder / f"part-{self.session}-{part:05d}.parquet"
        writer = pq.ParquetWriter(path, PARQUET_SCHEMA, compression="zstd")
        self._writers[topic] = (writer, path, 0)
        self.files.append(path)
        return self._writers[topic]

    def _close_writer(self, topic: str) -> None:
        """Close a topic's file: its records are durable and readable, hence acknowledged."""
        writer = self._writers[topic][0]
        try:
            writer.close()
        except (OSError, pa.ArrowException) as e:
            self._fail(topic, [], e)
            return
        del self._writers[topic]
        done = self._unacked.pop(topic, [])
        self._unacked_rows -= len(done)
        self._buffered -= len(done)
        assert self._on_delivered is not None
        for envelope in done:
            self._on_delivered(envelope)

    def reset(self, timeout_s: float = 5.0) -> None:
        """Close the files (what they hold is durable) and fail what is only buffered."""
        self.resets += 1
        for topic in list(self._writers):
            self._close_writer(topic)
        for topic, envelopes in list(self._buffers.items()):
            self._buffers[topic] = []
            self._buffered -= len(envelopes)
            assert self._on_failed is not None
            for envelope in envelopes:
                self._on_failed(envelope, "sink reset", False)

    def flush(self, timeout: float) -> None:
        """Write every buffer and close every file: all records durable and acknowledged."""
        for topic, envelopes in list(self._buffers.items()):
            if envelopes:
                self._write(topic, envelopes)
        for topic in list(self._writers):
            self._close_writer(topic)

    def close(self) -> None:
        self.flush(0.0)
        self.healthy = False
        self.reason = "closed"
