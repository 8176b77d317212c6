"""The portfolio as the risk gate sees it: equity and worst-case exposure per instrument.

Exposure counts open positions plus open and in-flight orders across all strategies, at its
worst case per instrument and side:

    long_bound  = Σ long positions  + Σ leaves of BUY orders
    short_bound = Σ short positions − Σ leaves of SELL orders
    worst |exposure| = max(|long_bound|, |short_bound|) × price × multiplier

Positions of different strategies in one instrument do not offset each other: a strategy may
close its position at any time (closing orders always pass the gate), so another strategy's
opposite position is no hedge to count on. With these bounds, every outcome — any pending order
filled or not, any position closed or not — keeps each instrument within [short_bound,
long_bound], so limits checked on the bounds hold for all of them (price moves aside).

Reduce-only orders and closing orders can only move a position towards zero, which the bounds
already allow for: they add nothing. Contingent children (stop-loss/take-profit) of an entry that
has not filled yet add nothing either. Of an OCO/OUO group only the largest member counts. All
amounts are in the risk currency (the accounts' base currency), as floats: the order path avoids
Decimal and pandas.
"""

import math
from dataclasses import dataclass
from dataclasses import field
from operator import attrgetter
from typing import Any

from nautilus_trader.cache.cache import Cache
from nautilus_trader.common.component import Logger
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.identifiers import AccountId
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.orders import Order

_GROUPED_CONTINGENCIES = (ContingencyType.OCO, ContingencyType.OUO)
_ID_STRINGS: dict[Any, str] = {}


def id_str(identifier: Any) -> str:
    """``str(identifier)`` memoised (instrument and strategy ids: a few, seen on every order)."""
    text = _ID_STRINGS.get(identifier)
    if text is None:
        if len(_ID_STRINGS) > 100_000:
            _ID_STRINGS.clear()
        text = _ID_STRINGS[identifier] = str(identifier)
    return text


_id_value = attrgetter("value")
_position_id_value = attrgetter("id.value")


@dataclass(frozen=True, slots=True)
class InstrumentInfo:
    """Static facts about an instrument, converted once to floats."""

    instrument: Instrument
    multiplier: float
    size_increment: float
    size_precision: int
    min_quantity: float
    max_quantity: float
    taker_fee: float
    quote_currency: Currency
    is_inverse: bool

    @classmethod
    def of(cls, instrument: Instrument) -> "InstrumentInfo":
        increment = instrument.size_increment.as_double() if instrument.size_increment else 0.0
        return cls(
            instrument=instrument,
            multiplier=instrument.multiplier.as_double(),
            size_increment=increment or 10.0 ** (-instrument.size_precision),
            size_precision=instrument.size_precision,
            min_quantity=instrument.min_quantity.as_double() if instrument.min_quantity else 0.0,
            max_quantity=(
                instrument.max_quantity.as_double() if instrument.max_quantity else math.inf
            ),
            taker_fee=max(float(instrument.taker_fee), 0.0),
            quote_currency=instrument.quote_currency,
            is_inverse=bool(instrument.is_inverse),
        )

    def floor_quantity(self, quantity: float) -> float:
        """Round down to the size increment (never up: a resize must still fit)."""
        steps = math.floor(quantity / self.size_increment + 1e-9)
        return max(steps, 0) * self.size_increment


class Exposure:
    """One instrument's exposure, in units (signed) and money per unit.

    Attributes
    ----------
    position : float
        Net signed quantity of the open positions of all strategies.
    long_bound, short_bound : float
        Σ long (short) positions plus every pending buy (minus every pending sell), in units:
        the largest and smallest the instrument's position can become.
    pending_buy, pending_sell : float
        Leaves of the pending orders counted in the bounds (not reduce-only), in units.
    unit_value : float
        Price × multiplier × FX rate: account-currency value of one unit (NaN = no price).
    worst : float
        Worst-case |exposure| in money, ``max(|long_bound|, |short_bound|) × unit_value``
        (set by :meth:`Snapshot.finalize`).
    """

    __slots__ = (
        "long_bound",
        "pending_buy",
        "pending_sell",
        "position",
        "short_bound",
        "unit_value",
        "worst",
    )

    def __init__(self, unit_value: float = math.nan) -> None:
        # A plain class: a dataclass __init__ costs twice as much on the order path.
        self.position = 0.0
        self.long_bound = 0.0
        self.short_bound = 0.0
        self.pending_buy = 0.0
        self.pending_sell = 0.0
        self.unit_value = unit_value
        self.worst = 0.0

    def __repr__(self) -> str:
        return (
            f"Exposure(position={self.position}, long_bound={self.long_bound}, "
            f"short_bound={self.short_bound}, unit_value={self.unit_value})"
        )

    def compute_worst(self) -> float:
        long_units = self.long_bound if self.long_bound >= 0.0 else -self.long_bound
        short_units = self.short_bound if self.short_bound >= 0.0 else -self.short_bound
        units = long_units if long_units >= short_units else short_units
        self.worst = units * self.unit_value if units else 0.0
        return self.worst

    @property
    def signed_worst_units(self) -> float:
        """The bound with the larger magnitude, signed."""
        if abs(self.long_bound) >= abs(self.short_bound):
            return self.long_bound
        return self.short_bound


