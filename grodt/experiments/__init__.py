"""Experiments over nodes: research loops that build and run BacktestNodes.

- :mod:`grodt.experiments.walkforward`: walk-forward over the engine (fit every learning
  component on a train window, run the test window in a BacktestNode, stitch the out-of-sample
  folds; an always-on baseline and buy-and-hold beside it).
- :mod:`grodt.experiments.learnable`: the protocol a learning component implements to be fitted
  per fold; :mod:`grodt.experiments.learners` finds them in a node config.

``research/`` stays pure analytics; this package is the roof that may build nodes and track runs.
"""
