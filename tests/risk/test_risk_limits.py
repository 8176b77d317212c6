"""Each limit approves, resizes or denies the exact order it should, on portfolio states crafted
in a real Nautilus kernel (positions filled by the simulated venue, open and in-flight orders in
the cache). Prices are 100, fees 0 and equity 1,000,000 unless a test says otherwise, so the
expected quantities are plain arithmetic."""

import numpy as np
import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.enums import TriggerType
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from risk_kit import MINUTE
from risk_kit import OFF
from risk_kit import limits

from grodt.core.records import RiskVerdictRecord
from grodt.core.records import trace_tag
from grodt.core.topics import KILL_SWITCH_TOPIC
from risk_engine.tags import stop_loss_tag


def qty(order) -> int:
    return int(order.quantity.as_double())


# -- max weight and what counts as exposure -----------------------------------------------------


def test_max_weight_approves_resizes_and_denies(harness):
    gate = harness.install(limits(max_weight=0.25))
    approved = harness.market("AAA", "BUY", 2000)  # 20% of equity
    assert approved.status == OrderStatus.SUBMITTED and qty(approved) == 2000
    assert harness.last_record().verdict == "approve"

    resized = harness.market("BBB", "BUY", 3000)  # 30% -> the largest that fits is 25%
    assert qty(resized) == 2500
    assert resized.status == OrderStatus.SUBMITTED
    record = harness.last_record()
    assert (record.verdict, record.requested_quantity, record.approved_quantity) == (
        "resize",
        "3000",
        "2500",
    )
    assert record.reason.startswith("max_weight")
    # The strategy was told: on_order_updated with the new quantity, before submission.
    assert [int(e.quantity.as_double()) for e in harness.strategies[0].updated] == [2500]

    harness.step()
    assert harness.position("BBB") == 2500
    denied = harness.market("BBB", "BUY", 1)
    assert denied.status == OrderStatus.DENIED
    assert harness.strategies[0].denied[-1].reason.startswith("max_weight")
    assert gate.summary()["denials_by_reason"] == {"max_weight": 1}
    assert gate.summary()["resizes_by_reason"] == {"max_weight": 1}


def test_open_and_in_flight_orders_of_every_strategy_count(harness):
    harness.install(limits(max_weight=0.25))
    # A resting limit (open) from strategy 1 and an unfilled market order (in flight) from 0.
    resting = harness.limit("AAA", "BUY", 1000, 90.0, strategy=1)
    harness.step()
    assert resting.status == OrderStatus.ACCEPTED
    in_flight = harness.market("AAA", "BUY", 500, strategy=0)
    assert in_flight.status == OrderStatus.SUBMITTED
    order = harness.market("AAA", "BUY", 2000, strategy=1)
    assert qty(order) == 1000  # 2500 - 1000 resting - 500 in flight


def test_worst_case_is_per_side(harness):
    harness.install(limits(max_weight=0.25))
    harness.market("AAA", "BUY", 2000)
    harness.step()
    # Selling 4000 flips to short 2000 at worst: within 25%, approved in full.
    flip = harness.limit("AAA", "SELL", 4000, 110.0)
    assert qty(flip) == 4000 and flip.status == OrderStatus.SUBMITTED
    harness.step()
    # The resting sell does not free long room: long bound is still 2000 -> 500 more fit.
    buy = harness.market("AAA", "BUY", 1000)
    assert qty(buy) == 500


def test_opposite_positions_of_other_strategies_are_no_hedge(harness):
    harness.install(limits(max_weight=0.25))
    harness.market("AAA", "SELL", 2000, strategy=0)
    harness.step()
    # Strategy 0 may close its short at any time (closing always passes): strategy 1's long
    # must fit on its own.
    assert qty(harness.market("AAA", "BUY", 3000, strategy=1)) == 2500
    harness.step()
    close = harness.market("AAA", "BUY", 2000, strategy=0, reduce_only=True)
    assert qty(close) == 2000 and harness.last_record().limits["binding"] == "reducing"
    harness.step()
    assert harness.position("AAA") == 2500  # 25%: still within the cap


def test_bracket_children_and_oco_count_once(harness):
    harness.install(limits(max_weight=0.25))
    harness.bracket("AAA", "BUY", 2000, stop=95.0, take_profit=110.0)
    harness.step()
    assert harness.position("AAA") == 2000
    # Stop-loss and take-profit (reduce-only, OUO) are open but add nothing: 500 still fit.
    assert len(harness.cache.orders_open()) == 2
    assert qty(harness.market("AAA", "BUY", 800)) == 500


