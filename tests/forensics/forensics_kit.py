"""Test-only parts of the forensics tests: a consumer that reads back what reached the broker,
an actor that injects faults (broker stop/start) at given bars of a running backtest, and one that
keeps every order and position event of the run.

The broker, the bar catalog and the traced strategy are shared with the benchmarks and live in
:mod:`grodt.test_kit` (``tansu``, ``ports``, ``forensics``). The actors here are importable by
path from node configs as ``forensics_kit:<Name>`` (pytest puts this folder on ``sys.path``).
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

from actors.forensics.codec import HEADER_SEQ
from actors.forensics.codec import HEADER_SESSION
from actors.forensics.codec import header_value
from grodt.core.records import RecordBase
from grodt.core.records import record_from_json
from grodt.test_kit.ports import free_port

# -- Consuming -------------------------------------------------------------------------------------


@dataclass
class Consumed:
    """One Kafka message as read back."""

    topic: str
    partition: int
    offset: int
    key: str
    session: str
    seq: int
    value: bytes

    def record(self) -> RecordBase:
        return record_from_json(self.value, tolerant=False)


class BackgroundConsumer:
    """Reads every partition of ``topics`` from the beginning, in a thread, until stopped.

    No consumer group (``assign``): a restarted in-memory broker has no group state anyway.
    Topics that do not exist yet are picked up when they appear.
    """

    def __init__(self, bootstrap: str, topics: list[str]) -> None:
        self.bootstrap = bootstrap
        self.topics = topics
        self.messages: list[Consumed] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> "BackgroundConsumer":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        from confluent_kafka import Consumer
        from confluent_kafka import KafkaException
        from confluent_kafka import TopicPartition

        consumer = Consumer(
            {
                "bootstrap.servers": self.bootstrap,
                "group.id": f"forensics-test-{free_port()}",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "log_level": 0,
                "reconnect.backoff.max.ms": 500,
            },
        )
        assigned: set[tuple[str, int]] = set()
        next_check = 0.0
        try:
            while not self._stop.is_set():
                if time.monotonic() >= next_check:
                    next_check = time.monotonic() + 0.5
                    try:
                        metadata = consumer.list_topics(timeout=1.0)
                    except KafkaException:
                        continue
                    wanted = {
                        (t, p)
                        for t in self.topics
                        if t in metadata.topics
                        for p in metadata.topics[t].partitions
                    }
                    if wanted - assigned:
                        consumer.incremental_assign(
                            [TopicPartition(t, p, 0) for t, p in sorted(wanted - assigned)],
                        )
                        assigned |= wanted
                for message in consumer.consume(10_000, 0.2):
                    if message.error():
                        continue
                    headers = message.headers()
                    with self._lock:
                        self.messages.append(
                            Consumed(
                                topic=message.topic(),
                                partition=message.partition(),
                                offset=message.offset(),
                                key=message.key().decode(),
                                session=header_value(headers, HEADER_SESSION) or "",
                                seq=int(header_value(headers, HEADER_SEQ) or 0),
                                value=message.value(),
                            ),
                        )
        finally:
            consumer.close()

    def wait_for(self, count: int, timeout: float = 30.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= count:
                return True
            time.sleep(0.05)
        return self.count() >= count


def consume_all(bootstrap: str, topics: list[str], expected: int, timeout: float = 60.0) -> list:
    """Everything in ``topics`` (from the beginning), waiting until ``expected`` messages arrive
    and then a quiet second to catch extras."""
    with BackgroundConsumer(bootstrap, topics) as consumer:
        consumer.wait_for(expected, timeout)
        time.sleep(1.0)
        return list(consumer.messages)


# -- Fault injection -------------------------------------------------------------------------------

HOOKS: dict[str, Callable[[], None]] = {}
"""Actions the :class:`FaultInjector` runs, by name (registered by the test)."""


class FaultInjectorConfig(ActorConfig, frozen=True):
    """Run ``HOOKS[name]`` on the engine thread when the ``bar``-th bar arrives.

    Parameters
    ----------
    bar_type : BarType
    schedule : dict[int, str]
        Bar number (from 1) → hook name.
    """

    bar_type: BarType
    schedule: dict[int, str] = msgspec.field(default_factory=dict)


class FaultInjector(Actor):
    def __init__(self, config: FaultInjectorConfig) -> None:
        super().__init__(config)
        self.bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        hook = self.config.schedule.get(self.bars)
        if hook is not None:
            HOOKS[hook]()


# -- Independent record of what the engine published -----------------------------------------------

RECORDED: dict[str, list[Any]] = defaultdict(list)
"""Order and position events seen by :class:`EventRecorder`, by ``run_tag``."""


class EventRecorderConfig(ActorConfig, frozen=True):
    run_tag: str = ""


class EventRecorder(Actor):
    """Keeps every order and position event of the run (the expected side of the round trip)."""

    def __init__(self, config: EventRecorderConfig) -> None:
        super().__init__(config)

    def on_start(self) -> None:
        self.msgbus.subscribe(topic="events.order.*", handler=self._record)
        self.msgbus.subscribe(topic="events.position.*", handler=self._record)

    def on_dispose(self) -> None:
        self.msgbus.unsubscribe(topic="events.order.*", handler=self._record)
        self.msgbus.unsubscribe(topic="events.position.*", handler=self._record)

    def _record(self, event: Any) -> None:
        RECORDED[self.config.run_tag].append(event)


# -- A run that lasts, with records flowing --------------------------------------------------------

GATES: dict[str, threading.Event] = {}
"""Events a :class:`Pacer` waits on, by name (registered by the test)."""


class PacerConfig(ActorConfig, frozen=True):
    """Slow the run down to wall-clock time and publish records on every bar.

    Parameters
    ----------
    bar_type : BarType
    sleep_s : float
        Seconds the engine thread sleeps on each bar (a run of N bars lasts at least N × this).
    records_per_bar : int
        ``RegimeUpdateRecord``s published per bar on ``grodt.forensics.regime`` (spread over 4
        keys), so that records are in flight whenever the test acts.
    hold_at_bar : int
        At this bar (from 1), wait for ``GATES[gate]`` (at most 120 s) before going on.
    gate : str
    """

    bar_type: BarType
    sleep_s: float = 0.0
    records_per_bar: int = 0
    hold_at_bar: int = 0
    gate: str = ""


class Pacer(Actor):
    def __init__(self, config: PacerConfig) -> None:
        super().__init__(config)
        self.bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        from grodt.core.records import RegimeUpdateRecord
        from grodt.core.topics import Topics

        self.bars += 1
        for i in range(self.config.records_per_bar):
            self.msgbus.publish(
                Topics.REGIME,
                RegimeUpdateRecord(
                    trace_id="",
                    ts_event=bar.ts_event,
                    ts_init=bar.ts_init,
                    component_id=self.id.value,
                    instrument_id=f"PACE{i % 4}.SIM",
                    probabilities={"bull": 0.5, "bear": 0.5},
                    most_likely="bull",
                    entropy=0.693,
                    reason=f"bar {self.bars} record {i}",
                ),
            )
        if self.bars == self.config.hold_at_bar and self.config.gate:
            GATES[self.config.gate].wait(120)
        if self.config.sleep_s:
            time.sleep(self.config.sleep_s)


# -- What the sink acknowledged --------------------------------------------------------------------


class AckLog:
    """Every record a pipeline's sink acknowledged, with when (``time.monotonic()``): rebinds the
    sink's callbacks to note each acknowledgement before the pipeline counts it."""

    def __init__(self) -> None:
        self.acked: dict[int, float] = {}

    def attach(self, pipeline: Any) -> None:
        delivery = pipeline.delivery

        def delivered(envelope: Any) -> None:
            self.acked.setdefault(envelope.seq, time.monotonic())
            delivery.on_delivered(envelope)

        pipeline.sink.bind(delivered, delivery.on_failed)
