"""A paper node killed with SIGKILL mid-run and started again.

With a cache database (a real redis-server started here) the restarted node loads its orders,
positions and strategy state, resumes the replay at its last checkpoint and its strategies own
their positions; without one (the negative control) the restarted strategies are flat and the
replay starts over. Each node runs as ``python -m grodt live`` in its own process.
"""

import json
import math
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from live_kit import write_yaml
from nautilus_trader.model.identifiers import ClientOrderId

from grodt.nodes.supervisor import RESTARTS_FILE
from grodt.nodes.supervisor import RestartPolicy
from grodt.nodes.supervisor import supervise
from grodt.test_kit.redis import TemporaryRedis
from strategies.lifecycle import LifecycleState
from strategies.lifecycle import lifecycle_state_from_bytes
from strategies.lifecycle import lifecycle_state_to_bytes

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CATALOG = REPO / "data" / "catalog"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
CRASH_AT_BAR = 300  # of 879 (2004-01 … 2007-06): S1 has traded well before it


@pytest.fixture(scope="module")
def redis_server() -> Iterator[TemporaryRedis]:
    with TemporaryRedis() as server:
        yield server


def _document(marker: Path | None, port: int | None) -> dict:
    document: dict = {
        "name": "restart_s1",
        "kind": "live",
        "data_clients": [
            {
                "type": "replay",
                "data": [{"bar_types": [BAR_TYPE]}],
                "start": "2004-01-01",
                "end": "2007-06-30",
                "pacing": "lockstep",
            },
        ],
        "exec_clients": [
            {
                "type": "sandbox",
                "venue": {
                    "include": str(REPO / "node_configs/venues/sample_cash_per_strategy.yaml")
                },
            },
        ],
        "strategies": [
            {"include": str(REPO / "node_configs/components/strategies/s1_vwap_ema_spx.yaml")}
        ],
        "operations": {"on_stop": "keep", "health_interval_seconds": None},
        "reconciliation": {"enabled": False},
        "timeouts": {"post_stop": 0.2, "disconnection": 2},
    }
    if marker is not None:
        document["actors"] = [
            {
                "path": "live_kit_crash:CrashOnce",
                "config": {"bar_type": BAR_TYPE, "at_bar": CRASH_AT_BAR, "marker": str(marker)},
            },
        ]
    if port is not None:
        document["cache_database"] = {"host": "127.0.0.1", "port": "env:GRODT_TEST_REDIS_PORT"}
    return document


