"""The HRP target actor in a real engine: causal samples, the published targets equal an offline
fit of the same returns, late starters join once they have the history."""

import numpy as np
import pandas as pd
import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from risk_kit import MINUTE
from risk_kit import START
from risk_kit import bar_type
from risk_kit import equity_instrument

from grodt.core.topics import RISK_TARGETS_TOPIC
from risk_engine.hrp import HierarchicalRiskParity
from risk_engine.hrp_actor import HrpTargetActor
from risk_engine.hrp_actor import HrpTargetActorConfig

SYMBOLS = ("AAA", "BBB", "CCC", "DDD")
BARS = 240
LATE_START = 150  # DDD's first bar


def _closes(seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.002, size=(BARS, 1))
    moves = common + rng.normal(0, 0.003, size=(BARS, len(SYMBOLS))) * [1, 2, 0.5, 1.5]
    closes = pd.DataFrame(100 * np.exp(np.cumsum(moves, axis=0)), columns=list(SYMBOLS)).round(2)
    closes.iloc[:LATE_START, 3] = np.nan
    return closes


def _run(closes: pd.DataFrame, **config) -> list:
    engine = BacktestEngine(
        BacktestEngineConfig(
            trader_id=TraderId("TEST-001"),
            logging=LoggingConfig(bypass_logging=True),
            run_analysis=False,
        ),
    )
    engine.add_venue(
        Venue("SIM"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
    )
    bars = []
    for symbol in SYMBOLS:
        instrument = equity_instrument(symbol)
        engine.add_instrument(instrument)
        for k, close in enumerate(closes[symbol]):
            if np.isnan(close):
                continue
            price = Price(close, 2)
            ts = START + k * MINUTE
            bars.append(
                Bar(
                    bar_type(instrument.id),
                    price,
                    price,
                    price,
                    price,
                    Quantity.from_int(1),
                    ts,
                    ts,
                ),
            )
    engine.add_data(bars)
    actor = HrpTargetActor(
        HrpTargetActorConfig(
            bar_types=[bar_type(equity_instrument(s).id) for s in SYMBOLS], **config
        ),
    )
    engine.add_actor(actor)
    published: list = []
    engine.kernel.msgbus.subscribe(RISK_TARGETS_TOPIC, published.append)
    engine.run()
    engine.dispose()
    return published


def test_published_targets_equal_an_offline_fit_of_the_same_returns():
    closes = _closes()
    published = _run(closes, sampling="bar", rebalance="30min", window=100, min_history=60)
    assert published, "no targets published"
    for targets in published:
        # The sample of bar k is recorded when bar k+1 arrives: the window ends at ts_event.
        end = (targets.ts_event - START) // MINUTE
        window = closes.iloc[max(0, end - 100) : end + 1]
        returns = window.pct_change(fill_method=None).iloc[1:]
        eligible = [s for s in SYMBOLS if returns[s].notna().sum() >= 60]
        expected = HierarchicalRiskParity(min_periods=60).fit(returns[eligible])
        assert list(targets.instrument_ids) == [f"{s}.SIM" for s in eligible]
        np.testing.assert_allclose(targets.weights, expected.weights_, atol=1e-12)
        assert targets.returns.shape == (len(returns), len(eligible))
        assert sum(targets.weights) == pytest.approx(1.0)
    # Rebalanced every 30 bars once 60 returns exist; the late starter joins 60 bars after its
    # first price.
    first = (published[0].ts_event - START) // MINUTE
    assert first == 60
    joined = [t for t in published if "DDD.SIM" in t.instrument_ids]
    assert joined and (joined[0].ts_event - START) // MINUTE >= LATE_START + 60
    assert all("DDD.SIM" not in t.instrument_ids for t in published if t not in joined)
    assert len({t.model_version for t in published}) == len(published)


def test_interval_sampling_and_riskfolio_method():
    closes = _closes(seed=9)
    published = _run(
        closes,
        method="herc",
        linkage="ward",
        sampling="2min",
        rebalance="1h",
        window=60,
        min_history=40,
    )
    assert published
    targets = published[-1]
    assert targets.method == "herc"
    assert targets.returns.shape[0] <= 60
    assert np.isfinite(targets.weights).all()
