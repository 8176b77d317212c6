"""Ingest bar files or DataFrames into a ParquetDataCatalog: read, validate, write, all or nothing.

>>> from catalogs.ingest import ingest_files
>>> result = ingest_files(["spy_1min.csv"], "catalogs/specs/example_equity.yaml", "data/catalog")
>>> result.bar_type, result.rows_written, result.audit_path

Every input is read and validated before anything is written; a rejected finding raises
:class:`~grodt.core.errors.DataValidationError` naming file, row and column, and the catalog is left
untouched. Writes go through :class:`~catalogs.transaction.CatalogTransaction`.

Lineage: bars ingested from files keep each raw file as it was (bronze, :data:`BRONZE_DIR`, under
its SHA-256) and a table from every bar written to its file and row (:data:`LINEAGE_DIR`), in the
same commit; ``research.features.gold`` carries them into the gold table. DataFrames have no raw
file and get none.
"""

import dataclasses
import datetime as dt
import hashlib
import shutil
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from catalogs.bar_table import build_bar_table
from catalogs.parsing import ReadOptions
from catalogs.parsing import frame_to_raw
from catalogs.parsing import read_bars_files
from catalogs.specs import InstrumentSpec
from catalogs.specs import load_instrument_spec
from catalogs.transaction import AUDIT_DIR
from catalogs.transaction import CatalogTransaction
from catalogs.transaction import bar_directory
from catalogs.transaction import bar_file_name
from catalogs.validation import ValidationConfig
from catalogs.validation import ValidationResult
from catalogs.validation import validate_raw
from grodt.core.errors import DataValidationError


@dataclass(frozen=True)
class IngestResult:
    """What one bar type's ingest wrote.

    Attributes
    ----------
    bar_type : str
        e.g. ``SPY.XNAS-1-MINUTE-LAST-EXTERNAL``.
    instrument_id : str
    rows_in : int
        Rows read (blank lines excluded).
    rows_written : int
    first_ns, last_ns : int | None
        First and last bar-close timestamp written (ns UTC); None when nothing was written.
    findings : pd.DataFrame
        Every finding (columns file, row, column, check, action, detail, value).
    audit : pd.DataFrame
        One row per repair (columns file, row, column, old, new, reason, check).
    files : list[Path]
        Data files written (bars and instrument).
    audit_path : Path | None
        ``<catalog>/_audit/<bar type>/<stamp>.audit.csv`` when there were repairs.
    findings_path : Path | None
        ``<catalog>/_audit/<bar type>/<stamp>.findings.csv`` when there were findings.
    lineage_path : Path | None
        ``<catalog>/_lineage/<bar type>/<bar file name>`` (see :data:`LINEAGE_DIR`) when the bars
        came from files.
    """

    bar_type: str
    instrument_id: str
    rows_in: int
    rows_written: int
    first_ns: int | None
    last_ns: int | None
    findings: pd.DataFrame
    audit: pd.DataFrame
    files: list[Path]
    audit_path: Path | None
    findings_path: Path | None
    lineage_path: Path | None = None


BRONZE_DIR = "_bronze"
"""``<catalog>/_bronze/<sha256>/<file name>``: each raw input file as it was ingested (bronze),
under the SHA-256 of its bytes; a file ingested twice is stored once."""

LINEAGE_DIR = "_lineage"
"""``<catalog>/_lineage/<bar type>/<bar file name>`` (named like the bar file it describes): one
row per bar written from files, columns ``ts_event`` (int64 ns bar close), ``source_sha256``,
``source_file`` (the bronze copy, catalog-relative), ``source_row`` (1-based data row, numbered
as in findings)."""


@dataclass(frozen=True)
class PreparedBars:
    """Validated bars of one instrument, ready to be written."""

    spec: InstrumentSpec
    result: ValidationResult

    @property
    def bar_type(self) -> str:
        return self.spec.bar_type(self.result.bar_spec)


def resolve_spec(spec: InstrumentSpec | str | Path) -> InstrumentSpec:
    """A spec object, or the spec loaded from a YAML path."""
    if isinstance(spec, str | Path):
        return load_instrument_spec(spec)
    return spec


