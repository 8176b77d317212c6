"""Live node building and running: a validated :class:`LiveNodeSpec` → Nautilus TradingNode.

The same importable strategy and actor configs as the backtest runner
(:func:`grodt.nodes.backtest.importable_strategy` / ``importable_actor``), the same node extensions
(``actors()`` before build, ``install(kernel)`` before start, ``finish(kernel)`` at stop), the same
risk-engine and logging settings. Around the TradingNode, :class:`LiveNode` adds what an operator
needs: graceful SIGINT/SIGTERM handling (flatten or keep positions, flush the extensions), a kill
switch (file and command), a periodic health line, and run outputs (reports, summary, latency).

Paper nodes (replay + sandbox) write the same reports and summary as a backtest, which is what
``grodt parity`` compares.
"""

import asyncio
import contextlib
import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.config import LiveDataEngineConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LiveRiskEngineConfig
from nautilus_trader.config import RoutingConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.factories import LiveExecClientFactory
from nautilus_trader.live.node import TradingNode
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.orders import Order
from nautilus_trader.trading.strategy import Strategy

from catalogs.reader import read_closes
from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.topics import NAUTILUS_SHUTDOWN
from grodt.nodes.backtest import BAR_DATA_CLS
from grodt.nodes.backtest import importable_actor
from grodt.nodes.backtest import importable_strategy
from grodt.nodes.backtest import logging_config
from grodt.nodes.backtest import venue_config
from grodt.nodes.backtest import write_json
from grodt.nodes.latency import LatencyProbe
from grodt.nodes.operations import DEFAULT_KILL_FILE
from grodt.nodes.operations import HealthMonitor
from grodt.nodes.operations import JsonlSink
from grodt.nodes.operations import KillSwitch
from grodt.nodes.operations import format_health_line
from grodt.nodes.operations import utc_now_iso
from grodt.nodes.operations import write_node_file
from grodt.nodes.replay import EngineIdle
from grodt.nodes.replay import ReplayDataClient
from grodt.nodes.replay import ReplayDataClientConfig
from grodt.nodes.replay import ReplayLiveDataClientFactory
from grodt.nodes.sandbox import GrodtSandboxExecClientConfig
from grodt.nodes.sandbox import GrodtSandboxExecutionClient
from grodt.nodes.sandbox import SandboxLiveExecClientFactory
from node_configs.extensions import NodeExtension
from node_configs.extensions import node_extensions
from node_configs.live_schema import BinanceDataSpec
from node_configs.live_schema import BinanceExecSpec
from node_configs.live_schema import InteractiveBrokersDataSpec
from node_configs.live_schema import InteractiveBrokersExecSpec
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import ReplaySpec
from node_configs.live_schema import SandboxSpec
from research.performance import equity_curve
from research.performance import normalise_fills
from research.performance import run_summary

LOCKSTEP_MIN_SUBMIT_LIMIT = 100_000
"""Lockstep replay compresses days into milliseconds: the wall-clock order rate limit is raised
to this many per interval (accelerated replay: ``speed`` times the limit, at most this many), a
bound that keeps the throttler's timestamp window small."""

IB_CLIENT_NAME = "IB"
BINANCE_CLIENT_NAME = "BINANCE"
REPLAY_CLIENT_NAME = "REPLAY"
MARKET_TIME_PRUNE_EVERY = 10_000
FLATTEN_SOURCE = "node"
"""Kill-switch source of the node's own halt while it flattens on stop."""
FLATTEN_TAG = "grodt-flatten"
"""Tag of the closing orders the node sends when it flattens (never canceled by the flatten)."""
FLATTEN_RETRY_SECONDS = 1.0
"""A position whose closing order vanished (denied, rejected) is closed again after this long."""
FLATTEN_NOT_YET_AT_VENUE = (
    OrderStatus.INITIALIZED,
    OrderStatus.RELEASED,
    OrderStatus.PENDING_CANCEL,
)
"""Working orders not canceled in this state: on their way to the venue (canceled once their
state changes) or already being canceled."""


# -- Config translation -------------------------------------------------------------------------


def resolve_catalog(spec: LiveNodeSpec, catalog: Path | None) -> Path | None:
    """The catalog a replay client reads: its own, the node's, ``catalog``, or settings."""
    replay = spec.replay
    if replay is None:
        return None
    if replay.catalog:
        return Path(replay.catalog)
    if catalog is not None:
        return Path(catalog)
    if spec.catalog:
        return Path(spec.catalog)
    from grodt.core.settings import get_settings

    return get_settings().catalog


def scaled_rate(rate: str, replay: ReplaySpec | None) -> str:
    """A ``"limit/HH:MM:SS"`` order rate, scaled from data time to wall time for replays.

    Nautilus throttles on the wall clock in a TradingNode and on the simulated clock in a
    backtest; an accelerated replay must allow ``speed`` times more orders per wall second for a
    strategy to be throttled as in the backtest. Lockstep has no fixed speed: the limit is raised
    to :data:`LOCKSTEP_MIN_SUBMIT_LIMIT`.
    """
    if replay is None or replay.pacing == "realtime":
        return rate
    limit_text, _, interval = rate.partition("/")
    try:
        limit = int(limit_text)
    except ValueError:
        raise ConfigError(
            f"engine.risk_engine: rate {rate!r} is not '<count>/HH:MM:SS'",
        ) from None
    cap = max(limit, LOCKSTEP_MIN_SUBMIT_LIMIT)
    accelerated = min(math.ceil(limit * replay.speed), cap)
    scaled = cap if replay.pacing == "lockstep" else accelerated
    return f"{scaled}/{interval}"


