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

import msgspec
import pandas as pd
import pytest
import redis
from live_kit import write_yaml
from live_kit_crash import killed_at
from nautilus_trader.cache.config import CacheConfig
from nautilus_trader.cache.database import CacheDatabaseAdapter
from nautilus_trader.common.config import DatabaseConfig
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.serialization.serializer import MsgSpecSerializer

from grodt.core.errors import GrodtError
from grodt.nodes import cache_transactions
from grodt.nodes.cache_transactions import TransactionalCacheDatabase
from grodt.nodes.checkpoint import CHECKPOINT_KEY
from grodt.nodes.live import run_live
from grodt.nodes.supervisor import RESTARTS_FILE
from grodt.nodes.supervisor import RestartPolicy
from grodt.nodes.supervisor import supervise
from grodt.test_kit.redis import TemporaryRedis
from node_configs.live_schema import load_live_config
from risk_engine.config import RiskConfig
from risk_engine.loss_halts import LossTriggers
from strategies.lifecycle import LifecycleState
from strategies.lifecycle import lifecycle_state_from_bytes
from strategies.lifecycle import lifecycle_state_to_bytes

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
CRASH_AT_BAR = 340  # of 879 (2004-01 … 2007-06): S1 holds a position, its bracket resting
TRADER_ID = "GRODT-001"  # the engine section's default


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The S&P 500 index and stock samples (SPX, IXIC, AAPL daily), built for this module."""
    from catalogs.sample import build_sample_catalog

    path = tmp_path_factory.mktemp("restart-catalog")
    build_sample_catalog(path, datasets=("sp500", "stocks"))
    return path


@pytest.fixture(scope="module")
def redis_server() -> Iterator[TemporaryRedis]:
    with TemporaryRedis() as server:
        yield server


def _document(
    marker: Path | None, port: int | None, at_bars: tuple[int, ...] = (CRASH_AT_BAR,)
) -> dict:
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
                "path": "live_kit_crash:CrashAt",
                "config": {"bar_type": BAR_TYPE, "at_bars": list(at_bars), "marker": str(marker)},
            },
        ]
    if port is not None:
        document["cache_database"] = {"host": "127.0.0.1", "port": "env:GRODT_TEST_REDIS_PORT"}
    return document


def _full_document(marker: Path, port: int) -> dict:
    """``parity_sample_full.yaml`` (regime actor, S1/S2/S3, risk gate, forensics) on 2004 to
    mid-2007, with the crash actor and the cache database."""
    live = REPO / "node_configs" / "live"
    document = _document(marker, port)
    bar_types = [BAR_TYPE, "IXIC.SAMPLE-1-DAY-LAST-EXTERNAL", "AAPL.SAMPLE-1-DAY-LAST-EXTERNAL"]
    document["name"] = "restart_full"
    document["data_clients"][0]["data"] = [{"bar_types": bar_types}]
    document["actors"].insert(
        0,
        {
            "path": "actors.regime_actor:RegimeActor",
            "config": {
                "bar_types": bar_types,
                "walk_forward": {"train_bars": 200, "refit_every": 100},
            },
        },
    )
    document["strategies"] = [
        {
            "include": str(REPO / "node_configs/components/strategies/s1_vwap_ema_spx.yaml"),
            "config": {"allocation_weight": 0.3333},
        },
        {
            "include": str(REPO / "node_configs/components/strategies/s2_mean_reversion_spx.yaml"),
            "config": {
                "instrument_id": "IXIC.SAMPLE",
                "bar_type": bar_types[1],
                "allocation_weight": 0.3333,
            },
        },
        {
            "include": str(REPO / "node_configs/components/strategies/s3_breakout_spx.yaml"),
            "config": {
                "instrument_id": "AAPL.SAMPLE",
                "bar_type": bar_types[2],
                "volume_confirmation": False,
                "allocation_weight": 0.3333,
            },
        },
    ]
    document["risk"] = {"include": str(live.parent / "components/risk/default.yaml")}
    document["forensics"] = {"include": str(live.parent / "components/forensics/default.yaml")}
    return document


def _run(
    config: Path, run_dir: Path, port: int | None, catalog: Path
) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(REPO)])}
    if port is not None:
        env["GRODT_TEST_REDIS_PORT"] = str(port)
    command = [sys.executable, "-m", "grodt", "live", str(config), "--run-dir", str(run_dir)]
    command += ["--catalog", str(catalog), "--quiet"]
    return subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _crash_and_restart(
    tmp_path: Path, port: int | None, catalog: Path
) -> tuple[dict, pd.DataFrame, int]:
    """Run until the crash, run again; the restarted run's summary and orders, and the wall
    time of the crash (UNIX ns: the marker is written just before the SIGKILL)."""
    marker = tmp_path / "crashed"
    config = write_yaml(tmp_path / "restart.yaml", _document(marker, port))
    crashed = _run(config, tmp_path / "run", port, catalog)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    assert marker.exists() and not (tmp_path / "run" / "summary.json").exists()
    restarted = _run(config, tmp_path / "run", port, catalog)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    return summary, orders, marker.stat().st_mtime_ns


def _uninterrupted(tmp_path: Path, document: dict, port: int, catalog: Path) -> Path:
    """``document`` (crash actor included, killing nowhere) run through; its run directory."""
    document = {**document, "actors": [dict(a) for a in document["actors"]]}
    for actor in document["actors"]:
        if actor["path"] == "live_kit_crash:CrashAt":
            actor["config"] = {**actor["config"], "at_bars": []}
    config = write_yaml(tmp_path / "through.yaml", document)
    done = _run(config, tmp_path / "through", port, catalog)
    assert done.returncode == 0, done.stderr[-3000:]
    return tmp_path / "through"


# What the two runs' reports must share. Client order ids carry the wall clock of the run that
# sent them (compared by strategy and number), and so do the orders' ts_init and the linked ids.
_ORDER_COLUMNS = [
    "strategy_id", "number", "instrument_id", "venue_order_id", "position_id", "side", "type",
    "quantity", "price", "trigger_price", "status", "filled_qty", "avg_px", "last_trade_id",
    "contingency_type", "tags", "ts_market",
]  # fmt: skip
_POSITION_COLUMNS = [
    "position_id", "strategy_id", "instrument_id", "entry", "side", "quantity", "peak_qty",
    "ts_opened", "ts_closed", "avg_px_open", "avg_px_close", "realized_pnl", "commissions",
    "is_snapshot",
]  # fmt: skip
_UUID_SUFFIX = r"-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
_SUMMARY_KEYS = ["orders", "fills", "trades", "final_equity", "total_return", "sharpe"]


def _orders(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "orders.csv")
    frame["number"] = frame["client_order_id"].str.rsplit("-", n=1).str[1].astype(int)
    return frame[_ORDER_COLUMNS].sort_values(["strategy_id", "number"]).reset_index(drop=True)


def _positions(run_dir: Path) -> pd.DataFrame:
    frame = pd.read_csv(run_dir / "positions.csv")[_POSITION_COLUMNS]
    # A snapshot's id is the position id plus a random UUID.
    frame["position_id"] = frame["position_id"].str.replace(_UUID_SUFFIX, "", regex=True)
    return frame.sort_values(["position_id", "ts_opened"]).reset_index(drop=True)


def _assert_same_run(restarted: Path, through: Path) -> dict:
    """The restarted run's orders, positions, account and figures equal the uninterrupted
    run's; returns the restarted run's summary."""
    pd.testing.assert_frame_equal(_orders(restarted), _orders(through))
    pd.testing.assert_frame_equal(_positions(restarted), _positions(through))
    account = pd.read_csv(restarted / "account_SAMPLE.csv")
    expected_account = pd.read_csv(through / "account_SAMPLE.csv")
    pd.testing.assert_frame_equal(account, expected_account)
    summary = json.loads((restarted / "summary.json").read_text())
    expected = json.loads((through / "summary.json").read_text())
    assert {k: summary[k] for k in _SUMMARY_KEYS} == {k: expected[k] for k in _SUMMARY_KEYS}
    return summary


def _database_after_crash(port: int) -> tuple[dict, list[OrderFilled]]:
    """The checkpoint and the fills a crashed node left in the cache database, read through
    Nautilus' own adapter (what a restarted node loads)."""
    adapter = CacheDatabaseAdapter(
        trader_id=TraderId(TRADER_ID),
        instance_id=UUID4(),
        serializer=MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True),
        config=CacheConfig(
            database=DatabaseConfig(host="127.0.0.1", port=port), encoding="msgpack"
        ),
    )
    try:
        checkpoint = json.loads(adapter.load()[CHECKPOINT_KEY])
        orders = adapter.load_orders()
    finally:
        adapter.close()
    fills = [e for o in orders.values() for e in o.events if isinstance(e, OrderFilled)]
    return checkpoint, fills


