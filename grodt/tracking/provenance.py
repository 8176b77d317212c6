"""What a run was made of: the code (git commit, dirty flag, diff) and the catalog data.

The catalog fingerprint identifies the exact Parquet files a backtest read, without reading
their data: for each file its path relative to the catalog, its size, and a SHA-256 of its
Parquet footer (row groups, row counts, column statistics, offsets). Any rewrite of the data
changes the footer; copying the catalog elsewhere or touching files does not, so the same data
on two machines fingerprints the same. ``mode="content"`` hashes whole files instead (slower,
for audits).

Files are selected from the node spec: the bar types (or custom data classes / instrument ids)
of every ``data`` entry, restricted to files whose time range (from the Nautilus file name)
overlaps the run's ``start``/``end``, plus the definitions of the instruments involved.
"""

import getpass
import hashlib
import json
import logging
import os
import subprocess
from dataclasses import asdict
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Literal

import pandas as pd

from grodt.core.errors import GrodtError
from node_configs.schema import BacktestNodeSpec

logger = logging.getLogger("grodt.tracking")

MAX_DIFF_BYTES = 2_000_000
_FOOTER_TAIL = 8  # int32 footer length + b"PAR1"


@dataclass(frozen=True)
class GitState:
    """The checkout a run was made from.

    Attributes
    ----------
    commit : str | None
        ``HEAD`` commit hash (``None`` outside a git checkout).
    branch : str | None
        Current branch (``None`` when detached or unknown).
    dirty : bool
        True when tracked files differ from ``HEAD``.
    diff : str
        ``git diff HEAD`` of tracked files when dirty (capped at 2 MB), else "".
    """

    commit: str | None
    branch: str | None
    dirty: bool
    diff: str = ""


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=20,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        logger.debug("git %s failed in %s: %s", args, cwd, e)
        return None
    return result.stdout if result.returncode == 0 else None


