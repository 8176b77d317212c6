"""The YAML node configs of the rule strategies, through the loader and BacktestNode: they load,
keep per-strategy books on venues that can, name bad fields, run on the sample catalog, and
replay regime records from a catalog."""

import re
from collections import Counter
from pathlib import Path

import pytest
import yaml
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from strategies_kit import MINUTE_BARS
from strategies_kit import equity
from strategies_kit import make_bars

from grodt.core.errors import ConfigError
from grodt.core.messages import RegimeProbabilities
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_config
from node_configs.schema import BacktestNodeSpec

REPO = Path(__file__).resolve().parents[2]
BACKTEST = REPO / "node_configs" / "backtest"
COMPONENTS = REPO / "node_configs" / "components" / "strategies"
RULE_CONFIGS = sorted(p for p in BACKTEST.glob("*.yaml") if re.match(r"(s[123]|rules)_", p.name))


def test_rule_configs_are_found():
    """The test below runs once per rule config: finding none must fail, not skip."""
    assert RULE_CONFIGS, f"no s1_/s2_/s3_/rules_*.yaml under {BACKTEST}"


@pytest.mark.parametrize("path", RULE_CONFIGS, ids=lambda p: p.stem)
def test_rule_configs_load_with_unique_ids_and_per_strategy_venues(path):
    spec = load_backtest_config(path)
    assert spec.strategies
    tags = [s.config.get("order_id_tag") for s in spec.strategies]
    assert None not in tags, "stable strategy ids need explicit order_id_tag values"
    assert len(set(tags)) == len(tags)
    # Several strategies on one instrument need a HEDGING simulated venue (docs/strategies.md).
    per_instrument = Counter(str(s.config["instrument_id"]) for s in spec.strategies)
    venues = {v.name: v for v in spec.venues}
    for instrument_id, count in per_instrument.items():
        if count > 1:
            assert venues[instrument_id.split(".")[-1]].oms_type == "HEDGING", instrument_id


def _node_with(tmp_path: Path, component: str, overrides: dict) -> Path:
    document = {
        "name": "bad",
        "venues": [{"include": str(REPO / "node_configs/venues/sample_cash_per_strategy.yaml")}],
        "data": [{"bar_types": ["SPX.SAMPLE-1-DAY-LAST-EXTERNAL"]}],
        "strategies": [{"include": str(COMPONENTS / component), "config": overrides}],
    }
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"regime_affinity": {"trending": 1.0}}, r"regime_affinity\.trending: unknown regime"),
        ({"regime_affinity": {"bull": 2.0}}, r"regime_affinity\.bull: affinity must be in"),
        ({"regime_gating": "maybe"}, r"regime_gating"),
        ({"oms_type": "HEDGING"}, r"oms_type: .* needs NETTING"),
        ({"flatten_before_close_minutes": 5}, r"flatten_before_close_minutes: needs session_close"),
        ({"vwap_mode": "session"}, r"vwap_mode: a session VWAP .* would reset every bar"),
        ({"session_timezone": "Mars/Olympus"}, r"session_timezone: unknown time zone"),
        ({"bar_type": "IXIC.SAMPLE-1-DAY-LAST-EXTERNAL"}, r"bar_type: .* not a bar type of"),
        ({"ema_period": "nine"}, r"strategies\[0\]\.config\.ema_period"),
    ],
)
def test_bad_strategy_fields_are_errors_naming_the_field(tmp_path, overrides, message):
    path = _node_with(tmp_path, "s1_vwap_ema_spx.yaml", overrides)
    with pytest.raises(ConfigError, match=message) as error:
        load_backtest_config(path)
    assert str(path) in str(error.value)
    assert "strategies[0]" in str(error.value)


@pytest.mark.slow
def test_rules_sp500_keeps_one_book_per_strategy(sp500_catalog, tmp_path):
    spec = load_backtest_config(BACKTEST / "rules_sp500.yaml")
    spec = spec.model_copy(update={"start": "2010-01-01", "end": "2013-12-31"})
    outcome = run_backtest(spec, sp500_catalog, tmp_path / "run", quiet=True)
    ids = {"S1VwapEmaScalper-001", "S2MeanReversion-002", "S3Breakout-003"}
    strategies = outcome.summary["strategies"]
    assert set(strategies) <= ids
    assert {"S1VwapEmaScalper-001", "S2MeanReversion-002"} <= set(strategies)  # both trade
    final_pnl = sum(s["pnl"] for s in strategies.values())
    assert outcome.summary["final_equity"] == pytest.approx(1_000_000 + final_pnl, abs=0.01)
    # Nautilus' own books: one position id per (instrument, strategy).
    positions = outcome.reports["positions"].read_text()
    for strategy_id in strategies:
        assert f"SPX.SAMPLE-{strategy_id}" in positions
    assert outcome.summary["engine_final_equity"] == pytest.approx(
        outcome.summary["final_equity"],
        rel=1e-9,
    )


