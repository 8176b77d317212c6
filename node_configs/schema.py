"""Pydantic models of the YAML node configs (backtest here; the live node extends them).

A node config names venues, data, actors and strategies. Actors and strategies are given by import
path and usually live in their own component files under ``node_configs/components/`` so that a
backtest and a live node reference the *same* definition (see :mod:`node_configs.loader`).

Every model forbids unknown keys: a typo is an error naming the field path, never a silent default.
"""

import datetime as dt
from collections.abc import Mapping
from typing import Annotated
from typing import Any
from typing import Literal

from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money
from pydantic import BaseModel
from pydantic import BeforeValidator
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PositiveInt
from pydantic import field_validator
from pydantic import model_validator

from node_configs.bounded_yaml import echo
from node_configs.date_range import resolve_date_range


def _date_text(value: Any) -> Any:
    """YAML reads an unquoted ``2010-01-01`` as a date: keep it as its ISO text."""
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


DateText = Annotated[str | None, BeforeValidator(_date_text)]
"""An optional ISO date or timestamp; naive values are UTC."""


def _entry_range(entry: Any) -> dict[str, Any]:
    """``start``/``end`` of a data entry given as a mapping or a :class:`DataSpec`."""
    if isinstance(entry, Mapping):
        return {name: _date_text(entry.get(name)) for name in ("start", "end")}
    return {name: getattr(entry, name, None) for name in ("start", "end")}


def with_one_date_range(values: Any) -> Any:
    """Resolve a node's ``start``/``end`` and its ``data`` entries' into one range (see
    :mod:`node_configs.date_range`): the ``mode="before"`` step of the models that own both.
    Anything malformed is left to the field validation, which names it."""
    if not isinstance(values, Mapping) or not isinstance(values.get("data", []), list):
        return values
    start, end = resolve_date_range(
        _date_text(values.get("start")),
        _date_text(values.get("end")),
        [_entry_range(entry) for entry in values.get("data", [])],
    )
    return {**values, "start": start, "end": end}


class StrictModel(BaseModel):
    """Base: unknown keys are errors and values are immutable after validation."""

    # Attribute docstrings become field descriptions: the config reference and JSON Schema.
    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)


class ComponentSpec(StrictModel):
    """An actor or strategy by import path.

    ``path`` is ``"package.module:ClassName"``; the config class defaults to
    ``"package.module:ClassNameConfig"``. ``config`` holds the config class's fields; they are
    checked against the class when the node config is loaded.
    """

    path: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """The class, ``"package.module:ClassName"``; the module is imported from the working directory
    or ``PYTHONPATH``."""
    config_path: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    """Its config class, ``"package.module:ConfigClass"``; None: ``<path>Config``."""
    config: dict[str, Any] = Field(default_factory=dict)
    """The config class's fields; unknown keys and wrong types are errors naming the field."""

    @property
    def resolved_config_path(self) -> str:
        return self.config_path or f"{self.path}Config"


class FillModelSpec(StrictModel):
    """Probabilistic fills of the simulated venue (Nautilus ``FillModel``)."""

    prob_fill_on_limit: float = Field(default=1.0, ge=0.0, le=1.0)
    """Probability that a limit order fills when the market reaches its price, 0-1."""
    prob_fill_on_stop: float = Field(default=1.0, ge=0.0, le=1.0)
    """Probability that a stop order fills at its trigger price when triggered, 0-1."""
    prob_slippage: float = Field(default=0.0, ge=0.0, le=1.0)
    """Probability that a fill of an aggressive order slips one tick, 0-1."""
    random_seed: int | None = 42
    """Seed of the fill model's random draws (a fixed seed makes runs repeatable)."""


class FeeModelSpec(StrictModel):
    """How commissions are charged: the instrument's maker/taker fees, or a fixed amount."""

    kind: Literal["maker_taker", "fixed", "per_contract"] = "maker_taker"
    """maker_taker: the instrument's maker/taker fee rates; fixed: ``commission`` per fill;
    per_contract: ``commission`` per contract."""
    commission: str | None = Field(default=None, description="Money, e.g. '1.00 USD'")

    @field_validator("commission")
    @classmethod
    def _commission_format(cls, value: str | None) -> str | None:
        if value is not None and len(value.split()) != 2:
            raise ValueError("commission must be '<amount> <currency>', e.g. '1.00 USD'")
        return value


