"""research.overfitting against the papers' formulas worked by hand, the DSR paper's numeric
example, and CSCV on matrices whose answer is known."""

import math
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from research.metrics import sharpe_ratio
from research.overfitting import EULER_MASCHERONI
from research.overfitting import deflated_sharpe_ratio
from research.overfitting import expected_maximum_sharpe
from research.overfitting import min_track_record_length
from research.overfitting import probabilistic_sharpe_ratio
from research.overfitting import probability_of_backtest_overfitting
from research.overfitting import result_credibility
from research.overfitting import return_moments

NORMAL = NormalDist()


def test_psr_against_zero_is_the_normal_cdf_of_the_papers_statistic():
    # SR = 0.1 per period on T = 101 returns, skew -0.5, kurtosis 4:
    # z = 0.1 * sqrt(100) / sqrt(1 + 0.5 * 0.1 + 3/4 * 0.01) = 1 / sqrt(1.0575)
    z = 1.0 / math.sqrt(1.0575)
    expected = 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101, -0.5, 4.0) == pytest.approx(expected, 1e-12)
    # Normal returns: z = 0.1 * 10 / sqrt(1 + 0.5 * 0.01)
    normal = NORMAL.cdf(1.0 / math.sqrt(1.005))
    assert probabilistic_sharpe_ratio(0.1, 0.0, 101) == pytest.approx(normal, rel=1e-12)
    # A Sharpe ratio equal to the benchmark is a coin flip.
    assert probabilistic_sharpe_ratio(0.2, 0.2, 50, 1.0, 9.0) == pytest.approx(0.5, abs=1e-15)


def test_dsr_reproduces_the_papers_numeric_example():
    # Bailey & López de Prado (2014), section 5: annualised SR 2.5 found after N = 100 trials
    # whose annualised Sharpe ratios have variance 0.5; 5 years of daily returns (T = 1250,
    # 250 a year), skewness -3, kurtosis 10. The paper: SR0 ≈ 0.1132 per day, DSR ≈ 0.9004.
    per_day = math.sqrt(250)
    variance = 0.5 / 250
    sr0 = expected_maximum_sharpe(100, variance)
    by_hand = math.sqrt(variance) * (
        (1 - EULER_MASCHERONI) * NORMAL.inv_cdf(1 - 1 / 100)
        + EULER_MASCHERONI * NORMAL.inv_cdf(1 - 1 / (100 * math.e))
    )
    assert sr0 == pytest.approx(by_hand, rel=1e-12)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    dsr = deflated_sharpe_ratio(2.5 / per_day, variance, 100, 1250, -3.0, 10.0)
    assert dsr == pytest.approx(0.9004, abs=5e-5)


def test_expected_maximum_is_zero_for_one_trial_and_near_the_simulated_maximum():
    assert expected_maximum_sharpe(1, 0.3) == 0.0
    # E[max of N standard normals] by simulation (seed 3, 20,000 draws of 100): the paper's
    # approximation is within 2% of it.
    draws = np.random.default_rng(3).standard_normal((20_000, 100))
    simulated = float(draws.max(axis=1).mean())
    assert expected_maximum_sharpe(100, 1.0) == pytest.approx(simulated, rel=0.02)
    assert expected_maximum_sharpe(1000, 1.0) > expected_maximum_sharpe(100, 1.0)
    with pytest.raises(ValueError, match="n_trials"):
        expected_maximum_sharpe(0, 1.0)


