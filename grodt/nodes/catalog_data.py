"""The catalog data a node reads: a backtest's ``data`` entries, or a replay client's (the same
:class:`DataSpec` entries, so a backtest and its paper twin read the same records)."""

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
from nautilus_trader.backtest.config import BacktestDataConfig
from nautilus_trader.model.data import Bar
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from grodt.core.errors import ConfigError
from node_configs.schema import DataSpec

__all__ = ["BAR_DATA_CLS", "bar_types_of", "check_catalog", "data_config"]

BAR_DATA_CLS = "nautilus_trader.model.data:Bar"
"""``data_cls`` of bar entries (the only entries whose bar types are checked and priced)."""


def data_config(
    data: DataSpec,
    catalog: Path,
    start: str | None,
    end: str | None,
) -> BacktestDataConfig:
    """The catalog query of one data entry; its own ``start``/``end`` win over the node's."""
    return BacktestDataConfig(
        catalog_path=str(catalog),
        data_cls=data.data_cls,
        bar_types=list(data.bar_types) if data.bar_types else None,
        instrument_ids=list(data.instrument_ids) if data.instrument_ids else None,
        start_time=data.start or start,
        end_time=data.end or end,
        client_id=data.client_id,
        metadata=dict(data.metadata) if data.metadata else None,
    )


def bar_types_of(data: Sequence[DataSpec]) -> list[str]:
    """Every bar type the entries read from the catalog, in config order, without repeats."""
    found: list[str] = []
    for entry in data:
        if entry.data_cls == BAR_DATA_CLS and entry.bar_types:
            found.extend(b for b in entry.bar_types if b not in found)
    return found


def check_catalog(
    data: Sequence[DataSpec],
    catalog: Path | None,
    source: str,
    prefix: str = "",
    start: str | None = None,
    end: str | None = None,
) -> None:
    """Fail before a node is built if ``catalog`` is missing, lacks a configured bar type, or
    holds none of its bars between ``start`` and ``end`` (the run's resolved date range).

    Messages name ``source`` (the config) and the field to fix; ``prefix`` is where the entries
    sit in the config (``""`` for a backtest's ``data``, ``"data_clients[0]."`` for a replay
    client's).
    """
    if catalog is None or not Path(catalog).is_dir():
        # A replay client has a `catalog` field of its own; a backtest's catalog may come from
        # the command line, so the message names no field.
        field = f"{prefix}catalog: " if prefix else ""
        raise ConfigError(
            f"{source}: {field}catalog {catalog} does not exist "
            "(build the sample with `grodt catalog sample --catalog DIR`)",
        )
    cat = ParquetDataCatalog(str(catalog))
    for index, entry in enumerate(data):
        for bar_type in entry.bar_types or []:
            if entry.data_cls != BAR_DATA_CLS:
                continue
            intervals = cat.get_intervals(Bar, bar_type)
            if not intervals:
                raise ConfigError(
                    f"{source}: {prefix}data[{index}].bar_types: "
                    f"no bars for {bar_type!r} in {catalog}",
                )
            _check_range(intervals, bar_type, start, end, f"{source}: {prefix}")


def _check_range(
    intervals: list[tuple[int, int]],
    bar_type: str,
    start: str | None,
    end: str | None,
    where: str,
) -> None:
    """A date range that holds none of a bar type's catalog files is an empty run: an error
    naming the range's fields and what the catalog holds (file intervals, ns since the epoch)."""
    lo = pd.Timestamp(start, tz="UTC").value if start else None
    hi = pd.Timestamp(end, tz="UTC").value if end else None
    if any((lo is None or last >= lo) and (hi is None or first <= hi) for first, last in intervals):
        return
    held = f"{pd.Timestamp(intervals[0][0], tz='UTC')} → {pd.Timestamp(intervals[-1][1], tz='UTC')}"
    raise ConfigError(
        f"{where}start/end: no bars of {bar_type!r} between {start or 'the first bar'} and "
        f"{end or 'the last bar'} (the catalog holds {held})",
    )
