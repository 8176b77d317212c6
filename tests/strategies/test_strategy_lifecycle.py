"""The position lifecycle alone, without an engine: entries, fills, failures, position events,
trailing, rebalancing and the deferred maintenance, as state transitions."""

import math
from decimal import Decimal

import pytest
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.objects import Quantity

from strategies.lifecycle import LifecycleState
from strategies.lifecycle import OrderFailure
from strategies.lifecycle import PositionLifecycle

ENTRY = ClientOrderId("O-ENTRY")
STOP = ClientOrderId("O-STOP")
TARGET = ClientOrderId("O-TARGET")
EXIT = ClientOrderId("O-EXIT")
OTHER = ClientOrderId("O-OTHER")


def entered(quantity: int = 100, full: float = 150.0, allocation: float = 1.0) -> PositionLifecycle:
    """A lifecycle whose long bracket was just sent (entry pending, stop at 95)."""
    lifecycle = PositionLifecycle()
    lifecycle.entry_submitted(
        entry_id=ENTRY,
        stop_id=STOP,
        target_id=TARGET,
        trace_id="S-001:1:1",
        direction=1,
        quantity=Decimal(quantity),
        full_quantity=full,
        allocation=allocation,
        stop_price=95.0,
    )
    return lifecycle


def opened(**kwargs: float) -> PositionLifecycle:
    """A long position of 100 open at 100, entry filled, idle."""
    lifecycle = entered(**kwargs)
    lifecycle.position_opened(100.0, Decimal(100), 100.0)
    lifecycle.order_done(ENTRY)
    return lifecycle


class Calls:
    """Records the callbacks run_deferred makes."""

    def __init__(self) -> None:
        self.made: list[str] = []

    def run(self, lifecycle: PositionLifecycle, has_position: bool) -> list[str]:
        lifecycle.run_deferred(
            has_position,
            cancel_orders=lambda: self.made.append("cancel"),
            flatten=lambda reason: self.made.append(f"flatten:{reason}"),
            protect=lambda: self.made.append("protect"),
            sync_bracket=lambda: self.made.append("sync"),
        )
        return self.made


def test_a_fresh_lifecycle_is_flat_and_idle():
    lifecycle = PositionLifecycle()
    assert lifecycle.state == LifecycleState()
    assert lifecycle.idle
    assert not lifecycle.is_pending(ENTRY)
    assert math.isnan(lifecycle.state.stop_price)


def test_an_entry_is_pending_until_its_order_is_done():
    lifecycle = entered()
    assert not lifecycle.idle
    assert lifecycle.is_pending(ENTRY)
    assert not lifecycle.is_pending(STOP)
    lifecycle.position_opened(100.0, Decimal(100), 100.25)
    state = lifecycle.state
    assert (state.direction, state.bars_held, state.trail_anchor) == (1, 0, 100.25)
    assert not state.adopted  # our own entry
    lifecycle.order_done(ENTRY)
    assert lifecycle.idle
    assert state.stop_order_id == STOP and state.target_order_id == TARGET


def test_reset_forgets_everything():
    lifecycle = opened()
    lifecycle.defer(flatten="x", cleanup=True)
    lifecycle.reset()
    assert lifecycle.state == LifecycleState()


def test_a_position_opened_without_our_entry_is_adopted():
    lifecycle = PositionLifecycle()
    lifecycle.position_opened(-30.0, Decimal(30), 50.0)
    state = lifecycle.state
    assert (state.direction, state.entry_quantity, state.full_quantity) == (-1, Decimal(30), 30.0)
    assert state.adopted


def test_recovery_adopts_the_position_and_its_bracket():
    lifecycle = PositionLifecycle()
    lifecycle.adopt(1, Decimal(40), 99.0)
    lifecycle.adopt_stop(STOP, 97.5, "S-001:5:2")
    lifecycle.adopt_target(TARGET)
    state = lifecycle.state
    assert state.adopted and state.direction == 1 and state.trail_anchor == 99.0
    assert (state.stop_order_id, state.stop_price, state.entry_trace_id) == (
        STOP,
        97.5,
        "S-001:5:2",
    )
    assert state.target_order_id == TARGET


def test_a_resized_entry_scales_the_rebalance_reference():
    lifecycle = entered(quantity=100, full=150.0)
    assert not lifecycle.entry_resized(OTHER, Decimal(50))
    assert not lifecycle.entry_resized(ENTRY, Decimal(100))  # unchanged
    assert lifecycle.entry_resized(ENTRY, Decimal(40))
    assert lifecycle.state.entry_quantity == Decimal(40)
    assert lifecycle.state.full_quantity == pytest.approx(60.0)


def test_a_failed_entry_leaves_the_strategy_flat():
    lifecycle = entered()
    assert lifecycle.order_failed(ENTRY, has_position=False) is OrderFailure.ENTRY
    state = lifecycle.state
    assert lifecycle.idle and state.direction == 0 and state.stop_order_id is None
    # The bracket's children fail after their parent: nothing more to reset.
    assert lifecycle.order_failed(STOP, has_position=False) is None
    assert lifecycle.order_failed(TARGET, has_position=False) is None