def current_user() -> str:
    """The OS user name (MLflow's ``mlflow.user`` tag)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def git_state(path: Path | None = None) -> GitState:
    """The git state of the checkout containing ``path`` (default: the grodt package)."""
    cwd = Path(path) if path is not None else Path(__file__).resolve().parent
    if cwd.is_file():
        cwd = cwd.parent
    commit = _git(["rev-parse", "HEAD"], cwd)
    if commit is None:
        return GitState(commit=None, branch=None, dirty=False)
    branch = (_git(["rev-parse", "--abbrev-ref", "HEAD"], cwd) or "").strip() or None
    status = _git(["status", "--porcelain", "--untracked-files=no"], cwd) or ""
    dirty = bool(status.strip())
    diff = ""
    if dirty:
        diff = _git(["diff", "HEAD", "--no-color"], cwd) or ""
        if len(diff) > MAX_DIFF_BYTES:
            diff = diff[:MAX_DIFF_BYTES] + "\n# … diff truncated at 2 MB\n"
    return GitState(
        commit=commit.strip(),
        branch=None if branch == "HEAD" else branch,
        dirty=dirty,
        diff=diff,
    )


@dataclass(frozen=True)
class FileFingerprint:
    """One catalog file: path relative to the catalog root, size in bytes, SHA-256 hex."""

    path: str
    bytes: int
    sha256: str


@dataclass(frozen=True)
class CatalogFingerprint:
    """The fingerprint of the catalog data a run used.

    Attributes
    ----------
    digest : str
        SHA-256 (hex) over the sorted file fingerprints.
    mode : {"footer", "content"}
        What was hashed per file.
    files : list[FileFingerprint]
        The files, sorted by path.
    """

    digest: str
    mode: str
    files: list[FileFingerprint] = field(default_factory=list)

    @property
    def short(self) -> str:
        return self.digest[:16]

    @property
    def total_bytes(self) -> int:
        return sum(f.bytes for f in self.files)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


def _hash_file(path: Path, mode: str) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        if mode == "content":
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
        size = path.stat().st_size
        if size < _FOOTER_TAIL:
            digest.update(handle.read())
            return digest.hexdigest()
        handle.seek(size - _FOOTER_TAIL)
        tail = handle.read(_FOOTER_TAIL)
        footer_length = int.from_bytes(tail[:4], "little")
        if tail[4:] != b"PAR1" or footer_length + _FOOTER_TAIL > size:
            # Not a plain Parquet file: hash it whole rather than guess.
            handle.seek(0)
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
            return digest.hexdigest()
        handle.seek(size - _FOOTER_TAIL - footer_length)
        digest.update(handle.read(footer_length + _FOOTER_TAIL))
    return digest.hexdigest()


def _file_span(path: Path) -> tuple[int, int] | None:
    from nautilus_trader.persistence.catalog.parquet import _parse_filename_timestamps

    try:
        return _parse_filename_timestamps(path.name)
    except (ValueError, IndexError):
        return None


def _to_ns(value: str | None) -> int | None:
    if value is None:
        return None
    stamp = pd.Timestamp(value)
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _data_directories(
    spec: BacktestNodeSpec,
    catalog: Path,
) -> list[tuple[Path, int | None, int | None]]:
    """(directory, start_ns, end_ns) for every data entry of the spec."""
    from nautilus_trader.model.data import BarType
    from nautilus_trader.model.identifiers import InstrumentId
    from nautilus_trader.persistence.catalog.parquet import ParquetDataCatalog
    from nautilus_trader.persistence.funcs import urisafe_identifier

    from node_configs.loader import import_object

    cat = ParquetDataCatalog(str(catalog))
    found: list[tuple[Path, int | None, int | None]] = []
    instruments: set[str] = set()
    for data in spec.data:
        start = _to_ns(data.start or spec.start)
        end = _to_ns(data.end or spec.end)
        try:
            data_cls = import_object(data.data_cls)
        except (ImportError, AttributeError) as e:
            raise GrodtError(
                f"catalog fingerprint: cannot import data_cls {data.data_cls!r}: {e}",
            ) from None
        identifiers: list[str | None] = list(data.bar_types or data.instrument_ids or [None])
        for identifier in identifiers:
            found.append((Path(cat._make_path(data_cls, identifier)), start, end))
        for bar_type in data.bar_types or []:
            instruments.add(str(BarType.from_str(bar_type).instrument_id))
        instruments.update(data.instrument_ids or [])
    data_root = catalog / "data"
    for instrument_id in sorted(instruments):
        safe = urisafe_identifier(str(InstrumentId.from_str(instrument_id)))
        for directory in sorted(data_root.glob(f"*/{safe}")):
            if directory.is_dir() and _is_instrument_dir(directory.parent.name):
                found.append((directory, None, None))
    return found


def _is_instrument_dir(name: str) -> bool:
    from nautilus_trader.model.instruments import Instrument
    from nautilus_trader.persistence.funcs import filename_to_class

    try:
        cls = filename_to_class(name)
    except (KeyError, ValueError):
        return False
    return isinstance(cls, type) and issubclass(cls, Instrument)


def catalog_fingerprint(
    spec: BacktestNodeSpec,
    catalog: Path,
    mode: Literal["footer", "content"] = "footer",
) -> CatalogFingerprint:
    """Fingerprint the catalog files ``spec`` reads (see the module docstring)."""
    catalog = Path(catalog).resolve()
    files: dict[str, FileFingerprint] = {}
    for directory, start, end in _data_directories(spec, catalog):
        if not directory.is_dir():
            continue
        for path in sorted(directory.rglob("*.parquet")):
            span = _file_span(path)
            if span is not None and (
                (end is not None and span[0] > end) or (start is not None and span[1] < start)
            ):
                continue
            relative = path.relative_to(catalog).as_posix()
            if relative in files:
                continue
            files[relative] = FileFingerprint(
                path=relative,
                bytes=os.path.getsize(path),
                sha256=_hash_file(path, mode),
            )
    ordered = [files[key] for key in sorted(files)]
    digest = hashlib.sha256()
    for item in ordered:
        digest.update(f"{item.path}\0{item.bytes}\0{item.sha256}\n".encode())
    return CatalogFingerprint(digest=digest.hexdigest(), mode=mode, files=ordered)
