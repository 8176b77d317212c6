"""Fixtures of the regime tests: a small Markov-switching market in a tmp catalog."""

from pathlib import Path

import numpy as np
import pytest

from grodt.test_kit.regime import regime_series
from grodt.test_kit.regime import write_catalog
from models.regime.walk_forward import WalkForwardConfig

INSTRUMENT = "REG.TEST"
BAR_TYPE = "REG.TEST-1-MINUTE-LAST-EXTERNAL"


@pytest.fixture(scope="session")
def series() -> tuple[np.ndarray, np.ndarray]:
    """2,400 closes and their true regime indices (0 bull, 1 bear, 2 sideways)."""
    return regime_series(2400, seed=11)


@pytest.fixture(scope="session")
def small_config() -> WalkForwardConfig:
    """A fast walk-forward schedule: first fit after 400 rows, refits every 250 on 600."""
    return WalkForwardConfig(
        train_bars=600,
        min_train_bars=400,
        refit_every=250,
        n_init=1,
        n_iter=50,
    )


@pytest.fixture(scope="session")
def regime_catalog(
    tmp_path_factory: pytest.TempPathFactory,
    series: tuple[np.ndarray, np.ndarray],
) -> Path:
    """A catalog holding ``series`` as 1-minute bars of REG.TEST."""
    path = tmp_path_factory.mktemp("regime-catalog")
    write_catalog(path, {INSTRUMENT: series[0][:1500]})
    return path
