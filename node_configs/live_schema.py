"""Pydantic models of the YAML live node configs (TradingNode), and their loader.

A live config shares everything but its clients with a backtest config: the same ``actors`` and
``strategies`` (usually ``include:`` d from ``node_configs/components/``), the same ``engine``,
``risk`` and ``forensics`` sections. What differs is where market data comes from and where
orders go:

- paper trading on replayed data: a ``replay`` data client streaming catalog data (lockstep,
  real-time or accelerated) and ``sandbox`` execution clients simulating the SAME venue specs as
  the backtests (``venue: {include: ../venues/sample_cash.yaml}``);
- broker deployments: ``interactive_brokers`` or ``binance`` data and execution clients.

Credentials are never part of a config: the models have no field for them and the loader rejects
any credential-like key (``api_key``, ``password``, ...) before validation, naming its path but
never echoing its value. Each broker client declares the environment variables it reads
(:meth:`InteractiveBrokersExecSpec.required_env`, ...), which ``grodt live CONFIG --check``
verifies without connecting.
"""

from collections.abc import Mapping
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated
from typing import Any
from typing import Literal

from pydantic import Field
from pydantic import NonNegativeInt
from pydantic import PositiveFloat
from pydantic import PositiveInt
from pydantic import model_validator

from grodt.core.errors import ConfigError
from node_configs.loader import check_components
from node_configs.loader import check_sections
from node_configs.loader import load_backtest_document
from node_configs.loader import load_document
from node_configs.loader import validate_model
from node_configs.schema import BacktestNodeSpec
from node_configs.schema import DataSpec
from node_configs.schema import DateText
from node_configs.schema import NodeSpec
from node_configs.schema import ReportSpec
from node_configs.schema import StrictModel
from node_configs.schema import VenueSpec
from node_configs.schema import with_one_date_range

SECRET_KEYS: frozenset[str] = frozenset(
    {
        "api_key",
        "api_secret",
        "secret",
        "password",
        "passphrase",
        "username",
        "token",
        "private_key",
        "account_id",
    },
)
"""Keys that would hold credentials or account identifiers: never accepted from YAML."""

# -- Data clients -------------------------------------------------------------------------------


class ReplaySpec(StrictModel):
    """Paper trading market data: catalog data replayed into the live node.

    ``data`` takes the same entries as a backtest's ``data`` (bar types, or custom data classes
    with ``client_id``/``metadata``), so a backtest and its paper twin read the same records.

    Pacing
    ------
    lockstep
        Each record is published only after the engines are idle (all queues empty and no
        message counted for ``idle_turns`` consecutive event-loop turns): fills land on the bar
        that caused them, as in a backtest. Used by ``grodt parity``.
    realtime
        Records are published at their original spacing (``speed`` is forced to 1).
    accelerated
        Original spacing divided by ``speed`` (60 = one minute of data per second).
    """

    type: Literal["replay"]
    """Paper trading: replay catalog data."""
    catalog: str | None = Field(
        default=None,
        description="Catalog directory; None: the node's `catalog`, --catalog or GRODT_CATALOG.",
    )
    data: list[DataSpec] = Field(min_length=1)
    """Catalog queries, the same entries as a backtest's ``data``."""
    start: DateText = None
    """First instant replayed (the one date range; see the backtest node's ``start``)."""
    end: DateText = None
    """Last instant replayed."""
    pacing: Literal["lockstep", "realtime", "accelerated"] = "lockstep"
    """How records are paced (see above): lockstep (as a backtest), realtime, accelerated."""
    speed: PositiveFloat = Field(default=60.0, description="Data seconds per wall second.")
    max_gap_seconds: PositiveFloat | None = Field(
        default=None,
        description="Wall seconds to wait at most between two records (compresses nights).",
    )
    idle_turns: PositiveInt = Field(
        default=3,
        description="Lockstep: consecutive quiet event-loop turns that count as idle.",
    )
    stop_when_done: bool = Field(default=True, description="Stop the node when the data ends.")

    @model_validator(mode="before")
    @classmethod
    def _one_date_range(cls, values: Any) -> Any:
        return with_one_date_range(values)


class IBGatewaySpec(StrictModel):
    """Where the IB Gateway / TWS listens (not secret; credentials come from the environment)."""

    host: str = "127.0.0.1"
    """Host of the IB Gateway / TWS."""
    port: int = Field(default=4002, ge=1, le=65535, description="IBG paper 4002, live 4001.")
    client_id: int = Field(default=1, ge=0)
    """API client id of this node's connection (unique per gateway)."""
    dockerized: bool = Field(
        default=False,
        description="Start the gateway in Docker (reads TWS_USERNAME / TWS_PASSWORD).",
    )
    trading_mode: Literal["paper", "live"] = "paper"
    """The gateway's trading mode (dockerized gateway)."""


