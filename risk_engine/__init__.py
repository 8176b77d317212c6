"""Portfolio risk engine: a pre-trade gate on every order of every strategy, HRP target weights,
and a kill switch — identical in BacktestNode and TradingNode (see docs/risk.md).

Public API:

- :func:`risk_engine.extension.create_extension` — the ``risk:`` node-config section as a node
  extension (``actors()``, ``install(kernel)``, ``finish(kernel)``);
- :class:`risk_engine.gate.PortfolioRiskGate` — the gate itself (``install`` / ``uninstall``);
- :func:`risk_engine.evaluation.evaluate` — the verdict, a pure function of snapshot, limits, order;
- :class:`risk_engine.kill_switch.KillSwitch` — the kernel's one kill switch (``join`` / ``leave``);
- :func:`risk_engine.config.parse_risk_config` — validate a ``risk:`` section;
- :class:`risk_engine.hrp.HierarchicalRiskParity` — textbook / riskfolio HRP and HERC weights;
- :class:`risk_engine.hrp_actor.HrpTargetActor` — rolling targets published to the gate;
- :func:`risk_engine.audit.audit_run` — check a finished run against its limits at every bar;
- :class:`risk_engine.sandbox.GateSandbox` — a real kernel to probe what the gate does;
- :func:`risk_engine.tags.stop_loss_tag` — announce a plain order's stop for the trade-risk limit.
"""