def _run(config: Path, run_dir: Path, port: int | None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    if port is not None:
        env["GRODT_TEST_REDIS_PORT"] = str(port)
    command = [sys.executable, "-m", "grodt", "live", str(config), "--run-dir", str(run_dir)]
    command += ["--catalog", str(CATALOG), "--quiet"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _crash_and_restart(tmp_path: Path, port: int | None) -> tuple[dict, pd.DataFrame, int]:
    """Run until the crash, run again; the restarted run's summary and orders, and the wall
    time of the crash (UNIX ns: the marker is written just before the SIGKILL)."""
    marker = tmp_path / "crashed"
    config = write_yaml(tmp_path / "restart.yaml", _document(marker, port))
    crashed = _run(config, tmp_path / "run", port)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert marker.exists() and not (tmp_path / "run" / "summary.json").exists()
    restarted = _run(config, tmp_path / "run", port)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    return summary, orders, marker.stat().st_mtime_ns


def test_restart_with_cache_database_resumes_as_itself(redis_server, tmp_path: Path):
    redis_server.flush()
    summary, orders, crashed_ns = _crash_and_restart(tmp_path, redis_server.port)
    replay = summary["replay"]
    resumed_at = summary["cache_database"]["resumed_from"]
    # Lockstep waits for each checkpoint to be in Redis before the next record, so the node
    # resumes at the bar before the crash bar (the actor kills inside the crash bar's dispatch,
    # after the venue and before the strategies saw it).
    assert resumed_at == CRASH_AT_BAR - 1
    assert replay["resumed_at"] == resumed_at and replay["records"] == replay["total"] == 879
    # Orders sent before the crash came back from the database, owned by their strategy.
    assert (orders["ts_init"] < crashed_ns).sum() > 0
    assert set(orders["strategy_id"]) == {"S1VwapEmaScalper-001"}
    # No order was sent twice: every client order id once, and the restarted strategy's order
    # ids continue the crashed one's count.
    assert orders["client_order_id"].is_unique
    # No decision was sent twice: the tags carry the decision's trace id (strategy, bar, decision
    # number; the number is restored with the strategy's state). Restored orders have no
    # ts_market (recorded in memory), so the bar comes from the trace id.
    assert orders["tags"].notna().all()
    decided = orders.groupby(["tags", "type", "side"]).size()
    assert decided.max() == 1, decided[decided > 1]
    counts = sorted(int(c.rsplit("-", 1)[1]) for c in orders["client_order_id"])
    assert counts == list(range(1, len(counts) + 1))
    positions = pd.read_csv(tmp_path / "run" / "positions.csv")
    assert set(positions["strategy_id"]) == {"S1VwapEmaScalper-001"}
    assert "EXTERNAL" not in set(positions["strategy_id"])


def test_restart_without_cache_database_forgets_everything(tmp_path: Path):
    """Today's failure, kept as the negative control: the restarted node starts from nothing."""
    summary, orders, crashed_ns = _crash_and_restart(tmp_path, None)
    assert summary["cache_database"] is None
    assert summary["replay"]["resumed_at"] is None
    # The replay starts over and the orders sent before the crash are unknown to the new node.
    assert summary["replay"]["records"] == summary["replay"]["total"] == 879
    assert len(orders) > 0 and (orders["ts_init"] > crashed_ns).all()


def test_supervised_node_is_restarted_after_sigkill_and_finishes(redis_server, tmp_path: Path):
    redis_server.flush()
    config = write_yaml(
        tmp_path / "restart.yaml", _document(tmp_path / "crashed", redis_server.port)
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)]),
        "GRODT_TEST_REDIS_PORT": str(redis_server.port),
    }
    run_dir = tmp_path / "run"
    command = [sys.executable, "-m", "grodt", "live", str(config), "--run-dir", str(run_dir)]
    command += ["--catalog", str(CATALOG), "--quiet", "--supervise", "--max-restarts", "2"]
    command += ["--backoff", "0.1"]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "supervisor restart 1/2: node crashed (SIGKILL (exit -9))" in done.stderr
    records = [json.loads(line) for line in (run_dir / RESTARTS_FILE).read_text().splitlines()]
    assert [(r["event"], r["restart"], r["signal"]) for r in records] == [("restart", 1, "SIGKILL")]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["stopped_by"] == "replay finished"
    assert summary["cache_database"]["resumed_from"] == CRASH_AT_BAR - 1


def test_supervisor_gives_up_after_max_restarts(tmp_path: Path):
    crash = [sys.executable, "-c", "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"]
    lines: list[str] = []
    returncode = supervise(crash, tmp_path, RestartPolicy(2, initial=0.01), lines.append)
    assert returncode == -signal.SIGKILL
    records = [json.loads(line) for line in (tmp_path / RESTARTS_FILE).read_text().splitlines()]
    assert [(r["event"], r["restart"]) for r in records] == [
        ("restart", 1),
        ("restart", 2),
        ("gave_up", 2),
    ]
    assert [r["backoff_seconds"] for r in records] == [0.01, 0.02, None]
    assert "restarts spent, giving up" in lines[-1]


def test_supervisor_does_not_restart_a_clean_exit_or_a_config_error(tmp_path: Path):
    for code in (0, 2):
        command = [sys.executable, "-c", f"raise SystemExit({code})"]
        assert supervise(command, tmp_path, RestartPolicy(3, initial=0.01), print) == code
    assert not (tmp_path / RESTARTS_FILE).exists()


def test_lifecycle_state_round_trips_through_saved_bytes():
    state = LifecycleState(
        pending_exit_id=ClientOrderId("O-1-001-001-7"),
        stop_order_id=ClientOrderId("O-1-001-001-5"),
        entry_trace_id="S1-001:123:4",
        direction=1,
        entry_quantity=Decimal("581"),
        full_quantity=612.5,
        entry_allocation=0.3333,
        stop_price=1102.25,
        bars_held=3,
        deferred=True,
        flatten_reason="time_stop",
    )
    restored = lifecycle_state_from_bytes(lifecycle_state_to_bytes(state))
    assert restored == LifecycleState(**{**vars_of(state), "trail_anchor": restored.trail_anchor})
    assert math.isnan(restored.trail_anchor) and restored.pending_entry_id is None
    with pytest.raises(ValueError, match="unknown fields"):
        lifecycle_state_from_bytes(b'{"direction": 1, "stale_field": 2}')


def vars_of(state: LifecycleState) -> dict:
    return {name: getattr(state, name) for name in LifecycleState.__slots__}
