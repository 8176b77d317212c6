"""Test kit: the gate sandbox (:mod:`risk_engine.sandbox`) under the names the tests use."""

from risk_engine.sandbox import MINUTE
from risk_engine.sandbox import START
from risk_engine.sandbox import GateSandbox as RiskHarness
from risk_engine.sandbox import ShellStrategy
from risk_engine.sandbox import bar_type
from risk_engine.sandbox import equity_instrument

OFF = {
    "max_weight": None,
    "gross_exposure": None,
    "net_exposure": None,
    "trade_risk": None,
    "slippage_allowance": 0.0,  # exact arithmetic in the tests
    "cost_reserve": 0.0,
}
"""Every default limit off: a test turns on the ones it checks."""


def limits(**overrides: object) -> dict:
    """A ``risk:`` section with only ``overrides`` on."""
    return {"limits": {**OFF, **overrides}}


__all__ = [
    "MINUTE",
    "OFF",
    "START",
    "RiskHarness",
    "ShellStrategy",
    "bar_type",
    "equity_instrument",
    "limits",
]