class VenueSpec(StrictModel):
    """A simulated venue and its account."""

    name: str = Field(pattern=r"^[A-Z0-9_]+$")
    """Venue id, upper case (the part after the dot of its instruments' ids, e.g. SAMPLE)."""
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    """NETTING: one position per instrument; HEDGING: several positions per instrument (strategies
    sharing an instrument each keep their own)."""
    account_type: Literal["CASH", "MARGIN"] = "CASH"
    """CASH: orders are limited by the balance (no leverage); MARGIN: leveraged positions on margin.
    """
    base_currency: str | None = "USD"
    """Currency of a single-currency account; None: a multi-currency account."""
    starting_balances: list[str] = Field(
        min_length=1,
        description="Money per currency, '<amount> <CURRENCY>' (e.g. '1000000 USD').",
    )
    default_leverage: float = Field(default=1.0, gt=0)
    """Leverage of a margin account for instruments not in ``leverages``."""
    leverages: dict[str, float] | None = None
    """Leverage per instrument id (margin accounts)."""
    fill_model: FillModelSpec = Field(default_factory=FillModelSpec)
    """How orders fill (probabilities, slippage)."""
    fee_model: FeeModelSpec = Field(default_factory=FeeModelSpec)
    """How commissions are charged."""
    bar_adaptive_high_low_ordering: bool = False
    """Infer whether a bar's high or low came first from its open (else open, high, low, close)."""
    fill_at: Literal["close", "next_open"] = Field(
        default="close",
        description="When orders sent on a bar act: at that bar's close, or from the next bar's "
        "open (market orders fill at it); see docs/fills.md.",
    )
    reject_stop_orders: bool = True
    """Reject stop orders whose trigger price is already in the market."""
    support_contingent_orders: bool = True
    """Honour contingent orders (OTO/OCO/OUO: brackets) at the venue."""
    use_reduce_only: bool = Field(
        default=True,
        description="Honour reduce-only on fills. Nautilus 1.221 resizes partially filled "
        "reduce-only orders wrongly; strategies that bracket larger than bar liquidity on a "
        "margin venue turn it off.",
    )

    @field_validator("starting_balances")
    @classmethod
    def _balances_are_money(cls, balances: list[str]) -> list[str]:
        for index, text in enumerate(balances):
            try:
                Money.from_str(text)
                known = Currency.from_str(text.split()[-1], strict=True) is not None
            except (ValueError, TypeError, ArithmeticError, IndexError):
                known = False
            if not known:
                raise ValueError(
                    f"{echo(text)} (entry {index}) is not money: expected "
                    "'<amount> <CURRENCY>' with a known currency code, e.g. '1000000 USD'",
                )
        return balances


class DataSpec(StrictModel):
    """One catalog query: bars of some bar types, or a custom data class (e.g. regime records)."""

    data_cls: str = "nautilus_trader.model.data:Bar"
    """The data class read from the catalog, ``module:Class`` (bars, or custom data such as
    ``grodt.core.messages:RegimeProbabilities``)."""
    bar_types: list[str] | None = None
    """Bar types to read (``SPX.SAMPLE-1-DAY-LAST-EXTERNAL``); every one must be in the catalog."""
    instrument_ids: list[str] | None = None
    """Instrument ids to read (custom data keyed by instrument)."""
    start: DateText = None
    """Must equal the node's ``start`` when both are written (one date range per run)."""
    end: DateText = None
    """Must equal the node's ``end`` when both are written."""
    client_id: str | None = None
    """Data client id of custom data (needed for it to reach subscribers)."""
    metadata: dict[str, Any] | None = None
    """Metadata of custom data's data type (must match the subscribers' data type)."""


