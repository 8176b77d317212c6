"""The strategy monitor in a BacktestNode: an EMA-cross strategy's rolling live figures against
its backtest expectation. Held to its own reference run's figures it raises nothing; held to
figures it cannot reach it publishes a MonitorRecord and asks the regime model for a retrain,
which refits at the next row; a fallback request makes the regime actor publish the prior."""

import numpy as np
import pytest
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import INSTRUMENT
from lifecycle_kit import RECORDER
from lifecycle_kit import WALK_FORWARD
from nautilus_trader.backtest.node import BacktestNode

from actors.strategy_monitor import StrategyMonitorConfig
from actors.strategy_monitor import expectation_from_returns
from grodt.core.errors import ConfigError
from grodt.core.records import MonitorRecord
from grodt.nodes.backtest import build_run_config
from grodt.test_kit.regime import write_catalog
from node_configs.schema import BacktestNodeSpec

STRATEGY = "EMACross-001"


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    rng = np.random.default_rng(8)
    returns = rng.normal(0.0, 0.004, 900)
    path = tmp_path_factory.mktemp("monitor-catalog")
    write_catalog(path, {INSTRUMENT: 100.0 * np.exp(np.cumsum(returns))})
    return path


def run(catalog, monitor: dict) -> dict:
    document = {
        "name": "strategy-monitor",
        "venues": [{"name": "TEST", "starting_balances": ["1000000 USD"]}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "actors": [
            {
                "path": "actors.regime_actor:RegimeActor",
                "config": {"bar_types": [BAR_TYPE], "walk_forward": WALK_FORWARD},
            },
            {"path": "actors.strategy_monitor:StrategyMonitor", "config": monitor},
        ],
        "strategies": [
            RECORDER,
            {
                "path": "strategies.ema_cross:EMACross",
                "config": {
                    "instrument_id": INSTRUMENT,
                    "bar_type": BAR_TYPE,
                    "fast_ema_period": 5,
                    "slow_ema_period": 20,
                    "equity_fraction": 0.2,
                    "order_id_tag": "001",
                },
            },
        ],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    spec = BacktestNodeSpec.model_validate(document)
    config = build_run_config(spec, catalog, quiet=True)
    node = BacktestNode(configs=[config])
    try:
        node.build()
        engine = node.get_engine(config.id)
        node.run()
        regime, monitor_actor = engine.trader.actors()
        recorder = engine.trader.strategies()[0]
        return {
            "updates": list(recorder.updates),
            "stamps": [r[0] for r in recorder.records],
            "versions": [r[4] for r in recorder.records],
            "regime": regime.summary()[BAR_TYPE],
            "health": monitor_actor.health()[STRATEGY],
            # Every PositionClosed's return (a netting position closes many times).
            "returns": np.array(monitor_actor.rolling[STRATEGY].returns),
        }
    finally:
        node.dispose()


def far_too_good(window: int, on_breach: str) -> dict:
    return {
        "expectations": {STRATEGY: {"hit_rate": 0.95, "mean_return": 0.05, "sharpe": 5.0}},
        "window": window,
        "on_breach": on_breach,
    }


def test_held_to_its_own_backtest_a_strategy_raises_nothing(catalog):
    reference = run(catalog, far_too_good(1000, "log"))  # never judged: the window never fills
    returns = reference["returns"]
    assert len(returns) >= 10
    expected = expectation_from_returns(returns, source="reference")
    monitor = {
        "expectations": {STRATEGY: vars(expected)},
        "window": len(returns),  # judged once, on the whole run: live equals the backtest
    }
    same = run(catalog, monitor)
    assert not [u for u in same["updates"] if isinstance(u, MonitorRecord)]
    health = same["health"]
    assert health["trades"] == len(returns) and health["breached"] is False
    assert health["hit_rate"] == pytest.approx(expected.hit_rate)
    assert health["sharpe"] == pytest.approx(expected.sharpe)


def test_a_shortfall_is_recorded_and_asks_for_a_retrain(catalog):
    # 12 closed positions: the window fills after the regime model's first fit (bar ~350).
    result = run(catalog, far_too_good(12, "retrain"))
    breaches = [u for u in result["updates"] if isinstance(u, MonitorRecord)]
    assert len(breaches) == 1  # one excursion below: the figures never reach the expectation
    breach = breaches[0]
    assert breach.monitor == "strategy_vs_backtest" and breach.subject == STRATEGY
    assert breach.action == "retrain" and "hit_rate" in breach.reason
    assert breach.figures["trades"] == 12 and breach.expected["sharpe"] == 5.0
    # The regime model (one scheduled fit, no refits) refits at the next bar.
    stamps = result["stamps"]
    refits = [u.ts_event for u in result["updates"] if "refit" in getattr(u, "reason", "")]
    assert refits and stamps.index(refits[0]) == stamps.index(breach.ts_event) + 1
    assert result["regime"]["fits"] == 2
    assert result["health"]["breached"] is True and result["health"]["monitor_events"] == 1


def test_a_fallback_request_publishes_the_prior_until_the_next_fit(catalog):
    result = run(catalog, far_too_good(12, "fallback"))
    breach = next(u for u in result["updates"] if isinstance(u, MonitorRecord))
    after = result["stamps"].index(breach.ts_event) + 1
    assert all(v.startswith("fallback:") for v in result["versions"][after:])


def test_a_monitor_without_expectations_is_refused():
    with pytest.raises(ConfigError, match="expectations: no strategy to monitor"):
        StrategyMonitorConfig()
    with pytest.raises(ConfigError, match="hit_rate: must be in"):
        StrategyMonitorConfig.parse(
            '{"expectations": {"S-1": {"hit_rate": 2.0, "mean_return": 0, "sharpe": 0}}}'
        )
