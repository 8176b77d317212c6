"""The demo backtest end to end on the real S&P 500 sample: exact figures, determinism, CLI."""

import json
import math
from decimal import ROUND_HALF_EVEN
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from catalogs.reader import read_bars_frame
from grodt.cli import main
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_config

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"


def simulate_ema_cross(
    closes: list[float],
    fast: int,
    slow: int,
    equity_fraction: float,
    fee_rate: Decimal,
    starting_cash: Decimal,
) -> tuple[list[tuple[int, int, Decimal, Decimal]], Decimal]:
    """An independent re-implementation of the demo: Nautilus EMA semantics (seeded with the first
    close, alpha = 2/(n+1), initialised after n bars), long-only crosses, fills at the signal bar's
    close, taker fee rounded to cents (half-even). Returns fills (bar index, signed qty, price,
    commission) and final equity."""
    alpha_fast, alpha_slow = 2 / (fast + 1), 2 / (slow + 1)
    ema_fast = ema_slow = None
    cash, quantity, previous_trend = starting_cash, 0, 0
    fills = []
    for index, close in enumerate(closes):
        ema_fast = close if ema_fast is None else alpha_fast * close + (1 - alpha_fast) * ema_fast
        ema_slow = close if ema_slow is None else alpha_slow * close + (1 - alpha_slow) * ema_slow
        if index + 1 < slow:
            continue
        trend = 1 if ema_fast > ema_slow else -1
        crossed = previous_trend != 0 and trend != previous_trend
        previous_trend = trend
        if not crossed:
            continue
        price = Decimal(str(close))
        target = int(cash * Decimal(str(equity_fraction)) // price) if trend > 0 else 0
        delta = target - quantity
        if delta == 0:
            continue
        commission = (abs(delta) * price * fee_rate).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_EVEN
        )
        cash -= delta * price + commission
        quantity += delta
        fills.append((index, delta, price, commission))
    return fills, cash + quantity * Decimal(str(closes[-1]))


@pytest.fixture(scope="module")
def demo_run(sp500_catalog, tmp_path_factory):
    spec = load_backtest_config(DEMO)
    return run_backtest(spec, sp500_catalog, tmp_path_factory.mktemp("demo-run"), quiet=True)


def test_demo_matches_an_independent_simulation(demo_run, sp500_catalog):
    spec = load_backtest_config(DEMO)
    config = spec.strategies[0].config
    bars = read_bars_frame(sp500_catalog, BAR_TYPE)
    expected_fills, expected_equity = simulate_ema_cross(
        bars["close"].tolist(),
        fast=config["fast_ema_period"],
        slow=config["slow_ema_period"],
        equity_fraction=config["equity_fraction"],
        fee_rate=Decimal("0.0001"),
        starting_cash=Decimal(1_000_000),
    )
    summary = demo_run.summary
    assert len(expected_fills) > 20  # a real run, not a degenerate one
    assert summary["fills"] == len(expected_fills)
    assert summary["trades"] == len(expected_fills) // 2
    assert summary["final_equity"] == pytest.approx(float(expected_equity), abs=0.005)
    assert summary["engine_final_equity"] == pytest.approx(float(expected_equity), abs=0.005)
    assert summary["total_return"] == pytest.approx(float(expected_equity) / 1e6 - 1, abs=1e-9)

    fills = demo_run.fills
    times = bars.index[[index for index, *_ in expected_fills]]
    assert list(fills["ts_event"]) == list(times)
    assert list(fills["signed_qty"]) == [float(qty) for _, qty, _, _ in expected_fills]
    assert list(fills["price"]) == [float(price) for _, _, price, _ in expected_fills]
    assert list(fills["commission"]) == pytest.approx([float(c) for *_, c in expected_fills])


def test_summary_statistics_follow_from_the_equity_curve(demo_run):
    summary = demo_run.summary
    equity = pd.read_parquet(demo_run.run_dir / "equity.parquet")["equity"]
    daily = equity.groupby(equity.index.normalize()).last()
    returns = daily / daily.shift(1).fillna(1_000_000.0) - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    assert summary["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    running_peak = pd.concat([pd.Series([1_000_000.0]), daily.reset_index(drop=True)]).cummax()
    drawdown = daily.reset_index(drop=True) / running_peak.iloc[1:].reset_index(drop=True) - 1
    assert summary["max_drawdown"] == pytest.approx(drawdown.min(), rel=1e-9)
    assert summary["periods_per_year"] == 252
    assert summary["bars"] == 5031
    for name in ("fills", "orders", "positions", "account_SAMPLE", "equity", "equity_daily"):
        assert Path(summary["reports"][name]).is_file()


def test_two_runs_give_identical_fills(demo_run, sp500_catalog, tmp_path):
    again = run_backtest(load_backtest_config(DEMO), sp500_catalog, tmp_path, quiet=True)
    first = pd.read_csv(demo_run.reports["fills"])
    second = pd.read_csv(again.reports["fills"])
    columns = [
        "client_order_id",
        "venue_order_id",
        "trade_id",
        "order_side",
        "last_qty",
        "last_px",
        "commission",
        "ts_event",
    ]
    pd.testing.assert_frame_equal(first[columns], second[columns])


def test_cli_json_prints_only_the_summary(sp500_catalog, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(DEMO),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["name"] == "ema_cross_sp500"
    assert summary["run_dir"] == str(tmp_path)
    assert (tmp_path / "summary.json").is_file()


def test_cli_reports_a_missing_catalog(tmp_path):
    result = CliRunner().invoke(main, ["backtest", str(DEMO), "--catalog", str(tmp_path / "no")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_chunked_catalog_streaming_gives_the_same_run(demo_run, sp500_catalog, tmp_path):
    spec = load_backtest_config(DEMO).model_copy(update={"chunk_size": 1000})
    streamed = run_backtest(spec, sp500_catalog, tmp_path, quiet=True)
    assert streamed.summary["bars_processed"] == demo_run.summary["bars_processed"]
    assert streamed.summary["fills"] == demo_run.summary["fills"]
    assert streamed.summary["final_equity"] == demo_run.summary["final_equity"]
