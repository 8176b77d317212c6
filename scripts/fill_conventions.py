"""Fill conventions against an independent simulation: close-vs-SMA(N), N = 10..30.

For each period the close-vs-SMA strategy (``strategies/examples/close_vs_sma.py``: long a fixed
quantity while close > SMA, flat otherwise) runs in a BacktestNode with ``fill_at: close`` and with
``fill_at: next_open``; each final equity (cash + position at the last close) is printed next to
the pandas simulation's (:mod:`grodt.test_kit.fill_reference`) and the difference.

Two daily files: a seeded random walk generated here and ingested like a user's CSV, and the real
S&P 500 index of the sample catalog (``SPX.SAMPLE-1-DAY-LAST-EXTERNAL``; build it with
``grodt catalog sample --catalog data/catalog --if-missing``).

    .venv/bin/python scripts/fill_conventions.py [--periods 10-30] [--catalog data/catalog] [--json]
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalogs.ingest import ingest_files
from catalogs.validation import ValidationConfig
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.fill_reference import daily_bars
from grodt.test_kit.fill_reference import simulate_close_vs_sma
from node_configs.loader import load_backtest_config

CONVENTIONS = ("close", "next_open")
SYNTHETIC_SPEC = """\
kind: equity
id: SYN.XNAS
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
timezone: America/New_York
session_close: "16:00"
"""


def _document(
    name: str, venue: str, bar_type: str, cash: float, period: int, quantity: int, fill_at: str
) -> dict[str, Any]:
    instrument_id = bar_type.split("-")[0]
    return {
        "name": name,
        "venues": [
            {
                "name": venue,
                "oms_type": "NETTING",
                "account_type": "CASH",
                "starting_balances": [f"{cash:.0f} USD"],
                "fill_at": fill_at,
            },
        ],
        "data": [{"bar_types": [bar_type]}],
        "strategies": [
            {
                "path": "strategies.examples.close_vs_sma:CloseVsSma",
                "config": {
                    "instrument_id": instrument_id,
                    "bar_type": bar_type,
                    "period": period,
                    "quantity": str(quantity),
                },
            },
        ],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }


def catalog_bars(catalog: Path, bar_type: str) -> tuple[pd.DataFrame, float]:
    """The catalog's bars of ``bar_type`` as open/close floats, and the instrument's taker fee."""
    cat = ParquetDataCatalog(str(catalog))
    bars = cat.bars(bar_types=[bar_type])
    frame = pd.DataFrame(
        {"open": [b.open.as_double() for b in bars], "close": [b.close.as_double() for b in bars]},
        index=pd.to_datetime([b.ts_init for b in bars], utc=True),
    )
    instrument_id = bar_type.split("-")[0]
    instrument = next(i for i in cat.instruments() if str(i.id) == instrument_id)
    return frame, float(instrument.taker_fee)


def evaluate(
    label: str,
    catalog: Path,
    venue: str,
    bar_type: str,
    cash: float,
    quantity: int,
    periods: range,
    work: Path,
) -> list[dict[str, Any]]:
    bars, fee = catalog_bars(catalog, bar_type)
    rows = []
    for period in periods:
        row: dict[str, Any] = {"data": label, "period": period, "bars": len(bars)}
        for fill_at in CONVENTIONS:
            document = _document(
                f"sma{period}_{fill_at}", venue, bar_type, cash, period, quantity, fill_at
            )
            run_dir = work / label / f"sma{period}_{fill_at}"
            run_dir.mkdir(parents=True)
            config = run_dir.parent / f"sma{period}_{fill_at}.yaml"
            config.write_text(yaml.safe_dump(document, sort_keys=False))
            spec = load_backtest_config(config)
            outcome = run_backtest(spec, catalog, run_dir, quiet=True)
            reference = simulate_close_vs_sma(bars, period, quantity, fee, cash, fill_at)
            engine = float(outcome.summary["engine_final_equity"])
            row[f"{fill_at}_engine"] = engine
            row[f"{fill_at}_reference"] = reference.final_equity
            row[f"{fill_at}_diff"] = engine - reference.final_equity
            row[f"{fill_at}_fills"] = len(outcome.fills)
            row[f"{fill_at}_reference_fills"] = len(reference.fills)
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    header = (
        f"{'data':<10} {'SMA':>3} {'close: engine':>15} {'reference':>15} {'diff':>7} "
        f"{'next_open: engine':>18} {'reference':>15} {'diff':>7} {'fills c/n':>10}"
    )
    lines = [header, "-" * len(header)]
    for r in rows:
        lines.append(
            f"{r['data']:<10} {r['period']:>3} {r['close_engine']:>15,.2f} "
            f"{r['close_reference']:>15,.2f} {r['close_diff']:>7.2f} "
            f"{r['next_open_engine']:>18,.2f} {r['next_open_reference']:>15,.2f} "
            f"{r['next_open_diff']:>7.2f} {r['close_fills']:>5}/{r['next_open_fills']:<4}",
        )
    return "\n".join(lines)


def _periods(text: str) -> range:
    first, _, last = text.partition("-")
    return range(int(first), int(last or first) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--periods", default="10-30", help="SMA periods, e.g. 10-30 or 15")
    parser.add_argument("--days", type=int, default=1000, help="Bars of the generated file")
    parser.add_argument("--catalog", type=Path, default=Path("data/catalog"))
    parser.add_argument("--json", action="store_true", help="Print the rows as JSON")
    args = parser.parse_args(argv)
    periods = _periods(args.periods)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fill-conventions-") as tmp:
        work = Path(tmp)
        csv = work / "syn_daily.csv"
        daily_bars(days=args.days, seed=7).to_csv(csv, date_format="%Y-%m-%d")
        spec = work / "syn.yaml"
        spec.write_text(SYNTHETIC_SPEC)
        synthetic = work / "catalog"
        ingest_files([csv], spec, synthetic, config=ValidationConfig(label="close"))
        rows = evaluate(
            "generated",
            synthetic,
            "XNAS",
            "SYN.XNAS-1-DAY-LAST-EXTERNAL",
            100_000.0,
            100,
            periods,
            work,
        )
        sp500 = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
        if (args.catalog / "data").is_dir():
            rows += evaluate(
                "sp500", args.catalog, "SAMPLE", sp500, 1_000_000.0, 100, periods, work
            )
        else:
            print(f"no catalog at {args.catalog}: S&P 500 rows skipped", file=sys.stderr)
    if args.json:
        print(json.dumps(rows))
    else:
        print(format_table(rows))
        worst = max(abs(r[f"{c}_diff"]) for r in rows for c in CONVENTIONS)
        print(
            f"\n{len(rows) * 2} backtests in {time.perf_counter() - started:.1f} s; "
            f"largest |engine - reference| {worst:.2f}",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
