"""HRP: the textbook implementation against an independent one (the paper's own scipy/pandas code
path), riskfolio-lib HRP/HERC, late starters, and ``grodt risk hrp``."""

import json
import warnings

import numpy as np
import pandas as pd
import pytest
import riskfolio as rp
import scipy.cluster.hierarchy as sch
from click.testing import CliRunner
from skfolio.datasets import load_sp500_dataset

from grodt.cli import main
from grodt.core.errors import GrodtError
from risk_engine.hrp import HierarchicalRiskParity
from risk_engine.hrp import pairwise_correlation
from risk_engine.hrp import pairwise_covariance
from risk_engine.hrp import returns_from_prices

# -- independent reference: López de Prado (2016), the paper's listing, pandas + scipy ----------


def _quasi_diag(link: np.ndarray) -> list[int]:
    link = link.astype(int)
    sort_ix = pd.Series([link[-1, 0], link[-1, 1]])
    num_items = link[-1, 3]
    while sort_ix.max() >= num_items:
        sort_ix.index = range(0, sort_ix.shape[0] * 2, 2)
        df0 = sort_ix[sort_ix >= num_items]
        i = df0.index
        j = df0.values - num_items
        sort_ix[i] = link[j, 0]
        df0 = pd.Series(link[j, 1], index=i + 1)
        sort_ix = pd.concat([sort_ix, df0]).sort_index()
        sort_ix.index = range(sort_ix.shape[0])
    return sort_ix.tolist()


def _cluster_var(cov: pd.DataFrame, items: list) -> float:
    sub = cov.loc[items, items]
    ivp = 1.0 / np.diag(sub)
    ivp /= ivp.sum()
    w = ivp.reshape(-1, 1)
    return float((w.T @ sub.to_numpy() @ w)[0, 0])


