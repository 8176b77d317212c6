"""The synthetic market's parameter drift (for decay studies): off by default (the same market
as before), and when on, the regimes' volatility grows and their drift weakens over the run."""

import numpy as np
import pytest

from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market


def test_parameter_drift_changes_the_regimes_over_time_and_is_off_by_default():
    base = generate_market(SyntheticParams(days=30, seed=3))
    explicit = generate_market(SyntheticParams(days=30, seed=3, parameter_drift=0.0))
    np.testing.assert_array_equal(base.factor, explicit.factor)
    drifting = generate_market(SyntheticParams(days=30, seed=3, parameter_drift=0.6))
    assert (drifting.truth["label"] == base.truth["label"]).all()  # same regime path
    steps = np.diff(drifting.factor)
    base_steps = np.diff(base.factor)
    third = len(steps) // 3
    ratio_start = steps[:third].std() / base_steps[:third].std()
    ratio_end = steps[-third:].std() / base_steps[-third:].std()
    assert ratio_start < 1.25 < 1.4 < ratio_end
    with pytest.raises(ValueError, match="parameter_drift must be in"):
        SyntheticParams(parameter_drift=1.0)