def test_min_track_record_length_by_hand_and_as_the_inverse_of_psr():
    # SR = 0.1, SR* = 0, normal: 1 + 1.005 * (1.6448536.. / 0.1)^2
    z = NORMAL.inv_cdf(0.95)
    assert min_track_record_length(0.1) == pytest.approx(1 + 1.005 * (z / 0.1) ** 2, rel=1e-12)
    # At exactly MinTRL observations the PSR equals the confidence asked for.
    for sharpe, benchmark, skew, kurt, confidence in [
        (0.1, 0.0, 0.0, 3.0, 0.95),
        (0.15, 0.05, -1.0, 6.0, 0.99),
    ]:
        length = min_track_record_length(sharpe, benchmark, skew, kurt, confidence)
        factor = 1 - skew * sharpe + (kurt - 1) / 4 * sharpe**2
        z_at_length = (sharpe - benchmark) * math.sqrt(length - 1) / math.sqrt(factor)
        assert NORMAL.cdf(z_at_length) == pytest.approx(confidence, rel=1e-12)
    assert min_track_record_length(0.05, 0.05) == math.inf
    assert min_track_record_length(-0.1) == math.inf


def test_an_impossible_moment_combination_is_an_error_naming_kurtosis():
    # Excess kurtosis (0 for a normal) passed where the plain moment is expected.
    with pytest.raises(ValueError, match="kurtosis"):
        probabilistic_sharpe_ratio(3.0, 0.0, 100, skewness=2.0, kurtosis=0.0)


def test_return_moments_are_population_moments_with_plain_kurtosis():
    values = np.array([0.01, -0.02, 0.03, 0.0, 0.05, -0.01])
    centred = values - values.mean()
    m2, m3, m4 = (np.mean(centred**k) for k in (2, 3, 4))
    moments = return_moments(pd.Series([*values, np.nan]))
    assert moments["observations"] == 6.0
    assert moments["sharpe"] == pytest.approx(values.mean() / values.std(ddof=1), rel=1e-12)
    assert moments["skewness"] == pytest.approx(m3 / m2**1.5, rel=1e-12)
    assert moments["kurtosis"] == pytest.approx(m4 / m2**2, rel=1e-12)


def test_pbo_is_zero_when_one_configuration_dominates_every_split():
    rng = np.random.default_rng(5)
    matrix = rng.normal(0.0, 0.01, size=(320, 10))
    matrix[:, 3] += 0.02  # two standard deviations a period better, in every block
    result = probability_of_backtest_overfitting(matrix, n_splits=16)
    assert result.n_combinations == math.comb(16, 8) == result.logits.size
    assert result.pbo == 0.0
    assert np.all(result.is_best == 3)
    # Out of sample it is still the best of 10: rank 10 of 10, logit ln(10/11 / (1/11)).
    assert np.allclose(result.logits, math.log(10.0))
    assert result.probability_of_loss == 0.0


def test_pbo_is_one_half_for_pure_noise():
    # 200 matrices of 20 configurations of i.i.d. normal returns (seed 11), S = 8 (70
    # combinations each). One matrix's PBO varies widely (its combinations share data; std
    # 0.22 here), so the test averages: the mean's standard error is about 0.016 and the
    # tolerance, 0.05, is three of them (this seed gives 0.470). 20 columns (even) leaves no
    # rank at the median (λ = 0).
    rng = np.random.default_rng(11)
    pbos = [
        probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (320, 20)), n_splits=8).pbo
        for _ in range(200)
    ]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.05)


def test_pbo_by_hand_when_the_in_sample_winner_always_loses_out_of_sample():
    # Two blocks of two rows, two configurations, statistic = mean. Column 0 wins block 0 and
    # loses block 1, column 1 the reverse: whichever block is in sample, its winner ranks 1 of 2
    # out of sample, ω = 1/3, λ = ln(1/2), and PBO = 1.
    matrix = np.array([[0.02, 0.01], [0.02, 0.01], [-0.01, 0.03], [-0.01, 0.03]])
    result = probability_of_backtest_overfitting(matrix, n_splits=2, metric="mean")
    assert result.pbo == 1.0
    assert np.allclose(result.logits, [math.log(0.5), math.log(0.5)])
    assert result.is_best.tolist() == [0, 1]
    assert np.allclose(result.is_performance, [0.02, 0.03])
    assert np.allclose(result.oos_performance, [-0.01, 0.01])
    assert result.probability_of_loss == 0.5


