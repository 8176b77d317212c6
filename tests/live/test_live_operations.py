"""Operations of a live node: kill switch, stop behaviour, signals, health line, failures."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from live_kit import REPO
from live_kit import paper_document
from live_kit import write_yaml
from nautilus_trader.model.enums import TradingState

from grodt.cli import main
from grodt.messages import KILL_SWITCH_TOPIC
from grodt.nodes.live import LiveNode
from node_configs.live_schema import load_live_config

HERE = Path(__file__).resolve().parent
GRODT = str(Path(sys.executable).parent / "grodt")


def _probe(bar_type: str, instrument_id: str = "AAA.PAPER", **config) -> dict:
    return {
        "path": "live_probes:OrderProbe",
        "config": {"instrument_id": instrument_id, "bar_type": bar_type, **config},
    }


def _open_positions(run_dir: Path) -> pd.DataFrame:
    positions = pd.read_csv(run_dir / "positions.csv")
    if positions.empty:
        return positions
    return positions[(positions["side"] != "FLAT") & (~positions["is_snapshot"].astype(bool))]


def test_kill_file_present_at_start_halts_new_risk(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "KILL").write_text(json.dumps({"reason": "desk closed", "user": "ops"}))
    spec = load_live_config(
        write_yaml(
            tmp_path / "k.yaml", paper_document("k", [bar_types["AAA"]], [_probe(bar_types["AAA"])])
        ),
    )
    outcome = LiveNode(spec, run_dir, catalog=catalog, quiet=True).run()
    summary = outcome.summary
    assert summary["orders"] > 0
    assert summary["fills"] == 0  # every opening order denied: only reducing orders pass
    statuses = set(outcome.orders["status"].astype(str))
    assert statuses == {"DENIED"}
    kill = summary["kill_switch"]
    assert kill["halted"] is True and kill["trading_state"] == "REDUCING"
    assert kill["history"][0]["action"] == "halt"
    assert kill["history"][0]["source"] == "operator"
    assert "desk closed (by ops)" in kill["history"][0]["reason"]


def test_kill_switch_coordinates_sources_on_the_bus(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    spec = load_live_config(
        write_yaml(
            tmp_path / "c.yaml", paper_document("c", [bar_types["AAA"]], [_probe(bar_types["AAA"])])
        ),
    )
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    try:
        kernel = node.node.kernel
        switch = node.kill_switch
        assert kernel.risk_engine.trading_state == TradingState.ACTIVE
        kernel.msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "halt", "reason": "drawdown 21%", "source": "RiskGate"},
        )
        assert kernel.risk_engine.trading_state == TradingState.REDUCING
        switch.halt("manual", "operator")
        kernel.msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "reset", "reason": "new day", "source": "RiskGate"},
        )
        # The operator's halt still holds.
        assert kernel.risk_engine.trading_state == TradingState.REDUCING
        assert switch.halts == {"operator": "manual"}
        switch.reset("all clear", "operator")
        assert kernel.risk_engine.trading_state == TradingState.ACTIVE
        assert not switch.halted
        kernel.msgbus.publish(KILL_SWITCH_TOPIC, {"action": "explode"})
        assert kernel.risk_engine.trading_state == TradingState.ACTIVE
    finally:
        node._dispose()


def test_operator_kill_switch_reaches_the_portfolio_risk_gate(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    risk = {"include": str(REPO / "node_configs" / "components" / "risk" / "default.yaml")}
    document = paper_document("g", [bar_types["AAA"]], [_probe(bar_types["AAA"])], risk=risk)
    spec = load_live_config(write_yaml(tmp_path / "g.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    try:
        kernel = node.node.kernel
        gate = next(e for e in node.extensions if e.name == "risk").gate
        node.kill_switch.halt("fat finger", "operator")
        assert gate.kill_switch.halted
        assert kernel.risk_engine.trading_state == TradingState.REDUCING
        node.kill_switch.reset("checked", "operator")
        assert not gate.kill_switch.halted
        assert kernel.risk_engine.trading_state == TradingState.ACTIVE
    finally:
        node._dispose()


@pytest.mark.parametrize(("on_stop", "open_at_end"), [("keep", 1), ("flatten", 0)])
def test_positions_kept_or_flattened_on_stop(minute_catalog, tmp_path: Path, on_stop, open_at_end):
    catalog, bar_types = minute_catalog
    # 400 bars, entries every 5th bar and exits on the next one: long at the last bar.
    probe = _probe(bar_types["AAA"], every=5, close_positions_on_stop=False)
    document = paper_document("stop", [bar_types["AAA"]], [probe], operations={"on_stop": on_stop})
    spec = load_live_config(write_yaml(tmp_path / "s.yaml", document))
    outcome = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run()
    assert len(_open_positions(tmp_path / "run")) == open_at_end
    if on_stop == "flatten":
        assert outcome.summary["flatten"] == {"flattened": True, "open_positions": []}


def test_a_failing_component_stops_the_node_gracefully(minute_catalog, tmp_path: Path):
    """Nautilus' default is os._exit(1) on an engine-queue exception; grodt stops gracefully,
    flushes the extensions and writes the reports (this test would not return otherwise)."""
    catalog, bar_types = minute_catalog
    probe = _probe(bar_types["AAA"], every=5, raise_on_bar=52)
    spec = load_live_config(
        write_yaml(tmp_path / "f.yaml", paper_document("fail", [bar_types["AAA"]], [probe])),
    )
    outcome = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_by"].startswith("shutdown:")
    assert "probe failure on bar 52" in summary["stopped_by"]
    assert summary["replay"]["records"] < 400
    assert outcome.summary["orders"] > 0


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _health_lines(run_dir: Path) -> list[dict]:
    path = run_dir / "health.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
def test_sigterm_kill_command_and_health_line_in_a_running_node(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    document = paper_document(
        "ops",
        [bar_types["AAA"]],
        [_probe(bar_types["AAA"], every=3, close_positions_on_stop=False)],
        replay={"pacing": "accelerated", "speed": 600},  # a bar every 0.1 s: 40 s of data
        operations={"on_stop": "flatten", "health_interval_seconds": 0.2},
        forensics={
            "include": str(REPO / "node_configs" / "components" / "forensics" / "default.yaml")
        },
    )
    config = write_yaml(tmp_path / "ops.yaml", document)
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    process = subprocess.Popen(
        [GRODT, "live", str(config), "--run-dir", str(run_dir), "--catalog", str(catalog)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(lambda: len(_health_lines(run_dir)) >= 2, 90, "health lines")
        runner = CliRunner()
        status = runner.invoke(main, ["live", "status", str(run_dir)])
        assert status.exit_code == 0 and "running" in status.output
        kill = runner.invoke(main, ["live", "kill", str(run_dir), "--reason", "test halt"])
        assert kill.exit_code == 0 and (run_dir / "KILL").exists()
        _wait_for(
            lambda: any(h["trading_state"] == "REDUCING" for h in _health_lines(run_dir)),
            30,
            "the kill switch to apply",
        )
        stop = runner.invoke(main, ["live", "stop", str(run_dir)])
        assert stop.exit_code == 0, stop.output
        out, err = process.communicate(timeout=90)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGKILL)
            process.communicate()
    assert process.returncode == 0, err[-3000:]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "SIGTERM"
    assert summary["replay"]["records"] < summary["replay"]["total"]
    assert summary["flatten"]["flattened"] is True
    assert summary["kill_switch"]["history"][0]["reason"].startswith("test halt")
    assert len(_open_positions(run_dir)) == 0
    # Nothing lost from the forensics queue: every record enqueued was delivered at stop,
    # the closing orders' events included.
    forensics = summary["extensions"]["forensics"]
    assert forensics["enqueued"] == forensics["delivered"] > 0
    assert forensics["undelivered"] == 0 and forensics["failed"] == 0
    assert list((run_dir / "forensics").rglob("*.parquet"))
    health = _health_lines(run_dir)
    for key in (
        "positions",
        "gross_exposure",
        "net_exposure",
        "realized_pnl",
        "unrealized_pnl",
        "equity",
        "orders_open",
        "queues",
        "latency",
        "replay",
        "kill_switch",
        "rss_mb",
    ):
        assert key in health[-1]
    assert "health " in err and "queues data=" in err  # the CLI prints the line on stderr
    assert "stopped by SIGTERM" in out
