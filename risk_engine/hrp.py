"""Hierarchical Risk Parity target weights.

Two implementations behind one estimator, :class:`HierarchicalRiskParity`:

``textbook``
    López de Prado, M. (2016), "Building Diversified Portfolios that Outperform Out of Sample",
    Journal of Portfolio Management 42(4), exactly as published:

    1. correlation distance ``d_ij = sqrt((1 − ρ_ij) / 2)``;
    2. the Euclidean distance between the columns of ``D``,
       ``d̃_ij = sqrt(Σ_n (d_ni − d_nj)²)`` (the paper's step (ii); clustering runs on ``d̃``);
    3. single-linkage agglomerative clustering;
    4. quasi-diagonalisation: the leaves of the tree in the order the merges list them;
    5. recursive bisection of that ordered list at its midpoint, splitting weight between the two
       halves by ``α = 1 − V₀ / (V₀ + V₁)``, where ``V`` is the variance of a half's
       inverse-variance portfolio.

    Implemented here in numpy without scipy (single linkage via Prim's minimum spanning tree),
    so the test can check it against the paper's own scipy/pandas code path.

``hrp`` / ``herc``
    riskfolio-lib's ``HCPortfolio`` with the codependence, linkage and risk measure from config.

Late starters: a column with leading NaN (an asset that starts trading later) is handled by
pairwise statistics — each covariance/correlation entry uses the periods where both assets have
returns (pandas' ``DataFrame.cov``/``corr`` convention). riskfolio's non-variance risk measures
need complete return rows; for those the missing returns count as 0.

Shapes: ``returns`` is (n_periods, n_assets); weights are (n_assets,), non-negative, summing to 1.
"""

from collections.abc import Sequence
from typing import Self

import numpy as np
import pandas as pd

from grodt.core.errors import GrodtError

_VARIANCE_MEASURES = frozenset({"MV", "vol", "equal"})
_PAIRWISE_CODEPENDENCE = frozenset(
    {"pearson", "spearman", "kendall", "abs_pearson", "abs_spearman", "abs_kendall"},
)


# -- pairwise statistics ----------------------------------------------------------------------


def pairwise_covariance(returns: np.ndarray, min_periods: int = 2) -> np.ndarray:
    """Sample covariance from pairwise-complete observations (ddof 1).

    Parameters
    ----------
    returns : np.ndarray
        (n_periods, n_assets); NaN marks a missing return.
    min_periods : int
        Pairs with fewer common periods get NaN.

    Returns
    -------
    np.ndarray
        (n_assets, n_assets), equal to ``pd.DataFrame(returns).cov()``.
    """
    x = np.asarray(returns, dtype=float)
    present = ~np.isnan(x)
    m = present.astype(float)
    x0 = np.where(present, x, 0.0)
    n = m.T @ m  # common periods per pair
    sum_i_given_j = x0.T @ m  # [i, j] = Σ x_i over periods where j is present
    cross = x0.T @ x0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = (cross - sum_i_given_j * sum_i_given_j.T / n) / (n - 1.0)
    cov[n < max(min_periods, 2)] = np.nan
    return cov


def pairwise_correlation(returns: np.ndarray, min_periods: int = 2) -> np.ndarray:
    """Pearson correlation from pairwise-complete observations.

    Each entry uses the means and standard deviations of the periods both assets share, like
    ``pd.DataFrame(returns).corr()``. Shape (n_assets, n_assets), unit diagonal.
    """
    x = np.asarray(returns, dtype=float)
    present = ~np.isnan(x)
    m = present.astype(float)
    x0 = np.where(present, x, 0.0)
    n = m.T @ m
    s_i = x0.T @ m  # Σ x_i on the pair's common periods
    s_ii = (x0 * x0).T @ m  # Σ x_i² on the pair's common periods
    cross = x0.T @ x0
    with np.errstate(invalid="ignore", divide="ignore"):
        cov = cross - s_i * s_i.T / n
        var_i = s_ii - s_i * s_i / n
        corr = cov / np.sqrt(var_i * var_i.T)
    corr[n < max(min_periods, 2)] = np.nan
    np.fill_diagonal(corr, 1.0)
    return np.clip(corr, -1.0, 1.0)