def _rec_bipart(cov: pd.DataFrame, sort_ix: list) -> pd.Series:
    w = pd.Series(1.0, index=sort_ix)
    items = [sort_ix]
    while len(items) > 0:
        items = [
            i[j:k]
            for i in items
            for j, k in ((0, len(i) // 2), (len(i) // 2, len(i)))
            if len(i) > 1
        ]
        for i in range(0, len(items), 2):
            c0, c1 = items[i], items[i + 1]
            v0, v1 = _cluster_var(cov, c0), _cluster_var(cov, c1)
            alpha = 1 - v0 / (v0 + v1)
            w[c0] *= alpha
            w[c1] *= 1 - alpha
    return w


def reference_hrp(returns: pd.DataFrame) -> pd.Series:
    """The paper's code: pandas pairwise cov/corr, d = sqrt((1 − ρ)/2), scipy single linkage on
    the rows of d (which is the paper's d̃, the Euclidean distance between columns of D)."""
    cov, corr = returns.cov(), returns.corr()
    dist = ((1 - corr) / 2.0) ** 0.5
    with warnings.catch_warnings():
        # scipy warns that a square matrix looks like distances: the paper means observations.
        warnings.simplefilter("ignore", sch.ClusterWarning)
        link = sch.linkage(dist.to_numpy(), "single")
    sort_ix = corr.index[_quasi_diag(link)].tolist()
    return _rec_bipart(cov, sort_ix).reindex(returns.columns)


@pytest.fixture(scope="module")
def sp500_prices() -> pd.DataFrame:
    return load_sp500_dataset()


def _random_returns(seed: int, periods: int = 400, assets: int = 12) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    factors = rng.normal(0.0, 0.01, size=(periods, 3))
    loadings = rng.normal(0.0, 1.0, size=(3, assets))
    noise = rng.normal(0.0, 0.01, size=(periods, assets)) * rng.uniform(0.5, 2.0, size=assets)
    return pd.DataFrame(factors @ loadings + noise, columns=[f"A{k}" for k in range(assets)])


@pytest.mark.parametrize("seed", range(8))
def test_textbook_matches_the_papers_code_path(seed):
    returns = _random_returns(seed, assets=5 + seed * 3)
    if seed % 2:  # late starters: leading NaN in two columns
        returns.iloc[: 50 + 10 * seed, 1] = np.nan
        returns.iloc[:120, -1] = np.nan
    mine = HierarchicalRiskParity(method="textbook").fit(returns).weights_series()
    reference = reference_hrp(returns)
    np.testing.assert_allclose(mine.to_numpy(), reference.to_numpy(), rtol=0, atol=1e-6)
    assert mine.sum() == pytest.approx(1.0, abs=1e-12)


def test_textbook_matches_on_the_real_20_stock_sample(sp500_prices):
    returns = returns_from_prices(sp500_prices.iloc[-1500:])
    returns.iloc[:300, 3] = np.nan  # make one a late starter
    estimator = HierarchicalRiskParity(method="textbook").fit(returns)
    np.testing.assert_allclose(
        estimator.weights_,
        reference_hrp(returns).to_numpy(),
        rtol=0,
        atol=1e-6,
    )
    assert sorted(estimator.order_) == list(range(20))


def test_pairwise_statistics_equal_pandas():
    returns = _random_returns(3, assets=6)
    returns.iloc[:77, 2] = np.nan
    returns.iloc[200:210, 4] = np.nan  # a gap, not only a late start
    np.testing.assert_allclose(pairwise_covariance(returns.to_numpy()), returns.cov(), atol=1e-15)
    np.testing.assert_allclose(pairwise_correlation(returns.to_numpy()), returns.corr(), atol=1e-12)


@pytest.mark.parametrize(
    ("method", "codependence", "linkage", "risk_measure"),
    [
        ("hrp", "pearson", "single", "MV"),
        ("hrp", "spearman", "ward", "MV"),
        ("herc", "pearson", "ward", "MV"),
        ("hrp", "pearson", "average", "CVaR"),
    ],
)
def test_riskfolio_modes_equal_riskfolio(method, codependence, linkage, risk_measure):
    returns = _random_returns(11, assets=8)
    mine = HierarchicalRiskParity(
        method=method,
        codependence=codependence,
        linkage=linkage,
        risk_measure=risk_measure,
    ).fit(returns)
    portfolio = rp.HCPortfolio(returns=returns)
    expected = portfolio.optimization(
        model=method.upper(),
        codependence=codependence,
        rm=risk_measure,
        linkage=linkage,
        leaf_order=True,
    )
    np.testing.assert_allclose(mine.weights_, expected["weights"].to_numpy(), atol=1e-8)
    assert (mine.weights_ > 0).all()


def test_riskfolio_hrp_handles_late_starters():
    returns = _random_returns(5, assets=6)
    returns.iloc[:150, 0] = np.nan
    weights = HierarchicalRiskParity(method="hrp").fit(returns).weights_
    assert np.isfinite(weights).all() and weights.sum() == pytest.approx(1.0)
    herc = HierarchicalRiskParity(method="herc", risk_measure="CVaR").fit(returns).weights_
    assert np.isfinite(herc).all() and herc.sum() == pytest.approx(1.0)


def test_too_little_history_is_a_clear_error():
    returns = _random_returns(1, assets=4)
    returns.iloc[:-5, 2] = np.nan
    with pytest.raises(GrodtError, match="A2"):
        HierarchicalRiskParity(method="textbook", min_periods=20).fit(returns)


# -- grodt risk hrp ------------------------------------------------------------------------------


@pytest.fixture
def prices_csv(tmp_path, sp500_prices):
    prices = sp500_prices.iloc[-800:, :8].copy()
    prices.iloc[:200, 5] = np.nan  # a late starter
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    return path, prices


def test_cli_hrp_json_is_the_textbook_weights(prices_csv):
    path, prices = prices_csv
    result = CliRunner().invoke(main, ["risk", "hrp", "--prices", str(path), "--json"])
    assert result.exit_code == 0, result.output
    weights = json.loads(result.output)
    assert list(weights) == list(prices.columns)
    expected = reference_hrp(prices.pct_change(fill_method=None).iloc[1:])
    np.testing.assert_allclose(list(weights.values()), expected.to_numpy(), atol=1e-6)


def test_cli_hrp_table_and_riskfolio_methods(prices_csv):
    path, prices = prices_csv
    result = CliRunner().invoke(main, ["risk", "hrp", "--prices", str(path)])
    assert result.exit_code == 0, result.output
    assert "late starters (pairwise statistics): " + prices.columns[5] in result.output
    for method in ("hrp", "herc"):
        result = CliRunner().invoke(
            main,
            ["risk", "hrp", "--prices", str(path), "--method", method, "--linkage", "ward"],
        )
        assert result.exit_code == 0, result.output
        assert f"{method} weights from 799 simple returns" in result.output


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("abc", "row 3, column 'BBB': 'abc' is not a number"),
        ("-5", "row 3, column 'BBB': price -5.0 is not positive"),
    ],
)
def test_cli_hrp_bad_cells_name_row_and_column(tmp_path, cell, message):
    rng = np.random.default_rng(0)
    prices = pd.DataFrame(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, size=(60, 3)), axis=0)),
        index=pd.date_range("2024-01-01", periods=60),
        columns=["AAA", "BBB", "CCC"],
    ).round(4)
    text = prices.astype(str)
    text.iloc[2, 1] = cell
    path = tmp_path / "bad.csv"
    text.to_csv(path)
    result = CliRunner().invoke(main, ["risk", "hrp", "--prices", str(path)])
    assert result.exit_code == 2
    assert f"error: {path}, {message}" in result.output


def test_cli_hrp_rejects_textbook_with_other_linkage(prices_csv):
    path, _ = prices_csv
    result = CliRunner().invoke(
        main,
        ["risk", "hrp", "--prices", str(path), "--linkage", "ward"],
    )
    assert result.exit_code == 2
    assert "--method textbook is pearson / single linkage" in result.output
