"""The meta-controller's cheaper per-bar path gives the same floats bit for bit as the plain numpy
it replaced: the rolling window against ``deque`` + ``np.vstack``, ``return_correlation``
against ``np.corrcoef`` (NaN to 0, diagonal 1), the features against their straightforward
formulation. Random windows, flat, NaN and infinite columns included; bytes compared, not
approximations (the allocation records, and so replay and parity, depend on these bits)."""

from collections import deque

import numpy as np
import pytest

from models.meta.features import context_features
from models.meta.features import performance_features
from models.meta.features import return_correlation
from models.meta.window import RollingWindow


def _windows(seed: int, count: int) -> list[np.ndarray]:
    """Random (n_bars, n) return windows, some with flat, NaN, infinite or tiny columns."""
    rng = np.random.default_rng(seed)
    windows = []
    for trial in range(count):
        n_bars, n = int(rng.integers(2, 90)), int(rng.integers(1, 9))
        returns = rng.normal(0.0, 0.01, (n_bars, n)) * (rng.random((n_bars, n)) < rng.random())
        if trial % 5 == 0:
            returns[:, 0] = 0.0
        if trial % 7 == 0:
            returns[rng.integers(n_bars), -1] = np.nan
        if trial % 11 == 0:
            returns[rng.integers(n_bars), 0] = np.inf
        if trial % 3 == 0:
            returns *= 1e-7
        windows.append(returns)
    return windows


def test_rolling_window_holds_what_a_deque_of_rows_stacks():
    rng = np.random.default_rng(0)
    window, rows = RollingWindow(7, 3), deque(maxlen=7)
    closes, scalars = RollingWindow(4), deque(maxlen=4)
    for step in range(40):
        row = rng.normal(size=3)
        window.append(row)
        rows.append(row.copy())
        row[:] = np.nan  # the window copied the row: reusing it changes nothing
        close = float(rng.normal())
        closes.append(close)
        scalars.append(close)
        assert len(window) == len(rows)
        assert window.view().tobytes() == np.vstack(rows).tobytes()
        assert window.view().shape == (len(rows), 3)
        assert closes.view().tobytes() == np.asarray(scalars).tobytes()
        if step == 20:
            window.clear()
            rows.clear()
            assert len(window) == 0
            assert window.view().shape == (0, 3)
    with pytest.raises(ValueError, match="read-only"):
        window.view()[0, 0] = 1.0
    with pytest.raises(ValueError, match="capacity"):
        RollingWindow(0)


def test_return_correlation_is_corrcoef_bit_for_bit():
    for returns in _windows(1, 1_500):
        n = returns.shape[1]
        with np.errstate(divide="ignore", invalid="ignore"):
            expected = np.corrcoef(returns.T) if n > 1 else np.ones((1, 1))
        expected = np.nan_to_num(np.atleast_2d(expected), nan=0.0)
        np.fill_diagonal(expected, 1.0)
        assert return_correlation(returns).tobytes() == expected.tobytes()
    with pytest.raises(ValueError, match="n_bars >= 2"):
        return_correlation(np.zeros((1, 3)))


def test_features_are_their_plain_numpy_formulation_bit_for_bit():
    for returns in _windows(2, 600):
        turnover = np.abs(returns[::-1]) * 3.0
        with np.errstate(all="ignore"):  # the NaN and infinite windows
            growth = np.cumprod(1.0 + returns, axis=0)
            mean = returns.mean(axis=0)
            std = returns.std(axis=0, ddof=1)
            sharpe = np.divide(mean, std, out=np.zeros_like(mean), where=std > 1e-12)
            wins, active = (returns > 0.0).sum(axis=0), (np.abs(returns) > 0.0).sum(axis=0)
            hit_rate = np.divide(wins, active, out=np.full_like(mean, 0.5), where=active > 0)
            peak = np.maximum.accumulate(np.maximum(growth, 1.0), axis=0)
            drawdown = np.minimum((growth / peak - 1.0).min(axis=0), 0.0)
            expected = np.column_stack(
                [
                    growth[-1] - 1.0,
                    sharpe,
                    hit_rate,
                    drawdown,
                    std,
                    turnover.mean(axis=0),
                    returns[-1],
                ]
            )
            assert performance_features(returns, turnover).tobytes() == expected.tobytes()
            closes = 100.0 * np.cumprod(1.0 + np.nan_to_num(returns[:, 0], posinf=0.0))
            if closes.size < 3:
                continue
            volatility = float(np.diff(np.log(closes)).std(ddof=1))
            out = context_features((0.2, 0.3, 0.5), closes, month=7, weekday=1)
        assert out[3].hex() == volatility.hex()
