"""The gate's shortcuts give the answers of the full computations.

- CVaR far from binding: a subadditive upper bound instead of the second exact evaluation
  (:data:`risk_engine.limits.FAST_PATH_MARGIN`). On a recorded stream of orders through a real
  gate, every CVaR check is answered both ways and must agree exactly (quantity, cap, value); the
  stream is sized so that both the shortcut and the full search (resizes and denials by CVaR)
  occur.
- HRP on an ndarray (the target actor's path, no DataFrame): the same weights, order and errors
  as from a DataFrame.
"""

import json

import numpy as np
import pandas as pd
import pytest
from risk_kit import OFF
from risk_kit import RiskHarness

import risk_engine.limits as limits_module
from grodt.core.errors import GrodtError
from risk_engine.hrp import HierarchicalRiskParity
from risk_engine.limits import LimitSet

SYMBOLS = ("AAA", "BBB", "CCC")


def _scenarios() -> np.ndarray:
    returns = np.random.default_rng(7).standard_t(3, size=(120, 3)) * 0.01
    returns[:, 1] = -0.5 * returns[:, 0] + 0.5 * returns[:, 1]  # BBB partly hedges AAA
    return returns


def test_cvar_shortcut_answers_as_the_full_computation(monkeypatch):
    full_cvar = LimitSet.__dict__["_cvar"].__func__
    answers = {"shortcut": 0, "full": 0, "binding": 0}

    def both_ways(snapshot, intent, scenarios, equity, ceiling, fee_per_unit):
        monkeypatch.setattr(limits_module, "FAST_PATH_MARGIN", 1e-6)
        fast = full_cvar(snapshot, intent, scenarios, equity, ceiling, fee_per_unit)
        monkeypatch.setattr(limits_module, "FAST_PATH_MARGIN", float("inf"))
        slow = full_cvar(snapshot, intent, scenarios, equity, ceiling, fee_per_unit)
        monkeypatch.setattr(limits_module, "FAST_PATH_MARGIN", 1e-6)
        assert (fast.name, fast.max_quantity, fast.cap, fast.value) == (
            slow.name,
            slow.max_quantity,
            slow.cap,
            slow.value,
        )
        column = scenarios.columns[intent.instrument_id]
        alone = scenarios.unit_long[column] if intent.side > 0 else scenarios.unit_short[column]
        risk_now = fast.value * equity
        bound = risk_now + ceiling * intent.unit_value * float(alone)
        shortcut = bound + 1e-6 * equity <= scenarios.limit * (equity - fee_per_unit * ceiling)
        answers["shortcut" if shortcut else "full"] += 1
        answers["binding"] += fast.max_quantity < intent.quantity
        return fast

    monkeypatch.setattr(LimitSet, "_cvar", staticmethod(both_ways))
    harness = RiskHarness(symbols=SYMBOLS, strategies=3, account_type="MARGIN")
    try:
        harness.install(
            {
                "limits": {
                    **OFF,
                    "max_weight": 0.6,
                    "cvar": {"limit": 0.02, "window": 100, "min_observations": 50},
                },
                "hrp": {"tolerance": None, "window": 100, "min_history": 50},
            },
        )
        harness.publish_targets({s: 1 / 3 for s in SYMBOLS}, returns=_scenarios())
        rng = np.random.default_rng(3)
        for k in range(160):
            symbol = SYMBOLS[int(rng.integers(3))]
            side = "BUY" if rng.random() < 0.6 else "SELL"
            quantity = int(rng.integers(1, 40)) * 25
            if k % 7 == 6:
                harness.limit(symbol, side, quantity, 90.0 if side == "BUY" else 110.0, k % 3)
            else:
                harness.market(symbol, side, quantity, k % 3)
            if k % 4 == 3:
                harness.step()
    finally:
        harness.dispose()
    # Both paths ran, and CVaR bound some orders (the full search below the cap).
    assert answers["shortcut"] >= 20, answers
    assert answers["full"] >= 10, answers
    assert answers["binding"] >= 3, answers


def _returns() -> np.ndarray:
    returns = np.random.default_rng(11).normal(0.0, 0.01, size=(150, 4))
    returns[:40, 3] = np.nan  # a late starter: pairwise statistics
    returns[:, 2] += 0.5 * returns[:, 0]
    return returns


def test_hrp_on_an_array_equals_the_dataframe_path():
    returns = _returns()
    names = ["SPX.SAMPLE", "IXIC.SAMPLE", "AAPL.SAMPLE", "LATE.SAMPLE"]
    from_frame = HierarchicalRiskParity(min_periods=60).fit(pd.DataFrame(returns, columns=names))
    from_array = HierarchicalRiskParity(min_periods=60).fit(returns, names)
    assert from_array.assets_ == from_frame.assets_ == names
    assert np.array_equal(from_array.weights_, from_frame.weights_)  # bit for bit
    assert from_array.order_ == from_frame.order_
    assert np.array_equal(from_array.linkage_, from_frame.linkage_)
    unnamed = HierarchicalRiskParity(min_periods=60).fit(returns)
    assert unnamed.assets_ == ["0", "1", "2", "3"]
    assert np.array_equal(unnamed.weights_, from_frame.weights_)


@pytest.mark.parametrize(
    "returns",
    [
        _returns()[:, :0],
        np.where(np.arange(4) == 1, np.inf, _returns()),
        _returns()[:70],  # the late starter has 30 < 60 returns
        np.column_stack([_returns()[:, :2], np.full(150, 0.0)]),  # constant price
    ],
    ids=["no-assets", "infinite", "too-few", "zero-variance"],
)
def test_hrp_array_path_fails_as_the_dataframe_path(returns):
    names = [f"I{k}" for k in range(returns.shape[1])]
    with pytest.raises(GrodtError) as from_frame:
        HierarchicalRiskParity(min_periods=60).fit(pd.DataFrame(returns, columns=names))
    with pytest.raises(GrodtError) as from_array:
        HierarchicalRiskParity(min_periods=60).fit(returns, names)
    assert str(from_array.value) == str(from_frame.value)


@pytest.mark.parametrize("high_water", [1_000_123.25, float("nan"), float("inf")])
def test_loss_marks_read_back_as_written(high_water):
    from risk_engine.gate import _encode_marks

    state = {
        "high_water": high_water,
        "day_start_equity": None,
        "last_equity": 999_999.5,
        "next_boundary_ns": 1_700_000_000_000_000_000,
    }
    back = json.loads(_encode_marks(state).decode())
    assert back.keys() == state.keys()
    for key, value in state.items():
        assert back[key] == value or (value != value and back[key] != back[key])
