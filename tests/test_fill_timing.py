"""Fill timing (``fill_at: close | next_open``) against an outside reference.

A seeded daily file goes through the real ingest into a catalog; the close-vs-SMA(15) strategy
(long 100 units while close > SMA, flat otherwise: ``strategies/examples/close_vs_sma.py``) runs in
a real BacktestNode with each convention, and an independent pandas simulation
(:mod:`grodt.test_kit.fill_reference`, the backtrader/backtesting.py convention) must give the same
fills and the same final equity to the cent. With ``next_open`` the lockstep paper node must give
the same reports as the BacktestNode.
"""

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity

from catalogs.ingest import ingest_files
from catalogs.validation import ValidationConfig
from grodt.cli.backtest import format_summary
from grodt.core.errors import ConfigError
from grodt.nodes.backtest import run_backtest
from grodt.nodes.fill_timing import NextOpenFills
from grodt.nodes.parity import run_parity
from grodt.test_kit.fill_reference import daily_bars
from grodt.test_kit.fill_reference import simulate_close_vs_sma
from node_configs.loader import load_backtest_config
from node_configs.schema import BacktestNodeSpec

INSTRUMENT = "SYN.XNAS"
BAR_TYPE = f"{INSTRUMENT}-1-DAY-LAST-EXTERNAL"
PERIOD = 15
QUANTITY = 100
FEE = 0.0001
STARTING_CASH = 100_000.0
SPEC_YAML = f"""\
kind: equity
id: {INSTRUMENT}
currency: USD
price_precision: 2
lot_size: 1
maker_fee: {FEE}
taker_fee: {FEE}
timezone: America/New_York
session_close: "16:00"
"""


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return daily_bars(days=260, seed=7)


