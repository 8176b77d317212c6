"""Helpers of the lifecycle tests: small regime models fitted on the test market, a node with
the regime actor and a recorder, and an actor that publishes a monitor's control requests."""

from pathlib import Path
from typing import Any

import numpy as np
from nautilus_trader.backtest.node import BacktestNode
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

from grodt.core.topics import MODEL_CONTROL_TOPIC
from grodt.nodes.backtest import build_run_config
from models.regime.hmm import GaussianRegimeHMM
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import fit_window
from node_configs.schema import BacktestNodeSpec

INSTRUMENT = "LIFE.TEST"
BAR_TYPE = "LIFE.TEST-1-MINUTE-LAST-EXTERNAL"
WALK_FORWARD: dict[str, Any] = {
    "train_bars": 500,
    "min_train_bars": 300,
    "refit_every": 0,
    "n_init": 1,
    "n_iter": 40,
}
RECORDER = {
    "path": "regime_kit_lifecycle:LifecycleRecorder",
    "config": {"instrument_id": INSTRUMENT, "bar_type": BAR_TYPE},
}


def small_config(**overrides: Any) -> WalkForwardConfig:
    return WalkForwardConfig(**{**WALK_FORWARD, **overrides})


def fit_on(
    closes: np.ndarray,
    first: int,
    last: int,
    seed: int = 0,
    train_bars: int = 500,
) -> GaussianRegimeHMM:
    """A model fitted on the last ``train_bars`` valid feature rows of bars [first, last) of
    ``closes`` (timestamps: one minute apart)."""
    stamps = (np.arange(len(closes), dtype=np.int64) + 1) * 60_000_000_000
    config = small_config(random_state=seed, train_bars=train_bars)
    return fit_window(config, closes[first:last], stamps[first:last])


def node_document(actor_config: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": "lifecycle-test",
        "venues": [{"name": "TEST", "starting_balances": ["1000000 USD"]}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "actors": [{"path": "actors.regime_actor:RegimeActor", "config": actor_config}],
        "strategies": [RECORDER],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }


def run_document(document: dict[str, Any], catalog: Path) -> tuple[Any, Any]:
    """Run ``document`` in a BacktestNode; (recorder strategy, regime actor)."""
    spec = BacktestNodeSpec.model_validate(document)
    config = build_run_config(spec, catalog, quiet=True)
    node = BacktestNode(configs=[config])
    try:
        node.build()
        engine = node.get_engine(config.id)
        node.run()
        return engine.trader.strategies()[0], engine.trader.actors()[0]
    finally:
        node.dispose()


class ControlInjectorConfig(ActorConfig, frozen=True, kw_only=True):
    """Publish ``requests`` ({bar (1-based): [action, subject or None]}) on the control topic."""

    bar_type: BarType
    requests: dict[int, list[str | None]]


class ControlInjector(Actor):
    """Publishes what ``StrategyMonitor`` publishes on a breach, at chosen bars."""

    def __init__(self, config: ControlInjectorConfig) -> None:
        super().__init__(config)
        self.bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        request = self.config.requests.get(self.bars)
        if request is None:
            return
        action, subject = request
        self.msgbus.publish(
            MODEL_CONTROL_TOPIC,
            {
                "action": action,
                "reason": f"{subject}: hit_rate 0.1 < expected 0.5 - 0.15 (bar {self.bars})",
                "source": str(self.id),
                "subject": subject,
            },
        )
