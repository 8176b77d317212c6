"""The regime actor as a :class:`~grodt.experiments.learnable.Learnable`.

Per fold, the HMM of the actor's ``walk_forward`` config is fitted once on the train window's bars
(:func:`models.regime.walk_forward.fit_window`: the last ``train_bars`` rows with valid features)
and saved; the test window's actor starts from it (``model``) with ``refit_every`` set to 0.
Refits inside the test window are disabled on purpose: every regime probability of a fold then
comes from the one model fitted on bars before the fold, so a fold's result measures that model
out of sample (refits there would be causal too, but would mix in models fitted on test bars).
"""

import json
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import pandas as pd

from actors.regime_actor import RegimeActorConfig
from grodt.core.errors import ConfigError
from grodt.experiments.learnable import FittedComponent
from models.regime.catalog_io import load_bars
from models.regime.hmm import RegimeFitError
from models.regime.walk_forward import fit_window

__all__ = ["REGIME_ACTOR_PATH", "RegimeLearner"]

REGIME_ACTOR_PATH = "actors.regime_actor:RegimeActor"
"""The component path the regime learner fits."""


class RegimeLearner:
    """Fits the regime actor at ``location`` (``actors[i]``) of a node config per fold.

    Parameters
    ----------
    location : str
        ``actors[i]``.
    config : Mapping[str, Any]
        The component's ``config`` mapping as written in the node config.
    """

    def __init__(self, location: str, config: Mapping[str, Any]) -> None:
        self.location = location
        try:
            self.actor_config = RegimeActorConfig.parse(msgspec.json.encode(dict(config)))
        except (msgspec.ValidationError, TypeError, ValueError) as e:
            raise ConfigError(f"{location}.config: {e}") from None
        if len(self.actor_config.bar_types) != 1:
            raise ConfigError(
                f"{location}.config.bar_types: walk-forward fits one model per regime actor "
                f"(its model is shared by every bar type); this one has "
                f"{len(self.actor_config.bar_types)}: use one actor per instrument",
            )
        self.bar_type = str(self.actor_config.bar_types[0])

    def fit(
        self,
        catalog: Path,
        train_start: pd.Timestamp,
        train_end: pd.Timestamp,
        out_dir: Path,
    ) -> FittedComponent:
        walk = self.actor_config.walk_forward
        bars = load_bars(catalog, self.bar_type, train_start, train_end)
        started = time.perf_counter()
        try:
            model = fit_window(walk, bars.close, bars.ts_event)
        except RegimeFitError as e:
            raise RegimeFitError(
                f"{self.location} ({self.bar_type}), train window {train_start.isoformat()} → "
                f"{train_end.isoformat()}: {e}",
            ) from None
        seconds = time.perf_counter() - started
        slug = re.sub(r"\W", "", self.location)  # actors[0] -> actors0
        path = Path(out_dir) / f"regime_{slug}_{model.version_}.json"
        model.save(path)
        prefix = f"{self.location}.config"
        return FittedComponent(
            location=self.location,
            # JSON strings are YAML strings: the path is never re-typed by the override parser.
            overrides=(
                f"{prefix}.model={json.dumps(str(path))}",
                f"{prefix}.walk_forward.refit_every=0",
            ),
            artifacts=(path,),
            info={
                "kind": "regime_hmm",
                "bar_type": self.bar_type,
                "model_version": model.version_,
                "train_bars": len(bars),
                "fit_seconds": seconds,
                "states": list(model.state_labels_),
            },
        )
