"""Node extensions: framework features installed identically into BacktestNode and TradingNode.

A feature that is not an ordinary actor or strategy (the portfolio risk gate replaces a message
bus endpoint; the forensics bridge owns a background thread and the run's sinks) plugs in here.
Each extension is enabled by its section of the node spec (``risk:``, ``forensics:``) and gets
three calls, in both node kinds:

1. ``actors()`` before the node is built: extra actor configs to add;
2. ``install(kernel)`` after build, before the first event: hook into the kernel;
3. ``finish(kernel)`` after the run (or at stop, live): figures for the run summary.

Neither call may ask whether it runs in backtest or live.
"""

import importlib
from pathlib import Path
from typing import Any
from typing import Protocol

from nautilus_trader.common.config import ImportableActorConfig
from nautilus_trader.system.kernel import NautilusKernel

from node_configs.schema import NodeSpec


class NodeExtension(Protocol):
    """One framework feature's hooks into a node."""

    name: str

    def actors(self) -> list[ImportableActorConfig]:
        """Actor configs to add to the node before it is built."""
        ...

    def install(self, kernel: NautilusKernel) -> None:
        """Hook into the built kernel before any event is processed."""
        ...

    def finish(self, kernel: NautilusKernel) -> dict[str, Any]:
        """Collect figures for the run summary after the run; release resources."""
        ...


# Section name on the node spec → factory "module:callable(section, spec, run_dir)".
# Factories are imported only when their section is present.
EXTENSION_FACTORIES: dict[str, str] = {
    "risk": "risk_engine.extension:create_extension",
    "forensics": "actors.forensics_extension:create_extension",
}


def node_extensions(spec: NodeSpec, run_dir: Path | None) -> list[NodeExtension]:
    """The extensions enabled by ``spec``, in a fixed order (risk gate first)."""
    extensions: list[NodeExtension] = []
    for section_name, factory_path in EXTENSION_FACTORIES.items():
        section = getattr(spec, section_name, None)
        if section is None:
            continue
        module_name, _, attribute = factory_path.partition(":")
        factory = getattr(importlib.import_module(module_name), attribute)
        extensions.append(factory(section, spec, run_dir))
    return extensions
