"""Research analytics: pure functions and estimators over prices, returns, positions and records.

Everything here sits low in the layers (``docs/architecture.md``): it may use the floor
(``grodt.core``), catalogs and models, and never a node, the tracking store or the CLI. Running
experiments over nodes (walk-forward over the engine, sweeps) and reading runs back (tearsheets)
live in the roof, under ``grodt/``.
"""
