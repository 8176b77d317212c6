"""Node building: YAML node specs → Nautilus BacktestNode / TradingNode, plus run outputs."""
