"""The gold table: features and targets of every bar of a catalog, traced to the raw input.

>>> feature_set = FeatureSet.from_yaml("node_configs/features/default.yaml")
>>> table = build_gold_table("data/catalog", feature_set, "data/gold")
>>> table.path, table.rows, table.reused

One Parquet file per build, ``<out>/<key>/gold.parquet``, beside ``manifest.json`` (what went in).
``key`` hashes this builder's code, the catalog's fingerprint (every data and lineage file's path,
size and mtime), the feature set's version, the targets' definition and horizons, and any regime
files: an unchanged build is read back instead of recomputed.

Columns: ``instrument``, ``bar_type``, ``ts_event`` (UTC bar close), one float64 column per
feature (NaN before its warm-up), ``target_<name>`` per column of
:func:`research.labels.target_table` (targets look forward: never features), and the lineage
``source_sha256``, ``source_file`` (the bronze copy, catalog-relative), ``source_row`` (1-based
data row) of bars ingested from files (null for bars ingested from DataFrames).
"""

import hashlib
import inspect
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from nautilus_trader.model.data import BarType

from catalogs.ingest import LINEAGE_DIR
from catalogs.reader import list_bar_types
from catalogs.reader import read_bars_frame
from research.features.base import FeatureDefinitionError
from research.features.batch import compute_batch
from research.features.spec import FeatureSet

__all__ = [
    "GOLD_FILE",
    "MANIFEST_FILE",
    "GoldTable",
    "TargetFunction",
    "build_gold_table",
    "catalog_fingerprint",
    "label_targets",
    "read_lineage",
]

GOLD_FILE = "gold.parquet"
MANIFEST_FILE = "manifest.json"

TargetFunction = Callable[[pd.Series, tuple[int, ...]], pd.DataFrame]
"""``(close, horizons) -> DataFrame`` indexed like ``close``: the targets of each bar."""


def label_targets(close: pd.Series, horizons: tuple[int, ...]) -> pd.DataFrame:
    """The multi-target table of :func:`research.labels.target_table`."""
    from research.labels import target_table

    return target_table(close, horizons=horizons)


@dataclass(frozen=True)
class GoldTable:
    """A built (or reused) gold table.

    Attributes
    ----------
    path : Path
        ``<out>/<key>/gold.parquet``.
    key : str
        24 hex digits: the cache key.
    rows : int
    bar_types : list[str]
    reused : bool
        True when an earlier build with the same key was found and nothing was computed.
    seconds : float
        Wall time of this call.
    """

    path: Path
    key: str
    rows: int
    bar_types: list[str]
    reused: bool
    seconds: float

    @property
    def manifest(self) -> dict[str, object]:
        return json.loads((self.path.parent / MANIFEST_FILE).read_text())


