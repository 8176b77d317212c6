"""SpecialistSet: models per regime label from a directory with a manifest, deterministic
predictions equal to SB3's own."""

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from models.rl.actions import action_space
from models.rl.observation import ObservationSpec
from models.rl.specialists import MANIFEST_FILE
from models.rl.specialists import SpecialistsError
from models.rl.specialists import SpecialistSet
from models.rl.specialists import algorithm_class
from models.rl.specialists import save_specialists

SPEC = ObservationSpec(
    ("ret_1", "vol_20", "rsi_14"), mean=(0.0, 0.01, 50.0), scale=(0.01, 0.005, 10.0)
)


class _SpacesOnly(gym.Env):
    """Carries the spaces SB3 needs to build a policy; the models here are never trained."""

    def __init__(self, kind: str, n_obs: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = action_space(kind)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}

    def action_masks(self):
        return np.ones(3, dtype=bool)


def _models(algorithm: str, kind: str, labels=("bull", "bear", "sideways"), n_obs=SPEC.n_obs):
    cls = algorithm_class(algorithm)
    policy = "MlpLstmPolicy" if algorithm == "RecurrentPPO" else "MlpPolicy"
    return {
        label: cls(policy, _SpacesOnly(kind, n_obs), n_steps=8, batch_size=8, seed=i, device="cpu")
        for i, label in enumerate(labels)
    }


@pytest.fixture(autouse=True)
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _observations(n: int = 20) -> np.ndarray:
    rng = np.random.default_rng(0)
    rows = rng.normal(size=(n, 3)) * [0.01, 0.005, 10.0] + [0.0, 0.01, 50.0]
    positions = np.linspace(-1, 1, n)
    return np.stack(
        [SPEC.build(row, position) for row, position in zip(rows, positions, strict=True)]
    )


def test_continuous_specialists_round_trip_and_equal_sb3_predict(tmp_path):
    models = _models("PPO", "continuous")
    generalist = _models("PPO", "continuous", labels=("g",))["g"]
    save_specialists(tmp_path, models, "PPO", "continuous", SPEC, generalist, extra={"seed": 7})
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["labels"] == ["bull", "bear", "sideways"]
    assert manifest["versions"]["stable_baselines3"] == "2.9.2"
    loaded = SpecialistSet.load(tmp_path)
    assert loaded.labels == ("bull", "bear", "sideways") and loaded.has_generalist
    assert loaded.observation == SPEC
    outputs = set()
    for obs in _observations():
        actions = loaded.predict(obs)
        assert list(actions) == ["bull", "bear", "sideways"]
        for label, model in models.items():
            expected, _ = model.predict(obs, deterministic=True)
            assert actions[label] == float(np.clip(expected[0], -1, 1))  # bit-identical
            outputs.add(round(actions[label], 6))
        assert -1.0 <= loaded.predict_generalist(obs) <= 1.0
        assert loaded.predict(obs) == actions  # deterministic
    assert len(outputs) > 3  # the observation changes the actions


def test_a_nan_action_stays_nan_rather_than_a_full_short(tmp_path):
    # A NaN observation propagates through the MLP; clipping must not turn it into -1.0.
    save_specialists(tmp_path, _models("PPO", "continuous"), "PPO", "continuous", SPEC)
    loaded = SpecialistSet.load(tmp_path)
    obs = _observations(1)[0].copy()
    obs[0] = np.nan
    actions = loaded.predict(obs)
    assert all(np.isnan(action) for action in actions.values())


def test_discrete_maskable_specialists_respect_the_mask(tmp_path):
    models = _models("MaskablePPO", "discrete", labels=("bull", "bear"))
    save_specialists(tmp_path, models, "MaskablePPO", "discrete", SPEC)
    loaded = SpecialistSet.load(tmp_path)
    assert not loaded.has_generalist and loaded.predict_generalist(_observations(1)[0]) is None
    flat_only = np.array([False, True, False])
    for obs in _observations():
        unmasked = loaded.predict(obs)
        assert set(unmasked.values()) <= {-1.0, 0.0, 1.0}
        for label, model in models.items():
            expected, _ = model.predict(obs, deterministic=True)
            assert unmasked[label] == (-1.0, 0.0, 1.0)[int(expected)]
        assert loaded.predict(obs, action_mask=flat_only) == {"bull": 0.0, "bear": 0.0}


def test_recurrent_specialists_carry_state_until_reset(tmp_path):
    save_specialists(
        tmp_path, _models("RecurrentPPO", "continuous"), "RecurrentPPO", "continuous", SPEC
    )
    loaded = SpecialistSet.load(tmp_path)
    observations = _observations(6)
    first = [loaded.predict(obs) for obs in observations]
    loaded.reset()
    again = [loaded.predict(obs) for obs in observations]
    assert first == again
    loaded.reset()
    # the same observation gives a different action once the LSTM has seen others
    assert loaded.predict(observations[-1]) != first[-1]


def test_manifest_errors_name_the_file_and_field(tmp_path):
    with pytest.raises(SpecialistsError, match="no manifest"):
        SpecialistSet.load(tmp_path)
    save_specialists(
        tmp_path, _models("PPO", "continuous", labels=("bull",)), "PPO", "continuous", SPEC
    )
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    broken = {**manifest, "files": {}}
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(broken))
    with pytest.raises(SpecialistsError, match=r"manifest.json: files: no model file .*bull"):
        SpecialistSet.load(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps({**manifest, "algorithm": "DQN"}))
    with pytest.raises(SpecialistsError, match="algorithm must be one of"):
        SpecialistSet.load(tmp_path)
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    (tmp_path / "bull.zip").unlink()
    with pytest.raises(SpecialistsError, match="bull: no file"):
        SpecialistSet.load(tmp_path)


def test_a_model_whose_observation_differs_from_the_spec_is_refused(tmp_path):
    models = _models("PPO", "continuous", labels=("bull",), n_obs=SPEC.n_obs + 1)
    with pytest.raises(SpecialistsError, match=r"observation shape \(5,\).*\(4,\)"):
        SpecialistSet(models, "PPO", "continuous", SPEC)
