"""The gate's verdict as a pure function: plain snapshots and limits, no kernel, no bus.

Equity 1,000,000 throughout; AAA and BBB trade at 100.00 (one unit = 100 of exposure).
"""

import math

import pytest
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId
from risk_kit import equity_instrument
from risk_kit import limits

from risk_engine.config import parse_risk_config
from risk_engine.evaluation import OrderRequest
from risk_engine.evaluation import RiskLimits
from risk_engine.evaluation import evaluate
from risk_engine.limits import LimitSet
from risk_engine.portfolio_state import Exposure
from risk_engine.portfolio_state import InstrumentInfo
from risk_engine.portfolio_state import Snapshot

AAA = InstrumentInfo.of(equity_instrument("AAA"))
BBB = InstrumentInfo.of(equity_instrument("BBB"))
S0 = StrategyId("S0-001")
EQUITY = 1_000_000.0
PRICE = 100.0


def risk_limits(allow_resize: bool = True, halt: str | None = None, **caps: object) -> RiskLimits:
    config = parse_risk_config({**limits(**caps), "allow_resize": allow_resize})
    return RiskLimits(
        checks=LimitSet(config.limits, None),
        allow_resize=config.allow_resize,
        slippage=config.limits.slippage_allowance,
        halt=halt,
    )


def snapshot(priced: bool = True, **held: float) -> Snapshot:
    """S0 holding ``held`` units per symbol (negative: short), nothing pending; AAA and BBB
    marked at :data:`PRICE` unless not ``priced``."""
    state = Snapshot(equity=EQUITY)
    if priced:
        for info in (AAA, BBB):
            state.exposures[info.instrument.id] = Exposure(unit_value=PRICE)
    for symbol, units in held.items():
        instrument_id = InstrumentId.from_str(f"{symbol}.{AAA.instrument.id.venue}")
        exposure = state.exposures[instrument_id] = Exposure(unit_value=PRICE)
        exposure.position = units
        if units > 0:
            exposure.long_bound = units
        else:
            exposure.short_bound = units
        state.by_strategy[(instrument_id, S0)] = units
    return state.finalize()


def order(
    info: InstrumentInfo | None,
    side: int,
    quantity: float,
    price: float = math.nan,
    reduce_only: bool = False,
    instrument_id: InstrumentId | None = None,
) -> OrderRequest:
    return OrderRequest(
        instrument_id=instrument_id or info.instrument.id,  # type: ignore[union-attr]
        strategy_id=S0,
        side=side,
        requested=quantity,
        units=quantity,
        price=price,
        stop_price=None,
        reduce_only=reduce_only,
        instrument=info,
    )


def test_an_order_within_every_limit_is_approved():
    verdict = evaluate(order(AAA, +1, 2000), snapshot(), risk_limits(max_weight=0.25))
    assert (verdict.verdict, verdict.code, verdict.approved) == ("approve", "", 2000)
    assert [r.name for r in verdict.results] == ["max_weight"]


def test_an_order_over_the_weight_cap_is_resized_to_what_fits():
    verdict = evaluate(order(AAA, +1, 3000), snapshot(), risk_limits(max_weight=0.25))
    assert (verdict.verdict, verdict.code) == ("resize", "max_weight")
    assert verdict.approved == pytest.approx(2500)
    assert verdict.reason.startswith("max_weight: limit 0.25 of equity 1,000,000.00")


def test_without_resizing_the_same_order_is_denied():
    verdict = evaluate(
        order(AAA, +1, 3000),
        snapshot(),
        risk_limits(allow_resize=False, max_weight=0.25),
    )
    assert (verdict.verdict, verdict.code, verdict.approved) == ("deny", "max_weight", 0.0)


def test_an_order_at_a_full_cap_is_denied():
    verdict = evaluate(order(AAA, +1, 1), snapshot(AAA=2500), risk_limits(max_weight=0.25))
    assert (verdict.verdict, verdict.code) == ("deny", "max_weight")


def test_gross_exposure_counts_every_instrument():
    # AAA long 4,000 units = 40% of equity; 50% gross leaves 10% = 1,000 units of BBB.
    verdict = evaluate(order(BBB, +1, 2000), snapshot(AAA=4000), risk_limits(gross_exposure=0.5))
    assert (verdict.verdict, verdict.code) == ("resize", "gross_exposure")
    assert verdict.approved == pytest.approx(1000)
    full = evaluate(order(BBB, -1, 10), snapshot(AAA=5000), risk_limits(gross_exposure=0.5))
    assert (full.verdict, full.code) == ("deny", "gross_exposure")


def test_closing_orders_pass_every_limit_and_the_halt():
    tight = risk_limits(max_weight=0.01, halt="operator: manual")
    sell = evaluate(order(AAA, -1, 1000), snapshot(AAA=2500), tight)
    assert (sell.verdict, sell.code, sell.results) == ("approve", "reducing", [])
    reduce_only = evaluate(order(AAA, +1, 50, reduce_only=True), snapshot(), tight)
    assert reduce_only.code == "reducing"


def test_a_halt_denies_new_risk_and_cuts_a_flip_to_its_closing_part():
    halted = risk_limits(max_weight=0.5, halt="daily_loss: daily loss 2.50%")
    entry = evaluate(order(AAA, +1, 10), snapshot(), halted)
    assert (entry.verdict, entry.code) == ("deny", "kill_switch")
    assert entry.reason == "kill switch halted (daily_loss: daily loss 2.50%)"
    flip = evaluate(order(AAA, -1, 3000), snapshot(AAA=1500), halted)
    assert (flip.verdict, flip.code, flip.approved) == ("resize", "kill_switch", 1500)


def test_an_unpriced_instrument_is_valued_at_the_orders_own_price():
    state = snapshot(priced=False)
    market = evaluate(order(AAA, +1, 10), state, risk_limits(max_weight=0.25))
    assert (market.verdict, market.code) == ("deny", "no_price")
    limit = evaluate(order(AAA, +1, 3000, price=50.0), state, risk_limits(max_weight=0.25))
    assert (limit.verdict, limit.approved) == ("approve", 3000)  # 150,000 = 15%
    assert state.exposures[AAA.instrument.id].unit_value == 50.0  # later legs value it alike


def test_an_unknown_instrument_is_left_to_nautilus():
    unknown = InstrumentId.from_str("ZZZ.XNAS")
    verdict = evaluate(
        order(None, +1, 10, instrument_id=unknown),
        snapshot(),
        risk_limits(max_weight=0.01),
    )
    assert (verdict.verdict, verdict.code) == ("approve", "unknown_instrument")
