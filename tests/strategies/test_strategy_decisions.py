"""Decision records, trace ids and target exposure built alone, without an engine."""

import math
from decimal import Decimal
from typing import Any

import pytest
from nautilus_trader.common.component import TestClock
from nautilus_trader.common.factories import OrderFactory
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import StrategyId
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from strategies_kit import INSTRUMENT_ID

from grodt.core.records import DecisionRecord
from grodt.core.topics import TARGET_EXPOSURE_TOPIC
from grodt.core.topics import Topics
from strategies.decisions import DecisionRecorder
from strategies.decisions import TargetExposure
from strategies.decisions import entry_signal_record
from strategies.decisions import exit_signal_record
from strategies.decisions import hold_signal_record
from strategies.decisions import intended_order
from strategies.sizing import SizeBreakdown

NOW = 1_700_000_000_000_000_000


def recorder() -> tuple[DecisionRecorder, list[tuple[str, Any]]]:
    published: list[tuple[str, Any]] = []
    recorder = DecisionRecorder(
        INSTRUMENT_ID.value,
        publish=lambda topic, message: published.append((topic, message)),
        now_ns=lambda: NOW,
    )
    recorder.start("S-001", multiplier=10.0)
    return recorder, published


def factory() -> OrderFactory:
    return OrderFactory(TraderId("TESTER-001"), StrategyId("S-001"), TestClock())


def test_trace_ids_count_decisions_per_strategy_and_restart_at_reset():
    rec, _ = recorder()
    assert rec.next_trace_id(5) == "S-001:5:1"
    assert rec.next_trace_id(5) == "S-001:5:2"
    rec.reset()
    assert rec.next_trace_id(9) == "S-001:9:1"


def test_every_target_change_is_published_with_its_exposure():
    rec, published = recorder()
    rec.set_target(-20.0, 50.0, 7, "entry")
    assert (rec.target_quantity, rec.target_exposure) == (-20.0, -10_000.0)
    rec.set_target(0.0, 51.0, 8, "exit:time_stop")
    assert rec.target_exposure == 0.0
    assert published == [
        (
            TARGET_EXPOSURE_TOPIC,
            TargetExposure("S-001", "TEST.SIM", 7, -20.0, -10_000.0, 50.0, "entry"),
        ),
        (
            TARGET_EXPOSURE_TOPIC,
            TargetExposure("S-001", "TEST.SIM", 8, 0.0, 0.0, 51.0, "exit:time_stop"),
        ),
    ]
    rec.adopt_target(30.0)  # a recovered position: no change to publish
    assert rec.target_quantity == 30.0 and len(published) == 2


def test_features_add_the_inputs_the_target_the_stop_and_the_sizing_terms():
    rec, _ = recorder()
    rec.set_target(4.0, 100.0, 1, "entry")
    sizing = SizeBreakdown(
        quantity=Decimal(4),
        equity=1000.0,
        allocated_equity=500.0,
        risk_amount=5.0,
        stop_distance=1.25,
        risk_quantity=4.0,
        cap_quantity=5.0,
        base_quantity=4.0,
        regime_scale=1.0,
        strength=1.0,
    )
    common = {"close": 100.0, "atr": 0.5, "regime_scale": 0.8, "allocation_weight": 0.5}
    features = rec.features({"ema": 99.0}, **common, bars_held=3, stop_price=98.75, sizing=sizing)
    assert list(features)[:9] == [
        "ema",
        "close",
        "atr",
        "regime_scale",
        "allocation_weight",
        "target_quantity",
        "target_exposure",
        "bars_held",
        "stop_price",
    ]
    assert features["target_exposure"] == 4000.0 and features["bars_held"] == 3.0
    assert features["risk_amount"] == 5.0 and features["signal_strength"] == 1.0
    bare = rec.features({}, **common, bars_held=0, stop_price=math.nan, sizing=None)
    assert "stop_price" not in bare and "equity" not in bare


def test_signals_are_clipped_to_their_ranges():
    entry = entry_signal_record(
        direction=-1,
        strength=1.0,
        price=100.0,
        stop_distance=2.0,
        target_distance=3.0,
        horizon_bars=20,
        regime_scale=1.7,
    )
    assert (entry.strength, entry.expected_return, entry.uncertainty) == (-1.0, -0.03, 0.02)
    assert (entry.horizon_bars, entry.confidence) == (20, 1.0)
    assert exit_signal_record(-0.2).confidence == 0.0
    hold = hold_signal_record(-1, 0.4)
    assert (hold.strength, hold.confidence) == (-0.4, 0.4)


def test_the_intended_order_describes_the_order_sent():
    orders = factory()
    exit_order = orders.market(
        INSTRUMENT_ID, OrderSide.SELL, Quantity.from_int(7), reduce_only=True
    )
    intended = intended_order(exit_order, reduce_only=True)
    assert intended.client_order_id == exit_order.client_order_id.value
    assert (intended.side, intended.order_type, intended.quantity) == ("SELL", "MARKET", "7")
    assert intended.stop_loss is None and intended.reduce_only
    stop = orders.stop_market(INSTRUMENT_ID, OrderSide.BUY, Quantity.from_int(3), Price(5.0, 2))
    intended = intended_order(stop, reduce_only=True, stop_loss="5.00")
    assert (intended.side, intended.order_type, intended.stop_loss) == (
        "BUY",
        "STOP_MARKET",
        "5.00",
    )


def test_a_record_is_validated_counted_and_published():
    rec, published = recorder()
    record = rec.record(
        ts_event=5,
        trace_id=rec.next_trace_id(5),
        action="exit",
        reason="time_stop",
        features={"close": 100.0},
        signal=exit_signal_record(0.5),
        intended=None,
        regime_probabilities={"bull": 0.5, "bear": 0.25, "sideways": 0.25},
        model_versions={"regime": "prior", "allocation": "static"},
        allocation_weight=0.5,
    )
    assert published == [(Topics.DECISIONS, record)]
    assert rec.decisions == 1
    assert DecisionRecord.model_validate(record.model_dump()) == record
    assert (record.trace_id, record.ts_init, record.component_id) == ("S-001:5:1", NOW, "S-001")
    assert record.strategy_id == "S-001" and record.instrument_id == "TEST.SIM"
    with pytest.raises(ValueError, match="action"):
        rec.record(
            ts_event=5,
            trace_id="S-001:5:2",
            action="teleport",
            reason="x",
            features={},
            signal=exit_signal_record(0.5),
            intended=None,
            regime_probabilities={"bull": 1.0, "bear": 0.0, "sideways": 0.0},
            model_versions={},
            allocation_weight=0.5,
        )
    assert rec.decisions == 1
