"""The regime actor's monitor values and model version are fields of the live node's health line
(``health.jsonl``), in a lockstep paper node."""

import json

import numpy as np
import pytest
from lifecycle_kit import RECORDER
from lifecycle_kit import WALK_FORWARD

from grodt.nodes.live import LiveNode
from grodt.test_kit.regime import write_catalog
from node_configs.live_schema import load_live_document

INSTRUMENT = "LIFE.TEST"
BAR_TYPE = "LIFE.TEST-1-MINUTE-LAST-EXTERNAL"


@pytest.mark.slow
def test_monitor_values_are_in_the_health_line(tmp_path):
    rng = np.random.default_rng(4)
    returns = np.concatenate([rng.normal(0.0003, 0.004, 450), rng.normal(-0.001, 0.02, 150)])
    catalog = tmp_path / "catalog"
    write_catalog(catalog, {INSTRUMENT: 100.0 * np.exp(np.cumsum(returns))})
    document = {
        "name": "monitor-health",
        "kind": "live",
        "data_clients": [
            {"type": "replay", "data": [{"bar_types": [BAR_TYPE]}], "pacing": "lockstep"},
        ],
        "exec_clients": [
            {
                "type": "sandbox",
                "venue": {
                    "name": "TEST",
                    "oms_type": "NETTING",
                    "account_type": "CASH",
                    "base_currency": "USD",
                    "starting_balances": ["1000000 USD"],
                },
            },
        ],
        "actors": [
            {
                "path": "actors.regime_actor:RegimeActor",
                "config": {
                    "bar_types": [BAR_TYPE],
                    "walk_forward": WALK_FORWARD,
                    "monitors": {"changepoint": {"max_run": 300}, "on_changepoint": "retrain"},
                },
            },
        ],
        "strategies": [RECORDER],
        "reconciliation": {"enabled": False},
        "timeouts": {"post_stop": 0.2, "disconnection": 2},
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    spec = load_live_document(document, "monitor-health")
    LiveNode(spec, tmp_path / "run", catalog=catalog, quiet=True).run()
    lines = (tmp_path / "run" / "health.jsonl").read_text().splitlines()
    last = json.loads(lines[-1])
    regime = last["actors"]["RegimeActor"][BAR_TYPE]
    assert regime["model_version"].startswith("hmm-")
    assert regime["fits"] >= 2  # the first fit and the change point's retrain
    assert 0.0 <= regime["changepoint_p"] <= 1.0
    assert regime["monitor_events"] >= 1
    assert regime["drift_psi_max"] is None  # drift monitor not configured
