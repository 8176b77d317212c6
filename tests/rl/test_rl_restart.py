"""RLEnsembleStrategy in a paper node killed with SIGKILL while it holds a position, and started
again from its cache database (a real redis-server): the restarted run's orders, positions,
account and figures equal the uninterrupted run's.

The specialists are seeded, untrained SB3 PPO policies whose actions vary with the features and
strongly with the observation's position input, so a restarted strategy that lost its held
action (``save_state``/``load_state``) decides differently from the first bar after the restart
(without RLEnsembleStrategy.save_state this test fails: the restarted run's order quantities
differ from the 50th order on). Each node runs as ``python -m grodt live`` in its own process
(tests/live/test_live_restart.py's helpers). A second test kills it while online fine-tuning
runs: the restarted node goes on with the set in use and the fine-tune in flight.
"""

import json
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

import gymnasium as gym
import numpy as np
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
    spaces = _SpacesOnly(spec.n_obs)
    # The training env's bounds (models.rl.env.TradingEnv), so that fine-tuning can go on.
    bound = np.float32(max(spec.clip, 1.0))
    spaces.observation_space = gym.spaces.Box(-bound, bound, (spec.n_obs,), np.float32)
    models = {}
    for i, label in enumerate(("bull", "bear", "sideways")):
        model = PPO(
            "MlpPolicy",
            spaces,
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


def _document(
    specialists: Path,
    feature_set: Path,
    marker: Path,
    at_bars: list[int],
    retrain: Path | None = None,
) -> dict:
    extra = {} if retrain is None else {"retrain": str(retrain)}
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
                    **extra,
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
    _assert_same_trading(tmp_path / "run", tmp_path / "through")


def _assert_same_trading(run: Path, through: Path) -> None:
    summary = json.loads((run / "summary.json").read_text())
    expected = json.loads((through / "summary.json").read_text())
    assert {k: summary[k] for k in _SUMMARY_KEYS} == {k: expected[k] for k in _SUMMARY_KEYS}


# Rows are the bars with every feature defined (from bar 21); fits at rows 24, 36, 48, ... take
# over 6 rows later: at the crash (bar 70) the set fitted at row 36 is in use and the one started
# at row 48 is in flight. worker: false runs the fits on the engine thread (no spawned process:
# a fast test); the restored schedule is the same code path with a worker.
FINE_TUNE = {
    "window": 30,
    "every": 12,
    "lag_bars": 6,
    "min_window": 24,
    "timesteps": 32,
    "episode_bars": 10,
    "stride": 5,
    "learning_rate": 0.003,
    "seed": 1,
    "worker": False,
}


def test_a_restart_keeps_the_fine_tuned_set_and_the_fine_tune_in_flight(
    market,  # noqa: F811
    redis_server,
    tmp_path: Path,
):
    """Killed while a fine-tuned set trades and the next fine-tune is in flight, the restarted
    node goes on with that set, swaps the in-flight one in at its row and keeps the schedule:
    its orders equal the uninterrupted run's (without the saved schedule it restarts from the
    configured specialists and a fresh window, and its orders differ)."""
    port = redis_server.port
    catalog = market["catalog"]
    specialists = _position_sensitive_specialists(tmp_path / "specialists", market["varying"])
    schedule = write_yaml(
        tmp_path / "fine_tune.yaml", {**FINE_TUNE, "output": str(tmp_path / "ft")}
    )
    models = (specialists, market["features_yaml"])
    redis_server.flush()
    through = write_yaml(
        tmp_path / "through.yaml", _document(*models, tmp_path / "never", [], schedule)
    )
    done = _run(through, tmp_path / "through", port, catalog)
    assert done.returncode == 0, done.stderr[-3000:]

    redis_server.flush()
    marker = tmp_path / "crashed"
    config = write_yaml(
        tmp_path / "restart.yaml", _document(*models, marker, [CRASH_AT_BAR], schedule)
    )
    crashed = _run(config, tmp_path / "run", port, catalog)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    restarted = _run(config, tmp_path / "run", port, catalog)
    assert restarted.returncode == 0, restarted.stderr[-3000:]

    # The premise: the schedule fine-tuned before and after the crash (7 fits over 100 rows;
    # both runs save their sets, content-addressed, into the same folder).
    assert len(list((tmp_path / "ft").glob("ft-*"))) >= 6

    pd.testing.assert_frame_equal(_orders(tmp_path / "run"), _orders(tmp_path / "through"))
    _assert_same_trading(tmp_path / "run", tmp_path / "through")

    # The restarted node did not fine-tune again what the killed one had swapped in: it ran
    # the fine-tune in flight at the kill and the later ones, the same sets as the
    # uninterrupted run's last ones.
    logs = [_messages(f) for f in sorted((tmp_path / "run" / "logs").glob("*.json"))]
    restarted_log = next(m for m in logs if any(x.startswith("Restored from history") for x in m))
    assert any(x.startswith("Restarted the fine-tune in flight") for x in restarted_log)
    swaps = _swaps(restarted_log)
    through_swaps = _swaps(_messages(next((tmp_path / "through" / "logs").glob("*.json"))))
    assert 0 < len(swaps) < len(through_swaps)
    assert swaps == through_swaps[-len(swaps) :]


def _messages(log: Path) -> list[str]:
    return [json.loads(line)["message"] for line in log.read_text().splitlines() if line.strip()]


def _swaps(messages: list[str]) -> list[str]:
    """Each fine-tuned set's swap: its window's end, its version and its first bar."""
    return [m.split(" (waited")[0] for m in messages if m.startswith("Specialists fine-tuned on")]