@dataclass(slots=True)
class Snapshot:
    """Equity and exposures at one moment (before the order being checked).

    Attributes
    ----------
    equity : float
        Mark-to-market equity, risk currency.
    exposures : dict[InstrumentId, Exposure]
        Instruments with a position or pending orders.
    by_strategy : dict[tuple[InstrumentId, StrategyId], float]
        Each strategy's net position per instrument, in units.
    pending_by_strategy : dict[tuple[InstrumentId, StrategyId], list[float]]
        Each strategy's pending [buy, sell] leaves per instrument (all orders, reduce-only
        included), in units.
    pending_notional : float
        Σ leaves × unit value of the pending orders counted in the bounds (their fill costs are
        deducted from the equity the caps use).
    gross : float
        Σ worst-case |exposure|.
    net_high, net_low : float
        Largest and smallest net exposure over all outcomes (Σ long / short bounds × value).
    """

    equity: float
    exposures: dict[InstrumentId, Exposure] = field(default_factory=dict)
    by_strategy: dict[tuple[InstrumentId, StrategyId], float] = field(default_factory=dict)
    pending_by_strategy: dict[tuple[InstrumentId, StrategyId], list[float]] = field(
        default_factory=dict,
    )
    pending_notional: float = 0.0
    gross: float = 0.0
    net_high: float = 0.0
    net_low: float = 0.0

    def reducible(self, instrument_id: InstrumentId, strategy_id: StrategyId, side: int) -> float:
        """Units a ``side`` order of ``strategy_id`` can trade that only close the strategy's
        own position, even if its other pending orders on that side fill first."""
        held = self.by_strategy.get((instrument_id, strategy_id), 0.0)
        pending = self.pending_by_strategy.get((instrument_id, strategy_id))
        if side < 0 and held > 0.0:
            return max(0.0, held - (pending[1] if pending else 0.0))
        if side > 0 and held < 0.0:
            return max(0.0, -held - (pending[0] if pending else 0.0))
        return 0.0

    def finalize(self) -> "Snapshot":
        """Compute every exposure's worst case and the aggregates."""
        gross = high = low = 0.0
        for e in self.exposures.values():
            gross += e.compute_worst()
            if e.long_bound:
                high += e.long_bound * e.unit_value
            if e.short_bound:
                low += e.short_bound * e.unit_value
        self.gross, self.net_high, self.net_low = gross, high, low
        return self

    def add_pending(self, exposure: Exposure, buy: float, sell: float) -> None:
        """Count more pending units on ``exposure`` (already in ``exposures``)."""
        self.pending_notional += (buy + sell) * exposure.unit_value
        old = exposure.worst
        exposure.long_bound += buy
        exposure.short_bound -= sell
        exposure.pending_buy += buy
        exposure.pending_sell += sell
        self.gross += exposure.compute_worst() - old
        self.net_high += buy * exposure.unit_value
        self.net_low -= sell * exposure.unit_value

    def net_bounds(self) -> tuple[float, float]:
        """(max net, min net) over fill outcomes, in money."""
        return self.net_high, self.net_low

    def net_position(self) -> float:
        """Σ signed position value (what is actually held), in money."""
        return sum(e.position * e.unit_value for e in self.exposures.values() if e.position)

    def weights(self) -> dict[str, float]:
        """Worst-case |exposure| / equity per instrument with any exposure."""
        equity = self.equity
        if equity <= 0.0:
            return {}
        return {id_str(i): e.worst / equity for i, e in self.exposures.items() if e.worst}


