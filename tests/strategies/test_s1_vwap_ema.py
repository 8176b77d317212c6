"""S1 VWAP/EMA scalper on crafted 1-minute bars in a real BacktestEngine."""

import pytest
from nautilus_trader.model.enums import AccountType
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import atr_of
from strategies_kit import make_bars
from strategies_kit import run

from grodt.core.records import DecisionRecord
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig

VOLUME = 1e7  # deep bars: market orders fill whole at the close


def s1(**overrides) -> S1VwapEmaScalper:
    config = {
        "instrument_id": INSTRUMENT_ID,
        "bar_type": MINUTE_BARS,
        "ema_period": 3,
        "atr_period": 3,
        "stop_atr_multiple": 1.0,
        "risk_reward_ratio": 1.5,
        "regime_affinity": {"bull": 1.0, "bear": 1.0, "sideways": 0.0},
        **overrides,
    }
    return S1VwapEmaScalper(S1VwapEmaScalperConfig(**config))


def uptrend(n: int = 8, start: int = 100) -> list:
    """A steady uptrend, one point per bar; lows stay well above the lagging EMA."""
    return [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(start, start + n)]


# Pullback: the low dips to the EMA (~106.5), the close holds above it and above the VWAP.
PULLBACK = (107.2, 107.3, 106.4, 107.0, VOLUME)
ENTRY_INDEX = 8


def test_enters_long_on_a_pullback_to_the_rising_ema_with_a_bracket():
    rows = [*uptrend(), PULLBACK, (107.0, 107.4, 106.95, 107.2, VOLUME)]
    bars = make_bars(rows)
    strategy = s1()
    result = run([strategy], bars)

    entries = result.decisions_of(strategy, "entry")
    assert len(entries) == 1
    entry = entries[0]
    assert result.bar_index(entry.ts_event) == ENTRY_INDEX
    assert entry.reason == "vwap_ema_pullback_long"
    # The record validates against the contract (it was built with model_construct).
    assert DecisionRecord.model_validate(entry.model_dump()) == entry
    features = entry.features
    assert features["close"] == 107.0
    assert features["close"] > features["vwap"]
    assert features["ema"] > features["previous_ema"]
    # Bracket: stop at close - 1 ATR (rounded down), target at 1.5 stop distances (rounded up).
    atr = atr_of(bars, 3)[ENTRY_INDEX]
    assert features["atr"] == pytest.approx(atr)
    assert float(entry.intended_order.stop_loss) == pytest.approx(107.0 - atr, abs=0.01)
    assert float(entry.intended_order.stop_loss) <= 107.0 - atr
    assert float(entry.intended_order.take_profit) >= 107.0 + 1.5 * atr
    fills = result.fills()
    assert list(fills["order_side"]) == ["BUY", "SELL"]  # entry, then the on-stop flattening
    assert fills["last_px"].iloc[0] == "107.00"


def test_no_entry_when_the_pullback_closes_below_the_ema():
    broken = (107.2, 107.3, 105.0, 105.5, VOLUME)  # closes under the EMA: the trend broke
    result = run([strategy := s1()], make_bars([*uptrend(), broken]))
    assert result.decisions_of(strategy) == []
    assert result.fills().empty


def test_no_entry_without_a_pullback():
    continuation = (107.8, 108.3, 107.7, 108.0, VOLUME)  # low far above the EMA
    result = run([strategy := s1()], make_bars([*uptrend(), continuation]))
    assert result.decisions_of(strategy) == []


def test_no_long_below_the_session_vwap():
    # A long decline, then a short bounce and a pullback: the EMA rises again but the close is
    # still far below the session VWAP, so no long.
    decline = [(c + 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(130, 100, -1)]
    bounce = [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(101, 105)]
    pullback = (104.2, 104.3, 103.4, 104.0, VOLUME)
    result = run([strategy := s1()], make_bars([*decline, *bounce, pullback]))
    assert all(d.intended_order.side == "SELL" for d in result.decisions_of(strategy))
    assert not [d for d in result.decisions_of(strategy) if d.reason.endswith("long")]


def test_exits_at_the_take_profit():
    rows = [*uptrend(), PULLBACK, (108.5, 109.5, 108.4, 109.2, VOLUME)]
    result = run([strategy := s1()], make_bars(rows))
    entry = result.decisions_of(strategy, "entry")[0]
    fills = result.fills()
    exit_fill = fills.iloc[1]
    assert exit_fill["order_side"] == "SELL"
    assert exit_fill["last_px"] == entry.intended_order.take_profit
    assert result.bar_index(exit_fill["ts_event"].value) == ENTRY_INDEX + 1
    assert "TAKE_PROFIT" in result.order(exit_fill["client_order_id"]).tags
    position = result.positions(strategy)[0]
    assert position.is_closed
    assert position.realized_pnl.as_double() > 0
    assert strategy.target_quantity == 0.0
    assert [t.reason for t in result.targets] == ["entry", "position_closed"]


def test_exits_at_the_stop_loss():
    rows = [*uptrend(), PULLBACK, (107.0, 107.1, 105.0, 105.2, VOLUME)]
    result = run([strategy := s1()], make_bars(rows))
    entry = result.decisions_of(strategy, "entry")[0]
    fills = result.fills()
    assert fills.iloc[1]["last_px"] == entry.intended_order.stop_loss
    position = result.positions(strategy)[0]
    assert position.is_closed
    # Stopped out: the loss is the risk budget at the planned distance (risk sizing), scaled by
    # the neutral prior's regime scale 2/3 (the quantity was 2/3 of the risk quantity).
    loss = -position.realized_pnl.as_double()
    risk = entry.features["risk_amount"] * entry.features["regime_scale"]
    stop_distance = 107.0 - float(entry.intended_order.stop_loss)
    assert loss == pytest.approx(float(entry.intended_order.quantity) * stop_distance)
    assert loss <= risk * 1.001


def test_short_mirror_on_a_margin_account():
    downtrend = [(c + 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(120, 112, -1)]
    pullback = (112.8, 113.6, 112.7, 113.0, VOLUME)  # high reaches the falling EMA
    result = run([strategy := s1(allow_short=True)], make_bars([*downtrend, pullback]))
    entries = result.decisions_of(strategy, "entry")
    assert [e.reason for e in entries] == ["vwap_ema_pullback_short"]
    assert entries[0].intended_order.side == "SELL"
    assert entries[0].signal.strength < 0
    assert float(entries[0].intended_order.stop_loss) > 113.0
    assert float(entries[0].intended_order.take_profit) < 113.0


def test_short_signal_is_skipped_when_shorts_are_not_allowed():
    downtrend = [(c + 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(120, 112, -1)]
    pullback = (112.8, 113.6, 112.7, 113.0, VOLUME)
    result = run(
        [strategy := s1(allow_short=False)],
        make_bars([*downtrend, pullback]),
        account_type=AccountType.CASH,
    )
    assert result.decisions_of(strategy) == []
    assert strategy.skipped_entries == {"short_not_allowed": 1}
