"""The tearsheet: self-contained HTML whose charts draw in headless Chromium; forensics
charts appear when records exist; `grodt ui` serves the store."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from tracking_kit import write_node_config
from tracking_kit_chromium import CHART_PROBE
from tracking_kit_chromium import Browser

from grodt.cli import main
from grodt.core.records import AllocationRecord
from grodt.core.records import RegimeUpdateRecord
from grodt.core.records import RiskVerdictRecord
from grodt.nodes.backtest import run_backtest
from grodt.reports.tearsheet import RunData
from grodt.reports.tearsheet import build_sections
from grodt.reports.tearsheet import monthly_returns
from grodt.reports.tearsheet import rolling_sharpe
from grodt.test_kit.ports import free_port
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_config
from node_configs.loader import load_yaml_document

FORENSICS_CHARTS = {"chart-regime", "chart-allocation", "chart-risk"}
BASE_CHARTS = {
    "chart-equity",
    "chart-monthly",
    "chart-rolling_sharpe",
    "chart-trades",
    "chart-contribution",
}


@pytest.fixture(scope="module")
def backtest_run(tiny_catalog, tmp_path_factory) -> Path:
    config = write_node_config(tmp_path_factory.mktemp("cfg"))
    run_dir = tmp_path_factory.mktemp("tearsheet-run")
    run_backtest(
        load_backtest_config(config),
        tiny_catalog,
        run_dir,
        document=load_yaml_document(config),
        quiet=True,
    )
    return run_dir


def write_forensics(run_dir: Path, ts: list[int]) -> None:
    """Regime updates, allocations and risk verdicts in the forensics bridge's Parquet layout
    (``forensics/<topic>/part-*.parquet``, record JSON in ``payload``)."""
    from grodt.core.records import record_to_json

    rng = np.random.default_rng(1)
    records = []
    for i, t in enumerate(ts[::10]):
        p = rng.dirichlet([2, 2, 2])
        records.append(
            (
                "grodt.forensics.regime",
                RegimeUpdateRecord(
                    ts_event=t,
                    ts_init=t,
                    component_id="RegimeActor-000",
                    instrument_id="SPX.SAMPLE",
                    probabilities={"bull": p[0], "bear": p[1], "sideways": p[2]},
                    most_likely=("bull", "bear", "sideways")[int(np.argmax(p))],
                    entropy=float(-(p * np.log(p)).sum()),
                    reason="refit" if i % 5 == 0 else "label_change",
                ),
            ),
        )
    for t in ts[::20]:
        w = float(rng.uniform(0.2, 0.8))
        records.append(
            (
                "grodt.forensics.allocations",
                AllocationRecord(
                    ts_event=t,
                    ts_init=t,
                    component_id="MetaController-000",
                    weights={"EMACross-000": w, "MeanRev-000": 1 - w},
                ),
            ),
        )
    for i, t in enumerate(ts[5::7]):
        verdict = ("approve", "deny", "resize")[i % 3]
        records.append(
            (
                "grodt.forensics.risk",
                RiskVerdictRecord(
                    ts_event=t,
                    ts_init=t,
                    component_id="RiskGate",
                    strategy_id="EMACross-000",
                    instrument_id="SPX.SAMPLE",
                    client_order_id=f"O-{i}",
                    verdict=verdict,
                    reason="" if verdict == "approve" else f"{verdict}: gross exposure",
                    requested_quantity="100",
                    approved_quantity="0" if verdict == "deny" else "100",
                    equity=1e6,
                    gross_exposure=5e5,
                    net_exposure=5e5,
                ),
            ),
        )
    # One bridge session numbers its records across all topics.
    by_topic: dict[str, list] = {}
    for seq, (topic, record) in enumerate(records):
        by_topic.setdefault(topic, []).append((seq, record))
    for topic, numbered in by_topic.items():
        seqs = [seq for seq, _ in numbered]
        items = [record for _, record in numbered]
        folder = run_dir / "forensics" / topic
        folder.mkdir(parents=True, exist_ok=True)
        table = pa.table(
            {
                "session": ["s1"] * len(items),
                "seq": seqs,
                "topic": [topic] * len(items),
                "key": ["k"] * len(items),
                "record_type": [r.record_type for r in items],
                "trace_id": [r.trace_id for r in items],
                "ts_event": [r.ts_event for r in items],
                "ts_init": [r.ts_init for r in items],
                "component_id": [r.component_id for r in items],
                "payload": [record_to_json(r).decode() for r in items],
            },
        )
        pq.write_table(table, folder / "part-s1-00000.parquet")


def test_tearsheet_charts_draw_in_headless_chromium(backtest_run, chromium, tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(backtest_run, run_dir)
    ts = pd.read_parquet(run_dir / "equity.parquet").index.asi8.tolist()
    write_forensics(run_dir, ts)
    result = CliRunner().invoke(main, ["tracking", "tearsheet", str(run_dir)])
    assert result.exit_code == 0, result.output
    page = run_dir / "tearsheet.html"
    assert result.stdout.strip() == page.resolve().as_uri()
    text = page.read_text()
    # Self-contained: plotly.js inlined, nothing fetched from the network.
    assert not re.search(r"<script[^>]*\ssrc=", text)
    assert not re.search(r"<link[^>]*\shref=[\"']https?:", text)
    assert len(text) > 3_000_000

    browser = Browser(*chromium)
    try:
        browser.open(page)
        charts = {c["id"]: c for c in browser.run(CHART_PROBE)}
        errors = [e for e in browser.console() if e.get("level") == "SEVERE"]
    finally:
        browser.close()
    assert errors == []
    assert set(charts) == BASE_CHARTS | FORENSICS_CHARTS
    for chart in charts.values():
        drawn = chart["lines"] + chart["bars"] + chart["images"]
        assert chart["svg"] >= 1 and chart["traces"] >= 1 and drawn >= 1, chart
        assert chart["width"] > 300 and chart["height"] > 200, chart
    assert charts["chart-monthly"]["images"] == 1  # the heat map rendered
    assert charts["chart-trades"]["bars"] >= 3  # a histogram, not a single bar
    assert charts["chart-regime"]["traces"] == 3  # bull, bear, sideways
    assert charts["chart-allocation"]["traces"] == 2
    assert charts["chart-risk"]["bars"] >= 2  # deny and resize counts


def test_sections_without_trades_or_forensics_say_so(backtest_run):
    summary = json.loads((backtest_run / "summary.json").read_text())
    equity = pd.read_parquet(backtest_run / "equity.parquet")
    flat = equity[["equity"]].assign(equity=summary["starting_equity"])
    data = RunData(summary=summary, equity=flat, positions=pd.DataFrame(), forensics={})
    sections = {s.key: s for s in build_sections(data)}
    assert sections["trades"].figure is None and "No closed positions" in sections["trades"].note
    assert sections["contribution"].figure is None
    assert not {"regime", "allocation", "risk"} & set(sections)
    assert sections["equity"].figure is not None


def test_monthly_returns_and_rolling_sharpe_values():
    index = pd.date_range("2020-01-01", periods=70, freq="D", tz="UTC")
    returns = pd.Series(0.01, index=index)
    table = monthly_returns(returns)
    assert table.loc[2020, 1] == pytest.approx(1.01**31 - 1)
    assert table.loc[2020, 3] == pytest.approx(1.01**10 - 1)
    assert np.isnan(table.loc[2020, 4])
    noisy = pd.Series(np.random.default_rng(0).normal(0.001, 0.01, 300))
    window = noisy.iloc[-60:]
    expected = window.mean() / window.std(ddof=1) * np.sqrt(252)
    assert rolling_sharpe(noisy, 60, 252).iloc[-1] == pytest.approx(expected)


@pytest.mark.slow
def test_grodt_ui_serves_the_configured_store(runs_dir):
    store = resolve_store()
    ensure_experiment(open_client(store), store, "ui_visible")
    port = free_port()
    env = {**os.environ, "GRODT_RUNS_DIR": str(runs_dir)}
    process = subprocess.Popen(
        [sys.executable, "-c", "from grodt.cli import main; main()", "ui", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        body = None
        while time.monotonic() < deadline and process.poll() is None:
            try:
                url = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=50"
                with urllib.request.urlopen(url, timeout=5) as response:
                    body = json.loads(response.read())
                break
            except OSError:
                time.sleep(0.5)
        assert body is not None, process.stderr.read().decode()[-2000:] if process.poll() else ""
        assert "ui_visible" in {e["name"] for e in body["experiments"]}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