class InteractiveBrokersDataSpec(StrictModel):
    """Market data from Interactive Brokers (equities)."""

    type: Literal["interactive_brokers"]
    """Interactive Brokers."""
    gateway: IBGatewaySpec = Field(default_factory=IBGatewaySpec)
    """Where the gateway listens."""
    instrument_ids: list[str] = Field(min_length=1, description="e.g. SPY.ARCA")
    use_regular_trading_hours: bool = True
    """Bars of regular trading hours only."""
    market_data_type: Literal["REALTIME", "DELAYED", "DELAYED_FROZEN", "FROZEN"] = "REALTIME"
    """IB market data type (DELAYED needs no market data subscription)."""

    def required_env(self) -> dict[str, str]:
        """Environment variables this client reads, with what each is for."""
        if self.gateway.dockerized:
            return {
                "TWS_USERNAME": "IB login for the dockerized gateway",
                "TWS_PASSWORD": "IB password for the dockerized gateway",
            }
        return {}


class BinanceDataSpec(StrictModel):
    """Market data from Binance spot (testnet by default)."""

    type: Literal["binance"]
    """Binance spot."""
    testnet: bool = True
    """The spot testnet (False: real money)."""
    instrument_ids: list[str] = Field(min_length=1, description="e.g. BTCUSDT.BINANCE")
    key_type: Literal["HMAC", "RSA", "ED25519"] = "HMAC"
    """Kind of the API key read from the environment."""

    def required_env(self) -> dict[str, str]:
        return binance_env(self.testnet)


DataClientSpec = Annotated[
    ReplaySpec | InteractiveBrokersDataSpec | BinanceDataSpec,
    Field(discriminator="type"),
]

# -- Execution clients --------------------------------------------------------------------------


class SandboxSpec(StrictModel):
    """Paper execution: a simulated venue inside the live node.

    ``venue`` is the very venue spec a backtest uses (include the same file), so account type,
    balances, fill and fee models are identical in both nodes.
    """

    type: Literal["sandbox"]
    """Paper execution on a simulated venue."""
    venue: VenueSpec
    """The simulated venue: the same spec as a backtest's venue (include the same file)."""


class InteractiveBrokersExecSpec(StrictModel):
    """Order routing to Interactive Brokers. The account id is read from ``TWS_ACCOUNT``."""

    type: Literal["interactive_brokers"]
    """Interactive Brokers."""
    gateway: IBGatewaySpec = Field(default_factory=IBGatewaySpec)
    """Where the gateway listens."""

    def required_env(self) -> dict[str, str]:
        env = {"TWS_ACCOUNT": "IB account id orders are routed to (e.g. DU1234567 for paper)"}
        if self.gateway.dockerized:
            env["TWS_USERNAME"] = "IB login for the dockerized gateway"
            env["TWS_PASSWORD"] = "IB password for the dockerized gateway"
        return env


class BinanceExecSpec(StrictModel):
    """Order routing to Binance spot (testnet by default)."""

    type: Literal["binance"]
    """Binance spot."""
    testnet: bool = True
    """The spot testnet (False: real money)."""
    key_type: Literal["HMAC", "RSA", "ED25519"] = "HMAC"
    """Kind of the API key read from the environment."""
    use_reduce_only: bool = False
    """Send reduce-only flags on closing orders."""

    def required_env(self) -> dict[str, str]:
        return binance_env(self.testnet)


ExecClientSpec = Annotated[
    SandboxSpec | InteractiveBrokersExecSpec | BinanceExecSpec,
    Field(discriminator="type"),
]


def binance_env(testnet: bool) -> dict[str, str]:
    """The environment variables the Binance spot adapter reads for its credentials."""
    prefix = "BINANCE_TESTNET_" if testnet else "BINANCE_"
    where = "spot testnet" if testnet else "spot (REAL MONEY)"
    return {
        f"{prefix}API_KEY": f"Binance {where} API key",
        f"{prefix}API_SECRET": f"Binance {where} API secret",
    }


# -- Operations ---------------------------------------------------------------------------------


