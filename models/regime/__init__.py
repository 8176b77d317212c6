"""Probabilistic market regimes: a Gaussian HMM on causal bar features, filtered forward.

- :mod:`models.regime.features`: causal features (``"log_return"``, ``"realized_vol:20"``, ...).
- :mod:`models.regime.hmm`: :class:`GaussianRegimeHMM` (fit with hmmlearn EM, labelled states,
  save/load with a content-hash version).
- :mod:`models.regime.forward`: :class:`ForwardFilter`, the O(K²) per-bar causal update.
- :mod:`models.regime.walk_forward`: :class:`WalkForwardRegime`, online inference with periodic
  refits on a trailing window (what the regime actor runs).
"""

from models.regime.features import DEFAULT_FEATURES
from models.regime.features import FeatureExtractor
from models.regime.features import FeatureSpec
from models.regime.features import parse_features
from models.regime.forward import ForwardFilter
from models.regime.hmm import GaussianRegimeHMM
from models.regime.hmm import RegimeFitError
from models.regime.walk_forward import RegimeStep
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import WalkForwardRegime
from models.regime.walk_forward import fit_window
from models.regime.walk_forward import run_walk_forward

__all__ = [
    "DEFAULT_FEATURES",
    "FeatureExtractor",
    "FeatureSpec",
    "ForwardFilter",
    "GaussianRegimeHMM",
    "RegimeFitError",
    "RegimeStep",
    "WalkForwardConfig",
    "WalkForwardRegime",
    "fit_window",
    "parse_features",
    "run_walk_forward",
]