def _crash_until_done(
    config: Path, run_dir: Path, port: int, catalog: Path, marker: Path, kills: int
) -> list[tuple[int, dict, list[OrderFilled]]]:
    """Run ``config`` again after every SIGKILL until it finishes; for each kill, the bar it
    landed in and the database's checkpoint and fills right after it."""
    crashes: list[tuple[int, dict, list[OrderFilled]]] = []
    while True:
        done = _run(config, run_dir, port, catalog)
        if done.returncode != -signal.SIGKILL:
            assert done.returncode == 0, done.stderr[-3000:]
            break
        bar = max(killed_at(marker))
        crashes.append((bar, *_database_after_crash(port)))
        assert len(crashes) <= kills
    assert [bar for bar, _, _ in crashes] == sorted(killed_at(marker)) and len(crashes) == kills
    return crashes


def test_kills_on_fill_bars_end_as_an_uninterrupted_run(
    redis_server, catalog: Path, tmp_path: Path
):
    """S1 killed three times in one run: inside bar 340 (a position open, its stop and target
    resting), then inside bars 344 and 350, where the venue fills the stop or the target (the
    venue moves before the crash actor sees the bar, so the fill, the target's cancel, the
    position's and the account's updates are all under way at the kill). The cache database
    commits one transaction per record, so after each kill it holds the state as of the bar
    before, nothing of the crash bar; each restart resumes there, and the run ends with the
    uninterrupted run's orders (venue order ids and trade ids included), positions, account
    and equity."""
    kills = (CRASH_AT_BAR, 344, 350)
    redis_server.flush()
    marker = tmp_path / "crashed"
    document = _document(marker, redis_server.port, kills)
    through = _uninterrupted(tmp_path, document, redis_server.port, catalog)
    redis_server.flush()
    config = write_yaml(tmp_path / "restart.yaml", document)
    crashes = _crash_until_done(
        config, tmp_path / "run", redis_server.port, catalog, marker, len(kills)
    )
    fill_times = pd.to_datetime(pd.read_csv(through / "fills.csv")["ts_event"]).astype("int64")
    killed = killed_at(marker)
    for bar, checkpoint, fills in crashes:
        # Nothing of the crash bar reached the database: the checkpoint is the bar before it,
        # and no fill is stamped with the crash bar's time (the venue's fills carry it).
        assert checkpoint["replayed"] == bar - 1
        assert all(fill.ts_event < killed[bar] for fill in fills)
        # The premise: the venue fills S1's stop or target on bars 344 and 350, not on 340.
        assert ((fill_times == killed[bar]).sum() > 0) == (bar != CRASH_AT_BAR), bar
    summary = _assert_same_run(tmp_path / "run", through)
    replay = summary["replay"]
    assert replay["resumed_at"] == kills[-1] - 1 and replay["records"] == replay["total"] == 879
    # Orders sent before the crashes came back from the database, owned by their strategy.
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    assert (orders["ts_init"] < marker.stat().st_mtime_ns).sum() > 0
    assert set(orders["strategy_id"]) == {"S1VwapEmaScalper-001"}
    # No order was sent twice: every client order id once, the restarted strategy's order ids
    # continuing the crashed one's count; no decision twice: the tags carry the decision's trace
    # id (strategy, bar, decision number, restored with the strategy's state). Every order, the
    # crashed processes' included, has its decision's market time (saved at checkpoints).
    assert orders["client_order_id"].is_unique
    counts = sorted(int(c.rsplit("-", 1)[1]) for c in orders["client_order_id"])
    assert counts == list(range(1, len(counts) + 1))
    assert orders["tags"].notna().all() and orders["ts_market"].notna().all()
    decided = orders.groupby(["tags", "type", "side"]).size()
    assert decided.max() == 1, decided[decided > 1]
    assert "EXTERNAL" not in set(pd.read_csv(tmp_path / "run" / "positions.csv")["strategy_id"])
    restored = summary["cache_database"]["restored"]
    assert restored["warm_up"]["bars"] == kills[-1] - 1
    assert restored["market_times"] > 0  # the crashed runs' orders keep their ts_market
    venue = restored["venues"]["SAMPLE"]
    assert venue["account_restored"] is True
    assert venue["news"] == 0  # every open order in the database was open at the venue
    transactions = summary["cache_database"]["transactions"]
    assert transactions["commits"] > 0 and transactions["failures"] == 0