def replay_client_config(replay: ReplaySpec, catalog: Path) -> ReplayDataClientConfig:
    return ReplayDataClientConfig(
        data=[
            BacktestDataConfig(
                catalog_path=str(catalog),
                data_cls=data.data_cls,
                bar_types=list(data.bar_types) if data.bar_types else None,
                instrument_ids=list(data.instrument_ids) if data.instrument_ids else None,
                start_time=data.start or replay.start,
                end_time=data.end or replay.end,
                client_id=data.client_id,
                metadata=dict(data.metadata) if data.metadata else None,
            )
            for data in replay.data
        ],
        start=replay.start,
        end=replay.end,
        pacing=replay.pacing,
        speed=1.0 if replay.pacing == "realtime" else replay.speed,
        max_gap_seconds=replay.max_gap_seconds,
        idle_turns=replay.idle_turns,
    )


def _ib_instrument_provider(instrument_ids: list[str] | None) -> Any:
    from nautilus_trader.adapters.interactive_brokers.config import (
        InteractiveBrokersInstrumentProviderConfig,
    )
    from nautilus_trader.adapters.interactive_brokers.config import SymbologyMethod

    return InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED,
        load_ids=frozenset(InstrumentId.from_str(i) for i in instrument_ids or []) or None,
    )


def _ib_gateway(spec: InteractiveBrokersDataSpec | InteractiveBrokersExecSpec) -> dict[str, Any]:
    from nautilus_trader.adapters.interactive_brokers.config import DockerizedIBGatewayConfig

    gateway = spec.gateway
    kwargs: dict[str, Any] = {
        "ibg_host": gateway.host,
        "ibg_port": gateway.port,
        "ibg_client_id": gateway.client_id,
    }
    if gateway.dockerized:
        # Username/password stay None: the adapter reads TWS_USERNAME/TWS_PASSWORD itself.
        kwargs["dockerized_gateway"] = DockerizedIBGatewayConfig(
            trading_mode=gateway.trading_mode,
        )
    return kwargs


def _binance_instrument_provider(instrument_ids: list[str]) -> InstrumentProviderConfig:
    return InstrumentProviderConfig(
        load_all=False,
        load_ids=frozenset(InstrumentId.from_str(i) for i in instrument_ids),
    )


def _key_type(name: str) -> Any:
    from nautilus_trader.adapters.binance.common.enums import BinanceKeyType

    return {"HMAC": BinanceKeyType.HMAC, "RSA": BinanceKeyType.RSA}.get(
        name,
        BinanceKeyType.ED25519,
    )


