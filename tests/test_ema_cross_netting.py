"""strategies.ema_cross keeps one position per (instrument, strategy), like the base class: on a
HEDGING venue a reversal reuses the strategy's position id instead of opening a hedge."""

from pathlib import Path

import pandas as pd
import pytest

from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes
from strategies.ema_cross import EMACrossConfig

REPO = Path(__file__).resolve().parents[1]
BAR_TYPE = "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL"


def test_a_hedging_oms_type_is_refused():
    with pytest.raises(ValueError, match="NETTING"):
        EMACrossConfig(instrument_id="SYNA.XSYN", bar_type=BAR_TYPE, oms_type="HEDGING")
    assert EMACrossConfig(instrument_id="SYNA.XSYN", bar_type=BAR_TYPE).oms_type == "NETTING"


def test_reversals_on_a_hedging_venue_keep_one_position(tmp_path):
    from catalogs.sample import build_sample_catalog
    from catalogs.synthetic import SyntheticParams

    catalog = tmp_path / "catalog"
    build_sample_catalog(catalog, datasets=("synthetic",), synthetic=SyntheticParams(days=1))
    document = {
        "name": "ema_netting",
        "venues": [{"include": "node_configs/venues/synthetic_margin.yaml"}],  # HEDGING
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [
            {
                "path": "strategies.ema_cross:EMACross",
                "config": {
                    "instrument_id": "SYNA.XSYN",
                    "bar_type": BAR_TYPE,
                    "fast_ema_period": 5,
                    "slow_ema_period": 10,
                    "equity_fraction": 0.2,
                    "allow_short": True,
                    "order_id_tag": "001",
                },
            },
        ],
    }
    spec = load_backtest_document(resolve_includes(document, REPO), "ema_netting")
    outcome = run_backtest(spec, catalog, tmp_path / "run", quiet=True)
    positions = pd.read_csv(outcome.run_dir / "positions.csv")
    fills = pd.read_csv(outcome.run_dir / "fills.csv")
    assert len(fills) > 10  # it reversed many times
    ids = {position_id.split("-EMACross-001")[0] for position_id in positions["position_id"]}
    assert ids == {"SYNA.XSYN"}
    assert set(fills["position_id"]) == {"SYNA.XSYN-EMACross-001"}
    assert positions["ts_closed"].isna().sum() <= 1  # at most the last one still open