class PortfolioView:
    """Reads equity and exposures from a Nautilus cache; shared by backtest and live kernels.

    Prices come from the gate's price book (last bar close / trade / quote mid seen on the bus),
    falling back to the cache (``Cache.price``: trades, quotes, then bars).
    """

    def __init__(self, cache: Cache, logger: Logger) -> None:
        self._cache = cache
        self._log = logger
        self.prices: dict[InstrumentId, float] = {}
        self._infos: dict[InstrumentId, InstrumentInfo] = {}
        self._account_types: dict[AccountId, AccountType] = {}
        self.currency: Currency | None = None
        self._warned: set[str] = set()
        # multiplier × FX for instruments quoted in the risk currency (fixed).
        self._factors: dict[InstrumentId, float] = {}

    @property
    def cache(self) -> Cache:
        """The cache this view reads."""
        return self._cache

    # -- static data -------------------------------------------------------------------------

    def info(self, instrument_id: InstrumentId) -> InstrumentInfo | None:
        info = self._infos.get(instrument_id)
        if info is None:
            instrument = self._cache.instrument(instrument_id)
            if instrument is None:
                return None
            info = InstrumentInfo.of(instrument)
            self._infos[instrument_id] = info
        return info

    def risk_currency(self) -> Currency | None:
        """The base currency of the first account that has one (fixed once found)."""
        if self.currency is None:
            for account in self._cache.accounts():
                if account.base_currency is not None:
                    self.currency = account.base_currency
                    break
        return self.currency

    # -- prices ------------------------------------------------------------------------------

    def price(self, instrument_id: InstrumentId) -> float:
        """Last known price (NaN if none)."""
        price = self.prices.get(instrument_id)
        if price is not None:
            return price
        for price_type in (PriceType.LAST, PriceType.MID):
            cached = self._cache.price(instrument_id, price_type)
            if cached is not None:
                return cached.as_double()
        return math.nan

    def fx(self, info: InstrumentInfo) -> float:
        """Rate from the instrument's quote currency to the risk currency (NaN if unknown)."""
        currency = self.risk_currency()
        if currency is None or info.quote_currency == currency:
            return 1.0
        rate = self._cache.get_xrate(
            info.instrument.id.venue,
            info.quote_currency,
            currency,
            PriceType.MID,
        )
        return float(rate) if rate else math.nan

    def unit_factor(self, instrument_id: InstrumentId) -> float:
        """Multiplier × FX rate of one instrument (NaN if the instrument is unknown)."""
        factor = self._factors.get(instrument_id)
        if factor is not None:
            return factor
        info = self.info(instrument_id)
        if info is None:
            return math.nan
        if info.quote_currency == self.risk_currency():
            self._factors[instrument_id] = info.multiplier
            return info.multiplier
        return info.multiplier * self.fx(info)

    def unit_value(self, instrument_id: InstrumentId) -> float:
        """Price × multiplier × FX: account-currency value of one unit now (NaN if unknown)."""
        return self.price(instrument_id) * self.unit_factor(instrument_id)

    # -- accounts ----------------------------------------------------------------------------

    def _is_cash(self, account_id: AccountId | None) -> bool:
        if account_id is None:
            return True
        kind = self._account_types.get(account_id)
        if kind is None:
            account = self._cache.account(account_id)
            kind = account.type if account is not None else AccountType.CASH
            self._account_types[account_id] = kind
        return kind == AccountType.CASH

    def _single_account_kind(self, accounts: list[Any]) -> bool | None:
        """True/False when every account is cash/margin (the usual case: no lookup per
        position), None when they are mixed."""
        kinds = {account.type == AccountType.CASH for account in accounts}
        return kinds.pop() if len(kinds) == 1 else None

    def _balances(self, accounts: list[Any]) -> float:
        currency = self.risk_currency()
        total = 0.0
        for account in accounts:
            for balance_currency, money in account.balances_total().items():
                amount = money.as_double()
                if currency is None or balance_currency == currency:
                    total += amount
                    continue
                rate = self._cache.get_xrate(
                    Venue(account.id.get_issuer()),
                    balance_currency,
                    currency,
                    PriceType.MID,
                )
                if rate:
                    total += amount * rate
                else:
                    self._warn_once(
                        f"fx:{balance_currency}",
                        f"Balance in {balance_currency} left out of equity: no rate to {currency}",
                    )
        return total

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned:
            self._warned.add(key)
            self._log.warning(message)

    # -- snapshot ----------------------------------------------------------------------------

    def equity(self) -> float:
        """Mark-to-market equity: balances + positions (cash accounts: market value; margin
        accounts: unrealised PnL), in the risk currency."""
        return self._positions({})

    def _positions(
        self,
        exposures: dict[InstrumentId, Exposure],
        by_strategy: dict[tuple[InstrumentId, StrategyId], float] | None = None,
    ) -> float:
        """Equity, filling ``exposures`` with every open position (net, and long/short bounds
        by side) and ``by_strategy`` with each strategy's net quantity per instrument."""
        accounts = self._cache.accounts()
        equity = self._balances(accounts)
        all_cash = self._single_account_kind(accounts)
        factors = self._factors
        prices = self.prices
        # In id order: the cache returns its positions in the order of a set of ids, whose string
        # hashes change with each process's hash seed, and float sums depend on their order.
        for position in sorted(self._cache.positions_open(), key=_position_id_value):
            instrument_id = position.instrument_id
            factor = factors.get(instrument_id)
            if factor is None:
                factor = self.unit_factor(instrument_id)
                if factor != factor:  # NaN: unknown instrument
                    factor = 1.0
            exposure = exposures.get(instrument_id)
            if exposure is None:
                price = prices.get(instrument_id)
                if price is None:
                    price = self.price(instrument_id)
                    if price != price:  # NaN: no price seen yet, value at entry
                        price = position.avg_px_open
                exposure = Exposure(price * factor)
                exposures[instrument_id] = exposure
            qty = position.signed_qty
            exposure.position += qty
            if qty > 0.0:
                exposure.long_bound += qty
            else:
                exposure.short_bound += qty
            if by_strategy is not None:
                key = (instrument_id, position.strategy_id)
                by_strategy[key] = by_strategy.get(key, 0.0) + qty
            is_cash = all_cash if all_cash is not None else self._is_cash(position.account_id)
            if is_cash:
                equity += qty * exposure.unit_value
            else:  # margin: balance + unrealised PnL
                equity += qty * (exposure.unit_value - position.avg_px_open * factor)
        return equity

    def snapshot(
        self,
        exclude: set[ClientOrderId] | frozenset[ClientOrderId],
        pending: dict[ClientOrderId, Order],
    ) -> Snapshot:
        """Equity and worst-case exposures, leaving out the orders in ``exclude`` (the command
        being checked). ``pending`` holds orders the gate approved that may not have reached the
        cache's open/in-flight indexes yet (live engines queue commands)."""
        cache = self._cache
        snapshot = Snapshot(equity=0.0)
        exposures = snapshot.exposures
        snapshot.equity = self._positions(exposures, snapshot.by_strategy)
        by_strategy_pending = snapshot.pending_by_strategy

        # A new set: the cache returns its own index sets, which must not be written to.
        order_ids = (
            cache.client_order_ids_open()
            | cache.client_order_ids_inflight()
            | cache.client_order_ids_emulated()
        )
        for client_order_id, order in list(pending.items()):
            if order.status != OrderStatus.INITIALIZED:
                del pending[client_order_id]  # now in the cache's indexes, or closed
            else:
                order_ids.add(client_order_id)
        groups: dict[frozenset, tuple[Order, float, float]] = {}
        buy_side = OrderSide.BUY
        pending_get = pending.get
        cache_order = cache.order
        # Parent id -> the parent has not filled (its children are dormant). Exact within this
        # call: the cache cannot change while the snapshot reads it, and a bracket's stop-loss
        # and take-profit share one parent, so each parent is looked up once, not per child.
        dormant_parents: dict[ClientOrderId, bool] = {}
        # In id order (a set's order follows the ids' string hashes, seeded per process): the
        # pending sums below are then the same in every process, to the last bit.
        for client_order_id in sorted(order_ids, key=_id_value):
            if client_order_id in exclude:
                continue
            order = pending_get(client_order_id) or cache_order(client_order_id)
            if order is None or order.is_closed:
                continue
            parent_id = order.parent_order_id
            if parent_id is not None:  # is_dormant_child, memoised per parent
                dormant = dormant_parents.get(parent_id)
                if dormant is None:
                    parent = cache_order(parent_id)
                    dormant = parent is not None and parent.filled_qty.as_double() == 0.0
                    dormant_parents[parent_id] = dormant
                if dormant:
                    continue
            if order.is_quote_quantity:
                leaves = order_leaves_units(order, self)
            else:  # order_leaves_units, inlined for the usual case
                leaves = order.leaves_qty.as_double()
            if leaves <= 0.0:
                continue
            key = (order.instrument_id, order.strategy_id)
            sums = by_strategy_pending.get(key)
            if sums is None:
                sums = by_strategy_pending[key] = [0.0, 0.0]
            if order.side == buy_side:
                sums[0] += leaves
                buy, sell = leaves, 0.0
            else:
                sums[1] += leaves
                buy, sell = 0.0, leaves
            if order.is_reduce_only:
                continue  # moves a position towards zero: within the bounds already
            if order.contingency_type in _GROUPED_CONTINGENCIES and order.linked_order_ids:
                # Of an OCO/OUO group at most one member fills: count the largest.
                group = frozenset((*order.linked_order_ids, client_order_id))
                previous = groups.get(group)
                if previous is not None:
                    buy, sell = max(buy, previous[1]), max(sell, previous[2])
                groups[group] = (order, buy, sell)
                continue
            snapshot.pending_notional += self._add_pending(exposures, order, buy, sell)
        for order, buy, sell in groups.values():
            snapshot.pending_notional += self._add_pending(exposures, order, buy, sell)
        return snapshot.finalize()

    def _add_pending(
        self,
        exposures: dict[InstrumentId, Exposure],
        order: Order,
        buy: float,
        sell: float,
    ) -> float:
        """Add an order's leaves to its instrument's bounds; returns their value."""
        instrument_id = order.instrument_id
        exposure = exposures.get(instrument_id)
        if exposure is None:
            exposure = Exposure(unit_value=self.unit_value(instrument_id))
            exposures[instrument_id] = exposure
        if exposure.unit_value != exposure.unit_value:  # NaN: no mark yet, value at its price
            exposure.unit_value = order_price(order) * self.unit_factor(instrument_id)
        exposure.long_bound += buy
        exposure.short_bound -= sell
        exposure.pending_buy += buy
        exposure.pending_sell += sell
        return (buy + sell) * exposure.unit_value

    def exposure(self, snapshot: Snapshot, instrument_id: InstrumentId) -> Exposure:
        """The instrument's exposure in ``snapshot`` (created flat, worst 0, if absent)."""
        exposure = snapshot.exposures.get(instrument_id)
        if exposure is None:
            exposure = Exposure(unit_value=self.unit_value(instrument_id))
            snapshot.exposures[instrument_id] = exposure
        return exposure