class KillSwitchSpec(StrictModel):
    """Operator kill switch: while the file exists, only orders that reduce the submitting
    strategy's own position pass."""

    file: str | None = Field(
        default=None,
        description="Path of the kill file; None = <run_dir>/KILL. Relative to the run dir.",
    )
    poll_seconds: PositiveFloat = 1.0
    """How often the kill file is checked, wall seconds."""
    mirror_trading_state: bool = Field(
        default=False,
        description="Also set Nautilus' risk engine to REDUCING while halted. Off by default: "
        "Nautilus' REDUCING is instrument-net-wide (a BUY is denied while the instrument is net "
        "long across all strategies), so with several strategies on one instrument it denies a "
        "strategy's own closing order; the switch's per-strategy guard already lets only "
        "reducing orders through.",
    )


class OperationsSpec(StrictModel):
    """Live operations: stop behaviour, kill switch and the periodic health line."""

    on_stop: Literal["flatten", "keep"] = Field(
        default="keep",
        description="flatten: cancel orders and close every position before stopping; keep: "
        "leave positions (strategies' own on_stop still runs).",
    )
    flatten_timeout_seconds: PositiveFloat = 30.0
    """With ``on_stop: flatten``: wall seconds to wait for positions to close."""
    health_interval_seconds: PositiveFloat | None = Field(
        default=60.0,
        description="Seconds between health lines; None disables them.",
    )
    kill_switch: KillSwitchSpec = Field(default_factory=KillSwitchSpec)
    """The operator's kill file."""


class TimeoutsSpec(StrictModel):
    """TradingNode timeouts, seconds (Nautilus defaults make every stop take 10 s)."""

    connection: PositiveFloat = 60.0
    """Seconds to wait for clients to connect."""
    reconciliation: PositiveFloat = 30.0
    """Seconds to wait for execution-state reconciliation at start."""
    portfolio: PositiveFloat = 10.0
    """Seconds to wait for the portfolio to initialise."""
    disconnection: PositiveFloat = 10.0
    """Seconds to wait for clients to disconnect."""
    post_stop: PositiveFloat = 3.0
    """Seconds to wait after stop for residual events."""
    shutdown: PositiveFloat = 5.0
    """Seconds to wait for the node to shut down."""


class ReconciliationSpec(StrictModel):
    """Execution-state reconciliation with the venue at start-up (and continuously)."""

    enabled: bool = True
    """Reconcile orders and positions with the venue at start."""
    lookback_mins: PositiveInt | None = Field(
        default=None, description="None = the venue's maximum."
    )
    open_check_interval_seconds: PositiveFloat | None = Field(
        default=None,
        description="Poll open orders at the venue this often (5-10 s advised for brokers).",
    )
    inflight_check_threshold_ms: PositiveInt = 5_000
    """An order in flight longer than this (ms) is queried at the venue."""


class CachePurgeSpec(StrictModel):
    """Purge closed orders, closed positions and old account events from the in-memory cache.

    A node that runs for weeks keeps every order in memory unless told otherwise. Purged records
    are gone from the end-of-run reports too (forensics keeps the history). Minutes of wall time;
    None = never purge.
    """

    closed_orders_interval_mins: PositiveInt | None = None
    """Purge closed orders every N minutes; None: never."""
    closed_orders_buffer_mins: NonNegativeInt = 60
    """Keep orders closed less than N minutes ago."""
    closed_positions_interval_mins: PositiveInt | None = None
    """Purge closed positions every N minutes; None: never."""
    closed_positions_buffer_mins: NonNegativeInt = 60
    """Keep positions closed less than N minutes ago."""
    account_events_interval_mins: PositiveInt | None = None
    """Purge old account events every N minutes; None: never."""
    account_events_lookback_mins: NonNegativeInt = 60
    """Keep account events of the last N minutes."""


