"""Cost of features: batch rows/s over 1M one-minute bars and streaming µs per bar.

Usage::

    .venv/bin/python benchmarks/features.py                   # default set, 1M bars
    .venv/bin/python benchmarks/features.py --bars 200000 --json
    .venv/bin/python benchmarks/features.py --no-gold         # skip the catalog + gold build

Measured (single process; the bars are generated, nothing is kept):

- ``batch``: :func:`research.features.compute_batch` of the feature set over ``--bars`` bars in
  one frame (rows/s, and seconds per feature);
- ``gold``: the bars ingested into a temporary catalog, then
  :func:`research.features.gold.build_gold_table` (catalog read, features, targets, lineage,
  Parquet write) cold, then again (the cached table reused);
- ``streaming``: :class:`research.features.StreamingFeatures` fed ``--stream-bars`` Nautilus
  ``Bar`` objects one by one (µs per bar, the whole set; and per feature).
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_SET = Path(__file__).resolve().parent.parent / "node_configs/features/default.yaml"

SPEC_YAML = """\
kind: equity
id: BENCH.XTST
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
"""
BAR_TYPE = "BENCH.XTST-1-MINUTE-LAST-EXTERNAL"


def minute_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """Consistent 2-decimal OHLCV one-minute bars (index = bar close, UTC)."""
    rng = np.random.default_rng(seed)
    close = np.round(100 * np.exp(np.cumsum(rng.normal(0, 5e-4, n))), 2)
    open_ = np.r_[100.0, close[:-1]]
    high = np.round(np.maximum(open_, close) + rng.uniform(0, 0.03, n), 2)
    low = np.round(np.minimum(open_, close) - rng.uniform(0, 0.03, n), 2)
    volume = rng.integers(100, 10_000, n).astype(float)
    index = pd.date_range("2020-01-01 00:01", periods=n, freq="1min", tz="UTC", name="ts_event")
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def bench_batch(frame: pd.DataFrame, feature_set) -> dict:
    from research.features import FeatureSet
    from research.features import compute_batch

    started = time.perf_counter()
    compute_batch(frame, feature_set)
    seconds = time.perf_counter() - started
    per_feature = {}
    for spec in feature_set:
        one = FeatureSet((spec,), name=spec.name)
        t0 = time.perf_counter()
        compute_batch(frame, one)
        per_feature[spec.name] = time.perf_counter() - t0
    return {
        "rows": len(frame),
        "seconds": seconds,
        "rows_per_s": len(frame) / seconds,
        "seconds_per_feature": per_feature,
    }


def bench_gold(frame: pd.DataFrame, feature_set) -> dict:
    from catalogs.ingest import ingest_frame
    from research.features.gold import build_gold_table

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        spec = root / "spec.yaml"
        spec.write_text(SPEC_YAML)
        t0 = time.perf_counter()
        ingest_frame(frame, spec, root / "catalog")
        ingest_seconds = time.perf_counter() - t0
        cold = build_gold_table(root / "catalog", feature_set, root / "gold")
        warm = build_gold_table(root / "catalog", feature_set, root / "gold")
        size = cold.path.stat().st_size
    return {
        "ingest_seconds": ingest_seconds,
        "cold_seconds": cold.seconds,
        "cold_rows_per_s": cold.rows / cold.seconds,
        "reused_seconds": warm.seconds,
        "reused": warm.reused,
        "gold_mb": size / 1e6,
    }


def nautilus_bars(frame: pd.DataFrame) -> list:
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    instrument = TestInstrumentProvider.equity("BENCH", "XTST")
    bar_type = BarType.from_str(BAR_TYPE)
    return BarDataWrangler(bar_type, instrument).process(frame)


def bench_streaming(frame: pd.DataFrame, feature_set) -> dict:
    from research.features import FeatureSet
    from research.features import StreamingFeatures

    bars = nautilus_bars(frame)
    streaming = StreamingFeatures(feature_set)
    started = time.perf_counter()
    for bar in bars:
        streaming.update(bar)
    seconds = time.perf_counter() - started
    per_feature = {}
    for spec in feature_set:
        one = StreamingFeatures(FeatureSet((spec,), name=spec.name))
        t0 = time.perf_counter()
        for bar in bars:
            one.update(bar)
        per_feature[spec.name] = (time.perf_counter() - t0) / len(bars) * 1e6
    return {
        "bars": len(bars),
        "us_per_bar": seconds / len(bars) * 1e6,
        "us_per_bar_per_feature": per_feature,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", type=Path, default=DEFAULT_SET, help="feature-set YAML")
    parser.add_argument("--bars", type=int, default=1_000_000, help="bars for the batch side")
    parser.add_argument("--stream-bars", type=int, default=20_000, help="bars streamed")
    parser.add_argument("--no-gold", action="store_true", help="skip the catalog + gold build")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)

    from research.features import FeatureSet

    feature_set = FeatureSet.from_yaml(args.set)
    frame = minute_bars(args.bars)
    result = {
        "feature_set": feature_set.name,
        "features": len(feature_set.columns),
        "batch": bench_batch(frame, feature_set),
        "streaming": bench_streaming(frame.iloc[: args.stream_bars], feature_set),
    }
    if not args.no_gold:
        result["gold"] = bench_gold(frame, feature_set)
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    batch, stream = result["batch"], result["streaming"]
    print(
        f"feature set {feature_set.name!r}: {result['features']} features\n"
        f"batch: {batch['rows']:,} one-minute bars in {batch['seconds']:.2f} s = "
        f"{batch['rows_per_s']:,.0f} rows/s"
    )
    for name, seconds in sorted(batch["seconds_per_feature"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {seconds:7.3f} s")
    if "gold" in result:
        gold = result["gold"]
        print(
            f"gold table (catalog read + features + targets + write): {gold['cold_seconds']:.2f} s "
            f"= {gold['cold_rows_per_s']:,.0f} rows/s, {gold['gold_mb']:.0f} MB; reused: "
            f"{gold['reused_seconds']:.2f} s (ingest of the bars: {gold['ingest_seconds']:.2f} s)"
        )
    print(f"streaming: {stream['us_per_bar']:.1f} µs per bar over {stream['bars']:,} bars")
    for name, micros in sorted(stream["us_per_bar_per_feature"].items(), key=lambda kv: -kv[1]):
        print(f"  {name:<40} {micros:7.2f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
