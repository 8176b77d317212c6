"""Benchmark: validate + write N one-minute bars into a ParquetDataCatalog.

Prints bars/s (best wall time of ``--repeat`` runs, and CPU time) of grodt's vectorised path,
from a DataFrame and from a CSV file including the parsing, next to Nautilus' own
``BarDataWrangler`` + ``catalog.write_data`` on the same data, and of reading them back
(``read_bars_frame`` vs ``catalog.bars``). A script that prints figures, not a test::

    .venv/bin/python benchmarks/catalog_ingest.py --rows 1000000 --repeat 3
"""

import argparse
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd


def make_frame(rows: int, seed: int = 1) -> pd.DataFrame:
    """A random-walk 1-minute bar frame (2-decimal prices, whole volumes), index = bar close."""
    rng = np.random.default_rng(seed)
    close = np.round(100.0 * np.exp(np.cumsum(rng.normal(0.0, 5e-4, rows))), 2)
    open_ = np.r_[100.0, close[:-1]]
    high = np.round(np.maximum(open_, close) * (1 + np.abs(rng.normal(0, 2e-4, rows))), 2)
    low = np.round(np.minimum(open_, close) * (1 - np.abs(rng.normal(0, 2e-4, rows))), 2)
    volume = rng.integers(1, 10_000, rows).astype(np.float64)
    index = pd.date_range("2020-01-01 00:01", periods=rows, freq="1min", tz="UTC")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def timed(label: str, rows: int, repeat: int, setup: Callable[[], object], run: Callable) -> float:
    """Best-of wall time of ``run(setup())``; prints bars/s of the best run and its CPU time
    (all threads; less sensitive than wall time to other jobs on a shared machine)."""
    walls, cpus = [], []
    for _ in range(repeat):
        state = setup()
        start_cpu = time.process_time()
        start = time.perf_counter()
        run(state)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - start_cpu)
    best = min(walls)
    cpu = min(cpus)
    print(
        f"{label:<46} wall {best:7.3f} s {rows / best / 1e6:6.2f} M bars/s"
        f"   cpu {cpu:7.3f} s {rows / cpu / 1e6:6.2f} M bars/s"
        f"   (median wall {statistics.median(walls):.3f} s)"
    )
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-nautilus", action="store_true", help="Skip the slow reference.")
    args = parser.parse_args()

    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog
    from nautilus_trader.persistence.wranglers import BarDataWrangler

    from catalogs.ingest import ingest_files
    from catalogs.ingest import ingest_frame
    from catalogs.reader import read_bars_frame
    from catalogs.specs import parse_instrument_spec
    from catalogs.validation import ValidationConfig

    spec = parse_instrument_spec(
        {
            "kind": "equity",
            "id": "BENCH.XNAS",
            "currency": "USD",
            "price_precision": 2,
            "lot_size": 1,
        }
    )
    bar_type = spec.bar_type("1-MINUTE")
    rows = args.rows
    frame = make_frame(rows)
    work = Path(tempfile.mkdtemp(prefix="grodt-bench-"))
    csv_path = work / "bars.csv"
    frame.tz_convert(None).rename_axis("timestamp").to_csv(csv_path)
    print(f"{rows:,} one-minute bars; CSV {csv_path.stat().st_size / 1e6:.0f} MB\n")

    def fresh() -> Path:
        path = work / f"catalog-{time.perf_counter_ns()}"
        return path

    close_label = ValidationConfig(label="close")
    timed(
        "grodt: validate + write, from a DataFrame",
        rows,
        args.repeat,
        fresh,
        lambda path: ingest_frame(frame, spec, path),
    )
    timed(
        "grodt: parse CSV + validate + write",
        rows,
        args.repeat,
        fresh,
        lambda path: ingest_files([csv_path], spec, path, config=close_label),
    )
    ours = fresh()
    ingest_frame(frame, spec, ours)
    timed(
        "grodt: read_bars_frame (to a DataFrame)",
        rows,
        args.repeat,
        lambda: ours,
        lambda path: read_bars_frame(path, bar_type),
    )

    if not args.skip_nautilus:
        instrument = spec.to_instrument()
        wrangler = BarDataWrangler(BarType.from_str(bar_type), instrument)

        def nautilus(path: Path) -> None:
            bars = wrangler.process(frame)
            catalog = ParquetDataCatalog(str(path))
            catalog.write_data([instrument])
            catalog.write_data(bars)

        timed("nautilus: BarDataWrangler + write_data", rows, args.repeat, fresh, nautilus)
        timed(
            "nautilus: catalog.bars() (to Bar objects)",
            rows,
            args.repeat,
            lambda: ours,
            lambda path: ParquetDataCatalog(str(path)).bars([bar_type]),
        )
        theirs = fresh()
        nautilus(theirs)
        same = (
            ParquetDataCatalog(str(ours)).bars([bar_type])[-1000:]
            == (ParquetDataCatalog(str(theirs)).bars([bar_type])[-1000:])
        )
        print(f"\nlast 1000 bars identical to Nautilus' own write: {same}")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
