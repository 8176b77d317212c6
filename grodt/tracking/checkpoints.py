"""Checkpoint retention: keep the last K and the best by a metric per model, cap disk use.

A long training job (an RL policy, a walk-forward refit loop) saves checkpoints as it goes;
without retention they fill the disk. :class:`CheckpointManager` owns one model's checkpoint
directory::

    <root>/<model>/step-0000001200/checkpoint.json   # step, metrics, bytes, time
    <root>/<model>/step-0000001200/...               # whatever the writer saved

After every :meth:`CheckpointManager.save` it deletes every checkpoint that is neither among
the ``keep_last`` newest (by step) nor among the ``keep_best`` best by ``metric``; then, if the
directory still exceeds ``max_bytes``, it deletes the oldest remaining ones, never the newest
nor the single best. Saves are atomic (written to a temporary directory, then renamed), so a
crash never leaves a half checkpoint that retention or a resume would trust.
"""

import json
import logging
import math
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any
from typing import Literal

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError

logger = logging.getLogger("grodt.tracking")

META_FILE = "checkpoint.json"
_PREFIX = "step-"
_TMP_PREFIX = ".tmp-"


@dataclass(frozen=True)
class RetentionPolicy:
    """What to keep of one model's checkpoints.

    Attributes
    ----------
    keep_last : int, default 3
        Newest checkpoints (by step) always kept (≥ 1).
    keep_best : int, default 1
        Best checkpoints by ``metric`` kept besides the newest (0 disables).
    metric : str | None
        Metric that ranks checkpoints (e.g. ``"val_loss"``); checkpoints without it (or NaN)
        never count as best.
    mode : {"min", "max"}
        Whether lower or higher ``metric`` is better.
    max_bytes : int | None
        Cap on the directory's size in bytes; ``None``: no cap.
    """

    keep_last: int = 3
    keep_best: int = 1
    metric: str | None = None
    mode: Literal["min", "max"] = "min"
    max_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.keep_last < 1:
            raise ConfigError(f"retention.keep_last: must be at least 1, was {self.keep_last}")
        if self.keep_best < 0:
            raise ConfigError(f"retention.keep_best: must be ≥ 0, was {self.keep_best}")
        if self.mode not in ("min", "max"):
            raise ConfigError(f"retention.mode: must be 'min' or 'max', was {self.mode!r}")
        if self.keep_best and self.metric is None:
            raise ConfigError("retention.metric: required when keep_best > 0")
        if self.max_bytes is not None and self.max_bytes <= 0:
            raise ConfigError(f"retention.max_bytes: must be positive, was {self.max_bytes}")


@dataclass(frozen=True)
class Checkpoint:
    """One saved checkpoint.

    Attributes
    ----------
    step : int
        Training step (or any increasing counter).
    path : Path
        The checkpoint directory.
    metrics : dict[str, float]
        Metrics at this step.
    bytes : int
        Size on disk.
    created : float
        UNIX seconds.
    """

    step: int
    path: Path
    metrics: dict[str, float] = field(default_factory=dict)
    bytes: int = 0
    created: float = 0.0

    def score(self, metric: str | None) -> float | None:
        if metric is None:
            return None
        value = self.metrics.get(metric)
        if value is None or not math.isfinite(value):
            return None
        return float(value)


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


Writer = Callable[[Path], Any]


