"""Suite-wide fixtures: isolated settings and the package-shipped sample catalog."""

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from grodt.core.settings import get_settings
from grodt.test_kit.ray import SINGLE_NODE_ENV

# A local Ray head (tests/experiments) and its driver stay on loopback only in Ray's single-node
# mode, which Ray reads when it is first imported: set it before any test imports ray.
os.environ.setdefault(SINGLE_NODE_ENV, "0")


@pytest.fixture(autouse=True, scope="session")
def _isolated_settings(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Keep runs, tracking stores and catalogs of the suite out of the working tree."""
    root = tmp_path_factory.mktemp("grodt-home")
    patcher = pytest.MonkeyPatch()
    patcher.setenv("GRODT_RUNS_DIR", str(root / "runs"))
    patcher.setenv("GRODT_CATALOG", str(root / "catalog"))
    patcher.delenv("GRODT_TRACKING_URI", raising=False)
    patcher.delenv("MLFLOW_TRACKING_URI", raising=False)
    patcher.delenv("GRODT_KAFKA_BOOTSTRAP", raising=False)
    get_settings.cache_clear()
    yield
    patcher.undo()
    get_settings.cache_clear()


@pytest.fixture(scope="session")
def sp500_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A catalog with the real daily S&P 500 and NASDAQ index samples (from the `arch` package)."""
    from catalogs.sample import build_sample_catalog

    path = tmp_path_factory.mktemp("sp500-catalog")
    build_sample_catalog(path, datasets=("sp500",))
    return path
