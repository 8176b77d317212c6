"""Replay market-data client: catalog data streamed into a TradingNode.

The client reads the same catalog queries a BacktestNode would (``BacktestNode.load_data_config``
on the same ``BacktestDataConfig`` objects), merges them in the backtest's order (stable sort by
``ts_init``, config order breaking ties) and publishes them through the ordinary live data path
(``_handle_data`` → LiveDataEngine queue → subscribers). Three pacings:

``lockstep``
    Publish one record, then wait until the engines are idle (:class:`EngineIdle`); orders a
    strategy sends on a bar are filled on that bar, as in a backtest. Fastest, deterministic.
``realtime`` / ``accelerated``
    Publish at the data's own spacing divided by ``speed``; gaps can be capped
    (``max_gap_seconds``) so nights and weekends do not stall a soak.

Traps of a replayed TradingNode handled here (see docs/live.md):

- the client registers as the default routing client, or the data engine never forwards it
  strategies' subscriptions (``RoutingConfig(default=True)``);
- instruments are put into the cache at connect, before strategies start;
- every configured record is streamed whether or not it is subscribed, because the simulated
  venue needs all bars of its instruments, as in a backtest;
- historical requests (``request_bars``) are answered from the catalog, but never with data
  later than the replay clock (no look-ahead). The replay clock (:attr:`ReplayDataClient.market_ts`)
  is the ``ts_init`` of the last replayed record the data engine *dispatched* to subscribers,
  not of the last one queued: in real-time and accelerated pacing records can queue ahead of the
  engine, and a strategy handling bar t must not be answered with bars after t.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable
from collections.abc import Callable
from typing import Any

import pandas as pd
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.backtest.node import get_instrument_ids
from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import LiveClock
from nautilus_trader.common.component import MessageBus
from nautilus_trader.common.providers import InstrumentProvider
from nautilus_trader.config import LiveDataClientConfig
from nautilus_trader.config import NonNegativeInt
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import RoutingConfig
from nautilus_trader.core.data import Data
from nautilus_trader.data.messages import RequestBars
from nautilus_trader.data.messages import RequestInstrument
from nautilus_trader.data.messages import RequestInstruments
from nautilus_trader.data.messages import SubscribeBars
from nautilus_trader.data.messages import SubscribeData
from nautilus_trader.data.messages import UnsubscribeBars
from nautilus_trader.data.messages import UnsubscribeData
from nautilus_trader.live.data_client import LiveMarketDataClient
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import ClientId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from grodt.core.errors import ConfigError
from grodt.core.topics import NAUTILUS_ALL_DATA
from grodt.nodes.latency import LatencyProbe

REPLAY_CLIENT_ID = "REPLAY"
PACINGS = ("lockstep", "realtime", "accelerated")
DISPATCH_PRIORITY = 2_000_000
"""Priority of the replay clock's data handler: before every other subscriber (latency probe
1 000 000, simulated venue 100 000, strategies and actors 0)."""


class ReplayDataClientConfig(LiveDataClientConfig, frozen=True, kw_only=True):
    """Configuration for :class:`ReplayDataClient`.

    Parameters
    ----------
    data : list[BacktestDataConfig]
        Catalog queries, exactly as a BacktestNode would run them (same order: ties in
        ``ts_init`` are broken by this order).
    start, end : str, optional
        Replay window (ISO timestamps, UTC), applied on top of each query's own window.
    pacing : str, default "lockstep"
        ``lockstep``, ``realtime`` or ``accelerated``.
    speed : float, default 60.0
        Accelerated pacing: data seconds per wall second (``realtime`` uses 1).
    max_gap_seconds : float, optional
        Wall seconds to wait at most between two records.
    idle_turns : int, default 3
        Lockstep: consecutive quiet event-loop turns that count as idle.
    yield_every : int, default 64
        Realtime/accelerated: yield to the event loop at least every this many records when
        records are due at once.
    """

    data: list[BacktestDataConfig]
    start: str | None = None
    end: str | None = None
    pacing: str = "lockstep"
    speed: PositiveFloat = 60.0
    max_gap_seconds: PositiveFloat | None = None
    idle_turns: PositiveInt = 3
    yield_every: NonNegativeInt = 64
    routing: RoutingConfig = RoutingConfig(default=True)

    def __post_init__(self) -> None:
        if self.pacing not in PACINGS:
            raise ValueError(f"pacing must be one of {PACINGS}, was {self.pacing!r}")


IdleWaiter = Callable[[], Awaitable[None]]


class ReplayDataClient(LiveMarketDataClient):
    """Streams catalog records into a live node at the configured pacing.

    The node runner calls :meth:`attach` (engine-idle waiter, latency probe) after building the
    node and :meth:`start_replay` once the trader runs; :attr:`finished` resolves when the last
    record was processed (lockstep) or published (other pacings).

    Two clocks: :attr:`last_ts_init` is the ``ts_init`` of the last record handed to the data
    engine (queued), :attr:`market_ts` of the last one the engine dispatched to subscribers (the
    market time the node has seen; history requests use it). :attr:`clock_ns` is the market time
    of a decision (orders' ``ts_market``): :attr:`market_ts`, or before the first dispatch the
    replay's start, where a backtest's clock stands when strategies start.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
        config: ReplayDataClientConfig,
        name: str = REPLAY_CLIENT_ID,
    ) -> None:
        super().__init__(
            loop=loop,
            client_id=ClientId(name),
            venue=None,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            instrument_provider=InstrumentProvider(),
            config=config,
        )
        self._replay_config = config
        self._records: list[Data] = []
        self._instruments: list[Instrument] = []
        self._bar_types: set[BarType] = set()
        self._catalogs: dict[str, ParquetDataCatalog] = {}
        self._idle: IdleWaiter | None = None
        self._probe: LatencyProbe | None = None
        self._task: asyncio.Task | None = None
        self._position = 0
        self._dispatched = 0
        self._resumed_at = 0
        self._in_flight: dict[int, int] = {}  # id(record) → index, queued and not dispatched
        self.last_ts_init = 0
        self.market_ts = 0
        self._start_ns = 0
        self.finished: asyncio.Future = loop.create_future()
        # Retrieved here, so a failed replay nobody awaits is not reported again at garbage
        # collection ("Future exception was never retrieved"); the replay task carries it.
        self.finished.add_done_callback(_retrieve)
        self.wall_seconds = 0.0

    # -- wiring by the node runner --------------------------------------------------------------

    def attach(self, idle: IdleWaiter | None, probe: LatencyProbe | None) -> None:
        """Give the client the engine-idle waiter (lockstep) and the latency probe, and follow
        the data engine's dispatches (the replay clock)."""
        self._idle = idle
        self._probe = probe
        if not self._msgbus.is_subscribed(NAUTILUS_ALL_DATA, self._on_dispatch):
            self._msgbus.subscribe(NAUTILUS_ALL_DATA, self._on_dispatch, priority=DISPATCH_PRIORITY)

    def detach(self) -> None:
        if self._msgbus.is_subscribed(NAUTILUS_ALL_DATA, self._on_dispatch):
            self._msgbus.unsubscribe(NAUTILUS_ALL_DATA, self._on_dispatch)

    def _on_dispatch(self, data: object) -> None:
        """A record is published to subscribers: if it is a replayed one, the clock moves.

        Data published inside the node (an actor's own records) is not a replayed record and
        leaves the clock alone.
        """
        index = self._in_flight.pop(id(data), None)
        if index is not None and index >= self._dispatched:
            self._dispatched = index + 1
            self.market_ts = self._records[index].ts_init

    @property
    def clock_ns(self) -> int:
        """Market time of a decision taken now (see the class docstring)."""
        return self.market_ts or self._start_ns

    @property
    def pacing(self) -> str:
        return self._replay_config.pacing

    @property
    def total(self) -> int:
        """Records to replay."""
        return len(self._records)

    @property
    def replayed(self) -> int:
        """Records published so far."""
        return self._position

    def progress(self) -> dict[str, Any]:
        return {
            "pacing": self.pacing,
            "replayed": self._position,
            "total": len(self._records),
            "dispatched": self._dispatched,
            "market_time": (
                pd.Timestamp(self.market_ts, tz="UTC").isoformat() if self.market_ts else None
            ),
        }

    # -- loading --------------------------------------------------------------------------------

    def load(self) -> None:
        """Read instruments and records from the catalog (idempotent)."""
        if self._records or self._instruments:
            return
        start, end = self._replay_config.start, self._replay_config.end
        seen: set = set()
        chunks: list[list[Data]] = []
        for config in self._replay_config.data:
            self._catalogs.setdefault(config.catalog_path, BacktestNode.load_catalog(config))
            result = BacktestNode.load_data_config(config, start, end)
            used = get_instrument_ids(config)
            if used and not result.instruments:
                raise ConfigError(
                    f"replay: no instruments {[str(i) for i in used]} in catalog "
                    f"{config.catalog_path}",
                )
            for instrument in result.instruments or []:
                if instrument.id not in seen:
                    seen.add(instrument.id)
                    self._instruments.append(instrument)
            for bar_type in config.bar_types or []:
                self._bar_types.add(BarType.from_str(str(bar_type)))
            chunks.append(list(result.data or []))
        records = [record for chunk in chunks for record in chunk]
        start_ns = pd.Timestamp(start, tz="UTC").value if start else None
        end_ns = pd.Timestamp(end, tz="UTC").value if end else None
        if start_ns is not None or end_ns is not None:
            records = [
                r
                for r in records
                if (start_ns is None or r.ts_init >= start_ns)
                and (end_ns is None or r.ts_init <= end_ns)
            ]
        # The BacktestEngine sorts its stream stably by ts_init after each add: same order here.
        records.sort(key=lambda r: r.ts_init)
        self._records = records
        # The backtest's clock when strategies start: the run's start, else the first record's.
        first_ns = records[0].ts_init if records else 0
        self._start_ns = start_ns if start_ns is not None else first_ns

    def resume_at(self, replayed: int, market_ts: int) -> None:
        """Continue a crashed node's replay after its first ``replayed`` records (a checkpoint,
        :mod:`grodt.nodes.checkpoint`); ``market_ts`` must be the ``ts_init`` of the last of
        them, or the catalog or the config changed since the checkpoint (ConfigError)."""
        self.load()
        if not 0 <= replayed <= len(self._records):
            raise ConfigError(
                f"replay: checkpoint at record {replayed:,} but the replay has "
                f"{len(self._records):,} records",
            )
        if replayed and self._records[replayed - 1].ts_init != market_ts:
            raise ConfigError(
                f"replay: checkpoint record {replayed:,} was at ts {market_ts}, the catalog "
                f"has {self._records[replayed - 1].ts_init} there (data or config changed)",
            )
        self._position = self._dispatched = self._resumed_at = replayed
        self.market_ts = market_ts

    @property
    def instruments(self) -> list[Instrument]:
        """The replayed instruments, in catalog order (the order a BacktestEngine adds them)."""
        return list(self._instruments)

    def history(self) -> list[Data]:
        """The records a resumed replay skips (those before :meth:`resume_at`'s index), in
        replay order: what the crashed node had seen, for the restarted node's warm-up
        (:mod:`grodt.nodes.warm_up`). Empty for a replay that starts at its beginning."""
        return self._records[: self._resumed_at]

    # -- connection -----------------------------------------------------------------------------

    async def _connect(self) -> None:
        self.load()
        for instrument in self._instruments:
            # Straight into the cache: strategies read instruments in on_start, which the
            # kernel calls as soon as the clients report connected.
            self._cache.add_instrument(instrument)
        self._log.info(
            f"Replay ready: {len(self._records):,} records, "
            f"{len(self._instruments)} instruments, pacing={self.pacing}",
        )

    async def _disconnect(self) -> None:
        await self.stop_replay()

    # -- replay ---------------------------------------------------------------------------------

    def start_replay(self) -> asyncio.Task:
        """Start streaming (idempotent); returns the replay task."""
        if self._task is None:
            self._task = self._loop.create_task(self._run(), name="grodt-replay")
        return self._task

    async def stop_replay(self) -> None:
        """Stop streaming after the current record."""
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if not self.finished.done():
            self.finished.set_result(self._position)

    async def _run(self) -> None:
        config = self._replay_config
        lockstep = config.pacing == "lockstep"
        speed = 1.0 if config.pacing == "realtime" else config.speed
        max_gap = config.max_gap_seconds
        probe = self._probe
        idle = self._idle
        if lockstep and idle is None:
            self._log.error("Lockstep replay without an idle waiter: fills may land a bar late")
        started = time.perf_counter()
        wall_due = started
        previous_ts: int | None = None
        since_yield = 0
        try:
            for index in range(self._position, len(self._records)):
                record = self._records[index]
                ts = record.ts_init
                if not lockstep and previous_ts is not None:
                    gap = (ts - previous_ts) / 1e9 / speed
                    if max_gap is not None:
                        gap = min(gap, max_gap)
                    wall_due += gap
                    delay = wall_due - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                        since_yield = 0
                    elif config.yield_every and since_yield >= config.yield_every:
                        await asyncio.sleep(0)
                        since_yield = 0
                previous_ts = ts
                self.last_ts_init = ts
                self._in_flight[id(record)] = index
                if probe is not None:
                    probe.on_arrival(record)
                self._handle_data(record)
                self._position = index + 1
                since_yield += 1
                if lockstep and idle is not None:
                    await idle()
            if not lockstep and idle is not None:
                await idle()
        except asyncio.CancelledError:
            self._log.warning(f"Replay stopped at record {self._position:,}/{len(self._records):,}")
            raise
        except Exception as e:
            self._log.exception("Replay failed", e)
            if not self.finished.done():
                self.finished.set_exception(e)
            raise
        finally:
            self.wall_seconds = time.perf_counter() - started
        if not self.finished.done():
            self.finished.set_result(self._position)

    # -- subscriptions: everything configured streams anyway -------------------------------------

    def _check_replayed(self, bar_type: BarType) -> None:
        if self._bar_types and bar_type not in self._bar_types:
            self._log.warning(
                f"{bar_type} is subscribed but not replayed (replay data: "
                f"{sorted(str(b) for b in self._bar_types)})",
            )

    async def _subscribe_bars(self, command: SubscribeBars) -> None:
        self._check_replayed(command.bar_type)

    async def _unsubscribe_bars(self, command: UnsubscribeBars) -> None:
        pass

    async def _subscribe(self, command: SubscribeData) -> None:
        pass

    async def _unsubscribe(self, command: UnsubscribeData) -> None:
        pass

    async def _subscribe_instruments(self, command: Any) -> None:
        pass

    async def _subscribe_instrument(self, command: Any) -> None:
        pass

    async def _unsubscribe_instruments(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument(self, command: Any) -> None:
        pass

    async def _subscribe_instrument_status(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument_status(self, command: Any) -> None:
        pass

    async def _subscribe_instrument_close(self, command: Any) -> None:
        pass

    async def _unsubscribe_instrument_close(self, command: Any) -> None:
        pass

    async def _subscribe_quote_ticks(self, command: Any) -> None:
        self._log.warning(f"Quotes for {command.instrument_id} are not replayed (bars only)")

    async def _unsubscribe_quote_ticks(self, command: Any) -> None:
        pass

    async def _subscribe_trade_ticks(self, command: Any) -> None:
        self._log.warning(f"Trades for {command.instrument_id} are not replayed (bars only)")

    async def _unsubscribe_trade_ticks(self, command: Any) -> None:
        pass

    # -- requests: history up to the replay clock -----------------------------------------------

    async def _request_bars(self, request: RequestBars) -> None:
        bar_type = request.bar_type
        instrument_id = bar_type.instrument_id
        catalogs = list(self._catalogs.values())
        bars: list[Bar] = []
        now_ns = self.market_ts  # dispatched, not queued: no bar after the one being handled
        end_ns = now_ns
        if request.end is not None:
            end_ns = min(end_ns, pd.Timestamp(request.end).value) if now_ns else 0
        start_ns = pd.Timestamp(request.start).value if request.start is not None else None
        if catalogs and end_ns > 0:
            bars = catalogs[0].bars(
                bar_types=[str(bar_type)],
                instrument_ids=[str(instrument_id)],
                start=start_ns,
                end=end_ns,
            )
            bars = [b for b in bars if b.ts_init <= end_ns]
            if request.limit:
                bars = bars[-request.limit :]
        self._handle_bars(
            bar_type,
            bars,
            request.id,
            request.start,
            request.end,
            request.params,
        )

    async def _request_instrument(self, request: RequestInstrument) -> None:
        instrument = self._cache.instrument(request.instrument_id)
        if instrument is None:
            self._log.error(f"Instrument {request.instrument_id} is not in the replay catalog")
            return
        self._handle_instrument(
            instrument,
            request.id,
            request.start,
            request.end,
            request.params,
        )

    async def _request_instruments(self, request: RequestInstruments) -> None:
        instruments = [i for i in self._instruments if i.id.venue == request.venue]
        self._handle_instruments(
            request.venue,
            instruments,
            request.id,
            request.start,
            request.end,
            request.params,
        )


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


class ReplayLiveDataClientFactory(LiveDataClientFactory):
    """Creates :class:`ReplayDataClient` instances for a TradingNode."""

    @staticmethod
    def create(  # type: ignore[override]
        loop: asyncio.AbstractEventLoop,
        name: str,
        config: ReplayDataClientConfig,
        msgbus: MessageBus,
        cache: Cache,
        clock: LiveClock,
    ) -> ReplayDataClient:
        return ReplayDataClient(
            loop=loop,
            msgbus=msgbus,
            cache=cache,
            clock=clock,
            config=config,
            name=name,
        )


class EngineIdle:
    """Awaitable "the engines are idle" check for lockstep replay.

    Live engines hand messages on through ``call_soon_threadsafe`` and queue tasks, so an empty
    queue after one loop turn proves nothing. Idle means: every engine queue empty and no engine
    counter moved for ``turns`` consecutive event-loop turns.

    Parameters
    ----------
    kernel : NautilusKernel
        The live node's kernel.
    turns : int, default 3
        Consecutive quiet turns required.
    max_turns : int, default 1_000_000
        Give up (and log) after this many turns: a component that never stops producing
        messages would otherwise stall the replay.
    """

    def __init__(self, kernel: Any, turns: int = 3, max_turns: int = 1_000_000) -> None:
        self._data = kernel.data_engine
        self._risk = kernel.risk_engine
        self._exec = kernel.exec_engine
        self._log = kernel.logger
        self.turns = turns
        self.max_turns = max_turns
        self.loop_turns = 0

    def signature(self) -> tuple[int, ...]:
        """Queue sizes and message counters of the three engines."""
        data, risk, exe = self._data, self._risk, self._exec
        return (
            data.data_qsize(),
            data.cmd_qsize(),
            data.req_qsize(),
            data.res_qsize(),
            risk.cmd_qsize(),
            risk.evt_qsize(),
            exe.cmd_qsize(),
            exe.evt_qsize(),
            data.data_count,
            data.command_count,
            data.request_count,
            data.response_count,
            risk.command_count,
            risk.event_count,
            exe.command_count,
            exe.event_count,
            exe.report_count,
        )

    def queues_empty(self, signature: tuple[int, ...]) -> bool:
        return not any(signature[:8])

    async def __call__(self) -> None:
        quiet = 0
        last = self.signature()
        for _ in range(self.max_turns):
            await asyncio.sleep(0)
            self.loop_turns += 1
            current = self.signature()
            if current == last and self.queues_empty(current):
                quiet += 1
                if quiet >= self.turns:
                    return
            else:
                quiet = 0
                last = current
        self._log.error(f"Engines not idle after {self.max_turns:,} loop turns; replay goes on")