def validate_files(
    paths: Sequence[str | Path],
    spec: InstrumentSpec | str | Path | None = None,
    options: ReadOptions | None = None,
    config: ValidationConfig | None = None,
) -> ValidationResult:
    """Read and validate files of one instrument without writing anything.

    Rejected findings are returned (``result.rejected``), not raised.
    """
    resolved = resolve_spec(spec) if spec is not None else None
    options = options or ReadOptions()
    if options.dayfirst is None and resolved is not None and resolved.dayfirst is not None:
        options = dataclasses.replace(options, dayfirst=resolved.dayfirst)
    raw = read_bars_files(list(paths), options)
    return validate_raw(raw, resolved, config)


def prepare_files(
    paths: Sequence[str | Path],
    spec: InstrumentSpec | str | Path,
    options: ReadOptions | None = None,
    config: ValidationConfig | None = None,
) -> PreparedBars:
    """Read and validate files for writing; raises on rejected or unwritable rows."""
    resolved = resolve_spec(spec)
    result = validate_files(paths, resolved, options, config)
    result.raise_if_unwritable()
    return PreparedBars(resolved, result)


def prepare_frame(
    frame: pd.DataFrame,
    spec: InstrumentSpec | str | Path,
    source: str = "<frame>",
    config: ValidationConfig | None = None,
    options: ReadOptions | None = None,
) -> PreparedBars:
    """Validate a DataFrame for writing (timestamps mark the bar close unless
    ``config.label == "open"``)."""
    resolved = resolve_spec(spec)
    raw = frame_to_raw(frame, source, options)
    result = validate_raw(raw, resolved, config)
    result.raise_if_unwritable()
    return PreparedBars(resolved, result)


def ingest_files(
    paths: Sequence[str | Path],
    spec: InstrumentSpec | str | Path,
    catalog: str | Path,
    options: ReadOptions | None = None,
    config: ValidationConfig | None = None,
    replace: bool = False,
) -> IngestResult:
    """Validate bar files of one instrument and write them to the catalog, all or nothing.

    Parameters
    ----------
    paths : Sequence[str | Path]
        CSV (optionally gzip) or Parquet files, concatenated in this order.
    spec : InstrumentSpec | str | Path
        The instrument spec, or its YAML path.
    catalog : str | Path
        Catalog directory (created if missing).
    options : ReadOptions | None
        Reading options (naive timestamps are UTC unless ``options.timezone`` says otherwise).
    config : ValidationConfig | None
        Policies and timestamp labelling (default: vendor bars labelled by their open).
    replace : bool
        Remove the bar type's existing files in the same commit; otherwise new data must not
        overlap existing data.

    Raises
    ------
    DataValidationError
        A rejected finding, or a flagged row Nautilus cannot store (the catalog is untouched).
    CatalogConflictError
        The new bars overlap existing ones (the catalog is untouched).
    """
    prepared = prepare_files(paths, spec, options, config)
    return write_prepared(catalog, [prepared], replace=replace)[0]


def ingest_frame(
    frame: pd.DataFrame,
    spec: InstrumentSpec | str | Path,
    catalog: str | Path,
    source: str = "<frame>",
    config: ValidationConfig | None = None,
    replace: bool = False,
) -> IngestResult:
    """Validate a DataFrame of bars and write it (see :func:`ingest_files`).

    The frame has a DatetimeIndex (or a timestamp/date column) and open/high/low/close/volume
    columns; timestamps mark the bar close unless ``config.label == "open"``.
    """
    prepared = prepare_frame(frame, spec, source, config)
    return write_prepared(catalog, [prepared], replace=replace)[0]


