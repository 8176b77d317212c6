"""Instrument specs: a small YAML per instrument, validated with pydantic, built into Nautilus.

One file describes one instrument (``kind`` picks the Nautilus class)::

    kind: equity                 # equity | currency_pair | crypto_perpetual | futures_contract
    id: SPY.XNAS                 # SYMBOL.VENUE
    currency: USD
    price_precision: 2
    lot_size: 1
    maker_fee: 0.0001
    taker_fee: 0.0001
    timezone: America/New_York   # the exchange's zone: naive daily dates and gap classes use it
    session_close: "16:00"       # daily (date-only) bars are stamped at this local time

Unknown keys and wrong types are :class:`~grodt.core.errors.ConfigError` naming the file
and the field
path. Nautilus imports stay inside functions so that loading a spec is cheap.
"""

import datetime as dt
import zoneinfo
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING
from typing import Annotated
from typing import Any
from typing import Literal

import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import TypeAdapter
from pydantic import ValidationError
from pydantic import field_validator
from pydantic import model_validator

from catalogs.calendars import check_calendar_name
from grodt.core.errors import ConfigError

if TYPE_CHECKING:
    from nautilus_trader.model.instruments import Instrument

PRICE_TYPES = ("LAST", "BID", "ASK", "MID")


class _StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _InstrumentSpecBase(_StrictModel):
    """Fields shared by every instrument kind.

    Fees and margins are fractions of notional (``0.0001`` = 1 bp). ``price_increment`` defaults to
    one unit of the last decimal (``10^-price_precision``).
    """

    id: str = Field(pattern=r"^[^.\s]+\.[^.\s]+$", description="SYMBOL.VENUE")
    raw_symbol: str | None = None
    price_precision: int = Field(ge=0, le=16)
    size_precision: int = Field(default=0, ge=0, le=16, description="Decimal places of volume.")
    price_increment: Decimal | None = Field(default=None, gt=0)
    maker_fee: Decimal = Decimal(0)
    taker_fee: Decimal = Decimal(0)
    margin_init: Decimal = Field(default=Decimal(0), ge=0)
    margin_maint: Decimal = Field(default=Decimal(0), ge=0)
    timezone: str = "UTC"
    session_close: dt.time | None = Field(
        default=None,
        description="Local close time stamped on date-only (daily) bars, e.g. '16:00'.",
    )
    allow_negative_prices: bool = Field(
        default=False,
        description="Skip the 'positive' check (spreads, some energy futures).",
    )
    price_type: Literal["LAST", "BID", "ASK", "MID"] = "LAST"
    calendar: str | None = Field(
        default=None,
        description="exchange-calendars name (XNYS, XLON, CMES, 24/7, ...): only bars missing "
        "from its trading sessions are gap findings.",
    )
    dayfirst: bool | None = Field(
        default=None,
        description="Order of the vendor's numeric dates (02/01/2024): true day-first, false "
        "month-first; unset detects it per file. A read option given by the caller wins.",
    )

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from None
        return value

    @field_validator("calendar")
    @classmethod
    def _known_calendar(cls, value: str | None) -> str | None:
        return None if value is None else check_calendar_name(value)

    @model_validator(mode="after")
    def _increment_fits_precision(self) -> "_InstrumentSpecBase":
        if self.price_increment is not None:
            _check_decimals(self.price_increment, self.price_precision, "price_increment")
        return self

    @property
    def symbol(self) -> str:
        return self.id.split(".", 1)[0]

    def resolved_price_increment(self) -> Decimal:
        if self.price_increment is not None:
            return self.price_increment
        return Decimal(1).scaleb(-self.price_precision)

    def bar_type(self, bar_spec: str) -> str:
        """The Nautilus bar type string, e.g. ``SPY.XNAS-1-MINUTE-LAST-EXTERNAL``.

        Parameters
        ----------
        bar_spec : str
            ``STEP-AGGREGATION``, e.g. ``1-MINUTE`` or ``1-DAY``.
        """
        return f"{self.id}-{bar_spec}-{self.price_type}-EXTERNAL"

    def to_instrument(self) -> "Instrument":
        """Build the Nautilus instrument (``ts_event = ts_init = 0``, as Nautilus' test kit)."""
        raise NotImplementedError


