"""Read bar files (CSV, gz CSV, Parquet) or DataFrames into :class:`RawBars`, vectorised.

Row numbering, used in every message, finding and audit row: **row N is the N-th line after the
header** (the first data line is row 1; a file without a header starts at row 1 too). Blank lines
are skipped but keep their number, so row N is physical line N + 1 of a file with a one-line
header. Parquet files and DataFrames number their rows 1..n.

CSV dialect detection: the delimiter is the one of ``, ; TAB |`` that splits the first 50 lines
into the most consistent number of fields; the first line is a header when none of its fields is a
number. Column names are matched case- and punctuation-insensitively (``Adj Close`` =
``adj_close``; ``timestamp_utc``, ``datetime``, ``Date`` + ``Time``, ...). A data row with one field
more than the header whose first two fields are a date and a time (as in some vendor exports) is
read as separate date and time columns.

Timestamps: ISO-8601 strings (with or without offset), date and time in separate columns, other
formats pandas can infer (or ``datetime_format``), epoch numbers whose unit (s/ms/us/ns) follows
from their magnitude, and ``YYYYMMDD`` integers. Naive timestamps are local time in
``ReadOptions.timezone``. Text that carries no time of day (``2024-01-02``) makes the file
*date-only* (daily bars): those are stamped later, at the instrument's session close.
"""

import csv
import gzip
import io
import math
import re
import warnings
import zlib
from collections import Counter
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytz

from catalogs.date_order import looks_like_numeric_date
from catalogs.date_order import rewrite_numeric_dates
from grodt.core.errors import ConfigError
from grodt.core.errors import DataValidationError

NAT_NS = int(np.iinfo(np.int64).min)
"""Marker of an unparseable timestamp in :attr:`RawBars.ts` (pandas' NaT value)."""

VALUE_COLUMNS = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS = ("open", "high", "low", "close")
TIMESTAMP_COLUMN = "timestamp"

_DELIMITERS = (",", ";", "\t", "|")
_SNIFF_LINES = 50
_SAMPLE_BYTES = 65536
_NULL_TOKENS = frozenset({"", "nan", "na", "n/a", "null", "none", "-nan"})

_ALIASES: dict[str, frozenset[str]] = {
    "timestamp": frozenset(
        {
            "timestamp",
            "timestamps",
            "timestamputc",
            "ts",
            "tsevent",
            "datetime",
            "datetimeutc",
            "dt",
            "gmttime",
            "localtime",
            "timeutc",
            "utctime",
            "indexlevel0",
        }
    ),
    "date": frozenset({"date", "day", "tradedate", "tradingday", "dtyyyymmdd", "dateutc"}),
    "time": frozenset({"time", "timeofday"}),
    "open": frozenset({"open", "o", "openprice", "first"}),
    "high": frozenset({"high", "h", "highprice", "max"}),
    "low": frozenset({"low", "l", "lowprice", "min"}),
    "close": frozenset({"close", "c", "closeprice", "last", "lastprice", "price"}),
    "adj_close": frozenset({"adjclose", "adjustedclose", "adjcloseprice", "adj"}),
    "volume": frozenset({"volume", "vol", "v", "qty", "quantity", "totalvolume", "tickvolume"}),
}
_ROLE_OF_NAME = {name: role for role, names in _ALIASES.items() for name in names}

_DATE_RE = re.compile(r"^\d{4}-\d{1,2}-\d{1,2}$|^\d{8}$|^\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}$")
_TIME_RE = re.compile(r"^\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?$|^\d{4}(\d{2})?$")
_NUMBER_RE = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")
_OFFSET_RE = r"(Z|[+-]\d{2}:?\d{2})$"


@dataclass(frozen=True)
class ReadOptions:
    """How to read bar files.

    Attributes
    ----------
    timezone : str
        IANA zone of naive timestamps (default UTC). Epoch numbers and strings with an offset are
        absolute and ignore it.
    date_format : str | None
        strftime format of the timestamp text (``%d/%m/%Y``, ``%d/%m/%Y %H:%M``; with separate
        date and time columns, of ``<date> <time>``) when the formats read by default do not fit.
    dayfirst : bool | None
        Order of numeric dates such as ``02/01/2024``: True day-first, False month-first, None
        detect it from the whole column (an ambiguous column is then an error asking for it;
        see :mod:`catalogs.date_order`).
    delimiter : str | None
        CSV delimiter; None detects it.
    default_volume : float | None
        Volume for files without a volume column; None makes a missing volume column an error.
    """

    timezone: str = "UTC"
    date_format: str | None = None
    dayfirst: bool | None = None
    delimiter: str | None = None
    default_volume: float | None = None

    def __post_init__(self) -> None:
        if self.date_format is not None:
            try:
                pd.to_datetime(pd.Series(["2024-01-02"]), format=self.date_format, errors="coerce")
            except ValueError as e:
                raise ConfigError(f"date_format {self.date_format!r}: {e}") from None
        if self.default_volume is not None and not (
            math.isfinite(self.default_volume) and self.default_volume >= 0
        ):
            raise ConfigError(
                f"default_volume must be a finite number >= 0, was {self.default_volume}"
            )
        if self.delimiter is not None and len(self.delimiter) != 1:
            raise ConfigError(f"delimiter must be one character, was {self.delimiter!r}")