def client_configs(
    spec: LiveNodeSpec,
    catalog: Path | None,
) -> tuple[
    dict[str, Any],
    dict[str, Any],
    dict[str, type[LiveDataClientFactory]],
    dict[str, type[LiveExecClientFactory]],
]:
    """Nautilus client configs and factories for every client of ``spec``.

    Broker credentials are not in these configs: the adapters' factories read them from the
    environment when the node is built, so they never reach a config dump or a log.
    """
    data_configs: dict[str, Any] = {}
    exec_configs: dict[str, Any] = {}
    data_factories: dict[str, type[LiveDataClientFactory]] = {}
    exec_factories: dict[str, type[LiveExecClientFactory]] = {}
    binance_ids: list[str] = []
    for client in spec.data_clients:
        if isinstance(client, BinanceDataSpec):
            binance_ids.extend(client.instrument_ids)
    for client in spec.data_clients:
        if isinstance(client, ReplaySpec):
            assert catalog is not None
            data_configs[REPLAY_CLIENT_NAME] = replay_client_config(client, catalog)
            data_factories[REPLAY_CLIENT_NAME] = ReplayLiveDataClientFactory
        elif isinstance(client, InteractiveBrokersDataSpec):
            from ibapi.common import MarketDataTypeEnum
            from nautilus_trader.adapters.interactive_brokers.config import (
                InteractiveBrokersDataClientConfig,
            )
            from nautilus_trader.adapters.interactive_brokers.factories import (
                InteractiveBrokersLiveDataClientFactory,
            )

            data_configs[IB_CLIENT_NAME] = InteractiveBrokersDataClientConfig(
                instrument_provider=_ib_instrument_provider(client.instrument_ids),
                use_regular_trading_hours=client.use_regular_trading_hours,
                market_data_type=getattr(MarketDataTypeEnum, client.market_data_type),
                **_ib_gateway(client),
            )
            data_factories[IB_CLIENT_NAME] = InteractiveBrokersLiveDataClientFactory
        elif isinstance(client, BinanceDataSpec):
            from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
            from nautilus_trader.adapters.binance.config import BinanceDataClientConfig
            from nautilus_trader.adapters.binance.factories import BinanceLiveDataClientFactory

            data_configs[BINANCE_CLIENT_NAME] = BinanceDataClientConfig(
                account_type=BinanceAccountType.SPOT,
                testnet=client.testnet,
                key_type=_key_type(client.key_type),
                instrument_provider=_binance_instrument_provider(client.instrument_ids),
            )
            data_factories[BINANCE_CLIENT_NAME] = BinanceLiveDataClientFactory
    for client in spec.exec_clients:
        if isinstance(client, SandboxSpec):
            exec_configs[client.venue.name] = GrodtSandboxExecClientConfig(
                venue=venue_config(client.venue),
                routing=RoutingConfig(venues=frozenset({client.venue.name})),
            )
            exec_factories[client.venue.name] = SandboxLiveExecClientFactory
        elif isinstance(client, InteractiveBrokersExecSpec):
            from nautilus_trader.adapters.interactive_brokers.config import (
                InteractiveBrokersExecClientConfig,
            )
            from nautilus_trader.adapters.interactive_brokers.factories import (
                InteractiveBrokersLiveExecClientFactory,
            )

            ib_ids = [
                i
                for c in spec.data_clients
                if isinstance(c, InteractiveBrokersDataSpec)
                for i in c.instrument_ids
            ]
            # account_id stays None: the adapter reads TWS_ACCOUNT.
            exec_configs[IB_CLIENT_NAME] = InteractiveBrokersExecClientConfig(
                instrument_provider=_ib_instrument_provider(ib_ids),
                routing=RoutingConfig(default=True),
                **_ib_gateway(client),
            )
            exec_factories[IB_CLIENT_NAME] = InteractiveBrokersLiveExecClientFactory
        elif isinstance(client, BinanceExecSpec):
            from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
            from nautilus_trader.adapters.binance.config import BinanceExecClientConfig
            from nautilus_trader.adapters.binance.factories import BinanceLiveExecClientFactory

            exec_configs[BINANCE_CLIENT_NAME] = BinanceExecClientConfig(
                account_type=BinanceAccountType.SPOT,
                testnet=client.testnet,
                key_type=_key_type(client.key_type),
                use_reduce_only=client.use_reduce_only,
                instrument_provider=_binance_instrument_provider(binance_ids),
            )
            exec_factories[BINANCE_CLIENT_NAME] = BinanceLiveExecClientFactory
    return data_configs, exec_configs, data_factories, exec_factories


def trading_node_config(
    spec: LiveNodeSpec,
    catalog: Path | None,
    run_dir: Path | None,
    quiet: bool = False,
    extra_actors: list[ImportableActorConfig] | None = None,
) -> tuple[TradingNodeConfig, dict[str, type], dict[str, type]]:
    """Translate a live spec into a ``TradingNodeConfig`` plus its client factories."""
    data_configs, exec_configs, data_factories, exec_factories = client_configs(spec, catalog)
    risk = spec.engine.risk_engine
    replay = spec.replay
    reconciliation = spec.reconciliation
    purge = spec.cache_purge
    timeouts = spec.timeouts
    config = TradingNodeConfig(
        trader_id=spec.engine.trader_id,
        logging=logging_config(spec.logging, run_dir, quiet),
        # An exception in an engine queue must stop the node through the graceful path (which
        # flushes the extensions and writes the reports); Nautilus' default is os._exit(1).
        data_engine=LiveDataEngineConfig(graceful_shutdown_on_exception=True),
        risk_engine=LiveRiskEngineConfig(
            graceful_shutdown_on_exception=True,
            bypass=risk.bypass,
            max_order_submit_rate=scaled_rate(risk.max_order_submit_rate, replay),
            max_order_modify_rate=scaled_rate(risk.max_order_modify_rate, replay),
            max_notional_per_order=dict(risk.max_notional_per_order),
        ),
        exec_engine=LiveExecEngineConfig(
            graceful_shutdown_on_exception=True,
            reconciliation=reconciliation.enabled,
            reconciliation_lookback_mins=reconciliation.lookback_mins,
            open_check_interval_secs=reconciliation.open_check_interval_seconds,
            inflight_check_threshold_ms=reconciliation.inflight_check_threshold_ms,
            purge_closed_orders_interval_mins=purge.closed_orders_interval_mins,
            purge_closed_orders_buffer_mins=purge.closed_orders_buffer_mins,
            purge_closed_positions_interval_mins=purge.closed_positions_interval_mins,
            purge_closed_positions_buffer_mins=purge.closed_positions_buffer_mins,
            purge_account_events_interval_mins=purge.account_events_interval_mins,
            purge_account_events_lookback_mins=purge.account_events_lookback_mins,
        ),
        actors=[importable_actor(a) for a in spec.actors] + list(extra_actors or []),
        strategies=[importable_strategy(s) for s in spec.strategies],
        data_clients=data_configs,
        exec_clients=exec_configs,
        timeout_connection=timeouts.connection,
        timeout_reconciliation=timeouts.reconciliation,
        timeout_portfolio=timeouts.portfolio,
        timeout_disconnection=timeouts.disconnection,
        timeout_post_stop=timeouts.post_stop,
        timeout_shutdown=timeouts.shutdown,
    )
    return config, data_factories, exec_factories


