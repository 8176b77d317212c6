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
from grodt.core.topics import KILL_SWITCH_TOPIC
from grodt.nodes.live import LiveNode
from node_configs.live_schema import load_live_config

HERE = Path(__file__).resolve().parent
# The command as a module of this interpreter: works whatever the venv layout (no assumption
# that a `grodt` script sits next to sys.executable).
GRODT_COMMAND = [sys.executable, "-m", "grodt"]


def _probe(bar_type: str, instrument_id: str = "AAA.PAPER", **config) -> dict:
    return {
        "path": "live_kit_probes:OrderProbe",
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
    # Halted by the switch's per-strategy guard; Nautilus' trading state is left alone.
    assert kill["halted"] is True and kill["trading_state"] == "ACTIVE"
    assert kill["denied"] == summary["orders"]
    assert kill["history"][0]["action"] == "halt"
    assert kill["history"][0]["source"] == "operator"
    assert "desk closed (by ops)" in kill["history"][0]["reason"]


@pytest.mark.parametrize("mirror", [False, True])
def test_kill_switch_coordinates_sources_on_the_bus(minute_catalog, tmp_path: Path, mirror):
    """Halts are kept per source; Nautilus' REDUCING follows them only when mirroring is on."""
    catalog, bar_types = minute_catalog
    document = paper_document(
        "c",
        [bar_types["AAA"]],
        [_probe(bar_types["AAA"])],
        operations={"kill_switch": {"mirror_trading_state": mirror}},
    )
    spec = load_live_config(write_yaml(tmp_path / "c.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    halted_state = TradingState.REDUCING if mirror else TradingState.ACTIVE
    try:
        kernel = node.node.kernel
        switch = node.kill_switch
        assert kernel.risk_engine.trading_state == TradingState.ACTIVE
        kernel.msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "halt", "reason": "drawdown 21%", "source": "RiskGate"},
        )
        assert switch.halted
        assert kernel.risk_engine.trading_state == halted_state
        switch.halt("manual", "operator")
        kernel.msgbus.publish(
            KILL_SWITCH_TOPIC,
            {"action": "reset", "reason": "new day", "source": "RiskGate"},
        )
        # The operator's halt still holds.
        assert switch.halts == {"operator": "manual"}
        assert kernel.risk_engine.trading_state == halted_state
        assert switch.state()["halted"] is True
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
        assert gate.kill_switch is node.kill_switch  # one switch per kernel, two members
        node.kill_switch.halt("fat finger", "operator")
        assert gate.kill_switch.halted and node.kill_switch.halted
        node.kill_switch.reset("checked", "operator")
        assert not gate.kill_switch.halted and not node.kill_switch.halted
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
        assert outcome.summary["flatten"] == {
            "flattened": True,
            "open_positions": [],
            "working_orders": [],
            "external_positions": [],
        }


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
        [*GRODT_COMMAND, "live", str(config), "--run-dir", str(run_dir), "--catalog", str(catalog)],
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
            lambda: any(h["kill_switch"]["halted"] for h in _health_lines(run_dir)),
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


# -- review fixes -----------------------------------------------------------------------------

MARGIN_VENUE = {
    "name": "PAPER",
    "oms_type": "NETTING",
    "account_type": "MARGIN",
    "base_currency": "USD",
    "starting_balances": ["1000000 USD"],
}


def _script(bar_type: str, tag: str = "001", **config) -> dict:
    return {
        "path": "live_kit_probes:ScriptProbe",
        "config": {
            "instrument_id": "AAA.PAPER",
            "bar_type": bar_type,
            "order_id_tag": tag,
            **config,
        },
    }


def _strategies(node: LiveNode) -> dict[str, object]:
    return {str(s.id): s for s in node.node.kernel.trader.strategies()}


def test_kill_file_present_at_start_denies_orders_sent_in_on_start(
    minute_catalog,
    tmp_path: Path,
):
    """The kill file is applied when the node is built, before any strategy's on_start."""
    catalog, bar_types = minute_catalog
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "KILL").write_text("desk closed")
    window = {"start": "2024-03-04T14:31:00Z", "end": "2024-03-04T14:40:00Z"}
    probe = _script(bar_types["AAA"], limits=["0:BUY:10:50.00"])
    document = paper_document("k0", [bar_types["AAA"]], [probe], replay=window)
    spec = load_live_config(write_yaml(tmp_path / "k0.yaml", document))
    outcome = LiveNode(spec, run_dir, catalog=catalog, quiet=True).run()
    assert outcome.summary["stopped_by"] == "replay finished"
    assert list(outcome.orders["status"].astype(str)) == ["DENIED"]
    assert outcome.summary["kill_switch"]["denied"] == 1