# -- HRP band -----------------------------------------------------------------------------------


def test_hrp_band_caps_at_target_times_one_plus_tolerance(harness):
    gate = harness.install({"limits": {**OFF, "max_weight": 0.25}, "hrp": {"tolerance": 0.5}})
    harness.publish_targets({"AAA": 0.1, "BBB": 0.5})
    assert gate.targets_version == "test-1"
    order = harness.market("AAA", "BUY", 2000)  # band 0.1 × 1.5 = 15%
    assert qty(order) == 1500
    assert harness.last_record().reason.startswith("hrp_band")
    assert harness.last_record().limits["hrp_target"] == pytest.approx(0.1)
    # BBB's band (75%) is looser than the max weight, which binds.
    assert qty(harness.market("BBB", "BUY", 3000)) == 2500
    assert harness.last_record().reason.startswith("max_weight")
    # An instrument without a target is limited by the other limits only.
    assert qty(harness.market("CCC", "BUY", 2000)) == 2000


# -- gross, net, groups ---------------------------------------------------------------------------


def test_gross_exposure_counts_shorts_and_longs(harness):
    harness.install(limits(gross_exposure=0.5))
    harness.market("AAA", "BUY", 3000)
    harness.market("BBB", "SELL", 1500)  # shorts count by magnitude
    assert qty(harness.market("CCC", "BUY", 1000)) == 500
    assert harness.last_record().reason.startswith("gross_exposure")
    assert harness.market("CCC", "BUY", 10).status == OrderStatus.DENIED
    # Selling 10 against a pending buy of 500 cannot raise CCC's worst case (500): approved.
    assert qty(harness.market("CCC", "SELL", 10)) == 10


def test_net_exposure_limits_one_direction_only(harness):
    harness.install(limits(net_exposure=0.3))
    harness.market("AAA", "BUY", 2500)
    harness.market("BBB", "BUY", 500)  # net long 30%
    assert harness.market("CCC", "BUY", 100).status == OrderStatus.DENIED
    assert harness.strategies[0].denied[-1].reason.startswith("net_exposure")
    # A short lowers the net: approved in full, and it does not open long room it could fail
    # to deliver (the long bound still assumes it may not fill).
    assert qty(harness.market("CCC", "SELL", 1000)) == 1000
    assert harness.market("CCC", "BUY", 100).status == OrderStatus.DENIED


def test_group_cap_applies_to_members_only(harness):
    harness.install(
        limits(groups={"tech": {"members": ["AAA.SIM", "BBB.SIM"], "max_weight": 0.3}}),
    )
    harness.market("AAA", "BUY", 2500)
    assert qty(harness.market("BBB", "BUY", 1000)) == 500
    assert harness.last_record().reason.startswith("group:tech")
    assert qty(harness.market("CCC", "BUY", 1000)) == 1000


# -- per-trade risk and order notional ------------------------------------------------------------


def test_trade_risk_uses_the_bracket_stop(harness):
    harness.install(limits(trade_risk=0.01))
    order_list = harness.bracket("AAA", "BUY", 5000, stop=95.0, take_profit=110.0)
    # 1% of 1,000,000 at a 5.00 stop distance: 2000 shares; the children follow the entry.
    assert [qty(o) for o in order_list.orders] == [2000, 2000, 2000]
    assert harness.last_record().reason.startswith("trade_risk")
    harness.step()
    assert harness.position("AAA") == 2000


def test_trade_risk_from_stop_tag_and_missing_stop_policies(harness):
    gate = harness.install(limits(trade_risk=0.01))
    tagged = harness.market("AAA", "BUY", 2400, tags=[stop_loss_tag(95.0)])
    assert qty(tagged) == 2000
    untagged = harness.market("BBB", "BUY", 5000)  # missing_stop: ignore
    assert qty(untagged) == 5000
    gate.uninstall()

    harness.install(limits(trade_risk=0.01, missing_stop="deny"))
    denied = harness.market("CCC", "BUY", 100)
    assert denied.status == OrderStatus.DENIED
    assert "no stop" in harness.strategies[0].denied[-1].reason
    harness.gate.uninstall()

    harness.install(limits(trade_risk=0.01, missing_stop="assume", assumed_stop_distance=0.05))
    assert qty(harness.market("CCC", "BUY", 2400)) == 2000  # 5% of 100 = 5.00 away