def correlation_distance(corr: np.ndarray) -> np.ndarray:
    """López de Prado's distance ``sqrt((1 − ρ) / 2)`` in [0, 1]."""
    return np.sqrt(np.clip((1.0 - np.asarray(corr, dtype=float)) / 2.0, 0.0, 1.0))


def column_distance(distance: np.ndarray) -> np.ndarray:
    """The paper's ``d̃``: Euclidean distance between the columns of a distance matrix."""
    d = np.asarray(distance, dtype=float)
    squared = np.sum(d * d, axis=0)
    gram = d.T @ d
    return np.sqrt(np.clip(squared[:, None] + squared[None, :] - 2.0 * gram, 0.0, None))


# -- textbook HRP -----------------------------------------------------------------------------


def single_linkage(distance: np.ndarray) -> np.ndarray:
    """Single-linkage agglomerative clustering of a full distance matrix.

    Built from Prim's minimum spanning tree (single linkage merges along MST edges in order of
    length). Returns the linkage in scipy's format: (n − 1, 4) rows of
    ``[left id, right id, distance, size]``; leaves are 0..n−1, the cluster made by row k is
    ``n + k``, and each row lists the smaller id first.
    """
    d = np.asarray(distance, dtype=float)
    n = d.shape[0]
    if n < 2:
        return np.zeros((0, 4))
    in_tree = np.zeros(n, dtype=bool)
    best = np.full(n, np.inf)
    parent = np.full(n, -1)
    best[0] = 0.0
    edges: list[tuple[float, int, int]] = []
    for _ in range(n):
        candidates = np.where(in_tree, np.inf, best)
        node = int(np.argmin(candidates))
        in_tree[node] = True
        if parent[node] >= 0:
            edges.append((float(best[node]), int(parent[node]), node))
        closer = (~in_tree) & (d[node] < best)
        best[closer] = d[node][closer]
        parent[closer] = node
    edges.sort(key=lambda edge: edge[0])

    # Union-find over the MST edges, naming each merged cluster n + k.
    root = list(range(n))
    cluster_of = list(range(n))  # cluster id of each union-find root
    size = [1] * n

    def find(i: int) -> int:
        while root[i] != i:
            root[i] = root[root[i]]
            i = root[i]
        return i

    link = np.zeros((n - 1, 4))
    for k, (length, a, b) in enumerate(edges):
        ra, rb = find(a), find(b)
        ca, cb = cluster_of[ra], cluster_of[rb]
        merged_size = size[ra] + size[rb]
        link[k] = (min(ca, cb), max(ca, cb), length, merged_size)
        root[rb] = ra
        size[ra] = merged_size
        cluster_of[ra] = n + k
    return link


def quasi_diagonal_order(link: np.ndarray) -> list[int]:
    """Leaves in tree order (left child first), the paper's quasi-diagonalisation."""
    n = link.shape[0] + 1
    order: list[int] = []
    stack = [2 * n - 2]
    while stack:
        node = stack.pop()
        if node < n:
            order.append(node)
            continue
        left, right = link[node - n, 0], link[node - n, 1]
        stack.append(int(right))
        stack.append(int(left))
    return order


def _inverse_variance_variance(cov: np.ndarray, items: Sequence[int]) -> float:
    sub = cov[np.ix_(items, items)]
    ivp = 1.0 / np.diag(sub)
    ivp = ivp / ivp.sum()
    return float(ivp @ sub @ ivp)


def recursive_bisection(cov: np.ndarray, order: Sequence[int]) -> np.ndarray:
    """Split weight down the ordered list, halving at the midpoint; inverse-variance clusters."""
    weights = np.zeros(cov.shape[0])

    def allocate(items: Sequence[int], weight: float) -> None:
        if len(items) == 1:
            weights[items[0]] = weight
            return
        middle = len(items) // 2
        left, right = items[:middle], items[middle:]
        v_left = _inverse_variance_variance(cov, left)
        v_right = _inverse_variance_variance(cov, right)
        alpha = 1.0 - v_left / (v_left + v_right)
        allocate(left, weight * alpha)
        allocate(right, weight * (1.0 - alpha))

    allocate(list(order), 1.0)
    return weights


