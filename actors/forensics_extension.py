"""Node extension for the ``forensics:`` section.

It adds the :class:`~actors.forensics_bridge.ForensicsBridge` actor, and at the end of a run (or
at a live node's stop) flushes it deterministically and reports its counters for the run summary.

The same extension serves BacktestNode and TradingNode; nothing here asks which one it is in.
"""

from pathlib import Path
from typing import Any

from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.system.kernel import NautilusKernel

from actors.forensics.config import ForensicsSection
from actors.forensics.config import bridge_config
from actors.forensics.config import parse_section
from actors.forensics_bridge import ForensicsBridge
from grodt.core.errors import GrodtError
from node_configs.schema import NodeSpec

BRIDGE_COMPONENT_ID = "ForensicsBridge"


class ForensicsExtension:
    """The bridge's hooks into a node (see :class:`node_configs.extensions.NodeExtension`)."""

    name = "forensics"

    def __init__(self, section: ForensicsSection, spec: NodeSpec, run_dir: Path | None) -> None:
        self.section = section
        self.spec = spec
        self.run_dir = run_dir
        # Resolves the sink now (Kafka vs Parquet), so a config error surfaces at load time.
        self.config = bridge_config(section, run_dir, component_id=BRIDGE_COMPONENT_ID)
        self.bridge: ForensicsBridge | None = None

    def actors(self) -> list[ImportableActorConfig]:
        return [
            ImportableActorConfig(
                actor_path="actors.forensics_bridge:ForensicsBridge",
                config_path="actors.forensics_bridge:ForensicsBridgeConfig",
                config=dict(self.config),
            ),
        ]

    def install(self, kernel: NautilusKernel) -> None:
        for actor in kernel.trader.actors():
            if isinstance(actor, ForensicsBridge) and actor.id.value == BRIDGE_COMPONENT_ID:
                self.bridge = actor
                return
        raise GrodtError(
            f"forensics: the {BRIDGE_COMPONENT_ID} actor was not built into the node "
            "(was actors() added to the node config?)",
        )

    def finish(self, kernel: NautilusKernel) -> dict[str, Any]:
        """Flush (up to ``flush_timeout_s``) and close the bridge; its counters and outputs."""
        if self.bridge is None:
            return {"enabled": True, "error": "bridge not installed"}
        stats = self.bridge.close()
        figures: dict[str, Any] = {"enabled": True}
        if stats is not None:
            figures.update(stats.as_dict())
        pipeline = self.bridge.pipeline
        if pipeline is not None:
            figures["output"] = pipeline.sink.describe()
            figures["spill_dir"] = str(pipeline.spill_dir)
        if self.bridge.outbox_root is not None:
            figures["outbox"] = str(self.bridge.outbox_root)
        figures["topics"] = self.bridge.topics.model_dump()
        return figures


def create_extension(
    section: dict[str, Any],
    spec: NodeSpec,
    run_dir: Path | None,
) -> ForensicsExtension:
    """Validate the ``forensics:`` section (errors name ``forensics.<field>``); opens nothing."""
    return ForensicsExtension(parse_section(section), spec, run_dir)
