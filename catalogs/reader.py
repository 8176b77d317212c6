"""Fast, vectorised reads of catalog bars into pandas (no Nautilus ``Bar`` objects).

``read_bars_frame`` decodes the int128 fixed-point columns with numpy: values equal
``float(str(price))`` of the Nautilus objects. Nautilus is not imported.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from nautilus_trader.model.data import BarType

from catalogs.fixed_point import decode_fixed128
from catalogs.transaction import bar_directory

INSTRUMENT_DIRECTORIES = frozenset(
    {
        "betting_instrument",
        "binary_option",
        "cfd",
        "commodity",
        "crypto_future",
        "crypto_option",
        "crypto_perpetual",
        "currency_pair",
        "equity",
        "futures_contract",
        "futures_spread",
        "index_instrument",
        "option_contract",
        "option_spread",
    }
)
"""``<catalog>/data/<name>`` directories of Nautilus 1.221.0 instrument classes (snake case)."""


def list_bar_types(catalog_path: str | Path) -> list[str]:
    """Bar types with at least one parquet file in the catalog, sorted.

    The names are those of ``<catalog>/data/bar/<BAR_TYPE>/`` (Nautilus strips ``/`` from them).
    """
    root = Path(catalog_path) / "data" / "bar"
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and any(p.glob("*.parquet")))


def read_bars_frame(
    catalog_path: str | Path,
    bar_type: str,
    start: Any = None,
    end: Any = None,
) -> pd.DataFrame:
    """Bars of one bar type as a DataFrame.

    Parameters
    ----------
    catalog_path : str | Path
        The catalog directory.
    bar_type : str
        e.g. ``SPX.SAMPLE-1-DAY-LAST-EXTERNAL``.
    start, end : timestamp-like, optional
        Inclusive bounds on the bar-close time (``pd.Timestamp`` input: str, datetime, or int ns;
        naive values are UTC).

    Returns
    -------
    pd.DataFrame
        Index: UTC DatetimeIndex named ``ts_event`` (bar close), sorted; float64 columns
        ``open high low close volume``. Empty (same columns) when nothing matches.

    Raises
    ------
    FileNotFoundError
        If the catalog holds no files for ``bar_type``.
    """
    directory = Path(catalog_path) / bar_directory(bar_type)
    files = sorted(directory.glob("*.parquet"))
    if not files:
        raise FileNotFoundError(f"{catalog_path}: no bars of {bar_type} (see list_bar_types)")
    lo = _to_ns(start)
    hi = _to_ns(end)
    frames = []
    for path in files:
        interval = _file_interval(path.name)
        if interval is not None and (
            (lo is not None and interval[1] < lo) or (hi is not None and interval[0] > hi)
        ):
            continue
        frames.append(_read_file(path, lo, hi))
    if not frames:
        return _empty()
    frame = pd.concat(frames) if len(frames) > 1 else frames[0]
    if not frame.index.is_monotonic_increasing:
        frame = frame.sort_index(kind="stable")
    return frame


def read_closes(
    catalog: Path,
    bar_types: list[str],
    start_ns: int | None,
    end_ns: int | None,
) -> pd.DataFrame:
    """Wide close prices (one column per instrument, first bar type wins) at every bar close of
    the given bar types, forward-filled across instruments."""
    series: dict[str, pd.Series] = {}
    for bar_type in bar_types:
        instrument_id = str(BarType.from_str(bar_type).instrument_id)
        if instrument_id in series:
            continue
        frame = read_bars_frame(catalog, bar_type, start=start_ns, end=end_ns)
        series[instrument_id] = frame["close"]
    return pd.DataFrame(series).sort_index().ffill()


def catalog_summary(catalog_path: str | Path) -> dict[str, Any]:
    """Instruments and bar types of a catalog, from file names and parquet footers.

    Returns
    -------
    dict
        ``{"instruments": [{"id", "class"}], "bar_types": [{"bar_type", "rows", "files",
        "start", "end"}], "other_data": [directory names]}``; start/end are ISO-8601 UTC
        bar-close times; ``other_data`` lists data directories that are neither bars nor
        instruments (custom data).
    """
    root = Path(catalog_path)
    instruments = []
    other_data = []
    data = root / "data"
    if data.is_dir():
        for class_dir in sorted(p for p in data.iterdir() if p.is_dir() and p.name != "bar"):
            if class_dir.name not in INSTRUMENT_DIRECTORIES:
                other_data.append(class_dir.name)  # e.g. custom data written by actors
                continue
            for instrument_dir in sorted(p for p in class_dir.iterdir() if p.is_dir()):
                if any(instrument_dir.glob("*.parquet")):
                    instruments.append({"id": instrument_dir.name, "class": class_dir.name})
    bar_types = []
    for bar_type in list_bar_types(root):
        files = sorted((root / bar_directory(bar_type)).glob("*.parquet"))
        rows = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
        intervals = [i for i in (_file_interval(path.name) for path in files) if i is not None]
        bar_types.append(
            {
                "bar_type": bar_type,
                "rows": rows,
                "files": len(files),
                "start": _iso(min(i[0] for i in intervals)) if intervals else None,
                "end": _iso(max(i[1] for i in intervals)) if intervals else None,
            }
        )
    return {"instruments": instruments, "bar_types": bar_types, "other_data": other_data}


def _read_file(path: Path, lo: int | None, hi: int | None) -> pd.DataFrame:
    table = pq.read_table(path, columns=["open", "high", "low", "close", "volume", "ts_event"])
    metadata = table.schema.metadata or {}
    price_precision = int(metadata[b"price_precision"])
    size_precision = int(metadata[b"size_precision"])
    ts = np.asarray(table.column("ts_event").to_numpy(), dtype=np.uint64).view(np.int64)
    keep: np.ndarray | None = None
    if lo is not None or hi is not None:
        keep = np.ones(ts.shape[0], dtype=bool)
        if lo is not None:
            keep &= ts >= lo
        if hi is not None:
            keep &= ts <= hi
        if keep.all():
            keep = None
        else:
            table = table.filter(pa.array(keep))
            ts = ts[keep]
    columns = {
        name: decode_fixed128(
            table.column(name), size_precision if name == "volume" else price_precision
        )
        for name in ("open", "high", "low", "close", "volume")
    }
    index = pd.DatetimeIndex(ts.view("datetime64[ns]"), name="ts_event").tz_localize("UTC")
    return pd.DataFrame(columns, index=index)


def _empty() -> pd.DataFrame:
    index = pd.DatetimeIndex([], dtype="datetime64[ns, UTC]", name="ts_event")
    return pd.DataFrame(
        {name: np.empty(0) for name in ("open", "high", "low", "close", "volume")}, index=index
    )


def _to_ns(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, int | np.integer):
        return int(value)
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def _file_interval(name: str) -> tuple[int, int] | None:
    """(first, last) ns of a catalog file name ``2024-01-01T00-01-00-000000000Z_...parquet``."""
    stem = name.removesuffix(".parquet")
    parts = stem.split("_")
    if len(parts) != 2:
        return None
    try:
        return _file_ts(parts[0]), _file_ts(parts[1])
    except ValueError:
        return None


def _file_ts(text: str) -> int:
    date_part, time_part = text.rstrip("Z").split("T")
    hours, minutes, seconds, nanos = time_part.split("-")
    stamp = pd.Timestamp(f"{date_part}T{hours}:{minutes}:{seconds}", tz="UTC")
    return int(stamp.value) + int(nanos)


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, tz="UTC").isoformat().replace("+00:00", "Z")