# -- Running ------------------------------------------------------------------------------------


@dataclass
class LiveOutcome:
    """What a live run produced."""

    run_dir: Path
    summary: dict[str, Any]
    reports: dict[str, Path] = field(default_factory=dict)
    orders: pd.DataFrame = field(default_factory=pd.DataFrame)
    fills: pd.DataFrame = field(default_factory=pd.DataFrame)
    positions: pd.DataFrame = field(default_factory=pd.DataFrame)


HealthCallback = Callable[[dict[str, Any]], None]


class LiveNode:
    """A TradingNode built from a :class:`LiveNodeSpec`, with grodt's operations around it.

    Parameters
    ----------
    spec : LiveNodeSpec
        The validated live config.
    run_dir : Path
        Where logs, reports, ``health.jsonl``, ``node.json`` and the default kill file live.
    catalog : Path, optional
        Catalog for replay clients that name none.
    document : dict, optional
        The resolved YAML document, written as ``config.yaml``.
    quiet : bool, default False
        Engine console logging off.
    on_health : Callable[[dict], None], optional
        Receives every health snapshot (the CLI prints the line).
    handle_signals : bool, default True
        SIGINT/SIGTERM stop the node gracefully (main thread only).
    """

    def __init__(
        self,
        spec: LiveNodeSpec,
        run_dir: Path,
        catalog: Path | None = None,
        document: dict[str, Any] | None = None,
        quiet: bool = False,
        on_health: HealthCallback | None = None,
        handle_signals: bool = True,
    ) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir)
        self.catalog = resolve_catalog(spec, catalog)
        self.document = document
        self.quiet = quiet
        self.on_health = on_health
        self.handle_signals = handle_signals
        self.node: TradingNode | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.extensions: list[NodeExtension] = []
        self.probe = LatencyProbe()
        self.replay: ReplayDataClient | None = None
        self.sandboxes: list[GrodtSandboxExecutionClient] = []
        self.kill_switch: KillSwitch | None = None
        self.health: HealthMonitor | None = None
        self.idle: EngineIdle | None = None
        self.stopped_by: str | None = None
        self._stop_event: asyncio.Event | None = None
        self._signals_seen = 0
        self._order_market_ts: dict[str, int] = {}
        self._market_ts_checked = 0  # entries older than the last prune (checked at the next)
        self._tasks: list[asyncio.Task] = []
        self._jsonl: JsonlSink | None = None

    # -- public control -------------------------------------------------------------------------

    def request_stop(self, reason: str = "requested") -> None:
        """Ask the node to stop gracefully (thread-safe, idempotent)."""
        loop = self.loop
        if loop is None or loop.is_closed():
            return
        loop.call_soon_threadsafe(self._on_stop_request, reason)

    def _on_stop_request(self, reason: str) -> None:
        if self.stopped_by is None:
            self.stopped_by = reason
        if self._stop_event is not None:
            self._stop_event.set()

    def _on_signal(self, sig: signal.Signals) -> None:
        self._signals_seen += 1
        if self._signals_seen == 1:
            if self.node is not None:
                self.node.kernel.logger.warning(f"Received {sig.name}: stopping gracefully")
            self._on_stop_request(sig.name)
        elif self.node is not None:
            self.node.kernel.logger.warning(
                f"Received {sig.name} again: graceful stop already under way "
                "(bounded by the flatten and post-stop timeouts)",
            )

    @property
    def kill_file(self) -> Path:
        configured = self.spec.operations.kill_switch.file
        if configured is None:
            return self.run_dir / DEFAULT_KILL_FILE
        path = Path(configured)
        return path if path.is_absolute() else self.run_dir / path

    # -- build ----------------------------------------------------------------------------------

    def build(self) -> None:
        """Create the event loop and the TradingNode, build clients and install extensions."""
        if self.spec.replay is not None:
            check_replay_catalog(self.spec, self.catalog, self.spec.name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.document is not None:
            (self.run_dir / "config.yaml").write_text(
                yaml.safe_dump(self.document, sort_keys=False),
            )
        self.extensions = node_extensions(self.spec, self.run_dir)
        extra_actors: list[ImportableActorConfig] = []
        for extension in self.extensions:
            extra_actors.extend(extension.actors())
        config, data_factories, exec_factories = trading_node_config(
            self.spec,
            self.catalog,
            self.run_dir,
            self.quiet,
            extra_actors,
        )
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        node = TradingNode(config=config, loop=self.loop)
        self.node = node
        if self.handle_signals:
            # Replace the kernel's handlers (they would run Nautilus' own stop concurrently).
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.loop.add_signal_handler(sig, self._on_signal, sig)
        for name, factory in data_factories.items():
            node.add_data_client_factory(name, factory)
        for name, factory in exec_factories.items():
            node.add_exec_client_factory(name, factory)
        node.build()
        kernel = node.kernel
        self.idle = EngineIdle(kernel, turns=self.spec.replay.idle_turns if self.spec.replay else 3)
        # Registered clients are only reachable through the engines' (read-only) client maps.
        for client in kernel.data_engine._clients.values():
            if isinstance(client, ReplayDataClient):
                self.replay = client
                client.attach(self.idle, self.probe)
                # Read the catalog now: inside the client's connect it would run after Nautilus
                # started the connection deadline, and a large replay would time out.
                client.load()
        for client in kernel.exec_engine._clients.values():
            if isinstance(client, GrodtSandboxExecutionClient):
                client.bind(kernel.exec_engine, self.probe)
                self.sandboxes.append(client)
        self.probe.attach(kernel.msgbus)
        # ShutdownSystem (a component's shutdown_system(), an engine's queue exception) stops the
        # node through this runner's graceful path, not through a second concurrent stop_async.
        if kernel.msgbus.is_subscribed(NAUTILUS_SHUTDOWN, kernel._on_shutdown_system):
            kernel.msgbus.unsubscribe(NAUTILUS_SHUTDOWN, kernel._on_shutdown_system)
        kernel.msgbus.subscribe(NAUTILUS_SHUTDOWN, self._on_shutdown_command)
        if self.replay is not None:
            kernel.msgbus.subscribe("events.order.*", self._record_market_time, priority=1_000)
        kill_switch = self.spec.operations.kill_switch
        self.kill_switch = KillSwitch(
            kernel,
            self.kill_file,
            kill_switch.poll_seconds,
            mirror_trading_state=kill_switch.mirror_trading_state,
        )
        self.kill_switch.attach()
        for extension in self.extensions:
            extension.install(kernel)
        # A halt survives restarts: a kill file present now halts the node before any strategy
        # starts (orders sent in on_start included), and reaches the extensions (risk gate).
        self.kill_switch.check_file()

    def _on_shutdown_command(self, command: Any) -> None:
        reason = getattr(command, "reason", None) or "ShutdownSystem"
        self._on_stop_request(f"shutdown: {reason}")

    def _record_market_time(self, event: Any) -> None:
        if isinstance(event, OrderInitialized) and self.replay is not None:
            self._order_market_ts[event.client_order_id.value] = self.replay.clock_ns
            if len(self._order_market_ts) >= self._market_ts_checked + MARKET_TIME_PRUNE_EVERY:
                self._prune_market_times()

    def _prune_market_times(self) -> None:
        """Follow the cache's purges: forget orders the cache no longer holds.

        Only entries older than the previous prune are checked: an order's ``OrderInitialized``
        reaches handlers before the order is in the cache (trap 6), so a fresh entry would be
        dropped (and every later order would trigger a prune of its own).
        """
        cache = self.node.kernel.cache if self.node is not None else None
        if cache is None:
            return
        held = {o.client_order_id.value for o in cache.orders()}
        entries = list(self._order_market_ts.items())
        checked = self._market_ts_checked
        kept = {k: v for k, v in entries[:checked] if k in held}
        kept.update(entries[checked:])
        self._order_market_ts = kept
        self._market_ts_checked = len(kept)

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> LiveOutcome:
        """Build (if needed), run until the replay ends or a stop is requested, stop, dispose."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            if self.node is None:
                self.build()
            assert self.loop is not None
            return self.loop.run_until_complete(self._run_async())
        finally:
            self._dispose()
            if self.handle_signals:
                for sig, handler in previous.items():
                    with contextlib.suppress(ValueError, TypeError):
                        signal.signal(sig, handler)

    async def _run_async(self) -> LiveOutcome:
        assert self.node is not None
        kernel = self.node.kernel
        self._stop_event = asyncio.Event()
        if self.stopped_by is not None:  # a signal arrived before the loop ran this coroutine
            self._stop_event.set()
        started_wall = time.perf_counter()
        started_at = utc_now_iso()
        # Written first, so `grodt live stop/kill/status` work while the node is still starting.
        write_node_file(
            self.run_dir,
            {
                "name": self.spec.name,
                "pid": os.getpid(),
                "kill_file": str(self.kill_file),
                "started": started_at,
                "trader_id": self.spec.engine.trader_id,
            },
        )
        # A signal during start-up (connecting, reconciling) must not wait for those timeouts.
        starting = asyncio.ensure_future(kernel.start_async())
        stopper = asyncio.ensure_future(self._stop_event.wait())
        await asyncio.wait({starting, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if not starting.done():
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
        elif starting.exception() is not None:
            stopper.cancel()
            await self._stop_kernel()
            raise GrodtError(f"{self.spec.name}: start failed: {starting.exception()}")
        if not stopper.done():
            stopper.cancel()
        if not kernel.trader.is_running and not self._stop_event.is_set():
            await self._stop_kernel()
            raise GrodtError(
                f"{self.spec.name}: the node did not start (clients not connected, "
                f"reconciliation or portfolio timed out); see {self.run_dir / 'logs'}",
            )
        replay_stats: dict[str, Any] = {}
        try:
            try:
                self._start_operations()
            except Exception as e:
                self.stopped_by = self.stopped_by or f"operations failed: {e!r}"
                raise
            if self.replay is not None and not self._stop_event.is_set():
                await self._run_replay(replay_stats)
            if not self._stop_event.is_set():
                await self._stop_event.wait()
        finally:
            outcome = await self._graceful_stop(started_wall, started_at, replay_stats)
        return outcome

    async def _run_replay(self, stats: dict[str, Any]) -> None:
        assert self.replay is not None and self.idle is not None and self._stop_event is not None
        await self.idle()  # strategies' subscriptions and warm-up requests handled
        for sandbox in self.sandboxes:
            sandbox.ensure_instruments()  # catalog order, whatever traded first
        task = self.replay.start_replay()
        stopper = asyncio.ensure_future(self._stop_event.wait())
        done, _ = await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            exception = task.exception() if not task.cancelled() else None
            if exception is not None:
                self.stopped_by = self.stopped_by or "replay failed"
                self._stop_event.set()
                stopper.cancel()
                raise GrodtError(f"{self.spec.name}: replay failed: {exception}") from exception
            await self.idle()
            if self.spec.replay is not None and self.spec.replay.stop_when_done:
                self._on_stop_request("replay finished")
        else:
            await self.replay.stop_replay()
        if not stopper.done():
            if self._stop_event.is_set():
                await stopper
            else:
                stopper.cancel()
        stats.update(
            {
                "records": self.replay.replayed,
                "total": self.replay.total,
                "wall_seconds": self.replay.wall_seconds,
                "records_per_second": (
                    self.replay.replayed / self.replay.wall_seconds
                    if self.replay.wall_seconds > 0
                    else None
                ),
                "idle_loop_turns": self.idle.loop_turns,
                "pacing": self.replay.pacing,
            },
        )

    def _start_operations(self) -> None:
        assert self.node is not None and self.kill_switch is not None
        kernel = self.node.kernel
        # The kill file was first checked at the end of build(); watch() polls it from now on.
        self._tasks.append(asyncio.ensure_future(self.kill_switch.watch()))
        interval = self.spec.operations.health_interval_seconds
        sinks: list[Callable[[dict[str, Any]], None]] = []
        self._jsonl = JsonlSink(self.run_dir / "health.jsonl")
        sinks.append(self._jsonl)
        sinks.append(lambda snap: kernel.logger.info(format_health_line(snap)))
        if self.on_health is not None:
            sinks.append(self.on_health)
        self.health = HealthMonitor(kernel, interval or 0.0, self._health_extras, sinks)
        if interval is not None:
            self._tasks.append(asyncio.ensure_future(self.health.run()))

    def _health_extras(self) -> dict[str, Any]:
        # The recent window, not every kept sample: the health line must stay cheap.
        extras: dict[str, Any] = {"latency": self.probe.recent_summary()}
        if self.replay is not None:
            extras["replay"] = self.replay.progress()
        if self.kill_switch is not None:
            extras["kill_switch"] = self.kill_switch.state()
        figures: dict[str, Any] = {}
        for extension in self.extensions:
            health = getattr(extension, "health", None)
            if callable(health):
                try:
                    figures[extension.name] = health()
                except Exception as e:  # never let a counter break the health line
                    figures[extension.name] = {"error": repr(e)}
        if figures:
            extras["extensions"] = figures
        return extras

    # -- stop -----------------------------------------------------------------------------------

    async def _flatten(self) -> dict[str, Any]:
        """Halt new risk, then cancel every working order and close every position of the node's
        strategies, until none is left or ``flatten_timeout_seconds`` passed.

        The node's kill switch halts first (source ``"node"``): strategies keep running while the
        node waits and could otherwise open new positions. Working orders are open, emulated and
        in flight (submitted, pending update) ones; cancels and closes are repeated while waiting
        (an in-flight order can be accepted, an in-flight fill can open a position). Only the
        node's strategies count: positions of other strategies (``EXTERNAL`` ones from
        reconciliation) are reported, never touched.
        """
        assert self.node is not None
        kernel = self.node.kernel
        cache = kernel.cache
        timeout = self.spec.operations.flatten_timeout_seconds
        if self.kill_switch is not None:
            self.kill_switch.halt("flatten on stop", FLATTEN_SOURCE)
        strategies = list(kernel.trader.strategies())
        canceled: dict[ClientOrderId, OrderStatus] = {}
        closed: dict[PositionId, tuple[Any, float]] = {}
        deadline = time.monotonic() + timeout
        while True:
            if not self._flatten_step(strategies, canceled, closed):
                break
            if time.monotonic() >= deadline:
                break
            if self.idle is not None:
                await self.idle()
            if not self._at_risk(strategies):
                break
            await asyncio.sleep(0.05)
        ids = {strategy.id for strategy in strategies}
        remaining = [str(p.id) for s in strategies for p in cache.positions_open(strategy_id=s.id)]
        working = [str(o.client_order_id) for s in strategies for o in self._working_orders(s.id)]
        external = [str(p.id) for p in cache.positions_open() if p.strategy_id not in ids]
        if remaining or working:
            kernel.logger.error(
                f"Flatten incomplete after {timeout}s: open positions {remaining}, "
                f"working orders {working}",
            )
        if external:
            kernel.logger.warning(
                f"Positions of no strategy of this node left open (not flattened): {external}",
            )
        return {
            "flattened": not remaining and not working,
            "open_positions": remaining,
            "working_orders": working,
            "external_positions": external,
        }

    def _working_orders(self, strategy_id: StrategyId) -> list[Order]:
        """Every order of the strategy not closed yet: open, emulated, in flight, initialized."""
        return [
            o for o in self.node.kernel.cache.orders(strategy_id=strategy_id) if not o.is_closed
        ]

    def _at_risk(self, strategies: list[Strategy]) -> bool:
        cache = self.node.kernel.cache
        return any(
            cache.positions_open(strategy_id=s.id) or self._working_orders(s.id) for s in strategies
        )

    def _flatten_step(
        self,
        strategies: list[Strategy],
        canceled: dict[ClientOrderId, OrderStatus],
        closed: dict[PositionId, tuple[Any, float]],
    ) -> bool:
        """Cancel and close what is still at risk; returns whether anything is."""
        cache = self.node.kernel.cache
        at_risk = False
        now = time.monotonic()
        for strategy in strategies:
            working = self._working_orders(strategy.id)
            closing: set[InstrumentId] = set()
            for order in working:
                at_risk = True
                if order.tags and FLATTEN_TAG in order.tags:
                    closing.add(order.instrument_id)
                    continue
                status = order.status
                if (
                    status in FLATTEN_NOT_YET_AT_VENUE
                    or canceled.get(order.client_order_id) == status
                ):
                    continue  # on its way, being canceled, or asked already in this state
                canceled[order.client_order_id] = status
                strategy.cancel_order(order)
            for position in cache.positions_open(strategy_id=strategy.id):
                at_risk = True
                if position.instrument_id in closing:
                    continue
                last = closed.get(position.id)
                if (
                    last is not None
                    and last[0] == position.quantity
                    and now - last[1] < FLATTEN_RETRY_SECONDS
                ):
                    continue  # its closing order is on its way
                closed[position.id] = (position.quantity, now)
                strategy.close_position(position, tags=[FLATTEN_TAG])
        return at_risk

    async def _stop_kernel(self) -> None:
        assert self.node is not None
        kernel = self.node.kernel
        if kernel.is_running():
            await kernel.stop_async()

    async def _graceful_stop(
        self,
        started_wall: float,
        started_at: str,
        replay_stats: dict[str, Any],
    ) -> LiveOutcome:
        assert self.node is not None
        kernel = self.node.kernel
        if self.replay is not None:
            await self.replay.stop_replay()
        flatten: dict[str, Any] = {}
        if self.spec.operations.on_stop == "flatten":
            try:
                flatten = await self._flatten()
            except Exception as e:
                kernel.logger.exception("Flatten failed", e)
                flatten = {"flattened": False, "error": repr(e)}
        final_health: dict[str, Any] | None = None
        if self.health is not None:
            final_health = self.health.emit()
        await self._stop_kernel()
        extension_figures: dict[str, Any] = {}
        for extension in self.extensions:
            try:
                extension_figures[extension.name] = extension.finish(kernel)
            except Exception as e:  # every extension gets its finish, whatever the others do
                kernel.logger.exception(f"Extension {extension.name} finish failed", e)
                extension_figures[extension.name] = {"error": repr(e)}
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self._jsonl is not None:
            self._jsonl.close()
        outcome = self._collect()
        summary = outcome.summary
        summary.update(
            {
                "name": self.spec.name,
                "mode": "paper" if self.spec.is_paper else "broker",
                "started": started_at,
                "stopped": utc_now_iso(),
                "stopped_by": self.stopped_by or "unknown",
                "wall_seconds": time.perf_counter() - started_wall,
                "on_stop": self.spec.operations.on_stop,
                "flatten": flatten,
                "replay": replay_stats,
                "latency": self.probe.summary(),
                "kill_switch": (
                    {**self.kill_switch.state(), "history": self.kill_switch.history}
                    if self.kill_switch
                    else None
                ),
                "health": final_health,
                "extensions": extension_figures,
                "run_dir": str(self.run_dir),
            },
        )
        if replay_stats.get("records") and replay_stats.get("wall_seconds"):
            summary["bars_processed"] = replay_stats["records"]
            summary["bars_per_second"] = replay_stats["records_per_second"]
        write_json(self.run_dir / "summary.json", summary)
        return outcome

    # -- outputs --------------------------------------------------------------------------------

    def _collect(self) -> LiveOutcome:
        assert self.node is not None
        kernel = self.node.kernel
        trader = kernel.trader
        reports: dict[str, Path] = {}
        orders = trader.generate_orders_report()
        if self._order_market_ts and not orders.empty:
            orders = orders.copy()
            orders["ts_market"] = pd.array(
                [self._order_market_ts.get(str(cid)) for cid in orders.index.astype(str)],
                dtype="Int64",
            )
        fills = trader.generate_fills_report()
        positions = trader.generate_positions_report()
        for name, frame in (("fills", fills), ("orders", orders), ("positions", positions)):
            path = self.run_dir / f"{name}.csv"
            frame.to_csv(path)
            reports[name] = path
        for account in kernel.cache.accounts():
            venue = account.id.get_issuer()
            path = self.run_dir / f"account_{venue}.csv"
            trader.generate_account_report(Venue(venue)).to_csv(path)
            reports[f"account_{venue}"] = path
        summary: dict[str, Any] = {"orders": len(orders), "fills": len(fills)}
        if self.spec.replay is not None and self.catalog is not None:
            summary.update(self._paper_performance(fills, positions, reports))
        summary["reports"] = {k: str(v) for k, v in reports.items()}
        return LiveOutcome(
            run_dir=self.run_dir,
            summary=summary,
            reports=reports,
            orders=orders,
            fills=fills,
            positions=positions,
        )

    def _paper_performance(
        self,
        fills_report: pd.DataFrame,
        positions_report: pd.DataFrame,
        reports: dict[str, Path],
    ) -> dict[str, Any]:
        """The backtest's equity curve and summary, rebuilt from the paper fills."""
        assert self.node is not None and self.catalog is not None
        replay = self.spec.replay
        assert replay is not None
        bar_types: list[str] = []
        for data in replay.data:
            if data.data_cls == BAR_DATA_CLS and data.bar_types:
                bar_types.extend(b for b in data.bar_types if b not in bar_types)
        if not bar_types:
            return {}
        start_ns = pd.Timestamp(replay.start, tz="UTC").value if replay.start else None
        end_ns = pd.Timestamp(replay.end, tz="UTC").value if replay.end else None
        closes = read_closes(self.catalog, bar_types, start_ns, end_ns)
        if self.replay is not None and self.replay.market_ts:
            closes = closes.loc[: pd.Timestamp(self.replay.market_ts, tz="UTC")]
        if closes.empty:
            return {}
        multipliers = {str(i.id): float(i.multiplier) for i in self.node.kernel.cache.instruments()}
        starting = sum(
            float(balance.split()[0].replace("_", ""))
            for sandbox in self.spec.sandboxes
            for balance in sandbox.venue.starting_balances
        )
        fills = normalise_fills(fills_report)
        curve = equity_curve(fills, closes, starting, multipliers)
        summary = run_summary(
            curve,
            fills,
            positions_report,
            self.spec.report.periods_per_year,
            multipliers,
        )
        curve.frame.to_parquet(self.run_dir / "equity.parquet")
        reports["equity"] = self.run_dir / "equity.parquet"
        return summary

    def _dispose(self) -> None:
        node, loop = self.node, self.loop
        if node is None or loop is None:
            return
        if not loop.is_closed():
            with contextlib.suppress(Exception):
                loop.run_until_complete(self._cancel_pending())
            if self.handle_signals:
                for sig in (signal.SIGINT, signal.SIGTERM):
                    with contextlib.suppress(Exception):
                        loop.remove_signal_handler(sig)
        if self.kill_switch is not None:
            with contextlib.suppress(Exception):
                self.kill_switch.detach()
        if self.replay is not None:
            with contextlib.suppress(Exception):
                self.replay.detach()
        with contextlib.suppress(Exception):
            self.probe.detach(node.kernel.msgbus)
        node.dispose()
        if not loop.is_closed():
            loop.close()
        asyncio.set_event_loop(None)
        self.node = None

    async def _cancel_pending(self) -> None:
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=self.spec.timeouts.shutdown)


