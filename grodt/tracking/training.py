"""Track a training command: params, step metrics, artifacts and registered models.

Training code wraps its work in a :class:`TrainingRun` (``grodt regime fit`` does; the regime
actor's refits write model files)::

    with TrainingRun("regime_hmm", params={"n_states": 3, "features": [...]}) as run:
        for epoch in range(n):
            ...
            run.log_metrics({"loss": loss, "val_ll": val_ll}, step=epoch)   # ~µs, non-blocking
        run.log_summary({"val_ll": best})
        run.register_model(model, "regime_hmm", aliases=["champion"])

The run writes a bundle into its run directory as it goes (``tracking/bundle.json``,
``tracking/metrics.jsonl``, ``models/<name>/``) and, when the store is reachable at start,
streams step metrics to a live MLflow run (:class:`~grodt.tracking.stream.MetricStream`) so the
UI shows training progress. On exit it finalises the live run (or, if the store was down or
went down, leaves the bundle pending with a warning; ``grodt tracking sync RUN_DIR`` uploads
it later, model registration included). An exception inside the block marks the run FAILED
and is re-raised.
"""

import logging
import shutil
import sys
from pathlib import Path
from types import TracebackType
from typing import Any
from typing import TextIO

from grodt.core.settings import get_settings
from grodt.tracking.bundle import ArtifactEntry
from grodt.tracking.bundle import ModelEntry
from grodt.tracking.bundle import PublishResult
from grodt.tracking.bundle import RunBundle
from grodt.tracking.bundle import now_ms
from grodt.tracking.bundle import open_series
from grodt.tracking.bundle import path_bytes
from grodt.tracking.bundle import publish
from grodt.tracking.bundle import series_lines
from grodt.tracking.bundle import write_bundle
from grodt.tracking.flatten import flatten_metrics
from grodt.tracking.flatten import flatten_params
from grodt.tracking.flatten import sanitise_key
from grodt.tracking.modeldir import save_model
from grodt.tracking.provenance import current_user
from grodt.tracking.provenance import git_state
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import ensure_experiment
from grodt.tracking.store import open_client
from grodt.tracking.store import probe
from grodt.tracking.store import quiet_mlflow
from grodt.tracking.store import resolve_store
from grodt.tracking.stream import MetricStream
from grodt.tracking.stream import open_metric_stream

logger = logging.getLogger("grodt.tracking")

_AUTO = "auto"


def new_training_dir(name: str) -> Path:
    """``<runs_dir>/training/<name>/<UTC timestamp>-<random>``."""
    from grodt.nodes.run_files import new_run_dir

    return new_run_dir(Path(get_settings().runs_dir) / "training", name)


