"""A retrain inside the window: the S&P 500 regime stack with refits in a worker process, in a
BacktestNode and in the lockstep paper node, makes the same orders and fills."""

from pathlib import Path

import pandas as pd
import pytest

from grodt.nodes.parity import run_parity
from models.regime.catalog_io import load_bars
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward
from node_configs.loader import load_backtest_config

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "node_configs" / "backtest" / "rules_sp500_regime.yaml"
OVERRIDES = [
    "start=2002-07-01",
    "end=2003-12-31",
    "actors[0].config.walk_forward.train_bars=200",
    "actors[0].config.walk_forward.min_train_bars=165",
    "actors[0].config.walk_forward.refit_every=40",
    "actors[0].config.walk_forward.refit_lag_bars=1",
]


@pytest.mark.slow
def test_parity_with_refits_in_a_worker_inside_the_window(sp500_catalog, tmp_path):
    spec = load_backtest_config(CONFIG, OVERRIDES)
    report = run_parity(spec, tmp_path / "parity", catalog=sp500_catalog)
    assert report.identical is True, report.first_divergence
    assert report.orders[0] == report.orders[1] > 5

    # The window holds a first fit and refits (the same schedule, computed offline).
    walk = WalkForwardConfig(**spec.actors[0].config["walk_forward"])
    bars = load_bars(sp500_catalog, "SPX.SAMPLE-1-DAY-LAST-EXTERNAL", "2002-07-01", "2003-12-31")
    frame, engine = run_walk_forward(bars.close, bars.ts_event, walk, on_info=lambda _m: None)
    assert len(engine.fits) >= 4
    first_fit = pd.Timestamp(int(frame["ts_event"][frame["status"].eq("fitted")].iloc[0]))
    assert first_fit < pd.Timestamp("2003-06-01")
