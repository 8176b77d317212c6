"""Evaluation policies written as YAML, for ``grodt ope evaluate --policy``.

A policy file names the context features it reads (by the names the log's ``context`` carries)
and maps them to probabilities over the logged action set::

    # policy.yaml: a softmax over linear scores, one coef row per feature, one column per action
    kind: softmax
    features: [momentum, volatility]
    coef: [[0.0, 1.0, -1.0], [0.0, -0.5, 0.5]]
    intercept: [0.1, 0.0, 0.0]      # optional, one per action
    temperature: 0.5

Kinds: ``softmax`` (above), ``epsilon_greedy`` (same scores, ``epsilon`` instead of
``temperature``), ``fixed`` (``action: K`` every round) and ``uniform``.
"""

from pathlib import Path
from typing import Annotated
from typing import Literal

import numpy as np
import yaml
from pydantic import BaseModel
from pydantic import ConfigDict
from pydantic import Field
from pydantic import TypeAdapter
from pydantic import ValidationError

from grodt.core.errors import GrodtError
from research.ope.policies import LinearEpsilonGreedyPolicy
from research.ope.policies import LinearSoftmaxPolicy

__all__ = ["PolicySpec", "load_policy_spec", "policy_action_dist"]

_CONFIG = ConfigDict(extra="forbid", frozen=True)


class _LinearSpec(BaseModel):
    model_config = _CONFIG

    features: list[str] = Field(min_length=1)
    coef: list[list[float]]
    intercept: list[float] | None = None


class SoftmaxPolicySpec(_LinearSpec):
    kind: Literal["softmax"]
    temperature: float = Field(default=1.0, gt=0.0)


class EpsilonGreedyPolicySpec(_LinearSpec):
    kind: Literal["epsilon_greedy"]
    epsilon: float = Field(default=0.05, ge=0.0, le=1.0)


class FixedPolicySpec(BaseModel):
    model_config = _CONFIG

    kind: Literal["fixed"]
    action: int = Field(ge=0)


class UniformPolicySpec(BaseModel):
    model_config = _CONFIG

    kind: Literal["uniform"]


PolicySpec = Annotated[
    SoftmaxPolicySpec | EpsilonGreedyPolicySpec | FixedPolicySpec | UniformPolicySpec,
    Field(discriminator="kind"),
]
_ADAPTER: TypeAdapter = TypeAdapter(PolicySpec)


def load_policy_spec(path: Path) -> PolicySpec:
    """Read and validate a policy file; errors name the file and the field."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise GrodtError(f"{path}: cannot read the policy: {e}") from None
    try:
        return _ADAPTER.validate_python(data)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(top)'}: {error['msg']}"
            for error in e.errors()
        )
        raise GrodtError(f"{path}: {problems}") from None


def policy_action_dist(
    spec: PolicySpec,
    context: np.ndarray,
    feature_names: tuple[str, ...],
    n_actions: int,
) -> np.ndarray:
    """The policy's (n, n_actions) action probabilities in the logged contexts.

    Raises
    ------
    GrodtError
        A feature the log does not carry, or a coef/intercept/action that does not fit
        ``n_actions``.
    """
    n = context.shape[0]
    if isinstance(spec, UniformPolicySpec):
        return np.full((n, n_actions), 1.0 / n_actions)
    if isinstance(spec, FixedPolicySpec):
        if spec.action >= n_actions:
            raise GrodtError(f"policy: action {spec.action} outside the log's {n_actions} actions")
        dist = np.zeros((n, n_actions))
        dist[:, spec.action] = 1.0
        return dist
    missing = [name for name in spec.features if name not in feature_names]
    if missing:
        raise GrodtError(
            f"policy: features {missing} are not in the log's context (it has "
            f"{list(feature_names)})"
        )
    coef = np.asarray(spec.coef, dtype=float)
    if coef.shape != (len(spec.features), n_actions):
        raise GrodtError(
            f"policy: coef has shape {coef.shape}, needs ({len(spec.features)}, {n_actions}) "
            "(one row per feature, one column per logged action)"
        )
    intercept = None if spec.intercept is None else np.asarray(spec.intercept, dtype=float)
    if intercept is not None and intercept.shape != (n_actions,):
        raise GrodtError(f"policy: intercept has {intercept.size} values, needs {n_actions}")
    columns = [feature_names.index(name) for name in spec.features]
    selected = context[:, columns]
    if isinstance(spec, SoftmaxPolicySpec):
        policy = LinearSoftmaxPolicy(coef=coef, intercept=intercept, temperature=spec.temperature)
        return policy.action_dist(selected)
    return LinearEpsilonGreedyPolicy(
        coef=coef, intercept=intercept, epsilon=spec.epsilon
    ).action_dist(selected)
