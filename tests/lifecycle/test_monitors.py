"""The regime actor's monitors in a BacktestNode: a volatility break is a change point that asks
for a retrain (a refit follows at the next row, without a schedule); drift of the live window is
a forensics record; a drift fallback publishes the neutral prior until the next fit."""

import numpy as np
import pytest
from lifecycle_kit import WALK_FORWARD
from lifecycle_kit import node_document
from lifecycle_kit import run_document

from grodt.test_kit.regime import write_catalog

INSTRUMENT = "LIFE.TEST"
BAR_TYPE = "LIFE.TEST-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="module")
def break_catalog(tmp_path_factory):
    rng = np.random.default_rng(4)
    returns = np.concatenate([rng.normal(0.0003, 0.004, 700), rng.normal(-0.001, 0.02, 300)])
    path = tmp_path_factory.mktemp("break-catalog")
    write_catalog(path, {INSTRUMENT: 100.0 * np.exp(np.cumsum(returns))})
    return path


def monitored(on_drift: str, psi_fallback: float | None) -> dict:
    return {
        "bar_types": [BAR_TYPE],
        "walk_forward": WALK_FORWARD,  # one fit (after 350 bars), no scheduled refits
        "monitors": {
            "changepoint": {"expected_run": 250, "window": 5, "max_run": 300},
            "on_changepoint": "retrain",
            "drift_every": 50,
            "drift_window": 100,
            "drift": {"psi_retrain": 0.5, "psi_fallback": psi_fallback},
            "on_drift": on_drift,
        },
    }


def test_a_change_point_triggers_a_refit_and_drift_is_recorded(break_catalog):
    recorder, actor = run_document(node_document(monitored("log", None)), break_catalog)
    reasons = [(u.ts_event, u.reason) for u in recorder.updates]
    changepoints = [(t, r) for t, r in reasons if r.startswith("changepoint:")]
    assert changepoints and changepoints[0][1].endswith("action=retrain")
    stamps = [r[0] for r in recorder.records]
    alarm = stamps.index(changepoints[0][0])
    assert stamps[alarm] >= stamps[700]  # not before the break (after the first fit)
    refits = [t for t, r in reasons if "refit" in r.split(",")]
    assert stamps[alarm + 1] in refits  # the retrain runs at the next row
    drifts = [r for _, r in reasons if r.startswith("drift:")]
    assert drifts and all(r.endswith("action=log") for r in drifts)
    health = actor.summary()[BAR_TYPE]
    assert health["monitor_events"] == len(changepoints) + len(drifts)
    assert 0.0 <= health["changepoint_p"] <= 1.0 and health["drift_psi_max"] > 0.5


def test_a_drift_fallback_publishes_the_prior_until_the_next_fit(break_catalog):
    recorder, _ = run_document(node_document(monitored("act", 0.5)), break_catalog)
    fallbacks = [u for u in recorder.updates if u.reason.endswith("action=fallback")]
    assert fallbacks
    versions = [r[4] for r in recorder.records]
    first = next(i for i, v in enumerate(versions) if v.startswith("fallback:"))
    assert recorder.records[first][1:4] == pytest.approx((1 / 3, 1 / 3, 1 / 3), abs=0.2)
    assert recorder.records[first - 1][0] == fallbacks[0].ts_event


def test_rolling_interval_coverage_falls_after_the_break_and_asks_for_a_retrain(break_catalog):
    actor = {
        "bar_types": [BAR_TYPE],
        "walk_forward": WALK_FORWARD,
        "monitors": {"coverage_window": 100, "coverage_tolerance": 0.1, "on_coverage": "retrain"},
    }
    recorder, regime_actor = run_document(node_document(actor), break_catalog)
    stamps = [r[0] for r in recorder.records]
    events = [(stamps.index(u.ts_event), u.reason) for u in recorder.updates]
    coverage = [(i, r) for i, r in events if r.startswith("coverage:")]
    assert coverage and coverage[0][1].endswith("action=retrain")
    assert 700 <= coverage[0][0] < 800  # within the window after the volatility break
    assert any(i == coverage[0][0] + 1 and "refit" in r.split(",") for i, r in events)
    assert float(coverage[0][1].split("=")[1].split(",")[0]) < 0.8
    health = regime_actor.summary()[BAR_TYPE]
    assert health["coverage"] is not None and 0.0 <= health["coverage"] <= 1.0


