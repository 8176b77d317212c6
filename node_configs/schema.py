"""Pydantic models of the YAML node configs (backtest here; the live node extends them).

A node config names venues, data, actors and strategies. Actors and strategies are given by import
path and usually live in their own component files under ``node_configs/components/`` so that a
backtest and a live node reference the *same* definition (see :mod:`node_configs.loader`).

Every model forbids unknown keys: a typo is an error naming the field path, never a silent default.
"""

from typing import Any
from typing import Literal

from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import PositiveInt
from pydantic import field_validator


class StrictModel(BaseModel):
    """Base: unknown keys are errors and values are immutable after validation."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ComponentSpec(StrictModel):
    """An actor or strategy by import path.

    ``path`` is ``"package.module:ClassName"``; the config class defaults to
    ``"package.module:ClassNameConfig"``. ``config`` holds the config class's fields; they are
    checked against the class when the node config is loaded.
    """

    path: str = Field(pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    config_path: str | None = Field(default=None, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
    config: dict[str, Any] = Field(default_factory=dict)

    @property
    def resolved_config_path(self) -> str:
        return self.config_path or f"{self.path}Config"


class FillModelSpec(StrictModel):
    """Probabilistic fills of the simulated venue (Nautilus ``FillModel``)."""

    prob_fill_on_limit: float = Field(default=1.0, ge=0.0, le=1.0)
    prob_fill_on_stop: float = Field(default=1.0, ge=0.0, le=1.0)
    prob_slippage: float = Field(default=0.0, ge=0.0, le=1.0)
    random_seed: int | None = 42


class FeeModelSpec(StrictModel):
    """How commissions are charged: the instrument's maker/taker fees, or a fixed amount."""

    kind: Literal["maker_taker", "fixed", "per_contract"] = "maker_taker"
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
    oms_type: Literal["NETTING", "HEDGING"] = "NETTING"
    account_type: Literal["CASH", "MARGIN"] = "CASH"
    base_currency: str | None = "USD"
    starting_balances: list[str] = Field(min_length=1)
    default_leverage: float = Field(default=1.0, gt=0)
    leverages: dict[str, float] | None = None
    fill_model: FillModelSpec = Field(default_factory=FillModelSpec)
    fee_model: FeeModelSpec = Field(default_factory=FeeModelSpec)
    bar_adaptive_high_low_ordering: bool = False
    fill_at: Literal["close", "next_open"] = Field(
        default="close",
        description="When orders sent on a bar act: at that bar's close, or from the next bar's "
        "open (market orders fill at it); see docs/fills.md.",
    )
    reject_stop_orders: bool = True
    support_contingent_orders: bool = True
    use_reduce_only: bool = Field(
        default=True,
        description="Honour reduce-only on fills. Nautilus 1.221 resizes partially filled "
        "reduce-only orders wrongly; strategies that bracket larger than bar liquidity on a "
        "margin venue turn it off.",
    )


class DataSpec(StrictModel):
    """One catalog query: bars of some bar types, or a custom data class (e.g. regime records)."""

    data_cls: str = "nautilus_trader.model.data:Bar"
    bar_types: list[str] | None = None
    instrument_ids: list[str] | None = None
    start: str | None = None
    end: str | None = None
    client_id: str | None = None
    metadata: dict[str, Any] | None = None


class LoggingSpec(StrictModel):
    """Engine logging: a level for the console, and a JSON log file in the run directory."""

    level: Literal["OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    file_level: Literal["OFF", "TRACE", "DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"


class RiskEngineSpec(StrictModel):
    """Nautilus' own single-order risk engine (the portfolio gate is configured separately)."""

    bypass: bool = False
    max_order_submit_rate: str = "100/00:00:01"
    max_order_modify_rate: str = "100/00:00:01"
    max_notional_per_order: dict[str, int] = Field(default_factory=dict)


class EngineSpec(StrictModel):
    """Kernel settings shared by every node kind."""

    trader_id: str = Field(default="GRODT-001", pattern=r"^[^-]+-[^-]+$")
    risk_engine: RiskEngineSpec = Field(default_factory=RiskEngineSpec)


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
    description: str = ""
    actors: list[ComponentSpec] = Field(default_factory=list)
    strategies: list[ComponentSpec] = Field(default_factory=list)
    engine: EngineSpec = Field(default_factory=EngineSpec)
    logging: LoggingSpec = Field(default_factory=LoggingSpec)
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
    catalog: str | None = Field(
        default=None,
        description="Catalog directory; None uses --catalog or GRODT_CATALOG.",
    )
    start: str | None = None
    end: str | None = None
    chunk_size: PositiveInt | None = Field(
        default=None,
        description="Stream the catalog in chunks of this many records (large data).",
    )
    venues: list[VenueSpec] = Field(min_length=1)
    data: list[DataSpec] = Field(min_length=1)
    report: ReportSpec = Field(default_factory=ReportSpec)
    benchmark: str | None = Field(default=None, pattern=r"^\S+-\d+-[A-Z_]+-[A-Z_]+-[A-Z]+$")
    """Bar type (any in the catalog, e.g. ``SPX.SAMPLE-1-DAY-LAST-EXTERNAL``) whose buy-and-hold
    over the run's span is reported beside the run: its return, Sharpe and max drawdown, the
    run's alpha, beta, information ratio and tracking error against it, and a second line in the
    tearsheet's equity chart. None: no benchmark."""
