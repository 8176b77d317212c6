"""Regressions from the code review of ``risk_engine/``: each test failed before its fix.

Prices are 100, fees 0 and equity 1,000,000 unless a test says otherwise (as in
``test_risk_limits.py``), so the expected quantities are plain arithmetic.
"""

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.enums import OrderType
from nautilus_trader.model.enums import TradingState
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from risk_kit import OFF
from risk_kit import RiskHarness
from risk_kit import limits

import risk_engine.gate_cost as gate_cost
import risk_engine.verdict_recorder as verdict_recorder
from grodt.core.topics import KILL_SWITCH_TOPIC
from node_configs.loader import load_yaml_document
from risk_engine.audit import audit_frames
from risk_engine.config import CvarLimit
from risk_engine.config import parse_risk_config
from risk_engine.extension import RiskExtension
from risk_engine.limits import LimitSet
from risk_engine.limits import OrderIntent
from risk_engine.limits import Scenarios
from risk_engine.portfolio_state import Exposure
from risk_engine.portfolio_state import Snapshot


def qty(order: Any) -> int:
    return int(order.quantity.as_double())


def halt(harness: RiskHarness, reason: str = "manual") -> None:
    harness.engine.kernel.msgbus.publish(
        KILL_SWITCH_TOPIC,
        {"action": "halt", "reason": reason, "source": "operator"},
    )


def _scenarios(periods: int = 100) -> np.ndarray:
    """AAA loses 5% in 5 of 100 periods and gains 1% otherwise; BBB is its mirror image."""
    aaa = np.full(periods, 0.01)
    aaa[:5] = -0.05
    return np.column_stack([aaa, -aaa])


# -- snapshot (already fixed): the cache's own open-order index is not written to -----------------


def test_snapshot_leaves_the_cache_open_order_index_alone(harness):
    harness.install(limits(max_weight=0.25))
    first = harness.market("AAA", "BUY", 100)
    assert first.status == OrderStatus.SUBMITTED  # in flight
    harness.market("BBB", "BUY", 100)  # a second order through the gate takes a snapshot
    assert not harness.cache.is_order_open(first.client_order_id)
    assert first not in harness.cache.orders_open()


# -- 1. Nautilus' REDUCING is instrument-wide: mirroring it traps other strategies' positions ------


def test_halt_lets_a_strategy_close_against_another_strategys_net_position(harness):
    gate = harness.install(limits(max_weight=0.5))  # default kill_switch section
    assert gate.config.kill_switch.mirror_trading_state is False
    harness.market("AAA", "BUY", 2000, strategy=0)
    harness.market("AAA", "SELL", 100, strategy=1)
    harness.step()
    halt(harness)
    assert gate.kill_switch.halted
    assert harness.engine.kernel.risk_engine.trading_state == TradingState.ACTIVE
    # The instrument is net long; S1's closing BUY must still pass (gate and Nautilus alike).
    close = harness.market("AAA", "BUY", 100, strategy=1, reduce_only=True)
    assert harness.last_record().verdict == "approve"
    assert close.status == OrderStatus.SUBMITTED, harness.strategies[1].denied
    harness.step()
    assert close.status == OrderStatus.FILLED
    assert harness.position("AAA") == 2000
    # Opening orders are still denied by the gate.
    assert harness.market("AAA", "BUY", 10, strategy=1).status == OrderStatus.DENIED


def test_mirror_trading_state_is_kept_as_an_option(harness):
    gate = harness.install(
        {"limits": {**OFF, "max_weight": 0.5}, "kill_switch": {"mirror_trading_state": True}},
    )
    halt(harness)
    assert harness.engine.kernel.risk_engine.trading_state == TradingState.REDUCING
    harness.engine.kernel.msgbus.publish(
        KILL_SWITCH_TOPIC,
        {"action": "reset", "reason": "ok", "source": "operator"},
    )
    assert not gate.kill_switch.halted
    assert harness.engine.kernel.risk_engine.trading_state == TradingState.ACTIVE


def test_default_component_does_not_mirror_the_trading_state():
    components = Path(__file__).resolve().parents[2] / "node_configs" / "components" / "risk"
    paths = sorted(components.glob("*.yaml"))
    assert paths, f"no risk components under {components}"
    for path in paths:
        config = parse_risk_config(load_yaml_document(path))
        assert config.kill_switch.mirror_trading_state is False, path.name


# -- 2. a flip is never cut below its closing part --------------------------------------------


