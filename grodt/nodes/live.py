"""Live node running: a validated :class:`LiveNodeSpec` → Nautilus TradingNode, operated.

The TradingNode's config comes from :func:`grodt.nodes.trading_config.trading_node_config` (the
backtest's strategy, actor and logging configs; clients from :mod:`grodt.nodes.adapters`); the
node extensions get the same calls as in a backtest (``actors()`` before build,
``install(kernel)`` before start, ``finish(kernel)`` at stop). Around the TradingNode,
:class:`LiveNode` adds what an operator needs: graceful SIGINT/SIGTERM handling (flatten or keep
positions, flush the extensions), a kill switch (file and command), a periodic health line, and
run outputs (reports, summary, latency).

Paper nodes (replay + sandbox) write the same reports and summary as a backtest, which is what
``grodt parity`` compares.
"""

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.live.node import TradingNode

from grodt.core.errors import GrodtError
from grodt.core.topics import NAUTILUS_ORDER_EVENTS
from grodt.core.topics import NAUTILUS_SHUTDOWN
from grodt.nodes.cache_transactions import TransactionalCacheDatabase
from grodt.nodes.cache_transactions import transactional_cache_database
from grodt.nodes.catalog_data import check_catalog
from grodt.nodes.checkpoint import Checkpoint
from grodt.nodes.checkpoint import SavedHalts
from grodt.nodes.checkpoint import load_checkpoint
from grodt.nodes.checkpoint import save_checkpoint
from grodt.nodes.checkpoint_market_times import SavedMarketTimes
from grodt.nodes.components import keep_logging_alive
from grodt.nodes.flatten import flatten_strategies
from grodt.nodes.latency import LatencyProbe
from grodt.nodes.live_data_queue import CommandsFirstDataQueue
from grodt.nodes.live_reports import LiveOutcome
from grodt.nodes.live_reports import paper_performance
from grodt.nodes.live_reports import write_reports
from grodt.nodes.live_tuning import DEFAULT_TUNING
from grodt.nodes.live_tuning import EngineThreadTuning
from grodt.nodes.market_time import OrderMarketTimes
from grodt.nodes.operations import DEFAULT_KILL_FILE
from grodt.nodes.operations import HealthMonitor
from grodt.nodes.operations import JsonlSink
from grodt.nodes.operations import KillFile
from grodt.nodes.operations import format_health_line
from grodt.nodes.operations import utc_now_iso
from grodt.nodes.operations import write_node_file
from grodt.nodes.position_snapshots import PositionSnapshots
from grodt.nodes.replay import EngineIdle
from grodt.nodes.replay import ReplayDataClient
from grodt.nodes.run_files import write_config_yaml
from grodt.nodes.run_files import write_json
from grodt.nodes.sandbox import GrodtSandboxExecutionClient
from grodt.nodes.sandbox import register_calculated_accounts
from grodt.nodes.trading_config import resolve_catalog
from grodt.nodes.trading_config import trading_node_config
from grodt.nodes.warm_up import warm_up
from node_configs.extensions import NodeExtension
from node_configs.extensions import node_extensions
from node_configs.live_schema import LiveNodeSpec
from risk_engine.kill_switch import OPERATOR
from risk_engine.kill_switch import KillSwitch

__all__ = ["HealthCallback", "LiveNode", "LiveOutcome", "run_live"]

