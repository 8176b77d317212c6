"""TradingEnv: fills, costs and equity by the engine's convention, the safety layer, windows."""

import math

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from models.rl.env import TradingEnv
from models.rl.episodes import fixed_windows
from models.rl.episodes import regime_window_weights
from models.rl.episodes import session_windows
from models.rl.fills import ExecutionModel
from models.rl.observation import ObservationSpec
from models.rl.rewards import RewardConfig
from models.rl.safety import RiskLimits

CLOSES = np.array([100.0, 110.0, 99.0, 121.0, 120.0])
OPENS = np.array([99.0, 105.0, 100.0, 118.0, 122.0])
SPEC = ObservationSpec(("x",))


def _env(**kwargs) -> TradingEnv:
    defaults = dict(
        features=np.arange(5, dtype=np.float64).reshape(5, 1),
        opens=OPENS,
        closes=CLOSES,
        windows=np.array([[0, 3]]),
        observation=SPEC,
        execution=ExecutionModel(fee_rate=0.001, account_type="margin"),
        initial_cash=10_000.0,
        record_fills=True,
    )
    defaults.update(kwargs)
    return TradingEnv(**defaults)


def _run(env: TradingEnv, actions, window=(0, 3)):
    env.reset(options={"window": window})
    steps = [env.step(np.array([a], dtype=np.float32)) for a in actions]
    return steps


def test_fills_at_the_close_with_venue_rounded_commissions():
    env = _env()
    steps = _run(env, [1.0, -0.5, 0.0])
    # bar 0: equity 10,000 -> 100 units at 100; commission 10,000 * 0.1% = 10.00
    # bar 1: equity -10 + 100*110 = 10,990; target -0.5 -> -floor(5,495/110) = -49: sell 149 at 110,
    #        commission 16.39; bar 2: buy 49 back at 99, commission 4.851 -> 4.85 (Money rounding)
    assert env.fills == [(0, 100.0, 100.0, 10.0), (1, -149.0, 110.0, 16.39), (2, 49.0, 99.0, 4.85)]
    equities = [info["equity"] for *_, info in steps]
    assert equities == pytest.approx([10_990.0, 16_363.61 - 49 * 99, 11_507.76], abs=1e-9)
    rewards = [reward for _, reward, *_ in steps]
    assert rewards[0] == pytest.approx(100 * (10_990.0 / 10_000.0 - 1))
    assert [s[3] for s in steps] == [False, False, True]  # truncated at the window's end
    assert not any(s[2] for s in steps)
    assert steps[1][4]["turnover"] == pytest.approx(149 * 110 / 10_990.0)


def test_next_open_fills_at_the_following_bar_open():
    env = _env(execution=ExecutionModel(fee_rate=0.0, fill_at="next_open", account_type="margin"))
    steps = _run(env, [1.0, 1.0, 0.0])
    # sized at bar 0's close (100 units of 10,000 / 100), filled at bar 1's open 105
    assert env.fills[0] == (1, 100.0, 105.0, 0.0)
    assert steps[0][4]["equity"] == pytest.approx(10_000 + 100 * (110 - 105))
    # bar 1: equity 10,500 at 110 -> 95 units: sell 5 at bar 2's open
    assert env.fills[1] == (2, -5.0, 100.0, 0.0)
    assert env.fills[2] == (3, -95.0, 118.0, 0.0)


def test_slippage_moves_the_fill_against_the_order():
    env = _env(execution=ExecutionModel(fee_rate=0.0, prob_slippage=1.0, tick_size=0.05))
    _run(env, [0.5, 0.0])
    assert [fill[2] for fill in env.fills] == [100.05, 109.95]


def test_a_cash_account_buys_only_what_its_cash_pays_for():
    env = _env(execution=ExecutionModel(fee_rate=0.01, account_type="cash"))
    _run(env, [1.0])
    # 10,000 * 0.999 / (100 * 1.01) = 98.9 -> 98 units (100 would overdraw the account)
    assert env.fills[0][1] == 98.0
    assert env.cash == pytest.approx(10_000 - 9_800 - 98.0)


