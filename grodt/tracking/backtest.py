"""Track a finished backtest: build its bundle from the run directory and publish it.

What a backtest logs (all of it also stays in the run directory):

- params: the flattened resolved node config (``strategies.0.config.fast_ema_period``), the
  git commit and dirty flag, the catalog fingerprint, package versions;
- metrics: the run summary (``sharpe``, ``total_return``…; ``benchmark.<figure>`` when the
  config names a benchmark), per strategy
  (``strategy.<id>.sharpe``), extension figures (``ext.risk.denied``…) and the engine's
  throughput; step metrics ``equity``, ``drawdown`` and ``pnl.<strategy_id>`` per day;
- artifacts: ``config.yaml``, ``summary.json``, the reports (fills, orders, positions,
  accounts), ``equity.parquet``, ``equity_daily.csv``, ``tearsheet.html``, ``forensics/``,
  engine logs gzip-compressed (``logs/<file>.gz``, size-capped), the catalog fingerprint and,
  for a dirty checkout, ``git.diff``.
"""

import gzip
import logging
import shutil
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

import grodt
from grodt.tracking.bundle import ArtifactEntry
from grodt.tracking.bundle import PublishResult
from grodt.tracking.bundle import RunBundle
from grodt.tracking.bundle import append_series
from grodt.tracking.bundle import bundle_dir
from grodt.tracking.bundle import now_ms
from grodt.tracking.bundle import path_bytes
from grodt.tracking.bundle import publish
from grodt.tracking.bundle import write_bundle
from grodt.tracking.flatten import flatten_metrics
from grodt.tracking.flatten import flatten_params
from grodt.tracking.flatten import sanitise_key
from grodt.tracking.provenance import catalog_fingerprint
from grodt.tracking.provenance import current_user
from grodt.tracking.provenance import git_state
from grodt.tracking.store import TrackingStore
from node_configs.schema import BacktestNodeSpec

logger = logging.getLogger("grodt.tracking")

MAX_ARTIFACT_BYTES = 512 * 1024 * 1024
"""Default cap on the artifacts uploaded per run; the rest stays in the run directory."""

MAX_SERIES_POINTS = 20_000
_SUMMARY_SKIP = frozenset(
    {"strategies", "extensions", "reports", "run_dir", "name", "start", "end"}
)
# Upload order = priority under the size cap: small essentials first, bulky logs last.
_ARTIFACT_ORDER: tuple[tuple[str, str | None], ...] = (
    ("config.yaml", None),
    ("summary.json", None),
    ("tearsheet.html", None),
    ("equity_daily.csv", None),
    ("tracking/catalog_fingerprint.json", "provenance"),
    ("tracking/git.diff", "provenance"),
    ("equity.parquet", None),
    ("positions.csv", "reports"),
    ("fills.csv", "reports"),
    ("orders.csv", "reports"),
    ("account_*.csv", "reports"),
    ("forensics", None),
    ("tracking/logs", "logs"),
)


@dataclass(frozen=True)
class TrackingOutcome:
    """What tracking did for one run: where the bundle is and how publishing went."""

    bundle: RunBundle
    result: PublishResult | None
    skipped_artifacts: list[str]


def _versions() -> dict[str, str]:
    found = {"grodt.version": grodt.__version__}
    for package in ("nautilus_trader", "mlflow"):
        try:
            found[f"{package}.version"] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def select_artifacts(
    run_dir: Path,
    max_bytes: int = MAX_ARTIFACT_BYTES,
) -> tuple[list[ArtifactEntry], list[str]]:
    """The run directory's artifacts in priority order under ``max_bytes``; also returns the
    paths left out for size."""
    chosen: list[ArtifactEntry] = []
    skipped: list[str] = []
    seen: set[str] = set()
    total = 0
    for pattern, artifact_path in _ARTIFACT_ORDER:
        for path in sorted(run_dir.glob(pattern)):
            relative = path.relative_to(run_dir).as_posix()
            if relative in seen:
                continue
            seen.add(relative)
            size = path_bytes(path)
            if path.is_dir() and size == 0:
                continue
            if total + size > max_bytes:
                skipped.append(f"{relative} ({size / 1e6:,.1f} MB)")
                continue
            total += size
            chosen.append(ArtifactEntry(path=relative, artifact_path=artifact_path, bytes=size))
    return chosen, skipped


def compress_logs(run_dir: Path) -> Path:
    """gzip every engine log file of ``<run_dir>/logs/`` into ``<run_dir>/tracking/logs/``
    (``<name>.gz``; the originals stay): JSON logs shrink about tenfold, and only the compressed
    copies are uploaded. Returns the directory (empty when the run wrote no logs)."""
    target = bundle_dir(run_dir) / "logs"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    source = Path(run_dir) / "logs"
    if source.is_dir():
        for path in sorted(source.iterdir()):
            if path.is_file() and path.stat().st_size > 0:
                with path.open("rb") as raw, gzip.open(target / f"{path.name}.gz", "wb", 1) as out:
                    shutil.copyfileobj(raw, out, 1 << 20)
    return target


