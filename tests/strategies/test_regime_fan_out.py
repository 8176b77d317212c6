"""Proportional fan-out (issue 21): a regime record reaches only the strategies that follow its
instrument. Two instruments, a regime record for each on every bar, three strategies: each
strategy's regime handler runs once per record of ITS regime instrument, never for the other's."""

from collections import Counter

from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import equity
from strategies_kit import flat_rows
from strategies_kit import make_bars

from grodt.core.messages import RegimeProbabilities
from grodt.core.messages import regime_data_type
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig

OTHER_ID = InstrumentId.from_str("OTHER.SIM")
OTHER_BARS = BarType.from_str("OTHER.SIM-1-MINUTE-LAST-EXTERNAL")


class EveryBarRegimeConfig(ActorConfig, frozen=True):
    bar_types: list[str]


class EveryBarRegime(Actor):
    """Publishes a regime record for each bar's instrument, as the regime actor does."""

    def on_start(self) -> None:
        for bar_type in self.config.bar_types:
            self.subscribe_bars(BarType.from_str(bar_type))

    def on_bar(self, bar: Bar) -> None:
        instrument_id = bar.bar_type.instrument_id
        record = RegimeProbabilities(
            instrument_id=instrument_id,
            p_bull=0.6,
            p_bear=0.1,
            p_sideways=0.3,
            most_likely="bull",
            model_version="every-bar",
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        self.publish_data(regime_data_type(instrument_id), record)


def _strategy(tag: str, bar_type: BarType, **overrides) -> S1VwapEmaScalper:
    config = S1VwapEmaScalperConfig(
        instrument_id=bar_type.instrument_id,
        bar_type=bar_type,
        order_id_tag=tag,
        ema_period=3,
        atr_period=3,
        **overrides,
    )
    return S1VwapEmaScalper(config)


def test_a_regime_record_reaches_only_the_strategies_of_its_instrument():
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id="TESTER-001",
            logging=LoggingConfig(bypass_logging=True),
            run_analysis=False,
        ),
    )
    engine.add_venue(
        venue=Venue("SIM"),
        oms_type=OmsType.HEDGING,
        account_type=AccountType.MARGIN,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
        bar_execution=True,
    )
    engine.add_instrument(equity(INSTRUMENT_ID))
    engine.add_instrument(equity(OTHER_ID))
    bars_a = make_bars(flat_rows(12), bar_type=MINUTE_BARS)
    bars_b = make_bars(flat_rows(7, price=50.0), bar_type=OTHER_BARS)
    engine.add_data(bars_a + bars_b)
    engine.add_actor(
        EveryBarRegime(EveryBarRegimeConfig(bar_types=[str(MINUTE_BARS), str(OTHER_BARS)]))
    )
    on_a = _strategy("001", MINUTE_BARS)
    on_b = _strategy("002", OTHER_BARS)
    on_a_following_b = _strategy("003", MINUTE_BARS, regime_instrument_id=OTHER_ID)
    seen: dict[str, Counter] = {}
    for strategy in (on_a, on_b, on_a_following_b):
        calls = seen.setdefault(strategy.config.order_id_tag, Counter())
        original = strategy._on_regime

        def counting(record, calls=calls, original=original):
            calls[str(record.instrument_id)] += 1
            original(record)

        strategy._on_regime = counting  # counts the handler's calls, then handles the record
        engine.add_strategy(strategy)
    engine.run()
    assert seen["001"] == Counter({str(INSTRUMENT_ID): len(bars_a)})
    assert seen["002"] == Counter({str(OTHER_ID): len(bars_b)})
    assert seen["003"] == Counter({str(OTHER_ID): len(bars_b)})
    # The records were acted on: each strategy holds its instrument's last record.
    assert on_b.regime_model_version == on_a_following_b.regime_model_version == "every-bar"
    assert on_a.regime_probabilities == {"bull": 0.6, "bear": 0.1, "sideways": 0.3}
    engine.dispose()
