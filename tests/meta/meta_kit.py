"""Helpers of the meta-controller tests: a node config on the S&P 500 sample with S1 and S2 and a
meta-controller, a small model with the actor's features, and an actor that publishes change
points at chosen bars."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import make_trace_id
from grodt.core.topics import Topics
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
    sharpe_effect: float = 0.02,
) -> MetaModel:
    """A model with the actor's features, fitted on synthetic rows (returns rise with the
    trailing Sharpe by ``sharpe_effect`` per unit; negative: an inverted model), calibrated on
    held-out synthetic rows, saved to ``path``."""
    rng = np.random.default_rng(seed)
    names = feature_names()
    n = 1_200
    x = rng.normal(0.0, 1.0, (n, len(names)))
    x[:, names.index("sharpe")] = rng.normal(0.0, 0.2, n)
    y = sharpe_effect * x[:, names.index("sharpe")] + rng.normal(0.002, 0.01, n)
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


class ChangePointInjectorConfig(ActorConfig, frozen=True, kw_only=True):
    """Publish a change point of ``instrument_id`` at each listed bar (1-based) of ``bar_type``."""

    bar_type: BarType
    instrument_id: str
    at_bars: list[int]


class ChangePointInjector(Actor):
    """Publishes what the regime actor's change-point monitor publishes (a ``RegimeUpdateRecord``
    with reason ``changepoint:…`` on ``Topics.REGIME``) at chosen bars: a change point at a known
    bar without depending on the detector."""

    def __init__(self, config: ChangePointInjectorConfig) -> None:
        super().__init__(config)
        self.bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self.bars += 1
        if self.bars not in self.config.at_bars:
            return
        self.msgbus.publish(
            Topics.REGIME,
            RegimeUpdateRecord(
                trace_id=make_trace_id(str(self.id), bar.ts_event, self.bars),
                ts_event=bar.ts_event,
                ts_init=bar.ts_init,
                component_id=str(self.id),
                instrument_id=self.config.instrument_id,
                probabilities={"bull": 0.2, "bear": 0.6, "sideways": 0.2},
                most_likely="bear",
                entropy=0.95,
                reason="changepoint:p=0.900,action=log",
            ),
        )


INJECTOR_PATH = "meta_kit:ChangePointInjector"


def injector_actor(at_bars: list[int], instrument_id: str = "SPX.SAMPLE") -> dict[str, Any]:
    """A node config's actor entry of :class:`ChangePointInjector` on the S&P 500 sample."""
    return {
        "path": INJECTOR_PATH,
        "config": {
            "bar_type": "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
            "instrument_id": instrument_id,
            "at_bars": at_bars,
            "component_id": f"ChangePointInjector-{instrument_id.split('.')[0]}",
        },
    }