def test_kills_with_commands_held_for_the_next_open_end_as_an_uninterrupted_run(
    redis_server, catalog: Path, tmp_path: Path
):
    """A ``fill_at: next_open`` venue holds every command until its instrument's next bar
    opens. S1 killed inside bar 398 (its bracket, decided on bar 397, held at the checkpoint:
    entry, stop and target submitted, not yet at the exchange) and inside bar 569 (the exit
    decided on bar 568 and the cancel of its OCO stop and target held). The restarted venue holds
    them again and runs them at the open of the crash bar, as the uninterrupted venue did."""
    kills = (398, 569)
    redis_server.flush()
    marker = tmp_path / "crashed"
    document = _document(marker, redis_server.port, kills)
    document["exec_clients"][0]["venue"]["fill_at"] = "next_open"
    through = _uninterrupted(tmp_path, document, redis_server.port, catalog)
    redis_server.flush()
    config = write_yaml(tmp_path / "restart.yaml", document)
    _crash_until_done(config, tmp_path / "run", redis_server.port, catalog, marker, len(kills))
    # The premise: on each crash bar the venue filled a market order decided on the bar before.
    orders = pd.read_csv(through / "orders.csv")
    fills = pd.read_csv(through / "fills.csv")
    fills["ts"] = pd.to_datetime(fills["ts_event"]).astype("int64")
    held = fills.merge(orders[["client_order_id", "type", "ts_market"]], on="client_order_id")
    held = held[(held["type"] == "MARKET") & (held["ts_market"] < held["ts"])]
    assert set(killed_at(marker).values()) <= set(held["ts"])
    summary = _assert_same_run(tmp_path / "run", through)
    venue = summary["cache_database"]["restored"]["venues"]["SAMPLE"]
    # The exit and one cancel (one leg of the OCO stop/target: the venue cancels the other).
    assert venue["held"] == 2
    assert venue["news"] == 0