def _daily_series(run_dir: Path) -> list[tuple[str, float, int, int]]:
    """Daily equity, drawdown and per-strategy PnL as MLflow step metrics."""
    path = run_dir / "equity.parquet"
    if not path.is_file():
        return []
    frame = pd.read_parquet(path)
    if frame.empty or "equity" not in frame:
        return []
    daily = frame.groupby(frame.index.normalize()).last()
    if len(daily) > MAX_SERIES_POINTS:
        daily = daily.iloc[:: int(np.ceil(len(daily) / MAX_SERIES_POINTS))]
    equity = daily["equity"].astype(float)
    columns: dict[str, pd.Series] = {
        "equity": equity,
        "drawdown": equity / equity.cummax() - 1.0,
    }
    for column in daily.columns:
        if column.startswith("pnl:"):
            columns[sanitise_key(f"pnl.{column.removeprefix('pnl:')}")] = daily[column]
    timestamps = np.maximum(daily.index.asi8 // 1_000_000, 0).tolist()
    rows: list[tuple[str, float, int, int]] = []
    for key, series in columns.items():
        values = series.to_numpy(dtype=float)
        rows.extend(
            (key, float(value), step, int(ts))
            for step, (value, ts) in enumerate(zip(values, timestamps, strict=True))
        )
    return rows


def backtest_metrics(summary: dict[str, Any]) -> dict[str, float]:
    """The MLflow metrics of a run summary (overall, per strategy, extensions, engine)."""
    metrics = flatten_metrics(summary, skip=_SUMMARY_SKIP)
    for strategy_id, stats in (summary.get("strategies") or {}).items():
        metrics.update(flatten_metrics(stats, prefix=f"strategy.{strategy_id}"))
    for name, figures in (summary.get("extensions") or {}).items():
        if isinstance(figures, dict):
            metrics.update(flatten_metrics(figures, prefix=f"ext.{name}"))
    return metrics


def build_backtest_bundle(
    run_dir: Path,
    spec: BacktestNodeSpec,
    document: dict[str, Any],
    summary: dict[str, Any],
    catalog: Path,
    config_path: Path | None = None,
    experiment: str | None = None,
    started_ms: int | None = None,
    max_artifact_bytes: int = MAX_ARTIFACT_BYTES,
) -> tuple[RunBundle, list[str]]:
    """Write ``<run_dir>/tracking/`` for a finished backtest and return its bundle (and the
    artifacts left out for size)."""
    run_dir = Path(run_dir)
    tracking = bundle_dir(run_dir)
    tracking.mkdir(parents=True, exist_ok=True)
    git = git_state(config_path if config_path is not None else None)
    fingerprint = catalog_fingerprint(spec, catalog)
    (tracking / "catalog_fingerprint.json").write_text(fingerprint.to_json(), encoding="utf-8")
    if git.dirty and git.diff:
        (tracking / "git.diff").write_text(git.diff, encoding="utf-8")
    params = flatten_params(document)
    params.update(
        {
            "fill_at": str(summary.get("fill_at", "close")),
            "git.commit": git.commit or "unknown",
            "git.dirty": "true" if git.dirty else "false",
            "catalog.fingerprint": fingerprint.short,
            "catalog.path": str(Path(catalog).resolve()),
            "catalog.files": str(len(fingerprint.files)),
            "catalog.bytes": str(fingerprint.total_bytes),
            **_versions(),
        },
    )
    end = now_ms()
    wall = summary.get("wall_seconds")
    start = started_ms or (end - int(float(wall) * 1000) if isinstance(wall, int | float) else end)
    tags = {
        "grodt.kind": "backtest",
        "grodt.node": spec.name,
        "grodt.run_dir": str(run_dir.resolve()),
        "grodt.catalog_fingerprint": fingerprint.digest,
        "mlflow.source.type": "LOCAL",
        "mlflow.source.name": f"grodt backtest {config_path}" if config_path else "grodt backtest",
        "mlflow.user": current_user(),
    }
    if git.commit:
        tags["mlflow.source.git.commit"] = git.commit
    if git.branch:
        tags["mlflow.source.git.branch"] = git.branch
    if spec.description:
        tags["mlflow.note.content"] = spec.description
    if config_path is not None:
        tags["grodt.config_file"] = str(Path(config_path).resolve())
    if (run_dir / "tearsheet.html").is_file():
        tags["grodt.tearsheet"] = str((run_dir / "tearsheet.html").resolve())
    series_path = tracking / "metrics.jsonl"
    series_path.unlink(missing_ok=True)
    append_series(run_dir, _daily_series(run_dir))
    compress_logs(run_dir)
    artifacts, skipped = select_artifacts(run_dir, max_artifact_bytes)
    if skipped:
        logger.warning(
            "%s: artifacts over the %s MB upload cap stay local only: %s",
            run_dir,
            max_artifact_bytes // 1_000_000,
            ", ".join(skipped),
        )
    bundle = RunBundle(
        kind="backtest",
        experiment=experiment or spec.name,
        run_name=f"{spec.name}-{run_dir.name}",
        start_ms=start,
        end_ms=end,
        status="FINISHED",
        params=params,
        tags=tags,
        metrics=backtest_metrics(summary),
        artifacts=artifacts,
    )
    write_bundle(run_dir, bundle)
    return bundle, skipped


def track_backtest(
    run_dir: Path,
    spec: BacktestNodeSpec,
    document: dict[str, Any],
    summary: dict[str, Any],
    catalog: Path,
    store: TrackingStore | None,
    config_path: Path | None = None,
    experiment: str | None = None,
) -> TrackingOutcome:
    """Bundle a finished backtest and publish it to ``store`` (``None``: bundle only, e.g.
    ``--no-track``; ``grodt tracking sync`` can still publish it later)."""
    bundle, skipped = build_backtest_bundle(
        run_dir,
        spec,
        document,
        summary,
        catalog,
        config_path=config_path,
        experiment=experiment,
    )
    result = publish(run_dir, store) if store is not None else None
    return TrackingOutcome(bundle=bundle, result=result, skipped_artifacts=skipped)
