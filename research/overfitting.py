"""How much to believe a backtest: deflated Sharpe ratio, minimum track record length and the
probability of backtest overfitting.

Sources:

- Bailey & López de Prado (2012), "The Sharpe Ratio Efficient Frontier" (probabilistic Sharpe
  ratio, minimum track record length);
- Bailey & López de Prado (2014), "The Deflated Sharpe Ratio: Correcting for Selection Bias,
  Backtest Overfitting and Non-Normality" (expected maximum Sharpe ratio under N trials);
- Bailey, Borwein, López de Prado & Zhu (2015), "The Probability of Backtest Overfitting"
  (combinatorially symmetric cross-validation, CSCV).

Conventions:

- every Sharpe ratio passed to the low-level functions (:func:`probabilistic_sharpe_ratio`,
  :func:`expected_maximum_sharpe`, :func:`deflated_sharpe_ratio`,
  :func:`min_track_record_length`) is **per period** (not annualised): ``mean / std(ddof=1)`` of
  the period returns, risk-free rate 0 — the annualised figure of :mod:`research.metrics` divided
  by ``sqrt(periods_per_year)``. Their sampling variance is in per-period units too.
  :func:`result_credibility` takes annualised trial Sharpe ratios (what run summaries hold) and
  converts them;
- ``kurtosis`` is the plain (non-excess) fourth standardised moment: 3 for a normal distribution;
  skewness and kurtosis of a return series are the population (biased) moments, as in the papers;
- a track record length is a count of periods (observations), not years.
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "EULER_MASCHERONI",
    "PBOResult",
    "deflated_sharpe_ratio",
    "expected_maximum_sharpe",
    "min_track_record_length",
    "probabilistic_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "result_credibility",
    "return_moments",
]

EULER_MASCHERONI = 0.5772156649015329
"""γ of the expected-maximum approximation in Bailey & López de Prado (2014), eq. (6)."""


def _sharpe_standard_error_factor(sharpe: float, skewness: float, kurtosis: float) -> float:
    """``1 - γ3·SR + (γ4 - 1)/4·SR²``: the non-normal correction of the Sharpe ratio's variance
    (Mertens 2002, as used by both papers). Must be positive for the statistics to exist."""
    factor = 1.0 - skewness * sharpe + (kurtosis - 1.0) / 4.0 * sharpe**2
    if factor <= 0:
        raise ValueError(
            f"1 - skewness*SR + (kurtosis-1)/4*SR^2 = {factor:.6g} <= 0 for SR={sharpe:.6g}, "
            f"skewness={skewness:.6g}, kurtosis={kurtosis:.6g}: the Sharpe ratio's variance is "
            "undefined (is kurtosis the plain moment, 3 for a normal, not the excess?)"
        )
    return factor


def probabilistic_sharpe_ratio(
    observed_sharpe: float,
    benchmark_sharpe: float,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Probability that the true Sharpe ratio exceeds ``benchmark_sharpe`` (PSR).

    ``PSR = Φ((SR - SR*)·sqrt(T - 1) / sqrt(1 - γ3·SR + (γ4 - 1)/4·SR²))``.

    Parameters
    ----------
    observed_sharpe, benchmark_sharpe : float
        Per-period Sharpe ratios (SR and SR*).
    n_observations : int
        T, the number of returns the observed Sharpe ratio was measured on (>= 2).
    skewness, kurtosis : float
        γ3 and γ4 (plain, 3 for normal) of those returns.

    Returns
    -------
    float
        A probability in [0, 1].
    """
    if n_observations < 2:
        raise ValueError(f"n_observations must be >= 2, was {n_observations}")
    factor = _sharpe_standard_error_factor(observed_sharpe, skewness, kurtosis)
    z = (observed_sharpe - benchmark_sharpe) * math.sqrt(n_observations - 1) / math.sqrt(factor)
    return float(stats.norm.cdf(z))


