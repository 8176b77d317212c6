"""Experiments over nodes: research loops that build and run BacktestNodes.

- :mod:`grodt.experiments.walkforward`: walk-forward over the engine (fit every learning
  component on a train window, run the test window in a BacktestNode, stitch the out-of-sample
  folds; an always-on baseline and buy-and-hold beside it).
- :mod:`grodt.experiments.learnable`: the protocol a learning component implements to be fitted
  per fold; :mod:`grodt.experiments.learners` finds them in a node config.
- :mod:`grodt.experiments.sweep`: Optuna sweeps over a config's parameters (study in the
  tracking database's place, trials on a local process pool or a Ray cluster, each trial a nested
  MLflow run; the best trial's deflated Sharpe and the sweep's PBO), with
  :mod:`~grodt.experiments.sweep_params`, :mod:`~grodt.experiments.sweep_trial`,
  :mod:`~grodt.experiments.sweep_executors` and :mod:`~grodt.experiments.sweep_storage`.

``research/`` stays pure analytics; this package is the roof that may build nodes and track runs.
"""