@pytest.mark.parametrize("account_type", ["CASH", "MARGIN"])
def test_health_line_equity_matches_the_paper_equity(minute_catalog, tmp_path: Path, account_type):
    """A cash buy debits the notional: equity is the balance plus the positions' market value
    (cash), or the balance plus the unrealised PnL (margin)."""
    catalog, bar_types = minute_catalog
    venue = {**MARGIN_VENUE, "account_type": account_type}
    probe = _script(bar_types["AAA"], orders=["3:BUY:1000"])
    document = paper_document("eq", [bar_types["AAA"]], [probe], venue=venue)
    spec = load_live_config(write_yaml(tmp_path / "eq.yaml", document))
    outcome = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run()
    health = outcome.summary["health"]
    assert health["positions"] == {"AAA.PAPER": 1000.0}
    assert health["net_exposure"]["USD"] > 50_000  # a position worth counting
    assert health["equity"]["USD"] == pytest.approx(outcome.summary["final_equity"], abs=0.01)


def test_flatten_halts_new_risk_and_cancels_emulated_orders(minute_catalog, tmp_path: Path):
    """Strategies keep running while the node flattens: re-entries are denied (node halt), and
    emulated orders (not in orders_open) are canceled too."""
    catalog, bar_types = minute_catalog
    probe = _script(
        bar_types["AAA"],
        orders=["3:BUY:10"],
        limits=["5:BUY:10:1.00:E"],  # emulated, far below the market: never triggers
        reenter_quantity=10,
    )
    document = paper_document(
        "fl",
        [bar_types["AAA"]],
        [probe],
        operations={"on_stop": "flatten", "flatten_timeout_seconds": 3},
    )
    spec = load_live_config(write_yaml(tmp_path / "fl.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    strategy = next(iter(_strategies(node).values()))
    outcome = node.run()
    flatten = outcome.summary["flatten"]
    assert flatten["flattened"] is True, flatten
    assert len(_open_positions(tmp_path / "run")) == 0
    statuses = dict(zip(outcome.orders["type"], outcome.orders["status"], strict=False))
    assert statuses["LIMIT"] == "CANCELED"
    assert any("node: flatten on stop" in reason for reason in strategy.denied)
    history = outcome.summary["kill_switch"]["history"]
    assert [h["source"] for h in history] == ["node"]


def test_flatten_counts_only_the_nodes_strategies(minute_catalog, tmp_path: Path):
    """A position of no strategy of the node (EXTERNAL, from reconciliation) is reported, not
    waited for: the node's own positions are flat."""
    from live_kit import equity
    from nautilus_trader.core.uuid import UUID4
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.enums import LiquiditySide
    from nautilus_trader.model.enums import OmsType
    from nautilus_trader.model.enums import OrderSide
    from nautilus_trader.model.enums import OrderType
    from nautilus_trader.model.events import OrderFilled
    from nautilus_trader.model.identifiers import AccountId
    from nautilus_trader.model.identifiers import ClientOrderId
    from nautilus_trader.model.identifiers import PositionId
    from nautilus_trader.model.identifiers import StrategyId
    from nautilus_trader.model.identifiers import TradeId
    from nautilus_trader.model.identifiers import TraderId
    from nautilus_trader.model.identifiers import VenueOrderId
    from nautilus_trader.model.objects import Money
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.objects import Quantity
    from nautilus_trader.model.position import Position

    catalog, bar_types = minute_catalog
    probe = _script(bar_types["AAA"], orders=["3:BUY:10"])
    document = paper_document(
        "ext",
        [bar_types["AAA"]],
        [probe],
        operations={"on_stop": "flatten", "flatten_timeout_seconds": 3},
    )
    spec = load_live_config(write_yaml(tmp_path / "ext.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    instrument = equity("AAA", "PAPER")
    fill = OrderFilled(
        trader_id=TraderId(spec.engine.trader_id),
        strategy_id=StrategyId("EXTERNAL"),
        instrument_id=instrument.id,
        client_order_id=ClientOrderId("O-EXTERNAL-1"),
        venue_order_id=VenueOrderId("V-EXTERNAL-1"),
        account_id=AccountId("PAPER-001"),
        trade_id=TradeId("T-EXTERNAL-1"),
        order_side=OrderSide.BUY,
        order_type=OrderType.MARKET,
        last_qty=Quantity.from_int(5),
        last_px=Price.from_str("100.00"),
        currency=USD,
        commission=Money(0, USD),
        liquidity_side=LiquiditySide.TAKER,
        event_id=UUID4(),
        ts_event=0,
        ts_init=0,
        position_id=PositionId("P-EXTERNAL-1"),
    )
    node.node.kernel.cache.add_position(Position(instrument, fill), OmsType.NETTING)
    outcome = node.run()
    flatten = outcome.summary["flatten"]
    assert flatten["flattened"] is True, flatten
    assert flatten["open_positions"] == []
    assert flatten["external_positions"] == ["P-EXTERNAL-1"]
    assert outcome.summary["wall_seconds"] < 30


def test_a_halted_strategy_closes_its_own_position_against_the_instruments_net(
    minute_catalog,
    tmp_path: Path,
):
    """S0 long 2000, S1 short 100 on one instrument; halted, S1's reduce-only BUY closes its own
    short although the instrument is net long (Nautilus' REDUCING would deny it), while S0's
    opening BUY is denied."""
    catalog, bar_types = minute_catalog
    s0 = _script(bar_types["AAA"], "000", orders=["2:BUY:2000", "6:BUY:10"], halt_on_bar=4)
    s1 = _script(bar_types["AAA"], "001", orders=["2:SELL:100", "6:BUY:100:R"])
    window = {"start": "2024-03-04T14:31:00Z", "end": "2024-03-04T14:45:00Z"}
    document = paper_document(
        "net", [bar_types["AAA"]], [s0, s1], venue=MARGIN_VENUE, replay=window
    )
    spec = load_live_config(write_yaml(tmp_path / "net.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    strategies = _strategies(node)
    outcome = node.run()
    orders = outcome.orders.reset_index()
    rows = {
        (str(r.strategy_id), str(r.side), str(r.quantity)): str(r.status)
        for r in orders.itertuples()
    }
    assert rows[("ScriptProbe-000", "BUY", "2000")] == "FILLED"
    assert rows[("ScriptProbe-001", "SELL", "100")] == "FILLED"
    assert rows[("ScriptProbe-001", "BUY", "100")] == "FILLED"  # its own short, closed
    assert rows[("ScriptProbe-000", "BUY", "10")] == "DENIED"  # new risk while halted
    assert strategies["ScriptProbe-001"].denied == []
    assert any(r.startswith("kill switch: probe") for r in strategies["ScriptProbe-000"].denied)
    positions = pd.read_csv(tmp_path / "run" / "positions.csv")
    s1_position = positions[positions["strategy_id"] == "ScriptProbe-001"].iloc[-1]
    assert s1_position["side"] == "FLAT"


def test_a_failing_operations_start_still_stops_gracefully(
    minute_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    import grodt.nodes.live as live

    def broken(*args, **kwargs):
        raise RuntimeError("health monitor broken")

    monkeypatch.setattr(live, "HealthMonitor", broken)
    catalog, bar_types = minute_catalog
    document = paper_document("op", [bar_types["AAA"]], [_probe(bar_types["AAA"])])
    spec = load_live_config(write_yaml(tmp_path / "op.yaml", document))
    with pytest.raises(RuntimeError, match="health monitor broken"):
        LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stopped_by"].startswith("operations failed")
    assert (tmp_path / "run" / "orders.csv").exists()


def test_health_line_latency_is_a_recent_window(minute_catalog, tmp_path: Path):
    """The health line summarises the latest latencies only (cheap on a week-long run)."""
    catalog, bar_types = minute_catalog
    document = paper_document("lat", [bar_types["AAA"]], [_probe(bar_types["AAA"])])
    spec = load_live_config(write_yaml(tmp_path / "lat.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    for _ in range(5_000):
        node.probe._record((1_000_000, 0, 0, 0))  # 1 ms, long ago
    for _ in range(2_000):
        node.probe._record((10_000, 0, 0, 0))  # 10 µs, lately
    latency = node._health_extras()["latency"]
    assert latency["count"] == 7_000
    assert latency["window"] <= 1_000
    assert latency["p50_us"] == latency["p99_us"] == pytest.approx(10.0)
    assert node.probe.summary()["p50_us"] == pytest.approx(1_000.0)  # the run's figures: all
