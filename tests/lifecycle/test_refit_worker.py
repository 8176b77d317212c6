"""Refits off the engine thread: a fit started at row t in a worker process takes over at row
t + refit_lag_bars, and the output is the same as the in-thread computation (so backtest and live
agree); with lag 0 the fits stay synchronous as before."""

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import RECORDER
from lifecycle_kit import WALK_FORWARD
from lifecycle_kit import node_document
from lifecycle_kit import run_document
from nautilus_trader.backtest.node import BacktestNode

from grodt.core.errors import ConfigError
from grodt.nodes.backtest import build_run_config
from models.regime.catalog_io import load_bars
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes

REPO = Path(__file__).resolve().parents[2]
COMPONENTS = REPO / "node_configs" / "components"
SCHEDULE = {**WALK_FORWARD, "refit_every": 200}


def test_lag_must_leave_one_fit_in_flight():
    with pytest.raises(ConfigError, match="refit_lag_bars: must be below refit_every=200"):
        WalkForwardConfig(**{**SCHEDULE, "refit_lag_bars": 200})
    with pytest.raises(ConfigError, match="refit_lag_bars: must be >= 0"):
        WalkForwardConfig(**{**SCHEDULE, "refit_lag_bars": -1})


def test_a_lagged_model_is_the_synchronous_one_run_over_the_rows_since(market):
    stamps = (np.arange(len(market), dtype=np.int64) + 1) * 60_000_000_000
    sync, sync_engine = run_walk_forward(
        market, stamps, WalkForwardConfig(**SCHEDULE), on_info=lambda _m: None
    )
    lag = 3
    lagged, lagged_engine = run_walk_forward(
        market,
        stamps,
        WalkForwardConfig(**SCHEDULE, refit_lag_bars=lag),
        on_info=lambda _m: None,
    )
    # Same fits (same windows, same warm starts), each taking over `lag` rows later.
    assert [f.version for f in lagged_engine.fits] == [f.version for f in sync_engine.fits]
    assert len(sync_engine.fits) >= 4
    fitted_sync = np.flatnonzero(sync["status"].eq("fitted").to_numpy())
    fitted_lagged = np.flatnonzero(lagged["status"].eq("fitted").to_numpy())
    np.testing.assert_array_equal(fitted_lagged, fitted_sync + lag)
    # From the swap on, the lagged filter is exactly where the synchronous one is.
    columns = ["p_bull", "p_bear", "p_sideways"]
    for start, end in zip(fitted_sync, [*fitted_sync[1:], len(sync)], strict=True):
        np.testing.assert_array_equal(
            lagged[columns].to_numpy()[start + lag : end],
            sync[columns].to_numpy()[start + lag : end],
        )
    # Before it, the previous model (or the prior) is still in use.
    first = fitted_sync[0]
    assert set(lagged["model_version"][first : first + lag]) == {"prior"}


def test_the_actor_refits_in_a_worker_and_matches_the_batch_filter(lifecycle_catalog):
    schedule = {**SCHEDULE, "refit_lag_bars": 2}
    document = node_document({"bar_types": [BAR_TYPE], "walk_forward": schedule})
    recorder, actor = run_document(document, lifecycle_catalog)
    bars = load_bars(lifecycle_catalog, BAR_TYPE)
    frame, engine = run_walk_forward(
        bars.close,
        bars.ts_event,
        WalkForwardConfig(**schedule),
        on_info=lambda _m: None,
    )
    np.testing.assert_array_equal(
        np.array([r[1:4] for r in recorder.records]),
        frame[["p_bull", "p_bear", "p_sideways"]].to_numpy(),
    )
    assert [r[4] for r in recorder.records] == frame["model_version"].tolist()
    summary = actor.summary()[BAR_TYPE]
    assert summary["fits"] == len(engine.fits) >= 4
    reasons = [u.reason for u in recorder.updates]
    assert sum("refit" in r.split(",") for r in reasons) == len(engine.fits) - 1


# -- the same backtest, fits in the worker or on the engine thread, at the same lag -------------

SYNTHETIC_LAG = {
    "features": ["log_return", "realized_vol:20", "trend:50"],
    "train_bars": 585,
    "min_train_bars": 390,
    "refit_every": 130,
    "refit_lag_bars": 40,
    "n_init": 1,
    "n_iter": 30,
    "temperature": 20.0,
}


@pytest.fixture(scope="module")
def two_instrument_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """Two synthetic instruments × 4 sessions of one-minute bars (3,120 bars)."""
    from catalogs.synthetic import DEFAULT_INSTRUMENTS
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import write_synthetic

    path = tmp_path_factory.mktemp("refit-worker-catalog")
    written = write_synthetic(
        path, SyntheticParams(days=4, seed=11, instruments=DEFAULT_INSTRUMENTS[:2])
    )
    return path, sorted(written["bar_types"])


