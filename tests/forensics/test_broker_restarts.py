"""The broker SIGKILLed and restarted on the same port, three times, while a BacktestNode run goes
on and records flow: after each restart the producer is replaced (the in-memory broker no longer
knows its id, and librdkafka fails it fatally) and the outbox replays in order.

The broker is Tansu with in-memory storage: a killed broker loses its log, so records it had
acknowledged and that no consumer had read yet are gone — the only records allowed missing (a
replicated Kafka cluster keeps them). Everything else arrives; every record enqueued after the
last restart exactly once.
"""

import threading
import time
from collections import Counter
from collections import defaultdict
from pathlib import Path

import pytest
from forensics_kit import GATES
from forensics_kit import AckLog
from forensics_kit import BackgroundConsumer
from forensics_kit import Consumed
from forensics_kit import consume_all

from actors.forensics.config import TopicNames
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.pipeline import active_pipelines
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.forensics import BAR_TYPE
from grodt.test_kit.forensics import node_document
from grodt.test_kit.forensics import traced_cross
from grodt.test_kit.tansu import TansuBroker
from node_configs.schema import BacktestNodeSpec

pytestmark = pytest.mark.slow

ALL_TOPICS = list(TopicNames().model_dump().values())
CYCLES = 3
DOWN_S = 1.5  # broker dead
UP_S = 2.5  # broker up before the next kill (records flow through it)


class Chaos(threading.Thread):
    """Kills and restarts the broker ``CYCLES`` times while the run goes on; one consumer per
    broker life reads what that broker holds, until just before the kill."""

    def __init__(self, broker: TansuBroker, acks: AckLog) -> None:
        super().__init__(daemon=True)
        self.broker = broker
        self.acks = acks
        self.consumers: list[BackgroundConsumer] = []
        self.kills: list[float] = []
        self.restarts: list[float] = []
        self.enqueued_at_restart: list[int] = []
        self.pipeline: ForensicsPipeline | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._run()
        except BaseException as e:  # reported by the test
            self.error = e
        finally:
            GATES["chaos_done"].set()

    def _run(self) -> None:
        deadline = time.monotonic() + 60
        while not active_pipelines():
            assert time.monotonic() < deadline, "the bridge never started"
            time.sleep(0.01)
        self.pipeline = max(active_pipelines(), key=lambda p: p.session)
        self.acks.attach(self.pipeline)
        self.consumers.append(BackgroundConsumer(self.broker.bootstrap, ALL_TOPICS).__enter__())
        time.sleep(UP_S)
        for _ in range(CYCLES):
            self.consumers[-1].stop()
            self.broker.stop()  # SIGKILL
            self.kills.append(time.monotonic())
            time.sleep(DOWN_S)
            self.broker.start()  # same port, empty
            self.restarts.append(time.monotonic())
            self.enqueued_at_restart.append(self.pipeline.stats().enqueued)
            consumer = BackgroundConsumer(self.broker.bootstrap, ALL_TOPICS)
            self.consumers.append(consumer.__enter__())
            time.sleep(UP_S)


def test_three_broker_kills_mid_run_lose_only_what_a_dead_broker_acknowledged(
    broker: TansuBroker,
    catalog: Path,
    tmp_path: Path,
) -> None:
    acks = AckLog()
    chaos = Chaos(broker, acks)
    GATES["chaos_done"] = threading.Event()
    pacer = {
        "path": "forensics_kit:Pacer",
        "config": {
            "bar_type": BAR_TYPE,
            "sleep_s": 0.004,
            "records_per_bar": 6,
            "hold_at_bar": 2_700,  # the last 300 bars come after the chaos
            "gate": "chaos_done",
        },
    }
    document = node_document(
        "broker_restarts",
        [traced_cross("broker_restarts")],
        actors=[pacer],
        forensics={
            "kafka": {"bootstrap_servers": broker.bootstrap, "partitions": 3},
            "spill_dir": str(tmp_path / "outbox"),
            "stall_timeout_s": 2.0,
            "reconnect_interval_s": 0.2,
            "flush_timeout_s": 60.0,
        },
    )
    chaos.start()
    try:
        spec = BacktestNodeSpec.model_validate(document)
        summary = run_backtest(spec, catalog, tmp_path / "run", quiet=True).summary
    finally:
        chaos.join(30)
        for consumer in chaos.consumers:
            consumer.stop()
    assert chaos.error is None, chaos.error
    assert len(chaos.kills) == CYCLES
    figures = summary["extensions"]["forensics"]
    enqueued = figures["enqueued"]
    assert figures["undelivered"] == 0, f"left in the outbox: {figures}"
    assert figures["delivered"] == enqueued > 18_000
    assert figures["rejected"] == 0
    assert figures["sink_resets"] >= 1, "the producer was never replaced"

    # What each broker life held: read before its kill, and the last broker at the end.
    # An acknowledgement seen before the last broker started came from a broker that was then
    # killed (the worker may see it a little after the kill). The last broker holds at least
    # what it acknowledged; records a dead broker acknowledged and nobody read are gone, so the
    # last consumer does not wait for them.
    acked_by_the_last = sum(1 for at in acks.acked.values() if at >= chaos.restarts[-1])
    last = consume_all(broker.bootstrap, ALL_TOPICS, acked_by_the_last, timeout=60.0)
    lives = [consumer.messages for consumer in chaos.consumers[:-1]] + [last]

    copies = Counter(m.seq for life in lives for m in life)
    missing = set(range(1, enqueued + 1)) - set(copies)
    acked_by_a_dead_broker = {seq for seq, at in acks.acked.items() if at < chaos.restarts[-1]}
    unexplained = sorted(missing - acked_by_a_dead_broker)
    assert not unexplained, (
        f"{len(unexplained)} records lost that no dead broker had acknowledged, e.g. "
        f"{[(seq, acks.acked.get(seq)) for seq in unexplained[:5]]}; kills {chaos.kills}, "
        f"restarts {chaos.restarts}"
    )
    after_last_restart = range(chaos.enqueued_at_restart[-1] + 1, enqueued + 1)
    assert all(copies[seq] == 1 for seq in after_last_restart), "not exactly once after restart"
    # A record can reach two broker lives only when it was in flight at a kill (its
    # acknowledgement died with the broker): re-sent, never duplicated within one life.
    duplicated = {seq for seq, count in copies.items() if count > 1}
    assert all(seq <= chaos.enqueued_at_restart[-1] for seq in duplicated)
    for life in lives:
        assert_in_order_per_key(life)


def assert_in_order_per_key(messages: list[Consumed]) -> None:
    """Within one broker's log: no record twice, and ``seq`` increasing along every key."""
    by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
    for message in messages:  # consumption order within each partition
        by_key[(message.topic, message.key)].append(message.seq)
    for key, seqs in by_key.items():
        assert seqs == sorted(set(seqs)), f"order broken or a duplicate for {key}"
