"""Fixtures shared by the RL ensemble's engine tests (``ensemble_kit``)."""

from typing import Any

import pytest
from ensemble_kit import build_market
from ensemble_kit import train_specialists


@pytest.fixture(scope="session")
def ensemble_market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The daily market of ``ensemble_kit`` with specialists trained on its first 80 bars."""
    root = tmp_path_factory.mktemp("rl-ensemble-market")
    market = build_market(root)
    market["specialists"] = train_specialists(market, root / "specialists", train_bars=80)
    return market
