"""Commands first: an order submitted on one record leaves before the node handles the next.

Two instruments on the same timestamps, replayed at accelerated pacing: both bars of a minute
are queued in the data engine at once. A witness actor, subscribed before the strategies,
counts at every bar the orders still ``INITIALIZED`` (created on an earlier record and not yet
handed to the execution client). With :class:`~grodt.nodes.live_data_queue.CommandsFirstDataQueue`
(every live node's default) there are none; with Nautilus' own queue (the negative control) an
order sent on AAA's bar is still queued when BBB's bar of the same minute is handled.
"""

import json
from pathlib import Path

import pytest
from live_kit import paper_document
from live_kit import write_yaml

from grodt.nodes.live import LiveNode
from node_configs.live_schema import load_live_config

WINDOW = {"start": "2024-03-04T14:31:00Z", "end": "2024-03-04T16:30:00Z"}  # 120 minutes


def _run(minute_catalog, tmp_path: Path, commands_first: bool) -> tuple[dict, dict]:
    catalog, bar_types = minute_catalog
    witness_file = tmp_path / "witness.json"
    strategies = [
        {
            "path": "live_kit_probes:OrderProbe",
            "config": {
                "instrument_id": f"{symbol}.PAPER",
                "bar_type": bar_types[symbol],
                "order_id_tag": tag,
                "every": 3,
            },
        }
        for symbol, tag in (("AAA", "001"), ("BBB", "002"))
    ]
    document = paper_document(
        "commands_first",
        [bar_types["AAA"], bar_types["BBB"]],
        strategies,
        # 10 ms of wall time per minute of data: each minute's two bars are queued together.
        replay={**WINDOW, "pacing": "accelerated", "speed": 6_000},
        actors=[
            {
                "path": "live_kit_probes:QueuedOrderWitness",
                "config": {
                    "bar_types": [bar_types["AAA"], bar_types["BBB"]],
                    "out": str(witness_file),
                },
            },
        ],
    )
    spec = load_live_config(write_yaml(tmp_path / "commands_first.yaml", document))
    node = LiveNode(
        spec, tmp_path / "run", catalog=catalog, quiet=True, commands_first=commands_first
    )
    summary = node.run().summary
    return summary, json.loads(witness_file.read_text())


@pytest.mark.parametrize("commands_first", [True, False], ids=["commands_first", "nautilus_queue"])
def test_an_order_leaves_before_the_next_record_is_handled(
    minute_catalog, tmp_path: Path, commands_first: bool
):
    summary, witness = _run(minute_catalog, tmp_path, commands_first)
    assert summary["replay"]["records"] == 240
    assert witness["bars"] == 240
    assert summary["orders"] > 100
    if commands_first:
        assert witness["bars_with_waiting_orders"] == 0, witness
        queue = summary["data_queue"]
        assert queue["records"] == 240 and queue["cut_short"] == 0
        assert queue["turns"] >= 2 * 240
    else:
        # Nautilus' queue: AAA's order waits in the risk engine's queue while BBB's bar of the
        # same minute goes through every subscriber.
        assert witness["bars_with_waiting_orders"] > 20, witness
        assert summary["data_queue"] is None
