"""Fixtures of the risk tests."""

import pytest
from risk_kit import RiskHarness


@pytest.fixture
def harness():
    """A real kernel with three instruments (AAA, BBB, CCC at 100), two strategies, margin."""
    h = RiskHarness(symbols=("AAA", "BBB", "CCC"), strategies=2, account_type="MARGIN")
    yield h
    h.dispose()