class CacheDatabaseSpec(StrictModel):
    """Nautilus' cache database (Redis): orders, positions, accounts and strategy/actor state
    survive a crash of the node, and a restarted node loads them before its strategies start.

    ``host`` and ``port`` are literal values or ``env:NAME`` (read from the environment when the
    node is built). The password, if the server needs one, is read only from the environment
    variable named by ``auth_env``; a literal password is never accepted.
    """

    type: Literal["redis"] = "redis"
    """The cache database server: Redis."""
    host: str = Field(default="127.0.0.1", description="Host name, or env:NAME.")
    port: int | str = Field(default=6379, description="TCP port, or env:NAME.")
    auth_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the Redis password (AUTH).",
    )
    ssl: bool = False
    """Connect with TLS."""
    timeout_seconds: PositiveInt = Field(default=20, description="Connection timeout, seconds.")
    buffer_interval_ms: PositiveInt | None = Field(
        default=None,
        description="Broker nodes: batch writes every N ms (None: each write at once, the least "
        "lost at a crash). A paper node commits one transaction per checkpoint.",
    )
    persist_account_events: bool = True
    """Write account events to the database too."""
    checkpoint_seconds: PositiveFloat = Field(
        default=1.0,
        description="State checkpoint interval, wall seconds (lockstep replay: every record).",
    )

    @model_validator(mode="after")
    def _env_names(self) -> "CacheDatabaseSpec":
        if isinstance(self.port, str) and not self.port.startswith("env:"):
            raise ValueError("port: an integer or env:NAME")
        for name, value in (("host", self.host), ("port", self.port)):
            if isinstance(value, str) and value.startswith("env:") and not value[4:]:
                raise ValueError(f"{name}: env: needs a variable name")
        return self

    def required_env(self) -> dict[str, str]:
        """Environment variables this section reads, with what each is for."""
        env: dict[str, str] = {}
        for name, value in (("host", self.host), ("port", self.port)):
            if isinstance(value, str) and value.startswith("env:"):
                env[value[4:]] = f"cache database {name}"
        if self.auth_env:
            env[self.auth_env] = "cache database password (Redis AUTH)"
        return env


# -- The node -----------------------------------------------------------------------------------


class LiveNodeSpec(NodeSpec):
    """A TradingNode: the shared NodeSpec plus data/execution clients and operations."""

    kind: Literal["live"]
    """Node kind: ``live`` (required)."""
    catalog: str | None = Field(
        default=None,
        description="Default catalog for replay clients; None uses --catalog or GRODT_CATALOG.",
    )
    data_clients: list[DataClientSpec] = Field(min_length=1)
    """Where market data comes from: one replay client (paper) or broker clients."""
    exec_clients: list[ExecClientSpec] = Field(min_length=1)
    """Where orders go: sandbox venues (paper) or brokers; never a broker with a replay."""
    operations: OperationsSpec = Field(default_factory=OperationsSpec)
    """Stop behaviour, kill switch and the health line."""
    timeouts: TimeoutsSpec = Field(default_factory=TimeoutsSpec)
    """TradingNode timeouts."""
    reconciliation: ReconciliationSpec = Field(default_factory=ReconciliationSpec)
    """Execution-state reconciliation with the venue."""
    cache_purge: CachePurgeSpec = Field(default_factory=CachePurgeSpec)
    """Purging closed records from the in-memory cache."""
    cache_database: CacheDatabaseSpec | None = Field(
        default=None,
        description="Redis cache database: state survives a crash (None: in memory only).",
    )
    report: ReportSpec = Field(default_factory=ReportSpec)
    """How results are summarised."""

    @model_validator(mode="after")
    def _clients_consistent(self) -> "LiveNodeSpec":
        replays = [c for c in self.data_clients if isinstance(c, ReplaySpec)]
        if len(replays) > 1:
            raise ValueError("data_clients: at most one replay client per node")
        sandboxes = [c for c in self.exec_clients if isinstance(c, SandboxSpec)]
        names = [c.venue.name for c in sandboxes]
        if len(names) != len(set(names)):
            raise ValueError(f"exec_clients: duplicate sandbox venues {names}")
        brokers = [c for c in self.exec_clients if not isinstance(c, SandboxSpec)]
        if replays and brokers:
            raise ValueError(
                "exec_clients: a replay (paper) node routes orders to sandbox venues only; "
                "replayed prices must never reach a broker",
            )
        kinds = [c.type for c in brokers]
        if len(kinds) != len(set(kinds)):
            raise ValueError(f"exec_clients: one client per broker, got {kinds}")
        return self

    @property
    def replay(self) -> ReplaySpec | None:
        """The replay data client, if this is a paper node."""
        for client in self.data_clients:
            if isinstance(client, ReplaySpec):
                return client
        return None

    @property
    def sandboxes(self) -> list[SandboxSpec]:
        return [c for c in self.exec_clients if isinstance(c, SandboxSpec)]

    @property
    def is_paper(self) -> bool:
        """True when every order goes to a sandbox venue (no broker client)."""
        return all(isinstance(c, SandboxSpec) for c in self.exec_clients)

    def required_env(self) -> dict[str, str]:
        """Every environment variable the node's clients read, with what each is for."""
        env: dict[str, str] = {}
        for client in [*self.data_clients, *self.exec_clients]:
            required = getattr(client, "required_env", None)
            if required is not None:
                env.update(required())
        if self.cache_database is not None:
            env.update(self.cache_database.required_env())
        return env


# -- Loading ------------------------------------------------------------------------------------