def test_loss_halt_active_at_the_crash_stays_on(redis_server, catalog: Path, tmp_path: Path):
    """A daily-loss halt without auto reset (risk gate, 0.1% of the day's start equity) trips in
    February 2004 and stays on: S1 sends 3 orders in all. Killed inside bar 100 and restarted,
    the node applies the saved halt before its strategies start; without it the loss would not
    trip again (the restarted day starts at the current equity) and S1 would trade again."""
    redis_server.flush()
    marker = tmp_path / "crashed"
    document = _document(marker, redis_server.port, (100,))
    document["data_clients"][0]["end"] = "2004-12-31"
    document["risk"] = {
        "limits": {"daily_loss": 0.001},
        "kill_switch": {"auto_reset_daily_loss": False},
    }
    through = _uninterrupted(tmp_path, document, redis_server.port, catalog)
    expected = json.loads((through / "summary.json").read_text())
    assert expected["orders"] == 3 and expected["kill_switch"]["halted"]
    redis_server.flush()
    config = write_yaml(tmp_path / "restart.yaml", document)
    _crash_until_done(config, tmp_path / "run", redis_server.port, catalog, marker, 1)
    summary = _assert_same_run(tmp_path / "run", through)
    assert summary["cache_database"]["restored"]["halts"] == 1
    assert summary["kill_switch"]["halts"] == expected["kill_switch"]["halts"]
    assert [h["action"] for h in summary["kill_switch"]["history"]] == ["restore"]