@pytest.mark.parametrize("price", [110.0, 115.0])
def test_flip_keeps_its_closing_part_when_the_bound_is_over_the_cap(harness, price):
    harness.install(limits(max_weight=0.25))
    harness.market("AAA", "BUY", 2400, strategy=0)
    harness.market("AAA", "SELL", 100, strategy=1)
    harness.step()
    harness.step({"AAA": price})  # S0's long is now over 25% (other strategy: drift)
    order = harness.market("AAA", "BUY", 150, strategy=1)
    # 100 only close S1's short; the 50 that would open a long do not fit.
    assert order.status == OrderStatus.SUBMITTED
    assert qty(order) == 100
    assert harness.last_record().verdict == "resize"
    assert harness.last_record().limits["max_weight"]["max_quantity"] == pytest.approx(100)


def test_flip_keeps_its_closing_part_under_the_cvar_limit(harness):
    harness.market("AAA", "BUY", 2400, strategy=0)  # CVaR 1.2% > 1%
    harness.market("AAA", "SELL", 100, strategy=1)
    harness.step()
    harness.install(
        {
            "limits": {**OFF, "cvar": {"limit": 0.01, "window": 100, "min_observations": 50}},
            "hrp": {"tolerance": None, "window": 100, "min_history": 50},
        },
    )
    harness.publish_targets({"AAA": 0.5, "BBB": 0.5}, returns=_scenarios())
    order = harness.market("AAA", "BUY", 150, strategy=1)
    assert order.status == OrderStatus.SUBMITTED
    assert qty(order) == 100
    assert harness.last_record().reason.startswith("cvar")


# -- 3. a halt cancels in-flight entries and revokes approved ones not yet submitted -------------


def test_halt_cancels_in_flight_opening_orders(harness):
    harness.install(limits(max_weight=0.5))
    harness.market("BBB", "BUY", 100, strategy=1)
    harness.step()
    entry = harness.limit("AAA", "BUY", 100, 80.0)  # in flight: SUBMITTED, not yet accepted
    exit_ = harness.limit("BBB", "SELL", 100, 120.0, strategy=1)  # in-flight exit: stays
    assert entry.status == OrderStatus.SUBMITTED and exit_.status == OrderStatus.SUBMITTED
    halt(harness)
    harness.step()
    assert entry.status == OrderStatus.CANCELED
    assert exit_.status == OrderStatus.ACCEPTED


def test_halt_revokes_approved_orders_a_live_engine_has_not_submitted(harness):
    gate = harness.install(limits(max_weight=0.5))
    harness.market("BBB", "BUY", 100, strategy=1)
    harness.step()
    # A live RiskEngine queues commands: hold the gate's approvals as its queue would.
    queued: list[Any] = []
    forward = gate._forward_risk
    gate._forward_risk = queued.append
    entry = harness.market("AAA", "BUY", 100)
    exit_ = harness.market("BBB", "SELL", 100, strategy=1)
    assert entry.status == OrderStatus.INITIALIZED and len(queued) == 2
    halt(harness)
    assert entry.status == OrderStatus.DENIED
    assert harness.strategies[0].denied[-1].reason.startswith("kill switch halted")
    assert exit_.status == OrderStatus.INITIALIZED
    for command in queued:  # the queue drains: the revoked entry must not reach the venue
        forward(command)
    harness.step()
    assert entry.status == OrderStatus.DENIED
    assert harness.position("AAA") == 0
    assert exit_.status == OrderStatus.FILLED and harness.position("BBB") == 0


# -- 4. a gate error on a modify rejects the modify ----------------------------------------------


def test_gate_error_on_a_modify_sends_modify_rejected(harness, monkeypatch):
    gate = harness.install(limits(max_weight=0.25))
    order = harness.limit("AAA", "BUY", 1000, 90.0)
    harness.step()
    assert order.status == OrderStatus.ACCEPTED

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(gate.limits.checks, "check", broken)
    strategy = harness.strategies[0]
    strategy.modify_order(order, quantity=Quantity.from_int(2000))
    assert order.status == OrderStatus.ACCEPTED  # not left PENDING_UPDATE
    assert "gate_error" in strategy.modify_rejected[-1].reason
    assert gate.summary()["denials_by_reason"] == {"gate_error": 1}
    harness.step()
    assert qty(order) == 1000


# -- 5. a modify of a bracket entry uses the bracket's stop ----------------------------------


