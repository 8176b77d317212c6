"""The sandbox venue inside the paper node: matching engines, synchronous venue events."""

from pathlib import Path

import pandas as pd
from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import StrategyId

from grodt.nodes.live import LiveNode
from grodt.nodes.parity import run_parity
from grodt.nodes.sandbox import EXEC_ENGINE_PROCESS
from node_configs.live_schema import load_live_config

WINDOW = {"start": "2024-03-04T14:31:00Z", "end": "2024-03-04T16:30:00Z"}


def test_orders_sent_before_the_first_bar_trade_as_in_the_backtest(minute_catalog, tmp_path: Path):
    """An order from on_start precedes every bar: the venue's matching engines must exist (all
    of them, in catalog order: venue order ids follow it), as in a backtest."""
    catalog, bar_types = minute_catalog
    on_start = {
        "path": "live_kit_probes:ScriptProbe",
        "config": {
            "instrument_id": "BBB.PAPER",  # the venue's second instrument trades first
            "bar_type": bar_types["BBB"],
            "order_id_tag": "002",
            "limits": ["0:BUY:10:99.00"],
            "orders": ["0:BUY:3", "4:BUY:5", "9:SELL:5"],
        },
    }
    document = paper_document(
        "on_start",
        list(bar_types.values()),
        [ema_cross("AAA.PAPER", bar_types["AAA"], order_id_tag="001"), on_start],
        replay=WINDOW,
    )
    spec = load_live_config(write_yaml(tmp_path / "on_start.yaml", document))
    report = run_parity(spec, tmp_path / "run", catalog=catalog)
    assert report.identical, report.first_divergence
    orders = pd.read_csv(tmp_path / "run" / "paper" / "orders.csv")
    probe = orders[orders["strategy_id"] == "ScriptProbe-002"]
    market, limit = probe.iloc[0], probe.iloc[1]  # both from on_start
    assert market["status"] == "REJECTED"  # no market yet, as in the backtest
    assert limit["type"] == "LIMIT" and limit["status"] == "FILLED"
    assert limit["venue_order_id"] == "PAPER-2-001"  # BBB: the venue's second engine


def _denied(kernel, number: int) -> OrderDenied:
    return OrderDenied(
        trader_id=kernel.trader_id,
        strategy_id=StrategyId("S-001"),
        instrument_id=InstrumentId.from_str("AAA.PAPER"),
        client_order_id=ClientOrderId(f"O-UNKNOWN-{number}"),
        reason="test",
        event_id=UUID4(),
        ts_init=0,
    )


def _node(minute_catalog, tmp_path: Path) -> LiveNode:
    catalog, bar_types = minute_catalog
    document = paper_document(
        "router", [bar_types["AAA"]], [ema_cross("AAA.PAPER", bar_types["AAA"])], replay=WINDOW
    )
    spec = load_live_config(write_yaml(tmp_path / "router.yaml", document))
    node = LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True)
    node.build()
    return node


def test_synchronous_venue_events_are_a_flag_not_a_re_registration(minute_catalog, tmp_path):
    """One router holds the ExecEngine.process endpoint; a synchronous section (every bar, every
    command) only flips its counter (re-registering cost ~6 µs per swap, four per section; the
    cost per section is a figure of benchmarks/live_latency.py)."""
    node = _node(minute_catalog, tmp_path)
    try:
        sandbox = node.sandboxes[0]
        from grodt.nodes.sandbox import SynchronousEvents

        router = sandbox._synchronous_events()
        assert isinstance(router, SynchronousEvents)
        kernel = node.node.kernel
        engine = kernel.exec_engine
        before = engine.event_count
        with router:
            kernel.msgbus.send(EXEC_ENGINE_PROCESS, _denied(kernel, 1))  # handled at once...
            assert engine.event_count == before + 1
        kernel.msgbus.send(EXEC_ENGINE_PROCESS, _denied(kernel, 2))  # ...or queued
        assert engine.event_count == before + 1  # not handled here
    finally:
        node._dispose()
