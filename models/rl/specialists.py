"""Trained specialists on disk: one SB3 / sb3-contrib model per regime label, plus an optional
generalist, described by a JSON manifest.

Directory layout (written by :func:`save_specialists`, read by :meth:`SpecialistSet.load`)::

    <dir>/manifest.json
    <dir>/bull.zip  <dir>/bear.zip  <dir>/sideways.zip  [<dir>/generalist.zip]

``manifest.json``::

    {
      "format": 1,
      "labels": ["bull", "bear", "sideways"],          # one model file per label
      "algorithm": "PPO",                              # PPO | MaskablePPO | RecurrentPPO
      "action_kind": "continuous",                     # continuous | discrete (models.rl.actions)
      "observation": {...},                            # ObservationSpec.to_dict()
      "files": {"bull": "bull.zip", ...},
      "generalist": "generalist.zip",                  # or null
      "versions": {"stable_baselines3": "2.9.2", "sb3_contrib": "2.9.2", "torch": "...", ...},
      "extra": {...}                                   # free-form provenance (seed, config, run)
    }

Use in a strategy (the engine thread)::

    torch.set_num_threads(1)            # caller-side, once: see below
    specialists = SpecialistSet.load("runs/rl/.../specialists")
    obs = specialists.observation.build_from_mapping(feature_values, position)
    actions = specialists.predict(obs)  # {"bull": 0.8, "bear": -1.0, "sideways": 0.1}
    target = sum(p[label] * actions[label] for label in specialists.labels)

``predict`` is deterministic (the policy's mean action for ``continuous``, its most likely
index for ``discrete``), returns target positions in [-1, 1] (:mod:`models.rl.actions`) and does
not touch global state. **Torch threads:** the set does not call ``torch.set_num_threads``;
the caller does, once per process, before the first ``predict`` (``torch.set_num_threads(1)``
on an engine thread: a small MLP is slower with a thread pool, and the pool competes with the
event loop). RecurrentPPO keeps an LSTM state per model inside the set: call :meth:`reset`
at the start of every episode (a new backtest, a new trading day in intraday training).
"""

import importlib.metadata
import json
import logging
import math
import platform
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from models.rl.actions import DISCRETE_TARGETS
from models.rl.actions import ActionKind
from models.rl.actions import check_action_kind
from models.rl.observation import ObservationSpec

__all__ = [
    "ALGORITHMS",
    "GENERALIST",
    "MANIFEST_FILE",
    "SpecialistSet",
    "SpecialistsError",
    "algorithm_class",
    "library_versions",
    "save_specialists",
]

MANIFEST_FILE = "manifest.json"
GENERALIST = "generalist"
MANIFEST_FORMAT = 1
ALGORITHMS: tuple[str, ...] = ("PPO", "MaskablePPO", "RecurrentPPO")

_log = logging.getLogger(__name__)
_VERSIONED = ("stable_baselines3", "sb3_contrib", "torch", "gymnasium", "numpy")


class SpecialistsError(ValueError):
    """A specialists directory or manifest is unusable; the message names the file and field."""


def algorithm_class(name: str) -> type:
    """The SB3 / sb3-contrib class of an algorithm name in :data:`ALGORITHMS`."""
    if name == "PPO":
        from stable_baselines3 import PPO

        return PPO
    if name == "MaskablePPO":
        from sb3_contrib import MaskablePPO

        return MaskablePPO
    if name == "RecurrentPPO":
        from sb3_contrib import RecurrentPPO

        return RecurrentPPO
    raise SpecialistsError(f"algorithm must be one of {list(ALGORITHMS)}, was {name!r}")


