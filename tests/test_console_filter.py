"""Nautilus' "handler was called when not overridden" warnings: off the console of a real
backtest of a plain strategy, kept in its log file; every other console line still shows."""

import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import yaml

from grodt.nodes.console_filter import UNOVERRIDDEN_HANDLER
from grodt.nodes.console_filter import _forward

REPO = Path(__file__).resolve().parents[1]
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
NOISE = "The `Strategy.on_stop` handler was called when not overridden"
OWN_WARNING = "plain strategy: a warning of its own"

PLAIN_STRATEGY = f'''
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.trading.strategy import Strategy


class PlainConfig(StrategyConfig, frozen=True):
    bar_type: BarType


class Plain(Strategy):
    """A plain Nautilus strategy: nothing to do on stop, so no on_stop."""

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)
        self.log.warning("{OWN_WARNING}")

    def on_bar(self, bar: Bar) -> None:
        pass
'''


def test_plain_strategy_run_hides_the_noise_on_the_console_only(sp500_catalog, tmp_path):
    (tmp_path / "plain_strategy.py").write_text(textwrap.dedent(PLAIN_STRATEGY))
    config = tmp_path / "plain.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "name": "plain_2018",
                "start": "2018-01-01",
                "end": "2018-03-31",
                "venues": [{"include": str(REPO / "node_configs/venues/sample_cash.yaml")}],
                "data": [{"bar_types": [BAR_TYPE]}],
                "strategies": [
                    {"path": "plain_strategy:Plain", "config": {"bar_type": BAR_TYPE}},
                ],
                "logging": {"level": "WARNING", "file_level": "INFO"},
            },
        ),
    )
    run_dir = tmp_path / "run"
    # A fresh process: Nautilus initialises its logging once per process, with console output.
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "grodt",
            "backtest",
            str(config),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(run_dir),
            "--no-track",
            "--no-tearsheet",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    console = result.stdout + result.stderr
    assert NOISE not in console
    assert OWN_WARNING in result.stdout  # the strategy's own warnings still reach the console
    assert "plain_2018: " in result.stdout and "Final equity" in result.stdout
    records = [
        json.loads(line)
        for path in (run_dir / "logs").glob("*.json")
        for line in path.read_text().splitlines()
        if line.strip()
    ]
    messages = [record["message"] for record in records]
    assert any(NOISE in message for message in messages)  # the log file keeps it
    assert any(OWN_WARNING in message for message in messages)


def test_forwarder_drops_only_matching_lines_and_keeps_a_partial_last_line():
    source_read, source_write = os.pipe()
    target_read, target_write = os.pipe()
    thread = threading.Thread(
        target=_forward, args=(source_read, target_write, [UNOVERRIDDEN_HANDLER])
    )
    thread.start()
    lines = [
        b"2018-01-02T21:00:00Z [WARN] T.Plain: keep me\n",
        b"2018-12-31T21:00:00Z [WARN] T.Plain: The `Actor.on_reset` handler was called when not "
        b"overridden. It's expected ...\n",
        b"second kept line\n",
        b"no newline at the end",
    ]
    for line in lines:
        os.write(source_write, line)
    os.close(source_write)
    thread.join(5)
    received = b""
    while chunk := os.read(target_read, 65536):
        received += chunk
    os.close(target_read)
    assert received == lines[0] + lines[2] + lines[3]


def test_forwarder_keeps_draining_when_the_console_is_gone(caplog):
    source_read, source_write = os.pipe()
    target_read, target_write = os.pipe()
    os.close(target_read)  # the console went away (`grodt backtest … | head` ended)
    thread = threading.Thread(
        target=_forward, args=(source_read, target_write, [UNOVERRIDDEN_HANDLER])
    )
    thread.start()
    line = b"x" * 99 + b"\n"
    for _ in range(5_000):  # 500 kB: far more than a pipe holds, so a stalled reader would block
        os.write(source_write, line)
    os.close(source_write)
    thread.join(10)
    assert not thread.is_alive()
    assert "console output stopped" in caplog.text
