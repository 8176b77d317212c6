"""The GIL switch interval of a backtest's event loop (grodt.nodes.backtest): lowered for the
run, so that a helper thread (the forensics worker) holds the GIL for at most that long when
the engine thread wants it back, and restored afterwards, also when the run fails."""

import sys

import pytest

from grodt.nodes.backtest import ENGINE_SWITCH_INTERVAL_S
from grodt.nodes.backtest import engine_switch_interval


def test_the_interval_is_lowered_inside_and_restored_after_even_on_error() -> None:
    before = sys.getswitchinterval()
    assert before > ENGINE_SWITCH_INTERVAL_S  # Python's default, 0.005 s
    with engine_switch_interval():
        assert sys.getswitchinterval() == pytest.approx(ENGINE_SWITCH_INTERVAL_S)
    assert sys.getswitchinterval() == before
    with pytest.raises(RuntimeError), engine_switch_interval():
        raise RuntimeError("the run failed")
    assert sys.getswitchinterval() == before


def test_a_lower_interval_set_by_the_caller_is_kept() -> None:
    before = sys.getswitchinterval()
    try:
        sys.setswitchinterval(ENGINE_SWITCH_INTERVAL_S / 5)
        lower = sys.getswitchinterval()  # Python keeps whole microseconds
        assert lower < ENGINE_SWITCH_INTERVAL_S
        with engine_switch_interval():
            assert sys.getswitchinterval() == lower
        assert sys.getswitchinterval() == lower
    finally:
        sys.setswitchinterval(before)