def test_a_failed_commit_keeps_its_writes_for_the_next(tmp_path: Path):
    """Redis down at a commit: GrodtError naming the server, nothing applied, the writes held;
    the next commit, once the server is back on its port, applies them all in one transaction."""
    server = TemporaryRedis().start()
    try:
        database = TransactionalCacheDatabase(
            trader_id=TraderId(TRADER_ID),
            instance_id=UUID4(),
            serializer=MsgSpecSerializer(encoding=msgspec.msgpack, timestamps_as_str=True),
            config=CacheConfig(
                database=DatabaseConfig(host="127.0.0.1", port=server.port, timeout=2),
                encoding="msgpack",
            ),
        )
        database.add("a", b"1")
        assert database.commit() == 1
        database.add("b", b"2")
        database.add("c", b"3")
        server.stop()
        with pytest.raises(GrodtError, match=rf"127.0.0.1:{server.port} failed.*held"):
            database.commit()
        assert database.staged == 2 and database.stats.failures == 1
        server = TemporaryRedis(port=server.port).start()  # a fresh, empty server
        assert database.commit() == 2
        client = redis.Redis(host="127.0.0.1", port=server.port)
        prefix = f"trader-{TRADER_ID}:general:"
        assert [client.get(prefix + key) for key in "abc"] == [None, b"2", b"3"]
        client.close()
        assert database.stats.as_dict() == {
            "commands": 3, "commits": 2, "failures": 1, "largest": 2
        }  # fmt: skip
        database.close()
    finally:
        server.stop()


_WRITES = (
    "add", "add_currency", "add_instrument", "add_synthetic", "add_account", "add_order",
    "add_position", "index_venue_order_id", "index_order_position", "update_actor",
    "update_strategy", "update_account", "update_order", "update_position",
    "snapshot_order_state", "snapshot_position_state", "heartbeat", "delete_order",
    "delete_position", "delete_actor", "delete_strategy",
)  # fmt: skip


def _dump(client: redis.Redis) -> dict[bytes, object]:
    """Every key of a Redis server with its value (lists in order, sets as sets)."""
    content: dict[bytes, object] = {}
    for key in client.keys("*"):
        kind = client.type(key)
        if kind == b"string":
            content[key] = client.get(key)
        elif kind == b"list":
            content[key] = client.lrange(key, 0, -1)
        elif kind == b"set":
            content[key] = client.smembers(key)
        elif kind == b"hash":
            content[key] = client.hgetall(key)
        else:
            raise AssertionError(f"unexpected {kind!r} at {key!r}")
    return content


