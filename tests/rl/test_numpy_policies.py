"""NumpyPolicies: the specialists evaluated together (stacked weights, one matmul per layer) give
every action bit for bit equal to each specialist's own float64 forward pass, and to SB3's."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from models.rl.actions import DISCRETE_TARGETS
from models.rl.actions import action_space
from models.rl.observation import ObservationSpec
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from models.rl.specialists import save_specialists
from strategies.rl_ensemble import NumpyPolicies

SPEC = ObservationSpec(
    ("ret_1", "vol_20", "rsi_14"), mean=(0.0, 0.01, 50.0), scale=(0.01, 0.005, 10.0)
)
LABELS = ("bull", "bear", "sideways")


class _SpacesOnly(gym.Env):
    """Carries the spaces SB3 needs to build a policy; the models here are never trained."""

    def __init__(self, kind: str) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (SPEC.n_obs,), np.float32)
        self.action_space = action_space(kind)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(SPEC.n_obs, np.float32), {}

    def step(self, action):
        return np.zeros(SPEC.n_obs, np.float32), 0.0, True, False, {}

    def action_masks(self):
        return np.ones(3, dtype=bool)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _compiled(directory, kind: str, nets: list[dict]) -> tuple[NumpyPolicies, SpecialistSet]:
    algorithm = "PPO" if kind == "continuous" else "MaskablePPO"
    cls = algorithm_class(algorithm)
    models = {
        label: cls(
            "MlpPolicy",
            _SpacesOnly(kind),
            n_steps=8,
            batch_size=8,
            seed=i,
            device="cpu",
            policy_kwargs=nets[i],
        )
        for i, label in enumerate(LABELS)
    }
    save_specialists(directory, models, algorithm, kind, SPEC)
    loaded = SpecialistSet.load(directory)
    return NumpyPolicies.compile(loaded, directory), loaded


def _one_by_one(policies: NumpyPolicies, obs: np.ndarray) -> dict[str, float]:
    """Each specialist alone: ``W @ h + b`` and its activation per layer, in float64."""
    out = {}
    for label, stack in policies.layers.items():
        h = np.asarray(obs, dtype=np.float64)
        for weight, bias, activation in stack:
            h = weight @ h + bias
            if activation == "tanh":
                h = np.tanh(h)
            elif activation == "relu":
                h = np.maximum(h, 0.0)
        if policies.action_kind == "discrete":
            out[label] = DISCRETE_TARGETS[int(np.argmax(h))]
        else:
            out[label] = float(np.clip(h[0], -1.0, 1.0))
    return out


def _observations(n: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    spread = rng.choice([0.1, 1.0, 30.0], (n, 1))  # near the means and far outside the clip
    rows = rng.normal(size=(n, 3)) * np.array([0.01, 0.005, 10.0]) * spread
    rows += np.array([0.0, 0.01, 50.0])
    positions = rng.uniform(-1, 1, n)
    return np.stack([SPEC.build(row, p) for row, p in zip(rows, positions, strict=True)])


@pytest.mark.parametrize(
    ("kind", "activation"),
    [("continuous", torch.nn.Tanh), ("continuous", torch.nn.ReLU), ("discrete", torch.nn.Tanh)],
)
def test_stacked_specialists_equal_each_one_bit_for_bit(tmp_path, kind, activation):
    net = {"net_arch": [32, 16], "activation_fn": activation}
    policies, loaded = _compiled(tmp_path, kind, [net] * 3)
    assert policies._stacked is not None  # one architecture: evaluated together
    outputs = set()
    for obs in _observations(500):
        actions = policies.predict(obs)
        assert actions == _one_by_one(policies, obs)  # bit-identical, every label
        outputs.update(actions.values())
    assert len(outputs) >= 3  # the observation moves the actions (discrete: all three)
    if kind == "continuous":
        obs = _observations(1)[0].copy()
        obs[0] = np.nan  # a NaN stays NaN (the strategy's model error), not a clipped action
        assert all(np.isnan(a) for a in policies.predict(obs).values())
    for obs in _observations(20):  # and the torch runtime agrees (compile's tolerance)
        expected = loaded.predict(obs)
        assert max(abs(expected[k] - v) for k, v in policies.predict(obs).items()) <= 1e-5


def test_specialists_of_different_shapes_run_one_by_one(tmp_path):
    nets = [{"net_arch": [32, 16]}, {"net_arch": [16]}, {"net_arch": [32, 16]}]
    policies, _ = _compiled(tmp_path, "continuous", nets)
    assert policies._stacked is None
    for obs in _observations(50):
        assert policies.predict(obs) == _one_by_one(policies, obs)
    obs = _observations(1)[0].copy()
    obs[0] = np.nan  # a NaN stays NaN (the strategy's model error), not a clipped action
    assert all(np.isnan(a) for a in policies.predict(obs).values())
