"""Helpers of the lifecycle tests: small regime models fitted on the test market, and a node
with the regime actor and a recorder."""

from pathlib import Path
from typing import Any

import numpy as np
from nautilus_trader.backtest.node import BacktestNode

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