def _stack_run(catalog: Path, bar_types: list[str], fit_workers: int) -> dict[str, Any]:
    """The regime actor and S1 on each instrument, with a regime recorder per instrument, in a
    BacktestNode: every regime record, regime update and order of the run."""
    strategies: list[dict[str, Any]] = []
    for i, bar_type in enumerate(bar_types, start=1):
        instrument = bar_type.split("-")[0]
        strategies.append(
            {
                "include": str(COMPONENTS / "strategies" / "s1_vwap_ema_syn.yaml"),
                "config": {
                    "instrument_id": instrument,
                    "bar_type": bar_type,
                    "order_id_tag": f"10{i}",
                    "allocation_weight": 0.5,
                },
            },
        )
        strategies.append(
            {
                **RECORDER,
                "config": {
                    "instrument_id": instrument,
                    "bar_type": bar_type,
                    "order_id_tag": f"90{i}",
                },
            },
        )
    document = {
        "name": "refit-worker-identity",
        "venues": [{"include": str(COMPONENTS.parent / "venues" / "synthetic_margin.yaml")}],
        "data": [{"bar_types": bar_types}],
        "actors": [
            {
                "path": "actors.regime_actor:RegimeActor",
                "config": {
                    "bar_types": bar_types,
                    "walk_forward": SYNTHETIC_LAG,
                    "fit_workers": fit_workers,
                },
            },
        ],
        "strategies": strategies,
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    spec = load_backtest_document(resolve_includes(document, REPO), "refit-worker-identity")
    config = build_run_config(spec, catalog, quiet=True)
    node = BacktestNode(configs=[config])
    try:
        node.build()
        engine = node.get_engine(config.id)
        node.run()
        actor = engine.trader.actors()[0]
        recorders = [s for s in engine.trader.strategies() if hasattr(s, "records")]
        orders = [
            (
                str(o.client_order_id),
                str(o.instrument_id),
                str(o.side),
                str(o.quantity),
                str(o.status),
                o.ts_init,
                o.ts_last,
                str(o.avg_px),
            )
            for o in engine.cache.orders()
        ]
        return {
            "records": [r.records for r in recorders],
            "updates": [
                (
                    u.trace_id,
                    u.ts_event,
                    u.instrument_id,
                    u.reason,
                    u.model_versions,
                    u.probabilities,
                )
                for u in recorders[0].updates
            ],
            "orders": sorted(orders),
            "summary": actor.summary(),
            "in_worker": actor._fit_pool is not None,
        }
    finally:
        node.dispose()


def test_a_backtest_decides_the_same_whether_fits_run_in_a_worker_or_on_the_engine_thread(
    two_instrument_catalog,
):
    catalog, bar_types = two_instrument_catalog
    in_thread = _stack_run(catalog, bar_types, fit_workers=0)
    in_worker = _stack_run(catalog, bar_types, fit_workers=1)
    assert not in_thread["in_worker"] and in_worker["in_worker"]
    # The runs hold refits and trades (the comparison below is not between empty runs).
    for summary in in_thread["summary"].values():
        assert summary["fits"] >= 6 and summary["refit_waits"] == 0
    assert len({r[4] for r in in_thread["records"][0]}) >= 6  # prior + the fitted versions
    assert len(in_thread["orders"]) > 20
    # Every regime record, every forensics update and every order is the same.
    assert in_worker["records"] == in_thread["records"]
    assert in_worker["updates"] == in_thread["updates"]
    assert in_worker["orders"] == in_thread["orders"]
    timing = ("fit_seconds", "fit_wait_seconds", "refit_waits")
    for key, summary in in_worker["summary"].items():
        expected = {k: v for k, v in in_thread["summary"][key].items() if k not in timing}
        assert {k: v for k, v in summary.items() if k not in timing} == expected


_ORPHAN_PARENT = """
import multiprocessing, os, sys, time
from concurrent.futures import ProcessPoolExecutor
from models.lifecycle.refit import exit_with_parent

if __name__ == "__main__":
    pool = ProcessPoolExecutor(
        1,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=exit_with_parent,
        initargs=(os.getpid(), 0.1),
    )
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(600)
"""


def test_a_fit_worker_ends_when_its_node_is_killed(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(_ORPHAN_PARENT)
    parent = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, cwd=REPO
    )
    try:
        worker = int(parent.stdout.readline())
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                os.kill(worker, 0)
            except ProcessLookupError:
                break
            if Path(f"/proc/{worker}/stat").read_text().split()[2] == "Z":  # exited, unreaped
                break
            time.sleep(0.1)
        else:
            os.kill(worker, signal.SIGKILL)
            pytest.fail("the fit worker outlived its killed parent by 20 s")
    finally:
        parent.kill()


def test_fit_workers_run_below_their_node_priority():
    """A fit is background work: its process runs FIT_WORKER_NICENESS below the node, so that
    the engine thread (and the forensics thread it waits on for the GIL) come first."""
    import os

    from models.lifecycle.refit import FIT_WORKER_NICENESS
    from models.lifecycle.refit import fit_worker_pool

    node = os.nice(0)
    with fit_worker_pool() as pool:
        assert pool.submit(os.nice, 0).result() == min(node + FIT_WORKER_NICENESS, 19)
    with fit_worker_pool(niceness=0) as pool:
        assert pool.submit(os.nice, 0).result() == node
