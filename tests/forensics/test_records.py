"""Record contracts: golden JSON of every record type, and the compatibility rule.

Golden files are the wire form of one example per record type. A change to a contract shows up
here as a diff of the golden file: additive changes (new optional field) update the golden file
and keep ``SCHEMA_VERSION``; anything else bumps it (docs/forensics.md). Files under
``golden/archive/`` are records written by earlier revisions of the same major version: they must
stay readable. Regenerate with ``GRODT_UPDATE_GOLDEN=1 pytest tests/forensics/test_records.py``.
"""

import json
import math
import os
from pathlib import Path

import pytest
from pydantic_core import PydanticSerializationError

from grodt.core.records import RECORD_TYPES
from grodt.core.records import SCHEMA_VERSION
from grodt.core.records import AllocationRecord
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import MonitorRecord
from grodt.core.records import OrderEventRecord
from grodt.core.records import PositionEventRecord
from grodt.core.records import RecordBase
from grodt.core.records import RecordDecodeError
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import Signal
from grodt.core.records import make_trace_id
from grodt.core.records import record_from_json
from grodt.core.records import record_to_json
from grodt.core.records import trace_id_from_tags
from grodt.core.records import trace_tag

GOLDEN = Path(__file__).parent / "golden"
TS = 1_704_209_160_000_000_000  # 2024-01-02 15:26:00 UTC
TRACE = make_trace_id("S1VwapEmaScalper-000", TS, 7)

EXAMPLES: dict[str, RecordBase] = {
    "decision": DecisionRecord(
        trace_id=TRACE,
        ts_event=TS,
        ts_init=TS + 1_500,
        component_id="S1VwapEmaScalper-000",
        model_versions={"regime": "hmm-3f2a", "allocation": "static"},
        strategy_id="S1VwapEmaScalper-000",
        instrument_id="SPX.SAMPLE",
        action="entry",
        reason="close above VWAP and EMA(9) > EMA(21)",
        features={"close": 4742.83, "vwap": 4738.1, "ema_fast": 4741.2, "atr": float("nan")},
        regime_probabilities={"bull": 0.71, "bear": 0.09, "sideways": 0.2},
        signal=Signal(
            strength=0.8,
            expected_return=0.0012,
            uncertainty=0.0045,
            horizon_bars=30,
            confidence=0.66,
        ),
        allocation_weight=0.35,
        intended_order=IntendedOrder(
            client_order_id="O-20240102-152600-001-000-1",
            side="BUY",
            quantity="21",
            stop_loss="4721.50",
        ),
    ),
    "risk_verdict": RiskVerdictRecord(
        trace_id=TRACE,
        ts_event=TS,
        ts_init=TS + 34_000,
        component_id="RiskGate",
        strategy_id="S1VwapEmaScalper-000",
        instrument_id="SPX.SAMPLE",
        client_order_id="O-20240102-152600-001-000-1",
        verdict="resize",
        reason="instrument cap 25% of equity",
        requested_quantity="21",
        approved_quantity="18",
        equity=350_000.0,
        gross_exposure=0.62,
        net_exposure=0.41,
        weights={"S1VwapEmaScalper-000": 0.35},
        limits={"max_instrument_weight": 0.25, "max_gross": 1.0},
    ),
    "allocation": AllocationRecord(
        trace_id=make_trace_id("MetaController", TS, 3),
        ts_event=TS,
        ts_init=TS,
        component_id="MetaController",
        model_versions={"performance": "lgbm-1a"},
        weights={"S1VwapEmaScalper-000": 0.35, "S2MeanReversion-000": 0.4},
        predicted_performance={"S1VwapEmaScalper-000": 0.8, "S2MeanReversion-000": 1.1},
        reason="monthly rebalance",
    ),
    "regime_update": RegimeUpdateRecord(
        trace_id=make_trace_id("RegimeActor", TS, 12),
        ts_event=TS,
        ts_init=TS + 800,
        component_id="RegimeActor",
        model_versions={"regime": "hmm-3f2a"},
        instrument_id="SPX.SAMPLE",
        probabilities={"bull": 0.71, "bear": 0.09, "sideways": 0.2},
        most_likely="bull",
        entropy=0.78,
        reason="label change",
    ),
    "monitor": MonitorRecord(
        trace_id=make_trace_id("StrategyMonitor", TS, 3),
        ts_event=TS,
        ts_init=TS + 500,
        component_id="StrategyMonitor",
        monitor="strategy_vs_backtest",
        subject="S1VwapEmaScalper-000",
        figures={"trades": 20.0, "hit_rate": 0.35, "mean_return": -0.001, "sharpe": -0.12},
        expected={"hit_rate": 0.55, "mean_return": 0.002, "sharpe": 0.2},
        action="retrain",
        reason="hit_rate 0.350 < 0.550 - 0.15",
    ),
    "order_event": OrderEventRecord(
        trace_id=TRACE,
        ts_event=TS + 1_000_000,
        ts_init=TS + 1_000_000,
        component_id="S1VwapEmaScalper-000",
        event_type="OrderFilled",
        strategy_id="S1VwapEmaScalper-000",
        instrument_id="SPX.SAMPLE",
        client_order_id="O-20240102-152600-001-000-1",
        venue_order_id="SAMPLE-1-001",
        side="BUY",
        last_qty="18",
        last_px="4742.90",
        commission="0.85 USD",
        position_id="SPX.SAMPLE-S1VwapEmaScalper-000",
        order_type="MARKET",
        trade_id="SAMPLE-1-001-1",
        liquidity_side="TAKER",
    ),
    "position_event": PositionEventRecord(
        trace_id=TRACE,
        ts_event=TS + 1_000_000,
        ts_init=TS + 1_000_000,
        component_id="S1VwapEmaScalper-000",
        event_type="PositionOpened",
        strategy_id="S1VwapEmaScalper-000",
        instrument_id="SPX.SAMPLE",
        position_id="SPX.SAMPLE-S1VwapEmaScalper-000",
        client_order_id="O-20240102-152600-001-000-1",
        side="LONG",
        signed_qty=18.0,
        quantity="18",
        peak_qty="18",
        last_qty="18",
        last_px="4742.90",
        avg_px_open=4742.9,
        avg_px_close=0.0,
        realized_return=0.0,
        realized_pnl="-0.85 USD",
        unrealized_pnl="0.00 USD",
    ),
}


