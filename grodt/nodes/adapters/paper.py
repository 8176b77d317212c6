"""Paper trading adapter: catalog data replayed by :class:`ReplayDataClient` (``type: replay``)
into sandbox venues that simulate the backtest's venue specs (``type: sandbox``)."""

from pathlib import Path

from nautilus_trader.config import RoutingConfig
from nautilus_trader.model.data import BarType

from grodt.nodes.adapters import LiveClient
from grodt.nodes.catalog_data import data_config
from grodt.nodes.components import venue_config
from grodt.nodes.replay import ReplayDataClientConfig
from grodt.nodes.replay import ReplayLiveDataClientFactory
from grodt.nodes.sandbox import GrodtSandboxExecClientConfig
from grodt.nodes.sandbox import SandboxLiveExecClientFactory
from node_configs.live_schema import LiveNodeSpec
from node_configs.live_schema import ReplaySpec
from node_configs.live_schema import SandboxSpec

__all__ = ["REPLAY_CLIENT_NAME", "PaperAdapter", "replay_client_config"]

REPLAY_CLIENT_NAME = "REPLAY"


def replay_client_config(replay: ReplaySpec, catalog: Path) -> ReplayDataClientConfig:
    """The replay client's config: the backtest's catalog queries plus the pacing."""
    return ReplayDataClientConfig(
        data=[data_config(data, catalog, replay.start, replay.end) for data in replay.data],
        start=replay.start,
        end=replay.end,
        pacing=replay.pacing,
        speed=1.0 if replay.pacing == "realtime" else replay.speed,
        max_gap_seconds=replay.max_gap_seconds,
        idle_turns=replay.idle_turns,
    )


class PaperAdapter:
    """Replay data and sandbox execution; built into grodt, nothing to connect."""

    requires: tuple[str, str] | None = None

    def data_client(
        self, client: ReplaySpec, spec: LiveNodeSpec, catalog: Path | None
    ) -> LiveClient:
        assert catalog is not None, "the node resolves a replay client's catalog before building"
        return LiveClient(
            REPLAY_CLIENT_NAME,
            replay_client_config(client, catalog),
            ReplayLiveDataClientFactory,
        )

    def exec_client(
        self, client: SandboxSpec, spec: LiveNodeSpec, catalog: Path | None
    ) -> LiveClient:
        name = client.venue.name
        config = GrodtSandboxExecClientConfig(
            venue=venue_config(client.venue),
            routing=RoutingConfig(venues=frozenset({name})),
        )
        return LiveClient(name, config, SandboxLiveExecClientFactory)

    def instruments(self, client: ReplaySpec) -> set[str]:
        """The replayed bar types' instruments and the entries' ``instrument_ids``."""
        provided: set[str] = set()
        for data in client.data:
            provided.update(str(BarType.from_str(b).instrument_id) for b in data.bar_types or [])
            provided.update(data.instrument_ids or [])
        return provided

    def notices(self, client: SandboxSpec) -> list[tuple[str, str]]:
        return []
