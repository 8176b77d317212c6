"""research.risk_metrics against values worked by hand (empyrical conventions; VaR and CVaR are
returns, negative for a losing tail)."""

import math

import numpy as np
import pandas as pd
import pytest

from research.benchmark import relative_statistics
from research.risk_metrics import beta
from research.risk_metrics import conditional_value_at_risk
from research.risk_metrics import risk_summary
from research.risk_metrics import tail_ratio
from research.risk_metrics import value_at_risk

# -0.10, -0.09, ..., +0.10: 21 returns, shuffled so nothing relies on order.
LADDER = np.random.default_rng(0).permutation(np.round(np.arange(-10, 11) / 100, 2))


def test_value_at_risk_is_the_interpolated_percentile():
    # 95%: the 5th percentile sits at position 20 * 0.05 = 1 of the sorted returns: -0.09.
    assert value_at_risk(LADDER, 0.95) == pytest.approx(-0.09, abs=1e-12)
    # 99%: position 0.2, between -0.10 and -0.09: -0.10 + 0.2 * 0.01.
    assert value_at_risk(LADDER, 0.99) == pytest.approx(-0.098, abs=1e-12)


def test_conditional_value_at_risk_averages_the_tail():
    # 95%: floor(20 * 0.05) + 1 = 2 smallest returns: (-0.10 - 0.09) / 2.
    assert conditional_value_at_risk(LADDER, 0.95) == pytest.approx(-0.095, abs=1e-12)
    # 99%: floor(20 * 0.01) + 1 = 1: the worst return.
    assert conditional_value_at_risk(LADDER, 0.99) == pytest.approx(-0.10, abs=1e-12)
    assert conditional_value_at_risk(LADDER, 0.95) <= value_at_risk(LADDER, 0.95)


def test_sign_convention_follows_the_returns():
    gains_only = np.array([0.01, 0.02, 0.03, 0.04])
    assert value_at_risk(gains_only, 0.95) > 0  # even the worst periods made money
    assert value_at_risk(-gains_only, 0.95) < 0


def test_tail_ratio_by_hand():
    returns = pd.Series([-0.04, -0.01, 0.0, 0.01, 0.02, 0.08, np.nan])
    # 6 values after the NaN is dropped. 95th percentile at position 4.75: 0.02 + 0.75 * 0.06 =
    # 0.065; 5th at 0.25: -0.04 + 0.25 * 0.03 = -0.0325; ratio 2.
    assert tail_ratio(returns) == pytest.approx(2.0, rel=1e-12)
    assert tail_ratio(LADDER) == pytest.approx(1.0, rel=1e-12)
    assert math.isnan(tail_ratio(np.zeros(5)))


def test_beta_is_the_benchmark_modules():
    index = pd.date_range("2024-01-01", periods=5, freq="D")
    benchmark = pd.Series([0.01, -0.02, 0.03, 0.0, 0.015], index=index)
    run = 2.0 * benchmark + 0.001
    assert beta(run, benchmark) == pytest.approx(2.0, rel=1e-12)
    # Days missing in either series are dropped, as in research.benchmark.
    partial = run.drop(index[1])
    assert beta(partial, benchmark) == pytest.approx(2.0, rel=1e-12)
    noisy = run + pd.Series([0.002, -0.001, 0.0, 0.003, -0.002], index=index)
    assert beta(noisy, benchmark) == relative_statistics(noisy, benchmark)["beta"]


def test_summary_and_bad_input():
    summary = risk_summary(LADDER)
    assert summary == pytest.approx(
        {
            "var_95": -0.09,
            "cvar_95": -0.095,
            "var_99": -0.098,
            "cvar_99": -0.10,
            "tail_ratio": 1.0,
        },
        abs=1e-12,
    )
    index = pd.date_range("2024-01-01", periods=21, freq="D")
    with_beta = risk_summary(pd.Series(LADDER, index=index), pd.Series(LADDER / 2, index=index))
    assert with_beta["beta"] == pytest.approx(2.0, rel=1e-12)
    with pytest.raises(TypeError, match=r"pd\.Series"):
        risk_summary(LADDER, pd.Series(LADDER))
    with pytest.raises(ValueError, match="confidence"):
        value_at_risk(LADDER, 95)
    assert math.isnan(value_at_risk([], 0.95))
    assert math.isnan(conditional_value_at_risk([np.nan], 0.99))
