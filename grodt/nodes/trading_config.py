"""A :class:`LiveNodeSpec` → Nautilus ``TradingNodeConfig`` plus the client factories to register.

The strategies, actors and logging are the backtest's (:mod:`grodt.nodes.components`); the
clients come from the adapters (:mod:`grodt.nodes.adapters`); what only a TradingNode has
(engine queues, reconciliation, cache purges, timeouts, wall-clock order rates) is set here.
"""

import math
import os
from pathlib import Path

from nautilus_trader.cache.config import CacheConfig
from nautilus_trader.common.config import DatabaseConfig
from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.config import LiveDataEngineConfig
from nautilus_trader.config import LiveExecEngineConfig
from nautilus_trader.config import LiveRiskEngineConfig
from nautilus_trader.config import TradingNodeConfig
from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.factories import LiveExecClientFactory

from grodt.core.errors import ConfigError
from grodt.nodes.adapters import live_clients
from grodt.nodes.components import importable_actor
from grodt.nodes.components import importable_strategy
from grodt.nodes.components import logging_config
from node_configs.live_schema import CacheDatabaseSpec
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import ReplaySpec

__all__ = [
    "LOCKSTEP_MIN_SUBMIT_LIMIT",
    "TradingNodeSetup",
    "cache_config",
    "resolve_catalog",
    "scaled_rate",
    "trading_node_config",
]

LOCKSTEP_MIN_SUBMIT_LIMIT = 100_000
"""Lockstep replay compresses days into milliseconds: the wall-clock order rate limit is raised
to this many per interval (accelerated replay: ``speed`` times the limit, at most this many), a
bound that keeps the throttler's timestamp window small."""

TradingNodeSetup = tuple[
    TradingNodeConfig,
    dict[str, type[LiveDataClientFactory]],
    dict[str, type[LiveExecClientFactory]],
]
"""The node config, and the data and execution client factories by client name."""


def resolve_catalog(spec: LiveNodeSpec, catalog: Path | None) -> Path | None:
    """The catalog a replay client reads: its own, ``catalog``, the node's, or settings; None
    when the node replays nothing."""
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


def _from_env(value: str | int, field: str) -> str:
    """A literal value, or the environment variable an ``env:NAME`` value names."""
    text = str(value)
    if not text.startswith("env:"):
        return text
    name = text[4:]
    found = os.environ.get(name)
    if not found:
        raise ConfigError(f"cache_database.{field}: environment variable {name} is not set")
    return found


def cache_config(spec: CacheDatabaseSpec | None) -> CacheConfig | None:
    """The Nautilus cache config of a ``cache_database:`` section; None keeps the in-memory
    cache. Environment variables are read here, when the node is built (never written back)."""
    if spec is None:
        return None
    port_text = _from_env(spec.port, "port")
    try:
        port = int(port_text)
    except ValueError:
        raise ConfigError(f"cache_database.port: not an integer port: {port_text!r}") from None
    password = None
    if spec.auth_env:
        password = os.environ.get(spec.auth_env)
        if not password:
            raise ConfigError(
                f"cache_database.auth_env: environment variable {spec.auth_env} is not set",
            )
    return CacheConfig(
        database=DatabaseConfig(
            type=spec.type,
            host=_from_env(spec.host, "host"),
            port=port,
            password=password,
            ssl=spec.ssl,
            timeout=spec.timeout_seconds,
        ),
        encoding="msgpack",
        buffer_interval_ms=spec.buffer_interval_ms,
        persist_account_events=spec.persist_account_events,
    )


def trading_node_config(
    spec: LiveNodeSpec,
    catalog: Path | None,
    run_dir: Path | None,
    quiet: bool = False,
    extra_actors: list[ImportableActorConfig] | None = None,
) -> TradingNodeSetup:
    """Translate a live spec into a ``TradingNodeConfig`` plus its client factories.

    ``catalog`` is the resolved replay catalog (:func:`resolve_catalog`); ``run_dir`` None
    writes no file logs (``grodt live --check`` builds the config without a run).
    """
    data_clients, exec_clients = live_clients(spec, catalog)
    risk = spec.engine.risk_engine
    replay = spec.replay
    reconciliation = spec.reconciliation
    purge = spec.cache_purge
    timeouts = spec.timeouts
    # With a cache database, strategy and actor state are loaded when the node is built and
    # saved at a graceful stop; the live node also checkpoints it while running (a crash).
    persistent = spec.cache_database is not None
    config = TradingNodeConfig(
        trader_id=spec.engine.trader_id,
        cache=cache_config(spec.cache_database),
        load_state=persistent,
        save_state=persistent,
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
            # A paper node's venues run in this process: an order stays in flight only while a
            # fill_at: next_open venue holds it for the next bar, which the sandbox cannot be
            # queried about and which must not be resolved as rejected after a few queries.
            inflight_check_interval_ms=0 if spec.is_paper else 2_000,
            purge_closed_orders_interval_mins=purge.closed_orders_interval_mins,
            purge_closed_orders_buffer_mins=purge.closed_orders_buffer_mins,
            purge_closed_positions_interval_mins=purge.closed_positions_interval_mins,
            purge_closed_positions_buffer_mins=purge.closed_positions_buffer_mins,
            purge_account_events_interval_mins=purge.account_events_interval_mins,
            purge_account_events_lookback_mins=purge.account_events_lookback_mins,
        ),
        actors=[importable_actor(a) for a in spec.actors] + list(extra_actors or []),
        strategies=[importable_strategy(s) for s in spec.strategies],
        data_clients={client.name: client.config for client in data_clients},
        exec_clients={client.name: client.config for client in exec_clients},
        timeout_connection=timeouts.connection,
        timeout_reconciliation=timeouts.reconciliation,
        timeout_portfolio=timeouts.portfolio,
        timeout_disconnection=timeouts.disconnection,
        timeout_post_stop=timeouts.post_stop,
        timeout_shutdown=timeouts.shutdown,
    )
    data_factories = {client.name: client.factory for client in data_clients}
    exec_factories = {client.name: client.factory for client in exec_clients}
    return config, data_factories, exec_factories