def test_trade_risk_counts_only_the_opening_part_of_a_flip(harness):
    harness.install(limits(trade_risk=0.01))
    harness.market("AAA", "BUY", 1000)
    harness.step()
    # Sell 3000 with a stop 5.00 above: 1000 close, 2000 open a short risking 10,000 = 1%.
    assert qty(harness.market("AAA", "SELL", 3000, tags=[stop_loss_tag(105.0)])) == 3000
    assert qty(harness.market("BBB", "SELL", 3000, tags=[stop_loss_tag(105.0)])) == 2000


def test_max_order_notional(harness):
    harness.install(limits(max_order_notional=150_000))
    assert qty(harness.market("AAA", "BUY", 2000)) == 1500
    assert harness.last_record().reason.startswith("order_notional")
    harness.step()
    # A reducing order is never cut, whatever its notional.
    assert qty(harness.market("AAA", "SELL", 1500)) == 1500
    assert harness.last_record().limits["binding"] == "reducing"


# -- CVaR ----------------------------------------------------------------------------------------


def _scenarios(periods: int = 100) -> np.ndarray:
    """AAA loses 5% in 5 of 100 periods and gains 1% otherwise; BBB is its mirror image."""
    aaa = np.full(periods, 0.01)
    aaa[:5] = -0.05
    return np.column_stack([aaa, -aaa])


def test_cvar_limit_resizes_to_the_largest_quantity_that_fits(harness):
    harness.install(
        {
            "limits": {**OFF, "cvar": {"limit": 0.01, "window": 100, "min_observations": 50}},
            "hrp": {"tolerance": None, "window": 100, "min_history": 50},
        },
    )
    harness.publish_targets({"AAA": 0.5, "BBB": 0.5}, returns=_scenarios())
    # CVaR(95%) of a long AAA position x is 5% of x: x ≤ 1% / 5% × equity = 200,000 = 2000.
    order = harness.market("AAA", "BUY", 3000)
    assert qty(order) == 2000
    assert harness.last_record().reason.startswith("cvar")


def test_cvar_counts_a_pending_hedge_only_if_it_must_fill(harness):
    harness.install(
        {
            "limits": {**OFF, "cvar": {"limit": 0.01, "window": 100, "min_observations": 50}},
            "hrp": {"tolerance": None, "window": 100, "min_history": 50},
        },
    )
    harness.publish_targets({"AAA": 0.5, "BBB": 0.5}, returns=_scenarios())
    harness.market("AAA", "BUY", 2000)
    harness.step()
    # A resting hedge may never fill: more AAA is still denied.
    harness.limit("BBB", "BUY", 2000, 90.0)
    harness.step()
    assert harness.market("AAA", "BUY", 500).status == OrderStatus.DENIED
    assert harness.strategies[0].denied[-1].reason.startswith("cvar")
    # A filled hedge makes room.
    harness.market("BBB", "BUY", 1000)
    harness.step()
    assert harness.position("BBB") == 1000
    assert qty(harness.market("AAA", "BUY", 500)) == 500


def test_cvar_allows_a_hedge_while_above_the_limit(harness):
    harness.market("AAA", "BUY", 3000)  # before the gate: CVaR 1.5% > 1%
    harness.step()
    harness.install(
        {
            "limits": {**OFF, "cvar": {"limit": 0.01, "window": 100, "min_observations": 50}},
            "hrp": {"tolerance": None, "window": 100, "min_history": 50},
        },
    )
    harness.publish_targets({"AAA": 0.5, "BBB": 0.5}, returns=_scenarios())
    assert harness.market("AAA", "BUY", 1).status == OrderStatus.DENIED
    # BBB mirrors AAA: buying it lowers the portfolio CVaR, so it passes although the limit is
    # already breached (an order may not leave a limit worse than it found it).
    assert qty(harness.market("BBB", "BUY", 1000)) == 1000


# -- reducing orders and the kill switch ----------------------------------------------------------


