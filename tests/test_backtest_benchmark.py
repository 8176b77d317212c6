"""`benchmark:` in a backtest config: buy-and-hold figures and the run's alpha, beta, information
ratio and tracking error, checked against an independent computation from the catalog's closes."""

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from catalogs.reader import read_bars_frame
from grodt.cli import main
from grodt.core.errors import ConfigError
from grodt.nodes.backtest import run_backtest
from grodt.reports.tearsheet import render_tearsheet
from grodt.tracking.backtest import backtest_metrics
from node_configs.loader import load_backtest_config
from research.benchmark import BENCHMARK_COLUMN
from research.benchmark import relative_statistics

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
PPY = 252


@pytest.fixture(scope="module")
def demo_run(sp500_catalog, tmp_path_factory):
    spec = load_backtest_config(DEMO)
    assert spec.benchmark == BAR_TYPE  # the demo config carries a benchmark
    return run_backtest(spec, sp500_catalog, tmp_path_factory.mktemp("bench-run"), quiet=True)


def _daily(values: pd.Series, start: float) -> np.ndarray:
    """Simple returns of end-of-day values, the first day against ``start`` (plain numpy)."""
    by_day = values.groupby(values.index.normalize()).last().to_numpy(dtype=float)
    return np.diff(np.concatenate(([start], by_day))) / np.concatenate(([start], by_day[:-1]))


def test_benchmark_is_buy_and_hold_of_the_index(demo_run, sp500_catalog):
    closes = read_bars_frame(sp500_catalog, BAR_TYPE)["close"]
    benchmark = demo_run.summary["benchmark"]
    assert benchmark["bar_type"] == BAR_TYPE
    # Bought at the first close of the span, held to the last.
    assert benchmark["total_return"] == pytest.approx(closes.iloc[-1] / closes.iloc[0] - 1, 1e-12)
    b = closes.to_numpy() / closes.iloc[0]  # value of 1 invested at the first close
    daily_b = np.diff(np.concatenate(([1.0], b))) / np.concatenate(([1.0], b[:-1]))
    sharpe = daily_b.mean() / daily_b.std(ddof=1) * math.sqrt(PPY)
    assert benchmark["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    peak = np.maximum.accumulate(b)
    assert benchmark["max_drawdown"] == pytest.approx((b / peak - 1).min(), rel=1e-9)
    assert benchmark["max_drawdown"] < -0.5  # 2007-2009 is in the span

    equity = pd.read_parquet(demo_run.run_dir / "equity.parquet")
    held = equity[BENCHMARK_COLUMN].to_numpy()
    assert held == pytest.approx(1_000_000.0 * b, rel=1e-12)

    # Relative figures: beta and alpha from an ordinary least-squares fit of the run's daily
    # returns on the benchmark's; tracking error and information ratio from the active returns.
    daily_r = _daily(equity["equity"], 1_000_000.0)
    slope, intercept = np.polyfit(daily_b, daily_r, 1)
    assert benchmark["beta"] == pytest.approx(slope, rel=1e-9)
    assert benchmark["alpha"] == pytest.approx((1 + intercept) ** PPY - 1, rel=1e-9)
    active = daily_r - daily_b
    tracking_error = active.std(ddof=1) * math.sqrt(PPY)
    assert benchmark["tracking_error"] == pytest.approx(tracking_error, rel=1e-9)
    assert benchmark["information_ratio"] == pytest.approx(
        active.mean() * PPY / tracking_error, rel=1e-9
    )
    assert 0.0 < benchmark["beta"] < 1.0  # long only, part of the time


def test_benchmark_reaches_summary_tearsheet_and_mlflow_metrics(demo_run):
    stored = json.loads((demo_run.run_dir / "summary.json").read_text())
    assert stored["benchmark"]["beta"] == pytest.approx(demo_run.summary["benchmark"]["beta"])
    metrics = backtest_metrics(stored)
    for key in ("total_return", "sharpe", "max_drawdown", "alpha", "beta"):
        assert metrics[f"benchmark.{key}"] == pytest.approx(stored["benchmark"][key]), key
    assert metrics["benchmark.information_ratio"] == pytest.approx(
        stored["benchmark"]["information_ratio"]
    )
    assert metrics["benchmark.tracking_error"] == pytest.approx(
        stored["benchmark"]["tracking_error"]
    )
    page = render_tearsheet(demo_run.run_dir).read_text()
    chart = page[page.index("Plotly.newPlot('chart-equity'") :]
    chart = chart[: chart.index("</script>")]
    assert f"{BAR_TYPE} (buy and hold)" in chart  # the second line of the equity chart
    assert "Information ratio" in page and "Tracking error" in page


def test_cli_prints_the_benchmark_lines(sp500_catalog, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(DEMO),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(tmp_path / "run"),
            "--no-track",
            "--no-tearsheet",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())["benchmark"]
    lines = [line.strip() for line in result.stdout.splitlines()]
    assert (
        f"Benchmark {BAR_TYPE} (buy and hold): return {summary['total_return'] * 100:,.2f}%, "
        f"Sharpe {summary['sharpe']:,.3f}, max drawdown {summary['max_drawdown'] * 100:,.2f}%"
    ) in lines
    assert any(
        line.startswith(f"Against it: alpha {summary['alpha'] * 100:,.2f}%/yr, ")
        and f"beta {summary['beta']:,.3f}" in line
        for line in lines
    )


def test_a_benchmark_missing_from_the_catalog_fails_before_the_run(sp500_catalog, tmp_path):
    spec = load_backtest_config(DEMO).model_copy(
        update={"benchmark": "NOPE.SAMPLE-1-DAY-LAST-EXTERNAL"}
    )
    with pytest.raises(ConfigError, match=r"benchmark: NOPE\.SAMPLE-1-DAY-LAST-EXTERNAL: no such"):
        run_backtest(spec, sp500_catalog, tmp_path, quiet=True)
    assert not (tmp_path / "summary.json").exists()


def test_relative_statistics_match_least_squares_on_synthetic_returns():
    rng = np.random.default_rng(7)
    index = pd.date_range("2020-01-01", periods=500, freq="B", tz="UTC")
    b = pd.Series(rng.normal(0.0004, 0.01, len(index)), index=index)
    r = 0.0002 + 0.6 * b + pd.Series(rng.normal(0, 0.004, len(index)), index=index)
    r.iloc[10] = np.nan  # a missing day is dropped from both
    stats = relative_statistics(r, b, PPY)
    kept = r.notna()
    slope, intercept = np.polyfit(b[kept], r[kept], 1)
    assert stats["beta"] == pytest.approx(slope, rel=1e-9)
    assert stats["alpha"] == pytest.approx((1 + intercept) ** PPY - 1, rel=1e-9)
    assert stats["correlation"] == pytest.approx(np.corrcoef(b[kept], r[kept])[0, 1], rel=1e-9)
    assert stats["periods"] == 499
    flat = relative_statistics(r, pd.Series(0.0, index=index), PPY)
    assert math.isnan(flat["beta"]) and math.isnan(flat["alpha"])