def test_rolling_prediction_accuracy_drops_after_the_break_and_asks_for_a_retrain(break_catalog):
    actor = {
        "bar_types": [BAR_TYPE],
        "walk_forward": WALK_FORWARD,
        "monitors": {
            "accuracy_window": 100,
            "accuracy_horizon": 20,
            "accuracy_max_loglik_drop": 1.0,
            "on_accuracy": "retrain",
        },
    }
    recorder, regime_actor = run_document(node_document(actor), break_catalog)
    stamps = [r[0] for r in recorder.records]
    events = [(stamps.index(u.ts_event), u.reason) for u in recorder.updates]
    drops = [(i, r) for i, r in events if r.startswith("loglik:")]
    assert drops and drops[0][1].endswith("action=retrain")
    assert 700 <= drops[0][0] < 720  # within bars of the five-fold volatility break
    assert any(i == drops[0][0] + 1 and "refit" in r.split(",") for i, r in events)
    health = regime_actor.summary()[BAR_TYPE]
    assert health["predictive_loglik"] is not None
    assert 0.0 <= health["brier"] <= 2.0 and 0.0 <= health["regime_accuracy"] <= 1.0


def test_a_restarted_node_warms_the_monitors_up_with_the_filter(break_catalog):
    """Bars handed over by grodt.nodes.warm_up (a restarted node's history) go through the
    monitors as through on_bar: windows, alarms and the retrain they asked for."""
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.engine import BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.enums import AccountType
    from nautilus_trader.model.enums import OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from actors.regime_actor import RegimeActor
    from actors.regime_actor import RegimeActorConfig
    from actors.regime_monitors import RegimeMonitorsConfig
    from grodt.nodes.warm_up import warm_up
    from models.regime.walk_forward import WalkForwardConfig

    catalog = ParquetDataCatalog(str(break_catalog))
    bars = catalog.bars([BAR_TYPE])[:800]
    monitors = RegimeMonitorsConfig(
        coverage_window=100,
        accuracy_window=100,
        accuracy_max_loglik_drop=1.0,
        on_accuracy="retrain",
        changepoint=None,
    )

    def engine_with_actor() -> tuple[BacktestEngine, RegimeActor]:
        engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
        engine.add_venue(
            Venue("TEST"),
            OmsType.NETTING,
            AccountType.CASH,
            base_currency=USD,
            starting_balances=[Money(1_000_000, USD)],
        )
        engine.add_instrument(catalog.instruments()[0])
        actor = RegimeActor(
            RegimeActorConfig(
                bar_types=[BarType.from_str(BAR_TYPE)],
                walk_forward=WalkForwardConfig(**WALK_FORWARD),
                monitors=monitors,
            ),
        )
        engine.add_actor(actor)
        return engine, actor

    live, crashed = engine_with_actor()
    live.add_data(bars)
    live.run()
    restarted, actor = engine_with_actor()
    restarted.add_data([catalog.bars([BAR_TYPE])[800]])
    # Start the components without a bar, then hand the history over as the live node does.
    at = catalog.bars([BAR_TYPE])[800].ts_event
    restarted.run(start=at - 2, end=at - 1, streaming=True)
    assert warm_up(restarted.kernel, bars).deliveries == len(bars)
    try:
        timing = ("fit_seconds", "fit_wait_seconds")
        expected = {k: v for k, v in crashed.summary()[BAR_TYPE].items() if k not in timing}
        warmed = {k: v for k, v in actor.summary()[BAR_TYPE].items() if k not in timing}
        assert warmed == expected
        assert warmed["monitor_events"] >= 1 and warmed["fits"] == 2  # the loglik retrain
        assert warmed["predictive_loglik"] is not None and warmed["coverage"] is not None
    finally:
        live.dispose()
        restarted.dispose()
