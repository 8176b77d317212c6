"""The gate's decision as a pure function: (portfolio snapshot, limits, order) → verdict.

:func:`evaluate` reads no cache, bus or clock: everything it needs arrives as plain values — a
:class:`~risk_engine.portfolio_state.Snapshot`, the :class:`RiskLimits` in force and an
:class:`OrderRequest` describing the order. The gate builds those from a Nautilus kernel; tests
build them by hand.

Quantities are in the order's own quantity unit (``requested``, ``approved``) or in instrument
units (``units``: a quote-quantity order's quantity converted at its price); money is in the risk
currency (the accounts' base currency).
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field

from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId

from risk_engine.limits import LimitResult
from risk_engine.limits import LimitSet
from risk_engine.limits import OrderIntent
from risk_engine.limits import Scenarios
from risk_engine.portfolio_state import Exposure
from risk_engine.portfolio_state import InstrumentInfo
from risk_engine.portfolio_state import Snapshot

__all__ = ["OrderRequest", "RiskLimits", "Verdict", "evaluate"]

APPROVE = "approve"
RESIZE = "resize"
DENY = "deny"


@dataclass(slots=True)
class Verdict:
    """The gate's answer for one order.

    Attributes
    ----------
    verdict : str
        ``approve``, ``resize`` or ``deny``.
    code : str
        Reason code: the binding limit (``max_weight``, ``kill_switch``, ...), ``reducing`` for a
        risk-reducing approval, ``""`` for a plain approval.
    reason : str
        Human-readable reason (what the strategy's ``on_order_denied`` receives).
    requested, approved : float
        Quantities in the order's own quantity unit.
    results : list[LimitResult]
        Each limit's answer (empty for reducing orders).
    """

    verdict: str
    code: str
    reason: str
    requested: float
    approved: float
    results: list[LimitResult]


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """What the gate is asked: an order, or the increase a modify asks for.

    Attributes
    ----------
    instrument_id, strategy_id : InstrumentId, StrategyId
        Whose order, on what.
    side : int
        +1 buy, −1 sell.
    requested : float
        Quantity asked for, in the order's quantity unit (> 0).
    units : float
        The same in instrument units (differs from ``requested`` for quote-quantity orders).
    price : float
        The order's own limit (stops: trigger) price; NaN for market orders.
    stop_price : float | None
        The price that bounds the order's loss (its bracket's stop-loss or ``stop_loss`` tag).
    reduce_only : bool
        The order can only reduce a position.
    instrument : InstrumentInfo | None
        The instrument's static facts; None when the cache does not know it.
    fx : float
        Rate from the instrument's quote currency to the risk currency (NaN if unknown).
    """

    instrument_id: InstrumentId
    strategy_id: StrategyId
    side: int
    requested: float
    units: float
    price: float
    stop_price: float | None
    reduce_only: bool
    instrument: InstrumentInfo | None
    fx: float = 1.0


@dataclass(slots=True)
class RiskLimits:
    """The limits in force for one evaluation.

    Attributes
    ----------
    checks : LimitSet
        The configured exposure, trade-risk, notional and CVaR limits.
    allow_resize : bool
        Whether an order may be cut to what fits (else it is denied).
    slippage : float
        Slippage allowance added to the taker fee, as a fraction of notional.
    targets : Mapping[InstrumentId, float]
        HRP target weights (empty before the first targets).
    scenarios : Scenarios | None
        Return scenarios for the CVaR limit (None before the first targets, or without CVaR).
    halt : str | None
        The kill switch's active halts, described (None while trading is allowed).
    """

    checks: LimitSet
    allow_resize: bool
    slippage: float
    targets: Mapping[InstrumentId, float] = field(default_factory=dict)
    scenarios: Scenarios | None = None
    halt: str | None = None


def evaluate(request: OrderRequest, snapshot: Snapshot, limits: RiskLimits) -> Verdict:
    """The verdict for ``request`` on ``snapshot`` under ``limits``.

    The one write: an instrument missing from ``snapshot`` is added flat, and an exposure without
    a mark gets the order's own valuation, so the later legs of an order list and the verdict's
    record value it the same way.
    """
    requested = request.requested
    info = request.instrument
    if info is None:
        # Nautilus' own engine denies orders for unknown instruments, with its reason.
        return Verdict(APPROVE, "unknown_instrument", "", requested, requested, [])
    if info.is_inverse:
        return Verdict(
            DENY,
            "unsupported",
            f"inverse instrument {request.instrument_id}: the gate values linear instruments",
            requested,
            0.0,
            [],
        )
    exposure = snapshot.exposures.get(request.instrument_id)
    if exposure is None:
        exposure = snapshot.exposures[request.instrument_id] = Exposure()
    side = request.side
    units = request.units
    per_unit = units / requested if requested > 0.0 else 1.0  # quote-quantity orders
    closing = snapshot.reducible(request.instrument_id, request.strategy_id, side)
    if request.reduce_only or units <= closing + 1e-12 * max(units, 1.0):
        return Verdict(APPROVE, "reducing", "risk-reducing", requested, requested, [])
    if limits.halt is not None:
        reason = f"kill switch halted ({limits.halt})"
        return _sized("kill_switch", reason, info, requested, closing / per_unit, [], limits)
    fx = request.fx
    unit_value = exposure.unit_value
    if math.isnan(unit_value) or unit_value <= 0.0:
        unit_value = request.price * info.multiplier * fx
        if math.isnan(unit_value) or unit_value <= 0.0:
            return Verdict(
                DENY,
                "no_price",
                f"no price for {request.instrument_id} to value the order",
                requested,
                0.0,
                [],
            )
        exposure.unit_value = unit_value
    # The order's own price (limit/trigger), else the mark implied by the unit value.
    entry_price = request.price
    if math.isnan(entry_price) or entry_price <= 0.0:
        entry_price = unit_value / (info.multiplier * fx)
    entry_value = entry_price * info.multiplier * fx
    stop_distance = None
    stop_price = request.stop_price
    if stop_price is not None and not math.isnan(stop_price):
        stop_distance = abs(entry_price - stop_price) * info.multiplier * fx
    intent = OrderIntent(
        instrument_id=request.instrument_id,
        side=side,
        quantity=units,
        unit_value=unit_value,
        entry_value=entry_value,
        stop_distance=stop_distance,
        fee_rate=info.taker_fee + limits.slippage,
        size_increment=info.size_increment,
        closing=closing,
    )
    results = limits.checks.check(
        snapshot,
        exposure,
        intent,
        limits.targets.get(request.instrument_id),
        limits.scenarios,
    )
    binding: LimitResult | None = None
    fit = units
    for result in results:
        if result.max_quantity < fit:
            fit = max(result.max_quantity, 0.0)
            binding = result
    if binding is None:
        return Verdict(APPROVE, "", "", requested, requested, results)
    reason = _reason(binding, snapshot.equity, units, fit)
    return _sized(binding.name, reason, info, requested, fit / per_unit, results, limits)


def _sized(
    code: str,
    reason: str,
    info: InstrumentInfo,
    requested: float,
    allowed: float,
    results: list[LimitResult],
    limits: RiskLimits,
) -> Verdict:
    """Resize to ``allowed`` (rounded down) or deny when nothing tradable fits."""
    approved = info.floor_quantity(allowed)
    minimum = max(info.min_quantity, info.size_increment)
    if approved >= requested - 1e-9 * requested:
        return Verdict(APPROVE, "", "", requested, requested, results)
    if not limits.allow_resize or approved < minimum - 1e-12:
        return Verdict(DENY, code, reason, requested, 0.0, results)
    return Verdict(RESIZE, code, reason, requested, approved, results)


def _reason(binding: LimitResult, equity: float, requested: float, fit: float) -> str:
    name = binding.name
    if name == "order_notional":
        return (
            f"order_notional: {binding.value:,.2f} exceeds max order notional "
            f"{binding.cap:,.2f} (fits {fit:g} of {requested:g})"
        )
    if name == "trade_risk:no_stop":
        return "trade_risk: the order has no stop and missing_stop is 'deny'"
    if name == "equity":
        return f"equity: non-positive equity {equity:,.2f}"
    return (
        f"{name}: limit {binding.cap:.4g} of equity {equity:,.2f}, "
        f"before the order {binding.value:.4g} (fits {fit:g} of {requested:g})"
    )
