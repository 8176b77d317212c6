"""Feature matrices for training: built once per (catalog, feature set), memory-mapped after.

>>> matrix = build_feature_matrix("data/catalog", feature_set, "data/matrices")
>>> matrix.features.shape, matrix.columns           # (n_rows, n_features) float64 memmap
>>> segments = matrix.segments_between("1999-01-01", "2013-01-01")   # training rows

The rows of every chosen bar type are concatenated (bar type by bar type, each sorted by bar
close) into ``<out>/<key>/``::

    features.npy   float64 (n_rows, n_features)   compute_batch values (NaN before warm-up)
    open.npy high.npy low.npy close.npy volume.npy   float64 (n_rows,)
    ts.npy         int64 (n_rows,)                UTC bar close, ns
    manifest.json  key, catalog fingerprint, feature set (name, version, columns, warm-up),
                   bar types with their row ranges [start, stop)

``key`` hashes this module's and the batch code, the catalog's fingerprint
(:func:`research.features.gold.catalog_fingerprint`), the set's version, the bar types and any
regime records: an unchanged build is opened, not recomputed. Arrays are opened with
``np.load(mmap_mode="r")``: processes that train on the same matrix share its pages through the
OS page cache instead of each holding a copy, and opening costs microseconds.
"""

import hashlib
import inspect
import json
import shutil
import sys
import time
import uuid
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.model.data import BarType

from catalogs.reader import list_bar_types
from catalogs.reader import read_bars_frame
from research.features.base import FeatureDefinitionError
from research.features.batch import compute_batch
from research.features.gold import catalog_fingerprint
from research.features.spec import FeatureSet

__all__ = ["BAR_COLUMNS", "FeatureMatrix", "build_feature_matrix", "open_feature_matrix"]

BAR_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")
MANIFEST_FILE = "manifest.json"
FEATURES_FILE = "features.npy"
TS_FILE = "ts.npy"


@dataclass(frozen=True)
class FeatureMatrix:
    """An opened feature matrix (arrays memory-mapped read-only).

    Attributes
    ----------
    path : Path
        ``<out>/<key>``.
    key : str
    columns : tuple[str, ...]
        Feature columns in order (``FeatureSet.columns``).
    features : np.ndarray
        float64 (n_rows, n_features).
    bars : dict[str, np.ndarray]
        :data:`BAR_COLUMNS` → float64 (n_rows,).
    ts : np.ndarray
        int64 (n_rows,), UTC bar closes in ns.
    ranges : dict[str, tuple[int, int]]
        Bar type → its rows ``[start, stop)``.
    warm_up : int
        The feature set's warm-up in bars (its first ``warm_up − 1`` rows per bar type have NaN).
    manifest : dict
    reused : bool
        True when an existing build was opened.
    seconds : float
        Wall time of the build or open.
    """

    path: Path
    key: str
    columns: tuple[str, ...]
    features: np.ndarray
    bars: dict[str, np.ndarray]
    ts: np.ndarray
    ranges: dict[str, tuple[int, int]]
    warm_up: int
    manifest: dict[str, Any]
    reused: bool
    seconds: float

    @property
    def n_rows(self) -> int:
        return int(self.ts.shape[0])

    def segments_between(
        self,
        start: Any = None,
        end: Any = None,
        bar_types: Sequence[str] | None = None,
        skip_warm_up: bool = True,
    ) -> list[tuple[int, int]]:
        """Per bar type, the rows ``(first, last)`` (inclusive) with ``start ≤ ts < end``
        (anything ``pd.Timestamp`` reads, UTC when naive; None: unbounded), after the warm-up
        when ``skip_warm_up``; bar types with fewer than two such rows are left out."""
        lo = None if start is None else _ns(start)
        hi = None if end is None else _ns(end)
        out = []
        for bar_type in bar_types or list(self.ranges):
            if bar_type not in self.ranges:
                raise FeatureDefinitionError(f"{self.path}: no rows of {bar_type!r}")
            first, stop = self.ranges[bar_type]
            if skip_warm_up:
                first += max(self.warm_up - 1, 0)
            ts = self.ts[first:stop]
            a = first + (0 if lo is None else int(np.searchsorted(ts, lo, side="left")))
            b = first + (len(ts) if hi is None else int(np.searchsorted(ts, hi, side="left")))
            if b - a >= 2:
                out.append((a, b - 1))
        return out


def _ns(value: Any) -> int:
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.as_unit("ns").value)


def open_feature_matrix(path: str | Path) -> FeatureMatrix:
    """Open a built matrix directory (``<out>/<key>``) without reading its arrays into memory."""
    started = time.perf_counter()
    path = Path(path)
    try:
        manifest = json.loads((path / MANIFEST_FILE).read_text())
    except FileNotFoundError:
        raise FeatureDefinitionError(f"{path}: not a feature matrix (no {MANIFEST_FILE})") from None
    return _open(path, manifest, reused=True, started=started)


def _open(path: Path, manifest: dict[str, Any], reused: bool, started: float) -> FeatureMatrix:
    def load(name: str) -> np.ndarray:
        return np.load(path / name, mmap_mode="r")

    return FeatureMatrix(
        path=path,
        key=str(manifest["key"]),
        columns=tuple(manifest["columns"]),
        features=load(FEATURES_FILE),
        bars={column: load(f"{column}.npy") for column in BAR_COLUMNS},
        ts=load(TS_FILE),
        ranges={name: (int(a), int(b)) for name, (a, b) in manifest["ranges"].items()},
        warm_up=int(manifest["warm_up"]),
        manifest=manifest,
        reused=reused,
        seconds=time.perf_counter() - started,
    )


