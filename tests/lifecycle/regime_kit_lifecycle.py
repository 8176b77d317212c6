"""A strategy that records the regime records and forensics updates it is given."""

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from grodt.core.messages import regime_data_type
from grodt.core.topics import Topics


class LifecycleRecorderConfig(StrategyConfig, frozen=True):
    """Configuration of :class:`LifecycleRecorder`."""

    instrument_id: InstrumentId
    bar_type: BarType


class LifecycleRecorder(Strategy):
    """Records (ts_event, p_bull, p_bear, p_sideways, model_version) per regime record and every
    RegimeUpdateRecord."""

    def __init__(self, config: LifecycleRecorderConfig) -> None:
        super().__init__(config)
        self.records: list[tuple] = []
        self.updates: list = []

    def on_start(self) -> None:
        self.subscribe_data(regime_data_type(self.config.instrument_id))
        self.msgbus.subscribe(Topics.REGIME, self.updates.append)

    def on_data(self, data) -> None:
        self.records.append(
            (data.ts_event, data.p_bull, data.p_bear, data.p_sideways, data.model_version),
        )
