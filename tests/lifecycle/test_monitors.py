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