def test_a_configuration_that_never_moves_ranks_last_on_sharpe():
    rng = np.random.default_rng(2)
    matrix = rng.normal(0.001, 0.01, size=(64, 4))
    matrix[:, 0] = 0.05  # constant: huge mean, no Sharpe ratio
    result = probability_of_backtest_overfitting(matrix, n_splits=4)
    assert not np.any(result.is_best == 0)


def test_pbo_rejects_bad_matrices_with_the_position():
    matrix = np.zeros((40, 3))
    matrix[7, 2] = np.nan
    with pytest.raises(ValueError, match="row 7, column 2"):
        probability_of_backtest_overfitting(matrix, n_splits=4)
    with pytest.raises(ValueError, match="even"):
        probability_of_backtest_overfitting(np.ones((40, 3)), n_splits=5)
    with pytest.raises(ValueError, match="too few"):
        probability_of_backtest_overfitting(np.ones((10, 3)), n_splits=16)
    with pytest.raises(ValueError, match="too few"):
        probability_of_backtest_overfitting(np.ones((3, 3)), n_splits=2)


def test_pbo_needs_only_a_row_per_block():
    # The smallest matrix S = 16 accepts: one row per block, eight rows per half.
    rng = np.random.default_rng(4)
    result = probability_of_backtest_overfitting(rng.normal(0.0, 0.01, (16, 5)), n_splits=16)
    assert result.n_combinations == 12_870
    assert np.all(np.isfinite(result.is_performance)) and np.all(np.isfinite(result.logits))
    with pytest.raises(ValueError, match="2 configurations"):
        probability_of_backtest_overfitting(np.ones((40, 1)), n_splits=4)


def test_result_credibility_combines_the_figures():
    rng = np.random.default_rng(17)
    returns = pd.Series(rng.normal(0.001, 0.01, 500))
    trials = np.array([0.4, 1.1, -0.3, 0.9, 1.6, 0.2])  # annualised
    report = result_credibility(returns, n_trials=6, trial_sharpes=trials)
    moments = return_moments(returns)
    assert report["sharpe"] == pytest.approx(sharpe_ratio(returns, 252), rel=1e-12)
    variance = float(np.var(trials / math.sqrt(252), ddof=1))
    assert report["trial_sharpe_variance"] == pytest.approx(variance, rel=1e-12)
    expected_dsr = deflated_sharpe_ratio(
        moments["sharpe"], variance, 6, 500, moments["skewness"], moments["kurtosis"]
    )
    assert report["dsr"] == pytest.approx(expected_dsr, rel=1e-12)
    assert report["dsr"] < report["psr"]
    assert report["min_track_record_length_deflated"] > report["min_track_record_length"]
    assert "pbo" not in report
    assert all(isinstance(value, float) for value in report.values())

    # One trial: nothing to deflate.
    single = result_credibility(returns, n_trials=1)
    assert single["dsr"] == pytest.approx(single["psr"], rel=1e-15)
    assert single["expected_max_sharpe"] == 0.0

    # Without trial Sharpe ratios: the null variance 1 / (T - 1).
    null = result_credibility(returns, n_trials=50)
    assert null["trial_sharpe_variance"] == pytest.approx(1 / 499, rel=1e-12)

    matrix = rng.normal(0.0, 0.01, (320, 6))
    with_matrix = result_credibility(returns, 6, trials, performance_matrix=matrix, n_splits=8)
    assert with_matrix["pbo_combinations"] == 70.0
    assert 0.0 <= with_matrix["pbo"] <= 1.0


def test_result_credibility_of_a_flat_series_has_no_sharpe_figures():
    report = result_credibility(np.zeros(30), n_trials=3)
    assert math.isnan(report["sharpe"]) and math.isnan(report["dsr"])
    with pytest.raises(ValueError, match="at least 2 returns"):
        result_credibility([0.01], n_trials=3)
