"""Mark-to-market equity reconstruction from fills and closes."""

import math

import pandas as pd
import pytest

from research.performance import daily_returns
from research.performance import equity_curve
from research.performance import infer_periods_per_year
from research.performance import money_to_float
from research.performance import run_summary

INDEX = pd.date_range("2024-01-01 21:00", periods=4, freq="1D", tz="UTC")


def _fills(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(
        rows,
        columns=["ts_event", "strategy_id", "instrument_id", "signed_qty", "price", "commission"],
    )


def test_equity_marks_positions_at_each_close_and_attributes_pnl_per_strategy():
    closes = pd.DataFrame(
        {"A.X": [10.0, 11.0, 12.0, 9.0], "B.X": [100.0, 100.0, 90.0, 95.0]}, index=INDEX
    )
    fills = _fills(
        [
            # S1 buys 10 A at the first close (fills stamp the bar's close time), sells at the third
            (INDEX[0], "S1", "A.X", 10.0, 10.0, 1.0),
            (INDEX[2], "S1", "A.X", -10.0, 12.0, 1.0),
            # S2 shorts 2 B at the second close, still open at the end
            (INDEX[1], "S2", "B.X", -2.0, 100.0, 0.5),
        ],
    )
    curve = equity_curve(fills, closes, starting_equity=1000.0)
    frame = curve.frame
    # S1: -1 commission at t0; +10 at t1; +20-1 realised at t2; stays 18 after.
    assert list(frame["pnl:S1"]) == pytest.approx([-1.0, 9.0, 18.0, 18.0])
    # S2: 0, -0.5, short 2 from 100 → 90: +20 - 0.5, → 95: +10 - 0.5
    assert list(frame["pnl:S2"]) == pytest.approx([0.0, -0.5, 19.5, 9.5])
    assert list(frame["equity"]) == pytest.approx([999.0, 1008.5, 1037.5, 1027.5])
    assert list(frame["gross_exposure"]) == pytest.approx([100.0, 310.0, 180.0, 190.0])
    assert list(frame["net_exposure"]) == pytest.approx([100.0, -90.0, -180.0, -190.0])
    assert curve.strategy_ids() == ["S1", "S2"]


def test_multiplier_scales_value_and_cash():
    closes = pd.DataFrame({"F.X": [100.0, 101.0]}, index=INDEX[:2])
    fills = _fills([(INDEX[0], "S", "F.X", 1.0, 100.0, 0.0)])
    curve = equity_curve(fills, closes, 0.0, multipliers={"F.X": 50.0})
    assert list(curve.equity) == pytest.approx([0.0, 50.0])


def test_fill_for_an_instrument_without_closes_is_an_error():
    closes = pd.DataFrame({"A.X": [1.0]}, index=INDEX[:1])
    fills = _fills([(INDEX[0], "S", "Z.X", 1.0, 1.0, 0.0)])
    with pytest.raises(ValueError, match=r"Z\.X"):
        equity_curve(fills, closes, 0.0)


def test_daily_returns_start_from_starting_equity():
    equity = pd.Series([110.0, 99.0], index=INDEX[:2])
    assert list(daily_returns(equity, 100.0)) == pytest.approx([0.10, -0.10])


def test_periods_per_year_inference():
    weekdays = pd.date_range("2024-01-01", periods=5, freq="B", tz="UTC")
    every_day = pd.date_range("2024-01-01", periods=7, freq="D", tz="UTC")
    assert infer_periods_per_year(weekdays) == 252
    assert infer_periods_per_year(every_day) == 365


def test_run_summary_counts_trades_and_turnover():
    closes = pd.DataFrame({"A.X": [10.0, 11.0, 12.0, 9.0]}, index=INDEX)
    fills = _fills(
        [
            (INDEX[0], "S1", "A.X", 10.0, 10.0, 0.0),
            (INDEX[2], "S1", "A.X", -10.0, 12.0, 0.0),
        ],
    )
    positions = pd.DataFrame(
        {
            "strategy_id": ["S1"],
            "ts_closed": [INDEX[2]],
            "realized_pnl": ["20.00 USD"],
        },
    )
    curve = equity_curve(fills, closes, 1000.0)
    summary = run_summary(curve, fills, positions, periods_per_year=252)
    assert summary["total_return"] == pytest.approx(0.02)
    assert summary["final_equity"] == pytest.approx(1020.0)
    assert summary["trades"] == 1
    assert summary["win_rate"] == 1.0
    assert math.isinf(summary["profit_factor"])
    assert summary["fills"] == 2
    # 100 + 120 traded over mean equity, over a span of 3 days
    mean_equity = (1000.0 + 1010.0 + 1020.0 + 1020.0) / 4
    years = (INDEX[-1] - INDEX[0]).value / (365.25 * 24 * 3600 * 1e9)
    assert summary["turnover"] == pytest.approx(220.0 / mean_equity / years)
    assert summary["time_in_market"] == pytest.approx(0.5)
    assert summary["strategies"]["S1"]["pnl"] == pytest.approx(20.0)


def test_money_parsing():
    assert money_to_float("187.43 USD") == pytest.approx(187.43)
    assert money_to_float("[1.00 USD, 2.50 USD]") == pytest.approx(3.5)
    assert money_to_float(None) == 0.0
