"""The protocol a learning component implements to be fitted per walk-forward fold.

A node config's component that learns (the regime HMM today; a meta-controller or RL specialists
later) is wrapped by a :class:`Learnable`: given a catalog and a train window it fits its model on
the bars of that window only and returns the ``PATH=VALUE`` overrides
(:mod:`node_configs.overrides`) that make the test window's node start from the fitted model. The
walk-forward never looks inside the component: it applies the overrides and runs the node.
"""

from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Protocol

import pandas as pd

__all__ = ["FittedComponent", "Learnable"]


@dataclass(frozen=True)
class FittedComponent:
    """What fitting one component on a train window produced.

    Attributes
    ----------
    location : str
        The component in the node config (``actors[0]``).
    overrides : tuple[str, ...]
        ``PATH=VALUE`` overrides that make the test window's node use the fitted model.
    artifacts : tuple[Path, ...]
        Files written (saved models), for the fold's record.
    info : dict[str, Any]
        JSON-ready facts of the fit (model version, rows, seconds), logged per fold.
    """

    location: str
    overrides: tuple[str, ...]
    artifacts: tuple[Path, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)


class Learnable(Protocol):
    """A component of a node config that is fitted on each fold's train window.

    Attributes
    ----------
    location : str
        The component in the node config (``actors[0]``, ``strategies[2]``).
    """

    location: str

    def fit(
        self,
        catalog: Path,
        train_start: pd.Timestamp,
        train_end: pd.Timestamp,
        out_dir: Path,
    ) -> FittedComponent:
        """Fit on the catalog's bars in [train_start, train_end] (both inclusive, UTC) and write
        the fitted model under ``out_dir``; never read a bar after ``train_end``."""
        ...
