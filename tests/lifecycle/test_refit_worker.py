"""Refits off the engine thread: a fit started at row t in a worker process takes over at row
t + refit_lag_bars, and the output is the same as the in-thread computation (so backtest and live
agree); with lag 0 the fits stay synchronous as before."""

import numpy as np
import pytest
from lifecycle_kit import BAR_TYPE
from lifecycle_kit import WALK_FORWARD
from lifecycle_kit import node_document
from lifecycle_kit import run_document

from grodt.core.errors import ConfigError
from models.regime.catalog_io import load_bars
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward

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