class EquitySpec(_InstrumentSpecBase):
    """A cash equity or an index traded like one (Nautilus ``Equity``, size precision 0)."""

    kind: Literal["equity"]
    currency: str
    size_precision: Literal[0] = 0  # Nautilus: no fractional shares
    lot_size: int = Field(default=1, ge=1)
    isin: str | None = None

    def to_instrument(self) -> "Instrument":
        from nautilus_trader.model.instruments import Equity
        from nautilus_trader.model.objects import Quantity

        return Equity(
            instrument_id=_instrument_id(self.id),
            raw_symbol=_symbol(self.raw_symbol or self.symbol),
            currency=_currency(self.currency, "currency"),
            price_precision=self.price_precision,
            price_increment=_price(self.resolved_price_increment(), self.price_precision),
            lot_size=Quantity.from_int(self.lot_size),
            ts_event=0,
            ts_init=0,
            margin_init=self.margin_init,
            margin_maint=self.margin_maint,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
            isin=self.isin,
        )


class CurrencyPairSpec(_InstrumentSpecBase):
    """A spot FX (or spot crypto) pair (Nautilus ``CurrencyPair``)."""

    kind: Literal["currency_pair"]
    base_currency: str
    quote_currency: str
    size_increment: Decimal | None = Field(default=None, gt=0)
    lot_size: Decimal | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _size_increment_fits(self) -> "CurrencyPairSpec":
        if self.size_increment is not None:
            _check_decimals(self.size_increment, self.size_precision, "size_increment")
        return self

    def to_instrument(self) -> "Instrument":
        from nautilus_trader.model.instruments import CurrencyPair

        return CurrencyPair(
            instrument_id=_instrument_id(self.id),
            raw_symbol=_symbol(self.raw_symbol or self.symbol),
            base_currency=_currency(self.base_currency, "base_currency"),
            quote_currency=_currency(self.quote_currency, "quote_currency"),
            price_precision=self.price_precision,
            size_precision=self.size_precision,
            price_increment=_price(self.resolved_price_increment(), self.price_precision),
            size_increment=_quantity(
                self.size_increment or Decimal(1).scaleb(-self.size_precision),
                self.size_precision,
            ),
            lot_size=None
            if self.lot_size is None
            else _quantity(self.lot_size, self.size_precision),
            ts_event=0,
            ts_init=0,
            margin_init=self.margin_init,
            margin_maint=self.margin_maint,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
        )


class CryptoPerpetualSpec(_InstrumentSpecBase):
    """A perpetual swap (Nautilus ``CryptoPerpetual``)."""

    kind: Literal["crypto_perpetual"]
    base_currency: str
    quote_currency: str
    settlement_currency: str
    is_inverse: bool = False
    size_increment: Decimal | None = Field(default=None, gt=0)
    multiplier: Decimal = Field(default=Decimal(1), gt=0)
    lot_size: Decimal = Field(default=Decimal(1), gt=0)

    @model_validator(mode="after")
    def _size_increment_fits(self) -> "CryptoPerpetualSpec":
        if self.size_increment is not None:
            _check_decimals(self.size_increment, self.size_precision, "size_increment")
        return self

    def to_instrument(self) -> "Instrument":
        from nautilus_trader.model.instruments import CryptoPerpetual

        return CryptoPerpetual(
            instrument_id=_instrument_id(self.id),
            raw_symbol=_symbol(self.raw_symbol or self.symbol),
            base_currency=_currency(self.base_currency, "base_currency"),
            quote_currency=_currency(self.quote_currency, "quote_currency"),
            settlement_currency=_currency(self.settlement_currency, "settlement_currency"),
            is_inverse=self.is_inverse,
            price_precision=self.price_precision,
            size_precision=self.size_precision,
            price_increment=_price(self.resolved_price_increment(), self.price_precision),
            size_increment=_quantity(
                self.size_increment or Decimal(1).scaleb(-self.size_precision),
                self.size_precision,
            ),
            ts_event=0,
            ts_init=0,
            multiplier=_quantity(self.multiplier, _decimals(self.multiplier)),
            lot_size=_quantity(self.lot_size, self.size_precision),
            margin_init=self.margin_init,
            margin_maint=self.margin_maint,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
        )


