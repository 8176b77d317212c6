"""Build Nautilus bar parquet tables directly from arrays (no Python ``Bar`` objects).

The layout is the one ``ParquetDataCatalog.write_data`` produces for ``Bar`` in NautilusTrader
1.221.0 (high-precision build)::

    open, high, low, close, volume: fixed_size_binary[16] not null   # int128 raw, value × 10^16
    ts_event, ts_init:              uint64 not null                   # ns, bar close
    metadata: bar_type, instrument_id, price_precision, size_precision

written to ``<catalog>/data/bar/<BAR_TYPE>/<first ts_init>_<last ts_init>.parquet`` with the
catalog's own file-name function. A test checks the round trip against ``BarDataWrangler``.
"""

import numpy as np
import pyarrow as pa

from catalogs.fixed_point import encode_fixed128

BAR_SCHEMA_FIELDS: tuple[tuple[str, pa.DataType], ...] = (
    ("open", pa.binary(16)),
    ("high", pa.binary(16)),
    ("low", pa.binary(16)),
    ("close", pa.binary(16)),
    ("volume", pa.binary(16)),
    ("ts_event", pa.uint64()),
    ("ts_init", pa.uint64()),
)
ROW_GROUP_SIZE = 5_000
"""Rows per parquet row group: ``ParquetDataCatalog``'s default ``max_rows_per_group``."""


def bar_schema(bar_type: str, price_precision: int, size_precision: int) -> pa.Schema:
    """The Arrow schema (with Nautilus metadata) of one bar type's parquet files."""
    instrument_id = instrument_id_of(bar_type)
    return pa.schema(
        [pa.field(name, dtype, nullable=False) for name, dtype in BAR_SCHEMA_FIELDS],
        metadata={
            "bar_type": bar_type,
            "instrument_id": instrument_id,
            "price_precision": str(price_precision),
            "size_precision": str(size_precision),
        },
    )


def build_bar_table(
    bar_type: str,
    ts_ns: np.ndarray,
    values: dict[str, np.ndarray],
    price_precision: int,
    size_precision: int,
) -> pa.Table:
    """Encode bars as a Nautilus bar table.

    Parameters
    ----------
    bar_type : str
        e.g. ``SPX.SAMPLE-1-DAY-LAST-EXTERNAL`` (the instrument id is everything before the last
        four ``-``-separated parts, so ids such as ``BTCUSDT-PERP.BINANCE`` work).
    ts_ns : np.ndarray
        int64 ns UTC bar-close timestamps, shape (n,), non-decreasing; used as ts_event and
        ts_init.
    values : dict[str, np.ndarray]
        float64 ``open high low close volume``, shape (n,) each, finite, volume >= 0.
    price_precision, size_precision : int
        The instrument's precisions; values are rounded to them as Nautilus rounds.

    Returns
    -------
    pa.Table
        n rows, schema :func:`bar_schema`.
    """
    schema = bar_schema(bar_type, price_precision, size_precision)
    ts = pa.array(np.ascontiguousarray(ts_ns, dtype=np.int64).view(np.uint64), pa.uint64())
    columns = [
        encode_fixed128(values[name], size_precision if name == "volume" else price_precision)
        for name in ("open", "high", "low", "close", "volume")
    ]
    return pa.Table.from_arrays([*columns, ts, ts], schema=schema)


def instrument_id_of(bar_type: str) -> str:
    """The instrument id of a standard bar type string (``AAPL.XNAS-1-MINUTE-LAST-EXTERNAL``)."""
    parts = bar_type.rsplit("-", 4)
    if len(parts) != 5:
        raise ValueError(f"not a standard bar type: {bar_type!r}")
    return parts[0]
