"""grodt: regime-aware multi-strategy trading on NautilusTrader.

The `grodt` package holds the framework glue only: the CLI, settings, record contracts and node
building. Trading logic lives in the top-level packages `strategies`, `actors`, `models`,
`risk_engine`, `catalogs` and `research`.
"""

__version__ = "0.1.0"