def find_secret_keys(node: Any, path: str = "") -> list[str]:
    """Field paths of credential-like keys anywhere in a YAML document (values never read)."""
    found: list[str] = []
    if isinstance(node, Mapping):
        for key, value in node.items():
            here = f"{path}.{key}" if path else str(key)
            if str(key).lower() in SECRET_KEYS:
                found.append(here)
            found.extend(find_secret_keys(value, here))
    elif isinstance(node, list):
        for index, item in enumerate(node):
            found.extend(find_secret_keys(item, f"{path}[{index}]"))
    return found


def reject_secrets(document: Mapping[str, Any], source: str) -> None:
    """Raise ConfigError if the document holds credentials (naming paths, never values)."""
    secrets_found = find_secret_keys(document)
    if secrets_found:
        raise ConfigError(
            f"{source}: credentials are never read from YAML; remove "
            + ", ".join(secrets_found)
            + " and set the environment variables listed by `grodt live CONFIG --check`",
        )


def document_kind(document: Mapping[str, Any]) -> str:
    """``"live"`` or ``"backtest"`` (a document without ``kind`` is a backtest config)."""
    return str(document.get("kind", "backtest"))


def load_live_document(document: Mapping[str, Any], source: str) -> LiveNodeSpec:
    """Validate and check a resolved live document (``source`` names it in errors)."""
    if document_kind(document) != "live":
        raise ConfigError(f"{source}: kind: not a live config (expected `kind: live`)")
    reject_secrets(document, source)
    spec = validate_model(LiveNodeSpec, document, source)
    check_components(spec, source)
    # Instruments no data client provides are reported by `grodt live CONFIG --check`
    # (grodt.nodes.checks), with every other deployment problem at once.
    check_sections(spec, source)
    return spec


def load_live_config(path: str | Path, overrides: Sequence[str] = ()) -> LiveNodeSpec:
    """Load, validate and check a live node config file (components and sections included),
    with optional ``PATH=VALUE`` overrides."""
    return load_live_document(load_document(path, overrides), str(path))


def load_node_config(
    path: str | Path,
    overrides: Sequence[str] = (),
) -> BacktestNodeSpec | LiveNodeSpec:
    """Load a backtest or a live config, whichever ``path`` holds (overrides applied)."""
    document = load_document(path, overrides)
    if document_kind(document) == "live":
        return load_live_document(document, str(path))
    return load_backtest_document(document, str(path))


# -- Paper twin ⇄ backtest ----------------------------------------------------------------------

_SHARED_FIELDS = ("actors", "strategies", "engine", "logging", "risk", "forensics", "report")


def paper_twin(
    spec: BacktestNodeSpec,
    pacing: Literal["lockstep", "realtime", "accelerated"] = "lockstep",
    speed: float = 60.0,
) -> LiveNodeSpec:
    """The paper node that replays a backtest's data into sandbox copies of its venues.

    Components, engine settings and framework sections are the backtest's own objects; the node
    keeps positions on stop (like the backtest, where only strategies' ``on_stop`` acts).
    """
    shared = {name: getattr(spec, name) for name in _SHARED_FIELDS}
    return LiveNodeSpec(
        name=f"{spec.name}-paper",
        description=spec.description,
        kind="live",
        catalog=spec.catalog,
        data_clients=[
            ReplaySpec(
                type="replay",
                catalog=spec.catalog,
                data=spec.data,
                start=spec.start,
                end=spec.end,
                pacing=pacing,
                speed=speed,
            ),
        ],
        exec_clients=[SandboxSpec(type="sandbox", venue=venue) for venue in spec.venues],
        operations=OperationsSpec(on_stop="keep", health_interval_seconds=None),
        timeouts=TimeoutsSpec(post_stop=0.2, disconnection=2.0, connection=10.0),
        reconciliation=ReconciliationSpec(enabled=False),
        **shared,
    )


def backtest_twin(spec: LiveNodeSpec, source: str = "") -> BacktestNodeSpec:
    """The backtest of a paper node: its replay data on its sandbox venues."""
    replay = spec.replay
    if replay is None or not spec.is_paper:
        raise ConfigError(
            f"{source}: parity needs a paper config (one replay data client, sandbox execution "
            "clients only) or a backtest config",
        )
    shared = {name: getattr(spec, name) for name in _SHARED_FIELDS}
    return BacktestNodeSpec(
        name=spec.name,
        description=spec.description,
        kind="backtest",
        catalog=replay.catalog or spec.catalog,
        start=replay.start,
        end=replay.end,
        venues=[sandbox.venue for sandbox in spec.sandboxes],
        data=replay.data,
        **shared,
    )
