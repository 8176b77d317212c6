"""The reports of a backtest whose cache was purged (:mod:`grodt.nodes.cache_purge`), written in
bounded memory: row for row what Nautilus' ``ReportProvider`` gives on an unpurged cache.

The purge spills the report rows of what it removes (``to_dict()`` of orders, fills, positions
and account states; position snapshots as the pickled ``Position`` objects the cache holds) to
one file per kind, in batches. The orders, fills and account reports are written to CSV in
chunks of :data:`REPORT_CHUNK_ROWS` rows (:func:`write_report`): a first pass reads only the
sort key, the keys and the value types of each row; a second reads the rows chunk by chunk in
report order and appends them to the CSV.
Each chunk's columns get the dtype pandas infers for the whole column (the same object-column
inference as ``pd.DataFrame(data=rows)``), so the text is the same as that of the whole frame's
``to_csv``. The memory after the event loop is that of a chunk and of one small tuple per row,
not that of the report (a dict per order of about 35 fields: several KB).

Positions are fewer and the summary needs them whole: :func:`positions_report` builds them in
memory, one tuple of shared values per row (:class:`_Rows`).
"""

import pickle
import uuid
from collections import OrderedDict
from collections.abc import Callable
from collections.abc import Iterator
from operator import itemgetter
from pathlib import Path
from typing import Any

import pandas as pd
from nautilus_trader.cache.cache import Cache
from nautilus_trader.core.datetime import unix_nanos_to_dt
from nautilus_trader.model.events import AccountState
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.orders import Order

__all__ = [
    "FILL_SUMMARY_COLUMNS",
    "REPORT_CHUNK_ROWS",
    "positions_report",
    "spilled_rows",
    "write_account_report",
    "write_fills_report",
    "write_orders_report",
    "write_report",
]

REPORT_CHUNK_ROWS = 5_000
"""Rows of a report held in memory at once while it is written."""

FILL_SUMMARY_COLUMNS = (
    "ts_event",
    "strategy_id",
    "instrument_id",
    "order_side",
    "last_qty",
    "last_px",
    "commission",
)
"""The fills report's columns that ``research.performance.normalise_fills`` reads."""

_SHARED_STRING_MAX_LEN = 24
"""String values up to this length are shared between rows held in memory (sides, statuses, ids
of strategies and instruments, quantities, prices: few distinct values); longer ones (order ids,
UUIDs) are unique per row and left alone."""

_LOADED_BATCHES = 64
"""Spilled batches kept loaded while a report is written (an hour of orders each)."""

_NAN = float("nan")

Rows = list[dict[str, Any]]


def _spill_batches(path: Path) -> Iterator[tuple[int, Rows]]:
    """``(file offset, rows)`` of every batch pickled to ``path``, in order."""
    if not path.exists():
        return
    with open(path, "rb") as spill:
        while True:
            offset = spill.tell()
            try:
                rows = pickle.load(spill)
            except EOFError:
                return
            yield offset, rows


def spilled_rows(spill_dir: Path, kind: str) -> Iterator[dict[str, Any]]:
    """The rows of ``kind`` spilled to ``spill_dir``, in spill order, one batch in memory at a
    time."""
    for _, rows in _spill_batches(Path(spill_dir) / f"{kind}.pickle"):
        yield from rows


