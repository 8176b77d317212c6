"""``grodt forensics tail`` and ``grodt forensics trace`` on a real run and a real broker."""

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from actors.forensics.config import TopicNames
from actors.forensics.pipeline import ForensicsPipeline
from actors.forensics.sinks import KafkaSink
from grodt.cli import main
from grodt.core.records import DecisionRecord
from grodt.forensics.reader import read_run
from grodt.test_kit.tansu import TansuBroker


def invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def first_decision(run_dir: Path) -> DecisionRecord:
    stored = read_run(run_dir, topics=[TopicNames().decisions])
    record = stored[1].record
    assert isinstance(record, DecisionRecord)
    return record


def test_trace_tells_the_whole_story(traced_run: tuple[Path, dict]) -> None:
    run_dir, _ = traced_run
    decision = first_decision(run_dir)
    code, out, _ = invoke("forensics", "trace", decision.trace_id, "--run", str(run_dir))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == f"trace {decision.trace_id}"
    assert decision.reason in out
    assert "signal: strength" in out and "regime: bull 0.50" in out
    assert any(line.strip().startswith("fill") for line in lines)
    assert "PositionClosed" in out or "PositionOpened" in out
    assert any(line.strip().startswith("verdict") for line in lines)
    assert lines[-1].strip().startswith("complete: 1 decision")


def test_trace_as_json_and_strict(traced_run: tuple[Path, dict]) -> None:
    run_dir, _ = traced_run
    decision = first_decision(run_dir)
    args = ["forensics", "trace", decision.trace_id, "--run", str(run_dir), "--json"]
    code, out, _ = invoke(*args, "--strict")
    assert code == 0
    payload = json.loads(out)
    assert payload["problems"] == []
    assert payload["decisions"][0]["record_type"] == "decision"
    (order,) = payload["orders"]
    assert order["client_order_id"] == decision.intended_order.client_order_id  # type: ignore[union-attr]
    assert order["filled_quantity"] == order["quantity"] == "100"
    assert order["events"][0]["event_type"] == "OrderInitialized"


def test_unknown_trace_is_a_clear_error(traced_run: tuple[Path, dict]) -> None:
    run_dir, _ = traced_run
    code, _, err = invoke("forensics", "trace", "nope:1:1", "--run", str(run_dir))
    assert code == 2
    assert "error: trace 'nope:1:1': no record in" in err


def test_tail_a_run(traced_run: tuple[Path, dict]) -> None:
    run_dir, _ = traced_run
    code, out, _ = invoke("forensics", "tail", "decisions", "--run", str(run_dir), "-n", "3")
    assert code == 0
    lines = out.splitlines()
    assert len(lines) == 3 and all(" decision " in line for line in lines)
    decision = first_decision(run_dir)
    code, out, _ = invoke(
        "forensics",
        "tail",
        "--run",
        str(run_dir),
        "--trace-id",
        decision.trace_id,
        "--json",
    )
    rows = [json.loads(line) for line in out.splitlines()]
    assert {row["record"]["trace_id"] for row in rows} == {decision.trace_id}
    kinds = {row["record"]["record_type"] for row in rows}
    assert {"decision", "order_event", "position_event"} <= kinds


def test_tail_and_trace_from_kafka(broker: TansuBroker, tmp_path: Path) -> None:
    topics = TopicNames()
    pipeline = ForensicsPipeline(
        KafkaSink(broker.bootstrap, list(topics.model_dump().values()), partitions=2),
        tmp_path / "spill",
    )
    pipeline.start()
    from test_pipeline import decision

    for i in range(12):
        pipeline.offer(topics.decisions, decision(i))
    assert pipeline.flush(20.0)
    pipeline.close(5.0)
    code, out, _ = invoke(
        "forensics",
        "tail",
        "decisions",
        "--bootstrap",
        broker.bootstrap,
        "--idle-timeout",
        "1",
    )
    assert code == 0
    assert sorted(line.split("'")[1] for line in out.splitlines()) == sorted(
        f"decision {i}" for i in range(12)
    )
    code, out, _ = invoke("forensics", "trace", "S1-000:3", "--bootstrap", broker.bootstrap)
    assert code == 0 and "decision 3" in out
    # The decision intended no order: that is a complete trace.
    assert out.splitlines()[-1].strip().startswith("complete")


def test_tail_without_a_source_explains_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    from grodt.core.settings import get_settings

    monkeypatch.delenv("GRODT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    code, _, err = invoke("forensics", "tail")
    assert code == 2 and "--bootstrap" in err and "--run DIR" in err
