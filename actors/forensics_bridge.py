"""Forensics bridge: ships every "why" out of the node — decisions, risk verdicts, allocations,
regime updates, order, fill and position events — without slowing the engine.

The actor subscribes to the forensics topics (``grodt.forensics.*``, see
:class:`grodt.core.topics.Topics`; records are routed to their stream by class) and to
``events.order.*`` / ``events.position.*``. Its handlers only hand the message to a bounded queue
(:class:`actors.forensics.pipeline.ForensicsPipeline`); a background thread converts, serialises
and delivers to Kafka (idempotent producer, keyed by strategy/instrument) or, without Kafka, to
Parquet in the run directory. A full queue or a broker outage spills to an append-only file that
is replayed in order; nothing is dropped.

Trace ids: an order's ``OrderInitialized`` carries the deciding strategy's ``trace_id=<id>`` tag;
the bridge remembers it per client order id and stamps every later event of that order, and every
position event its fills cause.

Lifecycle: the pipeline starts in ``on_start``; counters are logged in ``on_stop``; subscriptions
end in ``on_dispose`` (strategies' closing orders in their ``on_stop`` come after actors stop, so
the bridge keeps listening until then), which also flushes and closes the pipeline unless the node
extension already did (:meth:`ForensicsBridge.close`).
"""

from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.config import PositiveFloat
from nautilus_trader.common.config import PositiveInt
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderEvent
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionEvent
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import PositionId

from actors.forensics.config import TopicNames
from actors.forensics.config import resolve_sink
from actors.forensics.convert import nautilus_to_wire
from actors.forensics.encoder import VALIDATION_MODES
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.pipeline import new_session_id
from actors.forensics.shared_outbox import SessionLease
from actors.forensics.shared_outbox import SharedOutbox
from actors.forensics.shared_outbox import default_outbox_root
from actors.forensics.shared_outbox import public_producer_config
from actors.forensics.sinks import KafkaSink
from actors.forensics.sinks import ParquetSink
from actors.forensics.sinks import Sink
from actors.forensics.sinks import resolve_client_config
from actors.forensics.stats import PipelineStats
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import MonitorRecord
from grodt.core.records import OrderEventRecord
from grodt.core.records import PositionEventRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import trace_id_from_tags
from grodt.core.topics import Topics

_TERMINAL_EVENTS = (OrderCanceled, OrderExpired, OrderRejected, OrderDenied)
_CLOSED_ORDERS_KEPT = 10_000
"""Closed orders whose trace id stays known (late events, position events after the last fill)."""


class ForensicsBridgeConfig(ActorConfig, frozen=True):
    """Configuration for :class:`ForensicsBridge` (usually built from the node's ``forensics:``
    section by :mod:`actors.forensics_extension`).

    Parameters
    ----------
    sink : {"auto", "kafka", "parquet"}, default "auto"
        ``auto``: Kafka when ``bootstrap_servers`` or ``GRODT_KAFKA_BOOTSTRAP`` is set, else
        Parquet files under ``output_dir``.
    bootstrap_servers : str, optional
        Kafka bootstrap servers.
    producer_config : dict, optional
        librdkafka settings over the bridge defaults (``"env:NAME"`` values read ``NAME``).
    create_topics : bool, default True
        Create missing topics with ``partitions`` and ``replication_factor``.
    partitions, replication_factor : int
        For created topics.
    topics : dict[str, str], optional
        Destination topic overrides by stream: ``decisions``, ``risk``, ``allocations``,
        ``regime``, ``orders``, ``positions`` (defaults ``grodt.forensics.*``,
        ``grodt.events.orders``, ``grodt.events.positions``).
    output_dir : str, optional
        Parquet output (``<run_dir>/forensics``); default ``<GRODT_RUNS_DIR>/forensics/<session>``.
    spill_dir : str, optional
        Kafka: the root of the shared outbox (default
        ``<GRODT_RUNS_DIR>/forensics/outbox/<sink key>``, one per bootstrap servers and topic
        set): records left there by any run are delivered by the next process using the same
        sink (:mod:`actors.forensics.shared_outbox`); dead letters go to
        ``<output_dir>/rejected.jsonl``. Parquet: the spill directory (default
        ``<output_dir>/spill``).
    order_events, position_events : bool, default True
        Ship order/fill and position events.
    validation : {"all", "sampled", "off"}, default "sampled"
        Validate records against their contract on the worker thread: all, the first 100 per
        (component, record type) and one in 100 after, or none (see
        :class:`actors.forensics.pipeline.ForensicsPipeline`).
    queue_size : int, default 65_536
        In-memory records before the engine spills to disk.
    flush_timeout_s : float, default 30.0
        How long closing waits for the sink to acknowledge what is left.
    stall_timeout_s : float, default 10.0
        No acknowledgement this long → the sink counts as down.
    reconnect_interval_s : float, default 1.0
        How often a down sink is probed.
    """

    sink: str = "auto"
    bootstrap_servers: str | None = None
    producer_config: dict[str, str | int | float | bool] = msgspec.field(default_factory=dict)
    create_topics: bool = True
    partitions: PositiveInt = 6
    replication_factor: PositiveInt = 1
    topics: dict[str, str] = msgspec.field(default_factory=dict)
    output_dir: str | None = None
    spill_dir: str | None = None
    order_events: bool = True
    position_events: bool = True
    validation: str = "sampled"
    queue_size: PositiveInt = 65_536
    flush_timeout_s: PositiveFloat = 30.0
    stall_timeout_s: PositiveFloat = 10.0
    reconnect_interval_s: PositiveFloat = 1.0

    def __post_init__(self) -> None:
        if self.validation not in VALIDATION_MODES:
            raise ValueError(
                f"validation must be one of {VALIDATION_MODES}, was {self.validation!r}"
            )
        if self.sink not in ("auto", "kafka", "parquet"):
            raise ValueError(f"sink must be 'auto', 'kafka' or 'parquet', was {self.sink!r}")
        unknown = sorted(set(self.topics) - set(TopicNames.model_fields))
        if unknown:
            raise ValueError(
                f"topics: unknown stream(s) {unknown}; known: {sorted(TopicNames.model_fields)}",
            )