def library_versions() -> dict[str, str]:
    """Versions of the libraries a saved model depends on (and Python's)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name.replace("_", "-"))
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass
class _Policy:
    """One loaded model and, for RecurrentPPO, its LSTM state."""

    model: Any
    recurrent: bool
    state: tuple[np.ndarray, ...] | None = None
    episode_start: np.ndarray = field(default_factory=lambda: np.ones(1, dtype=bool))
    forward: "_ActorForward | None" = None


class SpecialistSet:
    """The specialists of a directory: ``predict(obs) -> {label: target position}``.

    Attributes
    ----------
    labels : tuple[str, ...]
        Regime labels with a specialist, in manifest order.
    algorithm : str
    action_kind : {"continuous", "discrete"}
    observation : ObservationSpec
    manifest : dict
        The manifest as read.
    has_generalist : bool
    """

    def __init__(
        self,
        models: Mapping[str, Any],
        algorithm: str,
        action_kind: ActionKind,
        observation: ObservationSpec,
        generalist: Any | None = None,
        manifest: Mapping[str, Any] | None = None,
    ) -> None:
        if not models:
            raise SpecialistsError("a specialist set needs at least one model")
        algorithm_class(algorithm)
        check_action_kind(action_kind)
        self.labels: tuple[str, ...] = tuple(models)
        self.algorithm = algorithm
        self.action_kind: ActionKind = action_kind
        self.observation = observation
        self.manifest: dict[str, Any] = dict(manifest or {})
        recurrent = algorithm == "RecurrentPPO"
        self._policies = {label: _Policy(model, recurrent) for label, model in models.items()}
        self._generalist = None if generalist is None else _Policy(generalist, recurrent)
        for name, policy in self._all():
            shape = policy.model.observation_space.shape
            if shape != (observation.n_obs,):
                raise SpecialistsError(
                    f"model {name!r}: observation shape {shape}, the observation spec gives "
                    f"({observation.n_obs},)"
                )

    @property
    def has_generalist(self) -> bool:
        return self._generalist is not None

    @classmethod
    def load(cls, directory: str | Path) -> "SpecialistSet":
        """Read ``<directory>/manifest.json`` and every model it names (on CPU)."""
        directory = Path(directory)
        manifest = _read_manifest(directory)
        algorithm = manifest["algorithm"]
        loader = algorithm_class(algorithm)
        _warn_on_version_change(directory, manifest.get("versions", {}))

        def load_one(name: str, file: str) -> Any:
            path = directory / file
            if not path.is_file():
                raise SpecialistsError(f"{directory / MANIFEST_FILE}: {name}: no file {path}")
            return loader.load(path, device="cpu")

        models = {label: load_one(label, manifest["files"][label]) for label in manifest["labels"]}
        generalist_file = manifest.get("generalist")
        generalist = load_one(GENERALIST, generalist_file) if generalist_file else None
        try:
            observation = ObservationSpec.from_dict(manifest["observation"])
        except ValueError as e:
            raise SpecialistsError(f"{directory / MANIFEST_FILE}: observation: {e}") from None
        return cls(models, algorithm, manifest["action_kind"], observation, generalist, manifest)

    def save(self, directory: str | Path) -> Path:
        """Write the set to ``directory`` (:func:`save_specialists`; the manifest's ``extra``
        is kept). With :meth:`load`, this makes the set a model the tracking registry stores
        and loads as one (``grodt.tracking.native``'s save/load protocol)."""
        generalist = None if self._generalist is None else self._generalist.model
        return save_specialists(
            directory,
            {label: policy.model for label, policy in self._policies.items()},
            self.algorithm,
            self.action_kind,
            self.observation,
            generalist,
            extra=self.manifest.get("extra"),
        ).parent

    def reset(self) -> None:
        """Start a new episode: clears the LSTM states of RecurrentPPO models (no-op otherwise)."""
        for _name, policy in self._all():
            policy.state = None
            policy.episode_start = np.ones(1, dtype=bool)

    def predict(self, obs: np.ndarray, action_mask: np.ndarray | None = None) -> dict[str, float]:
        """Each specialist's target position for one observation.

        Parameters
        ----------
        obs : np.ndarray
            float32, shape ``(observation.n_obs,)`` (:meth:`ObservationSpec.build`).
        action_mask : np.ndarray, optional
            bool, shape (3,), for ``discrete`` actions: the allowed indices
            (:func:`models.rl.safety.action_mask`); ignored for ``continuous``.

        Returns
        -------
        dict[str, float]
            ``{label: target}`` over :attr:`labels`, targets in [-1, 1].
        """
        return {
            label: self._act(policy, obs, action_mask) for label, policy in self._policies.items()
        }

    def model(self, label: str) -> Any:
        """The SB3 model of ``label``'s specialist (``KeyError`` for a label without one)."""
        return self._policies[label].model

    def predict_one(
        self, label: str, obs: np.ndarray, action_mask: np.ndarray | None = None
    ) -> float:
        """One specialist's target position (``KeyError`` for a label without one)."""
        return self._act(self._policies[label], obs, action_mask)

    def predict_generalist(
        self, obs: np.ndarray, action_mask: np.ndarray | None = None
    ) -> float | None:
        """The generalist's target position, or None when the set has none."""
        if self._generalist is None:
            return None
        return self._act(self._generalist, obs, action_mask)

    def _all(self) -> list[tuple[str, _Policy]]:
        policies = list(self._policies.items())
        if self._generalist is not None:
            policies.append((GENERALIST, self._generalist))
        return policies

    def _act(self, policy: _Policy, obs: np.ndarray, action_mask: np.ndarray | None) -> float:
        obs = np.asarray(obs, dtype=np.float32).reshape(1, -1)
        if policy.recurrent:
            action, policy.state = policy.model.predict(
                obs, state=policy.state, episode_start=policy.episode_start, deterministic=True
            )
            policy.episode_start = np.zeros(1, dtype=bool)
            raw = np.asarray(action).reshape(-1)
        else:
            if policy.forward is None:
                policy.forward = _ActorForward(policy.model.policy)
            raw = policy.forward(obs, action_mask)
        if self.action_kind == "discrete":
            return DISCRETE_TARGETS[int(raw[0])]
        value = float(raw[0])
        # NaN stays NaN (min/max would turn it into -1.0, a full short): callers treat a
        # non-finite action as a model error.
        return value if math.isnan(value) else min(1.0, max(-1.0, value))


class _ActorForward:
    """The deterministic action of an actor-critic MLP policy, without SB3's ``predict`` wrapper.

    The same kernels on the same tensors as the policy's modules (``F.linear`` is what
    ``nn.Linear`` runs, ``torch.tanh``/``relu`` what ``nn.Tanh``/``nn.ReLU`` run), so the result
    is bit-identical to ``model.predict(obs, deterministic=True)``: the Gaussian's mean for a Box
    action, the argmax of the logits (masked indices excluded) for a discrete one. The layers are
    looked up once, which saves the module-call overhead of every layer (several times cheaper
    per call than ``model.predict``). A policy of another shape (a custom features extractor)
    goes through its modules instead.
    """

    def __init__(self, policy: Any) -> None:
        import torch
        from stable_baselines3.common.torch_layers import FlattenExtractor

        self.policy = policy
        self.box = policy.action_space.shape == (1,)
        self.layers: list[tuple[Any, Any, Any]] | None = None
        extractor = policy.pi_features_extractor
        network = policy.mlp_extractor.policy_net
        activations = {torch.nn.Tanh: torch.tanh, torch.nn.ReLU: torch.relu}
        if not isinstance(extractor, FlattenExtractor):
            return
        layers: list[tuple[Any, Any, Any]] = []
        for module in network:
            if isinstance(module, torch.nn.Linear):
                layers.append((module.weight, module.bias, None))
            elif type(module) in activations and layers and layers[-1][2] is None:
                weight, bias, _ = layers[-1]
                layers[-1] = (weight, bias, activations[type(module)])
            else:
                return
        head = policy.action_net
        if not isinstance(head, torch.nn.Linear):
            return
        layers.append((head.weight, head.bias, None))
        self.layers = layers

    def __call__(self, obs: np.ndarray, action_mask: np.ndarray | None) -> np.ndarray:
        import torch
        from torch.nn.functional import linear

        with torch.no_grad():
            tensor = torch.from_numpy(obs)
            if self.layers is not None:
                out = tensor
                for weight, bias, activation in self.layers:
                    out = linear(out, weight, bias)
                    if activation is not None:
                        out = activation(out)
            else:
                policy = self.policy
                features = policy.extract_features(tensor, policy.pi_features_extractor)
                out = policy.action_net(policy.mlp_extractor.forward_actor(features))
            if self.box:
                return out.numpy().reshape(-1)
            logits = out.numpy().reshape(-1).astype(np.float64)
        if action_mask is not None:
            logits = np.where(np.asarray(action_mask, dtype=bool).reshape(-1), logits, -np.inf)
        return np.asarray([int(np.argmax(logits))])


def save_specialists(
    directory: str | Path,
    models: Mapping[str, Any],
    algorithm: str,
    action_kind: ActionKind,
    observation: ObservationSpec,
    generalist: Any | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Save each model as ``<label>.zip`` (and ``generalist.zip``) with the manifest; returns
    the manifest's path."""
    algorithm_class(algorithm)
    check_action_kind(action_kind)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    files: dict[str, str] = {}
    for label, model in models.items():
        if label == GENERALIST:
            raise SpecialistsError(f"{GENERALIST!r} is reserved for the generalist")
        files[label] = f"{label}.zip"
        model.save(directory / files[label])
    generalist_file = None
    if generalist is not None:
        generalist_file = f"{GENERALIST}.zip"
        generalist.save(directory / generalist_file)
    manifest = {
        "format": MANIFEST_FORMAT,
        "labels": list(models),
        "algorithm": algorithm,
        "action_kind": action_kind,
        "observation": observation.to_dict(),
        "files": files,
        "generalist": generalist_file,
        "versions": library_versions(),
        "extra": dict(extra or {}),
    }
    path = directory / MANIFEST_FILE
    path.write_text(json.dumps(manifest, indent=2, default=str))
    return path


def _read_manifest(directory: Path) -> dict[str, Any]:
    path = directory / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecialistsError(
            f"{path}: no manifest (is {directory} a specialists directory?)"
        ) from None
    except json.JSONDecodeError as e:
        raise SpecialistsError(f"{path}: not valid JSON: {e}") from None
    if not isinstance(manifest, dict):
        raise SpecialistsError(f"{path}: the manifest must be a JSON object")
    for key in ("labels", "algorithm", "action_kind", "observation", "files"):
        if key not in manifest:
            raise SpecialistsError(f"{path}: missing field {key!r}")
    if manifest.get("format", MANIFEST_FORMAT) != MANIFEST_FORMAT:
        raise SpecialistsError(
            f"{path}: format {manifest['format']!r}; this code reads format {MANIFEST_FORMAT}"
        )
    labels = manifest["labels"]
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise SpecialistsError(f"{path}: labels must be a non-empty list of strings")
    absent = [label for label in labels if label not in manifest["files"]]
    if absent:
        raise SpecialistsError(f"{path}: files: no model file for label(s) {absent}")
    if manifest["action_kind"] not in ("continuous", "discrete"):
        raise SpecialistsError(
            f"{path}: action_kind must be 'continuous' or 'discrete', "
            f"was {manifest['action_kind']!r}"
        )
    if manifest["algorithm"] not in ALGORITHMS:
        raise SpecialistsError(
            f"{path}: algorithm must be one of {list(ALGORITHMS)}, was {manifest['algorithm']!r}"
        )
    return manifest


def _warn_on_version_change(directory: Path, saved: Mapping[str, str]) -> None:
    now = library_versions()
    changed = {
        name: (saved[name], now[name])
        for name in _VERSIONED
        if name in saved and saved[name] != now.get(name)
    }
    if changed:
        _log.warning("%s: saved with other library versions (saved, now): %s", directory, changed)