def test_modify_of_a_bracket_entry_uses_its_stop_loss(harness):
    harness.install(limits(trade_risk=0.01, missing_stop="deny"))
    strategy = harness.strategies[0]
    order_list = strategy.order_factory.bracket(
        instrument_id=harness.iid("AAA"),
        order_side=OrderSide.BUY,
        quantity=Quantity.from_int(1000),
        entry_order_type=OrderType.LIMIT,
        entry_price=Price(90.0, 2),
        sl_trigger_price=Price(85.0, 2),
        tp_price=Price(120.0, 2),
    )
    strategy.submit_order_list(order_list)
    harness.step()
    entry = order_list.first
    assert entry.status == OrderStatus.ACCEPTED
    # A 5.00 stop: 1% of equity covers 2,000 more units; the increase of 3,000 is cut to that.
    strategy.modify_order(entry, quantity=Quantity.from_int(4000))
    record = harness.last_record()
    assert record.verdict == "resize", record.reason
    assert record.reason.startswith("trade_risk")
    harness.step()
    assert qty(entry) == 3000


# -- 6. the audit classes a reducing fill as `reducing` ----------------------------------------


def test_audit_classes_a_breach_from_a_reducing_fill_as_reducing():
    index = pd.date_range("2024-01-02 15:00", periods=3, freq="1min", tz="UTC")
    closes = pd.DataFrame({"AAA.SIM": [100.0, 100.0, 110.0]}, index=index)
    equity = pd.Series([1_000_000.0, 1_000_000.0, 1_018_000.0], index=index)
    fills = pd.DataFrame(
        {
            "ts_event": [index[0], index[0], index[2]],
            "instrument_id": ["AAA.SIM"] * 3,
            "client_order_id": ["O-S0-1", "O-S1-1", "O-S1-2"],
            "signed_qty": [2400.0, -600.0, 600.0],
        },
    )
    ts = [int(t.value) for t in index]
    verdicts = pd.DataFrame(
        {
            "ts": [ts[0], ts[0], ts[2]],
            "client_order_id": ["O-S0-1", "O-S1-1", "O-S1-2"],
            "verdict": ["approve"] * 3,
            "code": ["", "", "reducing"],
            "hrp_target": [np.nan] * 3,
            "order_ids": ["O-S0-1", "O-S1-1", "O-S1-2"],
        },
    )
    config = parse_risk_config({"limits": {"max_weight": 0.25}})
    report = audit_frames(config, fills, closes, equity, verdicts)
    breaches = report.breaches
    assert list(breaches["limit"]) == ["max_weight"]
    assert list(breaches["cause"]) == ["reducing"]
    assert report.summary()["order_caused_breaches"] == 0
    # The same fill approved as an ordinary order is an order-caused breach.
    verdicts.loc[2, "code"] = ""
    report = audit_frames(config, fills, closes, equity, verdicts)
    assert list(report.breaches["cause"]) == ["order"]


# -- 7. verdict rows stream to the CSV; memory stays bounded -----------------------------------


def test_verdicts_stream_to_the_csv_with_a_bounded_memory_window(harness, tmp_path, monkeypatch):
    monkeypatch.setattr(verdict_recorder, "MAX_KEPT", 3)
    monkeypatch.setattr(gate_cost, "MAX_TIMINGS", 4)
    monkeypatch.setattr(verdict_recorder, "VERDICT_FLUSH_ROWS", 2)
    config = parse_risk_config(limits(max_weight=0.25))
    extension = RiskExtension(config, [], tmp_path)
    extension.install(harness.engine.kernel)
    gate = extension.gate
    assert gate is not None
    orders = [harness.market("AAA", "BUY", 1000) for _ in range(4)]  # 25% cap: 2,500 fit
    orders.append(harness.market("AAA", "BUY", 10))
    assert [qty(o) for o in orders[:3]] == [1000, 1000, 500]
    assert [o.status for o in orders[3:]] == [OrderStatus.DENIED] * 2
    assert len(gate.recorder.rows) <= 3 and len(gate.cost.gate_ns) <= 4
    summary = extension.finish(harness.engine.kernel)
    harness.gate = None  # uninstalled by finish
    with open(summary["verdicts_csv"], newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["client_order_id"] for r in rows] == [str(o.client_order_id) for o in orders]
    verdicts = summary["verdicts"]
    assert verdicts["approve"] + verdicts["resize"] + verdicts["deny"] == len(rows) == 5
    assert summary["gate_us"]["commands"] == 5  # a counter, not the length of a window
    assert "verdicts_csv_note" not in summary
    assert set(summary) == {
        "verdicts",
        "denials_by_reason",
        "resizes_by_reason",
        "kill_switch",
        "hrp",
        "gate_us",
        "limits",
        "verdicts_csv",
    }


