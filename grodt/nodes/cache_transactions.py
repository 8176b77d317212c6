"""A live node's cache database written one transaction per checkpoint.

Nautilus' Redis cache database (``CacheDatabaseAdapter`` over the Rust ``RedisCacheDatabase``)
hands every cache change to a background writer as it happens; the writer sends it at once (or
every ``buffer_interval_ms``) as a plain pipeline. Redis therefore holds whatever part of a
record's changes had left the process when it was killed: a venue's fill without the position's
update, an order without the strategy state that sent it. The checkpoint (the strategies' saved
state and the replay position, :mod:`grodt.nodes.checkpoint`) stands one record earlier, and a
restarted node can repeat a decision.

:class:`TransactionalCacheDatabase` keeps Nautilus' adapter for everything it reads (the load
when the node is built, strategy and actor state at start) and takes over every write: each
write becomes the Redis commands Nautilus' writer would send (same keys, same data structures,
the same serialised bytes), held in this process until :meth:`~TransactionalCacheDatabase.commit`
sends them all in one ``MULTI``/``EXEC`` transaction. The live node commits at each checkpoint,
with the checkpoint key in the same transaction, so Redis only ever holds the state as of a
checkpoint: a SIGKILL loses the changes since the last one, never part of them.

Why this mechanism: Nautilus' writer offers no transaction and no way to hold writes until a
point the node chooses (``buffer_interval_ms`` flushes on a timer, not at a record boundary, and
its pipeline is not atomic); the adapter's backing is a private Cython attribute, so the writes
are taken over at the adapter's public methods, which the cache calls for every change. The
kernel constructs the adapter itself, so :func:`transactional_cache_database` makes a kernel
built inside it use this class.
"""

import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import redis
from nautilus_trader.cache.database import CacheDatabaseAdapter
from nautilus_trader.common.component import Logger
from nautilus_trader.core.datetime import format_iso8601
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.functions import currency_type_to_str
from redis.backoff import NoBackoff
from redis.retry import Retry

from grodt.core.errors import GrodtError

__all__ = ["CommitStats", "TransactionalCacheDatabase", "transactional_cache_database"]

_INDEX_ORDER_IDS = "index:order_ids"
_INDEX_ORDER_POSITION = "index:order_position"
_INDEX_ORDER_CLIENT = "index:order_client"
_INDEX_ORDERS = "index:orders"
_INDEX_ORDERS_OPEN = "index:orders_open"
_INDEX_ORDERS_CLOSED = "index:orders_closed"
_INDEX_ORDERS_EMULATED = "index:orders_emulated"
_INDEX_ORDERS_INFLIGHT = "index:orders_inflight"
_INDEX_POSITIONS = "index:positions"
_INDEX_POSITIONS_OPEN = "index:positions_open"
_INDEX_POSITIONS_CLOSED = "index:positions_closed"

_COMMIT_KEY = "grodt:commit"
"""Token of the last committed transaction (outside Nautilus' collections: never loaded). After
a commit whose reply was lost, it tells whether the transaction was applied."""


