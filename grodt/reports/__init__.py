"""Reports read back from a finished run: the tearsheet (equity, drawdown, regimes, verdicts)."""
