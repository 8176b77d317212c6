"""research.metrics against values computed by hand (empyrical conventions)."""

import math

import numpy as np
import pandas as pd
import pytest

from research.metrics import annual_return
from research.metrics import calmar_ratio
from research.metrics import downside_risk
from research.metrics import max_drawdown
from research.metrics import performance_summary
from research.metrics import sharpe_ratio
from research.metrics import sortino_ratio
from research.metrics import total_return
from research.metrics import trade_statistics

RETURNS = pd.Series([0.10, -0.05, 0.02, -0.10, 0.03])


def test_total_and_annual_return_are_geometric():
    growth = 1.10 * 0.95 * 1.02 * 0.90 * 1.03  # = 0.98778...
    assert total_return(RETURNS) == pytest.approx(growth - 1, abs=1e-15)
    # 5 periods of a 252-period year: growth ** (252 / 5) - 1
    assert annual_return(RETURNS, 252) == pytest.approx(growth ** (252 / 5) - 1, rel=1e-12)
    assert annual_return(pd.Series([0.01] * 12), 12) == pytest.approx(1.01**12 - 1, rel=1e-12)


def test_sharpe_uses_sample_std():
    returns = pd.Series([0.01, 0.02, 0.03])
    # mean 0.02, sample std (ddof=1) = 0.01 → Sharpe = 2 * sqrt(252)
    assert sharpe_ratio(returns, 252) == pytest.approx(2 * math.sqrt(252), rel=1e-12)
    assert performance_summary(returns, 252)["annual_volatility"] == pytest.approx(
        0.01 * math.sqrt(252), rel=1e-12
    )


def test_sortino_uses_downside_deviation_over_all_periods():
    returns = pd.Series([0.02, -0.01, 0.03, -0.02])
    # downside terms over ALL four periods: 0, -0.01, 0, -0.02 → mean square = 0.0005/4
    downside = math.sqrt((0.01**2 + 0.02**2) / 4) * math.sqrt(252)
    assert downside_risk(returns, 252) == pytest.approx(downside, rel=1e-12)
    mean = (0.02 - 0.01 + 0.03 - 0.02) / 4
    assert sortino_ratio(returns, 252) == pytest.approx(mean * 252 / downside, rel=1e-12)


def test_max_drawdown_counts_a_first_period_loss_and_is_negative():
    # curve from 1: 0.9, 0.99, 0.792 → peak 1 → trough 0.792 → -20.8%
    assert max_drawdown(pd.Series([-0.1, 0.1, -0.2])) == pytest.approx(-0.208, abs=1e-12)
    # peak 1.1·0.95 after recovery? curve 1.1, 1.045, 1.0659, 0.95931, 0.98809 → (0.95931/1.1)-1
    expected = (1.10 * 0.95 * 1.02 * 0.90) / 1.10 - 1
    assert max_drawdown(RETURNS) == pytest.approx(expected, abs=1e-12)
    assert max_drawdown(pd.Series([0.01, 0.02])) == 0.0


def test_calmar_is_annual_return_over_abs_drawdown_and_nan_without_drawdown():
    expected = annual_return(RETURNS, 252) / abs(max_drawdown(RETURNS))
    assert calmar_ratio(RETURNS, 252) == pytest.approx(expected, rel=1e-12)
    assert math.isnan(calmar_ratio(pd.Series([0.01, 0.02]), 252))


def test_summary_drops_nan_and_reports_count():
    summary = performance_summary(pd.Series([0.01, np.nan, 0.02, 0.03]), 252)
    assert summary["periods"] == 3
    assert summary["total_return"] == pytest.approx(1.01 * 1.02 * 1.03 - 1, rel=1e-12)
    assert set(summary) >= {
        "sharpe",
        "sortino",
        "annual_return",
        "annual_volatility",
        "max_drawdown",
        "calmar",
    }


def test_summary_rejects_nonpositive_periods_per_year():
    with pytest.raises(ValueError, match="periods_per_year"):
        performance_summary(RETURNS, 0)


def test_trade_statistics():
    stats = trade_statistics([100.0, -50.0, 25.0, -25.0])
    assert stats["trades"] == 4
    assert stats["win_rate"] == 0.5
    assert stats["profit_factor"] == pytest.approx(125.0 / 75.0)
    assert stats["avg_trade_pnl"] == pytest.approx(12.5)
    assert math.isinf(trade_statistics([10.0])["profit_factor"])
    assert math.isnan(trade_statistics([])["win_rate"])
