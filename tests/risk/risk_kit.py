"""Test kit: the gate sandbox (:mod:`risk_engine.sandbox`) under the names the tests use."""

from risk_engine.sandbox import MINUTE
from risk_engine.sandbox import START
from risk_engine.sandbox import GateSandbox as RiskHarness
from risk_engine.sandbox import ShellStrategy
from risk_engine.sandbox import bar_type
from risk_engine.sandbox import equity_instrument

__all__ = [
    "MINUTE",
    "START",
    "RiskHarness",
    "ShellStrategy",
    "bar_type",
    "equity_instrument",
]
