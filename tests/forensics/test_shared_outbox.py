"""The shared outbox of a Kafka sink: records a run could not deliver wait under the runs
directory (not inside the run), the run says so and exits 3, and the next process using the same
sink — another run, or ``grodt forensics flush`` — delivers them. A session whose process still
lives keeps its records; one whose process died gives them up."""

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from forensics_kit import consume_all

from actors.forensics.codec import Envelope
from actors.forensics.config import TopicNames
from actors.forensics.shared_outbox import SharedOutbox
from actors.forensics.shared_outbox import default_outbox_root
from actors.forensics.shared_outbox import public_producer_config
from actors.forensics.spill import SpillLog
from actors.forensics.spill import read_spill_dir
from grodt.cli import main
from grodt.core.errors import EXIT_UNDELIVERED
from grodt.core.settings import get_settings
from grodt.test_kit.forensics import node_document
from grodt.test_kit.forensics import traced_cross
from grodt.test_kit.tansu import TansuBroker

ALL_TOPICS = list(TopicNames().model_dump().values())


@pytest.fixture
def runs_dir(tmp_path: Path) -> Iterator[Path]:
    """A runs directory of the test's own (the shared outbox lives under it)."""
    path = tmp_path / "runs"
    before = os.environ.get("GRODT_RUNS_DIR")
    os.environ["GRODT_RUNS_DIR"] = str(path)
    get_settings.cache_clear()
    try:
        yield path
    finally:
        if before is None:
            del os.environ["GRODT_RUNS_DIR"]
        else:
            os.environ["GRODT_RUNS_DIR"] = before
        get_settings.cache_clear()


def backtest(
    tmp_path: Path,
    catalog: Path,
    bootstrap: str,
    name: str,
    *flags: str,
) -> tuple[int, str, str]:
    """``grodt backtest`` of the traced strategy with forensics to ``bootstrap``."""
    config = tmp_path / f"{name}.yaml"
    forensics = {
        "kafka": {"bootstrap_servers": bootstrap, "partitions": 2},
        "flush_timeout_s": 2.0,
        "reconnect_interval_s": 0.5,
    }
    document = node_document(name, [traced_cross(name)], forensics=forensics)
    config.write_text(yaml.safe_dump(document))
    args = ["backtest", str(config), "--catalog", str(catalog), "--run-dir", str(tmp_path / name)]
    result = CliRunner().invoke(main, [*args, "--no-track", "--no-tearsheet", *flags])
    return result.exit_code, result.stdout, result.stderr


def undelivered_of(stdout: str) -> int:
    (line,) = [line for line in stdout.splitlines() if line.startswith("  Forensics:")]
    return int(line.split("; ")[1].split(" NOT DELIVERED")[0].replace(",", ""))


def test_an_undelivered_run_fails_and_the_next_run_on_the_sink_delivers_it(
    tansu: Path,
    catalog: Path,
    tmp_path: Path,
    runs_dir: Path,
) -> None:
    broker = TansuBroker(tansu)  # not started yet: the first run finds nobody
    code, out, err = backtest(tmp_path, catalog, broker.bootstrap, "first")
    assert code == EXIT_UNDELIVERED, out + err
    assert "NOT DELIVERED" in out and "NOT delivered" in err and "--allow-undelivered" in err
    left = undelivered_of(out)
    root = default_outbox_root(runs_dir, broker.bootstrap, ALL_TOPICS)
    assert f"waiting in {root}" in out
    assert not list((tmp_path / "first").rglob("outbox")), "the outbox is not in the run"
    assert len([e for d in root.rglob("outbox") for e in read_spill_dir(d)]) == left > 100

    broker.start()
    try:
        code, out, err = backtest(tmp_path, catalog, broker.bootstrap, "second")
        assert code == 0, out + err
        assert "NOT DELIVERED" not in out
        messages = consume_all(broker.bootstrap, ALL_TOPICS, 2 * left)
    finally:
        broker.stop()
    sessions = Counter(m.session for m in messages)
    assert len(sessions) == 2 and sorted(sessions.values()) == [left, left]  # same run twice
    assert len({(m.session, m.seq) for m in messages}) == len(messages)
    assert not list(root.rglob("*.jsonl"))


