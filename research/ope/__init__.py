"""Off-policy evaluation: what a new policy would have earned on decisions someone else logged.

- :mod:`~research.ope.estimators`: IPW, SNIPS, DM, DR, SNDR, Switch-DR (obp's formulas);
- :mod:`~research.ope.bootstrap`: percentile bootstrap intervals of any of them;
- :mod:`~research.ope.reward_model`: cross-fitted reward models ``q̂`` for DM and the DR family;
- :mod:`~research.ope.fqe`: fitted Q evaluation of sequential (RL) policies;
- :mod:`~research.ope.diagnostics`: effective sample size and overlap warnings.

``docs/ope.md`` says what each estimator assumes.
"""

from research.ope.bootstrap import ConfidenceInterval
from research.ope.bootstrap import bootstrap_ci
from research.ope.diagnostics import OverlapReport
from research.ope.diagnostics import effective_sample_size
from research.ope.diagnostics import overlap_diagnostics
from research.ope.estimators import direct_method
from research.ope.estimators import doubly_robust
from research.ope.estimators import importance_weights
from research.ope.estimators import ipw
from research.ope.estimators import self_normalized_doubly_robust
from research.ope.estimators import snips
from research.ope.estimators import switch_doubly_robust
from research.ope.fqe import FittedQEvaluation
from research.ope.fqe import tabular_states
from research.ope.reward_model import CrossFittedRewardModel

__all__ = [
    "ConfidenceInterval",
    "CrossFittedRewardModel",
    "FittedQEvaluation",
    "OverlapReport",
    "bootstrap_ci",
    "direct_method",
    "doubly_robust",
    "effective_sample_size",
    "importance_weights",
    "ipw",
    "overlap_diagnostics",
    "self_normalized_doubly_robust",
    "snips",
    "switch_doubly_robust",
    "tabular_states",
]
