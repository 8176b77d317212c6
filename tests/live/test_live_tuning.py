"""The live node's engine-thread tuning (GIL switch interval, frozen collector heap) and the
latency probe's CPU figures."""

import gc
import sys
from pathlib import Path

from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml
from nautilus_trader.model.identifiers import ClientOrderId

from grodt.nodes.latency import LatencyProbe
from grodt.nodes.live import LiveNode
from grodt.nodes.live_tuning import UNTUNED
from grodt.nodes.live_tuning import EngineThreadTuning
from node_configs.live_schema import load_live_config


class _SettingsAtSubmit(LatencyProbe):
    """A probe that also notes the process settings in force when each order is submitted."""

    def __init__(self) -> None:
        super().__init__(cpu=True)
        self.seen: set[tuple[float, bool]] = set()

    def on_submit(self, client_order_id: ClientOrderId) -> None:
        self.seen.add((sys.getswitchinterval(), gc.get_freeze_count() > 0))
        super().on_submit(client_order_id)


def _paper_node(minute_catalog, tmp_path: Path, name: str, **kwargs) -> LiveNode:
    catalog, bar_types = minute_catalog
    document = paper_document(
        name,
        [bar_types["AAA"]],
        [ema_cross("AAA.PAPER", bar_types["AAA"])],
        replay={"pacing": "lockstep"},
    )
    spec = load_live_config(write_yaml(tmp_path / f"{name}.yaml", document))
    return LiveNode(spec, tmp_path / name, catalog=catalog, quiet=True, **kwargs)


def test_the_node_runs_tuned_and_restores_the_process_settings(minute_catalog, tmp_path: Path):
    interval = sys.getswitchinterval()
    tuning = EngineThreadTuning(switch_interval_s=interval / 4, gc_freeze=True)
    node = _paper_node(minute_catalog, tmp_path, "tuned", tuning=tuning)
    probe = node.probe = _SettingsAtSubmit()
    summary = node.run().summary
    assert summary["orders"] > 5
    assert probe.seen == {(interval / 4, True)}  # every order, under the node's settings
    assert summary["tuning"] == {"switch_interval_s": interval / 4, "gc_freeze": True}
    assert sys.getswitchinterval() == interval
    assert gc.get_freeze_count() == 0
    cpu = summary["latency"]["cpu"]
    measured = summary["orders"] - summary["latency"]["at_stop"]
    assert cpu["count"] == summary["latency"]["count"] == measured
    assert 0 < cpu["p50_us"] <= cpu["p99_us"] <= cpu["max_us"]


def test_untuned_leaves_python_defaults(minute_catalog, tmp_path: Path):
    interval = sys.getswitchinterval()
    node = _paper_node(minute_catalog, tmp_path, "untuned", tuning=UNTUNED)
    probe = node.probe = _SettingsAtSubmit()
    summary = node.run().summary
    assert probe.seen == {(interval, False)}
    assert "cpu" in summary["latency"]


def test_the_default_probe_measures_no_cpu(minute_catalog, tmp_path: Path):
    summary = _paper_node(minute_catalog, tmp_path, "plain").run().summary
    assert summary["latency"]["count"] + summary["latency"]["at_stop"] == summary["orders"] > 5
    assert "cpu" not in summary["latency"]
