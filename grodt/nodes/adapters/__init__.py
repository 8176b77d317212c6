"""Live adapters: how each client ``type:`` of a live config becomes a Nautilus client.

One module per adapter (``ib``, ``binance``, ``paper``), registered below by the ``type`` its
config entries carry and imported only when a config uses it (the Interactive Brokers adapter
needs an optional extra). Adding a broker = its data/exec spec models in
``node_configs/live_schema.py``, one adapter module here, and its line in :data:`ADAPTERS`.
"""

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from typing import Protocol

from nautilus_trader.live.factories import LiveDataClientFactory
from nautilus_trader.live.factories import LiveExecClientFactory

from node_configs.live_schema import LiveNodeSpec

__all__ = ["ADAPTERS", "LiveAdapter", "LiveClient", "adapter_for", "live_clients"]


@dataclass(frozen=True)
class LiveClient:
    """One Nautilus client of a TradingNode: ``config`` built by ``factory``, under ``name``
    (the client id; a sandbox's is its venue's name)."""

    name: str
    config: Any
    factory: type[LiveDataClientFactory] | type[LiveExecClientFactory]


class LiveAdapter(Protocol):
    """What the node and ``grodt live --check`` need of one adapter.

    ``client`` arguments are the adapter's own spec models from ``node_configs.live_schema``.
    Broker credentials never appear in a client config: Nautilus' factories read them from the
    environment when the node is built, so they never reach a config dump or a log.
    """

    requires: tuple[str, str] | None
    """The Nautilus adapter module the clients need and what to do when it does not import;
    None for clients built into grodt."""

    def data_client(self, client: Any, spec: LiveNodeSpec, catalog: Path | None) -> LiveClient:
        """The data client of ``client`` (``catalog``: the node's resolved replay catalog)."""
        ...

    def exec_client(self, client: Any, spec: LiveNodeSpec, catalog: Path | None) -> LiveClient:
        """The execution client of ``client``."""
        ...

    def instruments(self, client: Any) -> set[str]:
        """Instrument ids a data client of this adapter provides."""
        ...

    def notices(self, client: Any) -> list[tuple[str, str]]:
        """``(check name, detail)`` warnings about an execution client (real money, live ports)."""
        ...


# Client `type` in a live config → adapter class "module:Class". Imported only when used.
ADAPTERS: dict[str, str] = {
    "replay": "grodt.nodes.adapters.paper:PaperAdapter",
    "sandbox": "grodt.nodes.adapters.paper:PaperAdapter",
    "interactive_brokers": "grodt.nodes.adapters.ib:InteractiveBrokersAdapter",
    "binance": "grodt.nodes.adapters.binance:BinanceAdapter",
}


def adapter_for(client_type: str) -> LiveAdapter:
    """The adapter of a client ``type`` (KeyError if none is registered)."""
    module_name, _, attribute = ADAPTERS[client_type].partition(":")
    return getattr(importlib.import_module(module_name), attribute)()


def live_clients(
    spec: LiveNodeSpec,
    catalog: Path | None,
) -> tuple[list[LiveClient], list[LiveClient]]:
    """The data and execution clients of ``spec``, in config order."""
    data = [adapter_for(c.type).data_client(c, spec, catalog) for c in spec.data_clients]
    execution = [adapter_for(c.type).exec_client(c, spec, catalog) for c in spec.exec_clients]
    return data, execution