@dataclass
class RawBars:
    """Parsed, not yet validated bars of one or more files, in file order.

    Attributes
    ----------
    sources : list[str]
        The files (or frame names); ``file_index`` points into it.
    file_index : np.ndarray
        int32, shape (n,).
    rows : np.ndarray
        int64, shape (n,): the 1-based data row within its file (see module docstring).
    ts : np.ndarray
        int64 ns, shape (n,): UTC instants; for date-only data the date at 00:00 UTC; ``NAT_NS``
        where the timestamp could not be parsed.
    date_only : bool
        The timestamps carry no time of day (daily bars).
    values : dict[str, np.ndarray]
        float64 arrays, shape (n,), for ``open high low close volume`` and, if present,
        ``adj_close``; NaN where missing or unparseable.
    problems : pd.DataFrame
        Parse problems: ``pos`` (int, index into the arrays), ``column`` (str or None for a
        malformed row), ``value`` (the text), ``detail``.
    default_label : {"open", "close"}
        What intraday timestamps mark when the caller does not say: ``open`` for files (the
        vendor convention), ``close`` for DataFrames (the Nautilus convention).
    """

    sources: list[str]
    file_index: np.ndarray
    rows: np.ndarray
    ts: np.ndarray
    date_only: bool
    values: dict[str, np.ndarray]
    problems: pd.DataFrame = field(default_factory=lambda: _problems_frame([], [], [], []))
    default_label: Literal["open", "close"] = "open"

    def __len__(self) -> int:
        return int(self.ts.shape[0])


def read_bars_file(path: str | Path, options: ReadOptions | None = None) -> RawBars:
    """Read one CSV (optionally gzip-compressed) or Parquet bar file.

    Raises
    ------
    DataValidationError
        For file-level problems (no timestamp column, unknown layout, ...); row-level problems
        are returned in :attr:`RawBars.problems` for the validation policies to handle.
    """
    options = options or ReadOptions()
    path = Path(path)
    source = str(path)
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
        # Parquet is read from the path (memory-mapped); everything else as bytes.
        data = b"" if magic == _PARQUET_MAGIC else path.read_bytes()
    except FileNotFoundError:
        raise DataValidationError("file not found", source, check="parse") from None
    except IsADirectoryError:
        raise DataValidationError("is a directory, not a bar file", source, check="parse") from None
    except OSError as e:
        raise DataValidationError(f"cannot read the file ({e.strerror})", source) from None
    if magic == _PARQUET_MAGIC:
        return table_to_raw(_read_parquet(path, source), source, options)
    if data[:2] == _GZIP_MAGIC:
        data = _gunzip(data, source)
        if data[:4] == _PARQUET_MAGIC:
            return table_to_raw(_read_parquet(pa.BufferReader(data), source), source, options)
    return _csv_to_raw(_as_utf8_text(data, source), source, options)


_GZIP_MAGIC = b"\x1f\x8b"
_PARQUET_MAGIC = b"PAR1"
_NOT_CSV_MAGIC = {
    b"PK\x03\x04": "a ZIP archive (or an Excel .xlsx workbook): extract it or export it as CSV",
    b"\xd0\xcf\x11\xe0": "an old Excel (.xls) workbook: export it as CSV",
    b"\x89HDF": "an HDF5 file: export it as CSV or Parquet",
    b"SQLi": "an SQLite database: export the table as CSV or Parquet",
}
_BINARY_SHARE = 0.01
"""A sample with more than this share of control bytes (other than tab, CR, LF) is binary."""


def _gunzip(data: bytes, source: str) -> bytes:
    try:
        return gzip.decompress(data)
    except EOFError:
        raise DataValidationError(
            "truncated gzip file: it ends before the compressed data does (an interrupted "
            "download or copy?)",
            source,
            check="parse",
        ) from None
    except (gzip.BadGzipFile, zlib.error) as e:
        raise DataValidationError(f"corrupt gzip file ({e})", source, check="parse") from None


