"""Regime blending and risk sizing (strategies.sizing): the formulas, exactly."""

import math
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from models.regime.gating import regime_scale
from models.regime.gating import validate_affinity
from strategies.sizing import floor_to_lot
from strategies.sizing import position_size
from strategies.sizing import round_to_tick

TRENDING = {"bull": 1.0, "bear": 1.0, "sideways": 0.0}
RANGING = {"bull": 0.0, "bear": 0.0, "sideways": 1.0}


def test_risk_per_trade_over_the_stop_distance():
    # 1% of 500k allocated (1M × 0.5) = 5,000 at risk; stop 2.5 away → 2,000 units.
    size = position_size(
        equity=1_000_000.0,
        allocation_weight=0.5,
        risk_per_trade=0.01,
        stop_distance=2.5,
        price=100.0,
    )
    assert size.allocated_equity == 500_000.0
    assert size.risk_amount == 5_000.0
    assert size.risk_quantity == 2_000.0
    assert size.quantity == Decimal(2000)


def test_quantity_is_rounded_down_to_the_lot_and_scaled_by_regime_and_strength():
    size = position_size(
        equity=1_000_000.0,
        allocation_weight=1.0,
        risk_per_trade=0.01,
        stop_distance=3.0,
        price=50.0,
        regime_scale=0.6,
        strength=0.7,
        lot=Decimal(100),
    )
    raw = 10_000 / 3.0 * 0.6 * 0.7  # 1,400.0
    assert size.quantity == Decimal(100) * math.floor(raw / 100)
    assert size.quantity % 100 == 0


def test_multiplier_scales_the_money_per_point():
    size = position_size(
        equity=1_000_000.0,
        allocation_weight=1.0,
        risk_per_trade=0.01,
        stop_distance=10.0,
        price=4_000.0,
        multiplier=50.0,
        lot=Decimal(1),
    )
    assert size.quantity == Decimal(20)  # 10,000 / (10 points × 50 per point)


def test_never_above_the_max_notional_and_scaling_stays_proportional():
    capped = position_size(
        equity=1_000_000.0,
        allocation_weight=1.0,
        risk_per_trade=0.01,
        stop_distance=0.05,  # a tight intraday stop: 200,000 units of risk
        price=100.0,
        max_notional=1_000_000.0,
        regime_scale=0.5,
    )
    assert capped.risk_quantity == pytest.approx(200_000.0)
    assert capped.cap_quantity == 10_000.0
    assert capped.base_quantity == 10_000.0
    assert capped.quantity == Decimal(5_000)  # the regime still halves the capped size


def test_zero_size_when_the_regime_scale_is_zero_or_the_stop_is_degenerate():
    common = {"equity": 1e6, "allocation_weight": 1.0, "risk_per_trade": 0.01, "price": 100.0}
    assert position_size(**common, stop_distance=1.0, regime_scale=0.0).quantity == 0
    assert position_size(**common, stop_distance=0.0).quantity == 0
    assert position_size(**common, stop_distance=-1.0).quantity == 0
    assert position_size(**common, stop_distance=1.0, lot=Decimal(100_000)).quantity == 0
    assert position_size(**{**common, "equity": -5.0}, stop_distance=1.0).quantity == 0


def test_soft_gating_is_the_probability_weighted_affinity():
    p = {"bull": 0.5, "bear": 0.2, "sideways": 0.3}
    assert regime_scale(p, TRENDING, "soft") == pytest.approx(0.7)
    assert regime_scale(p, RANGING, "soft") == pytest.approx(0.3)
    assert regime_scale(p, {"bull": 0.5}, "soft") == pytest.approx(0.25)  # missing labels = 0


def test_hard_gating_follows_the_most_likely_regime():
    p = {"bull": 0.4, "bear": 0.0, "sideways": 0.6}
    assert regime_scale(p, TRENDING, "hard", "sideways") == 0.0
    assert regime_scale(p, RANGING, "hard", "sideways") == 1.0
    assert regime_scale(p, {"bull": 0.2, "sideways": 0.0}, "hard", "bull") == 1.0  # full size
    # The neutral prior (a three-way tie, no record yet): open if any tied label has affinity.
    neutral = dict.fromkeys(("bull", "bear", "sideways"), 1 / 3)
    assert regime_scale(neutral, TRENDING, "hard") == 1.0
    assert regime_scale(neutral, {"bull": 0.0, "bear": 0.0, "sideways": 0.0}, "hard") == 0.0
    with pytest.raises(ValueError, match="regime_gating"):
        regime_scale(p, TRENDING, "sometimes")


@given(
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3).filter(lambda v: sum(v) > 0),
    st.lists(st.floats(0.0, 1.0), min_size=3, max_size=3),
)
def test_soft_scale_is_a_convex_combination_of_affinities(weights, affinity_values):
    total = sum(weights)
    p = dict(zip(("bull", "bear", "sideways"), (w / total for w in weights), strict=True))
    affinity = dict(zip(("bull", "bear", "sideways"), affinity_values, strict=True))
    scale = regime_scale(p, affinity, "soft")
    assert min(affinity_values) - 1e-9 <= scale <= max(affinity_values) + 1e-9


def test_affinity_validation_names_the_label():
    validate_affinity(TRENDING)
    with pytest.raises(ValueError, match=r"regime_affinity\.trending: unknown regime label"):
        validate_affinity({"trending": 1.0})
    with pytest.raises(ValueError, match=r"regime_affinity\.bull: affinity must be in \[0, 1\]"):
        validate_affinity({"bull": 1.5})


def test_rounding_helpers():
    assert floor_to_lot(1234.9, Decimal(1)) == Decimal(1234)
    assert floor_to_lot(1234.9, Decimal(100)) == Decimal(1200)
    assert floor_to_lot(0.75, Decimal("0.25")) == Decimal("0.75")
    assert floor_to_lot(float("nan"), Decimal(1)) == 0
    assert round_to_tick(101.234, Decimal("0.01"), up=True) == Decimal("101.24")
    assert round_to_tick(101.234, Decimal("0.01"), up=False) == Decimal("101.23")
    assert round_to_tick(101.25, Decimal("0.25"), up=False) == Decimal("101.25")
    assert round_to_tick(101.26, Decimal("0.25"), up=True) == Decimal("101.50")