class LoggingSpec(StrictModel):
    """Engine logging: a level for the console, and a JSON log file in the run directory."""

    level: Literal["OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    """Console log level of the engine (``--json`` runs are silent)."""
    file_level: Literal["OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """Level of the JSON log file under ``<run_dir>/logs/``; OFF: no file. A backtest whose config
    does not set it logs at WARNING."""


class RiskEngineSpec(StrictModel):
    """Nautilus' own single-order risk engine (the portfolio gate is configured separately)."""

    bypass: bool = False
    """Skip Nautilus' own pre-trade checks (the portfolio gate of ``risk:`` still runs)."""
    max_order_submit_rate: str = "100/00:00:01"
    """Most order submissions per interval, ``COUNT/HH:MM:SS``."""
    max_order_modify_rate: str = "100/00:00:01"
    """Most order modifications per interval, ``COUNT/HH:MM:SS``."""
    max_notional_per_order: dict[str, int] = Field(default_factory=dict)
    """Largest notional of one order per instrument id, in the instrument's quote currency."""


class EngineSpec(StrictModel):
    """Kernel settings shared by every node kind."""

    trader_id: str = Field(default="GRODT-001", pattern=r"^[^-]+-[^-]+$")
    """Nautilus trader id, ``NAME-TAG``."""
    risk_engine: RiskEngineSpec = Field(default_factory=RiskEngineSpec)
    """Nautilus' single-order risk engine."""


class ReportSpec(StrictModel):
    """How results are summarised."""

    periods_per_year: PositiveInt | None = Field(
        default=None,
        description="Annualisation; None infers 252 (weekday-only data) or 365.",
    )


class NodeSpec(StrictModel):
    """What every node kind shares: identity, components, engine settings and the framework's
    optional sections. Backtest and live specs extend it, so one set of strategy and actor
    definitions (and the same risk and forensics settings) runs in both."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    """Run name: the run directory ``<GRODT_RUNS_DIR>/<name>/`` and the default MLflow experiment.
    """
    description: str = ""
    """Free text, kept with the run."""
    actors: list[ComponentSpec] = Field(default_factory=list)
    """Actors (regime actor, ...), started before the strategies."""
    strategies: list[ComponentSpec] = Field(default_factory=list)
    """Strategies; at least one (a node without one is an error)."""
    engine: EngineSpec = Field(default_factory=EngineSpec)
    """Kernel settings shared by every node kind."""
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
    """Engine logging."""
    # Optional framework sections; each is owned by its feature's module and installed by a
    # node extension (node_configs.extensions). None = feature off.
    risk: dict[str, Any] | None = Field(
        default=None,
        description="Portfolio risk gate (risk_engine); validated by the risk engine's config.",
    )
    forensics: dict[str, Any] | None = Field(
        default=None,
        description="Decision forensics bridge (actors); validated by the bridge's config.",
    )


class BacktestNodeSpec(NodeSpec):
    """A BacktestNode run: simulated venues and catalog data."""

    kind: Literal["backtest"] = "backtest"
    """Node kind; a document without ``kind`` is a backtest config."""
    catalog: str | None = Field(
        default=None,
        description="Catalog directory; None uses --catalog or GRODT_CATALOG.",
    )
    start: DateText = None
    """First instant of the run, ISO date or timestamp (naive: UTC); the engine's bars, the
    reports and the marks of open positions all use this one range. None: the catalog's first
    bar, or the ``start`` the data entries agree on."""
    end: DateText = None
    """Last instant of the run (a date is its midnight); None: the catalog's last bar, or the
    ``end`` the data entries agree on."""
    chunk_size: PositiveInt | None = Field(
        default=None,
        description="Stream the catalog in chunks of this many records (large data).",
    )
    venues: list[VenueSpec] = Field(min_length=1)
    """Simulated venues and their accounts."""
    data: list[DataSpec] = Field(min_length=1)
    """Catalog queries: the bars (and custom data) the run reads."""
    report: ReportSpec = Field(default_factory=ReportSpec)
    """How results are summarised."""
    benchmark: str | None = Field(default=None, pattern=r"^\S+-\d+-[A-Z_]+-[A-Z_]+-[A-Z]+$")
    """Bar type (any in the catalog, e.g. ``SPX.SAMPLE-1-DAY-LAST-EXTERNAL``) whose buy-and-hold
    over the run's span is reported beside the run: its return, Sharpe and max drawdown, the
    run's alpha, beta, information ratio and tracking error against it, and a second line in the
    tearsheet's equity chart. None: no benchmark."""

    @model_validator(mode="before")
    @classmethod
    def _one_date_range(cls, values: Any) -> Any:
        return with_one_date_range(values)
