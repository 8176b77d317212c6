"""Fixtures of the live-node tests: tiny catalogs written with Nautilus' own wrangler."""

from pathlib import Path

import pytest
from live_kit import write_minute_catalog


@pytest.fixture(scope="session")
def minute_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Two instruments (AAA.PAPER, BBB.PAPER), 400 one-minute bars each, ample liquidity."""
    path = tmp_path_factory.mktemp("minute-catalog")
    bar_types = write_minute_catalog(path, {"AAA": 1, "BBB": 2}, bars=400)
    return path, bar_types


@pytest.fixture(scope="session")
def thin_catalog(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """One instrument whose bars carry far less volume than the orders sent on them."""
    path = tmp_path_factory.mktemp("thin-catalog")
    bar_types = write_minute_catalog(path, {"THIN": 3}, bars=300, volume=40.0)
    return path, bar_types