def test_the_documented_example_is_the_shipped_file():
    docs = (REPO / "docs" / "strategies.md").read_text()
    section = docs[docs.index("## Write your own strategy") :]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert code == (REPO / "strategies" / "examples" / "rsi_dip.py").read_text()
    component = re.search(r"```yaml\n(path: strategies\.examples.*?)```", section, re.S).group(1)
    shipped = (COMPONENTS / "rsi_dip_spx.yaml").read_text()
    assert component in shipped
    assert len(code.splitlines()) <= 45


@pytest.mark.slow
def test_the_documented_example_runs(sp500_catalog, tmp_path):
    spec = load_backtest_config(BACKTEST / "rules_rsi_dip_sp500.yaml")
    spec = spec.model_copy(update={"start": "2009-01-01", "end": "2014-12-31"})
    outcome = run_backtest(spec, sp500_catalog, tmp_path / "run", quiet=True)
    assert outcome.summary["strategies"]["RsiDip-010"]["trades"] > 5


# -- regime records replayed from a catalog ---------------------------------------------------

VOLUME = 1e7
ROWS = [
    *[(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(100, 108)],
    (107.2, 107.3, 106.4, 107.0, VOLUME),  # S1's pullback entry
    (107.1, 107.4, 106.95, 107.2, VOLUME),
]


def _replay_catalog(path: Path, probabilities: tuple[float, float, float], metadata: bool) -> None:
    catalog = ParquetDataCatalog(str(path))
    catalog.write_data([equity()])
    bars = make_bars(ROWS, bar_type=MINUTE_BARS)
    catalog.write_data(bars)
    p_bull, p_bear, p_sideways = probabilities
    records = [
        RegimeProbabilities(
            instrument_id=MINUTE_BARS.instrument_id,
            p_bull=p_bull,
            p_bear=p_bear,
            p_sideways=p_sideways,
            most_likely="bull" if p_bull >= p_sideways else "sideways",
            model_version="replayed-1",
            ts_event=bar.ts_event,
            ts_init=bar.ts_init,
        )
        for bar in bars
    ]
    catalog.write_data(records)
    assert metadata in (True, False)


def _replay_spec(metadata: bool) -> BacktestNodeSpec:
    regime_data = {
        "data_cls": "grodt.core.messages:RegimeProbabilities",
        "client_id": "REGIME",
        "metadata": {"instrument_id": "TEST.SIM"} if metadata else None,
    }
    return BacktestNodeSpec.model_validate(
        {
            "name": "replay",
            "venues": [
                {
                    "name": "SIM",
                    "oms_type": "HEDGING",
                    "account_type": "MARGIN",
                    "starting_balances": ["1000000 USD"],
                },
            ],
            # The regime records first: with equal ts_init they then precede their bar.
            "data": [regime_data, {"bar_types": [str(MINUTE_BARS)]}],
            "strategies": [
                {
                    "path": "strategies.s1_vwap_ema_scalper:S1VwapEmaScalper",
                    "config": {
                        "instrument_id": "TEST.SIM",
                        "bar_type": str(MINUTE_BARS),
                        "order_id_tag": "001",
                        "ema_period": 3,
                        "atr_period": 3,
                        "close_positions_on_stop": False,
                    },
                },
            ],
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
    )


@pytest.mark.slow
@pytest.mark.parametrize("metadata", [True, False], ids=["with-metadata", "without-metadata"])
def test_regime_records_replayed_from_the_catalog_gate_the_size(tmp_path, metadata):
    results = {}
    for name, probabilities in (("trending", (0.8, 0.2, 0.0)), ("ranging", (0.0, 0.0, 1.0))):
        catalog = tmp_path / name
        _replay_catalog(catalog, probabilities, metadata)
        outcome = run_backtest(
            _replay_spec(metadata), catalog, tmp_path / f"run-{name}", quiet=True
        )
        results[name] = outcome
    trending = results["trending"]
    assert len(trending.fills) == 1  # the entry; the position is kept at stop
    fill_qty = abs(trending.fills["signed_qty"].iloc[0])
    assert results["ranging"].fills.empty  # affinity 0 in a sideways market: no trade
    # Full-scale size would be larger: the replayed p(trending) = 1.0 × affinity, vs. neutral 2/3.
    neutral = run_backtest(
        _replay_spec(metadata).model_copy(update={"data": _replay_spec(metadata).data[1:]}),
        tmp_path / "trending",
        tmp_path / "run-neutral",
        quiet=True,
    )
    neutral_qty = abs(neutral.fills["signed_qty"].iloc[0])
    assert fill_qty == pytest.approx(neutral_qty * 1.5, abs=1.0)