def _golden_path(record_type: str) -> Path:
    return GOLDEN / f"{record_type}.json"


def test_every_record_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(RECORD_TYPES)


@pytest.mark.parametrize("record_type", sorted(RECORD_TYPES))
def test_wire_form_matches_golden(record_type: str) -> None:
    example = EXAMPLES[record_type]
    wire = record_to_json(example)
    if os.environ.get("GRODT_UPDATE_GOLDEN"):
        _golden_path(record_type).write_text(json.dumps(json.loads(wire), indent=2) + "\n")
    golden_text = _golden_path(record_type).read_text()
    golden = json.loads(golden_text)
    produced = json.loads(wire)
    # Same fields, same values, same order ("record_type" first, then the envelope).
    assert list(produced) == list(golden)
    assert produced == golden
    assert list(produced)[:7] == [
        "record_type",
        "schema_version",
        "trace_id",
        "ts_event",
        "ts_init",
        "component_id",
        "model_versions",
    ]
    assert produced["record_type"] == record_type
    assert produced["schema_version"] == SCHEMA_VERSION


@pytest.mark.parametrize("record_type", sorted(RECORD_TYPES))
def test_golden_reads_back_to_the_example(record_type: str) -> None:
    record = record_from_json(_golden_path(record_type).read_bytes(), tolerant=False)
    assert type(record) is RECORD_TYPES[record_type]
    assert record_to_json(record) == record_to_json(EXAMPLES[record_type])


def test_archived_records_of_earlier_revisions_stay_readable() -> None:
    archived = sorted((GOLDEN / "archive").glob("*.json"))
    assert archived, "golden/archive holds records written before additive changes"
    for path in archived:
        record = record_from_json(path.read_bytes(), tolerant=False)
        assert record.schema_version == SCHEMA_VERSION
    # The pre-revision order event lacks the fields added later: they take their defaults.
    old = record_from_json((GOLDEN / "archive" / "order_event-r1.json").read_bytes())
    assert isinstance(old, OrderEventRecord)
    assert old.tags == [] and old.trade_id is None and old.order_type is None
    assert old.last_px == "4742.90"


def test_unknown_fields_are_ignored_by_tolerant_readers_and_reported() -> None:
    data = json.loads(_golden_path("decision").read_text())
    data["expected_slippage_bps"] = 1.5
    data["signal"]["skew"] = -0.2
    unknown: list[str] = []
    record = record_from_json(json.dumps(data), unknown_fields=unknown)
    assert isinstance(record, DecisionRecord)
    assert sorted(unknown) == ["expected_slippage_bps", "signal.skew"]
    assert record.signal == EXAMPLES["decision"].signal
    with pytest.raises(RecordDecodeError, match="expected_slippage_bps"):
        record_from_json(json.dumps(data), tolerant=False)


def test_records_of_a_newer_major_version_are_refused() -> None:
    data = json.loads(_golden_path("allocation").read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(RecordDecodeError, match="newer than this reader"):
        record_from_json(json.dumps(data))


def test_decode_errors_name_the_type_and_field() -> None:
    data = json.loads(_golden_path("risk_verdict").read_text())
    data["verdict"] = "maybe"
    with pytest.raises(RecordDecodeError, match=r"risk_verdict: invalid record: verdict"):
        record_from_json(json.dumps(data))
    with pytest.raises(RecordDecodeError, match="unknown record_type 'trade'"):
        record_from_json(b'{"record_type": "trade"}')
    with pytest.raises(RecordDecodeError, match="not a JSON record"):
        record_from_json(b"{nope")


def test_non_finite_features_survive_the_round_trip() -> None:
    record = EXAMPLES["decision"].model_copy(
        update={"features": {"a": float("nan"), "b": float("inf"), "c": -float("inf")}},
    )
    wire = record_to_json(record)
    assert b'"a":"NaN"' in wire and b'"b":"Infinity"' in wire and b'"c":"-Infinity"' in wire
    back = record_from_json(wire)
    assert isinstance(back, DecisionRecord)
    assert math.isnan(back.features["a"])
    assert back.features["b"] == math.inf and back.features["c"] == -math.inf


def test_unvalidated_records_with_wrong_types_do_not_serialise_silently() -> None:
    record = DecisionRecord.model_construct(**{**dict(EXAMPLES["decision"]), "ts_event": "soon"})
    with pytest.raises(PydanticSerializationError):
        record_to_json(record)


def test_trace_tags_round_trip() -> None:
    assert trace_id_from_tags(["EXIT", trace_tag(TRACE)]) == TRACE
    assert trace_id_from_tags(["EXIT"]) is None
    assert trace_id_from_tags(None) is None