def test_reduce_only_and_closing_orders_always_pass(harness):
    harness.market("AAA", "BUY", 4000)  # 40%, placed before the gate
    harness.step()
    harness.install(limits(max_weight=0.25, max_order_notional=10_000, trade_risk=0.01))
    close = harness.market("AAA", "SELL", 1000, reduce_only=True)
    assert qty(close) == 1000 and close.status == OrderStatus.SUBMITTED
    assert harness.last_record().limits["binding"] == "reducing"
    partial = harness.market("AAA", "SELL", 2000)  # not reduce-only, but only closes
    assert qty(partial) == 2000
    assert harness.last_record().verdict == "approve"
    # More than what is left to close is a flip: the opening part must fit the limits.
    flip = harness.market("AAA", "SELL", 1200, strategy=1)
    assert flip.status == OrderStatus.DENIED or qty(flip) < 1200


def test_daily_loss_halts_and_still_lets_positions_be_reduced(harness):
    published = []
    harness.engine.kernel.msgbus.subscribe(KILL_SWITCH_TOPIC, published.append)
    # With the (non-default) mirror into Nautilus' trading state; a single strategy here, so
    # Nautilus' instrument-wide REDUCING and the gate's per-strategy closing rule agree.
    section = limits(max_weight=0.5, daily_loss=0.02)
    gate = harness.install({**section, "kill_switch": {"mirror_trading_state": True}})
    harness.limit("CCC", "BUY", 100, 80.0)  # a resting entry
    harness.market("AAA", "BUY", 2500)
    harness.step()
    harness.step({"AAA": 90.0})  # -25,000 = -2.5% of the day's start
    assert gate.kill_switch.halted
    assert published[-1]["action"] == "halt" and published[-1]["source"] == "RiskGate"
    assert harness.engine.kernel.risk_engine.trading_state == TradingState.REDUCING
    # Opening orders are denied, the resting entry was canceled...
    assert harness.market("BBB", "BUY", 10).status == OrderStatus.DENIED
    assert harness.strategies[0].denied[-1].reason.startswith("kill switch halted")
    assert harness.cache.orders_closed()[0].status in (OrderStatus.CANCELED, OrderStatus.FILLED)
    assert not [o for o in harness.cache.orders_open() if o.instrument_id.symbol.value == "CCC"]
    # ...the position can be reduced, and a flip is cut to its reducing part.
    assert qty(harness.market("AAA", "SELL", 1000, reduce_only=True)) == 1000
    flip = harness.market("AAA", "SELL", 3000)
    assert qty(flip) == 1500
    assert harness.last_record().reason.startswith("kill switch halted")
    harness.step()
    assert harness.position("AAA") == 0
    # The daily-loss halt re-arms at the next trading day.
    harness.ts += 24 * 60 * MINUTE
    harness.step()
    assert not gate.kill_switch.halted
    assert harness.engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    assert harness.market("BBB", "BUY", 10).status == OrderStatus.SUBMITTED


def test_the_trading_day_follows_the_market_data_not_the_wall_clock(harness):
    # A paper node replaying history runs on the wall clock: the daily-loss day must still roll
    # with the data, as in the backtest (here the gate's clock is years ahead of the bars).
    gate = harness.install(limits(max_weight=0.5, daily_loss=0.02))
    wall_clock = TestClock()
    wall_clock.set_time(harness.ts + 3 * 365 * 24 * 60 * MINUTE)
    gate._clock = wall_clock
    harness.step()
    harness.market("AAA", "BUY", 2500)
    harness.step()
    harness.step({"AAA": 90.0})  # -2.5% of the day's start
    assert gate.kill_switch.reasons.keys() == {"daily_loss"}
    harness.market("AAA", "SELL", 2500, reduce_only=True)  # observed at market time too
    harness.step()
    assert gate.kill_switch.halted
    harness.ts += 24 * 60 * MINUTE
    harness.step()
    assert not gate.kill_switch.halted  # re-armed by the next day of the data
    assert harness.market("BBB", "BUY", 10).status == OrderStatus.SUBMITTED
    assert gate.market_time_ns() == harness.ts - MINUTE < wall_clock.timestamp_ns()


def test_drawdown_halt_needs_an_operator_reset(harness):
    gate = harness.install(limits(max_weight=0.5, max_drawdown=0.02))
    harness.market("AAA", "BUY", 2500)
    harness.step()
    harness.step({"AAA": 90.0})
    assert "max_drawdown" in gate.kill_switch.reasons
    harness.ts += 24 * 60 * MINUTE
    harness.step()
    assert gate.kill_switch.halted  # a new day does not re-arm a drawdown halt
    bus = harness.engine.kernel.msgbus
    bus.publish(KILL_SWITCH_TOPIC, {"action": "reset", "reason": "x", "source": "other"})
    assert gate.kill_switch.halted  # only the operator's reset clears another source's halt
    bus.publish(KILL_SWITCH_TOPIC, {"action": "reset", "reason": "ok", "source": "operator"})
    assert not gate.kill_switch.halted
    assert gate.triggers.high_water == pytest.approx(harness.equity())
    assert harness.market("BBB", "BUY", 10).status == OrderStatus.SUBMITTED


