"""Experiment tracking, model registry, checkpoints (MLflow; SQLite by default, PostgreSQL at
scale). See ``docs/tracking.md``.

Modules (import what you use; MLflow is imported lazily, so ``grodt --help`` stays fast):

- :mod:`grodt.tracking.store` — resolve the store (``GRODT_TRACKING_URI`` /
  ``MLFLOW_TRACKING_URI`` / embedded ``sqlite:///<runs_dir>/mlflow.db``), probe it, open clients;
- :mod:`grodt.tracking.bundle` — run bundles written to the run directory first, ``publish``
  (idempotent upload) and the pending-run scan behind ``grodt tracking sync``;
- :mod:`grodt.tracking.backtest` — what a backtest logs (``track_backtest``);
- :mod:`grodt.tracking.training` — :class:`~grodt.tracking.training.TrainingRun` for training
  commands;
- :mod:`grodt.tracking.registry` — ``register_model``, ``resolve_model_uri("name@alias")``,
  ``load_model``, ``set_alias``, ``prune_model_versions``;
- :mod:`grodt.tracking.modeldir` — ``save_model`` / ``load_model_dir``: a model as an MLflow
  model directory (used by training runs and the registry), with :mod:`grodt.tracking.native`;
- :mod:`grodt.tracking.checkpoints` — ``CheckpointManager`` with ``RetentionPolicy``;
- :mod:`grodt.tracking.stream` / :mod:`grodt.tracking.sqlmetrics` — non-blocking, batching,
  lossless metric logging for many concurrent writers;
- :mod:`grodt.tracking.flatten`, :mod:`grodt.tracking.provenance` — config flattening, git
  state, catalog fingerprints.

The throw-away PostgreSQL server and the concurrent-writer load used by the tests and
``benchmarks/tracking_scale.py`` are test infrastructure: :mod:`grodt.test_kit.pgcluster`,
:mod:`grodt.test_kit.loadgen`.
"""
