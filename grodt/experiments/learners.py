"""The components of a node config that learn (:class:`~.learnable.Learnable` wrappers).

Components are recognised by their import path; a new learning component registers its wrapper in
:data:`LEARNERS` and the walk-forward fits it with no other change.
"""

from collections.abc import Callable
from collections.abc import Mapping
from typing import Any

from grodt.experiments.learnable import Learnable
from grodt.experiments.regime_learner import REGIME_ACTOR_PATH
from grodt.experiments.regime_learner import RegimeLearner

__all__ = ["LEARNERS", "learnables_of"]

LEARNERS: dict[str, Callable[[str, Mapping[str, Any]], Learnable]] = {
    REGIME_ACTOR_PATH: RegimeLearner,
}
"""Component path → wrapper factory ``(location, config mapping) -> Learnable``."""


def learnables_of(document: Mapping[str, Any]) -> list[Learnable]:
    """The learning components of a resolved node config document (includes merged), in
    ``actors`` then ``strategies`` order."""
    found: list[Learnable] = []
    for kind in ("actors", "strategies"):
        for index, component in enumerate(document.get(kind) or []):
            if not isinstance(component, Mapping):
                continue
            factory = LEARNERS.get(str(component.get("path")))
            if factory is not None:
                found.append(factory(f"{kind}[{index}]", component.get("config") or {}))
    return found
