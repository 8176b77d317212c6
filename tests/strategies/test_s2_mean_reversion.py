"""S2 mean reversion on crafted 1-minute bars in a real BacktestEngine."""

import math

import numpy as np
import pytest
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import atr_of
from strategies_kit import make_bars
from strategies_kit import run

from grodt.core.records import DecisionRecord
from strategies.s2_mean_reversion import S2MeanReversion
from strategies.s2_mean_reversion import S2MeanReversionConfig

VOLUME = 1e7
PERIOD = 5
# Ten quiet bars alternating 99.9 / 100.1 around 100: z stays near ±1.
QUIET = [(100.0, 100.4, 99.6, 100.0 + (0.1 if i % 2 else -0.1), VOLUME) for i in range(10)]
DROP_INDEX = len(QUIET)


def s2(**overrides) -> S2MeanReversion:
    config = {
        "instrument_id": INSTRUMENT_ID,
        "bar_type": MINUTE_BARS,
        "mean_reversion_period": PERIOD,
        "vwap_deviation_threshold": 2.0,
        "full_size_deviation": 4.0,
        "atr_period": 3,
        "stop_atr_multiple": 1.5,
        "risk_reward_ratio": 1.2,
        **overrides,
    }
    return S2MeanReversion(S2MeanReversionConfig(**config))


def reference_z(rows: list, index: int) -> float:
    """z at ``index`` from first principles: session VWAP of the typical price, population
    standard deviation of the last PERIOD closes."""
    data = np.asarray(rows[: index + 1], dtype=float)
    typical = (data[:, 1] + data[:, 2] + data[:, 3]) / 3.0
    vwap = float(np.sum(typical * data[:, 4]) / np.sum(data[:, 4]))
    sigma = float(np.std(data[-PERIOD:, 3]))
    return (data[-1, 3] - vwap) / sigma


def test_enters_long_when_the_close_is_two_deviations_below_the_vwap():
    rows = [*QUIET, (100.0, 100.1, 98.9, 99.0, VOLUME)]
    bars = make_bars(rows)
    result = run([strategy := s2()], bars)
    entries = result.decisions_of(strategy, "entry")
    assert len(entries) == 1
    entry = entries[0]
    assert result.bar_index(entry.ts_event) == DROP_INDEX
    assert entry.reason == "below_vwap"
    assert DecisionRecord.model_validate(entry.model_dump()) == entry
    z = reference_z(rows, DROP_INDEX)
    assert z <= -2.0
    assert entry.features["deviation_z"] == pytest.approx(z)


def test_size_scales_with_the_deviation_and_inversely_with_the_atr():
    rows = [*QUIET, (100.0, 100.1, 98.9, 99.0, VOLUME)]
    bars = make_bars(rows)
    result = run([strategy := s2()], bars)
    entry = result.decisions_of(strategy, "entry")[0]
    z = reference_z(rows, DROP_INDEX)
    atr = atr_of(bars, 3)[DROP_INDEX]
    risk = 1_000_000 * 0.01  # equity × allocation 1 × risk_per_trade
    base = min(risk / (1.5 * atr), 1_000_000 / 99.0)  # risk sizing, capped at 1× notional
    strength = min(1.0, abs(z) / 4.0)
    assert 0.5 < strength < 1.0  # the deviation sets the size, short of the full-size level
    assert entry.features["base_quantity"] == pytest.approx(base)
    assert entry.features["signal_strength"] == pytest.approx(strength)
    expected = math.floor(base * strength * (1.0 / 3.0))  # neutral prior: sideways p = 1/3
    assert int(entry.intended_order.quantity) == expected


def test_no_entry_inside_the_band():
    rows = [*QUIET, (100.0, 100.1, 99.6, 99.7, VOLUME)]
    assert reference_z(rows, DROP_INDEX) > -2.0
    result = run([strategy := s2()], make_bars(rows))
    assert result.decisions_of(strategy) == []


def test_exits_at_the_vwap():
    rows = [*QUIET, (100.0, 100.1, 98.9, 99.0, VOLUME), (99.1, 100.05, 99.0, 100.0, VOLUME)]
    result = run([strategy := s2()], make_bars(rows))
    entry = result.decisions_of(strategy, "entry")[0]
    assert float(entry.intended_order.take_profit) > 100.05  # the target is not reached
    exits = result.decisions_of(strategy, "exit")
    assert [e.reason for e in exits] == ["vwap_reached"]
    assert result.bar_index(exits[0].ts_event) == DROP_INDEX + 1
    assert exits[0].features["close"] >= exits[0].features["vwap"]
    assert exits[0].intended_order.reduce_only
    fills = result.fills()
    assert list(fills["order_side"]) == ["BUY", "SELL"]
    assert fills["last_px"].iloc[1] == "100.00"
    # The bracket was cancelled with the exit: no working orders are left behind.
    assert result.engine.cache.orders_open(strategy_id=strategy.id) == []


def test_stops_out_when_the_deviation_keeps_growing():
    rows = [*QUIET, (100.0, 100.1, 98.9, 99.0, VOLUME), (98.9, 99.0, 97.0, 97.2, VOLUME)]
    result = run([strategy := s2()], make_bars(rows))
    entry = result.decisions_of(strategy, "entry")[0]
    fills = result.fills()
    assert fills["last_px"].iloc[1] == entry.intended_order.stop_loss
    assert result.decisions_of(strategy, "exit") == []  # the venue's stop, not a decision


def test_short_above_the_vwap_on_a_margin_account():
    rows = [*QUIET, (100.0, 101.1, 99.9, 101.0, VOLUME)]
    result = run([strategy := s2(allow_short=True)], make_bars(rows))
    entries = result.decisions_of(strategy, "entry")
    assert [e.reason for e in entries] == ["above_vwap"]
    assert entries[0].intended_order.side == "SELL"
    assert entries[0].features["deviation_z"] >= 2.0