def test_the_safety_layer_projects_targets_and_masks_discrete_actions():
    long_only = RiskLimits(max_weight=0.5, allow_short=False)
    env = _env(limits=long_only)
    steps = _run(env, [-1.0, 2.0])
    assert steps[0][4]["position"] == 0.0 and steps[0][4]["quantity"] == 0.0
    assert steps[1][4]["position"] == 1.0
    assert env.fills[0][1] == math.floor(0.5 * 10_000 / 110)  # +1 = max_weight of equity
    np.testing.assert_array_equal(long_only.action_mask(), [False, True, True])
    capped = RiskLimits(max_weight=0.5, gross_exposure=1.0)
    assert capped.bounds(other_gross=0.75) == (-0.5, 0.5)
    np.testing.assert_array_equal(capped.action_mask(other_gross=0.75), [False, True, False])
    discrete = _env(limits=long_only, action_kind="discrete")
    np.testing.assert_array_equal(discrete.action_masks(), [False, True, True])
    discrete.reset(options={"window": (0, 3)})
    assert discrete.step(0)[4]["position"] == 0.0  # a masked action is still projected
    assert discrete.step(2)[4]["position"] == 1.0


def test_observations_equal_the_observation_spec_and_carry_the_position():
    rng = np.random.default_rng(1)
    features = rng.normal(size=(5, 3))
    features[2, 1] = np.nan
    spec = ObservationSpec(("a", "b", "c")).fit(features[:3])
    env = _env(features=features, observation=spec)
    obs, _ = env.reset(options={"window": (0, 4)})
    np.testing.assert_array_equal(obs, spec.build(features[0], 0.0))
    for t, action in enumerate([0.3, -0.2, 0.9], start=1):
        obs, *_ = env.step(np.array([action], dtype=np.float32))
        np.testing.assert_array_equal(obs, spec.build(features[t], action))
        assert env.observation_space.contains(obs)


def test_windows_and_regime_weights():
    windows = fixed_windows(20, 5, segments=[(2, 11), (12, 19)])
    np.testing.assert_array_equal(windows, [[2, 7], [12, 17]])
    np.testing.assert_array_equal(fixed_windows(10, 3, stride=2)[:2], [[0, 3], [2, 5]])
    p = np.r_[np.zeros(12), np.ones(8)]
    np.testing.assert_allclose(regime_window_weights(p, windows), [0.0, 1.0])
    env = _env(
        features=np.zeros((20, 1)),
        opens=np.full(20, 10.0),
        closes=np.full(20, 10.0),
        windows=windows,
        weights=regime_window_weights(p, windows),
    )
    assert {env.reset(seed=s)[1]["window"] for s in range(10)} == {(12, 17)}
    ts = (
        np.array(["2024-01-02T14:31", "2024-01-02T20:59", "2024-01-03T14:31", "2024-01-03T15:00"])
        .astype("datetime64[ns]")
        .astype(np.int64)
    )
    np.testing.assert_array_equal(session_windows(ts, "America/New_York"), [[0, 1], [2, 3]])


def test_differential_sharpe_and_the_cvar_multiplier():
    env = _env(reward=RewardConfig(kind="differential_sharpe", scale=1.0, eta=0.5))
    steps = _run(env, [1.0, 1.0, 1.0])
    r1 = steps[0][4]["equity"] / 10_000 - 1
    # after the first step: A = 0.5 r1, B = 0.5 r1²; the second step's D by the formula
    r2 = steps[1][4]["equity"] / steps[0][4]["equity"] - 1
    a, b = 0.5 * r1, 0.5 * r1 * r1
    expected = (b * (r2 - a) - 0.5 * a * (r2 * r2 - b)) / (b - a * a) ** 1.5
    assert steps[0][1] == 0.0
    assert steps[1][1] == pytest.approx(expected)
    tight = _env(reward=RewardConfig(cvar_budget=0.001, cvar_lr=1.0))
    loose = _env(reward=RewardConfig(cvar_budget=10.0, cvar_lr=1.0))
    for env in (tight, loose):
        for _ in range(3):
            _run(env, [1.0, 1.0, 1.0])  # a 10% loss on bar 2: the tail is heavy
    assert tight.reward_function.multiplier_ > 0.0
    assert loose.reward_function.multiplier_ == 0.0


def test_bad_arrays_are_refused_naming_the_bar():
    closes = CLOSES.copy()
    closes[2] = np.nan
    with pytest.raises(ValueError, match="close price of bar 2"):
        _env(closes=closes)
    with pytest.raises(ValueError, match=r"window 0 \(0, 5\)"):
        _env(windows=np.array([[0, 5]]))
    with pytest.raises(ValueError, match=r"features have shape \(5, 2\)"):
        _env(features=np.zeros((5, 2)))


def test_gymnasium_checker_accepts_the_env():
    env = _env(windows=np.array([[0, 3], [1, 4]]))
    check_env(env, skip_render_check=True)
    check_env(_env(action_kind="discrete"), skip_render_check=True)