def is_dormant_child(order: Order, cache: Cache) -> bool:
    """Whether ``order`` is a contingent child (stop-loss/take-profit) of an entry that has not
    filled yet: it can only undo what the entry adds, so it adds no exposure of its own."""
    parent_id = order.parent_order_id
    if parent_id is None:
        return False
    parent = cache.order(parent_id)
    return parent is not None and parent.filled_qty.as_double() == 0.0


def counts_as_opening(order: Order, cache: Cache) -> bool:
    """Whether a pending order counts in the bounds: not reduce-only, not a dormant child."""
    return not order.is_reduce_only and not is_dormant_child(order, cache)


def order_leaves_units(order: Order, view: PortfolioView) -> float:
    """Unfilled quantity in units (a quote-quantity order is converted at its price)."""
    leaves = order.leaves_qty.as_double()
    if order.is_quote_quantity:
        price = order_price(order)
        if math.isnan(price):
            price = view.price(order.instrument_id)
        return leaves / price if price > 0.0 else 0.0
    return leaves


def order_price(order: Order) -> float:
    """The order's own limit (or, for stops, trigger) price; NaN for market orders."""
    if order.has_price and order.price is not None:
        return order.price.as_double()
    if order.has_trigger_price and order.trigger_price is not None:
        return order.trigger_price.as_double()
    return math.nan