# -- 8. later legs of an order list see earlier legs as pending closes ------------------------


def test_two_closing_legs_of_one_list_cannot_both_count_one_position(harness):
    gate = harness.install(limits(max_weight=0.5))
    harness.market("AAA", "BUY", 100)
    harness.step()
    halt(harness)
    assert gate.kill_switch.halted
    strategy = harness.strategies[0]
    legs = [
        strategy.order_factory.limit(
            instrument_id=harness.iid("AAA"),
            order_side=OrderSide.SELL,
            quantity=Quantity.from_int(100),
            price=Price(price, 2),
        )
        for price in (120.0, 130.0)
    ]
    strategy.submit_order_list(strategy.order_factory.create_list(legs))
    # The first leg closes the long; the second would open a short under the halt.
    assert [leg.status for leg in legs] == [OrderStatus.DENIED, OrderStatus.DENIED]
    assert harness.strategies[0].denied[-1].reason.startswith("kill switch halted")


# -- 9. the CVaR search on the size-increment grid equals a brute-force search -----------------


def _largest_fitting_integer(
    scenarios: Scenarios,
    snapshot: Snapshot,
    intent: OrderIntent,
    equity: float,
    ceiling: float,
    fee_per_unit: float,
) -> float:
    """Oracle: the CVaR limit's fit test searched exhaustively on the integer grid (inf when the
    ceiling fits)."""
    base, own, side_value, other_value, extra = scenarios.vertex_pnls(
        snapshot,
        intent.instrument_id,
        intent.side,
    )
    per_unit = intent.side * intent.unit_value
    tolerance = 1e-9 * equity

    def risk(q: float) -> float:
        return scenarios.cvar(base + own * (side_value + q * per_unit)) + extra

    if risk(ceiling) <= scenarios.limit * (equity - fee_per_unit * ceiling) + tolerance:
        return float("inf")
    before = max(risk(0.0), scenarios.cvar(base + own * other_value) + extra) / equity
    allowed = max(scenarios.limit, before)

    def fits(q: float) -> bool:
        return risk(q) <= allowed * (equity - fee_per_unit * q) + tolerance

    if fits(ceiling):
        return float("inf")
    low, high = 0, int(ceiling)  # fits(low) (or low = 0), not fits(high); fits is an interval
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return float(low)


def test_cvar_grid_search_finds_the_largest_fitting_multiple():
    rng = np.random.default_rng(3)
    ids = [InstrumentId.from_str(f"I{k}.SIM") for k in range(7)]
    equity, fee_rate = 1_000_000.0, 0.0005
    binding = 0
    for _ in range(40):
        returns = rng.standard_t(4, size=(120, len(ids))) * 0.01
        limit = float(rng.choice([0.002, 0.005, 0.01]))
        scenarios = Scenarios(ids, returns, CvarLimit(limit=limit, window=120, min_observations=60))
        snapshot = Snapshot(equity=equity)
        for instrument_id in ids:
            exposure = Exposure(unit_value=float(rng.choice([20.0, 100.0, 250.0])))
            exposure.position = float(rng.integers(-800, 800))
            if rng.random() < 0.7:
                exposure.pending_buy = float(rng.integers(0, 500))
                exposure.pending_sell = float(rng.integers(0, 500))
            exposure.long_bound = max(exposure.position, 0.0) + exposure.pending_buy
            exposure.short_bound = min(exposure.position, 0.0) - exposure.pending_sell
            snapshot.exposures[instrument_id] = exposure
        snapshot.finalize()
        unit_value = snapshot.exposures[ids[0]].unit_value
        ceiling = float(rng.integers(1, 20_000))
        intent = OrderIntent(
            instrument_id=ids[0],
            side=int(rng.choice([1, -1])),
            quantity=ceiling,
            unit_value=unit_value,
            entry_value=unit_value,
            stop_distance=None,
            fee_rate=fee_rate,
            size_increment=1.0,
        )
        fee_per_unit = fee_rate * unit_value
        result = LimitSet._cvar(snapshot, intent, scenarios, equity, ceiling, fee_per_unit)
        expected = _largest_fitting_integer(
            scenarios,
            snapshot,
            intent,
            equity,
            ceiling,
            fee_per_unit,
        )
        assert result.max_quantity == expected, (result, expected)
        binding += expected != float("inf")
    assert binding >= 10