def write_prepared(
    catalog: str | Path,
    prepared: Sequence[PreparedBars],
    replace: bool = False,
    extra_tables: dict[str, pa.Table] | None = None,
) -> list[IngestResult]:
    """Write validated bars of one or more instruments (and extra parquet tables) in ONE commit.

    Parameters
    ----------
    catalog : str | Path
    prepared : Sequence[PreparedBars]
    replace : bool
        Replace the existing files of each bar type written.
    extra_tables : dict[str, pa.Table] | None
        Catalog-relative path → table, written in the same commit (e.g. the synthetic truth).
    """
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ") + "-" + uuid.uuid4().hex[:6]
    outputs: list[tuple[PreparedBars, list[str], str | None, str | None, str | None]] = []
    with CatalogTransaction(catalog) as tx:
        for item in prepared:
            result, spec = item.result, item.spec
            bar_type = item.bar_type
            lineage_dir = f"{LINEAGE_DIR}/{bar_type.replace('/', '')}"
            if replace:
                tx.replace_directory(bar_directory(bar_type))
                tx.replace_directory(lineage_dir)
            staged = tx.stage_instrument(spec.to_instrument())
            if result.rows_out:
                table = build_bar_table(
                    bar_type, result.ts, result.values, spec.price_precision, spec.size_precision
                )
                staged.append(tx.stage_bars(bar_type, table, int(result.ts[0]), int(result.ts[-1])))
            audit_rel = findings_rel = None
            audit_dir = f"{AUDIT_DIR}/{bar_type.replace('/', '')}"
            if len(result.audit):
                audit_rel = f"{audit_dir}/{stamp}.audit.csv"
                result.audit.to_csv(tx.stage_path(audit_rel), index=False)
            if len(result.findings):
                findings_rel = f"{audit_dir}/{stamp}.findings.csv"
                result.findings.to_csv(tx.stage_path(findings_rel), index=False)
            lineage_rel = None
            if result.rows_out:
                # Named like the bar file it describes (its first and last bar close).
                name = bar_file_name(int(result.ts[0]), int(result.ts[-1]))
                lineage_rel = _stage_lineage(tx, result, f"{lineage_dir}/{name}")
            outputs.append((item, staged, audit_rel, findings_rel, lineage_rel))
        for rel_path, table in (extra_tables or {}).items():
            tx.stage_table(rel_path, table)
        tx.commit()
    root = Path(catalog).absolute()
    return [
        IngestResult(
            bar_type=item.bar_type,
            instrument_id=item.spec.id,
            rows_in=item.result.rows_in,
            rows_written=item.result.rows_out,
            first_ns=int(item.result.ts[0]) if item.result.rows_out else None,
            last_ns=int(item.result.ts[-1]) if item.result.rows_out else None,
            findings=item.result.findings,
            audit=item.result.audit,
            files=[root / rel for rel in staged],
            audit_path=root / audit_rel if audit_rel else None,
            findings_path=root / findings_rel if findings_rel else None,
            lineage_path=root / lineage_rel if lineage_rel else None,
        )
        for item, staged, audit_rel, findings_rel, lineage_rel in outputs
    ]


def _stage_lineage(tx: CatalogTransaction, result: ValidationResult, rel_path: str) -> str | None:
    """Stage the bronze copy of each input file and the lineage table of the kept rows.

    Returns the lineage table's catalog-relative path, or None when the bars did not come from
    files (a DataFrame has no raw file to keep) or none were kept.
    """
    if result.source_index is None or result.source_rows is None or not result.rows_out:
        return None
    paths = [Path(source) for source in result.sources]
    if not all(path.is_file() for path in paths):
        return None
    digests, bronze = [], []
    for path in paths:
        digest = _sha256(path)
        rel = f"{BRONZE_DIR}/{digest}/{path.name}"
        if not (tx.root / rel).exists():
            shutil.copyfile(path, tx.stage_path(rel))
        digests.append(digest)
        bronze.append(rel)
    index = result.source_index.astype(np.int64)
    table = pa.table(
        {
            "ts_event": pa.array(result.ts, pa.int64()),
            "source_sha256": pa.DictionaryArray.from_arrays(
                pa.array(index, pa.int32()), pa.array(digests)
            ),
            "source_file": pa.DictionaryArray.from_arrays(
                pa.array(index, pa.int32()), pa.array(bronze)
            ),
            "source_row": pa.array(result.source_rows, pa.int64()),
        }
    )
    return tx.stage_table(rel_path, table)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = [
    "BRONZE_DIR",
    "LINEAGE_DIR",
    "DataValidationError",
    "IngestResult",
    "PreparedBars",
    "ingest_files",
    "ingest_frame",
    "prepare_files",
    "prepare_frame",
    "validate_files",
    "write_prepared",
]