class TrainingRun:
    """A tracked training run (see the module docstring).

    Parameters
    ----------
    name : str
        What is trained (``regime_hmm``); the default experiment is ``train/<name>``.
    params : dict, optional
        Hyperparameters and data selection; nested mappings are flattened.
    experiment : str, optional
        MLflow experiment name.
    run_dir : Path, optional
        Where the bundle and models go (default: :func:`new_training_dir`).
    store : TrackingStore | None | "auto"
        ``"auto"``: the configured store; ``None``: bundle only (sync later).
    stream : bool, default True
        Stream step metrics to a live MLflow run while training.
    tags : dict[str, str], optional
        Extra MLflow run tags.
    """

    def __init__(
        self,
        name: str,
        params: dict[str, Any] | None = None,
        experiment: str | None = None,
        run_dir: Path | None = None,
        store: TrackingStore | str | None = _AUTO,
        stream: bool = True,
        tags: dict[str, str] | None = None,
    ) -> None:
        self.name = name
        self.run_dir = Path(run_dir) if run_dir is not None else new_training_dir(name)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.store: TrackingStore | None = resolve_store() if store == _AUTO else store  # type: ignore[assignment]
        self._stream_enabled = stream
        git = git_state()
        base_tags = {
            "grodt.kind": "training",
            "grodt.model": name,
            "grodt.run_dir": str(self.run_dir.resolve()),
            "mlflow.source.type": "LOCAL",
            "mlflow.source.name": " ".join(Path(sys.argv[0]).name.split() + sys.argv[1:])[:500],
            "mlflow.user": current_user(),
        }
        if git.commit:
            base_tags["mlflow.source.git.commit"] = git.commit
        if git.branch:
            base_tags["mlflow.source.git.branch"] = git.branch
        self.bundle = RunBundle(
            kind="training",
            experiment=experiment or f"train/{name}",
            run_name=f"{name}-{self.run_dir.name}",
            start_ms=now_ms(),
            status="RUNNING",
            params={
                **flatten_params(params or {}),
                "git.commit": git.commit or "unknown",
                "git.dirty": "true" if git.dirty else "false",
            },
            tags={**base_tags, **(tags or {})},
        )
        if git.dirty and git.diff:
            diff = self.run_dir / "tracking" / "git.diff"
            diff.parent.mkdir(parents=True, exist_ok=True)
            diff.write_text(git.diff, encoding="utf-8")
            self.bundle.artifacts.append(
                ArtifactEntry(path="tracking/git.diff", artifact_path="provenance"),
            )
        self._stream: MetricStream | None = None
        self._series: TextIO | None = None
        self._live_run_id: str | None = None
        self._live_experiment_id: str | None = None
        self._step = 0
        self.result: PublishResult | None = None

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> "TrainingRun":
        write_bundle(self.run_dir, self.bundle)
        self._series = open_series(self.run_dir)
        if self.store is not None and self._stream_enabled:
            self._start_live()
        return self

    def _start_live(self) -> None:
        assert self.store is not None
        reason = probe(self.store)
        if reason is not None:
            logger.warning(
                "tracking store %s is unreachable (%s): training metrics go to %s only; "
                "`grodt tracking sync %s` uploads them later",
                self.store.display_uri,
                reason,
                self.run_dir,
                self.run_dir,
            )
            return
        from grodt.tracking.bundle import TAG_BUNDLE_ID

        try:
            with quiet_mlflow():
                client = open_client(self.store)
                experiment_id = ensure_experiment(client, self.store, self.bundle.experiment)
                run = client.create_run(
                    experiment_id,
                    start_time=self.bundle.start_ms,
                    tags={TAG_BUNDLE_ID: self.bundle.bundle_id, **self.bundle.tags},
                    run_name=self.bundle.run_name,
                )
        except Exception as e:  # store went away between probe and create: bundle only
            logger.warning(
                "could not start a live run on %s (%s: %s); metrics go to %s only",
                self.store.display_uri,
                type(e).__name__,
                e,
                self.run_dir,
            )
            return
        self._live_run_id = run.info.run_id
        self._live_experiment_id = experiment_id
        self._stream = open_metric_stream(self.store, run.info.run_id)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        status = "FINISHED" if exc_type is None else "FAILED"
        if exc_type is KeyboardInterrupt:
            status = "KILLED"
        self.finish(status)

    def finish(self, status: str = "FINISHED") -> PublishResult | None:
        """End the run: write the final bundle and publish it (idempotent)."""
        if self.bundle.status != "RUNNING":
            return self.result
        self.bundle = self.bundle.model_copy(update={"status": status, "end_ms": now_ms()})
        write_bundle(self.run_dir, self.bundle)
        if self._series is not None:
            self._series.close()
            self._series = None
        live = None
        if self._stream is not None:
            stats = self._stream.close(timeout=300.0)
            if stats.lost == 0:
                live = self._live_run_id
            else:
                logger.warning(
                    "%d streamed metrics were not committed (%s); the run will be re-uploaded "
                    "from %s",
                    stats.lost,
                    stats.last_error,
                    self.run_dir,
                )
        if self.store is not None:
            self.result = publish(self.run_dir, self.store, live_run_id=live)
        return self.result

    # -- logging ----------------------------------------------------------------------------

    def log_params(self, params: dict[str, Any]) -> None:
        """Add params (nested mappings flattened); logged when the run finishes."""
        self.bundle.params.update(flatten_params(params))
        write_bundle(self.run_dir, self.bundle)

    def log_metrics(self, values: dict[str, float], step: int | None = None) -> None:
        """Step metrics: appended to ``metrics.jsonl`` and streamed to the live run."""
        step = self._step if step is None else int(step)
        self._step = step + 1
        timestamp = now_ms()
        rows = [(sanitise_key(k), float(v), step, timestamp) for k, v in values.items()]
        if self._series is None:
            self._series = open_series(self.run_dir)
        self._series.write(series_lines(rows))
        if self._stream is not None:
            for key, value, row_step, ts in rows:
                self._stream.log(key, value, row_step, ts)

    def log_summary(self, values: dict[str, Any]) -> None:
        """Final metrics of the run (nested mappings flattened: ``val.loss``)."""
        self.bundle.metrics.update(flatten_metrics(values))
        write_bundle(self.run_dir, self.bundle)

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Upload a file or directory with the run; files outside the run directory are copied
        into ``<run_dir>/artifacts/`` first, so the bundle stays self-contained."""
        source = Path(path).resolve()
        try:
            relative = source.relative_to(self.run_dir.resolve())
        except ValueError:
            target = self.run_dir / "artifacts" / source.name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, dirs_exist_ok=True)
            else:
                shutil.copy2(source, target)
            relative = target.relative_to(self.run_dir)
        self.bundle.artifacts.append(
            ArtifactEntry(
                path=relative.as_posix(),
                artifact_path=artifact_path,
                bytes=path_bytes(self.run_dir / relative),
            ),
        )
        write_bundle(self.run_dir, self.bundle)

    def register_model(
        self,
        model: Any,
        name: str,
        aliases: list[str] | tuple[str, ...] = (),
        filename: str = "model",
        predict_method: str | None = None,
        description: str = "",
        tags: dict[str, str] | None = None,
    ) -> Path:
        """Save ``model`` into ``<run_dir>/models/<name>/`` and register it when the run is
        published (new version of ``name``, ``aliases`` moved to it). Returns the saved MLflow
        model directory (loadable offline with :func:`grodt.tracking.modeldir.load_model_dir`)."""
        target = self.run_dir / "models" / name
        if target.exists():
            shutil.rmtree(target)
        meta = save_model(model, target, filename=filename, predict_method=predict_method)
        version_tags = {"grodt.class": meta.cls, **(tags or {})}
        if meta.model_version:
            version_tags["grodt.model_version"] = meta.model_version
        self.bundle.models = [m for m in self.bundle.models if m.name != name]
        self.bundle.models.append(
            ModelEntry(
                name=name,
                path=target.relative_to(self.run_dir).as_posix(),
                aliases=list(aliases),
                tags=version_tags,
                description=description,
            ),
        )
        write_bundle(self.run_dir, self.bundle)
        return target

    @property
    def run_id(self) -> str | None:
        """The MLflow run id (live, or once published)."""
        if self.result is not None and self.result.run_id:
            return self.result.run_id
        return self._live_run_id
