"""RSI dip buyer: buys oversold dips in an uptrend (the "Write your own strategy" example)."""

from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.indicators import ExponentialMovingAverage
from nautilus_trader.indicators import RelativeStrengthIndex
from nautilus_trader.model.data import Bar

from strategies.base import EntrySignal
from strategies.base import RegimeAwareStrategy
from strategies.base import RegimeAwareStrategyConfig


class RsiDipConfig(RegimeAwareStrategyConfig, frozen=True):
    """Every base field (regime, allocation, sizing, exits) plus the signal's own."""

    rsi_period: PositiveInt = 14
    oversold: PositiveFloat = 30.0  # RSI level, 0-100
    exit_level: PositiveFloat = 55.0  # RSI level, 0-100
    trend_period: PositiveInt = 50  # EMA, bars


class RsiDip(RegimeAwareStrategy):
    """Long when the RSI dips below ``oversold`` while the close is above its trend EMA."""

    def __init__(self, config: RsiDipConfig) -> None:
        super().__init__(config)
        self.rsi = self.add_indicator(RelativeStrengthIndex(config.rsi_period))
        self.trend = self.add_indicator(ExponentialMovingAverage(config.trend_period))

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        rsi = 100.0 * self.rsi.value  # Nautilus' RSI is in [0, 1]
        if rsi < self.config.oversold and bar.close.as_double() > self.trend.value:
            strength = min(1.0, 0.5 + (self.config.oversold - rsi) / self.config.oversold)
            return EntrySignal(direction=1, reason="rsi_dip", strength=strength)
        return None

    def exit_signal(self, bar: Bar, direction: int) -> str | None:
        return "rsi_recovered" if 100.0 * self.rsi.value > self.config.exit_level else None

    def features(self) -> dict[str, float]:
        return {"rsi": 100.0 * self.rsi.value, "trend_ema": self.trend.value}