class FuturesContractSpec(_InstrumentSpecBase):
    """A dated futures contract (Nautilus ``FuturesContract``, size precision 0)."""

    kind: Literal["futures_contract"]
    currency: str
    size_precision: Literal[0] = 0  # Nautilus: whole contracts
    asset_class: Literal[
        "FX", "EQUITY", "COMMODITY", "DEBT", "INDEX", "CRYPTOCURRENCY", "ALTERNATIVE"
    ] = "INDEX"
    underlying: str
    activation: dt.datetime | dt.date
    expiration: dt.datetime | dt.date
    multiplier: int = Field(default=1, ge=1)
    lot_size: int = Field(default=1, ge=1)
    exchange: str | None = Field(default=None, description="ISO 10383 MIC, e.g. XCME")

    @model_validator(mode="after")
    def _expires_after_activation(self) -> "FuturesContractSpec":
        if _to_unix_nanos(self.expiration) <= _to_unix_nanos(self.activation):
            raise ValueError("expiration must be after activation")
        return self

    def to_instrument(self) -> "Instrument":
        from nautilus_trader.model.enums import AssetClass
        from nautilus_trader.model.instruments import FuturesContract
        from nautilus_trader.model.objects import Quantity

        return FuturesContract(
            instrument_id=_instrument_id(self.id),
            raw_symbol=_symbol(self.raw_symbol or self.symbol),
            asset_class=AssetClass[self.asset_class],
            currency=_currency(self.currency, "currency"),
            price_precision=self.price_precision,
            price_increment=_price(self.resolved_price_increment(), self.price_precision),
            multiplier=Quantity.from_int(self.multiplier),
            lot_size=Quantity.from_int(self.lot_size),
            underlying=self.underlying,
            activation_ns=_to_unix_nanos(self.activation),
            expiration_ns=_to_unix_nanos(self.expiration),
            ts_event=0,
            ts_init=0,
            margin_init=self.margin_init,
            margin_maint=self.margin_maint,
            maker_fee=self.maker_fee,
            taker_fee=self.taker_fee,
            exchange=self.exchange,
        )


InstrumentSpec = Annotated[
    EquitySpec | CurrencyPairSpec | CryptoPerpetualSpec | FuturesContractSpec,
    Field(discriminator="kind"),
]
"""Any instrument spec; ``kind`` selects the model."""

_SPEC_ADAPTER: TypeAdapter[Any] = TypeAdapter(InstrumentSpec)

SPECS_DIR = Path(__file__).parent / "specs"
"""The example specs shipped with the package (``catalogs/specs/*.yaml``)."""


def parse_instrument_spec(data: Any, source: str = "<spec>") -> InstrumentSpec:
    """Validate a spec mapping (already parsed YAML).

    Raises
    ------
    ConfigError
        Naming ``source`` and the field path of every problem, and checking that the currencies
        are known to Nautilus.
    """
    if not isinstance(data, dict):
        raise ConfigError(
            f"{source}: an instrument spec must be a mapping, got {type(data).__name__}"
        )
    try:
        spec = _SPEC_ADAPTER.validate_python(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{_format_location(error['loc'], data)}: {error['msg']}" for error in e.errors()
        )
        raise ConfigError(f"{source}: {problems}") from None
    _check_currencies(spec, source)
    return spec


def load_instrument_spec(path: str | Path) -> InstrumentSpec:
    """Read and validate one instrument spec YAML file.

    Raises
    ------
    ConfigError
        If the file is missing, not YAML, or invalid (the message names file and field path).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML: {e}") from None
    return parse_instrument_spec(data, source=str(path))


def _format_location(loc: tuple[int | str, ...], data: dict[str, Any]) -> str:
    # A discriminated union puts the tag first (('equity', 'price_precision')): drop it.
    parts = list(loc)
    if parts and parts[0] == data.get("kind") and len(parts) > 1:
        parts = parts[1:]
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "<root>"


def _check_currencies(spec: InstrumentSpec, source: str) -> None:
    from nautilus_trader.model.objects import Currency

    for field in ("currency", "base_currency", "quote_currency", "settlement_currency"):
        code = getattr(spec, field, None)
        if code is not None and Currency.from_str(code, strict=True) is None:
            raise ConfigError(f"{source}: {field}: currency {code!r} is not known to Nautilus")


def _check_decimals(value: Decimal, precision: int, field: str) -> None:
    if _decimals(value) > precision:
        raise ValueError(f"{field} {value} has more decimals than the precision {precision}")


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _to_unix_nanos(value: dt.datetime | dt.date) -> int:
    if not isinstance(value, dt.datetime):
        value = dt.datetime(value.year, value.month, value.day)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000


def _instrument_id(value: str) -> Any:
    from nautilus_trader.model.identifiers import InstrumentId

    return InstrumentId.from_str(value)


def _symbol(value: str) -> Any:
    from nautilus_trader.model.identifiers import Symbol

    return Symbol(value)


def _currency(code: str, field: str) -> Any:
    from nautilus_trader.model.objects import Currency

    currency = Currency.from_str(code, strict=True)
    if currency is None:
        raise ConfigError(f"{field}: currency {code!r} is not known to Nautilus")
    return currency


def _price(value: Decimal, precision: int) -> Any:
    from nautilus_trader.model.objects import Price

    return Price(value, precision)


def _quantity(value: Decimal, precision: int) -> Any:
    from nautilus_trader.model.objects import Quantity

    return Quantity(value, precision)
