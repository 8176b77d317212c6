"""Position sizing: pure functions, no engine state.

Effective size of a strategy (``RegimeAwareStrategy``)::

    regime_scale = Σ_r p(r) · affinity(r)   (soft gating; models.regime.gating)
                 = 1 if affinity(argmax_r p(r)) > 0 else 0     (hard gating)
    allocated    = account_equity · allocation_weight
    base_qty     = min(allocated · risk_per_trade / (stop_distance · multiplier),
                       max_notional / (price · multiplier))
    quantity     = floor_to_lot(base_qty · signal_strength · regime_scale)

``stop_distance`` is ``stop_atr_multiple · ATR`` in price units, so a full-size trade stopped out
loses ``risk_per_trade`` of the allocated equity (plus slippage and fees). The cap is applied
before the regime and signal scaling, so the scaling stays proportional even when the cap binds.

:func:`plan_entry` is the whole entry of a rule strategy from its inputs — skip checks, the cap
(:func:`notional_cap`), the size and the bracket's stop and target prices — so that the strategy
and deterministic replay (``grodt.forensics.decision_replay``) run the same code.
"""

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING
from decimal import ROUND_FLOOR
from decimal import Decimal

__all__ = [
    "EntryPlan",
    "SizeBreakdown",
    "entry_gate",
    "floor_to_lot",
    "notional_cap",
    "plan_entry",
    "position_size",
    "round_to_tick",
]

# Share of the free cash a CASH account's entry may use after the taker fee: a margin for the
# fill walking away from the decision price.
_FREE_CASH_USE = 0.999


def floor_to_lot(quantity: float, lot: Decimal) -> Decimal:
    """``quantity`` rounded down to a whole number of ``lot`` (units); 0 for non-positive or
    non-finite input."""
    if not math.isfinite(quantity) or quantity <= 0.0:
        return Decimal(0)
    lots = (Decimal(repr(quantity)) / lot).to_integral_value(rounding=ROUND_FLOOR)
    return lots * lot


def round_to_tick(price: float, tick: Decimal, up: bool) -> Decimal:
    """``price`` rounded to a multiple of ``tick``: up (ceiling) or down (floor).

    Stops and targets are rounded away from the entry (a long's stop down, its target up), so
    rounding never tightens the risk or the reward.
    """
    ticks = (Decimal(repr(price)) / tick).to_integral_value(
        rounding=ROUND_CEILING if up else ROUND_FLOOR,
    )
    return ticks * tick


@dataclass(frozen=True, slots=True)
class SizeBreakdown:
    """Every term of one sizing computation (recorded in decision records).

    Attributes
    ----------
    equity : float
        Account equity, account currency.
    allocated_equity : float
        ``equity · allocation_weight``.
    risk_amount : float
        ``allocated_equity · risk_per_trade``: loss at the stop for a full-size trade.
    stop_distance : float
        Price units.
    risk_quantity : float
        Units that lose ``risk_amount`` at the stop.
    cap_quantity : float
        Units worth ``max_notional`` (``inf`` without a cap).
    base_quantity : float
        ``min(risk_quantity, cap_quantity)``: size at full signal strength and regime scale 1.
    regime_scale : float
        Regime multiplier in [0, 1].
    strength : float
        Signal strength multiplier in [0, 1].
    quantity : Decimal
        Final size in units, a whole number of lots (0 = no trade).
    """

    equity: float
    allocated_equity: float
    risk_amount: float
    stop_distance: float
    risk_quantity: float
    cap_quantity: float
    base_quantity: float
    regime_scale: float
    strength: float
    quantity: Decimal


def position_size(
    *,
    equity: float,
    allocation_weight: float,
    risk_per_trade: float,
    stop_distance: float,
    price: float,
    multiplier: float = 1.0,
    max_notional: float = math.inf,
    regime_scale: float = 1.0,
    strength: float = 1.0,
    lot: Decimal = Decimal(1),
) -> SizeBreakdown:
    """Size a trade from risk: see the module docstring for the formula.

    Parameters
    ----------
    equity : float
        Account equity, account currency.
    allocation_weight : float
        The strategy's capital weight in [0, 1].
    risk_per_trade : float
        Fraction of the allocated equity lost at the stop (0.01 = 1%).
    stop_distance : float
        Entry-to-stop distance in price units (> 0, else the size is 0).
    price : float
        Reference entry price.
    multiplier : float
        Contract multiplier (account currency per price unit per unit of quantity).
    max_notional : float
        Cap on ``quantity · price · multiplier``, account currency.
    regime_scale, strength : float
        Multipliers in [0, 1].
    lot : Decimal
        Quantity granularity (the instrument's lot size or size increment).
    """
    allocated = max(equity, 0.0) * allocation_weight
    risk_amount = allocated * risk_per_trade
    unit_value = price * multiplier
    if stop_distance > 0.0 and multiplier > 0.0:
        risk_quantity = risk_amount / (stop_distance * multiplier)
    else:
        risk_quantity = 0.0
    cap_quantity = max_notional / unit_value if unit_value > 0.0 else 0.0
    base = min(risk_quantity, cap_quantity)
    quantity = floor_to_lot(base * strength * regime_scale, lot)
    return SizeBreakdown(
        equity=equity,
        allocated_equity=allocated,
        risk_amount=risk_amount,
        stop_distance=stop_distance,
        risk_quantity=risk_quantity,
        cap_quantity=cap_quantity,
        base_quantity=base,
        regime_scale=regime_scale,
        strength=strength,
        quantity=quantity,
    )


