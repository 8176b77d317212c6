"""Catalog I/O of the regime model: bars in, regime records out.

``grodt regime infer --to-catalog`` writes :class:`~grodt.core.messages.RegimeProbabilities` records
into a ParquetDataCatalog (``data/custom_regime_probabilities/<instrument_id>/``); a backtest
replays them without the actor through a data config::

    data:
      - data_cls: grodt.core.messages:RegimeProbabilities
        instrument_ids: [SPX.SAMPLE]
        client_id: REGIME
        metadata: {instrument_id: SPX.SAMPLE}
      - bar_types: [SPX.SAMPLE-1-DAY-LAST-EXTERNAL]

(regime data first: with equal ``ts_init`` the order of data configs breaks the tie, and the
actor publishes a bar's record before strategies see the bar).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError
from grodt.core.messages import RegimeProbabilities

REGIME_FRAME_COLUMNS: tuple[str, ...] = (
    "ts_event",
    "ts_init",
    "p_bull",
    "p_bear",
    "p_sideways",
    "most_likely",
    "entropy",
    "model_version",
    "status",
    "events",
)
"""Columns of a regime frame (``grodt regime infer --out``): ns timestamps (int64), the label
probabilities, most likely label, entropy (nats), model version, step status and events."""


@dataclass(frozen=True)
class BarSeries:
    """Closes and timestamps of one bar type.

    Attributes
    ----------
    bar_type : str
    close : np.ndarray
        Shape (N,), float64.
    ts_event, ts_init : np.ndarray
        Shape (N,), int64 UNIX ns (bar close; engine time of the bar).
    """

    bar_type: str
    close: np.ndarray
    ts_event: np.ndarray
    ts_init: np.ndarray

    def __len__(self) -> int:
        return len(self.close)


def _ns(value: Any, field: str) -> int | None:
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{field}: not a timestamp: {value!r} ({e})") from None
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def load_bars(
    catalog: str | Path,
    bar_type: str,
    start: Any = None,
    end: Any = None,
) -> BarSeries:
    """Read the bars of ``bar_type`` in [start, end] from a ParquetDataCatalog.

    Raises
    ------
    ConfigError
        The catalog does not exist, or holds no bars of ``bar_type`` (the message lists those
        it has), or the range is empty.
    """
    from nautilus_trader.model.data import Bar
    from nautilus_trader.model.data import BarType
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    catalog = Path(catalog)
    if not catalog.is_dir():
        raise ConfigError(f"--catalog: {catalog} does not exist")
    try:
        BarType.from_str(bar_type)
    except ValueError as e:
        raise ConfigError(f"--bar-type: {bar_type!r} is not a bar type ({e})") from None
    cat = ParquetDataCatalog(str(catalog))
    if not cat.get_intervals(Bar, bar_type):
        bar_dir = catalog / "data" / "bar"
        known = sorted(p.name for p in bar_dir.iterdir()) if bar_dir.is_dir() else []
        raise ConfigError(
            f"--bar-type: no bars of {bar_type} in {catalog} (it has: {', '.join(known) or '-'})",
        )
    lo, hi = _ns(start, "--start"), _ns(end, "--end")
    bars = cat.bars(bar_types=[bar_type], start=lo, end=hi)
    if not bars:
        raise ConfigError(f"--start/--end: no bars of {bar_type} between {start} and {end}")
    return BarSeries(
        bar_type=bar_type,
        close=np.fromiter((b.close.as_double() for b in bars), dtype=float, count=len(bars)),
        ts_event=np.fromiter((b.ts_event for b in bars), dtype=np.int64, count=len(bars)),
        ts_init=np.fromiter((b.ts_init for b in bars), dtype=np.int64, count=len(bars)),
    )


def regime_records(frame: pd.DataFrame, instrument_id: str) -> list[RegimeProbabilities]:
    """RegimeProbabilities records from a regime frame (one per row, in order)."""
    from nautilus_trader.model.identifiers import InstrumentId

    iid = InstrumentId.from_str(instrument_id)
    columns = ["ts_event", "ts_init", "p_bull", "p_bear", "p_sideways"]
    columns += ["most_likely", "entropy", "model_version"]
    return [
        RegimeProbabilities(
            instrument_id=iid,
            p_bull=float(p_bull),
            p_bear=float(p_bear),
            p_sideways=float(p_sideways),
            most_likely=str(most_likely),
            entropy=float(entropy),
            model_version=str(version),
            ts_event=int(ts_event),
            ts_init=int(ts_init),
        )
        for ts_event, ts_init, p_bull, p_bear, p_sideways, most_likely, entropy, version in (
            frame[columns].itertuples(index=False, name=None)
        )
    ]


def write_regime_records(
    catalog: str | Path,
    records: Iterable[RegimeProbabilities],
    instrument_id: str,
) -> int:
    """Replace every RegimeProbabilities record of ``instrument_id`` in the catalog.

    A regime series is one walk-forward run: records of an earlier run are deleted, not merged.
    Returns the number of records written.
    """
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    items = list(records)
    cat = ParquetDataCatalog(str(catalog))
    cat.delete_data_range(RegimeProbabilities, instrument_id)
    if items:
        cat.write_data(items)
    return len(items)


def read_regime_records(catalog: str | Path, instrument_id: str) -> list[RegimeProbabilities]:
    """The RegimeProbabilities records of ``instrument_id`` stored in the catalog, in order."""
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    cat = ParquetDataCatalog(str(catalog))
    items = cat.query(RegimeProbabilities, identifiers=[instrument_id])
    return [getattr(item, "data", item) for item in items]


def replay_data_config(instrument_id: str, client_id: str = "REGIME") -> dict[str, Any]:
    """The node-config ``data`` entry that replays an instrument's regime records."""
    return {
        "data_cls": "grodt.core.messages:RegimeProbabilities",
        "instrument_ids": [instrument_id],
        "client_id": client_id,
        "metadata": {"instrument_id": instrument_id},
    }