def check_replay_catalog(spec: LiveNodeSpec, catalog: Path | None, source: str) -> None:
    """Fail before building if the replay catalog lacks a configured bar type."""
    from nautilus_trader.model.data import Bar
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    replay = spec.replay
    if replay is None:
        return
    index = spec.data_clients.index(replay)
    if catalog is None or not Path(catalog).is_dir():
        raise ConfigError(
            f"{source}: data_clients[{index}].catalog: catalog {catalog} does not exist "
            "(build the sample with `grodt catalog sample --catalog DIR`)",
        )
    cat = ParquetDataCatalog(str(catalog))
    for data_index, data in enumerate(replay.data):
        for bar_type in data.bar_types or []:
            if data.data_cls == BAR_DATA_CLS and not cat.get_intervals(Bar, bar_type):
                raise ConfigError(
                    f"{source}: data_clients[{index}].data[{data_index}].bar_types: "
                    f"no bars for {bar_type!r} in {catalog}",
                )


def run_live(
    spec: LiveNodeSpec,
    run_dir: Path,
    catalog: Path | None = None,
    document: dict[str, Any] | None = None,
    quiet: bool = False,
    on_health: HealthCallback | None = None,
    handle_signals: bool = True,
) -> LiveOutcome:
    """Build and run a live node until its replay ends or it is stopped (signal, ``stop``)."""
    node = LiveNode(
        spec,
        run_dir,
        catalog=catalog,
        document=document,
        quiet=quiet,
        on_health=on_health,
        handle_signals=handle_signals,
    )
    return node.run()
