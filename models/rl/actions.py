"""The policy's action: a target position, continuous in [-1, 1] or one of {-1, 0, +1}.

A target position is in *action units*: +1 is the largest long position the risk limits allow
(``max_weight`` × equity, see :mod:`models.rl.safety`), -1 the largest short, 0 flat.

- ``continuous``: ``Box(-1, 1, shape=(1,), float32)``; the action is clipped to [-1, 1].
- ``discrete``: ``Discrete(3)``; index 0, 1, 2 means -1, 0, +1 (:data:`DISCRETE_TARGETS`). A
  boolean mask of shape (3,) says which indices are allowed (MaskablePPO's ``action_masks()``).
"""

from typing import Literal

import gymnasium as gym
import numpy as np

__all__ = [
    "ACTION_KINDS",
    "DISCRETE_TARGETS",
    "ActionKind",
    "action_space",
    "check_action_kind",
    "to_target",
]

ActionKind = Literal["continuous", "discrete"]
ACTION_KINDS: tuple[str, ...] = ("continuous", "discrete")

DISCRETE_TARGETS: tuple[float, ...] = (-1.0, 0.0, 1.0)
"""Target position of each discrete action index."""


def check_action_kind(kind: str) -> None:
    if kind not in ACTION_KINDS:
        raise ValueError(f"action kind must be one of {list(ACTION_KINDS)}, was {kind!r}")


def action_space(kind: ActionKind) -> gym.Space:
    """The gymnasium action space of ``kind``."""
    check_action_kind(kind)
    if kind == "continuous":
        return gym.spaces.Box(low=-1.0, high=1.0, shape=(1,), dtype=np.float32)
    return gym.spaces.Discrete(len(DISCRETE_TARGETS))


def to_target(kind: ActionKind, action: object) -> float:
    """The target position in [-1, 1] of a policy's raw action (an array of shape (1,) or a
    scalar for ``continuous``; an index for ``discrete``)."""
    if kind == "discrete":
        return DISCRETE_TARGETS[int(np.asarray(action).reshape(-1)[0])]
    value = float(np.asarray(action, dtype=np.float64).reshape(-1)[0])
    return min(1.0, max(-1.0, value))