def write_report(
    path: Path,
    spill: Path,
    tail: Rows,
    finish: Callable[[pd.DataFrame], pd.DataFrame],
    sort_by: str | None = None,
    keep_sorted: str | None = None,
    transform: Callable[[Rows], Rows] | None = None,
    keep: Callable[[pd.DataFrame], None] | None = None,
    chunk_rows: int | None = None,
) -> int:
    """Write ``finish(pd.DataFrame(data=rows)).to_csv(path)`` in chunks; return the row count.

    Parameters
    ----------
    path : Path
        The CSV file.
    spill : Path
        File of pickled batches of row dicts (absent: none); ``tail`` rows follow them.
    finish : callable
        What the report does to the frame of the rows (index, sort, column conversions). Applied
        to each chunk: it must not reorder rows that arrive in order (``sort_index`` of a
        monotonic index does not).
    sort_by : str, optional
        Rows are stably sorted by this key first.
    keep_sorted : str, optional
        A key ``finish`` sorts by without a stable sort: the rows are written in one chunk
        unless they already come in its order.
    transform : callable, optional
        Turns each batch of rows into the report's rows (filters, expands).
    keep : callable, optional
        Called with each finished chunk, in order.
    chunk_rows : int, optional
        Rows per chunk (default :data:`REPORT_CHUNK_ROWS`).
    """
    transform = transform or (lambda rows: rows)
    tail = transform(tail)
    offsets: list[int] = []
    key_tuples: dict[tuple[str, ...], int] = {}
    layouts: list[int] = []
    locators: list[tuple[int, int]] = []
    sort_keys: list[Any] = []
    samples: dict[str, dict[type, Any]] = {}
    # (layout, value types) of the rows sampled already: a row repeating both adds no sample.
    sampled: set[tuple[int, tuple[type, ...]]] = set()
    in_order = True
    previous = None

    def scan(batch: int, rows: Rows) -> None:
        nonlocal in_order, previous
        for i, row in enumerate(rows):
            keys = tuple(row)
            layout = key_tuples.setdefault(keys, len(key_tuples))
            layouts.append(layout)
            locators.append((batch, i))
            if sort_by is not None:
                sort_keys.append(row[sort_by])
            if keep_sorted is not None:
                value = row[keep_sorted]
                in_order = in_order and (previous is None or previous <= value)
                previous = value
            signature = (layout, tuple(map(type, row.values())))
            if signature not in sampled:
                sampled.add(signature)
                for name, value in row.items():
                    samples.setdefault(name, {}).setdefault(type(value), value)

    for offset, rows in _spill_batches(spill):
        offsets.append(offset)
        scan(len(offsets) - 1, transform(rows))
    scan(-1, tail)
    if not locators:
        pd.DataFrame().to_csv(path)
        return 0
    order = list(range(len(locators)))
    if sort_by is not None:
        order.sort(key=sort_keys.__getitem__)
    sort_keys.clear()
    layout_keys = {index: keys for keys, index in key_tuples.items()}
    names: dict[str, None] = {}
    seen: set[int] = set()
    for i in order:
        if layouts[i] not in seen:
            seen.add(layouts[i])
            names.update(dict.fromkeys(layout_keys[layouts[i]]))
    columns = list(names)
    dtypes = _column_dtypes(columns, samples, list(key_tuples))
    chunk = chunk_rows or REPORT_CHUNK_ROWS
    if not in_order:
        chunk = len(order)
    # Each layout's values in column order (NaN for a column the layout lacks).
    getters = {index: _values_getter(keys, columns) for keys, index in key_tuples.items()}
    loaded: OrderedDict[int, Rows] = OrderedDict()
    first = True
    with open(spill, "rb") if offsets else _NoFile() as spill_file:

        def row_at(locator: tuple[int, int]) -> dict[str, Any]:
            batch, i = locator
            if batch < 0:
                return tail[i]
            rows = loaded.get(batch)
            if rows is None:
                spill_file.seek(offsets[batch])
                rows = loaded[batch] = transform(pickle.load(spill_file))
                if len(loaded) > _LOADED_BATCHES:
                    loaded.popitem(last=False)
            else:
                loaded.move_to_end(batch)
            return rows[i]

        for start in range(0, len(order), chunk):
            values = [
                getters[layouts[i]](row_at(locators[i])) for i in order[start : start + chunk]
            ]
            frame = pd.DataFrame(data=values, columns=columns)
            del values
            for name, dtype in dtypes.items():
                if frame[name].dtype != dtype:
                    frame[name] = frame[name].astype(dtype)
            frame = finish(frame)
            frame.to_csv(path, mode="w" if first else "a", header=first)
            if keep is not None:
                keep(frame)
            first = False
    return len(order)


def _values_getter(
    keys: tuple[str, ...], columns: list[str]
) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """``row -> tuple(row.get(name, NaN) for name in columns)`` for rows with ``keys``; an
    ``itemgetter`` (C) when the rows hold every column, ``row.get`` mapped in C otherwise."""
    if len(columns) > 1 and set(columns) <= set(keys):
        return itemgetter(*columns)
    nans = [_NAN] * len(columns)
    return lambda row: tuple(map(row.get, columns, nans))


class _NoFile:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


def _column_dtypes(
    columns: list[str],
    samples: dict[str, dict[type, Any]],
    layouts: list[tuple[str, ...]],
) -> dict[str, Any]:
    """The dtype pandas infers for each column of ``pd.DataFrame(data=rows)``.

    Its object-column inference (``maybe_convert_objects``) depends on which kinds of values a
    column holds (ints, floats, None, strings, bools, ...), not on how many: one value of each
    type the column holds, plus the NaN a row without the key gets, gives the same dtype.
    """
    dtypes = {}
    for name in columns:
        values = list(samples[name].values())
        if any(name not in keys for keys in layouts):
            values.append(_NAN)
        dtypes[name] = pd.DataFrame(data=[(value,) for value in values], columns=[name])[name].dtype
    return dtypes


