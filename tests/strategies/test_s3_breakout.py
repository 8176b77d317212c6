"""S3 breakout on crafted 1-minute bars in a real BacktestEngine."""

import pytest
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import atr_of
from strategies_kit import make_bars
from strategies_kit import regime
from strategies_kit import run

from grodt.core.records import DecisionRecord
from strategies.s3_breakout import S3Breakout
from strategies.s3_breakout import S3BreakoutConfig

VOLUME = 1e7
QUIET = [(100.0, 100.5, 99.5, 100.0, VOLUME)] * 10  # 5-bar high 100.5, ATR 1.0
BREAKOUT_INDEX = len(QUIET)
# Closes 3.5 above the prior high; ATR(3) after this bar is 2.1, so the threshold is 3.15.
BREAKOUT = (100.0, 104.2, 99.9, 104.0, 3 * VOLUME)
RISE = [(c - 0.5, c + 0.3, c - 0.6, float(c), VOLUME) for c in (105, 106, 107, 108)]


def s3(**overrides) -> S3Breakout:
    config = {
        "instrument_id": INSTRUMENT_ID,
        "bar_type": MINUTE_BARS,
        "breakout_period": 5,
        "breakout_threshold": 1.5,
        "volume_confirmation": True,
        "volume_period": 5,
        "volume_multiple": 1.5,
        "momentum_period": 3,
        "atr_period": 3,
        "stop_atr_multiple": 2.0,
        "risk_reward_ratio": 2.0,
        "trailing_stop": True,
        "trailing_atr_multiple": 2.0,
        **overrides,
    }
    return S3Breakout(S3BreakoutConfig(**config))


def test_enters_on_a_volume_confirmed_break_of_the_prior_high():
    bars = make_bars([*QUIET, BREAKOUT])
    result = run([strategy := s3()], bars)
    entries = result.decisions_of(strategy, "entry")
    assert len(entries) == 1
    entry = entries[0]
    assert DecisionRecord.model_validate(entry.model_dump()) == entry
    assert result.bar_index(entry.ts_event) == BREAKOUT_INDEX
    atr = atr_of(bars, 3)[BREAKOUT_INDEX]
    # The N-bar high excludes the breakout bar itself (lagged Donchian channel).
    assert entry.features["prior_high"] == 100.5
    assert 100.5 + 1.5 * atr <= 104.0
    assert entry.features["volume_ratio"] == pytest.approx(3.0)
    assert entry.features["momentum"] == pytest.approx(0.04)
    assert float(entry.intended_order.stop_loss) == pytest.approx(104.0 - 2.0 * atr, abs=0.01)
    assert float(entry.intended_order.take_profit) == pytest.approx(104.0 + 4.0 * atr, abs=0.01)


@pytest.mark.parametrize(
    ("bar", "overrides", "why"),
    [
        ((100.0, 102.9, 99.9, 102.8, 3 * VOLUME), {}, "less than 1.5 ATR beyond the high"),
        ((100.0, 104.2, 99.9, 104.0, 1.2 * VOLUME), {}, "volume not confirmed"),
        (BREAKOUT, {"min_momentum": 0.05}, "momentum too weak"),
    ],
)
def test_no_entry_without_every_confirmation(bar, overrides, why):
    result = run([strategy := s3(**overrides)], make_bars([*QUIET, bar]))
    assert result.decisions_of(strategy) == [], why


def test_bars_without_volume_cannot_confirm_unless_confirmation_is_off():
    rows = [(*row[:4], 0.0) for row in [*QUIET, BREAKOUT]]
    confirmed = run([strict := s3()], make_bars(rows))
    assert confirmed.decisions_of(strict) == []
    unconfirmed = run([loose := s3(volume_confirmation=False)], make_bars(rows))
    assert [d.reason for d in unconfirmed.decisions_of(loose)] == ["breakout_high"]


