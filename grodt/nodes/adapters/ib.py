"""Interactive Brokers adapter (equities through IB Gateway / TWS; ``type: interactive_brokers``).

Credentials stay in the environment: the account id (``TWS_ACCOUNT``) and, for a dockerized
gateway, ``TWS_USERNAME`` / ``TWS_PASSWORD`` are read by Nautilus' adapter itself.
"""

from pathlib import Path
from typing import Any

from nautilus_trader.config import RoutingConfig
from nautilus_trader.model.identifiers import InstrumentId

from grodt.nodes.adapters import LiveClient
from node_configs.live_schema import InteractiveBrokersDataSpec
from node_configs.live_schema import InteractiveBrokersExecSpec
from node_configs.live_schema import LiveNodeSpec

__all__ = ["IB_CLIENT_NAME", "LIVE_TRADING_PORTS", "InteractiveBrokersAdapter"]

IB_CLIENT_NAME = "IB"
LIVE_TRADING_PORTS = (4001, 7496)
"""IB Gateway and TWS ports of live (real-money) accounts; paper accounts use 4002 / 7497."""


def _instrument_provider(instrument_ids: list[str] | None) -> Any:
    from nautilus_trader.adapters.interactive_brokers.config import (
        InteractiveBrokersInstrumentProviderConfig,
    )
    from nautilus_trader.adapters.interactive_brokers.config import SymbologyMethod

    return InteractiveBrokersInstrumentProviderConfig(
        symbology_method=SymbologyMethod.IB_SIMPLIFIED,
        load_ids=frozenset(InstrumentId.from_str(i) for i in instrument_ids or []) or None,
    )


def _gateway(spec: InteractiveBrokersDataSpec | InteractiveBrokersExecSpec) -> dict[str, Any]:
    from nautilus_trader.adapters.interactive_brokers.config import DockerizedIBGatewayConfig

    gateway = spec.gateway
    kwargs: dict[str, Any] = {
        "ibg_host": gateway.host,
        "ibg_port": gateway.port,
        "ibg_client_id": gateway.client_id,
    }
    if gateway.dockerized:
        # Username/password stay None: the adapter reads TWS_USERNAME/TWS_PASSWORD itself.
        kwargs["dockerized_gateway"] = DockerizedIBGatewayConfig(
            trading_mode=gateway.trading_mode,
        )
    return kwargs


class InteractiveBrokersAdapter:
    """IB data and execution clients, both under client id ``IB``."""

    requires: tuple[str, str] | None = (
        "nautilus_trader.adapters.interactive_brokers.factories",
        "install the Interactive Brokers extra: pip install -e '.[ib]'",
    )

    def data_client(
        self,
        client: InteractiveBrokersDataSpec,
        spec: LiveNodeSpec,
        catalog: Path | None,
    ) -> LiveClient:
        from ibapi.common import MarketDataTypeEnum
        from nautilus_trader.adapters.interactive_brokers.config import (
            InteractiveBrokersDataClientConfig,
        )
        from nautilus_trader.adapters.interactive_brokers.factories import (
            InteractiveBrokersLiveDataClientFactory,
        )

        config = InteractiveBrokersDataClientConfig(
            instrument_provider=_instrument_provider(client.instrument_ids),
            use_regular_trading_hours=client.use_regular_trading_hours,
            market_data_type=getattr(MarketDataTypeEnum, client.market_data_type),
            **_gateway(client),
        )
        return LiveClient(IB_CLIENT_NAME, config, InteractiveBrokersLiveDataClientFactory)

    def exec_client(
        self,
        client: InteractiveBrokersExecSpec,
        spec: LiveNodeSpec,
        catalog: Path | None,
    ) -> LiveClient:
        from nautilus_trader.adapters.interactive_brokers.config import (
            InteractiveBrokersExecClientConfig,
        )
        from nautilus_trader.adapters.interactive_brokers.factories import (
            InteractiveBrokersLiveExecClientFactory,
        )

        # The execution client loads the instruments the IB data clients subscribe.
        ids = [
            i
            for c in spec.data_clients
            if isinstance(c, InteractiveBrokersDataSpec)
            for i in c.instrument_ids
        ]
        # account_id stays None: the adapter reads TWS_ACCOUNT.
        config = InteractiveBrokersExecClientConfig(
            instrument_provider=_instrument_provider(ids),
            routing=RoutingConfig(default=True),
            **_gateway(client),
        )
        return LiveClient(IB_CLIENT_NAME, config, InteractiveBrokersLiveExecClientFactory)

    def instruments(self, client: InteractiveBrokersDataSpec) -> set[str]:
        return {str(InstrumentId.from_str(i)) for i in client.instrument_ids}

    def notices(self, client: InteractiveBrokersExecSpec) -> list[tuple[str, str]]:
        """Real money: a gateway on a live-trading port, or ``trading_mode: live``."""
        found = []
        port = client.gateway.port
        if port in LIVE_TRADING_PORTS:
            found.append(
                ("ib gateway port", f"port {port} is a LIVE-trading port (paper: 4002 / 7497)"),
            )
        if client.gateway.trading_mode == "live":
            found.append(
                ("ib trading mode", "trading_mode: live — orders go to the REAL-money account"),
            )
        return found
