"""Fixtures of the catalogs tests (helpers live in catalogs_kit.py)."""

from pathlib import Path

import pytest
from catalogs_kit import EQUITY_YAML

from catalogs.specs import EquitySpec
from catalogs.specs import parse_instrument_spec


@pytest.fixture
def equity_spec() -> EquitySpec:
    spec = parse_instrument_spec(
        {
            "kind": "equity",
            "id": "TEST.XNAS",
            "currency": "USD",
            "price_precision": 2,
            "lot_size": 1,
            "timezone": "America/New_York",
            "session_close": "16:00",
        }
    )
    assert isinstance(spec, EquitySpec)
    return spec


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "test_equity.yaml"
    path.write_text(EQUITY_YAML)
    return path
