"""The GIL switch interval and the frozen heap of a backtest's event loop
(grodt.nodes.backtest): the interval lowered for the run, so that a helper thread (the forensics
worker) holds the GIL for at most that long when the engine thread wants it back, and the heap
frozen for it; both restored afterwards, also when the run fails."""

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


def test_the_heap_is_frozen_for_the_loop_and_thawed_after_even_on_error() -> None:
    """frozen_heap: the objects that exist when the loop starts are out of the collector's
    walks during it (gc.freeze), and back after it, also when the run fails."""
    import gc

    from grodt.nodes.backtest import frozen_heap

    assert gc.get_freeze_count() == 0
    with frozen_heap():
        assert gc.get_freeze_count() > 1000
    assert gc.get_freeze_count() == 0
    with pytest.raises(RuntimeError), frozen_heap():
        raise RuntimeError("the run failed")
    assert gc.get_freeze_count() == 0
    gc.freeze()  # a caller that froze it itself keeps its freeze
    try:
        count = gc.get_freeze_count()
        with frozen_heap():
            assert gc.get_freeze_count() == count
        assert gc.get_freeze_count() == count
    finally:
        gc.unfreeze()
