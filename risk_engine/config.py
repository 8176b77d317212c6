"""The ``risk:`` section of a node config: portfolio limits, HRP targets and the kill switch.

Validated with pydantic when the node config is loaded, before anything starts: an impossible
value (a weight above 1, a negative cap, a window shorter than the history it needs) is a
:class:`grodt.core.errors.ConfigError` naming ``risk.<field path>``.

Units: every ``weight``/``exposure``/``loss`` limit is a fraction of portfolio equity (mark to
market, in the account currency); ``max_order_notional`` is an amount of the account currency;
CVaR is a fraction of equity per return period of the HRP actor's samples (``hrp.sampling``).
"""

import datetime as dt
import zoneinfo
from collections.abc import Mapping
from typing import Any
from typing import Literal

import pandas as pd
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from grodt.core.errors import ConfigError

HrpMethod = Literal["textbook", "hrp", "herc"]
Codependence = Literal[
    "pearson",
    "spearman",
    "kendall",
    "gerber1",
    "gerber2",
    "abs_pearson",
    "abs_spearman",
    "abs_kendall",
    "distance",
    "mutual_info",
    "tail",
]
Linkage = Literal["single", "complete", "average", "weighted", "centroid", "median", "ward", "DBHT"]
# riskfolio-lib's risk measures usable in HRP/HERC without a commercial solver.
RiskMeasure = Literal[
    "equal",
    "vol",
    "MV",
    "KT",
    "MAD",
    "MSV",
    "SKT",
    "FLPM",
    "SLPM",
    "VaR",
    "CVaR",
    "TG",
    "EVaR",
    "WR",
    "VRG",
    "CVRG",
    "TGRG",
    "MDD",
    "ADD",
    "DaR",
    "CDaR",
    "EDaR",
    "UCI",
    "MDD_Rel",
    "ADD_Rel",
    "DaR_Rel",
    "CDaR_Rel",
    "EDaR_Rel",
    "UCI_Rel",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def interval_ns(value: str) -> int:
    """``"bar"`` → 0 (every bar); otherwise a pandas interval such as ``"1D"``, ``"4h"``,
    ``"30min"`` → its length in nanoseconds (> 0)."""
    if value == "bar":
        return 0
    try:
        delta = pd.Timedelta(value)
    except (ValueError, TypeError):
        raise ValueError("must be 'bar' or an interval such as '1D', '4h', '30min'") from None
    if delta.value <= 0:
        raise ValueError("an interval must be positive")
    return int(delta.value)


class GroupLimit(_Strict):
    """A sector/group cap: the members' summed worst-case |exposure| ≤ ``max_weight`` × equity.

    Attributes
    ----------
    members : list[str]
        Instrument ids (``"AAPL.SAMPLE"``).
    max_weight : float
        Fraction of equity in (0, 1].
    """

    members: list[str] = Field(min_length=1)
    max_weight: float = Field(gt=0.0, le=1.0)

    @field_validator("members")
    @classmethod
    def _instrument_ids(cls, members: list[str]) -> list[str]:
        from nautilus_trader.model.identifiers import InstrumentId

        for member in members:
            try:
                InstrumentId.from_str(member)
            except ValueError:
                raise ValueError(f"{member!r} is not an instrument id ('SYMBOL.VENUE')") from None
        if len(set(members)) != len(members):
            raise ValueError("members are listed twice")
        return members


class CvarLimit(_Strict):
    """Portfolio CVaR limit from the rolling returns the HRP actor collects.

    Attributes
    ----------
    limit : float
        Max historical CVaR of the portfolio's one-period loss, as a fraction of equity, in (0, 1].
        One period is one ``hrp.sampling`` interval (a bar, or e.g. one day with ``"1D"``).
    alpha : float
        Confidence level in (0.5, 1): 0.95 averages the worst 5% of scenarios.
    window : int
        Most recent return periods used as scenarios.
    min_observations : int
        Below this many return periods the limit is not evaluated (reported as warming up).
    """

    limit: float = Field(gt=0.0, le=1.0)
    alpha: float = Field(default=0.95, gt=0.5, lt=1.0)
    window: int = Field(default=250, ge=20, le=100_000)
    min_observations: int = Field(default=60, ge=10)

    @model_validator(mode="after")
    def _min_within_window(self) -> "CvarLimit":
        if self.min_observations > self.window:
            raise ValueError(
                f"min_observations ({self.min_observations}) exceeds window ({self.window})",
            )
        return self


class LimitsConfig(_Strict):
    """Hard limits checked on every order. ``null`` switches a limit off.

    Attributes
    ----------
    max_weight : float | None
        Max worst-case |exposure| of one instrument / equity, in (0, 1]. Default 0.25.
    gross_exposure : float | None
        Max Σ worst-case |exposure| / equity (> 0; above 1 needs a margin account). Default 1.
    net_exposure : float | None
        Max |Σ signed exposure| / equity (> 0). Default 1.
    groups : dict[str, GroupLimit]
        Sector/group caps by name.
    trade_risk : float | None
        Per-trade risk budget: quantity × |entry − stop| × multiplier ≤ trade_risk × equity, in
        (0, 1]. Default 0.01. The stop comes from the bracket's stop-loss, a stop order's trigger,
        or the ``stop_loss=<price>`` order tag.
    missing_stop : "ignore" | "assume" | "deny"
        What the trade-risk limit does with an opening order that has no stop: skip the check,
        assume a stop ``assumed_stop_distance`` × entry price away, or deny the order.
    assumed_stop_distance : float | None
        Fraction of the entry price, in (0, 1); required with ``missing_stop: assume``.
    max_order_notional : float | None
        Max quantity × price × multiplier of one order, in the account currency (> 0).
    slippage_allowance : float
        Fraction of the entry price an order is assumed to lose to slippage, in [0, 0.1). With
        the instrument's taker fee it is deducted from the equity the caps are computed on, so a
        fill a little worse than the mark still lands inside the caps. Default 5 bp.
    cost_reserve : float
        Fraction of equity held back from every cap, in [0, 0.1): the fill costs of orders that
        come later (other strategies in the same bar) lower equity and so raise every weight a
        little. Default 0.1%.
    daily_loss : float | None
        Kill switch: halt when equity falls this fraction below the trading day's start, in (0, 1).
    max_drawdown : float | None
        Kill switch: halt when equity falls this fraction below its high-water mark, in (0, 1).
    cvar : CvarLimit | None
        Portfolio CVaR limit (needs the ``hrp`` section, whose actor collects the returns).
    """

    max_weight: float | None = Field(default=0.25, gt=0.0, le=1.0)
    gross_exposure: float | None = Field(default=1.0, gt=0.0, le=100.0)
    net_exposure: float | None = Field(default=1.0, gt=0.0, le=100.0)
    groups: dict[str, GroupLimit] = Field(default_factory=dict)
    trade_risk: float | None = Field(default=0.01, gt=0.0, le=1.0)
    missing_stop: Literal["ignore", "assume", "deny"] = "ignore"
    assumed_stop_distance: float | None = Field(default=None, gt=0.0, lt=1.0)
    max_order_notional: float | None = Field(default=None, gt=0.0)
    slippage_allowance: float = Field(default=0.0005, ge=0.0, lt=0.1)
    cost_reserve: float = Field(default=0.001, ge=0.0, lt=0.1)
    daily_loss: float | None = Field(default=None, gt=0.0, lt=1.0)
    max_drawdown: float | None = Field(default=None, gt=0.0, lt=1.0)
    cvar: CvarLimit | None = None

    @model_validator(mode="after")
    def _assumed_stop(self) -> "LimitsConfig":
        if self.missing_stop == "assume" and self.assumed_stop_distance is None:
            raise ValueError("missing_stop 'assume' needs assumed_stop_distance")
        return self


class HrpConfig(_Strict):
    """The HRP target actor: rolling returns of the traded instruments → target weights.

    Attributes
    ----------
    method : "textbook" | "hrp" | "herc"
        ``textbook``: López de Prado (2016) exactly (pearson correlation distance, single
        linkage, quasi-diagonalisation, bisection at the midpoint, inverse-variance allocation).
        ``hrp``/``herc``: riskfolio-lib's HCPortfolio with the options below.
    codependence, linkage, risk_measure : str
        riskfolio-lib's ``codependence``, ``linkage`` and ``rm`` (``hrp``/``herc`` only; textbook
        is pearson/single/variance by definition).
    max_k : int
        riskfolio-lib's maximum number of clusters for HERC.
    leaf_order : bool
        riskfolio-lib's optimal leaf ordering (``hrp``/``herc`` only).
    tolerance : float | None
        HRP band: an instrument's weight may not exceed target × (1 + tolerance). ``null`` keeps
        the targets (for CVaR and forensics) without a band.
    bar_types : "auto" | list[str]
        Bars whose closes give the returns; ``auto`` collects every ``bar_type``/``bar_types``
        in the node's strategy configs.
    sampling : str
        One return per ``"bar"`` (every new bar timestamp) or per interval (``"1D"``, ``"1h"``).
    rebalance : str
        Recompute targets every ``"bar"`` sample or once per interval (``"1D"``, ``"7D"``).
    window : int
        Return periods in the rolling window (≥ 20).
    min_history : int
        Return periods needed before the first targets are published (≥ 10, ≤ window).
    returns : "simple" | "log"
        Return definition.
    """

    method: HrpMethod = "textbook"
    codependence: Codependence = "pearson"
    linkage: Linkage = "single"
    risk_measure: RiskMeasure = "MV"
    max_k: int = Field(default=10, ge=2, le=100)
    leaf_order: bool = True
    tolerance: float | None = Field(default=0.5, ge=0.0, le=100.0)
    bar_types: Literal["auto"] | list[str] = "auto"
    sampling: str = "bar"
    rebalance: str = "1D"
    window: int = Field(default=252, ge=20, le=100_000)
    min_history: int = Field(default=60, ge=10)
    returns: Literal["simple", "log"] = "simple"

    @field_validator("sampling", "rebalance")
    @classmethod
    def _interval(cls, value: str) -> str:
        interval_ns(value)
        return value

    @field_validator("bar_types")
    @classmethod
    def _bar_types(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, str):
            return value
        from nautilus_trader.model.data import BarType

        if not value:
            raise ValueError("list at least one bar type, or use 'auto'")
        for bar_type in value:
            try:
                BarType.from_str(bar_type)
            except ValueError as e:
                raise ValueError(f"{bar_type!r} is not a bar type: {e}") from None
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "HrpConfig":
        if self.min_history > self.window:
            raise ValueError(f"min_history ({self.min_history}) exceeds window ({self.window})")
        if self.method == "textbook":
            fields = self.model_fields_set
            if "codependence" in fields and self.codependence != "pearson":
                raise ValueError("textbook HRP uses pearson correlation by definition")
            if "linkage" in fields and self.linkage != "single":
                raise ValueError("textbook HRP uses single linkage by definition")
            if "risk_measure" in fields and self.risk_measure != "MV":
                raise ValueError("textbook HRP allocates by inverse variance (risk_measure MV)")
        return self


class KillSwitchConfig(_Strict):
    """How the kill switch behaves once tripped (by a limit or by the operator's topic).

    Attributes
    ----------
    timezone : str
        IANA time zone of the trading day used by ``limits.daily_loss``.
    day_start : str
        Local time ``HH:MM`` at which a trading day starts.
    auto_reset_daily_loss : bool
        A halt caused only by the daily loss limit re-arms at the next trading day.
    cancel_open_orders : bool
        On halt, cancel every open order that would increase exposure (entries, not exits).
    mirror_trading_state : bool
        Mirror the halt into Nautilus' own RiskEngine trading state (REDUCING / ACTIVE), so the
        engine and its ``events.risk`` subscribers see it too. Off by default: Nautilus'
        REDUCING is instrument-wide (it denies every BUY while the instrument's *net* position
        across all strategies is long, every SELL while it is short), so with two strategies on
        opposite sides of one instrument it denies the smaller side's closing order — after the
        gate approved it — and traps that position. The gate's own halt already lets only
        closing orders through, judged per strategy.
    """

    timezone: str = "UTC"
    day_start: str = "00:00"
    auto_reset_daily_loss: bool = True
    cancel_open_orders: bool = True
    mirror_trading_state: bool = False

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("day_start")
    @classmethod
    def _day_start(cls, value: str) -> str:
        try:
            dt.time.fromisoformat(value)
        except ValueError:
            raise ValueError(f"expected HH:MM, got {value!r}") from None
        return value

    def day_start_time(self) -> dt.time:
        return dt.time.fromisoformat(self.day_start)


class RiskConfig(_Strict):
    """The whole ``risk:`` section.

    Attributes
    ----------
    limits : LimitsConfig
        Hard limits (defaults: 25% per instrument, 1% risk per trade, gross and net 1× equity).
    hrp : HrpConfig | None
        The HRP target actor; ``null`` runs the gate without HRP targets (no band, no CVaR).
    kill_switch : KillSwitchConfig
        Kill-switch behaviour.
    allow_resize : bool
        Reduce an order that does not fit to the largest quantity that fits (else deny it).
    write_verdicts : bool
        Write ``risk_verdicts.csv`` into the run directory when the node finishes.
    component_id : str
        The gate's id in logs and forensics records.
    """

    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    hrp: HrpConfig | None = None
    kill_switch: KillSwitchConfig = Field(default_factory=KillSwitchConfig)
    allow_resize: bool = True
    write_verdicts: bool = True
    component_id: str = Field(default="RiskGate", pattern=r"^[A-Za-z0-9_.-]+$")

    @model_validator(mode="after")
    def _cvar_needs_returns(self) -> "RiskConfig":
        if self.limits.cvar is not None and self.hrp is None:
            raise ValueError(
                "limits.cvar needs the hrp section (its actor collects the rolling returns)",
            )
        cvar, hrp = self.limits.cvar, self.hrp
        if cvar is not None and hrp is not None and cvar.window > hrp.window:
            raise ValueError(
                f"limits.cvar.window ({cvar.window}) exceeds hrp.window ({hrp.window}): the "
                "actor keeps only hrp.window returns",
            )
        return self


def _location(loc: tuple[int | str, ...]) -> str:
    text = "risk"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def parse_risk_config(section: Mapping[str, Any] | None) -> RiskConfig:
    """Validate a ``risk:`` section; a ConfigError lists every bad field as ``risk.<path>``."""
    try:
        return RiskConfig.model_validate(dict(section or {}))
    except ValidationError as e:
        lines = []
        for err in e.errors():
            message = err["msg"].removeprefix("Value error, ")
            got = "" if err["type"] == "missing" else f" (got {err['input']!r})"
            if err["type"] in {"value_error", "assertion_error"} and isinstance(
                err["input"],
                dict,
            ):
                got = ""
            lines.append(f"  {_location(tuple(err['loc']))}: {message}{got}")
        raise ConfigError("invalid risk section\n" + "\n".join(lines)) from None