class CommitStats:
    """Counters of a :class:`TransactionalCacheDatabase` (for the node's summary).

    Attributes
    ----------
    commits : int
        Transactions applied.
    commands : int
        Redis commands they carried (the commit token's not counted).
    largest : int
        Commands in the largest transaction.
    failures : int
        Commits that failed (their commands were kept for the next commit).
    """

    __slots__ = ("commands", "commits", "failures", "largest")

    def __init__(self) -> None:
        self.commits = 0
        self.commands = 0
        self.largest = 0
        self.failures = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class TransactionalCacheDatabase(CacheDatabaseAdapter):
    """Nautilus' Redis cache database with writes held until :meth:`commit` (one transaction).

    Constructed by the kernel with Nautilus' adapter arguments (see
    :func:`transactional_cache_database`).

    Parameters
    ----------
    trader_id : TraderId
    instance_id : UUID4
    serializer : Serializer
        The kernel's serializer (the bytes Nautilus' adapter would write).
    config : CacheConfig
        Its ``database`` gives the server; ``use_trader_prefix``/``use_instance_id`` the key
        prefix, as for Nautilus' adapter.
    client : redis.Redis, optional
        The connection commits go through (default: one to ``config.database``, no retries: a
        transaction is never sent twice blindly).
    """

    def __init__(
        self,
        trader_id: Any,
        instance_id: Any,
        serializer: Any,
        config: Any,
        client: redis.Redis | None = None,
    ) -> None:
        super().__init__(
            trader_id=trader_id,
            instance_id=instance_id,
            serializer=serializer,
            config=config,
        )
        database = config.database
        if database is None:
            raise GrodtError("cache database: no database configured")
        self.host = database.host or "127.0.0.1"
        self.port = database.port or 6379
        self._serializer_ = serializer
        prefix = f"trader-{trader_id.value}" if config.use_trader_prefix else trader_id.value
        if config.use_instance_id:
            prefix += f":{instance_id.value}"
        self._prefix = prefix + ":"
        self._client = client or redis.Redis(
            host=self.host,
            port=self.port,
            username=database.username,
            password=database.password,
            ssl=database.ssl,
            socket_timeout=database.timeout,
            socket_connect_timeout=database.timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self._staged: list[tuple[Any, ...]] = []
        self._logger = Logger(type(self).__name__)
        self.stats = CommitStats()

    # -- transactions ---------------------------------------------------------------------------

    @property
    def staged(self) -> int:
        """Commands held for the next commit."""
        return len(self._staged)

    def _stage(self, command: str, key: str, *args: bytes | str) -> None:
        self._staged.append((command, self._prefix + key, *args))

    def commit(self) -> int:
        """Send every held write in one ``MULTI``/``EXEC`` transaction; returns the commands
        sent. Raises GrodtError when the server did not apply it (the writes stay held, so the
        next commit sends them again)."""
        if not self._staged:
            return 0
        staged = self._staged
        token = uuid.uuid4().hex
        pipeline = self._client.pipeline(transaction=True)
        for command in staged:
            pipeline.execute_command(*command)
        pipeline.execute_command("SET", self._prefix + _COMMIT_KEY, token)
        try:
            pipeline.execute()
        except redis.ConnectionError as e:
            if not self._applied(token):
                self.stats.failures += 1
                raise GrodtError(
                    f"cache database: commit of {len(staged)} writes to {self.host}:{self.port} "
                    f"failed ({e}); they are held for the next commit",
                ) from e
        except redis.RedisError as e:
            # A command refused inside EXEC: Redis applied the others (it has no rollback).
            self.stats.failures += 1
            self._staged = []
            raise GrodtError(
                f"cache database: commit to {self.host}:{self.port} was refused in part: {e}",
            ) from e
        self._staged = []
        self.stats.commits += 1
        self.stats.commands += len(staged)
        self.stats.largest = max(self.stats.largest, len(staged))
        return len(staged)

    def _applied(self, token: str) -> bool:
        """Whether the transaction carrying ``token`` reached the server (its reply was lost)."""
        try:
            return self._client.get(self._prefix + _COMMIT_KEY) == token.encode()
        except redis.RedisError:
            return False

    def discard(self) -> int:
        """Drop the held writes; returns how many."""
        dropped = len(self._staged)
        self._staged = []
        return dropped

    def close(self) -> None:
        """Commit what is held, then close Nautilus' adapter and this connection."""
        try:
            self.commit()
        except GrodtError as e:
            self._logger.error(f"{e}; {self.staged} writes lost at close")
        finally:
            super().close()
            self._client.close()

    def flush(self) -> None:
        """Delete every key of the database (``FLUSHDB``), held writes included."""
        self._staged = []
        self._client.flushdb()

    # -- Nautilus' writes, as its Redis writer sends them ---------------------------------------

    def _serialize(self, value: Any) -> bytes:
        return self._serializer_.serialize(value)

    def add(self, key: str, value: bytes) -> None:
        self._stage("SET", f"general:{key}", value)

    def add_currency(self, currency: Any) -> None:
        document = {
            "precision": currency.precision,
            "iso4217": currency.iso4217,
            "name": currency.name,
            "currency_type": currency_type_to_str(currency.currency_type),
        }
        self._stage("SET", f"currencies:{currency.code}", self._serialize(document))

    def add_instrument(self, instrument: Any) -> None:
        self._stage("SET", f"instruments:{instrument.id}", self._serialize(instrument))

    def add_synthetic(self, synthetic: Any) -> None:
        self._stage("SET", f"synthetics:{synthetic.id.value}", self._serialize(synthetic))

    def add_account(self, account: Any) -> None:
        self._stage("RPUSH", f"accounts:{account.id.value}", self._serialize(account.last_event))

    def add_order(self, order: Any, position_id: Any = None, client_id: Any = None) -> None:
        order_id = order.client_order_id.value
        self._stage("RPUSH", f"orders:{order_id}", self._serialize(order.last_event))
        self._stage("SADD", _INDEX_ORDERS, order_id)
        if order.emulation_trigger != TriggerType.NO_TRIGGER:
            self._stage("SADD", _INDEX_ORDERS_EMULATED, order_id)
        if position_id is not None:
            self.index_order_position(order.client_order_id, position_id)
        if client_id is not None:
            self._stage("HSET", _INDEX_ORDER_CLIENT, order_id, client_id.value)

    def add_position(self, position: Any) -> None:
        position_id = position.id.value
        self._stage("RPUSH", f"positions:{position_id}", self._serialize(position.last_event))
        self._stage("SADD", _INDEX_POSITIONS, position_id)
        self._stage("SADD", _INDEX_POSITIONS_OPEN, position_id)

    def index_venue_order_id(self, client_order_id: Any, venue_order_id: Any) -> None:
        # Nautilus' writer keeps the first of the two values it is given: a set of client ids.
        self._stage("SADD", _INDEX_ORDER_IDS, client_order_id.value)

    def index_order_position(self, client_order_id: Any, position_id: Any) -> None:
        self._stage("HSET", _INDEX_ORDER_POSITION, client_order_id.value, position_id.value)

    def update_actor(self, actor: Any) -> None:
        self._stage("SET", f"actors:{actor.id.value}:state", self._serialize(actor.save()))

    def update_strategy(self, strategy: Any) -> None:
        state = self._serialize(strategy.save())
        self._stage("SET", f"strategies:{strategy.id.value}:state", state)

    def update_account(self, account: Any) -> None:
        self._stage("RPUSHX", f"accounts:{account.id.value}", self._serialize(account.last_event))

    def update_order(self, order: Any) -> None:
        order_id = order.client_order_id.value
        self._stage("RPUSHX", f"orders:{order_id}", self._serialize(order.last_event))
        if order.venue_order_id is not None:
            self.index_venue_order_id(order.client_order_id, order.venue_order_id)
        if order.is_inflight:
            self._stage("SADD", _INDEX_ORDERS_INFLIGHT, order_id)
        else:
            self._stage("SREM", _INDEX_ORDERS_INFLIGHT, order_id)
        if order.is_open:
            self._stage("SREM", _INDEX_ORDERS_CLOSED, order_id)
            self._stage("SADD", _INDEX_ORDERS_OPEN, order_id)
        elif order.is_closed:
            self._stage("SREM", _INDEX_ORDERS_OPEN, order_id)
            self._stage("SADD", _INDEX_ORDERS_CLOSED, order_id)
        if order.emulation_trigger == TriggerType.NO_TRIGGER:
            self._stage("SREM", _INDEX_ORDERS_EMULATED, order_id)
        else:
            self._stage("SADD", _INDEX_ORDERS_EMULATED, order_id)

    def update_position(self, position: Any) -> None:
        event = self._serialize(position.last_event)
        self._stage("RPUSHX", f"positions:{position.id.value}", event)
        # Nautilus 1.221 indexes the serialised event here, not the position id; written the
        # same, so the database is the one Nautilus' adapter would leave (its loads never read
        # these two sets).
        if position.is_open:
            self._stage("SADD", _INDEX_POSITIONS_OPEN, event)
            self._stage("SREM", _INDEX_POSITIONS_CLOSED, event)
        elif position.is_closed:
            self._stage("SADD", _INDEX_POSITIONS_CLOSED, event)
            self._stage("SREM", _INDEX_POSITIONS_OPEN, event)

    def snapshot_order_state(self, order: Any) -> None:
        key = f"snapshots:orders:{order.client_order_id.value}"
        self._stage("RPUSH", key, self._serialize(order.to_dict()))

    def snapshot_position_state(
        self,
        position: Any,
        ts_snapshot: int,
        unrealized_pnl: Any = None,
    ) -> None:
        state = position.to_dict()
        if unrealized_pnl is not None:
            state["unrealized_pnl"] = str(unrealized_pnl)
        state["ts_snapshot"] = ts_snapshot
        self._stage("RPUSH", f"snapshots:positions:{position.id.value}", self._serialize(state))

    def heartbeat(self, timestamp: Any) -> None:
        self._stage("SET", "health:heartbeat", format_iso8601(timestamp))

    def delete_order(self, client_order_id: Any) -> None:
        order_id = client_order_id.value
        self._stage("DEL", f"orders:{order_id}")
        for index in (
            _INDEX_ORDER_IDS,
            _INDEX_ORDERS,
            _INDEX_ORDERS_OPEN,
            _INDEX_ORDERS_CLOSED,
            _INDEX_ORDERS_EMULATED,
            _INDEX_ORDERS_INFLIGHT,
        ):
            self._stage("SREM", index, order_id)
        for index in (_INDEX_ORDER_POSITION, _INDEX_ORDER_CLIENT):
            self._stage("HDEL", index, order_id)

    def delete_position(self, position_id: Any) -> None:
        value = position_id.value
        self._stage("DEL", f"positions:{value}")
        for index in (_INDEX_POSITIONS, _INDEX_POSITIONS_OPEN, _INDEX_POSITIONS_CLOSED):
            self._stage("SREM", index, value)

    def delete_actor(self, component_id: Any) -> None:
        self._stage("DEL", f"actors:{component_id.value}:state")

    def delete_strategy(self, strategy_id: Any) -> None:
        self._stage("DEL", f"strategies:{strategy_id.value}:state")


@contextlib.contextmanager
def transactional_cache_database() -> Iterator[list[TransactionalCacheDatabase]]:
    """While open, a Nautilus kernel gets a :class:`TransactionalCacheDatabase` where it would
    build Nautilus' Redis adapter; yields the list the built adapters are appended to (the kernel
    keeps its database private). The kernel module's name is swapped for the duration, process
    wide: build one kernel inside it, and no other kernel concurrently."""
    from nautilus_trader.system import kernel as kernel_module

    built: list[TransactionalCacheDatabase] = []

    def build(**kwargs: Any) -> TransactionalCacheDatabase:
        database = TransactionalCacheDatabase(**kwargs)
        built.append(database)
        return database

    previous = kernel_module.CacheDatabaseAdapter
    kernel_module.CacheDatabaseAdapter = build  # type: ignore[misc,assignment]
    try:
        yield built
    finally:
        kernel_module.CacheDatabaseAdapter = previous  # type: ignore[misc]