def notional_cap(
    *,
    allocated_equity: float,
    max_notional_fraction: float,
    max_notional: float | None,
    free_balance: float | None,
    taker_fee: float,
) -> float:
    """The cap on an entry's notional, account currency (>= 0).

    ``allocated_equity · max_notional_fraction``, no more than ``max_notional`` (when set) and,
    on a CASH account (``free_balance`` not None), no more than the free balance net of the
    taker fee (times 0.999, a margin for the fill price).
    """
    cap = allocated_equity * max_notional_fraction
    if max_notional is not None:
        cap = min(cap, max_notional)
    if free_balance is not None:
        cap = min(cap, free_balance / (1.0 + taker_fee) * _FREE_CASH_USE)
    return max(cap, 0.0)


@dataclass(frozen=True, slots=True)
class EntryPlan:
    """What an entry decision sends, or why it sends nothing.

    Attributes
    ----------
    skip : str or None
        ``short_not_allowed``, ``regime`` (scale 0), ``size`` (below the minimum quantity) or
        ``price`` (a stop or target at or below zero); None when the entry trades.
    sizing : SizeBreakdown or None
        Every sizing term (None when skipped before sizing).
    max_notional : float
        The cap given to the sizing, account currency (NaN when skipped before sizing).
    stop_distance, target_distance : float
        Entry-to-stop and entry-to-target distances, price units.
    stop_price, target_price : Decimal or None
        The bracket's stop and target, multiples of the tick rounded away from the entry.
    """

    skip: str | None
    sizing: SizeBreakdown | None = None
    max_notional: float = math.nan
    stop_distance: float = math.nan
    target_distance: float = math.nan
    stop_price: Decimal | None = None
    target_price: Decimal | None = None


def entry_gate(direction: int, allow_short: bool, regime_scale: float) -> str | None:
    """Why an entry in ``direction`` cannot trade whatever its size (``short_not_allowed``,
    ``regime`` when the regime scale is 0), or None. Checked before the account is read."""
    if direction < 0 and not allow_short:
        return "short_not_allowed"
    if regime_scale <= 0.0:
        return "regime"
    return None


def plan_entry(
    *,
    direction: int,
    strength: float,
    stop_distance: float,
    price: float,
    equity: float,
    allocation_weight: float,
    risk_per_trade: float,
    risk_reward_ratio: float,
    max_notional_fraction: float,
    max_notional: float | None,
    free_balance: float | None,
    taker_fee: float,
    regime_scale: float,
    multiplier: float,
    lot: Decimal,
    min_quantity: Decimal,
    tick: Decimal,
    allow_short: bool,
) -> EntryPlan:
    """An entry at ``price`` in ``direction`` (+1/-1): the checks in the strategy's order, the
    risk-based size (:func:`position_size` under :func:`notional_cap`) and the bracket's prices
    (stop ``stop_distance`` away, target ``risk_reward_ratio`` times that; :func:`round_to_tick`
    away from the entry). Units as in :func:`position_size`; ``free_balance`` None on margin
    accounts."""
    gate = entry_gate(direction, allow_short, regime_scale)
    if gate is not None:
        return EntryPlan(skip=gate, stop_distance=stop_distance)
    allocated = max(equity, 0.0) * allocation_weight
    cap = notional_cap(
        allocated_equity=allocated,
        max_notional_fraction=max_notional_fraction,
        max_notional=max_notional,
        free_balance=free_balance,
        taker_fee=taker_fee,
    )
    sizing = position_size(
        equity=equity,
        allocation_weight=allocation_weight,
        risk_per_trade=risk_per_trade,
        stop_distance=stop_distance,
        price=price,
        multiplier=multiplier,
        max_notional=cap,
        regime_scale=regime_scale,
        strength=strength,
        lot=lot,
    )
    if sizing.quantity < min_quantity:
        return EntryPlan(skip="size", sizing=sizing, max_notional=cap, stop_distance=stop_distance)
    target_distance = risk_reward_ratio * stop_distance
    if direction > 0:
        stop_price = round_to_tick(price - stop_distance, tick, False)
        target_price = round_to_tick(price + target_distance, tick, True)
    else:
        stop_price = round_to_tick(price + stop_distance, tick, True)
        target_price = round_to_tick(price - target_distance, tick, False)
    return EntryPlan(
        skip="price" if stop_price <= 0 or target_price <= 0 else None,
        sizing=sizing,
        max_notional=cap,
        stop_distance=stop_distance,
        target_distance=target_distance,
        stop_price=stop_price,
        target_price=target_price,
    )
