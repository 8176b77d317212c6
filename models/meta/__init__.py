"""The meta-controller's models: predicted strategy performance → bounded capital allocation.

- :mod:`models.meta.features`: trailing per-strategy performance, their correlation and the shared
  context.
- :mod:`models.meta.window`: :class:`RollingWindow`, the trailing rows they are computed from.
- :mod:`models.meta.quantile`: :class:`QuantileReturnModel`, LightGBM quantile regression with
  monotone (rearranged) quantiles.
- :mod:`models.meta.calibration`: conformal intervals and isotonic P(return > 0).
- :mod:`models.meta.model`: :class:`MetaModel`, the three in one versioned file.
- :mod:`models.meta.health`: when to fall back, and the reason.
- :mod:`models.meta.allocator`: :func:`allocate`, bounded gradual mean-variance weights.
- :mod:`models.meta.bandit`: :class:`LinearThompsonBandit` over a set of allocations.
- :mod:`models.meta.policy`: :class:`MetaPolicy`, one rebalance's decision.
- :mod:`models.meta.online`: :class:`OnlineMetaTrainer`, retraining on a schedule.
"""

from models.meta.allocator import Allocation
from models.meta.allocator import AllocatorConfig
from models.meta.allocator import allocate
from models.meta.allocator import diversified_top_k
from models.meta.bandit import LinearThompsonBandit
from models.meta.bandit import allocation_actions
from models.meta.calibration import ConformalInterval
from models.meta.calibration import PositiveProbability
from models.meta.features import CONTEXT_FEATURES
from models.meta.features import STRATEGY_FEATURES
from models.meta.features import context_features
from models.meta.features import feature_names
from models.meta.features import performance_features
from models.meta.features import return_correlation
from models.meta.health import CoverageMonitor
from models.meta.health import HealthConfig
from models.meta.model import Forecast
from models.meta.model import MetaModel
from models.meta.online import MetaRetrainConfig
from models.meta.online import OnlineMetaTrainer
from models.meta.policy import POLICIES
from models.meta.policy import MetaDecision
from models.meta.policy import MetaPolicy
from models.meta.quantile import QuantileReturnModel
from models.meta.window import RollingWindow

__all__ = [
    "CONTEXT_FEATURES",
    "POLICIES",
    "STRATEGY_FEATURES",
    "Allocation",
    "AllocatorConfig",
    "ConformalInterval",
    "CoverageMonitor",
    "Forecast",
    "HealthConfig",
    "LinearThompsonBandit",
    "MetaDecision",
    "MetaModel",
    "MetaPolicy",
    "MetaRetrainConfig",
    "OnlineMetaTrainer",
    "PositiveProbability",
    "QuantileReturnModel",
    "RollingWindow",
    "allocate",
    "allocation_actions",
    "context_features",
    "diversified_top_k",
    "feature_names",
    "performance_features",
    "return_correlation",
]