def build_feature_matrix(
    catalog: str | Path,
    feature_set: FeatureSet,
    out: str | Path,
    bar_types: Sequence[str] | None = None,
    regimes: Mapping[str, pd.DataFrame] | None = None,
    on_progress: Callable[[str, int], None] | None = None,
    force: bool = False,
) -> FeatureMatrix:
    """Build (or open, when built before) the feature matrix of ``bar_types`` of a catalog.

    Parameters
    ----------
    catalog : str | Path
    feature_set : FeatureSet
    out : str | Path
        Directory of matrices; this one lands in ``<out>/<key>/``.
    bar_types : Sequence[str] | None
        Default: every bar type of the catalog.
    regimes : Mapping[str, pd.DataFrame] | None
        Instrument id → regime records (``ts_event``, ``p_bull``, ``p_bear``, ``p_sideways``),
        for a set with the regime feature.
    on_progress : callable, optional
        Called with (bar type, rows) after each bar type is computed.
    force : bool
        Rebuild even when a build with the same key exists.

    Raises
    ------
    FeatureDefinitionError
        A bar type or reference is not in the catalog, or the set needs regime records that
        were not given.
    """
    started = time.perf_counter()
    catalog = Path(catalog)
    available = list_bar_types(catalog)
    chosen = list(bar_types) if bar_types else available
    missing = [n for n in [*chosen, *feature_set.references] if n.replace("/", "") not in available]
    if missing:
        raise FeatureDefinitionError(f"{catalog}: no bars of {missing} (see `grodt catalog list`)")
    regimes = dict(regimes or {})
    key = _cache_key(catalog, feature_set, chosen, regimes)
    directory = Path(out) / key
    if (directory / MANIFEST_FILE).is_file() and not force:
        return _open(directory, json.loads((directory / MANIFEST_FILE).read_text()), True, started)
    references = {name: read_bars_frame(catalog, name) for name in feature_set.references}
    features, columns_of_bars, stamps, ranges = [], {c: [] for c in BAR_COLUMNS}, [], {}
    row = 0
    for bar_type in chosen:
        bars = read_bars_frame(catalog, bar_type)
        instrument = str(BarType.from_str(bar_type).instrument_id)
        if feature_set.needs_regime and instrument not in regimes:
            raise FeatureDefinitionError(
                f"feature set {feature_set.name!r}: the regime feature needs regime records of "
                f"{instrument} (pass regimes={{{instrument!r}: frame}})"
            )
        frame = compute_batch(bars, feature_set, references, regimes.get(instrument))
        features.append(frame.to_numpy(dtype=np.float64))
        for column in BAR_COLUMNS:
            columns_of_bars[column].append(bars[column].to_numpy(dtype=np.float64))
        stamps.append(pd.DatetimeIndex(bars.index).as_unit("ns").asi8)
        ranges[bar_type] = (row, row + len(bars))
        row += len(bars)
        if on_progress is not None:
            on_progress(bar_type, len(bars))
    n_features = len(feature_set.columns)
    arrays = {
        FEATURES_FILE: np.concatenate(features) if features else np.empty((0, n_features)),
        TS_FILE: np.concatenate(stamps) if stamps else np.empty(0, dtype=np.int64),
        **{
            f"{column}.npy": np.concatenate(values) if values else np.empty(0)
            for column, values in columns_of_bars.items()
        },
    }
    manifest = {
        "key": key,
        "catalog": str(catalog.absolute()),
        "catalog_fingerprint": catalog_fingerprint(catalog),
        "feature_set": feature_set.name,
        "feature_set_version": feature_set.version,
        "columns": list(feature_set.columns),
        "warm_up": feature_set.warm_up,
        "ranges": {name: list(value) for name, value in ranges.items()},
        "rows": row,
        "created": pd.Timestamp.now(tz="UTC").isoformat(),
    }
    _write_atomically(directory, arrays, manifest)
    return _open(directory, manifest, False, started)


def _cache_key(
    catalog: Path,
    feature_set: FeatureSet,
    bar_types: list[str],
    regimes: Mapping[str, pd.DataFrame],
) -> str:
    import research.features.batch

    builder = inspect.getsource(sys.modules[__name__]) + inspect.getsource(research.features.batch)
    regime_digest = {
        name: hashlib.sha256(
            pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        ).hexdigest()
        for name, frame in sorted(regimes.items())
    }
    payload = {
        "builder": hashlib.sha256(builder.encode()).hexdigest(),
        "catalog": catalog_fingerprint(catalog),
        "feature_set": feature_set.version,
        "bar_types": bar_types,
        "regimes": regime_digest,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _write_atomically(
    directory: Path, arrays: Mapping[str, np.ndarray], manifest: dict[str, Any]
) -> None:
    """Write into a sibling temporary directory, then rename it into place."""
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = directory.parent / f".{directory.name}.{uuid.uuid4().hex[:8]}.tmp"
    staging.mkdir()
    try:
        for name, array in arrays.items():
            np.save(staging / name, np.ascontiguousarray(array))
        (staging / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2))
        if directory.exists():
            shutil.rmtree(directory)
        staging.rename(directory)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