def test_trailing_stop_ratchets_up_and_exits_at_the_trailed_level():
    drop = (108.0, 108.1, 100.0, 100.5, VOLUME)
    bars = make_bars([*QUIET, BREAKOUT, *RISE, drop])
    result = run([strategy := s3()], bars)
    entry = result.decisions_of(strategy, "entry")[0]
    adjusts = result.decisions_of(strategy, "adjust")
    assert [a.reason for a in adjusts] == ["trailing_stop"] * 4
    stops = [float(a.intended_order.stop_loss) for a in adjusts]
    assert stops == sorted(stops)
    assert stops[0] > float(entry.intended_order.stop_loss)
    atr = atr_of(bars, 3)
    for offset, adjust in enumerate(adjusts, start=1):
        # Chandelier: highest high since entry minus 2 ATR, rounded down to the tick.
        highest = max(
            b.high.as_double() for b in bars[BREAKOUT_INDEX : BREAKOUT_INDEX + offset + 1]
        )
        level = highest - 2.0 * atr[BREAKOUT_INDEX + offset]
        assert float(adjust.intended_order.stop_loss) == pytest.approx(level, abs=0.01)
        assert adjust.trace_id == entry.trace_id  # adjustments belong to the entry's trace
    # The venue's stop order was modified and filled at the last trailed level.
    fills = result.fills()
    assert list(fills["order_side"]) == ["BUY", "SELL"]
    assert fills["last_px"].iloc[1] == adjusts[-1].intended_order.stop_loss
    stop_order = result.order(adjusts[-1].intended_order.client_order_id)
    assert stop_order.trigger_price.as_double() == stops[-1]
    assert result.positions(strategy)[0].realized_pnl.as_double() > 0


def test_exits_when_the_close_is_through_the_trailing_level():
    # A new high lifts the level above the close, while the low stays above the working stop.
    # With a 1-ATR trail the stop works at 106.84 after the rise; this bar's new high lifts the
    # level to 109.5 - 1.805 = 107.69, above its close, while its low stays above the stop.
    reversal = (108.0, 109.5, 107.0, 107.2, VOLUME)
    strategy = s3(trailing_atr_multiple=1.0)
    result = run([strategy], make_bars([*QUIET, BREAKOUT, *RISE, reversal]))
    exits = result.decisions_of(strategy, "exit")
    assert [e.reason for e in exits] == ["trailing_stop"]
    assert exits[0].features["stop_price"] < 107.0
    assert result.fills()["last_px"].iloc[1] == "107.20"


def test_short_breakout_below_the_prior_low():
    breakdown = (100.0, 100.1, 95.8, 96.0, 3 * VOLUME)
    result = run([strategy := s3(allow_short=True)], make_bars([*QUIET, breakdown]))
    entries = result.decisions_of(strategy, "entry")
    assert [e.reason for e in entries] == ["breakout_low"]
    assert entries[0].intended_order.side == "SELL"


def test_a_regime_exit_does_not_move_the_trailing_stop_first():
    # On the bar where the regime turns sideways (affinity 0), the chandelier level would rise,
    # but the position is closed: a stop modification sent first would, live, reach the venue
    # after the exit's cancel (modifies pass the risk engine, cancels do not).
    turn = BREAKOUT_INDEX + 3
    publisher = {"regime": {0: regime(1.0, 0.0, 0.0), turn: regime(0.0, 0.0, 1.0)}}
    bars = make_bars([*QUIET, BREAKOUT, *RISE])
    strategy = s3(regime_affinity={"bull": 1.0, "bear": 1.0, "sideways": 0.0})
    result = run([strategy], bars, publisher=publisher)
    adjusts = result.decisions_of(strategy, "adjust")
    assert [result.bar_index(a.ts_event) for a in adjusts] == [turn - 2, turn - 1]
    exits = result.decisions_of(strategy, "exit")
    assert [(e.reason, result.bar_index(e.ts_event)) for e in exits] == [("regime", turn)]
    stop_order = result.order(adjusts[-1].intended_order.client_order_id)
    assert stop_order.status.name == "CANCELED"
    assert str(stop_order.trigger_price) == adjusts[-1].intended_order.stop_loss
