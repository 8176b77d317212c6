"""Concurrent writers lose no metric (PostgreSQL and SQLite); the stream survives store
failures; checkpoint retention keeps exactly the right files."""

import math
import threading

import pytest

from grodt.core.errors import ConfigError
from grodt.test_kit.loadgen import run_load
from grodt.tracking.checkpoints import CheckpointManager
from grodt.tracking.checkpoints import RetentionPolicy
from grodt.tracking.sqlmetrics import SqlMetricCommitter
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.stream import MetricStream
from grodt.tracking.stream import open_metric_stream


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_concurrent_writers_lose_no_metric(backend, pg_store, shared_sqlite_store):
    store = pg_store if backend == "postgresql" else shared_sqlite_store
    result = run_load(
        store,
        writers=8,
        duration_s=3.0,
        steps_per_second=20.0,
        keys=5,
        mode="stream",
        experiment=f"concurrency-{backend}",
        drain_timeout_s=60.0,
    )
    assert result.errors == []
    assert result.logged >= 8 * 5 * 40  # every writer ran (≥ 2/3 of the nominal steps)
    assert result.lost == 0 and result.stored == result.logged
    # Caller-side latency (the training loop never waits on the database) is a figure of
    # benchmarks/tracking_scale.py, not asserted here.


def test_direct_commits_read_back_like_mlflow_writes(pg_store):
    client = open_client(pg_store)
    run_id = client.create_run(ensure_experiment(client, pg_store, "direct")).info.run_id
    stream = open_metric_stream(pg_store, run_id)
    assert isinstance(getattr(stream._commit_rows, "__self__", None), SqlMetricCommitter)
    values = [1.5, float("nan"), float("inf"), -2.0]
    for step, value in enumerate(values):
        stream.log("x", value, step=step, timestamp_ms=1_000 + step)
    stream.log("x", 0.5, step=1, timestamp_ms=999)  # older step: latest must not move back
    stats = stream.close()
    assert stats.lost == 0 and stats.committed == 5
    history = sorted(client.get_metric_history(run_id, "x"), key=lambda m: (m.step, m.timestamp))
    assert [m.step for m in history] == [0, 1, 1, 2, 3]
    assert math.isnan(history[2].value) and history[1].value == 0.5
    assert history[3].value == 1.7976931348623157e308
    assert client.get_run(run_id).data.metrics["x"] == -2.0  # latest = highest step


def test_stream_retries_failed_commits_without_losing_or_duplicating(pg_store):
    client = open_client(pg_store)
    run_id = client.create_run(ensure_experiment(client, pg_store, "flaky")).info.run_id
    committer = SqlMetricCommitter(pg_store, run_id)
    failures = {"left": 3}
    lock = threading.Lock()

    def flaky(rows):
        with lock:
            if failures["left"]:
                failures["left"] -= 1
                raise ConnectionError("store went away")
        committer.commit(rows)

    stream = MetricStream(client, run_id, committer=flaky, retry_max_s=0.05)
    for step in range(200):
        stream.log("loss", 1.0 / (step + 1), step=step)
    assert stream.flush(timeout=30)
    stats = stream.close()
    assert stats.retries == 3 and stats.lost == 0 and stats.last_error.startswith("Connection")
    steps = [m.step for m in client.get_metric_history(run_id, "loss")]
    assert sorted(steps) == list(range(200))


def test_stream_reports_what_it_could_not_commit(pg_store):
    client = open_client(pg_store)
    run_id = client.create_run(ensure_experiment(client, pg_store, "down")).info.run_id

    def down(rows):
        raise ConnectionError("connection refused")

    stream = MetricStream(client, run_id, committer=down, retry_max_s=0.05)
    for step in range(10):
        stream.log("loss", 1.0, step=step)
    stats = stream.close(timeout=0.5)
    assert stats.lost == 10 and stats.committed == 0


def _writer(step: int):
    def write(directory):
        (directory / "weights.bin").write_bytes(bytes([step % 256]) * 1000)

    return write


def test_retention_keeps_last_k_and_best(tmp_path):
    policy = RetentionPolicy(keep_last=3, keep_best=1, metric="val_loss", mode="min")
    manager = CheckpointManager(tmp_path / "policy_a", policy)
    losses = [0.9, 0.5, 0.2, 0.4, 0.6, 0.7, 0.3, 0.8]  # best at step 20 (0.2)
    for index, loss in enumerate(losses):
        manager.save((index + 1) * 10, _writer(index), {"val_loss": loss})
    kept = sorted(p.name for p in (tmp_path / "policy_a").iterdir())
    assert kept == ["step-0000000030", "step-0000000060", "step-0000000070", "step-0000000080"]
    assert manager.best().step == 30 and manager.latest().step == 80
    for name in kept:  # every kept checkpoint is complete
        assert sorted(f.name for f in (tmp_path / "policy_a" / name).iterdir()) == [
            "checkpoint.json",
            "weights.bin",
        ]


def test_retention_caps_disk_use_keeping_newest_and_best(tmp_path):
    policy = RetentionPolicy(
        keep_last=5,
        keep_best=1,
        metric="reward",
        mode="max",
        max_bytes=3_500,
    )
    manager = CheckpointManager(tmp_path / "capped", policy)
    rewards = [5.0, 9.0, 1.0, 2.0, 3.0, 4.0]  # best at step 2
    for step, reward in enumerate(rewards, start=1):
        manager.save(step, _writer(step), {"reward": reward})
        assert manager.disk_usage() <= 3_500 + 2_000  # never far over the cap
    assert [c.step for c in manager.checkpoints()] == [2, 5, 6]
    assert manager.disk_usage() <= 3_500


def test_retention_ignores_crashed_saves_and_nan_metrics(tmp_path):
    directory = tmp_path / "crashy"
    manager = CheckpointManager(directory, RetentionPolicy(keep_last=1, metric="loss"))

    def crash(path):
        (path / "half.bin").write_bytes(b"x")
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError):
        manager.save(1, crash, {"loss": 0.1})
    assert list(directory.iterdir()) == []  # no half checkpoint left behind
    manager.save(2, _writer(2), {"loss": float("nan")})
    manager.save(3, _writer(3), {"loss": 0.5})
    manager.save(4, _writer(4), {"loss": 0.9})
    assert [c.step for c in manager.checkpoints()] == [3, 4]  # NaN is never "best"
    (directory / ".tmp-0000000005-1").mkdir()
    CheckpointManager(directory, RetentionPolicy(keep_last=1, metric="loss"))
    assert not (directory / ".tmp-0000000005-1").exists()
    with pytest.raises(ConfigError, match="keep_last"):
        RetentionPolicy(keep_last=0)
    with pytest.raises(ConfigError, match="metric"):
        RetentionPolicy(keep_best=1)
