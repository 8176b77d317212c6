"""The tearsheet's reading path: only the record types it draws are read and decoded (order and
position events, most of a run's records, are never parsed), the same frames as reading every
record with grodt.forensics.reader, and long regime series downsampled for plotting."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from grodt.core.records import AllocationRecord
from grodt.core.records import OrderEventRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import RiskVerdictRecord
from grodt.core.records import record_to_json
from grodt.forensics.reader import read_run
from grodt.reports.tearsheet import DRAWN_FIELDS
from grodt.reports.tearsheet import allocation_series
from grodt.reports.tearsheet import load_forensics
from grodt.reports.tearsheet import regime_series
from grodt.reports.tearsheet import risk_verdicts

T0 = 1_704_200_000_000_000_000
MINUTE = 60_000_000_000


def _records(n: int) -> list[tuple[str, object]]:
    rng = np.random.default_rng(3)
    out: list[tuple[str, object]] = []
    for i in range(n):
        t = T0 + i * MINUTE
        p = rng.dirichlet([2, 2, 2])
        out.append(
            (
                "grodt.forensics.regime",
                RegimeUpdateRecord(
                    ts_event=t,
                    ts_init=t,
                    component_id="RegimeActor-000",
                    instrument_id=("SYNA.XSYN", "SYNB.XSYN")[i % 2],
                    probabilities={"bull": p[0], "bear": p[1], "sideways": p[2]},
                    most_likely="bull",
                    entropy=0.5,
                ),
            ),
        )
        out.append(
            (
                "grodt.forensics.orders",
                OrderEventRecord(
                    ts_event=t,
                    ts_init=t,
                    component_id="S1-001",
                    event_type="OrderFilled",
                    strategy_id="S1-001",
                    instrument_id="SYNA.XSYN",
                    client_order_id=f"O-{i}",
                ),
            ),
        )
        if i % 3 == 0:
            out.append(
                (
                    "grodt.forensics.risk",
                    RiskVerdictRecord(
                        ts_event=t,
                        ts_init=t,
                        component_id="RiskGate",
                        strategy_id="S1-001",
                        instrument_id="SYNA.XSYN",
                        client_order_id=f"O-{i}",
                        verdict=("approve", "deny", "resize")[i % 3],
                        requested_quantity="100",
                        approved_quantity="100",
                        equity=1e6,
                        gross_exposure=1e5,
                        net_exposure=1e5,
                    ),
                ),
            )
        if i % 50 == 0:
            out.append(
                (
                    "grodt.forensics.allocations",
                    AllocationRecord(
                        ts_event=t,
                        ts_init=t,
                        component_id="Meta",
                        weights={"S1-001": 0.4, "S2-001": 0.6},
                    ),
                ),
            )
    return out


def _write(run_dir: Path, records: list[tuple[str, object]], record_type_column: bool) -> None:
    by_topic: dict[str, list[tuple[int, object]]] = {}
    for seq, (topic, record) in enumerate(records, start=1):
        by_topic.setdefault(topic, []).append((seq, record))
    for topic, numbered in by_topic.items():
        folder = run_dir / "forensics" / topic
        folder.mkdir(parents=True, exist_ok=True)
        payloads = [record_to_json(r).decode() for _, r in numbered]
        if topic.endswith("orders"):
            # Never decoded: a payload the record reader would reject does no harm.
            payloads[0] = '{"record_type":"order_event", broken'
        columns = {
            "session": ["s1"] * len(numbered),
            "seq": [seq for seq, _ in numbered],
            "topic": [topic] * len(numbered),
            "key": ["k"] * len(numbered),
            "payload": payloads,
        }
        if record_type_column:
            columns["record_type"] = [r.record_type for _, r in numbered]
        pq.write_table(pa.table(columns), folder / "part-s1-00000.parquet")


def _expected(run_dir: Path) -> dict[str, pd.DataFrame]:
    by_type: dict[str, list[dict]] = {}
    for stored in read_run(run_dir):
        record = stored.record
        by_type.setdefault(record.record_type, []).append(
            {"record_type": record.record_type, **record.model_dump(mode="json")},
        )
    return {k: pd.DataFrame(v) for k, v in by_type.items()}


def test_only_drawn_types_are_read_and_equal_the_full_reader(tmp_path):
    records = _records(600)
    for with_column in (True, False):
        run_dir = tmp_path / f"run-{with_column}"
        _write(run_dir, records, with_column)
        frames = load_forensics(run_dir)
        assert set(frames) == {"regime_update", "risk_verdict", "allocation"}
        # The full reader (every record decoded and validated) fails on the broken order event;
        # without it, the drawn types are the same frames.
        broken = run_dir / "forensics" / "grodt.forensics.orders"
        for path in broken.glob("*.parquet"):
            path.unlink()
        expected = _expected(run_dir)
        for record_type, frame in frames.items():
            pd.testing.assert_frame_equal(frame, expected[record_type][frame.columns])
        assert len(frames["regime_update"]) == 600
        assert (
            json.loads(frames["risk_verdict"].to_json(orient="records"))[0]["verdict"] == "approve"
        )


def test_regime_series_is_downsampled_for_plotting(tmp_path):
    run_dir = tmp_path / "run"
    _write(run_dir, _records(2_000), True)
    regimes = load_forensics(run_dir)["regime_update"]
    full = regime_series(regimes)
    drawn = regime_series(regimes, max_points=100)
    assert set(full) == set(drawn) == {"SYNA.XSYN", "SYNB.XSYN"}
    for instrument, frame in drawn.items():
        assert len(full[instrument]) == 1_000 and len(frame) == 100
        assert frame.index[0] == full[instrument].index[0]
        assert frame.index[-1] == full[instrument].index[-1]
        pd.testing.assert_frame_equal(frame, full[instrument].loc[frame.index])


def test_the_tearsheet_keeps_only_the_fields_it_draws_and_draws_the_same(tmp_path):
    """load_run keeps DRAWN_FIELDS of each record (memory of a long run: the fields, not the
    payloads); the series the charts draw are those of the full records."""
    run_dir = tmp_path / "run"
    _write(run_dir, _records(600), True)
    full = load_forensics(run_dir)
    kept = load_forensics(run_dir, fields=DRAWN_FIELDS)
    assert set(kept) == set(full)
    for record_type, frame in kept.items():
        assert set(frame.columns) <= set(DRAWN_FIELDS[record_type]), record_type
        assert len(frame.columns) >= 2
        pd.testing.assert_frame_equal(frame, full[record_type][frame.columns])
    for instrument, series in regime_series(kept["regime_update"]).items():
        pd.testing.assert_frame_equal(series, regime_series(full["regime_update"])[instrument])
    pd.testing.assert_frame_equal(
        allocation_series(kept["allocation"]), allocation_series(full["allocation"])
    )
    pd.testing.assert_frame_equal(
        risk_verdicts(kept["risk_verdict"]), risk_verdicts(full["risk_verdict"])
    )