def expected_maximum_sharpe(n_trials: int, sharpe_variance: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is 0 (SR₀ of the DSR).

    ``SR₀ = sqrt(V)·((1 - γ)·Φ⁻¹(1 - 1/N) + γ·Φ⁻¹(1 - 1/(N·e)))`` with γ the Euler–Mascheroni
    constant (Bailey & López de Prado 2014, eq. 6).

    Parameters
    ----------
    n_trials : int
        N, independent trials (configurations) tried before choosing this one; 1 gives 0.
    sharpe_variance : float
        V, the variance across trials of their (per-period) Sharpe ratios.
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, was {n_trials}")
    if not sharpe_variance >= 0:
        raise ValueError(f"sharpe_variance must be >= 0, was {sharpe_variance}")
    if n_trials == 1:
        return 0.0
    gamma = EULER_MASCHERONI
    spread = (1.0 - gamma) * stats.norm.ppf(1.0 - 1.0 / n_trials) + gamma * stats.norm.ppf(
        1.0 - 1.0 / (n_trials * math.e)
    )
    return float(math.sqrt(sharpe_variance) * spread)


def deflated_sharpe_ratio(
    observed_sharpe: float,
    sharpe_variance: float,
    n_trials: int,
    n_observations: int,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
) -> float:
    """Deflated Sharpe ratio: the PSR against the Sharpe ratio the best of ``n_trials`` pure-noise
    trials would be expected to reach, ``DSR = PSR(SR₀)`` with
    ``SR₀ = expected_maximum_sharpe(n_trials, sharpe_variance)``.

    Parameters are as in :func:`probabilistic_sharpe_ratio` and :func:`expected_maximum_sharpe`
    (per-period Sharpe ratios and variance). Returns a probability in [0, 1]; 0.95 or more is the
    papers' bar for a discovery at the 5% level.
    """
    benchmark = expected_maximum_sharpe(n_trials, sharpe_variance)
    return probabilistic_sharpe_ratio(
        observed_sharpe, benchmark, n_observations, skewness, kurtosis
    )


def min_track_record_length(
    observed_sharpe: float,
    benchmark_sharpe: float = 0.0,
    skewness: float = 0.0,
    kurtosis: float = 3.0,
    confidence: float = 0.95,
) -> float:
    """Minimum track record length: the number of periods needed for the observed Sharpe ratio to
    be above ``benchmark_sharpe`` with probability ``confidence``.

    ``MinTRL = 1 + (1 - γ3·SR + (γ4 - 1)/4·SR²)·(Φ⁻¹(confidence) / (SR - SR*))²``.

    Returns
    -------
    float
        Periods (observations) of the same frequency as the Sharpe ratios; ``inf`` when the
        observed Sharpe ratio does not exceed the benchmark.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), was {confidence}")
    if observed_sharpe <= benchmark_sharpe:
        return math.inf
    factor = _sharpe_standard_error_factor(observed_sharpe, skewness, kurtosis)
    z = stats.norm.ppf(confidence)
    return float(1.0 + factor * (z / (observed_sharpe - benchmark_sharpe)) ** 2)


def return_moments(returns: pd.Series | np.ndarray | Sequence[float]) -> dict[str, float]:
    """Per-period Sharpe ratio, skewness and plain kurtosis of simple returns (NaN dropped).

    Returns
    -------
    dict[str, float]
        ``sharpe`` (``mean / std(ddof=1)``, per period; NaN when flat), ``skewness``,
        ``kurtosis`` (population moments; 3 for normal) and ``observations``.
    """
    values = np.asarray(returns, dtype=float)
    values = values[~np.isnan(values)]
    if values.size < 2:
        raise ValueError(f"need at least 2 returns, got {values.size}")
    std = float(np.std(values, ddof=1))
    flat = std == 0.0
    return {
        "sharpe": math.nan if flat else float(np.mean(values) / std),
        "skewness": 0.0 if flat else float(stats.skew(values, bias=True)),
        "kurtosis": 3.0 if flat else float(stats.kurtosis(values, fisher=False, bias=True)),
        "observations": float(values.size),
    }


@dataclass(frozen=True)
class PBOResult:
    """Outcome of CSCV over a (T, N) performance matrix.

    Attributes
    ----------
    pbo : float
        Share of combinations whose logit is <= 0: the in-sample best configuration ranked in the
        lower half out of sample.
    logits : np.ndarray
        λ per combination, shape (C(S, S/2),): ``ln(ω / (1 - ω))`` with ω the out-of-sample
        relative rank of the in-sample best, ``rank / (N + 1)`` (rank 1 = worst, N = best).
    is_best : np.ndarray
        Column index of the in-sample best configuration per combination.
    is_performance, oos_performance : np.ndarray
        The chosen configuration's statistic in and out of sample, per combination (the paper's
        performance degradation pairs).
    probability_of_loss : float
        Share of combinations whose chosen configuration's out-of-sample statistic is < 0.
    n_splits : int
        S, the number of row blocks.
    metric : str
        ``"sharpe"`` or ``"mean"``: the statistic ranked (per period, not annualised).
    """

    pbo: float
    logits: np.ndarray
    is_best: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    probability_of_loss: float
    n_splits: int
    metric: str

    @property
    def n_combinations(self) -> int:
        """C(S, S/2): the number of in-sample/out-of-sample splits evaluated."""
        return int(self.logits.size)


def _block_statistic(
    sums: np.ndarray,
    squares: np.ndarray,
    counts: np.ndarray,
    shift: np.ndarray,
    metric: str,
) -> np.ndarray:
    """Statistic per (combination, configuration) from summed block moments of shifted values.

    ``sums``/``squares`` are (C, N) sums of ``x - shift`` and its square, ``counts`` (C, 1),
    ``shift`` (N,). Shifting by a value of each column keeps ``squares - n*mean^2`` free of
    cancellation, so a column that never moves has variance exactly 0; its Sharpe ratio is NaN
    and ranks below every finite value.
    """
    shifted_mean = sums / counts
    mean = shifted_mean + shift
    if metric == "mean":
        return mean
    variance = (squares - counts * shifted_mean**2) / (counts - 1)
    flat = variance <= 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flat, np.nan, mean / np.sqrt(np.where(flat, 1.0, variance)))


def probability_of_backtest_overfitting(
    performance_matrix: pd.DataFrame | np.ndarray,
    n_splits: int = 16,
    metric: Literal["sharpe", "mean"] = "sharpe",
) -> PBOResult:
    """Probability of backtest overfitting by combinatorially symmetric cross-validation.

    The T rows (periods) are cut into ``n_splits`` contiguous blocks of near-equal size
    (``np.array_split``: every row is used; sizes differ by at most one). For each of the
    C(S, S/2) ways to pick half the blocks as in-sample (the rest out of sample), the
    configuration with the best in-sample statistic is found and its out-of-sample rank among
    all N configurations becomes a logit λ; PBO is the share of λ <= 0.

    Parameters
    ----------
    performance_matrix : pd.DataFrame | np.ndarray
        Shape (T, N): per-period returns (or any per-period performance) of N configurations on
        the same T periods. No NaN; N >= 2.
    n_splits : int, default 16
        S: even, >= 2 and <= T (T >= 4 when S = 2, so each half has two rows).
        C(16, 8) = 12,870 combinations.
    metric : {"sharpe", "mean"}
        Statistic ranked in and out of sample: per-period Sharpe ratio (``mean / std(ddof=1)``)
        or mean.

    Returns
    -------
    PBOResult
    """
    matrix = np.asarray(performance_matrix, dtype=float)
    if matrix.ndim != 2:
        raise ValueError(
            f"performance_matrix must be 2-D (T periods, N configs), has shape {matrix.shape}"
        )
    n_periods, n_configs = matrix.shape
    if n_configs < 2:
        raise ValueError(f"performance_matrix needs >= 2 configurations (columns), has {n_configs}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be even and >= 2, was {n_splits}")
    # Every block needs a row, and every half (S/2 blocks) two rows for a sample deviation.
    if n_periods < max(n_splits, 4 if n_splits == 2 else 0):
        raise ValueError(
            f"performance_matrix has {n_periods} rows: too few for n_splits={n_splits} "
            f"(need >= {max(n_splits, 4 if n_splits == 2 else 0)}: a row per block and two per "
            "half)"
        )
    if metric not in ("sharpe", "mean"):
        raise ValueError(f"metric must be 'sharpe' or 'mean', was {metric!r}")
    bad = np.argwhere(~np.isfinite(matrix))
    if bad.size:
        row, column = bad[0]
        raise ValueError(
            f"performance_matrix has {len(bad)} non-finite value(s); first at row {row}, "
            f"column {column}"
        )

    shift = matrix[0].copy()
    shifted = matrix - shift
    blocks = np.array_split(np.arange(n_periods), n_splits)
    block_sums = np.stack([shifted[rows].sum(axis=0) for rows in blocks])  # (S, N)
    block_squares = np.stack([(shifted[rows] ** 2).sum(axis=0) for rows in blocks])
    block_counts = np.array([rows.size for rows in blocks], dtype=float)  # (S,)

    chosen = np.zeros((math.comb(n_splits, n_splits // 2), n_splits))
    for row, combination in enumerate(itertools.combinations(range(n_splits), n_splits // 2)):
        chosen[row, list(combination)] = 1.0
    rest = 1.0 - chosen

    def statistic(selection: np.ndarray) -> np.ndarray:
        return _block_statistic(
            selection @ block_sums,
            selection @ block_squares,
            (selection @ block_counts)[:, None],
            shift,
            metric,
        )

    in_sample = statistic(chosen)  # (C, N)
    out_of_sample = statistic(rest)
    ranked_in = np.where(np.isnan(in_sample), -np.inf, in_sample)
    ranked_out = np.where(np.isnan(out_of_sample), -np.inf, out_of_sample)
    is_best = np.argmax(ranked_in, axis=1)
    rows = np.arange(is_best.size)
    # Rank 1 = worst .. N = best; ties share their average rank.
    chosen_score = ranked_out[rows, is_best][:, None]
    below = np.sum(ranked_out < chosen_score, axis=1)
    tied = np.sum(ranked_out == chosen_score, axis=1)
    ranks = below + (tied + 1) / 2.0
    relative = ranks / (n_configs + 1.0)
    logits = np.log(relative / (1.0 - relative))
    chosen_out = out_of_sample[rows, is_best]
    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        is_best=is_best,
        is_performance=in_sample[rows, is_best],
        oos_performance=chosen_out,
        probability_of_loss=float(np.mean(np.nan_to_num(chosen_out, nan=0.0) < 0.0)),
        n_splits=n_splits,
        metric=metric,
    )


def result_credibility(
    returns: pd.Series | np.ndarray | Sequence[float],
    n_trials: int,
    trial_sharpes: Sequence[float] | np.ndarray | None = None,
    performance_matrix: pd.DataFrame | np.ndarray | None = None,
    periods_per_year: int = 252,
    n_splits: int = 16,
    confidence: float = 0.95,
) -> dict[str, float]:
    """DSR, PSR, MinTRL and (given a performance matrix) PBO of one chosen result, as a plain dict
    of floats ready to log as metrics.

    Parameters
    ----------
    returns : array-like
        Simple period returns of the chosen result (e.g. daily out-of-sample returns); NaN dropped.
    n_trials : int
        Configurations tried to find it (>= 1), e.g. a sweep's number of trials.
    trial_sharpes : array-like, optional
        **Annualised** Sharpe ratios of the trials (what run summaries hold, with
        ``periods_per_year``); their variance, de-annualised, is the V of the expected maximum.
        Without them (or with fewer than 2) V is the sampling variance of a Sharpe ratio of zero
        measured on T returns, ``1 / (T - 1)``: every trial treated as pure noise of this length.
    performance_matrix : array-like (T, N), optional
        Per-period returns of the N trials for :func:`probability_of_backtest_overfitting`.
    periods_per_year : int, default 252
        Frequency of ``returns`` (and the annualisation of ``trial_sharpes`` and the reported
        ``sharpe``).
    n_splits : int, default 16
        CSCV blocks for the PBO.
    confidence : float, default 0.95
        For the minimum track record lengths.

    Returns
    -------
    dict[str, float]
        ``sharpe`` (annualised), ``sharpe_per_period``, ``skewness``, ``kurtosis``,
        ``observations``, ``n_trials``, ``trial_sharpe_variance`` (per period),
        ``expected_max_sharpe`` (annualised SR₀), ``psr`` (against 0), ``dsr``,
        ``min_track_record_length`` (periods to beat 0 at ``confidence``),
        ``min_track_record_length_deflated`` (periods to beat SR₀), and with a matrix
        ``pbo``, ``pbo_probability_of_loss``, ``pbo_combinations``. NaN where a figure does not
        exist (a flat return series has no Sharpe ratio).
    """
    if n_trials < 1:
        raise ValueError(f"n_trials must be >= 1, was {n_trials}")
    if periods_per_year <= 0:
        raise ValueError(f"periods_per_year must be positive, was {periods_per_year}")
    moments = return_moments(returns)
    observations = int(moments["observations"])
    scale = math.sqrt(periods_per_year)
    trials = None if trial_sharpes is None else np.asarray(trial_sharpes, dtype=float)
    if trials is not None and np.isnan(trials).any():
        raise ValueError(f"trial_sharpes has NaN at positions {np.flatnonzero(np.isnan(trials))}")
    if trials is not None and trials.size >= 2:
        variance = float(np.var(trials / scale, ddof=1))
    else:
        variance = 1.0 / (observations - 1)
    benchmark = expected_maximum_sharpe(n_trials, variance)
    sharpe = moments["sharpe"]
    report = {
        "sharpe": sharpe * scale,
        "sharpe_per_period": sharpe,
        "skewness": moments["skewness"],
        "kurtosis": moments["kurtosis"],
        "observations": float(observations),
        "n_trials": float(n_trials),
        "trial_sharpe_variance": variance,
        "expected_max_sharpe": benchmark * scale,
        "psr": math.nan,
        "dsr": math.nan,
        "min_track_record_length": math.nan,
        "min_track_record_length_deflated": math.nan,
    }
    if not math.isnan(sharpe):
        skewness, kurtosis = moments["skewness"], moments["kurtosis"]
        report["psr"] = probabilistic_sharpe_ratio(sharpe, 0.0, observations, skewness, kurtosis)
        report["dsr"] = probabilistic_sharpe_ratio(
            sharpe, benchmark, observations, skewness, kurtosis
        )
        report["min_track_record_length"] = min_track_record_length(
            sharpe, 0.0, skewness, kurtosis, confidence
        )
        report["min_track_record_length_deflated"] = min_track_record_length(
            sharpe, benchmark, skewness, kurtosis, confidence
        )
    if performance_matrix is not None:
        pbo = probability_of_backtest_overfitting(performance_matrix, n_splits=n_splits)
        report["pbo"] = pbo.pbo
        report["pbo_probability_of_loss"] = pbo.probability_of_loss
        report["pbo_combinations"] = float(pbo.n_combinations)
    return report
