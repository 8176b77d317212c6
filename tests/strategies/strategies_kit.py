"""A real Nautilus BacktestEngine around crafted bars, for the strategy tests.

``run(strategies, bars, ...)`` builds a fresh engine (simulated venue ``SIM``, NETTING OMS, cash or
margin account), adds an ``Equity`` instrument with whole-share lots, a scripted publisher actor
(regime / allocation / kill-switch messages at given bar indexes, published *before* the
strategies see that bar, like the regime actor), the strategies, and returns what happened:
decision records, target-exposure messages, fills, positions and the engine itself.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any

import msgspec
import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import LoggingConfig
from nautilus_trader.config import ActorConfig
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.indicators import MovingAverageType
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from grodt.core.messages import RegimeProbabilities
from grodt.core.messages import StrategyAllocation
from grodt.core.messages import allocation_data_type
from grodt.core.messages import regime_data_type
from grodt.core.records import DecisionRecord
from grodt.core.topics import KILL_SWITCH_TOPIC
from grodt.core.topics import TARGET_EXPOSURE_TOPIC
from grodt.core.topics import Topics
from strategies.decisions import TargetExposure

INSTRUMENT_ID = InstrumentId.from_str("TEST.SIM")
MINUTE_BARS = BarType.from_str("TEST.SIM-1-MINUTE-LAST-EXTERNAL")
DAILY_BARS = BarType.from_str("TEST.SIM-1-DAY-LAST-EXTERNAL")
START = pd.Timestamp("2024-01-02 14:31", tz="UTC")


def equity(instrument_id: InstrumentId = INSTRUMENT_ID) -> Equity:
    """A USD equity: 2 price decimals, whole-share lots, no fees."""
    return Equity(
        instrument_id=instrument_id,
        raw_symbol=Symbol(instrument_id.symbol.value),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal(0),
        taker_fee=Decimal(0),
    )


def make_bars(
    rows: Sequence[tuple[float, float, float, float, float]],
    bar_type: BarType = MINUTE_BARS,
    start: pd.Timestamp = START,
    step: pd.Timedelta | None = None,
    timestamps: Sequence[pd.Timestamp] | None = None,
) -> list[Bar]:
    """Bars from ``(open, high, low, close, volume)`` rows, stamped at their close."""
    if timestamps is None:
        if step is None:
            step = pd.Timedelta(days=1) if "DAY" in str(bar_type) else pd.Timedelta(minutes=1)
        timestamps = [start + i * step for i in range(len(rows))]
    bars = []
    for (o, h, low, c, v), ts in zip(rows, timestamps, strict=True):
        assert low <= min(o, c) and h >= max(o, c), (o, h, low, c)
        bars.append(
            Bar(
                bar_type=bar_type,
                open=Price(o, 2),
                high=Price(h, 2),
                low=Price(low, 2),
                close=Price(c, 2),
                volume=Quantity(v, 0),
                ts_event=ts.value,
                ts_init=ts.value,
            ),
        )
    return bars


def flat_rows(n: int, price: float = 100.0, spread: float = 0.5, volume: float = 1000.0) -> list:
    """``n`` quiet bars around ``price`` (high/low ± ``spread``), for warm-up."""
    return [(price, price + spread, price - spread, price, volume)] * n


def atr_of(bars: Sequence[Bar], period: int) -> list[float]:
    """Reference Wilder ATR after each bar (Nautilus' own indicator)."""
    atr = AverageTrueRange(period, MovingAverageType.WILDER)
    values = []
    for bar in bars:
        atr.handle_bar(bar)
        values.append(atr.value)
    return values


def regime(p_bull: float, p_bear: float, p_sideways: float, **kwargs: Any) -> dict:
    """A regime record's fields (``most_likely`` = argmax)."""
    probabilities = {"bull": p_bull, "bear": p_bear, "sideways": p_sideways}
    return {
        "p_bull": p_bull,
        "p_bear": p_bear,
        "p_sideways": p_sideways,
        "most_likely": max(probabilities, key=probabilities.__getitem__),
        **kwargs,
    }


class ScriptedPublisherConfig(ActorConfig, frozen=True):
    """Messages to publish at bar indexes (0-based, counted on ``bar_type``)."""

    bar_type: BarType
    regime: dict[int, dict] = msgspec.field(default_factory=dict)
    allocation: dict[int, dict] = msgspec.field(default_factory=dict)
    kill_switch: dict[int, dict] = msgspec.field(default_factory=dict)
    regime_with_metadata: bool = True


class ScriptedPublisher(Actor):
    """Publishes crafted regime records, allocations and kill-switch messages, like the regime
    actor and the meta-controller would (actors see each bar before strategies)."""

    def __init__(self, config: ScriptedPublisherConfig) -> None:
        super().__init__(config)
        self.index = -1

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.index += 1
        instrument_id = bar.bar_type.instrument_id
        if self.index in self.config.regime:
            record = RegimeProbabilities(
                instrument_id=instrument_id,
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
                **self.config.regime[self.index],
            )
            data_type = regime_data_type(
                instrument_id if self.config.regime_with_metadata else None
            )
            self.publish_data(data_type, record)
        if self.index in self.config.allocation:
            record = StrategyAllocation(
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
                **self.config.allocation[self.index],
            )
            self.publish_data(allocation_data_type(), record)
        if self.index in self.config.kill_switch:
            self.msgbus.publish(KILL_SWITCH_TOPIC, self.config.kill_switch[self.index])


@dataclass
class Run:
    """What a harness run produced."""

    engine: BacktestEngine
    strategies: list[Strategy]
    bars: list[Bar]
    decisions: list[DecisionRecord] = field(default_factory=list)
    targets: list[TargetExposure] = field(default_factory=list)

    def fills(self) -> pd.DataFrame:
        report = self.engine.trader.generate_fills_report()
        if report.empty:
            return report
        report = report.reset_index()
        report["ts_event"] = pd.to_datetime(report["ts_event"], utc=True)
        return report

    def bar_index(self, ts_ns: int) -> int:
        return int(np.searchsorted([b.ts_event for b in self.bars], ts_ns))

    def decisions_of(
        self,
        strategy: Strategy,
        action: str | None = None,
        include_stop: bool = False,
    ) -> list[DecisionRecord]:
        """The strategy's decisions (without the flattening exit at the end of the run)."""
        return [
            d
            for d in self.decisions
            if d.strategy_id == strategy.id.value
            and (action is None or d.action == action)
            and (include_stop or d.reason != "strategy_stop")
        ]

    def order(self, client_order_id: str) -> Any:
        return self.engine.cache.order(ClientOrderId(client_order_id))

    def orders(self, strategy: Strategy) -> list:
        return self.engine.cache.orders(strategy_id=strategy.id)

    def positions(self, strategy: Strategy) -> list:
        return self.engine.cache.positions(strategy_id=strategy.id)


def run(
    strategies: Sequence[Strategy],
    bars: Sequence[Bar],
    *,
    account_type: AccountType = AccountType.MARGIN,
    venue_oms: OmsType = OmsType.HEDGING,
    balance: float = 1_000_000.0,
    publisher: dict | None = None,
    instrument: Equity | None = None,
    before_run: Any = None,
) -> Run:
    """Run ``strategies`` on ``bars`` in a fresh BacktestEngine; see the module docstring."""
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id="TESTER-001",
            logging=LoggingConfig(bypass_logging=True),
            run_analysis=False,
        ),
    )
    instrument = instrument or equity()
    engine.add_venue(
        venue=instrument.id.venue,
        oms_type=venue_oms,
        account_type=account_type,
        base_currency=USD,
        starting_balances=[Money(balance, USD)],
        bar_execution=True,
    )
    engine.add_instrument(instrument)
    bars = list(bars)
    engine.add_data(bars)
    if publisher is not None:
        engine.add_actor(
            ScriptedPublisher(ScriptedPublisherConfig(bar_type=bars[0].bar_type, **publisher)),
        )
    for strategy in strategies:
        engine.add_strategy(strategy)
    result = Run(engine=engine, strategies=list(strategies), bars=bars)
    msgbus = engine.kernel.msgbus
    msgbus.subscribe(Topics.DECISIONS, result.decisions.append)
    msgbus.subscribe(TARGET_EXPOSURE_TOPIC, result.targets.append)
    if before_run is not None:
        before_run(engine)
    engine.run()
    return result