def write_orders_report(cache: Cache, spill_dir: Path, path: Path, **kwargs: Any) -> int:
    """``Trader.generate_orders_report()`` as on an unpurged cache (the spilled orders, then
    the cache's) to ``path``; the number of orders."""
    return write_report(
        path,
        Path(spill_dir) / "orders.pickle",
        [order.to_dict() for order in cache.orders()],
        # ReportProvider.generate_orders_report; Nautilus lists orders by client order id
        # (Cache._get_orders_for_ids sorts the ids).
        finish=lambda frame: frame.set_index("client_order_id").sort_index(),
        sort_by="client_order_id",
        **kwargs,
    )


def write_fills_report(cache: Cache, spill_dir: Path, path: Path, **kwargs: Any) -> pd.DataFrame:
    """``Trader.generate_fills_report()`` as on an unpurged cache to ``path``; its
    :data:`FILL_SUMMARY_COLUMNS` (what the run summary reads), indexed by client order id."""
    kept: list[pd.DataFrame] = []
    strings: dict[str, str] = {}

    def finish(report: pd.DataFrame) -> pd.DataFrame:
        # ReportProvider.generate_fills_report
        report = report.set_index("client_order_id").sort_index()
        report["ts_event"] = [unix_nanos_to_dt(ts or 0) for ts in report["ts_event"]]
        report["ts_init"] = [unix_nanos_to_dt(ts) for ts in report["ts_init"]]
        del report["type"]
        return report

    write_report(
        path,
        Path(spill_dir) / "fills.pickle",
        [fill for order in cache.orders() for fill in _fill_rows(order)],
        finish=finish,
        # Orders by client order id, each order's fills in event order: a stable sort by id.
        sort_by="client_order_id",
        keep=lambda frame: kept.append(_shared_strings(frame[list(FILL_SUMMARY_COLUMNS)], strings)),
        **kwargs,
    )
    return pd.concat(kept) if kept else pd.DataFrame()


def _shared_strings(frame: pd.DataFrame, strings: dict[str, str]) -> pd.DataFrame:
    """``frame`` with the short strings of its object columns shared between rows (a fill's
    strategy, instrument, side, quantity, price and commission: few distinct values, each a
    fresh string per row as unpickled): the same values, a fraction of the memory."""
    frame = frame.copy()
    for name in frame.columns:
        if frame[name].dtype == object:
            frame[name] = [
                strings.setdefault(value, value)
                if type(value) is str and len(value) <= _SHARED_STRING_MAX_LEN
                else value
                for value in frame[name]
            ]
    return frame


def write_account_report(
    cache: Cache, spill_dir: Path, venue: Venue, path: Path, **kwargs: Any
) -> int:
    """``Trader.generate_account_report(venue)`` as on an unpurged cache (the spilled account
    states, then the ones the account still holds) to ``path``; the number of rows."""
    account = cache.account_for_venue(venue)
    if account is None:
        pd.DataFrame().to_csv(path)
        return 0
    account_id = account.id.value

    def balances(states: Rows) -> Rows:
        # One row per balance of each state of the account: the balance's fields, then the
        # state's.
        rows = []
        for state in states:
            if state["account_id"] == account_id:
                state = {**state}
                rows.extend({**balance, **state} for balance in state.pop("balances", []))
        return rows

    def finish(report: pd.DataFrame) -> pd.DataFrame:
        # ReportProvider.generate_account_report
        report = report.set_index("ts_event").sort_index()
        report.index = [unix_nanos_to_dt(ts_event) for ts_event in report.index]
        del report["ts_init"]
        del report["type"]
        del report["event_id"]
        return report

    return write_report(
        path,
        Path(spill_dir) / "account_states.pickle",
        [AccountState.to_dict(event) for event in account.events],
        finish=finish,
        # sort_index is not stable: chunks only while the states come in time order.
        keep_sorted="ts_event",
        transform=balances,
        **kwargs,
    )