def test_allow_undelivered_accepts_it_and_flush_delivers_by_hand(
    tansu: Path,
    catalog: Path,
    tmp_path: Path,
    runs_dir: Path,
) -> None:
    broker = TansuBroker(tansu)
    code, out, err = backtest(tmp_path, catalog, broker.bootstrap, "alone", "--allow-undelivered")
    assert code == 0, out + err
    assert "accepted (--allow-undelivered)" in err
    left = undelivered_of(out)
    root = default_outbox_root(runs_dir, broker.bootstrap, ALL_TOPICS)
    broker.start()
    try:
        result = CliRunner().invoke(main, ["forensics", "flush", str(root), "--timeout", "30"])
        assert result.exit_code == 0, result.output
        assert f"delivered {left:,} of {left:,} records" in result.stdout
        messages = consume_all(broker.bootstrap, ALL_TOPICS, left)
    finally:
        broker.stop()
    assert sorted(m.seq for m in messages) == list(range(1, left + 1))
    assert not list(root.rglob("*.jsonl"))


def envelope(session: str, seq: int) -> Envelope:
    return Envelope(session, seq, "t", "k", "decision", "", 0, 0, "c", b"{}")


def write_outbox(directory: Path, session: str, count: int) -> None:
    log = SpillLog(directory / "outbox")
    log.extend(envelope(session, seq) for seq in range(1, count + 1))
    log.close()


def test_a_live_session_keeps_its_records_and_a_dead_one_gives_them_up(tmp_path: Path) -> None:
    import logging

    log = logging.getLogger("tests.forensics.shared_outbox")
    shared = SharedOutbox(tmp_path / "outbox", log)
    first = shared.open_session("1000000000000000001-aaaaaaaa")
    write_outbox(first.path, "1000000000000000001-aaaaaaaa", 5)
    # Another process's session, alive: a child holding its lock until killed.
    child_session = "1000000000000000002-bbbbbbbb"
    script = textwrap.dedent(
        f"""
        import logging, sys, time
        from pathlib import Path
        from actors.forensics.shared_outbox import SharedOutbox
        lease = SharedOutbox(Path({str(tmp_path / "outbox")!r}), logging.getLogger()).open_session(
            {child_session!r})
        print(lease.path, flush=True)
        time.sleep(600)
        """,
    )
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        child_dir = Path(child.stdout.readline().strip())  # type: ignore[union-attr]
        write_outbox(child_dir, child_session, 3)

        second = shared.open_session("1000000000000000003-cccccccc")
        assert second.claimed_sessions == []  # both owners are alive
        assert shared.pending() == 8
        first.close()  # ended cleanly, records left
        third = shared.open_session("1000000000000000004-dddddddd")
        assert third.claimed_sessions == ["1000000000000000001-aaaaaaaa"]
        assert not first.path.exists() and child_dir.exists()

        os.kill(child.pid, signal.SIGKILL)  # a crash: the kernel drops its lock
        child.wait(10)
        fourth = shared.open_session("1000000000000000005-eeeeeeee")
        # The second and third sessions are alive (this process); only the dead one is claimed.
        assert fourth.claimed_sessions == [child_session]
        assert [e.seq for e in read_spill_dir(fourth.path / "outbox")] == [1, 2, 3]
        assert [e.seq for e in read_spill_dir(third.path / "outbox")] == [1, 2, 3, 4, 5]
        for lease in (second, third, fourth):
            lease.close()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)


def test_sink_json_keeps_no_literal_secret() -> None:
    producer = {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "env:KAFKA_USER",
        "sasl.password": "literal-value",
        "ssl.key.password": "another",
    }
    assert public_producer_config(producer) == {
        "security.protocol": "SASL_SSL",
        "sasl.mechanisms": "SCRAM-SHA-512",
        "sasl.username": "env:KAFKA_USER",
    }
