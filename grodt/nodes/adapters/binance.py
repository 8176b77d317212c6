"""Binance spot adapter (testnet by default; ``type: binance``).

The API key and secret stay in the environment (``BINANCE_TESTNET_API_KEY`` / ``..._SECRET``, or
``BINANCE_API_KEY`` / ``..._SECRET`` off the testnet), read by Nautilus' adapter itself.
"""

from pathlib import Path
from typing import Any

from nautilus_trader.config import InstrumentProviderConfig
from nautilus_trader.model.identifiers import InstrumentId

from grodt.nodes.adapters import LiveClient
from node_configs.live_schema import BinanceDataSpec
from node_configs.live_schema import BinanceExecSpec
from node_configs.live_schema import LiveNodeSpec

__all__ = ["BINANCE_CLIENT_NAME", "BinanceAdapter"]

BINANCE_CLIENT_NAME = "BINANCE"


def _instrument_provider(instrument_ids: list[str]) -> InstrumentProviderConfig:
    return InstrumentProviderConfig(
        load_all=False,
        load_ids=frozenset(InstrumentId.from_str(i) for i in instrument_ids),
    )


def _key_type(name: str) -> Any:
    from nautilus_trader.adapters.binance.common.enums import BinanceKeyType

    return {"HMAC": BinanceKeyType.HMAC, "RSA": BinanceKeyType.RSA}.get(
        name,
        BinanceKeyType.ED25519,
    )


class BinanceAdapter:
    """Binance spot data and execution clients, both under client id ``BINANCE``."""

    requires: tuple[str, str] | None = (
        "nautilus_trader.adapters.binance.factories",
        "reinstall nautilus_trader",
    )

    def data_client(
        self,
        client: BinanceDataSpec,
        spec: LiveNodeSpec,
        catalog: Path | None,
    ) -> LiveClient:
        from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
        from nautilus_trader.adapters.binance.config import BinanceDataClientConfig
        from nautilus_trader.adapters.binance.factories import BinanceLiveDataClientFactory

        config = BinanceDataClientConfig(
            account_type=BinanceAccountType.SPOT,
            testnet=client.testnet,
            key_type=_key_type(client.key_type),
            instrument_provider=_instrument_provider(client.instrument_ids),
        )
        return LiveClient(BINANCE_CLIENT_NAME, config, BinanceLiveDataClientFactory)

    def exec_client(
        self,
        client: BinanceExecSpec,
        spec: LiveNodeSpec,
        catalog: Path | None,
    ) -> LiveClient:
        from nautilus_trader.adapters.binance.common.enums import BinanceAccountType
        from nautilus_trader.adapters.binance.config import BinanceExecClientConfig
        from nautilus_trader.adapters.binance.factories import BinanceLiveExecClientFactory

        # The execution client loads the instruments the Binance data clients subscribe.
        ids = [
            i for c in spec.data_clients if isinstance(c, BinanceDataSpec) for i in c.instrument_ids
        ]
        config = BinanceExecClientConfig(
            account_type=BinanceAccountType.SPOT,
            testnet=client.testnet,
            key_type=_key_type(client.key_type),
            use_reduce_only=client.use_reduce_only,
            instrument_provider=_instrument_provider(ids),
        )
        return LiveClient(BINANCE_CLIENT_NAME, config, BinanceLiveExecClientFactory)

    def instruments(self, client: BinanceDataSpec) -> set[str]:
        return {str(InstrumentId.from_str(i)) for i in client.instrument_ids}

    def notices(self, client: BinanceExecSpec) -> list[tuple[str, str]]:
        if client.testnet:
            return []
        return [("binance testnet", "testnet: false — orders go to the REAL Binance spot account")]
