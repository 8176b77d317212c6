"""Benchmark: the meta-controller's cost on the engine thread, per rebalance and per bar.

A real :class:`~nautilus_trader.backtest.engine.BacktestEngine` runs the
:class:`actors.meta_controller.MetaController` (timed by a subclass around its own
``_rebalance`` and ``_mark``) over random-walk one-minute bars, rebalancing on every bar, for
``--strategies`` strategy ids (10 and 60 by default) and each policy: ``static``, ``predictive``
(a model with the actor's features, fitted here on synthetic rows) and ``bandit``. The
strategies are only names (nothing trades), so the marks are the floor of their cost; the
rebalance does all of its work: features, the policy (forecast, health, allocation or the
bandit's draws), one ``StrategyAllocation`` per strategy and the ``AllocationRecord`` on the
bus. Prints P50/P99/max in microseconds. A script that prints figures, not a test::

    .venv/bin/python benchmarks/meta_rebalance.py --bars 2000 --strategies 10 60
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.wranglers import BarDataWrangler

from actors.meta_controller import MetaController
from actors.meta_controller import MetaControllerConfig
from grodt.test_kit.forensics import BAR_TYPE
from grodt.test_kit.forensics import equity
from models.meta import ConformalInterval
from models.meta import MetaModel
from models.meta import PositiveProbability
from models.meta import QuantileReturnModel
from models.meta import feature_names
from models.meta.calibration import raw_positive_probability


class TimedMetaController(MetaController):
    """The actor, with its rebalance and per-bar mark timed (ns)."""

    def __init__(self, config: MetaControllerConfig) -> None:
        super().__init__(config)
        self.rebalance_ns: list[int] = []
        self.mark_ns: list[int] = []

    def _rebalance(self, bar):  # type: ignore[no-untyped-def]
        started = time.perf_counter_ns()
        super()._rebalance(bar)
        self.rebalance_ns.append(time.perf_counter_ns() - started)

    def _mark(self, bar):  # type: ignore[no-untyped-def]
        started = time.perf_counter_ns()
        super()._mark(bar)
        self.mark_ns.append(time.perf_counter_ns() - started)


def synthetic_model(path: Path) -> None:
    rng = np.random.default_rng(0)
    names = feature_names()
    x = rng.normal(size=(3_000, len(names)))
    y = 0.01 * x[:, names.index("sharpe")] + rng.normal(0.002, 0.01, len(x))
    quantiles = QuantileReturnModel().fit(x[:2_000], y[:2_000])
    held_out = quantiles.predict(x[2_000:])
    interval = ConformalInterval(0.8).fit(held_out.values[:, 0], held_out.values[:, 2], y[2_000:])
    probability = PositiveProbability().fit(
        raw_positive_probability(held_out.values, quantiles.levels), (y[2_000:] > 0).astype(float)
    )
    MetaModel(quantiles, interval, probability, names, 1, 0).save(path)


def bars(n: int):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(1)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    frame = pd.DataFrame(
        {
            "open": open_,
            "high": np.maximum(open_, close) + 0.01,
            "low": np.minimum(open_, close) - 0.01,
            "close": close,
            "volume": 1_000.0,
        },
        index=pd.date_range("2024-01-02 14:31", periods=n, freq="1min", tz="UTC"),
    )
    return BarDataWrangler(BarType.from_str(BAR_TYPE), equity()).process(frame)


def run(policy: str, n_strategies: int, n_bars: int, model_path: Path) -> TimedMetaController:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        Venue("SIM"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
    )
    engine.add_instrument(equity())
    engine.add_data(bars(n_bars))
    weight = 1.0 / n_strategies
    actor = TimedMetaController(
        MetaControllerConfig(
            bar_type=BarType.from_str(BAR_TYPE),
            static_weights={f"Strategy-{i:03d}": weight for i in range(n_strategies)},
            policy=policy,
            model=str(model_path),
            rebalance_every=1,
            performance_window=20,
            min_allocation=0.0,
            max_allocation=0.6,
            max_model_age_days=None,
            bandit_exploration=0.05,  # as measured in docs/meta.md
        ),
    )
    engine.add_actor(actor)
    engine.run()
    engine.dispose()
    return actor


def figures(samples_ns: list[int]) -> str:
    us = np.asarray(samples_ns, dtype=float) / 1_000.0
    p50, p99 = np.percentile(us, [50, 99])
    return f"P50 {p50:8.1f} µs  P99 {p99:8.1f} µs  max {us.max():8.1f} µs  (n={len(us)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bars", type=int, default=2_000)
    parser.add_argument("--strategies", type=int, nargs="+", default=[10, 60])
    parser.add_argument("--policies", nargs="+", default=["static", "predictive", "bandit"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = Path(tmp) / "meta.json"
        synthetic_model(model_path)
        for n in args.strategies:
            for policy in args.policies:
                actor = run(policy, n, args.bars, model_path)
                warm = actor.rebalance_ns[20:]  # past the window's warm-up (static fallbacks)
                used = {policy} if policy == "static" else {policy, "static"}
                assert actor.decisions == len(actor.rebalance_ns), "a rebalance was not timed"
                print(
                    f"{n:3d} strategies  {policy:<10}  rebalance {figures(warm)}"
                    f"  | mark per bar {figures(actor.mark_ns)}"
                    f"  fallbacks {actor.fallbacks or 'none'}",
                )
                assert used


if __name__ == "__main__":
    main()
