"""Regime test kit: a strategy that records what it is given (the price series and its
catalog come from :mod:`grodt.test_kit.regime`)."""

from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.trading.strategy import Strategy

from grodt.core.messages import regime_data_type
from grodt.core.topics import Topics


class RegimeRecorderConfig(StrategyConfig, frozen=True):
    """Configuration of :class:`RegimeRecorder`."""

    instrument_id: InstrumentId
    bar_type: BarType


class RegimeRecorder(Strategy):
    """A strategy that records, in arrival order, every regime record and bar it is given, and
    every RegimeUpdateRecord on the forensics topic."""

    def __init__(self, config: RegimeRecorderConfig) -> None:
        super().__init__(config)
        self.events: list[tuple] = []
        self.updates: list = []

    def on_start(self) -> None:
        self.subscribe_data(regime_data_type(self.config.instrument_id))
        self.subscribe_bars(self.config.bar_type)
        self.msgbus.subscribe(Topics.REGIME, self.updates.append)

    def on_data(self, data) -> None:
        self.events.append(
            (
                "regime",
                data.ts_event,
                data.ts_init,
                str(data.instrument_id),
                data.p_bull,
                data.p_bear,
                data.p_sideways,
                data.most_likely,
                data.entropy,
                data.model_version,
            ),
        )

    def on_bar(self, bar: Bar) -> None:
        self.events.append(("bar", bar.ts_event, bar.ts_init))

    def on_stop(self) -> None:
        self.unsubscribe_bars(self.config.bar_type)