@pytest.fixture(scope="module")
def catalog(bars: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The daily file written as a CSV and ingested as a user would (date-only rows)."""
    root = tmp_path_factory.mktemp("fill-timing")
    csv = root / "syn_daily.csv"
    bars.to_csv(csv, date_format="%Y-%m-%d")
    spec = root / "syn.yaml"
    spec.write_text(SPEC_YAML)
    ingest_files([csv], spec, root / "catalog", config=ValidationConfig(label="close"))
    return root / "catalog"


def document(fill_at: str | None) -> dict[str, Any]:
    venue: dict[str, Any] = {
        "name": "XNAS",
        "oms_type": "NETTING",
        "account_type": "CASH",
        "starting_balances": [f"{STARTING_CASH:.0f} USD"],
    }
    if fill_at is not None:
        venue["fill_at"] = fill_at
    return {
        "name": f"close_vs_sma_{fill_at or 'default'}",
        "venues": [venue],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [
            {
                "path": "strategies.examples.close_vs_sma:CloseVsSma",
                "config": {
                    "instrument_id": INSTRUMENT,
                    "bar_type": BAR_TYPE,
                    "period": PERIOD,
                    "quantity": str(QUANTITY),
                },
            },
        ],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }


def load_spec(fill_at: str | None, directory: Path) -> BacktestNodeSpec:
    """The node config written as a YAML file and loaded as ``grodt backtest`` loads it."""
    path = directory / f"close_vs_sma_{fill_at or 'default'}.yaml"
    path.write_text(yaml.safe_dump(document(fill_at), sort_keys=False))
    return load_backtest_config(path)


def engine_fills(run_dir: Path) -> list[tuple[pd.Timestamp, int, float]]:
    # Ordered by fill time (a paper node's report lists fills in another order).
    fills = pd.read_csv(run_dir / "fills.csv").sort_values("ts_event", kind="stable")
    return [
        (
            pd.Timestamp(row.ts_event).tz_convert("America/New_York").normalize().tz_localize(None),
            1 if row.order_side == "BUY" else -1,
            float(row.last_px),
        )
        for row in fills.itertuples()
    ]


def reference_fills(bars: pd.DataFrame, fill_at: str) -> list[tuple[pd.Timestamp, int, float]]:
    result = simulate_close_vs_sma(bars, PERIOD, QUANTITY, FEE, STARTING_CASH, fill_at)
    return [(bars.index[i], side, price) for i, side, price in result.fills]


@pytest.mark.parametrize("fill_at", [None, "close", "next_open"])
def test_sma15_matches_the_independent_simulation(
    fill_at: str | None, bars: pd.DataFrame, catalog: Path, tmp_path: Path
):
    spec = load_spec(fill_at, tmp_path)
    outcome = run_backtest(spec, catalog, tmp_path / "run", quiet=True)
    convention = fill_at or "close"  # the default keeps Nautilus' convention
    reference = simulate_close_vs_sma(bars, PERIOD, QUANTITY, FEE, STARTING_CASH, convention)

    assert outcome.summary["fill_at"] == convention
    assert len(reference.fills) > 20
    # Same fills: day, side and price (close of the signal day, or open of the next day).
    assert engine_fills(tmp_path / "run") == reference_fills(bars, convention)
    # Same money, to the cent: commissions are rounded per fill by both.
    assert outcome.summary["engine_final_equity"] == pytest.approx(
        reference.final_equity, abs=0.005
    )
    assert outcome.summary["final_equity"] == pytest.approx(reference.final_equity, abs=0.005)
    assert f"fill_at: {convention}" in format_summary(outcome.summary)


def test_next_open_fills_at_the_next_bars_open_and_time(
    bars: pd.DataFrame, catalog: Path, tmp_path: Path
):
    close = load_spec("close", tmp_path)
    next_open = load_spec("next_open", tmp_path)
    run_backtest(close, catalog, tmp_path / "close", quiet=True)
    run_backtest(next_open, catalog, tmp_path / "next_open", quiet=True)
    at_close = engine_fills(tmp_path / "close")
    at_open = engine_fills(tmp_path / "next_open")
    positions = {day: i for i, day in enumerate(bars.index)}
    for (day, side, price), (next_day, next_side, next_price) in zip(
        at_close, at_open, strict=False
    ):
        assert side == next_side
        assert positions[next_day] == positions[day] + 1  # the next bar's time
        assert price == bars["close"].iloc[positions[day]]
        assert next_price == bars["open"].iloc[positions[next_day]]  # the next bar's open
    # The last signal of the file (if any) has no next open: never more fills than at close.
    assert len(at_open) in (len(at_close), len(at_close) - 1)


def test_next_open_parity_backtest_vs_paper_node(bars: pd.DataFrame, catalog: Path, tmp_path: Path):
    spec = load_spec("next_open", tmp_path)
    report = run_parity(spec, tmp_path / "parity", catalog)
    assert report.identical, report.first_divergence
    assert report.fills[0] == report.fills[1] > 20
    # Both nodes filled at the next open (identical, and identical to the reference).
    assert engine_fills(tmp_path / "parity" / "paper") == reference_fills(bars, "next_open")


def _bar(bar_type: str, ts_ns: int) -> Bar:
    return Bar(
        BarType.from_str(bar_type),
        Price.from_str("100.00"),
        Price.from_str("101.00"),
        Price.from_str("99.00"),
        Price.from_str("100.50"),
        Quantity.from_int(1_000),
        ts_ns,
        ts_ns,
    )


def test_next_open_rejects_a_second_bar_type_of_an_instrument():
    module = NextOpenFills()
    module.pre_process(_bar(BAR_TYPE, 1))
    with pytest.raises(ConfigError, match="one bar type per instrument"):
        module.pre_process(_bar(f"{INSTRUMENT}-1-HOUR-LAST-EXTERNAL", 2))


def test_next_open_rejects_quote_bars():
    with pytest.raises(ConfigError, match="quote bar"):
        NextOpenFills().pre_process(_bar(f"{INSTRUMENT}-1-DAY-BID-EXTERNAL", 1))
