"""Market data into a Nautilus ParquetDataCatalog: read, validate, write; samples; fast reads.

Modules (imported on demand, nothing heavy here):

- :mod:`catalogs.ingest`: ``ingest_files``, ``ingest_frame``, ``validate_files``.
- :mod:`catalogs.reader`: ``read_bars_frame``, ``list_bar_types``, ``catalog_summary``.
- :mod:`catalogs.sample`: ``build_sample_catalog`` (S&P 500 / NASDAQ, 20 stocks, synthetic).
- :mod:`catalogs.synthetic`: the regime-switching market and ``load_regime_truth``.
- :mod:`catalogs.specs`: instrument spec YAML (``catalogs/specs/*.yaml``) → Nautilus instruments.
- :mod:`catalogs.validation`: the checks and their ``reject | repair | flag`` policies.
"""
