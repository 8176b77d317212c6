"""Helpers of the meta-controller tests: a node config on the S&P 500 sample with S1 and S2 and a
meta-controller, and a small model with the actor's features."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from models.meta import ConformalInterval
from models.meta import MetaModel
from models.meta import PositiveProbability
from models.meta import QuantileReturnModel
from models.meta import feature_names
from models.meta.calibration import raw_positive_probability
from node_configs.loader import resolve_includes

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "node_configs" / "components"
S1 = "S1VwapEmaScalper-001"
S2 = "S2MeanReversion-002"


def meta_document(
    meta: dict[str, Any] | None,
    start: str = "2003-01-01",
    end: str = "2004-12-31",
) -> dict[str, Any]:
    """S1 + S2 on the S&P 500 sample (YAML weight 1.0 each) with a meta-controller configured by
    ``meta`` (None: without one), forensics to Parquet."""
    document: dict[str, Any] = {
        "name": "meta_test",
        "venues": [{"include": "node_configs/venues/sample_cash_per_strategy.yaml"}],
        "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
        "start": start,
        "end": end,
        "strategies": [
            {"include": "node_configs/components/strategies/s1_vwap_ema_spx.yaml"},
            {"include": "node_configs/components/strategies/s2_mean_reversion_spx.yaml"},
        ],
        "forensics": {"sink": "parquet"},
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    if meta is not None:
        config = {
            "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
            "static_weights": {S1: 0.2, S2: 0.5},
            "rebalance_every": 5,
            "performance_window": 20,
            **meta,
        }
        document["actors"] = [{"path": "actors.meta_controller:MetaController", "config": config}]
    return resolve_includes(document, REPO)


def small_model(
    path: Path,
    trained_until: str = "2004-06-30",
    seed: int = 0,
    n_fitted_features: int | None = None,
) -> MetaModel:
    """A model with the actor's features, fitted on synthetic rows (returns rise with the
    trailing Sharpe), calibrated on held-out synthetic rows, saved to ``path``."""
    rng = np.random.default_rng(seed)
    names = feature_names()
    n = 1_200
    x = rng.normal(0.0, 1.0, (n, len(names)))
    x[:, names.index("sharpe")] = rng.normal(0.0, 0.2, n)
    y = 0.02 * x[:, names.index("sharpe")] + rng.normal(0.002, 0.01, n)
    quantiles = QuantileReturnModel(n_estimators=30, min_child_samples=20).fit(x[:800], y[:800])
    held_out = quantiles.predict(x[800:])
    if n_fitted_features is not None:
        quantiles.fit(x[:800, :n_fitted_features], y[:800])
    interval = ConformalInterval(0.8).fit(held_out.values[:, 0], held_out.values[:, -1], y[800:])
    probability = PositiveProbability().fit(
        raw_positive_probability(held_out.values, quantiles.levels),
        (y[800:] > 0).astype(float),
    )
    model = MetaModel(
        quantiles,
        interval,
        probability,
        names,
        horizon_bars=5,
        trained_until_ns=pd.Timestamp(trained_until, tz="UTC").value,
    )
    model.save(path)
    return model
