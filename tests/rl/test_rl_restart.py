"""RLEnsembleStrategy in a paper node killed with SIGKILL while it holds a position, and started
again from its cache database (a real redis-server): the restarted run's orders, positions,
account and figures equal the uninterrupted run's.

The specialists are seeded, untrained SB3 PPO policies whose actions vary with the features and
strongly with the observation's position input, so a restarted strategy that lost its held
action (``save_state``/``load_state``) decides differently from the first bar after the restart
(without RLEnsembleStrategy.save_state this test fails: the restarted run's order quantities
differ from the 50th order on). Each node runs as ``python -m grodt live`` in its own process
(tests/live/test_live_restart.py's helpers).
"""

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
import torch
from stable_baselines3 import PPO

LIVE_TESTS = Path(__file__).resolve().parents[1] / "live"
sys.path.insert(0, str(LIVE_TESTS))  # the live kit's helpers, as tests/live imports them

from live_kit import write_yaml  # noqa: E402
from live_kit_crash import killed_at  # noqa: E402
from test_live_restart import _ORDER_COLUMNS  # noqa: E402
from test_live_restart import _SUMMARY_KEYS  # noqa: E402
from test_live_restart import _positions  # noqa: E402
from test_live_restart import _run  # noqa: E402
from test_rl_strategy import BAR_TYPE  # noqa: E402
from test_rl_strategy import INSTRUMENT  # noqa: E402
from test_rl_strategy import _SpacesOnly  # noqa: E402
from test_rl_strategy import market  # noqa: E402, F401  (the seeded catalog and specialists)

from grodt.test_kit.redis import TemporaryRedis  # noqa: E402
from models.rl.specialists import SpecialistSet  # noqa: E402
from models.rl.specialists import save_specialists  # noqa: E402

CRASH_AT_BAR = 70  # of 120: features warm from bar 21, the policy holds a short or long target


@pytest.fixture(scope="module")
def redis_server() -> Iterator[TemporaryRedis]:
    with TemporaryRedis() as server:
        yield server


def _position_sensitive_specialists(directory: Path, like: Path, seed: int = 3) -> Path:
    """Seeded, untrained PPO specialists on ``like``'s observation whose actions vary with the
    features (the action head scaled up 50x, as ``make_specialists``) and strongly with the
    position input (its first-layer weights scaled up 20x), so that a restarted strategy that
    lost its held action decides differently."""
    spec = SpecialistSet.load(like).observation
    models = {}
    for i, label in enumerate(("bull", "bear", "sideways")):
        model = PPO(
            "MlpPolicy",
            _SpacesOnly(spec.n_obs),
            n_steps=8,
            batch_size=8,
            seed=seed + i,
            device="cpu",
        )
        with torch.no_grad():
            model.policy.action_net.weight.mul_(50.0)
            model.policy.mlp_extractor.policy_net[0].weight[:, -1].mul_(20.0)
        models[label] = model
    save_specialists(directory, models, "PPO", "continuous", spec, extra={"seed": seed})
    return directory


def _document(specialists: Path, feature_set: Path, marker: Path, at_bars: list[int]) -> dict:
    return {
        "name": "rl_restart",
        "kind": "live",
        "data_clients": [
            {"type": "replay", "data": [{"bar_types": [BAR_TYPE]}], "pacing": "lockstep"},
        ],
        "exec_clients": [
            {
                "type": "sandbox",
                "venue": {
                    "name": "XNAS",
                    "oms_type": "NETTING",
                    "account_type": "MARGIN",
                    "base_currency": "USD",
                    "starting_balances": ["100000 USD"],
                },
            },
        ],
        "strategies": [
            {
                "path": "strategies.rl_ensemble:RLEnsembleStrategy",
                "config": {
                    "instrument_id": INSTRUMENT,
                    "bar_type": BAR_TYPE,
                    "allow_short": True,
                    "order_id_tag": "900",
                    "blend_mode": "always_on",
                    "specialists": str(specialists),
                    "feature_set": str(feature_set),
                },
            },
        ],
        "actors": [
            {
                "path": "live_kit_crash:CrashAt",
                "config": {"bar_type": BAR_TYPE, "at_bars": at_bars, "marker": str(marker)},
            },
        ],
        "cache_database": {"host": "127.0.0.1", "port": "env:GRODT_TEST_REDIS_PORT"},
        "operations": {"on_stop": "keep", "health_interval_seconds": None},
        "reconciliation": {"enabled": False},
        "timeouts": {"post_stop": 0.2, "disconnection": 2},
    }


def _orders(run_dir: Path) -> pd.DataFrame:
    """test_live_restart's order columns that market orders have (no price, no trigger)."""
    frame = pd.read_csv(run_dir / "orders.csv")
    frame["number"] = frame["client_order_id"].str.rsplit("-", n=1).str[1].astype(int)
    columns = [c for c in _ORDER_COLUMNS if c in frame.columns]
    assert len(columns) >= len(_ORDER_COLUMNS) - 2
    return frame[columns].sort_values(["strategy_id", "number"]).reset_index(drop=True)


def _signed_quantity_before(run_dir: Path, ts: int) -> float:
    """The strategy's net position from the fills stamped before ``ts`` (UNIX ns)."""
    fills = pd.read_csv(run_dir / "fills.csv")
    stamps = pd.to_datetime(fills["ts_event"]).astype("int64")
    signs = fills["order_side"].map({"BUY": 1.0, "SELL": -1.0})
    return float((signs * fills["last_qty"].astype(float))[stamps < ts].sum())


def test_rl_ensemble_killed_holding_a_position_restarts_as_the_uninterrupted_run(
    market,  # noqa: F811
    redis_server,
    tmp_path: Path,
):
    port = redis_server.port
    catalog = market["catalog"]
    specialists = _position_sensitive_specialists(tmp_path / "specialists", market["varying"])
    models = (specialists, market["features_yaml"])
    redis_server.flush()
    through_config = write_yaml(
        tmp_path / "through.yaml", _document(*models, tmp_path / "never", [])
    )
    done = _run(through_config, tmp_path / "through", port, catalog)
    assert done.returncode == 0, done.stderr[-3000:]

    redis_server.flush()
    marker = tmp_path / "crashed"
    config = write_yaml(tmp_path / "restart.yaml", _document(*models, marker, [CRASH_AT_BAR]))
    crashed = _run(config, tmp_path / "run", port, catalog)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    restarted = _run(config, tmp_path / "run", port, catalog)
    assert restarted.returncode == 0, restarted.stderr[-3000:]

    # The premise: the strategy held a position when it was killed, and traded after.
    crash_ts = killed_at(marker)[CRASH_AT_BAR]
    assert _signed_quantity_before(tmp_path / "through", crash_ts) != 0.0
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    assert (orders["ts_init"] > marker.stat().st_mtime_ns).sum() > 0
    assert orders["client_order_id"].is_unique

    pd.testing.assert_frame_equal(_orders(tmp_path / "run"), _orders(tmp_path / "through"))
    # Closed positions only: the restarted run's report also lists the flips' snapshots it
    # loaded from the database (NETTING reuses the position id), the uninterrupted one none.
    positions = _positions(tmp_path / "run")
    positions = positions[~positions["is_snapshot"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(positions, _positions(tmp_path / "through"))
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "run" / "account_XNAS.csv"),
        pd.read_csv(tmp_path / "through" / "account_XNAS.csv"),
    )
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    expected = json.loads((tmp_path / "through" / "summary.json").read_text())
    assert {k: summary[k] for k in _SUMMARY_KEYS} == {k: expected[k] for k in _SUMMARY_KEYS}