class ForensicsBridge(Actor):
    """Message bus → Kafka/Parquet bridge for forensics records and order/position events."""

    def __init__(self, config: ForensicsBridgeConfig) -> None:
        super().__init__(config)
        self.topics = TopicNames(**config.topics)
        self.pipeline: ForensicsPipeline | None = None
        self.outbox_root: Path | None = None
        self._lease: SessionLease | None = None
        self.final_stats: PipelineStats | None = None
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []
        # Engine-thread state: trace ids by order, and the order behind each position's last fill.
        self._trace_by_order: dict[ClientOrderId, str] = {}
        self._closed_orders: deque[ClientOrderId] = deque()
        self._last_fill_order: dict[PositionId, ClientOrderId] = {}
        self._offer: Callable[[str, Any, Any], None] = _not_started
        self._route: dict[type, str] = {
            DecisionRecord: self.topics.decisions,
            RiskVerdictRecord: self.topics.risk,
            AllocationRecord: self.topics.allocations,
            RegimeUpdateRecord: self.topics.regime,
            MonitorRecord: self.topics.regime,
            OrderEventRecord: self.topics.orders,
            PositionEventRecord: self.topics.positions,
        }
        self._topic_orders = self.topics.orders
        self._topic_positions = self.topics.positions

    # -- lifecycle --------------------------------------------------------------------------------

    def on_start(self) -> None:
        if self.pipeline is None:
            self.pipeline = self._build_pipeline()
            self.pipeline.start()
            self._offer = self.pipeline.offer
            self.log.info(
                f"Forensics to {self.pipeline.sink.describe()}, spill {self.pipeline.spill_dir}, "
                f"session {self.pipeline.session}",
            )
        self._subscribe()

    def on_stop(self) -> None:
        # Keep subscriptions and the pipeline: strategies stop after actors and their closing
        # orders still produce events.
        if self.pipeline is not None:
            self.log.info(f"Forensics counters at stop: {self.pipeline.stats().summary_line()}")

    def on_dispose(self) -> None:
        self._unsubscribe()
        self.close()

    def close(self, timeout_s: float | None = None) -> PipelineStats | None:
        """Flush and close the pipeline (idempotent): afterwards every record received is either
        delivered or in the spill directory. Returns the final counters."""
        if self.pipeline is None:
            return None
        if self.final_stats is None:
            timeout = self.config.flush_timeout_s if timeout_s is None else timeout_s
            self.final_stats = self.pipeline.close(timeout)
            if self._lease is not None:
                self._lease.close()  # what is left is the next process's to deliver
            self.log.info(f"Forensics counters at close: {self.final_stats.summary_line()}")
        return self.final_stats

    def _build_pipeline(self) -> ForensicsPipeline:
        from grodt.core.settings import get_settings

        config = self.config
        session = new_session_id()
        sink_kind, bootstrap = resolve_sink(config.sink, config.bootstrap_servers)
        if config.output_dir:
            output_dir = Path(config.output_dir)
        else:
            output_dir = get_settings().runs_dir / "forensics" / session
        spill_dir = Path(config.spill_dir) if config.spill_dir else output_dir / "spill"
        dead_letters_path: Path | None = None
        sink: Sink
        if sink_kind == "kafka":
            assert bootstrap is not None
            topics = list(self.topics.model_dump().values())
            spill_dir = self._open_shared_outbox(session, bootstrap, topics)
            dead_letters_path = output_dir / "rejected.jsonl"
            sink = KafkaSink(
                bootstrap,
                topics=topics,
                producer_config=resolve_client_config(
                    dict(config.producer_config),
                    "forensics.kafka.producer",
                ),
                create_topics=config.create_topics,
                partitions=config.partitions,
                replication_factor=config.replication_factor,
                client_id=f"grodt-forensics-{self.trader_id}",
                log=self.log,
            )
        else:
            sink = ParquetSink(output_dir, session, log=self.log)
        return ForensicsPipeline(
            sink,
            spill_dir,
            queue_size=config.queue_size,
            linger_s=sink.linger_s,  # the destination's, whether backtest or live
            to_record=nautilus_to_wire,
            validation=config.validation,
            stall_timeout_s=config.stall_timeout_s,
            reconnect_interval_s=config.reconnect_interval_s,
            session=session,
            dead_letters_path=dead_letters_path,
            log=self.log,
        )

    def _open_shared_outbox(self, session: str, bootstrap: str, topics: list[str]) -> Path:
        """This session's directory in the sink's shared outbox, holding the records of ended
        sessions (delivered first); describes the sink for ``grodt forensics flush``."""
        from grodt.core.settings import get_settings

        config = self.config
        root = (
            Path(config.spill_dir)
            if config.spill_dir
            else default_outbox_root(get_settings().runs_dir, bootstrap, topics)
        )
        shared = SharedOutbox(root, self.log)
        shared.write_sink(
            {
                "sink": "kafka",
                "bootstrap_servers": bootstrap,
                "topics": topics,
                "create_topics": config.create_topics,
                "partitions": config.partitions,
                "replication_factor": config.replication_factor,
                "producer": public_producer_config(dict(config.producer_config)),
            },
        )
        self._lease = shared.open_session(session)
        self.outbox_root = root
        return self._lease.path

    def _subscribe(self) -> None:
        if self._subscriptions:
            return
        handlers: list[tuple[str, Callable[[Any], None]]] = [
            (Topics.FORENSICS_ALL, self._on_record),
        ]
        if self.config.order_events or self.config.position_events:
            # Position events are stamped through their orders' fills: both streams need the
            # order events (``order_events: false`` keeps the trace map but ships no order events).
            handlers.append(("events.order.*", self._on_order_event))
            handlers.append(("events.position.*", self._on_position_event))
        for topic, handler in handlers:
            self.msgbus.subscribe(topic=topic, handler=handler)
        self._subscriptions = handlers

    def _unsubscribe(self) -> None:
        for topic, handler in self._subscriptions:
            self.msgbus.unsubscribe(topic=topic, handler=handler)
        self._subscriptions = []

    # -- handlers (engine thread: a dict lookup and a queue append) -------------------------------

    def _on_record(self, record: Any) -> None:
        """Every message on ``grodt.forensics.*``, routed by record class (a record published
        on the wrong forensics topic still lands in its stream)."""
        topic = self._route.get(type(record))
        if topic is None:
            self._unroutable(record)
            return
        self._offer(topic, record, None)

    def _unroutable(self, message: Any) -> None:
        assert self.pipeline is not None
        self.pipeline.reject(
            "grodt.forensics.*",
            message,
            f"not a forensics record ({type(message).__name__}); publish grodt.core.records types",
        )

    def _on_order_event(self, event: OrderEvent) -> None:
        client_order_id = event.client_order_id
        cls = type(event)
        if cls is OrderInitialized:
            trace_id = trace_id_from_tags(event.tags)
            if trace_id:
                self._trace_by_order[client_order_id] = trace_id
        else:
            trace_id = self._trace_by_order.get(client_order_id)
            if cls is OrderFilled:
                if event.position_id is not None:
                    self._last_fill_order[event.position_id] = client_order_id
                order = self.cache.order(client_order_id)
                if order is not None and order.is_closed:
                    self._forget(client_order_id)
            elif cls in _TERMINAL_EVENTS:
                self._forget(client_order_id)
        if self.config.order_events:
            self._offer(self._topic_orders, event, trace_id)

    def _on_position_event(self, event: PositionEvent) -> None:
        closed = type(event) is PositionClosed
        if closed and event.closing_order_id is not None:
            client_order_id = event.closing_order_id
        else:
            client_order_id = self._last_fill_order.get(event.position_id, event.opening_order_id)
        if closed:
            self._last_fill_order.pop(event.position_id, None)
        if not self.config.position_events:
            return
        trace_id = self._trace_by_order.get(client_order_id) if client_order_id else None
        self._offer(
            self._topic_positions,
            event,
            (client_order_id.value if client_order_id else None, trace_id),
        )

    def _forget(self, client_order_id: ClientOrderId) -> None:
        """Closed orders keep their trace id for a while (late events), then it is dropped."""
        if client_order_id not in self._trace_by_order:
            return
        self._closed_orders.append(client_order_id)
        if len(self._closed_orders) > _CLOSED_ORDERS_KEPT:
            self._trace_by_order.pop(self._closed_orders.popleft(), None)


def _not_started(topic: str, item: Any, context: Any) -> None:
    raise RuntimeError("ForensicsBridge received a message before on_start")