class CheckpointManager:
    """Saves checkpoints of one model into ``directory`` and applies a :class:`RetentionPolicy`.

    Parameters
    ----------
    directory : Path
        The model's checkpoint directory (created).
    policy : RetentionPolicy
        What to keep.
    """

    def __init__(self, directory: Path, policy: RetentionPolicy | None = None) -> None:
        self.directory = Path(directory)
        self.policy = policy or RetentionPolicy(keep_best=0)
        self.directory.mkdir(parents=True, exist_ok=True)
        for leftover in self.directory.glob(f"{_TMP_PREFIX}*"):
            # An interrupted save: never a valid checkpoint.
            shutil.rmtree(leftover, ignore_errors=True)

    def save(
        self,
        step: int,
        writer: Writer | Any,
        metrics: dict[str, float] | None = None,
    ) -> Checkpoint:
        """Save a checkpoint at ``step`` and prune.

        ``writer`` is either a callable receiving the (empty) checkpoint directory, or a model
        with ``save(path)`` (called with ``<checkpoint>/model``).
        """
        final = self.directory / f"{_PREFIX}{int(step):010d}"
        if final.exists():
            raise GrodtError(f"{final}: a checkpoint for step {step} already exists")
        tmp = self.directory / f"{_TMP_PREFIX}{int(step):010d}-{time.time_ns()}"
        tmp.mkdir(parents=True)
        try:
            if callable(writer):
                writer(tmp)
            elif callable(getattr(writer, "save", None)):
                writer.save(tmp / "model")
            else:
                raise GrodtError(f"cannot checkpoint {type(writer).__name__}: no save(path)")
            meta = {
                "step": int(step),
                "metrics": {k: float(v) for k, v in (metrics or {}).items()},
                "created": time.time(),
            }
            (tmp / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        checkpoint = self._read(final)
        self.prune()
        return checkpoint

    def _read(self, path: Path) -> Checkpoint:
        meta_path = path / META_FILE
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise GrodtError(f"{meta_path}: unreadable checkpoint metadata: {e}") from None
        return Checkpoint(
            step=int(meta["step"]),
            path=path,
            metrics={k: float(v) for k, v in meta.get("metrics", {}).items()},
            bytes=_dir_bytes(path),
            created=float(meta.get("created", 0.0)),
        )

    def checkpoints(self) -> list[Checkpoint]:
        """Every checkpoint, oldest step first (directories without metadata are skipped with
        a warning)."""
        found = []
        for path in sorted(self.directory.glob(f"{_PREFIX}*")):
            if not path.is_dir():
                continue
            try:
                found.append(self._read(path))
            except GrodtError as e:
                logger.warning("%s", e)
        return sorted(found, key=lambda c: c.step)

    def latest(self) -> Checkpoint | None:
        items = self.checkpoints()
        return items[-1] if items else None

    def best(self) -> Checkpoint | None:
        ranked = self._ranked(self.checkpoints())
        return ranked[0] if ranked else None

    def _ranked(self, items: list[Checkpoint]) -> list[Checkpoint]:
        metric = self.policy.metric
        sign = 1.0 if self.policy.mode == "min" else -1.0
        scored = [(score, c) for c in items if (score := c.score(metric)) is not None]
        # Best first; ties: the newer checkpoint ranks first.
        scored.sort(key=lambda pair: (sign * pair[0], -pair[1].step))
        return [c for _, c in scored]

    def disk_usage(self) -> int:
        """Bytes used by the model's checkpoint directory."""
        return _dir_bytes(self.directory)

    def prune(self) -> list[Path]:
        """Apply the policy; returns the deleted checkpoint directories."""
        items = self.checkpoints()
        policy = self.policy
        keep = {c.step for c in items[-policy.keep_last :]}
        best = self._ranked(items)[: policy.keep_best] if policy.keep_best else []
        keep.update(c.step for c in best)
        deleted: list[Path] = []
        for checkpoint in items:
            if checkpoint.step not in keep:
                shutil.rmtree(checkpoint.path)
                deleted.append(checkpoint.path)
        if policy.max_bytes is not None:
            kept = [c for c in items if c.step in keep]
            protected = {kept[-1].step} if kept else set()
            if best:
                protected.add(best[0].step)
            total = sum(c.bytes for c in kept)
            for checkpoint in kept:
                if total <= policy.max_bytes:
                    break
                if checkpoint.step in protected:
                    continue
                shutil.rmtree(checkpoint.path)
                deleted.append(checkpoint.path)
                total -= checkpoint.bytes
            if total > policy.max_bytes:
                logger.warning(
                    "%s: %d bytes of checkpoints exceed max_bytes=%d with only the newest and "
                    "the best left",
                    self.directory,
                    total,
                    policy.max_bytes,
                )
        return deleted
