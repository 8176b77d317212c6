"""Testing kit: real servers, load generators and crafted data for the tests and benchmarks.

Like ``nautilus_trader.test_kit``, it ships with the package (so ``benchmarks/`` and tests
import it the same way) but product code never imports it: ``grodt.test_kit`` is the top layer
of the import-linter layers contract in ``pyproject.toml``, above the CLI.

Modules:

- :mod:`grodt.test_kit.ports` — free loopback ports, waiting for a listener;
- :mod:`grodt.test_kit.pgcluster` — a throw-away PostgreSQL server (``TemporaryPostgres``);
- :mod:`grodt.test_kit.loadgen` — concurrent metric-logging load against a tracking store
  (``run_load``), used by the tracking tests and ``benchmarks/tracking_scale.py``;
- :mod:`grodt.test_kit.redis` — a throw-away Redis server (``TemporaryRedis``), the live
  node's cache database in the restart tests;
- :mod:`grodt.test_kit.tansu` — a Tansu (Kafka-protocol) broker process (``TansuBroker``);
- :mod:`grodt.test_kit.forensics` — a tiny bar catalog and a strategy that records a decision
  for every order it sends (``TracedCross``), used by ``benchmarks/forensics_bridge.py``;
- :mod:`grodt.test_kit.regime` — a Markov-switching price series and a bar catalog holding it.
"""
