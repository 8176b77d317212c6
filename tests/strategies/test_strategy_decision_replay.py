"""Decision replay of a rule strategy's records outside the bar's rules: the exit a strategy takes
at its stop (``path: stop``) and the flattening an order event asked for (``path: deferred``)
replay their framework path (side, quantity, type, time in force, signal) with the recorded
reason as the input; the entry replays the S1 rule and the sizing."""

from pathlib import Path

import yaml
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.data import Bar
from nautilus_trader.model.events import OrderDenied
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import make_bars
from strategies_kit import run

from grodt.forensics.decision_replay import replay_decisions
from grodt.forensics.ope_logs import write_records
from strategies.decisions import DECISION_PATHS
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig

VOLUME = 1000.0
UPTREND = [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(100, 108)]
PULLBACK = (107.2, 107.3, 106.4, 107.0, VOLUME)  # S1 enters long at its close
HOLD = (107.0, 107.4, 106.9, 107.1, VOLUME)


VALUES = {
    "instrument_id": str(INSTRUMENT_ID),
    "bar_type": str(MINUTE_BARS),
    "ema_period": 3,
    "atr_period": 3,
    "stop_atr_multiple": 1.0,
    "risk_reward_ratio": 1.5,
}


def _s1() -> S1VwapEmaScalper:
    config = {**VALUES, "instrument_id": INSTRUMENT_ID, "bar_type": MINUTE_BARS}
    return S1VwapEmaScalper(S1VwapEmaScalperConfig(**config))


def _replay(run_dir: Path, decisions: list) -> list:
    document = {
        "strategies": [
            {"path": "strategies.s1_vwap_ema_scalper:S1VwapEmaScalper", "config": VALUES}
        ]
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(document))
    write_records(run_dir, decisions, session="0000000000000000001-00000001")
    results, not_replayable, _ = replay_decisions(run_dir)
    assert not_replayable == []
    return results


def test_the_exit_at_the_strategy_stop_replays_its_framework_path(tmp_path: Path):
    strategy = _s1()
    result = run([strategy], make_bars([*UPTREND, PULLBACK, HOLD]))
    actions = [(r.action, r.reason) for r in result.decisions]
    assert actions == [("entry", "vwap_ema_pullback_long"), ("exit", "strategy_stop")]
    assert result.decisions[1].sizing_inputs["path"] == DECISION_PATHS["stop"]
    results = _replay(tmp_path, result.decisions)
    assert [(r.policy, r.equal) for r in results] == [
        ("entry", True),
        ("exit, framework only", True),
    ], results


class DenyStopConfig(ActorConfig, frozen=True):
    at_bar: int


class DenyStop(Actor):
    """At bar ``at_bar`` (before the strategy sees it) tells the strategy its protective stop
    was denied, as a risk gate would: the strategy flattens on its next bar (deferred)."""

    def __init__(self, config: DenyStopConfig, strategy: S1VwapEmaScalper) -> None:
        super().__init__(config)
        self.strategy = strategy
        self.index = -1

    def on_start(self) -> None:
        self.subscribe_bars(MINUTE_BARS)

    def on_bar(self, bar: Bar) -> None:
        self.index += 1
        state = self.strategy._lifecycle.state
        if self.index == self.config.at_bar and state.stop_order_id is not None:
            self.strategy.on_order_denied(
                OrderDenied(
                    trader_id=self.trader_id,
                    strategy_id=self.strategy.id,
                    instrument_id=INSTRUMENT_ID,
                    client_order_id=state.stop_order_id,
                    reason="test: stop denied",
                    event_id=UUID4(),
                    ts_init=bar.ts_init,
                ),
            )


def test_a_deferred_flattening_replays_its_framework_path(tmp_path: Path):
    strategy = _s1()

    def install(engine) -> None:
        engine.add_actor(DenyStop(DenyStopConfig(at_bar=10), strategy))

    result = run([strategy], make_bars([*UPTREND, PULLBACK, HOLD, HOLD, HOLD]), before_run=install)
    first_exit = next(r for r in result.decisions if r.action == "exit")
    assert first_exit.reason == "stop_order_failed"
    assert first_exit.sizing_inputs["path"] == DECISION_PATHS["deferred"]
    results = _replay(tmp_path, result.decisions)
    assert all(r.equal for r in results), results
    assert "exit, framework only" in [r.policy for r in results]