def textbook_hrp(
    cov: np.ndarray,
    corr: np.ndarray,
) -> tuple[np.ndarray, list[int], np.ndarray]:
    """López de Prado (2016) HRP from a covariance and a correlation matrix.

    Returns
    -------
    tuple[np.ndarray, list[int], np.ndarray]
        Weights (n_assets,), the quasi-diagonal order, and the linkage matrix.
    """
    link = single_linkage(column_distance(correlation_distance(corr)))
    order = quasi_diagonal_order(link)
    return recursive_bisection(np.asarray(cov, dtype=float), order), order, link


# -- estimator --------------------------------------------------------------------------------


class HierarchicalRiskParity:
    """Estimator of HRP/HERC target weights (fit on returns, read ``weights_``).

    Parameters
    ----------
    method : {"textbook", "hrp", "herc"}
        See the module docstring.
    codependence, linkage, risk_measure : str
        riskfolio-lib options (``hrp``/``herc``).
    max_k : int
        Maximum number of clusters for HERC.
    leaf_order : bool
        riskfolio-lib's optimal leaf ordering.
    min_periods : int
        Minimum returns an asset (and an asset pair) needs.

    Attributes
    ----------
    weights_ : np.ndarray
        (n_assets,) weights summing to 1, in the column order of the fitted returns.
    assets_ : list[str]
        Column names (``"0".."n-1"`` for an ndarray).
    order_ : list[int]
        Quasi-diagonal order of the assets (textbook), or riskfolio's asset order.
    """

    def __init__(
        self,
        method: str = "textbook",
        codependence: str = "pearson",
        linkage: str = "single",
        risk_measure: str = "MV",
        max_k: int = 10,
        leaf_order: bool = True,
        min_periods: int = 10,
    ) -> None:
        if method not in {"textbook", "hrp", "herc"}:
            raise ValueError(f"method must be textbook, hrp or herc, was {method!r}")
        self.method = method
        self.codependence = codependence
        self.linkage = linkage
        self.risk_measure = risk_measure
        self.max_k = max_k
        self.leaf_order = leaf_order
        self.min_periods = min_periods

    def fit(
        self,
        returns: pd.DataFrame | np.ndarray,
        assets: Sequence[str] | None = None,
    ) -> Self:
        """Fit on (n_periods, n_assets) returns; NaN marks a missing return.

        ``assets`` names the columns of an ndarray (default ``"0".."n-1"``). The textbook method
        on an ndarray runs in numpy alone (no DataFrame: a live node's gate refits on the engine
        thread), with the same arithmetic, so the same weights as from a DataFrame.
        """
        if self.method == "textbook" and not isinstance(returns, pd.DataFrame):
            return self._fit_textbook_array(returns, assets)
        frame = self._frame(returns)
        if assets is not None:
            frame.columns = [str(a) for a in assets]
        counts = frame.notna().sum()
        short = counts[counts < self.min_periods]
        if not short.empty:
            raise GrodtError(
                f"too few returns for {', '.join(map(str, short.index))} "
                f"({', '.join(map(str, short.tolist()))} < min_periods={self.min_periods})",
            )
        self.assets_ = [str(c) for c in frame.columns]
        if frame.shape[1] == 1:
            self.weights_ = np.ones(1)
            self.order_ = [0]
            return self
        if self.method == "textbook":
            values = frame.to_numpy(dtype=float)
            cov = pairwise_covariance(values, self.min_periods)
            corr = pairwise_correlation(values, self.min_periods)
            if np.isnan(cov).any() or np.isnan(corr).any():
                raise GrodtError(
                    f"some asset pairs share fewer than {self.min_periods} return periods",
                )
            if (np.diag(cov) <= 0.0).any():
                flat = [self.assets_[i] for i in np.flatnonzero(np.diag(cov) <= 0.0)]
                raise GrodtError(f"zero variance (constant price) for {', '.join(flat)}")
            self.weights_, self.order_, self.linkage_ = textbook_hrp(cov, corr)
            return self
        self.weights_, self.order_ = self._fit_riskfolio(frame)
        return self

    def _fit_textbook_array(self, returns: np.ndarray, assets: Sequence[str] | None) -> Self:
        """:meth:`fit`'s textbook path on an ndarray: the DataFrame path's checks and messages,
        in numpy."""
        values = np.asarray(returns, dtype=float)
        if values.ndim != 2:
            raise ValueError(f"returns must be 2-D (n_periods, n_assets), got {values.shape}")
        n_assets = values.shape[1]
        names = [str(a) for a in assets] if assets is not None else list(map(str, range(n_assets)))
        if len(names) != n_assets:
            raise ValueError(f"assets: {len(names)} names for {n_assets} columns")
        if n_assets == 0:
            raise GrodtError("no assets to allocate")
        if np.isinf(values).any():
            raise GrodtError("returns contain infinite values")
        counts = (~np.isnan(values)).sum(axis=0)
        short = np.flatnonzero(counts < self.min_periods)
        if short.size:
            raise GrodtError(
                f"too few returns for {', '.join(names[k] for k in short)} "
                f"({', '.join(str(int(counts[k])) for k in short)} < "
                f"min_periods={self.min_periods})",
            )
        self.assets_ = names
        if n_assets == 1:
            self.weights_ = np.ones(1)
            self.order_ = [0]
            return self
        cov = pairwise_covariance(values, self.min_periods)
        corr = pairwise_correlation(values, self.min_periods)
        if np.isnan(cov).any() or np.isnan(corr).any():
            raise GrodtError(
                f"some asset pairs share fewer than {self.min_periods} return periods",
            )
        if (np.diag(cov) <= 0.0).any():
            flat = [names[i] for i in np.flatnonzero(np.diag(cov) <= 0.0)]
            raise GrodtError(f"zero variance (constant price) for {', '.join(flat)}")
        self.weights_, self.order_, self.linkage_ = textbook_hrp(cov, corr)
        return self

    def predict(self, returns: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Portfolio returns (n_periods,) of the fitted weights (missing returns count as 0)."""
        values = self._frame(returns).to_numpy(dtype=float)
        return np.nan_to_num(values) @ self.weights_

    def weights_series(self) -> pd.Series:
        """The fitted weights keyed by asset name."""
        return pd.Series(self.weights_, index=self.assets_, name="weight")

    @staticmethod
    def _frame(returns: pd.DataFrame | np.ndarray) -> pd.DataFrame:
        if isinstance(returns, pd.DataFrame):
            frame = returns.astype(float)
        else:
            values = np.asarray(returns, dtype=float)
            if values.ndim != 2:
                raise ValueError(f"returns must be 2-D (n_periods, n_assets), got {values.shape}")
            frame = pd.DataFrame(values, columns=[str(i) for i in range(values.shape[1])])
        if frame.shape[1] == 0:
            raise GrodtError("no assets to allocate")
        if np.isinf(frame.to_numpy()).any():
            raise GrodtError("returns contain infinite values")
        return frame

    def _fit_riskfolio(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[int]]:
        import warnings

        import riskfolio as rp

        complete = not frame.isna().to_numpy().any()
        pairwise = self.risk_measure in _VARIANCE_MEASURES and (
            self.codependence in _PAIRWISE_CODEPENDENCE
        )
        data = frame if complete or pairwise else frame.fillna(0.0)
        cov = pd.DataFrame(
            pairwise_covariance(data.to_numpy(dtype=float), self.min_periods),
            index=data.columns,
            columns=data.columns,
        )
        portfolio = rp.HCPortfolio(returns=data)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            weights = portfolio.optimization(
                model=self.method.upper(),
                codependence=self.codependence,
                rm=self.risk_measure,
                linkage=self.linkage,
                max_k=self.max_k,
                leaf_order=self.leaf_order,
                method_cov="custom_cov",
                custom_cov=cov,
            )
        if weights is None:
            raise GrodtError(f"riskfolio-lib {self.method} found no solution")
        values = weights.reindex(data.columns).iloc[:, 0].to_numpy(dtype=float)
        if not np.isfinite(values).all():
            raise GrodtError(f"riskfolio-lib {self.method} returned non-finite weights")
        names = list(data.columns)
        order = [names.index(asset) for asset in portfolio.asset_order]
        return values / values.sum(), order


def returns_from_prices(prices: pd.DataFrame, kind: str = "simple") -> pd.DataFrame:
    """Returns of a wide price table, keeping NaN where a price (or the one before) is missing:
    a late starter's leading NaN stays NaN, never a fabricated 0."""
    prices = prices.astype(float)
    if kind == "log":
        return np.log(prices).diff().iloc[1:]
    return prices.pct_change(fill_method=None).iloc[1:]