def _read_parquet(file: Path | pa.BufferReader, source: str) -> pa.Table:
    try:
        table = pq.read_table(file)
    except (pa.ArrowException, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DataValidationError(
            f"not a readable Parquet file (it starts like one): {reason}", source, check="parse"
        ) from None
    if table.num_rows == 0:
        raise DataValidationError("the Parquet file has no rows", source, check="parse")
    return table


def _as_utf8_text(data: bytes, source: str) -> bytes:
    """CSV bytes as UTF-8: UTF-16 (with its BOM) is transcoded, binary files are refused."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        try:
            return data.decode("utf-16").encode("utf-8")
        except UnicodeDecodeError as e:
            raise DataValidationError(
                f"starts with a UTF-16 byte order mark but is not UTF-16 text ({e.reason} at "
                f"byte {e.start})",
                source,
                check="parse",
            ) from None
    for magic, what in _NOT_CSV_MAGIC.items():
        if data.startswith(magic):
            raise DataValidationError(f"not a CSV or Parquet file: {what}", source, check="parse")
    sample = data[:65536]
    nul = sample.find(b"\x00")
    control = sum(sample.count(bytes([byte])) for byte in _CONTROL_BYTES)
    if nul >= 0 or control > _BINARY_SHARE * len(sample):
        where = f"a NUL byte at byte {nul}" if nul >= 0 else f"{control} control bytes"
        raise DataValidationError(
            f"not a CSV or Parquet file: binary data ({where} of the first {len(sample):,} bytes)",
            source,
            check="parse",
        )
    return data


_CONTROL_BYTES = bytes([*range(0, 9), 11, 12, *range(14, 32), 127])


def read_bars_files(paths: Sequence[str | Path], options: ReadOptions | None = None) -> RawBars:
    """Read several files of one instrument into one :class:`RawBars` (in the order given)."""
    if not paths:
        raise ValueError("no input files")
    return concat_raw([read_bars_file(path, options) for path in paths])


def frame_to_raw(
    frame: pd.DataFrame,
    source: str = "<frame>",
    options: ReadOptions | None = None,
) -> RawBars:
    """Read a DataFrame: a DatetimeIndex (or a timestamp/date column) and OHLCV columns."""
    table = pa.Table.from_pandas(frame, preserve_index=None)
    raw = table_to_raw(table, source, options or ReadOptions())
    raw.default_label = "close"
    return raw


def concat_raw(parts: list[RawBars]) -> RawBars:
    """Concatenate raw bars of several files; their date-only flags must agree."""
    if len(parts) == 1:
        return parts[0]
    kinds = {part.date_only for part in parts}
    if len(kinds) > 1:
        daily = [part.sources[0] for part in parts if part.date_only]
        raise DataValidationError(
            "mixes date-only (daily) files with intraday files", daily[0], check="parse"
        )
    sources: list[str] = []
    file_index, problems = [], []
    offset = 0
    for part in parts:
        file_index.append(part.file_index + len(sources))
        sources.extend(part.sources)
        shifted = part.problems.copy()
        shifted["pos"] += offset
        problems.append(shifted)
        offset += len(part)
    names = set.intersection(*(set(part.values) for part in parts))
    return RawBars(
        sources=sources,
        file_index=np.concatenate(file_index).astype(np.int32),
        rows=np.concatenate([part.rows for part in parts]),
        ts=np.concatenate([part.ts for part in parts]),
        date_only=parts[0].date_only,
        values={name: np.concatenate([part.values[name] for part in parts]) for name in names},
        problems=pd.concat(problems, ignore_index=True),
        default_label=parts[0].default_label,
    )


# -- CSV ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Layout:
    delimiter: str
    has_header: bool
    names: list[str]
    roles: dict[str, str]  # role -> column name


def _csv_to_raw(data: bytes, source: str, options: ReadOptions) -> RawBars:
    layout = _detect_layout(data, source, options)
    needed = list(dict.fromkeys(layout.roles.values()))
    table, row_numbers, problems = _read_csv_fast(data, layout, needed)
    if table is None or row_numbers is None or problems is None:
        table, row_numbers, problems = _read_csv_slow(data, layout, needed, source)
    return _columns_to_raw(table, layout.roles, row_numbers, problems, source, options)


def _detect_layout(data: bytes, source: str, options: ReadOptions) -> _Layout:
    head = data[:_SAMPLE_BYTES].decode("utf-8-sig", errors="replace")
    lines = head.splitlines()
    if len(data) > _SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line of the sample may be cut
    lines = [line for line in lines if line.strip()][:_SNIFF_LINES]
    if len(data) > _SAMPLE_BYTES and len(lines) < 2:
        raise DataValidationError(
            f"no header and data row within the first {_SAMPLE_BYTES // 1024} KiB: a line is far "
            "too long for a bar file",
            source,
            check="parse",
        )
    if not lines:
        raise DataValidationError("the file is empty", source, check="parse")
    delimiter = options.delimiter or _sniff_delimiter(lines, source)
    first = _split(lines[0], delimiter)
    has_header = not any(_NUMBER_RE.match(value.strip()) for value in first)
    if has_header and len(lines) < 2:
        raise DataValidationError("the file has a header but no data rows", source, check="parse")
    data_fields = _split(lines[1] if has_header else lines[0], delimiter)
    data_fields = [value.strip() for value in data_fields]
    if has_header:
        header = [value.strip() for value in first]
        if len(data_fields) == len(header) + 1 and _is_date_time(data_fields):
            # Header names one date/time column, rows carry the date and the time separately.
            names = ["date", "time", *header[1:]]
        elif len(data_fields) != len(header):
            raw_line = lines[1]
            hint = "; the row has an unclosed quote" if raw_line.count('"') % 2 else ""
            raise DataValidationError(
                f"the header names {len(header)} columns but the row has {len(data_fields)} "
                f"fields{hint}",
                source,
                row=1,
                check="parse",
            )
        else:
            names = header
    else:
        base = ["date", "time"] if _is_date_time(data_fields) else [TIMESTAMP_COLUMN]
        base += list(VALUE_COLUMNS)
        names = base[: len(data_fields)] + [
            f"extra_{i}" for i in range(len(base), len(data_fields))
        ]
    names = _unique(names)
    roles = _assign_roles(names, source)
    return _Layout(delimiter=delimiter, has_header=has_header, names=names, roles=roles)


def _sniff_delimiter(lines: list[str], source: str) -> str:
    best: tuple[float, int, str] | None = None
    for delimiter in _DELIMITERS:
        counts = [len(_split(line, delimiter)) for line in lines]
        data_counts = counts[1:] or counts
        mode, frequency = Counter(data_counts).most_common(1)[0]
        if mode < 2:
            continue
        score = (frequency / len(data_counts), mode, delimiter)
        if best is None or score[:2] > best[:2]:
            best = score
    if best is None:
        unclosed = [number for number, line in enumerate(lines, 1) if line.count('"') % 2]
        hint = f"; line {unclosed[0]} has an unclosed quote" if unclosed else ""
        raise DataValidationError(
            "cannot detect the delimiter (tried , ; TAB |; give it with --delimiter or "
            f"ReadOptions.delimiter){hint}",
            source,
            check="parse",
        )
    return best[2]


def _split(line: str, delimiter: str) -> list[str]:
    return next(csv.reader([line], delimiter=delimiter), [])


def _is_date_time(fields: list[str]) -> bool:
    return (
        len(fields) >= 2
        and bool(_DATE_RE.match(fields[0].strip()))
        and bool(_TIME_RE.match(fields[1].strip()))
    )


def _unique(names: list[str]) -> list[str]:
    seen: Counter[str] = Counter()
    unique = []
    for name in names:
        seen[name] += 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique


def _normalise(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _assign_roles(names: list[str], source: str) -> dict[str, str]:
    roles: dict[str, str] = {}
    for name in names:
        role = _ROLE_OF_NAME.get(_normalise(name))
        if role is None:
            continue
        if role in roles:
            raise DataValidationError(
                f"columns {roles[role]!r} and {name!r} both look like {role!r}; rename one",
                source,
                column=name,
                check="parse",
            )
        roles[role] = name
    if "timestamp" in roles:
        roles.pop("date", None)
        roles.pop("time", None)
    elif "date" in roles:
        roles["timestamp"] = roles.pop("date")  # with roles["time"], if any, joined later
    elif "time" in roles:
        roles["timestamp"] = roles.pop("time")
    else:
        raise DataValidationError(
            f"no timestamp column among {names} (expected e.g. timestamp, datetime, date)",
            source,
            check="parse",
        )
    missing = [column for column in PRICE_COLUMNS if column not in roles]
    if missing:
        raise DataValidationError(
            f"no {', '.join(missing)} column among {names}",
            source,
            column=missing[0],
            check="parse",
        )
    return roles


def _read_csv_fast(
    data: bytes,
    layout: _Layout,
    needed: list[str],
) -> tuple[pa.Table | None, np.ndarray | None, pd.DataFrame | None]:
    """Typed multithreaded pyarrow read; None when row numbers or values need the slow path."""
    invalid_rows = 0

    def on_invalid(row: pcsv.InvalidRow) -> str:
        nonlocal invalid_rows
        invalid_rows += 1
        return "skip"

    timestamp_columns = {layout.roles["timestamp"], layout.roles.get("time")}
    column_types = {
        name: pa.string() if name in timestamp_columns else pa.float64() for name in needed
    }
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(
                column_names=layout.names, skip_rows=1 if layout.has_header else 0
            ),
            parse_options=pcsv.ParseOptions(
                delimiter=layout.delimiter, invalid_row_handler=on_invalid
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=column_types,
                include_columns=needed,
                strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid:
        return None, None, None  # an unparseable number: locate it row by row
    if invalid_rows or table.num_rows != _count_data_lines(data, layout.has_header):
        # pyarrow skipped rows (malformed or blank lines) or a quoted field spans lines: only
        # the row-by-row reader keeps row numbers exact.
        return None, None, None
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return table, rows, _problems_frame([], [], [], [])


def _count_data_lines(data: bytes, has_header: bool) -> int:
    """Lines after the header, not counting trailing line breaks (-1 if not '\\n'-separated)."""
    end = len(data)
    while end and data[end - 1] in b"\r\n":
        end -= 1
    if end == 0:
        return 0
    lines = data.count(b"\n", 0, end) + 1
    if lines == 1 and b"\r" in data[:end]:
        return -1  # old Mac line ends: let the row-by-row reader split them
    return lines - (1 if has_header else 0)


def _read_csv_slow(
    data: bytes,
    layout: _Layout,
    needed: list[str],
    source: str,
) -> tuple[pa.Table, np.ndarray, pd.DataFrame]:
    """Row-by-row read that keeps exact row numbers and reports malformed rows.

    Raises
    ------
    DataValidationError
        When the CSV module cannot split a row (a field longer than its limit, usually from an
        unclosed quote), naming the row.
    """
    text = data.decode("utf-8-sig", errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=layout.delimiter)
    if layout.has_header:
        for record in reader:  # the header is the first non-blank line
            if any(value.strip() for value in record):
                break
    width = len(layout.names)
    wanted = [layout.names.index(name) for name in needed]
    columns: list[list[str | None]] = [[] for _ in needed]
    rows: list[int] = []
    bad_pos: list[int] = []
    bad_text: list[str] = []
    bad_detail: list[str] = []
    row = 0
    try:
        for record in reader:
            row += 1
            if not record or all(not value.strip() for value in record):
                continue
            rows.append(row)
            if len(record) != width:
                bad_pos.append(len(rows) - 1)
                bad_text.append(layout.delimiter.join(record)[:200])
                bad_detail.append(f"malformed row: expected {width} fields, got {len(record)}")
                for values in columns:
                    values.append(None)
                continue
            for values, index in zip(columns, wanted, strict=True):
                values.append(record[index])
    except csv.Error as e:
        raise DataValidationError(
            f"cannot split the row into fields ({e}; an unclosed quote makes the rest of the "
            "file one field)",
            source,
            row=row + 1,
            check="parse",
        ) from None
    table = pa.table(
        {name: pa.array(values, pa.string()) for name, values in zip(needed, columns, strict=True)}
    )
    problems = _problems_frame(bad_pos, [None] * len(bad_pos), bad_text, bad_detail)
    return table, np.asarray(rows, dtype=np.int64), problems


# -- Arrow tables (Parquet, DataFrame, CSV) --------------------------------------------------------


def table_to_raw(table: pa.Table, source: str, options: ReadOptions) -> RawBars:
    """Read an Arrow table (Parquet file or DataFrame) whose columns are matched by name."""
    names = list(table.column_names)
    roles = _assign_roles(names, source)
    rows = np.arange(1, table.num_rows + 1, dtype=np.int64)
    return _columns_to_raw(table, roles, rows, _problems_frame([], [], [], []), source, options)


def _columns_to_raw(
    table: pa.Table,
    roles: dict[str, str],
    rows: np.ndarray,
    problems: pd.DataFrame,
    source: str,
    options: ReadOptions,
) -> RawBars:
    n = table.num_rows
    problem_parts = [problems]
    malformed = np.zeros(n, dtype=bool)
    malformed[problems["pos"].to_numpy(dtype=np.int64)] = True

    values: dict[str, np.ndarray] = {}
    for role in (*VALUE_COLUMNS, "adj_close"):
        name = roles.get(role)
        if name is None:
            continue
        array, bad = _to_float(_readable_column(table, name, source, _NUMBER_TYPES))
        if bad is not None:
            bad &= ~malformed
            text = _texts(table.column(name), bad)
            problem_parts.append(
                _problems_frame(
                    np.flatnonzero(bad),
                    [role] * len(text),
                    text,
                    ["not a number"] * len(text),
                )
            )
        values[role] = array
    if "volume" not in values:
        if options.default_volume is None:
            raise DataValidationError(
                "no volume column (give a default volume to ingest price-only data)",
                source,
                column="volume",
                check="parse",
            )
        values["volume"] = np.full(n, float(options.default_volume))

    ts, date_only, bad_ts, notes = _parse_timestamps(
        _readable_column(table, roles["timestamp"], source, _TIMESTAMP_TYPES),
        _readable_column(table, roles["time"], source, _TEXT_TYPES) if "time" in roles else None,
        options,
        source,
        rows,
    )
    if bad_ts is not None:
        bad_ts &= ~malformed
        bad_positions = np.flatnonzero(bad_ts)
        text = _texts(table.column(roles["timestamp"]), bad_ts)
        problem_parts.append(
            _problems_frame(
                bad_positions,
                [TIMESTAMP_COLUMN] * len(text),
                text,
                [notes.get(pos, "unparseable timestamp") for pos in bad_positions.tolist()],
            )
        )
    ts[malformed] = NAT_NS
    for role in values:
        values[role][malformed] = np.nan
    return RawBars(
        sources=[source],
        file_index=np.zeros(n, dtype=np.int32),
        rows=rows,
        ts=ts,
        date_only=date_only,
        values=values,
        problems=pd.concat(problem_parts, ignore_index=True),
    )


def _is_text(kind: pa.DataType) -> bool:
    return pa.types.is_string(kind) or pa.types.is_large_string(kind)


def _is_number(kind: pa.DataType) -> bool:
    return pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind)


def _is_time(kind: pa.DataType) -> bool:
    return pa.types.is_timestamp(kind) or pa.types.is_date(kind)


_TEXT_TYPES = (_is_text,)
_NUMBER_TYPES = (_is_text, _is_number)
_TIMESTAMP_TYPES = (_is_text, _is_number, _is_time)


def _readable_column(
    table: pa.Table,
    name: str,
    source: str,
    accepted: tuple[Callable[[pa.DataType], bool], ...],
) -> pa.ChunkedArray:
    """A column whose Arrow type can be read (dictionary-encoded columns are decoded).

    Raises
    ------
    DataValidationError
        For a column of another type (binary, list, struct, ...), naming it.
    """
    column = table.column(name)
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    if any(accept(column.type) for accept in accepted):
        return column
    hint = ""
    if pa.types.is_fixed_size_binary(column.type) and column.type.byte_width == 16:
        hint = (
            " (a Nautilus catalog bar file? Its fixed-point prices are read with "
            "catalogs.reader.read_bars_frame, not ingested again)"
        )
    raise DataValidationError(
        f"the Parquet column holds {column.type}, not numbers or text{hint}",
        source,
        column=name,
        check="parse",
    )


def _to_float(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray | None]:
    """float64 values (NaN for nulls) and the mask of text that is not a number (or None)."""
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        series = column.to_pandas()
        stripped = series.str.strip()
        numbers = pd.to_numeric(stripped, errors="coerce").to_numpy(dtype=np.float64)
        is_null_token = (
            stripped.isna().to_numpy() | stripped.str.lower().isin(_NULL_TOKENS).to_numpy()
        )
        bad = np.isnan(numbers) & ~is_null_token
        return numbers, bad if bad.any() else None
    array = pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False)
    return np.array(array, dtype=np.float64, copy=True), None


def _texts(column: pa.ChunkedArray, mask: np.ndarray) -> list[str]:
    picked = column.filter(pa.array(mask))
    return ["" if value is None else str(value) for value in picked.to_pylist()]


def _problems_frame(
    pos: list[int] | np.ndarray,
    column: list[str | None],
    value: list[str],
    detail: list[str] | np.ndarray,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "pos": np.asarray(pos, dtype=np.int64),
            "column": pd.Series(list(column), dtype=object),
            "value": pd.Series(list(value), dtype=object),
            "detail": pd.Series(list(detail), dtype=object),
        }
    )


# -- timestamps ----------------------------------------------------------------------------------


def _parse_timestamps(
    column: pa.ChunkedArray,
    time_column: pa.ChunkedArray | None,
    options: ReadOptions,
    source: str,
    rows: np.ndarray,
) -> tuple[np.ndarray, bool, np.ndarray | None, dict[int, str]]:
    """Parse a timestamp column (or date + time columns) to int64 ns UTC.

    ``rows`` (int64, shape (n,)) are the data rows of the values, for messages.

    Returns
    -------
    ts : np.ndarray
        int64 ns, shape (n,), NAT_NS where unparseable.
    date_only : bool
    bad : np.ndarray | None
        bool mask of unparseable values, or None.
    notes : dict[int, str]
        Why some bad values failed (position → text); others are "unparseable timestamp".
    """
    notes: dict[int, str] = {}
    column_type = column.type
    if pa.types.is_timestamp(column_type):
        ts = _nanos(pc.cast(column, pa.timestamp("ns", tz=column_type.tz)))
        if column_type.tz is not None:
            return _finish(ts, False, notes)
        if _all_midnight(ts):
            return _finish(ts, True, notes)  # a naive daily DatetimeIndex
        return _finish(_localise(ts, options.timezone, notes), False, notes)
    if pa.types.is_date(column_type):
        ts = _nanos(pc.cast(pc.cast(column, pa.date32()), pa.timestamp("ns")))
        return _finish(ts, True, notes)
    if pa.types.is_integer(column_type) or pa.types.is_floating(column_type):
        return _finish(*_numeric_timestamps(_float_values(column)), notes)

    text = pc.utf8_trim_whitespace(column.combine_chunks())
    if time_column is not None:
        text = _join_date_time(text, pc.utf8_trim_whitespace(time_column.combine_chunks()))
    first = _first_text(text)
    if first is None:
        return _finish(np.full(len(text), NAT_NS, dtype=np.int64), False, notes)
    if _NUMBER_RE.match(first):
        try:
            numbers = pc.cast(text, pa.float64())
        except pa.ArrowInvalid:
            pass  # some values are not numbers: parse all as text and report those
        else:
            values = np.asarray(numbers.to_numpy(zero_copy_only=False), dtype=np.float64)
            return _finish(*_numeric_timestamps(values), notes)

    aware = re.search(r"\d" + _OFFSET_RE, first) is not None
    if aware:
        offsets = pc.match_substring_regex(text, r"\d" + _OFFSET_RE)
        if not pc.all(pc.or_kleene(offsets, pc.equal(pc.utf8_length(text), 0))).as_py():
            raise DataValidationError(
                "mixes timestamps with and without a UTC offset",
                source,
                column=TIMESTAMP_COLUMN,
                check="parse",
            )
    has_time = bool(pc.any(pc.match_substring(text, ":")).as_py())
    numeric = None
    if options.date_format is None and looks_like_numeric_date(first):
        numeric = rewrite_numeric_dates(text, options.dayfirst, rows, source, TIMESTAMP_COLUMN)
        if numeric is not None:
            text = numeric.text
            notes.update(numeric.notes)
    # Numeric dates were read in one order: pandas' per-value inference must not re-read them.
    ts = _strings_to_nanos(text, options.date_format, utc=aware, infer=numeric is None)
    if aware or not has_time:
        return _finish(ts, not has_time and not aware, notes)
    return _finish(_localise(ts, options.timezone, notes), False, notes)


def _first_text(text: pa.Array) -> str | None:
    for value in text.slice(0, 1000).to_pylist():
        if value:
            return str(value)
    nonempty = text.filter(pc.fill_null(pc.greater(pc.utf8_length(text), 0), False))
    return str(nonempty[0].as_py()) if len(nonempty) else None


def _all_midnight(ts: np.ndarray) -> bool:
    valid = ts[ts != NAT_NS]
    return valid.size > 1 and not np.any(valid % 86_400_000_000_000)


def _finish(
    ts: np.ndarray, date_only: bool, notes: dict[int, str]
) -> tuple[np.ndarray, bool, np.ndarray | None, dict[int, str]]:
    bad = ts == NAT_NS
    return ts, date_only, (bad if bad.any() else None), notes


def _nanos(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Timestamp column → int64 ns, NAT_NS for nulls (filled before numpy sees a float NaN)."""
    integers = pc.fill_null(pc.cast(column, pa.int64()), NAT_NS)
    return np.array(integers.to_numpy(zero_copy_only=False), dtype=np.int64)


def _float_values(column: pa.ChunkedArray) -> np.ndarray:
    return np.asarray(
        pc.cast(column, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )


def _numeric_timestamps(numbers: np.ndarray) -> tuple[np.ndarray, bool]:
    """Epoch numbers (unit from magnitude) or YYYYMMDD integers → (ns, date_only)."""
    finite = np.isfinite(numbers)
    ts = np.full(numbers.shape[0], NAT_NS, dtype=np.int64)
    if not finite.any():
        return ts, False
    good = numbers[finite]
    if np.all((good >= 19000101) & (good <= 21001231) & (good == np.floor(good))):
        text = pd.Series(good.astype(np.int64).astype(str))
        dates = pd.to_datetime(text, format="%Y%m%d", errors="coerce")
        ts[finite] = dates.to_numpy(dtype="datetime64[ns]").view(np.int64)
        return ts, True
    magnitude = float(np.median(np.abs(good)))
    if magnitude < 1e11:
        scale = 1e9  # seconds
    elif magnitude < 1e14:
        scale = 1e6  # milliseconds
    elif magnitude < 1e17:
        scale = 1e3  # microseconds
    else:
        scale = 1.0  # nanoseconds
    if scale == 1.0 or np.all(good == np.floor(good)):
        integral = good.astype(np.int64)
        ts[finite] = integral * np.int64(scale)
    else:
        ts[finite] = np.rint(good * scale).astype(np.int64)
    return ts, False


def _join_date_time(dates: pa.Array, times: pa.Array) -> pa.Array:
    """'YYYYMMDD' or ISO dates and 'HH:MM[:SS]' or 'HHMM[SS]' times → 'YYYY-MM-DD HH:MM:SS'."""
    if pc.all(pc.match_substring_regex(dates, r"^\d{8}$")).as_py():
        dates = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(dates, 0, 4),
            pc.utf8_slice_codeunits(dates, 4, 6),
            pc.utf8_slice_codeunits(dates, 6, 8),
            "-",
        )
    if pc.all(pc.match_substring_regex(times, r"^\d{3,6}$")).as_py():
        padded = pc.utf8_lpad(times, 6, "0") if len(times) else times
        padded = pc.if_else(
            pc.less_equal(pc.utf8_length(times), 4),
            pc.binary_join_element_wise(pc.utf8_lpad(times, 4, "0"), "00", ""),
            padded,
        )
        times = pc.binary_join_element_wise(
            pc.utf8_slice_codeunits(padded, 0, 2),
            pc.utf8_slice_codeunits(padded, 2, 4),
            pc.utf8_slice_codeunits(padded, 4, 6),
            ":",
        )
    return pc.binary_join_element_wise(dates, times, " ")


def _strings_to_nanos(
    text: pa.Array, date_format: str | None, utc: bool, infer: bool = True
) -> np.ndarray:
    """Timestamp text → int64 ns (UTC wall clock for naive text), NAT_NS where unparseable.

    ``infer`` lets pandas guess other formats when ISO-8601 does not fit every value.
    """
    if date_format is None and not utc:
        try:
            return _nanos(pc.cast(text, pa.timestamp("ns")))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # not plain ISO-8601: let pandas try the formats it knows
    series = text.to_pandas()
    if date_format is not None:
        parsed = pd.to_datetime(series, format=date_format, errors="coerce", utc=utc)
    else:
        parsed = pd.to_datetime(series, format="ISO8601", errors="coerce", utc=utc)
        if infer and parsed.isna().any():
            with warnings.catch_warnings():
                # "Could not infer format ... falling back to dateutil": the rows that still
                # fail become parse findings; the warning would only be noise on the console.
                warnings.simplefilter("ignore", UserWarning)
                inferred = pd.to_datetime(series, errors="coerce", utc=utc)
            if inferred.notna().sum() > parsed.notna().sum():
                parsed = inferred
    if utc:
        parsed = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed.to_numpy(dtype="datetime64[ns]").view(np.int64).copy()


def _localise(ts: np.ndarray, timezone: str, notes: dict[int, str]) -> np.ndarray:
    """Naive wall-clock ns in ``timezone`` → UTC ns; DST gaps/ambiguities become NAT_NS."""
    if timezone == "UTC":
        return ts
    index = pd.DatetimeIndex(ts.view("datetime64[ns]"))
    try:
        local = index.tz_localize(timezone, ambiguous="infer", nonexistent="NaT")
        reason = f"nonexistent local time in {timezone} (DST change)"
    except pytz.InvalidTimeError:
        # 'infer' needs sorted, complete data around a fall-back hour; report the rows instead.
        local = index.tz_localize(timezone, ambiguous="NaT", nonexistent="NaT")
        reason = f"ambiguous or nonexistent local time in {timezone} (DST change)"
    failed = np.flatnonzero((ts != NAT_NS) & np.asarray(local.isna()))
    notes.update(dict.fromkeys(failed.tolist(), reason))
    return local.tz_convert("UTC").tz_localize(None).asi8.copy()
