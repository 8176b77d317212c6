"""research.ope.fqe against the closed-form value of a small tabular chain: V = (I − γ P_π)⁻¹ r_π
solved with numpy."""

import numpy as np
import pytest
from lightgbm import LGBMRegressor
from sklearn.linear_model import LinearRegression

from research.ope.fqe import FittedQEvaluation
from research.ope.fqe import tabular_states

GAMMA = 0.9
N_STATES, N_ACTIONS = 4, 2
# A chain: action 0 steps left, action 1 steps right, each with slip probabilities in quarters
# (so a log holding every transition in its exact proportion is the MDP itself).
P = np.zeros((N_STATES, N_ACTIONS, N_STATES))
for s in range(N_STATES):
    left, right = max(s - 1, 0), min(s + 1, N_STATES - 1)
    P[s, 0, left] += 0.75
    P[s, 0, right] += 0.25
    P[s, 1, right] += 0.75
    P[s, 1, s] += 0.25
R = np.array([[0.0, -0.1], [0.1, -0.1], [0.2, 0.0], [1.0, 0.5]])  # R[s, a]
TARGET = np.array([[0.2, 0.8], [0.5, 0.5], [0.1, 0.9], [0.6, 0.4]])  # π(a|s)
D0 = np.array([0.4, 0.3, 0.2, 0.1])


def closed_form_q() -> np.ndarray:
    """Q_π = R + γ P V_π with V_π = Σ_a π Q_π: a linear system over the (s, a) pairs."""
    p_flat = P.reshape(N_STATES * N_ACTIONS, N_STATES)  # (SA, S)
    pi_matrix = np.zeros((N_STATES, N_STATES * N_ACTIONS))  # V = pi_matrix @ Q
    for s in range(N_STATES):
        pi_matrix[s, s * N_ACTIONS : (s + 1) * N_ACTIONS] = TARGET[s]
    q = np.linalg.solve(np.eye(N_STATES * N_ACTIONS) - GAMMA * p_flat @ pi_matrix, R.ravel())
    return q.reshape(N_STATES, N_ACTIONS)


def exact_log():
    """Every (s, a) with each next state repeated in proportion to P (quarters → counts)."""
    rows = [
        (s, a, s_next)
        for s in range(N_STATES)
        for a in range(N_ACTIONS)
        for s_next in range(N_STATES)
        for _ in range(round(4 * P[s, a, s_next]))
    ]
    s, a, s_next = (np.array(column) for column in zip(*rows, strict=True))
    return s, a, s_next


def _fit(s, a, s_next, regressor):
    return FittedQEvaluation(regressor=regressor, gamma=GAMMA, max_iterations=400, tol=1e-12).fit(
        state=tabular_states(s, N_STATES),
        action=a,
        reward=R[s, a],
        next_state=tabular_states(s_next, N_STATES),
        done=np.zeros(s.size, dtype=bool),
        next_action_dist=TARGET[s_next],
    )


def test_tabular_fqe_equals_the_closed_form():
    q_true = closed_form_q()
    v_true = float(D0 @ np.sum(TARGET * q_true, axis=1))
    s, a, s_next = exact_log()
    fqe = _fit(s, a, s_next, LinearRegression())
    assert fqe.converged_
    np.testing.assert_allclose(fqe.predict(np.eye(N_STATES)), q_true, atol=1e-9)
    # V(π) under D0: weight the initial states by repeating them in D0's proportions.
    initial = np.repeat(np.arange(N_STATES), (D0 * 10).astype(int))
    value = fqe.value(tabular_states(initial, N_STATES), TARGET[initial])
    assert value == pytest.approx(v_true, abs=1e-9)


def test_fqe_on_sampled_transitions_with_lightgbm():
    # A uniform behaviour policy's sampled log and a gradient-boosted function approximator
    # (few, large steps to keep the test fast): close to the closed form, not equal (sampling
    # error and the regressor's fit).
    q_true = closed_form_q()
    rng = np.random.default_rng(0)
    n = 1500
    s = rng.integers(0, N_STATES, size=n)
    a = rng.integers(0, N_ACTIONS, size=n)
    s_next = np.array([rng.choice(N_STATES, p=P[i, j]) for i, j in zip(s, a, strict=True)])
    regressor = LGBMRegressor(
        n_estimators=15, learning_rate=0.5, num_leaves=8, min_child_samples=5, n_jobs=1, verbose=-1
    )
    fqe = FittedQEvaluation(regressor=regressor, gamma=GAMMA, max_iterations=40, tol=1e-4).fit(
        state=tabular_states(s, N_STATES),
        action=a,
        reward=R[s, a],
        next_state=tabular_states(s_next, N_STATES),
        done=np.zeros(n, dtype=bool),
        next_action_dist=TARGET[s_next],
    )
    v_true = np.sum(TARGET * q_true, axis=1)
    v_fqe = np.sum(TARGET * fqe.predict(np.eye(N_STATES)), axis=1)
    np.testing.assert_allclose(v_fqe, v_true, rtol=0.1)


def test_terminal_steps_do_not_bootstrap():
    # Every step ends the episode: Q is the immediate reward.
    s, a, s_next = exact_log()
    fqe = FittedQEvaluation(regressor=LinearRegression(), gamma=GAMMA).fit(
        state=tabular_states(s, N_STATES),
        action=a,
        reward=R[s, a],
        next_state=tabular_states(s_next, N_STATES),
        done=np.ones(s.size, dtype=bool),
        next_action_dist=TARGET[s_next],
    )
    np.testing.assert_allclose(fqe.predict(np.eye(N_STATES)), R, atol=1e-9)


def test_errors():
    s, a, _ = exact_log()
    x = tabular_states(s, N_STATES)
    with pytest.raises(ValueError, match=r"gamma must lie in \[0, 1\)"):
        FittedQEvaluation(gamma=1.0).fit(x, a, R[s, a], x, np.zeros(s.size, bool), TARGET[s])
    with pytest.raises(ValueError, match="rows of next_action_dist"):
        FittedQEvaluation().fit(x, a, R[s, a], x, np.zeros(s.size, bool), TARGET[s] * 2)
    with pytest.raises(ValueError, match="state_index holds 3, n_states is 3"):
        tabular_states(s, 3)