def test_a_failed_exit_re_arms_the_stop_next_bar():
    lifecycle = opened()
    lifecycle.exit_submitted(EXIT)
    assert lifecycle.order_failed(EXIT, has_position=True) is OrderFailure.EXIT
    assert lifecycle.idle
    assert lifecycle.state.deferred and lifecycle.state.protect
    assert Calls().run(lifecycle, has_position=True) == ["protect"]
    assert not lifecycle.state.deferred


def test_a_failed_stop_of_an_open_position_flattens_it_next_bar():
    lifecycle = opened()
    assert lifecycle.order_failed(STOP, has_position=True) is OrderFailure.STOP
    assert lifecycle.state.flatten_reason == "stop_order_failed"
    assert Calls().run(lifecycle, has_position=True) == ["flatten:stop_order_failed"]


def test_a_stop_lost_outside_the_strategy_is_re_armed_only_when_idle():
    lifecycle = opened()
    assert not lifecycle.stop_lost(TARGET, has_position=True)
    assert not lifecycle.stop_lost(STOP, has_position=False)
    assert lifecycle.stop_lost(STOP, has_position=True)
    assert lifecycle.state.protect
    lifecycle.stop_rearmed(OTHER)
    assert (lifecycle.state.stop_order_id, lifecycle.state.target_order_id) == (OTHER, None)
    exiting = opened()
    exiting.exit_submitted(EXIT)
    assert not exiting.stop_lost(STOP, has_position=True)


def test_closing_forgets_the_position_and_cancels_leftovers_once_flat():
    lifecycle = opened()
    lifecycle.count_bar()
    lifecycle.exit_submitted(EXIT)
    lifecycle.position_closed()
    state = lifecycle.state
    assert lifecycle.idle and state.direction == 0 and state.bars_held == 0
    assert state.stop_order_id is None and math.isnan(state.trail_anchor)
    assert Calls().run(lifecycle, has_position=False) == ["cancel"]


def test_a_position_change_resizes_the_bracket_unless_an_entry_is_filling():
    filling = entered()
    filling.position_changed()
    assert not filling.state.deferred
    lifecycle = opened()
    lifecycle.position_changed()
    assert Calls().run(lifecycle, has_position=True) == ["sync"]


def test_deferred_work_order_and_precedence():
    lifecycle = opened()
    lifecycle.defer(protect=True, sync_bracket=True, cleanup=True)
    assert Calls().run(lifecycle, has_position=True) == ["protect", "sync"]
    lifecycle.defer(protect=True, sync_bracket=True)
    lifecycle.defer(flatten="session_close")
    assert Calls().run(lifecycle, has_position=True) == ["flatten:session_close"]
    assert not (lifecycle.state.protect or lifecycle.state.sync_bracket)
    # Work for a position that is already exiting is dropped.
    lifecycle.defer(flatten="x", protect=True)
    lifecycle.exit_submitted(EXIT)
    assert Calls().run(lifecycle, has_position=True) == []
    assert lifecycle.state.flatten_reason is None and not lifecycle.state.protect


def test_the_trailing_level_ratchets_with_the_extreme_since_entry():
    lifecycle = opened()
    assert lifecycle.trail_level(high=102.0, low=99.0, distance=3.0, direction=1) == 99.0
    assert lifecycle.trail_improves(99.0, 1)  # above the 95 stop
    lifecycle.state.stop_price = 99.0
    # A lower high keeps the anchor: the level never falls back.
    assert lifecycle.trail_level(high=101.0, low=98.0, distance=3.0, direction=1) == 99.0
    assert not lifecycle.trail_improves(99.0, 1)
    short = PositionLifecycle()
    short.position_opened(-10.0, Decimal(10), 100.0)
    short.adopt_stop(STOP, 105.0, "")
    assert short.trail_level(high=101.0, low=97.0, distance=2.0, direction=-1) == 99.0
    assert short.trail_improves(99.0, -1)
    assert not PositionLifecycle().trail_improves(99.0, 1)  # no stop order to move


@pytest.mark.parametrize(
    ("allocation", "scale", "expected"),
    [
        (1.0, 1.0, None),  # target = full 150 capped at 100 held: nothing to do
        (1.0, 0.6, None),  # 90 held-target gap 10 < 0.25 · 100
        (1.0, 0.4, (Decimal(60), "regime")),
        (0.5, 1.0, (Decimal(75), "rebalance")),
        (1.0, 0.0, (Decimal(0), "regime")),  # nothing left: an exit
    ],
)
def test_the_rebalance_plan_scales_down_past_the_threshold(allocation, scale, expected):
    lifecycle = opened(quantity=100, full=150.0, allocation=1.0)
    held = Quantity.from_int(100)
    assert lifecycle.rebalance_plan(held, allocation, scale, 0.25, Decimal(1)) == expected


def test_bars_are_counted_while_the_position_is_open():
    lifecycle = opened()
    assert [lifecycle.count_bar() for _ in range(3)] == [1, 2, 3]
    lifecycle.position_closed()
    assert lifecycle.state.bars_held == 0
