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
"""

import math
from dataclasses import dataclass
from decimal import ROUND_CEILING
from decimal import ROUND_FLOOR
from decimal import Decimal


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