def test_operator_kill_switch_topic_is_the_same_mechanism(harness):
    gate = harness.install(limits(max_weight=0.5))
    harness.market("AAA", "BUY", 1000)
    harness.step()
    bus = harness.engine.kernel.msgbus
    bus.publish(KILL_SWITCH_TOPIC, {"action": "halt", "reason": "manual", "source": "operator"})
    denied = harness.market("AAA", "BUY", 10)
    assert denied.status == OrderStatus.DENIED
    assert "manual" in harness.strategies[0].denied[-1].reason
    assert qty(harness.market("AAA", "SELL", 1000, reduce_only=True)) == 1000
    bus.publish(KILL_SWITCH_TOPIC, {"action": "bogus"})  # logged and ignored
    assert gate.kill_switch.halted
    bus.publish(KILL_SWITCH_TOPIC, {"action": "reset", "reason": "ok", "source": "operator"})
    assert harness.market("AAA", "BUY", 10).status == OrderStatus.SUBMITTED


# -- modify, emulated orders, records, failure -----------------------------------------------------


def test_modify_that_increases_quantity_is_checked(harness):
    harness.install(limits(max_weight=0.25))
    order = harness.limit("AAA", "BUY", 1000, 90.0)
    harness.step()
    strategy = harness.strategies[0]
    strategy.modify_order(order, quantity=Quantity.from_int(4000))
    harness.step()
    assert qty(order) == 2500  # cut to what fits
    strategy.modify_order(order, quantity=Quantity.from_int(2600))
    assert harness.last_record().verdict == "deny"
    harness.step()
    assert qty(order) == 2500
    strategy.modify_order(order, quantity=Quantity.from_int(2000))  # smaller: passes
    harness.step()
    assert qty(order) == 2000


def test_emulated_orders_are_gated_too(harness):
    harness.install(limits(max_weight=0.25))
    strategy = harness.strategies[0]
    order = strategy.order_factory.limit(
        instrument_id=harness.iid("AAA"),
        order_side=__import__("nautilus_trader.model.enums").model.enums.OrderSide.BUY,
        quantity=Quantity.from_int(5000),
        price=Price(90.0, 2),
        emulation_trigger=TriggerType.LAST_PRICE,
    )
    strategy.submit_order(order)
    assert qty(order) == 2500
    assert harness.last_record().verdict == "resize"


def test_every_verdict_is_a_valid_record_with_the_trace_id(harness):
    harness.install(limits(max_weight=0.25))
    harness.market("AAA", "BUY", 3000, tags=[trace_tag("S0:1:7")])
    record = harness.last_record()
    assert isinstance(record, RiskVerdictRecord)
    assert record.trace_id == "S0:1:7"
    assert record.component_id == "RiskGate"
    assert record.equity == pytest.approx(1_000_000)
    assert record.limits["max_weight"]["cap"] == 0.25
    # The record is built without validation on the hot path: it must still be valid.
    RiskVerdictRecord.model_validate(record.model_dump())
    harness.step()
    harness.market("BBB", "BUY", 100)
    record = harness.last_record()
    assert record.weights == {"AAA.SIM": pytest.approx(0.25)}
    assert record.gross_exposure == pytest.approx(250_000)


def test_gate_fails_closed_on_an_internal_error(harness, monkeypatch):
    gate = harness.install(limits(max_weight=0.25))

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(gate.limits.checks, "check", broken)
    order = harness.market("AAA", "BUY", 10)
    assert order.status == OrderStatus.DENIED
    assert "gate_error" in harness.strategies[0].denied[-1].reason
    assert gate.summary()["denials_by_reason"] == {"gate_error": 1}


def test_uninstall_gives_the_endpoints_back(harness):
    gate = harness.install(limits(max_weight=0.25))
    gate.uninstall()
    order = harness.market("AAA", "BUY", 5000)
    assert qty(order) == 5000 and order.status == OrderStatus.SUBMITTED