class _Rows:
    """Rows as ``(keys, values)`` tuple pairs, the key tuples and short string values shared
    between rows: a dict per row with a fresh string per value costs several times more.

    :meth:`frame` gives exactly ``pd.DataFrame(data=[dict(zip(keys, values)), ...])``: the
    columns are the keys in order of first appearance, a key a row lacks is NaN (pandas'
    ``dicts_to_array``), and the values go through the same object-column inference.
    """

    def __init__(self) -> None:
        self.keys: list[tuple[str, ...]] = []
        self.values: list[tuple[Any, ...]] = []
        self._key_tuples: dict[tuple[str, ...], tuple[str, ...]] = {}
        self._strings: dict[str, str] = {}

    def append(self, row: dict[str, Any]) -> None:
        keys = tuple(row)
        keys = self._key_tuples.setdefault(keys, keys)
        strings = self._strings
        self.keys.append(keys)
        self.values.append(
            tuple(
                strings.setdefault(value, value)
                if type(value) is str and len(value) <= _SHARED_STRING_MAX_LEN
                else value
                for value in row.values()
            ),
        )

    def extend(self, rows: Iterator[dict[str, Any]]) -> None:
        for row in rows:
            self.append(row)

    def extend_rows(self, other: "_Rows") -> None:
        """Append ``other``'s rows (``other`` is left empty)."""
        self.keys.extend(other.keys)
        self.values.extend(other.values)
        self._key_tuples.update(other._key_tuples)
        other.keys, other.values = [], []

    def column(self, name: str) -> list[Any]:
        """The value of ``name`` in every row (each row must have it)."""
        positions = {keys: keys.index(name) for keys in self._key_tuples}
        return [
            values[positions[keys]] for keys, values in zip(self.keys, self.values, strict=True)
        ]

    def frame(self) -> pd.DataFrame:
        """``pd.DataFrame(data=rows)`` of the rows as dicts; the rows are released."""
        if not self.values:
            return pd.DataFrame()
        columns: dict[str, None] = {}
        seen: set[int] = set()
        for keys in self.keys:
            if id(keys) not in seen:
                seen.add(id(keys))
                columns.update(dict.fromkeys(keys))
        names = tuple(columns)
        keys_list, values_list = self.keys, self.values
        self.keys, self.values = [], []
        layouts = {
            keys: [keys.index(name) if name in keys else -1 for name in names]
            for keys in self._key_tuples
            if keys != names
        }
        if layouts:
            for i, keys in enumerate(keys_list):
                if keys != names:
                    values = values_list[i]
                    values_list[i] = tuple(values[j] if j >= 0 else _NAN for j in layouts[keys])
        del keys_list
        return pd.DataFrame(data=values_list, columns=list(names))


def positions_report(cache: Cache, spill_dir: Path) -> pd.DataFrame:
    """``Trader.generate_positions_report()`` as on an unpurged cache.

    A NETTING position id reopened after a purge: Nautilus would have snapshotted the closed
    round trip when it reopened (id suffixed with a UUID); the last round trip keeps the id.
    """
    # Per position id, its round trips.
    trips: dict[str, list[dict[str, Any]]] = {}
    for row in spilled_rows(spill_dir, "positions"):
        trips.setdefault(row["position_id"], []).append(row)
    for position in cache.positions():
        trips.setdefault(position.id.value, []).append(position.to_dict())
    last = _Rows()
    earlier = _Rows()
    for round_trips in trips.values():
        round_trips.sort(key=lambda row: row["ts_opened"])
        for row in round_trips[:-1]:
            earlier.append({**row, "position_id": f"{row['position_id']}-{uuid.uuid4()}"})
        last.append(round_trips[-1])
    del trips
    snapshots = _Rows()
    # Spilled as the cache's pickled Position objects (grodt.nodes.cache_purge).
    snapshots.extend(
        pickle.loads(pickled).to_dict() for pickled in spilled_rows(spill_dir, "snapshots")
    )
    snapshots.extend(snapshot.to_dict() for snapshot in cache.position_snapshots())
    # ReportProvider.generate_positions_report(positions, snapshots): positions, then snapshots
    # (the spilled and the cache's, then the earlier round trips of reopened ids).
    snapshot_ids = set(snapshots.column("position_id")) | set(earlier.column("position_id"))
    last.extend_rows(snapshots)
    last.extend_rows(earlier)
    report = last.frame()
    if report.empty:
        return report
    sort = ["ts_opened", "ts_closed", "position_id"]
    report = report.set_index("position_id").sort_values(sort)
    del report["signed_qty"]
    del report["quote_currency"]
    del report["base_currency"]
    del report["settlement_currency"]
    report["ts_opened"] = [unix_nanos_to_dt(ts) for ts in report["ts_opened"]]
    report["ts_closed"] = [
        unix_nanos_to_dt(ts) if not pd.isna(ts) else pd.NA for ts in report["ts_closed"]
    ]
    report["is_snapshot"] = report.index.isin(snapshot_ids)
    return report


def _fill_rows(order: Order) -> Iterator[dict[str, Any]]:
    for event in order.events:
        if isinstance(event, OrderFilled):
            yield OrderFilled.to_dict(event)