FLATTEN_SOURCE = "node"
"""Kill-switch source of the node's own halt while it flattens on stop."""

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
    tuning : EngineThreadTuning, optional
        Process settings while the node runs (GIL switch interval, frozen collector heap;
        :mod:`grodt.nodes.live_tuning`); default :data:`~grodt.nodes.live_tuning.DEFAULT_TUNING`.
    commands_first : bool, default True
        After each record the data engine lets the commands it caused (orders through the risk
        engine and gate to the execution client) leave before it handles the next record
        (:mod:`grodt.nodes.live_data_queue`); False keeps Nautilus' queue, which drains every
        queued record first (a benchmark's comparison).
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
        tuning: EngineThreadTuning = DEFAULT_TUNING,
        commands_first: bool = True,
    ) -> None:
        self.spec = spec
        self.tuning = tuning
        self.commands_first = commands_first
        self.data_queue: CommandsFirstDataQueue | None = None
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
        self.kill_file_source: KillFile | None = None
        self.health: HealthMonitor | None = None
        self.idle: EngineIdle | None = None
        self.stopped_by: str | None = None
        self._stop_event: asyncio.Event | None = None
        self._signals_seen = 0
        self._market_times: OrderMarketTimes | None = None
        self._saved_market_times: SavedMarketTimes | None = None
        self._saved_halts: SavedHalts | None = None
        self._tasks: list[asyncio.Task] = []
        self._jsonl: JsonlSink | None = None
        self.resumed_from: Checkpoint | None = None
        self.checkpoints = 0
        self.database: TransactionalCacheDatabase | None = None
        self.restored: dict[str, Any] | None = None
        self.position_snapshots: PositionSnapshots | None = None

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
        replay = self.spec.replay
        if replay is not None:
            index = self.spec.data_clients.index(replay)
            check_catalog(
                replay.data,
                self.catalog,
                self.spec.name,
                f"data_clients[{index}].",
                start=replay.start,
                end=replay.end,
            )
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if self.document is not None:
            write_config_yaml(self.run_dir, self.document)
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
        # Before the kernel loads the cache database: a loaded sandbox account must be one
        # that fills update.
        register_calculated_accounts(sandbox.venue.name for sandbox in self.spec.sandboxes)
        # A paper node's cache database commits one transaction per checkpoint: Redis holds the
        # state as of a record boundary, so the venue and strategies restored from it agree.
        # A broker node keeps Nautilus' writer (every change sent as it happens): its venue is
        # the truth, and an order it sent must be in the database under its strategy.
        transactional = self.spec.cache_database is not None and self.spec.replay is not None
        with (
            transactional_cache_database() if transactional else contextlib.nullcontext([])
        ) as databases:
            node = TradingNode(config=config, loop=self.loop)
        self.database = databases[0] if databases else None
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
        keep_logging_alive(kernel)
        if self.commands_first:
            self.data_queue = CommandsFirstDataQueue(kernel)
            self.data_queue.install()
        self.idle = EngineIdle(kernel, turns=self.spec.replay.idle_turns if self.spec.replay else 3)
        # Registered clients are only reachable through the engines' (read-only) client maps.
        persistent = self.spec.cache_database is not None
        lockstep = self.spec.replay is not None and self.spec.replay.pacing == "lockstep"
        for client in kernel.data_engine._clients.values():
            if isinstance(client, ReplayDataClient):
                self.replay = client
                # Lockstep with a cache database: a checkpoint after every record, once idle,
                # committed to Redis (with the record's writes) before the next record.
                waiter = self._idle_then_checkpoint if persistent and lockstep else self.idle
                client.attach(waiter, self.probe)
                # Read the catalog now: inside the client's connect it would run after Nautilus
                # started the connection deadline, and a large replay would time out.
                client.load()
        if persistent:
            # Closed position cycles of a crashed node back into the cache (replay or broker).
            self.position_snapshots = PositionSnapshots(kernel.cache)
            self.position_snapshots.restore()
            self.position_snapshots.subscribe(kernel.msgbus)
            # The cache loaded its database when the kernel was built: a checkpoint there means
            # this node crashed (or stopped) before, and resumes where it stood.
            self.resumed_from = load_checkpoint(kernel.cache)
            if self.resumed_from is not None:
                kernel.logger.warning(
                    f"Resuming from checkpoint: {self.resumed_from.replayed:,} records replayed",
                )
                if self.replay is not None:
                    self.replay.resume_at(
                        self.resumed_from.replayed,
                        self.resumed_from.market_ts,
                    )
        for client in kernel.exec_engine._clients.values():
            if isinstance(client, GrodtSandboxExecutionClient):
                client.bind(kernel.exec_engine, self.probe)
                if self.replay is not None:
                    client.order_instruments([i.id for i in self.replay.instruments])
                self.sandboxes.append(client)
        self.probe.attach(kernel.msgbus)
        # ShutdownSystem (a component's shutdown_system(), an engine's queue exception) stops the
        # node through this runner's graceful path, not through a second concurrent stop_async.
        if kernel.msgbus.is_subscribed(NAUTILUS_SHUTDOWN, kernel._on_shutdown_system):
            kernel.msgbus.unsubscribe(NAUTILUS_SHUTDOWN, kernel._on_shutdown_system)
        kernel.msgbus.subscribe(NAUTILUS_SHUTDOWN, self._on_shutdown_command)
        if self.replay is not None:
            self._market_times = OrderMarketTimes(self.replay, kernel.cache)
            kernel.msgbus.subscribe(
                NAUTILUS_ORDER_EVENTS, self._market_times.record, priority=1_000
            )
            if persistent:
                # The crashed node's orders keep their market times (orders.csv ts_market).
                self._saved_market_times = SavedMarketTimes(kernel.cache, self._market_times)
                self._saved_market_times.restore()
                kernel.msgbus.subscribe(
                    NAUTILUS_ORDER_EVENTS, self._saved_market_times.record, priority=999
                )
        kill_switch = self.spec.operations.kill_switch
        self.kill_switch = KillSwitch.join(
            kernel,
            mirror_trading_state=kill_switch.mirror_trading_state,
        )
        self.kill_file_source = KillFile(
            self.kill_switch,
            self.kill_file,
            kill_switch.poll_seconds,
            kernel.logger,
        )
        for extension in self.extensions:
            extension.install(kernel)
        if persistent:
            # The crashed node's halts (a loss halt active at the crash) before any strategy
            # starts; the operator's halt comes back from the kill file, just below.
            self._saved_halts = SavedHalts(
                kernel.cache, self.kill_switch, transient=(OPERATOR, FLATTEN_SOURCE)
            )
            self._saved_halts.restore()
        # A halt survives restarts: a kill file present now halts the node before any strategy
        # starts (orders sent in on_start included), and reaches the extensions (risk gate).
        self.kill_file_source.check()

    async def _idle_then_checkpoint(self) -> None:
        assert self.idle is not None
        await self.idle()
        self.checkpoint()

    def checkpoint(self) -> None:
        """Save strategy/actor state and the replay position into the cache database; a paper
        node commits them with every write since the last checkpoint in one transaction."""
        if self.node is None or self.spec.cache_database is None:
            return
        replay = self.replay
        if self._saved_market_times is not None:
            self._saved_market_times.save()
        if self._saved_halts is not None:
            self._saved_halts.save()
        save_checkpoint(
            self.node.kernel,
            Checkpoint(
                replayed=replay.progress()["dispatched"] if replay is not None else 0,
                market_ts=replay.market_ts if replay is not None else 0,
                saved_ns=time.time_ns(),
            ),
        )
        if self.database is not None:
            self.database.commit()
        self.checkpoints += 1

    async def _checkpoint_periodically(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                self.checkpoint()
            except Exception as e:  # logged, and the next interval tries again
                assert self.node is not None
                self.node.kernel.logger.exception("Checkpoint failed", e)

    def _on_shutdown_command(self, command: Any) -> None:
        reason = getattr(command, "reason", None) or "ShutdownSystem"
        self._on_stop_request(f"shutdown: {reason}")

    # -- run ------------------------------------------------------------------------------------

    def run(self) -> LiveOutcome:
        """Build (if needed), run until the replay ends or a stop is requested, stop, dispose."""
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
        tuned = None
        try:
            if self.node is None:
                self.build()
            assert self.loop is not None
            # After build: the collector's frozen heap then holds the imports, the replay's
            # records and the built components.
            tuned = self.tuning.apply()
            return self.loop.run_until_complete(self._run_async())
        finally:
            if tuned is not None:
                tuned.restore()
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
        if self.resumed_from is not None and self.kill_switch is not None:
            # Halts restored at build (and the kill file's) were applied before the strategies
            # subscribed to the kill-switch topic: they hear them now, before any record.
            self.kill_switch.announce_active()
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

    def _restore_from_history(self) -> None:
        """A resumed node, before its replay goes on: the components get the bars the crashed
        node had seen (:func:`grodt.nodes.warm_up.warm_up`), then every sandbox venue is rebuilt
        from the cache (:meth:`GrodtSandboxExecutionClient.restore`). (Closed position cycles
        came back at build: :class:`PositionSnapshots`.)"""
        assert self.node is not None and self.replay is not None
        assert self.position_snapshots is not None
        kernel = self.node.kernel
        history = self.replay.history()
        started = time.perf_counter()
        warmed = warm_up(kernel, history)
        venues = {str(s.venue): asdict(s.restore(history)) for s in self.sandboxes}
        self.restored = {
            "warm_up": {**asdict(warmed), "components": list(warmed.components)},
            "venues": venues,
            "position_snapshots": self.position_snapshots.restored,
            "market_times": (
                self._saved_market_times.restored if self._saved_market_times else None
            ),
            "halts": self._saved_halts.restored if self._saved_halts else None,
            "seconds": round(time.perf_counter() - started, 3),
        }
        kernel.logger.info(f"Restored from history: {self.restored}")

    async def _run_replay(self, stats: dict[str, Any]) -> None:
        assert self.replay is not None and self.idle is not None and self._stop_event is not None
        await self.idle()  # strategies' subscriptions and warm-up requests handled
        for sandbox in self.sandboxes:
            sandbox.ensure_instruments()  # catalog order, whatever traded first
        if self.resumed_from is not None:
            self._restore_from_history()
            await self.idle()  # events the restore handed to the engines
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
                "resumed_at": self.resumed_from.replayed if self.resumed_from else None,
                "pacing": self.replay.pacing,
            },
        )

    def _start_operations(self) -> None:
        assert self.node is not None and self.kill_file_source is not None
        kernel = self.node.kernel
        # The kill file was first checked at the end of build(); watch() polls it from now on.
        self._tasks.append(asyncio.ensure_future(self.kill_file_source.watch()))
        database = self.spec.cache_database
        replay = self.spec.replay
        if database is not None and (replay is None or replay.pacing != "lockstep"):
            self._tasks.append(
                asyncio.ensure_future(self._checkpoint_periodically(database.checkpoint_seconds)),
            )
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
        actors: dict[str, Any] = {}
        trader = self.node.trader if self.node is not None else None
        for actor in trader.actors() if trader is not None else ():
            # Components with model monitors expose them as health() (the regime actor's
            # change-point and drift values, its model version).
            health = getattr(actor, "health", None)
            if callable(health):
                try:
                    actors[str(actor.id)] = health()
                except Exception as e:  # never let a counter break the health line
                    actors[str(actor.id)] = {"error": repr(e)}
        if actors:
            extras["actors"] = actors
        return extras

    # -- stop -----------------------------------------------------------------------------------

    async def _flatten(self) -> dict[str, Any]:
        """Halt new risk (the node's kill switch, source ``"node"``: strategies keep running while
        the node waits and could otherwise open new positions), then flatten the node's
        strategies (:func:`grodt.nodes.flatten.flatten_strategies`)."""
        assert self.node is not None
        if self.kill_switch is not None:
            self.kill_switch.halt("flatten on stop", FLATTEN_SOURCE)
        return await flatten_strategies(
            self.node.kernel,
            self.spec.operations.flatten_timeout_seconds,
            self.idle,
        )

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
        # Orders sent from here on (flatten, strategies' on_stop) answer the stop, not a record.
        self.probe.end_attribution()
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
        if self.spec.cache_database is not None:
            # A last checkpoint, every dispatched record handled: with what the stop wrote
            # (strategies' saved state, flatten orders) and, between periodic checkpoints, the
            # records since the last one, so a node started again resumes after them.
            try:
                self.checkpoint()
            except Exception as e:
                kernel.logger.exception("Final checkpoint failed", e)
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
                "tuning": self.tuning.describe(),
                "data_queue": self.data_queue.summary() if self.data_queue else None,
                "kill_switch": (
                    {**self.kill_switch.state(), "history": self.kill_switch.history}
                    if self.kill_switch
                    else None
                ),
                "health": final_health,
                "extensions": extension_figures,
                "cache_database": (
                    {
                        "checkpoints": self.checkpoints,
                        "transactions": (
                            self.database.stats.as_dict() if self.database is not None else None
                        ),
                        "resumed_from": (self.resumed_from.replayed if self.resumed_from else None),
                        "restored": self.restored,
                    }
                    if self.spec.cache_database is not None
                    else None
                ),
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
        market_times = self._market_times.by_order if self._market_times is not None else {}
        outcome = write_reports(kernel, self.run_dir, market_times)
        if self.spec.replay is not None and self.catalog is not None:
            replayed_until = self.replay.market_ts if self.replay is not None else None
            outcome.summary.update(
                paper_performance(self.spec, self.catalog, kernel, outcome, replayed_until),
            )
        outcome.summary["reports"] = {k: str(v) for k, v in outcome.reports.items()}
        return outcome

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
                self.kill_switch.leave()
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