def test_transactions_write_what_nautilus_writer_writes(
    redis_server, catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """Every cache write of a paper run (S1, 376 bars, a checkpoint per bar) goes through both
    writers: Nautilus' (to the configured server, as it happens) and the transactional one (to
    a second server, one transaction per checkpoint). Both servers end with the same keys,
    types and bytes, so a node restarted on either loads the same state."""
    redis_server.flush()
    monkeypatch.setenv("GRODT_TEST_REDIS_PORT", str(redis_server.port))
    with TemporaryRedis() as second:
        second_client = redis.Redis(host="127.0.0.1", port=second.port)

        class BothWriters(TransactionalCacheDatabase):
            def __init__(self, **kwargs: object) -> None:
                super().__init__(**kwargs, client=second_client)

        def through_both(name: str):
            def write(self, *args):
                getattr(CacheDatabaseAdapter, name)(self, *args)
                getattr(TransactionalCacheDatabase, name)(self, *args)

            return write

        for name in _WRITES:
            setattr(BothWriters, name, through_both(name))
        monkeypatch.setattr(cache_transactions, "TransactionalCacheDatabase", BothWriters)
        document = _document(None, redis_server.port)
        document["data_clients"][0]["end"] = "2005-06-30"  # 376 bars, 96 orders
        config = write_yaml(tmp_path / "s1.yaml", document)
        outcome = run_live(
            load_live_config(config), tmp_path / "run", catalog=catalog, quiet=True,
            handle_signals=False,
        )  # fmt: skip
        assert outcome.summary["orders"] > 50
        transactions = outcome.summary["cache_database"]["transactions"]
        assert transactions["commits"] >= 376 and transactions["failures"] == 0
        written = _dump(second_client)
        second_client.close()
    commit_key = f"trader-{TRADER_ID}:grodt:commit".encode()
    assert written.pop(commit_key) is not None
    nautilus = redis.Redis(host="127.0.0.1", port=redis_server.port)
    expected = _dump(nautilus)
    nautilus.close()
    assert sorted(written) == sorted(expected)
    assert written == expected


def test_full_stack_restarted_run_ends_as_an_uninterrupted_run(
    redis_server, catalog: Path, tmp_path: Path
):
    """Regime actor, S1/S2/S3, risk gate (HRP targets, loss triggers) and forensics on three
    instruments, killed inside S&P 500 bar 340 and restarted: the same as the uninterrupted run."""
    redis_server.flush()
    document = _full_document(tmp_path / "crashed", redis_server.port)
    through = _uninterrupted(tmp_path, document, redis_server.port, catalog)
    redis_server.flush()
    config = write_yaml(tmp_path / "restart.yaml", document)
    crashed = _run(config, tmp_path / "run", redis_server.port, catalog)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr[-3000:]
    restarted = _run(config, tmp_path / "run", redis_server.port, catalog)
    assert restarted.returncode == 0, restarted.stderr[-3000:]
    summary = _assert_same_run(tmp_path / "run", through)
    restored = summary["cache_database"]["restored"]
    assert {"RegimeActor", "RiskGate-HRP", "S2MeanReversion-002"} <= set(
        restored["warm_up"]["components"]
    )
    assert restored["venues"]["SAMPLE"]["news"] == 0
    assert restored["venues"]["SAMPLE"]["orders"] == 2  # S1's stop and target
    # The risk gate's loss marks (high-water mark, day start) and HRP targets continue the
    # crashed node's: they end where the uninterrupted run's end.
    risk = summary["extensions"]["risk"]
    expected_risk = json.loads((through / "summary.json").read_text())["extensions"]["risk"]
    assert risk["kill_switch"]["loss_marks"] == expected_risk["kill_switch"]["loss_marks"]
    assert risk["hrp"] == expected_risk["hrp"]


def test_restart_without_cache_database_forgets_everything(catalog: Path, tmp_path: Path):
    """Today's failure, kept as the negative control: the restarted node starts from nothing."""
    summary, orders, crashed_ns = _crash_and_restart(tmp_path, None, catalog)
    assert summary["cache_database"] is None
    assert summary["replay"]["resumed_at"] is None
    # The replay starts over and the orders sent before the crash are unknown to the new node.
    assert summary["replay"]["records"] == summary["replay"]["total"] == 879
    assert len(orders) > 0 and (orders["ts_init"] > crashed_ns).all()


def test_supervised_node_is_restarted_after_sigkill_and_finishes(
    redis_server, catalog: Path, tmp_path: Path
):
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
    command += ["--catalog", str(catalog), "--quiet", "--supervise", "--max-restarts", "2"]
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


def test_loss_marks_survive_a_restart_through_their_state():
    """The risk gate's loss triggers continue from saved marks: a drawdown measured from the
    crashed node's high-water mark, not from the equity at the restart."""
    config = RiskConfig().kill_switch
    crashed = LossTriggers(config, daily_loss=None, max_drawdown=0.2)
    day = 86_400 * 10**9
    assert crashed.observe(1_000_000.0, 1 * day, ()) == []
    assert crashed.observe(900_000.0, 2 * day, ()) == []
    restarted = LossTriggers(config, daily_loss=None, max_drawdown=0.2)
    restarted.restore(json.loads(json.dumps(crashed.state())))
    assert restarted.state() == crashed.state()
    [trip] = restarted.observe(790_000.0, 3 * day, ())
    assert (trip.action, trip.code) == ("halt", "max_drawdown")
    fresh = LossTriggers(config, daily_loss=None, max_drawdown=0.2)
    assert fresh.observe(900_000.0, 2 * day, ()) == fresh.observe(790_000.0, 3 * day, ()) == []
