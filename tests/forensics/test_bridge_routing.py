"""The bridge inside a real (idle) BacktestEngine kernel: what reaches ``grodt.forensics.*``."""

import json
from pathlib import Path

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.common.config import LoggingConfig
from test_records import EXAMPLES

from actors.forensics.config import TopicNames
from actors.forensics_bridge import ForensicsBridge
from actors.forensics_bridge import ForensicsBridgeConfig
from grodt.core.records import record_to_json
from grodt.core.topics import Topics
from grodt.forensics.reader import read_run


def test_records_are_routed_by_class_and_strays_are_dead_lettered(tmp_path: Path) -> None:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    bridge = ForensicsBridge(ForensicsBridgeConfig(sink="parquet", output_dir=str(tmp_path)))
    engine.add_actor(bridge)
    engine.run()  # starts the bridge
    msgbus = engine.kernel.msgbus
    msgbus.publish(Topics.DECISIONS, EXAMPLES["decision"])
    msgbus.publish(Topics.RISK, EXAMPLES["allocation"])  # wrong topic: still an allocation
    msgbus.publish("grodt.forensics.custom", EXAMPLES["regime_update"])
    msgbus.publish("grodt.forensics.custom", {"why": "a dict is not a record"})
    msgbus.publish("grodt.other", EXAMPLES["risk_verdict"])  # not a forensics topic
    stats = bridge.close(10.0)
    engine.dispose()
    assert stats is not None
    assert (stats.enqueued, stats.delivered, stats.rejected) == (4, 3, 1)
    topics = TopicNames()
    stored = {s.topic: record_to_json(s.record) for s in read_run(tmp_path)}
    assert stored == {
        topics.decisions: record_to_json(EXAMPLES["decision"]),
        topics.allocations: record_to_json(EXAMPLES["allocation"]),
        topics.regime: record_to_json(EXAMPLES["regime_update"]),
    }
    (line,) = (tmp_path / "spill" / "rejected.jsonl").read_text().splitlines()
    assert "not a forensics record (dict)" in json.loads(line)["error"]
