"""How the env turns a target position into a fill, the same way the engine's simulated venue does.

The convention (``fill_at: close``, the engine's default; docs/fills.md), for a decision on bar t:

1. **Equity** at bar t: ``cash + quantity · close_t · multiplier`` (the engine strategy's
   account equity with one strategy on the account: CASH balances plus market value, or MARGIN
   balance plus unrealised PnL; the two are the same number).
2. **Order quantity** (:meth:`ExecutionModel.order_quantity`): the target weight
   ``w = target · max_weight`` (after the safety layer, :mod:`models.rl.safety`) gives
   ``target_qty = sign(w) · floor_to_lot(|w| · equity / (close_t · multiplier))``; the order is
   ``target_qty − held``. On a CASH account a buy is capped at what the cash pays for, fees
   included (``cash · cash_buffer / (close_t · multiplier · (1 + fee_rate))``, floored to lots).
3. **Fill price**: a market order sent on bar t fills at bar t's **close** (``close``), or at bar
   t+1's **open** (``next_open``; an order on the last bar of the data never fills). With
   ``prob_slippage`` p the price is ``p`` ticks worse (the venue slips one tick with probability
   p: exact for p = 0, the sample venues' value, and p = 1; the expected cost otherwise).
4. **Commission**: ``Money(Money(|qty| · multiplier · price) · fee_rate)``, each rounded to the
   currency's precision by Nautilus' ``Money`` (MakerTakerFeeModel with the instrument's taker
   fee: market orders take liquidity).
5. **Cash**: ``cash −= qty · price · multiplier + commission``; quantity += qty.

Everything is in the instrument's quote currency (the account's base currency in the samples).
"""

import math
from dataclasses import dataclass
from typing import Literal

from nautilus_trader.model.currencies import USD
from nautilus_trader.model.objects import Currency
from nautilus_trader.model.objects import Money

__all__ = ["ExecutionModel", "FillAt", "floor_to_lot"]

FillAt = Literal["close", "next_open"]


def floor_to_lot(quantity: float, lot: float) -> float:
    """``quantity`` (≥ 0) rounded down to a whole number of lots; 0 for non-finite input."""
    if not math.isfinite(quantity) or quantity <= 0.0:
        return 0.0
    return math.floor(quantity / lot) * lot


@dataclass(frozen=True, slots=True)
class ExecutionModel:
    """The venue and instrument terms the env fills with (module docstring).

    Attributes
    ----------
    fee_rate : float
        Taker fee, fraction of notional (the instrument's ``taker_fee``; 0.0001 = 1 bp).
    tick_size : float
        Price increment (slippage unit).
    lot_size : float
        Quantity increment.
    multiplier : float
        Contract multiplier (1 for equities).
    prob_slippage : float
        The venue fill model's ``prob_slippage`` in [0, 1].
    fill_at : {"close", "next_open"}
        The venue's ``fill_at``.
    account_type : {"cash", "margin"}
        CASH accounts cap buys at the cash available.
    currency : str
        Currency code of the cash (commission rounding).
    cash_buffer : float
        Fraction of the cash a CASH-account buy may spend (fees rounded up, gaps: 0.999).
    """

    fee_rate: float = 0.0001
    tick_size: float = 0.01
    lot_size: float = 1.0
    multiplier: float = 1.0
    prob_slippage: float = 0.0
    fill_at: FillAt = "close"
    account_type: Literal["cash", "margin"] = "cash"
    currency: str = "USD"
    cash_buffer: float = 0.999

    def __post_init__(self) -> None:
        checks = {
            "fee_rate": 0.0 <= self.fee_rate < 1.0,
            "tick_size": self.tick_size > 0.0,
            "lot_size": self.lot_size > 0.0,
            "multiplier": self.multiplier > 0.0,
            "prob_slippage": 0.0 <= self.prob_slippage <= 1.0,
            "fill_at": self.fill_at in ("close", "next_open"),
            "account_type": self.account_type in ("cash", "margin"),
            "cash_buffer": 0.0 < self.cash_buffer <= 1.0,
        }
        for name, ok in checks.items():
            if not ok:
                raise ValueError(f"execution.{name}: invalid value {getattr(self, name)!r}")
        self._currency()  # an unknown currency code fails here, not at the first fill

    def _currency(self) -> Currency:
        return USD if self.currency == "USD" else Currency.from_str(self.currency)

    def order_quantity(
        self, target_weight: float, held: float, equity: float, cash: float, price: float
    ) -> float:
        """Signed quantity to trade at a decision: ``target_qty − held`` (module docstring, 2).

        Parameters
        ----------
        target_weight : float
            Signed fraction of equity to hold (``target · max_weight`` after the safety layer).
        held : float
            Signed quantity held now.
        equity, cash : float
            Account equity and cash at the decision, currency units.
        price : float
            The decision bar's close.
        """
        unit_value = price * self.multiplier
        if not (unit_value > 0.0) or not math.isfinite(equity):
            return 0.0
        size = floor_to_lot(abs(target_weight) * max(equity, 0.0) / unit_value, self.lot_size)
        target_qty = math.copysign(size, target_weight) if size else 0.0
        order = target_qty - held
        if order > 0.0 and self.account_type == "cash":
            affordable = cash * self.cash_buffer / (unit_value * (1.0 + self.fee_rate))
            order = min(order, floor_to_lot(affordable, self.lot_size))
        return order

    def fill_price(self, order: float, price: float) -> float:
        """The fill price of a signed order at market price ``price`` (slipped against it)."""
        if self.prob_slippage == 0.0:
            return price
        slip = self.prob_slippage * self.tick_size
        return price + slip if order > 0.0 else price - slip

    def commission(self, quantity: float, price: float) -> float:
        """Commission of a fill of ``|quantity|`` at ``price``, rounded like the venue's."""
        currency = self._currency()
        notional = Money(abs(quantity) * self.multiplier * price, currency).as_double()
        return Money(notional * self.fee_rate, currency).as_double()