def catalog_fingerprint(catalog: str | Path) -> str:
    """SHA-256 (16 hex digits) over the relative path, size and mtime (ns) of every file under
    ``<catalog>/data`` and ``<catalog>/_lineage``: changes whenever a commit adds, replaces or
    removes data."""
    root = Path(catalog)
    digest = hashlib.sha256()
    for top in ("data", LINEAGE_DIR):
        base = root / top
        if not base.is_dir():
            continue
        for directory, _dirs, files in sorted(os.walk(base)):
            for name in sorted(files):
                path = Path(directory) / name
                stat = path.stat()
                rel = path.relative_to(root).as_posix()
                digest.update(f"{rel}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def read_lineage(catalog: str | Path, bar_type: str) -> pd.DataFrame | None:
    """The lineage of a bar type's bars (one row per ``ts_event``), or None when none."""
    directory = Path(catalog) / LINEAGE_DIR / bar_type.replace("/", "")
    files = sorted(directory.glob("*.parquet")) if directory.is_dir() else []
    if not files:
        return None
    frame = pd.concat([pd.read_parquet(path) for path in files], ignore_index=True)
    for column in ("source_sha256", "source_file"):
        frame[column] = frame[column].astype(str)
    return frame.drop_duplicates("ts_event", keep="last")


def build_gold_table(
    catalog: str | Path,
    feature_set: FeatureSet,
    out: str | Path,
    bar_types: Sequence[str] | None = None,
    horizons: tuple[int, ...] = (1, 5, 15),
    regime_files: Mapping[str, str | Path] | None = None,
    targets: TargetFunction = label_targets,
    on_progress: Callable[[str, int], None] | None = None,
    force: bool = False,
) -> GoldTable:
    """Features, targets and lineage of every bar of ``bar_types`` into one Parquet table.

    Parameters
    ----------
    catalog : str | Path
    feature_set : FeatureSet
    out : str | Path
        Directory of gold tables; this build lands in ``<out>/<key>/``.
    bar_types : Sequence[str] | None
        Bar types to include (default: every bar type of the catalog).
    horizons : tuple[int, ...]
        Target horizons in bars.
    regime_files : Mapping[str, str | Path] | None
        Instrument id → a ``grodt regime infer --out`` Parquet file, for the regime feature;
        instruments not named here read their records from the catalog.
    targets : TargetFunction
        The targets of each bar (default :func:`label_targets`).
    on_progress : callable, optional
        Called with (bar type, rows) after each bar type.
    force : bool
        Recompute even when a build with the same key exists.

    Raises
    ------
    FeatureDefinitionError
        A bar type, a reference bar type or the regime records the set needs are missing.
    """
    started = time.perf_counter()
    catalog = Path(catalog)
    available = list_bar_types(catalog)
    chosen = list(bar_types) if bar_types else available
    missing = [
        name
        for name in [*chosen, *feature_set.references]
        if name.replace("/", "") not in available
    ]
    if missing:
        raise FeatureDefinitionError(f"{catalog}: no bars of {missing} (see `grodt catalog list`)")
    regime_files = {key: Path(value) for key, value in (regime_files or {}).items()}
    key = _cache_key(catalog, feature_set, chosen, horizons, regime_files, targets)
    directory = Path(out) / key
    path = directory / GOLD_FILE
    if path.is_file() and (directory / MANIFEST_FILE).is_file() and not force:
        manifest = json.loads((directory / MANIFEST_FILE).read_text())
        return GoldTable(
            path, key, int(manifest["rows"]), chosen, True, time.perf_counter() - started
        )
    references = {name: read_bars_frame(catalog, name) for name in feature_set.references}
    parts = []
    for bar_type in chosen:
        part = _bar_type_rows(
            catalog, bar_type, feature_set, horizons, references, regime_files, targets
        )
        parts.append(part)
        if on_progress is not None:
            on_progress(bar_type, len(part))
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    manifest = {
        "key": key,
        "catalog": str(catalog.absolute()),
        "catalog_fingerprint": catalog_fingerprint(catalog),
        "feature_set": feature_set.name,
        "feature_set_version": feature_set.version,
        "features": [spec.describe() for spec in feature_set],
        "horizons": list(horizons),
        "targets": f"{targets.__module__}.{targets.__qualname__}",
        "bar_types": chosen,
        "regime_files": {k: str(v) for k, v in regime_files.items()},
        "rows": len(table),
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    _write_atomically(directory, table, manifest)
    return GoldTable(path, key, len(table), chosen, False, time.perf_counter() - started)


def _bar_type_rows(
    catalog: Path,
    bar_type: str,
    feature_set: FeatureSet,
    horizons: tuple[int, ...],
    references: Mapping[str, pd.DataFrame],
    regime_files: Mapping[str, Path],
    targets: TargetFunction,
) -> pd.DataFrame:
    instrument_id = str(BarType.from_str(bar_type).instrument_id)
    bars = read_bars_frame(catalog, bar_type)
    regimes = None
    if feature_set.needs_regime:
        regimes = _regime_records(catalog, instrument_id, regime_files)
    features = compute_batch(bars, feature_set, references, regimes)
    target_frame = targets(bars["close"], horizons)
    target_frame = target_frame.reindex(bars.index)
    target_frame.columns = [f"target_{column}" for column in target_frame.columns]
    frame = pd.concat([features, target_frame], axis=1)
    frame.insert(0, "ts_event", bars.index)
    frame.insert(0, "bar_type", bar_type)
    frame.insert(0, "instrument", instrument_id)
    frame = frame.reset_index(drop=True)
    _attach_lineage(frame, read_lineage(catalog, bar_type))
    return frame


def _attach_lineage(frame: pd.DataFrame, lineage: pd.DataFrame | None) -> None:
    n = len(frame)
    sha = np.full(n, None, dtype=object)
    file = np.full(n, None, dtype=object)
    row = pd.array(np.zeros(n, dtype=np.int64), dtype="Int64")
    row[:] = pd.NA
    if lineage is not None and n:
        ts = pd.DatetimeIndex(frame["ts_event"]).as_unit("ns").asi8
        lineage = lineage.sort_values("ts_event")
        lineage_ts = lineage["ts_event"].to_numpy(dtype=np.int64)
        position = np.clip(np.searchsorted(lineage_ts, ts), 0, len(lineage_ts) - 1)
        found = lineage_ts[position] == ts
        sha[found] = lineage["source_sha256"].to_numpy()[position[found]]
        file[found] = lineage["source_file"].to_numpy()[position[found]]
        row[found] = lineage["source_row"].to_numpy()[position[found]]
    frame["source_sha256"] = sha
    frame["source_file"] = file
    frame["source_row"] = row


def _regime_records(
    catalog: Path, instrument_id: str, regime_files: Mapping[str, Path]
) -> pd.DataFrame:
    if instrument_id in regime_files:
        path = regime_files[instrument_id]
        try:
            return pd.read_parquet(path, columns=["ts_event", "p_bull", "p_bear", "p_sideways"])
        except (OSError, KeyError, ValueError) as e:
            raise FeatureDefinitionError(
                f"{path}: not a `grodt regime infer --out` file (ts_event, p_bull, p_bear, "
                f"p_sideways): {e}"
            ) from None
    from models.regime.catalog_io import read_regime_records

    records = read_regime_records(catalog, instrument_id)
    if not records:
        raise FeatureDefinitionError(
            f"{catalog}: the regime feature needs RegimeProbabilities records of {instrument_id}; "
            f"none in the catalog (`grodt regime infer ... --to-catalog`, or pass a regime file)"
        )
    return pd.DataFrame(
        {
            "ts_event": [record.ts_event for record in records],
            "p_bull": [record.p_bull for record in records],
            "p_bear": [record.p_bear for record in records],
            "p_sideways": [record.p_sideways for record in records],
        }
    )


def _cache_key(
    catalog: Path,
    feature_set: FeatureSet,
    bar_types: list[str],
    horizons: tuple[int, ...],
    regime_files: Mapping[str, Path],
    targets: TargetFunction,
) -> str:
    try:
        target_source = inspect.getsource(inspect.getmodule(targets) or targets)
    except (OSError, TypeError):
        target_source = f"{targets.__module__}.{targets.__qualname__}"
    if targets is label_targets:
        import research.labels

        target_source += inspect.getsource(research.labels)
    import research.features.batch

    # The table's own code: how rows, targets and lineage are assembled.
    builder = inspect.getsource(sys.modules[__name__]) + inspect.getsource(research.features.batch)
    payload = {
        "builder": hashlib.sha256(builder.encode()).hexdigest(),
        "catalog": catalog_fingerprint(catalog),
        "feature_set": feature_set.version,
        "bar_types": bar_types,
        "horizons": list(horizons),
        "targets": hashlib.sha256(target_source.encode()).hexdigest(),
        "regime_files": {k: _file_sha256(v) for k, v in sorted(regime_files.items())},
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as e:
        raise FeatureDefinitionError(f"{path}: cannot read the regime file: {e}") from None


def _write_atomically(directory: Path, table: pd.DataFrame, manifest: dict[str, object]) -> None:
    """Write into a sibling temporary directory, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        table.to_parquet(staging / GOLD_FILE, index=False)
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
