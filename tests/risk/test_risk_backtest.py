"""The gate in real BacktestNode runs: S1+S2+S3 over the four synthetic instruments (the shipped
config, deliberately over-allocated) and oversized random strategies, every limit on. Checked
from the reports alone (``grodt risk audit``): no order-caused breach at any bar; denials and
resizes counted by reason; the same run without the gate breaches."""

from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from grodt.cli import main
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_config
from node_configs.schema import BacktestNodeSpec
from risk_engine.audit import audit_run
from risk_engine.config import parse_risk_config

REPO = Path(__file__).resolve().parents[2]
SYMBOLS = ("SYNA", "SYNB", "SYNC", "SYND")
BAR_TYPES = [f"{s}.XSYN-1-MINUTE-LAST-EXTERNAL" for s in SYMBOLS]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def synthetic_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three sessions of the synthetic market (4 instruments × 1,170 one-minute bars)."""
    from catalogs.sample import build_sample_catalog
    from catalogs.synthetic import SyntheticParams

    path = tmp_path_factory.mktemp("synthetic-catalog")
    build_sample_catalog(path, datasets=("synthetic",), synthetic=SyntheticParams(days=3))
    return path


def _verdicts(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "risk_verdicts.csv")


def test_rule_strategies_with_the_gate_never_breach_by_order(synthetic_catalog, tmp_path):
    spec = load_backtest_config(REPO / "node_configs" / "backtest" / "risk_rules_synthetic.yaml")
    outcome = run_backtest(spec, synthetic_catalog, tmp_path / "run", quiet=True)
    risk = outcome.summary["extensions"]["risk"]
    verdicts = risk["verdicts"]
    assert verdicts["approve"] + verdicts["resize"] + verdicts["deny"] == len(
        _verdicts(outcome.run_dir),
    )
    # Over-allocated strategies: the gate had to cut orders, and says why.
    assert verdicts["resize"] > 0
    assert sum(risk["resizes_by_reason"].values()) == verdicts["resize"]
    assert sum(risk["denials_by_reason"].values()) == verdicts["deny"]
    assert risk["hrp"]["updates"] > 0
    audit = audit_run(outcome.run_dir, synthetic_catalog).summary()
    assert audit["order_caused_breaches"] == 0, audit
    assert audit["bars"] == outcome.summary["bars"]


def _stress_spec(risk: dict | None) -> BacktestNodeSpec:
    strategies = [
        {
            "path": "risk_kit_stress:StressStrategy",
            "config": {
                "bar_types": BAR_TYPES,
                "seed": seed,
                "order_probability": 0.02,
                "order_id_tag": f"{seed:03d}",
            },
        }
        for seed in (1, 2, 3)
    ]
    return BacktestNodeSpec.model_validate(
        {
            "name": "risk_stress",
            "venues": [
                {
                    "name": "XSYN",
                    "account_type": "MARGIN",
                    "starting_balances": ["1000000 USD"],
                },
            ],
            "data": [{"bar_types": BAR_TYPES}],
            "strategies": strategies,
            "risk": risk,
        },
    )


STRESS_RISK = {
    "limits": {
        "max_weight": 0.25,
        "gross_exposure": 0.8,
        "net_exposure": 0.5,
        "trade_risk": 0.005,
        "max_order_notional": 200_000,
        "groups": {"ab": {"members": ["SYNA.XSYN", "SYNB.XSYN"], "max_weight": 0.35}},
        "max_drawdown": 0.05,
        "cvar": {"limit": 0.004, "window": 200, "min_observations": 40},
    },
    "hrp": {
        "bar_types": BAR_TYPES,
        "sampling": "5min",
        "rebalance": "1h",
        "window": 200,
        "min_history": 40,
        "tolerance": 0.6,
    },
    "kill_switch": {"timezone": "UTC"},
}


def test_oversized_random_strategies_never_breach_by_order(synthetic_catalog, tmp_path):
    outcome = run_backtest(
        _stress_spec(STRESS_RISK), synthetic_catalog, tmp_path / "on", quiet=True
    )
    risk = outcome.summary["extensions"]["risk"]
    assert risk["verdicts"]["deny"] > 0 and risk["verdicts"]["resize"] > 0
    assert len(risk["resizes_by_reason"]) >= 3, risk["resizes_by_reason"]
    result = CliRunner().invoke(
        main,
        ["risk", "audit", str(outcome.run_dir), "--catalog", str(synthetic_catalog), "--json"],
    )
    assert result.exit_code == 0, result.output
    assert '"order_caused_breaches": 0' in result.output

    # The same strategies without the gate breach the same limits.
    off = run_backtest(_stress_spec(None), synthetic_catalog, tmp_path / "off", quiet=True)
    audit = audit_run(off.run_dir, synthetic_catalog, parse_risk_config(STRESS_RISK)).summary()
    assert audit["breaches_by_limit"], audit
    assert sum(sum(c.values()) for c in audit["breaches_by_limit"].values()) > 0


@pytest.fixture(scope="module")
def stocks_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from catalogs.sample import build_sample_catalog

    path = tmp_path_factory.mktemp("stocks-catalog")
    build_sample_catalog(path, datasets=("stocks",))
    return path


def test_same_verdicts_in_backtest_and_trading_node(stocks_catalog, tmp_path):
    """The same config in a BacktestNode and in the lockstep paper TradingNode: the gate takes
    the same decisions, and the runs trade identically."""
    from grodt.nodes.parity import run_parity

    strategies = [
        {
            "path": "strategies.ema_cross:EMACross",
            "config": {
                "instrument_id": f"{ticker}.SAMPLE",
                "bar_type": f"{ticker}.SAMPLE-1-DAY-LAST-EXTERNAL",
                "fast_ema_period": 5,
                "slow_ema_period": 15,
                "order_id_tag": f"{k:03d}",
            },
        }
        for k, ticker in enumerate(("AAPL", "JPM"))
    ]
    spec = BacktestNodeSpec.model_validate(
        {
            "name": "risk_parity",
            "start": "2017-01-01",
            "end": "2017-12-31",
            "venues": [{"name": "SAMPLE", "starting_balances": ["1000000 USD"]}],
            "data": [
                {
                    "bar_types": [
                        "AAPL.SAMPLE-1-DAY-LAST-EXTERNAL",
                        "JPM.SAMPLE-1-DAY-LAST-EXTERNAL",
                    ]
                },
            ],
            "strategies": strategies,
            "risk": {
                "limits": {"max_weight": 0.3, "max_drawdown": 0.5},
                "hrp": {"window": 60, "min_history": 20, "rebalance": "bar"},
            },
        },
    )
    report = run_parity(spec, tmp_path, catalog=stocks_catalog)
    assert report.identical, report.first_divergence
    columns = ["strategy_id", "instrument_id", "verdict", "code", "requested", "approved"]
    backtest = pd.read_csv(tmp_path / "backtest" / "risk_verdicts.csv")
    paper = pd.read_csv(tmp_path / "paper" / "risk_verdicts.csv")
    assert len(backtest) > 0 and (backtest["verdict"] == "resize").any()
    pd.testing.assert_frame_equal(backtest[columns], paper[columns])
    pd.testing.assert_series_equal(backtest["equity"], paper["equity"], rtol=1e-9)
