"""Every message-bus topic the project publishes on or subscribes to, in one place.

Plain ``msgbus.publish`` topics carry in-process messages (not market data). Nautilus' own topics
that the project listens on are named here too, so a grep for a topic finds its one definition.
"""

__all__ = [
    "KILL_SWITCH_TOPIC",
    "MODEL_CONTROL_TOPIC",
    "NAUTILUS_ALL_DATA",
    "NAUTILUS_BARS",
    "NAUTILUS_ORDER_EVENTS",
    "NAUTILUS_POSITION_EVENTS",
    "NAUTILUS_SHUTDOWN",
    "RISK_TARGETS_TOPIC",
    "TARGET_EXPOSURE_TOPIC",
    "Topics",
    "venue_data_pattern",
]


class Topics:
    """Topics of forensics records.

    The forensics bridge subscribes to ``Topics.FORENSICS_ALL`` and ships records out of the
    process; producers only publish, so a record costs the engine a publish, not an I/O.
    """

    FORENSICS_PREFIX = "grodt.forensics"
    DECISIONS = "grodt.forensics.decisions"
    RISK = "grodt.forensics.risk"
    ALLOCATIONS = "grodt.forensics.allocations"
    REGIME = "grodt.forensics.regime"
    FORENSICS_ALL = "grodt.forensics.*"


KILL_SWITCH_TOPIC = "grodt.control.kill_switch"
"""Operator control: publish ``{"action": "halt" | "reset", "reason": str, "source": str}`` to stop
new risk (only risk-reducing orders pass) or to resume. The live node's kill-switch file/command
and the risk gate's own drawdown/daily-loss switch both speak this topic."""

MODEL_CONTROL_TOPIC = "grodt.control.model"
"""Monitors asking models to act: publish ``{"action": "retrain" | "fallback", "reason": str,
"source": str}``. The regime actor answers ``retrain`` with a refit at the next row and
``fallback`` with the neutral prior until its next fit (``actors.strategy_monitor`` publishes
here when a strategy falls short of its backtest expectation)."""

RISK_TARGETS_TOPIC = "grodt.risk.targets"
"""Topic of ``risk_engine.messages.RiskTargets``, published by the HRP target actor on every
rebalance and read by the risk gate."""

TARGET_EXPOSURE_TOPIC = "grodt.strategies.target_exposure"
"""Each regime-aware strategy publishes its target exposure here on every change (evaluation of
position disruption listens)."""

NAUTILUS_SHUTDOWN = "commands.system.shutdown"
"""Nautilus' shutdown command topic (a ``ShutdownSystem`` command stops a live node)."""

NAUTILUS_ALL_DATA = "data.*"
"""Every market-data message Nautilus dispatches."""

NAUTILUS_BARS = "data.bars.*"
"""Every bar Nautilus dispatches."""

NAUTILUS_ORDER_EVENTS = "events.order.*"
"""Every order event of every strategy."""

NAUTILUS_POSITION_EVENTS = "events.position.*"
"""Every position event of every strategy."""


def venue_data_pattern(venue: str) -> str:
    """Nautilus' market-data topics of one venue (quotes, trades, books; not bars)."""
    return f"data.*.{venue}.*"
