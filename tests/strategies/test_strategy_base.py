"""The base class in a real BacktestEngine: regime blending and gating, allocations, decision
records and trace tags, denied orders, kill switch, rebalancing, sessions, per-strategy books."""

import math

import pytest
from nautilus_trader.core.uuid import UUID4
from nautilus_trader.execution.messages import SubmitOrderList
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import PositionId
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy
from nautilus_trader.trading.strategy import StrategyConfig
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import make_bars
from strategies_kit import regime
from strategies_kit import run

from grodt.core.messages import NEUTRAL_REGIME_PROBABILITIES
from grodt.core.records import DecisionRecord
from grodt.core.records import trace_id_from_tags
from grodt.core.records import trace_tag
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig

VOLUME = 1e7
UPTREND = [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(100, 108)]
PULLBACK = (107.2, 107.3, 106.4, 107.0, VOLUME)  # S1 enters long at its close (index 8)
SECOND_PULLBACK = (107.0, 109.5, 106.9, 109.2, VOLUME)  # would enter again (index 9)
HOLD = (107.1, 107.4, 106.95, 107.2, VOLUME)  # touches neither stop nor target
ENTRY = 8


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


def entry_of(result, strategy) -> DecisionRecord:
    entries = result.decisions_of(strategy, "entry")
    assert len(entries) == 1, entries
    return entries[0]


def expected_quantity(entry: DecisionRecord, scale: float) -> int:
    return math.floor(entry.features["base_quantity"] * scale)


# -- decision records and trace ids -------------------------------------------------------------


def test_every_bracket_order_carries_the_decision_trace_id():
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK, HOLD]))
    entry = entry_of(result, strategy)
    assert DecisionRecord.model_validate(entry.model_dump()) == entry
    assert entry.trace_id == f"{strategy.id}:{entry.ts_event}:1"
    assert entry.component_id == entry.strategy_id == "S1VwapEmaScalper-000"
    orders = [o for o in result.orders(strategy) if trace_id_from_tags(o.tags) == entry.trace_id]
    assert len(orders) == 3
    by_tag = {next(t for t in o.tags if t != trace_tag(entry.trace_id)): o for o in orders}
    assert set(by_tag) == {"ENTRY", "STOP_LOSS", "TAKE_PROFIT"}
    assert by_tag["ENTRY"].client_order_id.value == entry.intended_order.client_order_id
    # The stop distance the risk gate reads: the stop-loss order of the bracket.
    assert str(by_tag["STOP_LOSS"].trigger_price) == entry.intended_order.stop_loss
    assert str(by_tag["TAKE_PROFIT"].price) == entry.intended_order.take_profit
    # Children of the entry, linked one-cancels-other; on this MARGIN account not reduce-only
    # (strategies.orders).
    for child in (by_tag["STOP_LOSS"], by_tag["TAKE_PROFIT"]):
        assert child.parent_order_id == by_tag["ENTRY"].client_order_id
        assert child.contingency_type == ContingencyType.OCO
        assert not child.is_reduce_only
    # The target is exposed and recorded.
    quantity = float(entry.intended_order.quantity)
    assert entry.features["target_quantity"] == quantity
    assert entry.features["target_exposure"] == pytest.approx(quantity * 107.0)
    assert [t.reason for t in result.targets] == ["entry", "exit:strategy_stop"]
    assert result.targets[0].target_quantity == quantity
    assert result.targets[0].target_exposure == pytest.approx(quantity * 107.0)
    # At stop, the flattening is a recorded exit with its own trace id.
    (stop_exit,) = [d for d in result.decisions if d.reason == "strategy_stop"]
    assert stop_exit.trace_id != entry.trace_id
    assert strategy.target_quantity == 0.0


def test_no_record_is_built_on_bars_without_a_decision():
    steady = [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(100, 115)]
    result = run([strategy := s1()], make_bars(steady))
    assert result.decisions == []
    assert strategy.decisions == 0


# -- regime ---------------------------------------------------------------------------------


def test_neutral_prior_until_the_first_regime_record():
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]))
    entry = entry_of(result, strategy)
    assert entry.regime_probabilities == NEUTRAL_REGIME_PROBABILITIES
    assert entry.model_versions["regime"] == "prior"
    assert entry.features["regime_scale"] == pytest.approx(2.0 / 3.0)
    assert int(entry.intended_order.quantity) == expected_quantity(entry, 2.0 / 3.0)


def test_regime_records_from_an_actor_blend_the_size():
    publisher = {"regime": {0: regime(0.5, 0.1, 0.4, model_version="hmm-1")}}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]), publisher=publisher)
    entry = entry_of(result, strategy)
    assert entry.regime_probabilities == {"bull": 0.5, "bear": 0.1, "sideways": 0.4}
    assert entry.model_versions["regime"] == "hmm-1"
    assert entry.features["regime_scale"] == pytest.approx(0.6)  # 0.5·1 + 0.1·1 + 0.4·0
    assert int(entry.intended_order.quantity) == expected_quantity(entry, 0.6)


def test_a_record_published_without_its_instrument_is_not_received():
    # Strategies subscribe to their instrument's regime topic only (proportional fan-out): a
    # record published without metadata names no instrument and keeps the neutral prior.
    publisher = {"regime": {0: regime(0.5, 0.1, 0.4)}, "regime_with_metadata": False}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]), publisher=publisher)
    entry = entry_of(result, strategy)
    assert entry.regime_probabilities == NEUTRAL_REGIME_PROBABILITIES
    assert entry.model_versions["regime"] == "prior"


def test_the_record_of_the_same_bar_is_seen_before_the_decision():
    publisher = {"regime": {0: regime(0.5, 0.1, 0.4), ENTRY: regime(0.9, 0.05, 0.05)}}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]), publisher=publisher)
    assert entry_of(result, strategy).features["regime_scale"] == pytest.approx(0.95)


def test_zero_size_when_the_regime_affinity_is_zero():
    publisher = {"regime": {0: regime(0.0, 0.0, 1.0)}}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]), publisher=publisher)
    assert result.decisions == []
    assert result.fills().empty
    assert strategy.skipped_entries == {"regime": 1}
    assert strategy.target_quantity == 0.0


@pytest.mark.parametrize(
    ("probabilities", "soft_scale", "hard_scale"),
    [
        ((0.4, 0.0, 0.6), 0.4, 0.0),  # most likely sideways: hard gate closed, soft trades 40%
        ((0.6, 0.0, 0.4), 0.6, 1.0),  # most likely bull: hard trades full size
    ],
)
def test_soft_blending_versus_hard_gating(probabilities, soft_scale, hard_scale):
    bars = make_bars([*UPTREND, PULLBACK])
    publisher = {"regime": {0: regime(*probabilities)}}
    soft = run([soft_s1 := s1(regime_gating="soft")], bars, publisher=publisher)
    hard = run([hard_s1 := s1(regime_gating="hard")], bars, publisher=publisher)
    soft_entry = entry_of(soft, soft_s1)
    assert int(soft_entry.intended_order.quantity) == expected_quantity(soft_entry, soft_scale)
    if hard_scale == 0.0:
        assert hard.decisions == []
        assert hard_s1.skipped_entries == {"regime": 1}
    else:
        hard_entry = entry_of(hard, hard_s1)
        assert int(hard_entry.intended_order.quantity) == expected_quantity(hard_entry, 1.0)


def test_hard_gating_is_open_on_the_actors_tied_prior():
    # Before its first fit the regime actor publishes the neutral prior with a tie-broken label
    # ("sideways"): hard gating must judge the tie, not the label, as without any record.
    tied = regime(1 / 3, 1 / 3, 1 / 3, most_likely="sideways", model_version="prior")
    bars = make_bars([*UPTREND, PULLBACK])
    result = run([hard_s1 := s1(regime_gating="hard")], bars, publisher={"regime": {0: tied}})
    entry = entry_of(result, hard_s1)
    assert entry.features["regime_scale"] == 1.0
    assert int(entry.intended_order.quantity) == expected_quantity(entry, 1.0)


def test_records_of_other_instruments_and_invalid_records_are_ignored():
    follows_other = s1(regime_instrument_id=InstrumentId.from_str("OTHER.SIM"))
    publisher = {"regime": {0: regime(0.0, 0.0, 1.0)}}
    result = run([follows_other], make_bars([*UPTREND, PULLBACK]), publisher=publisher)
    assert entry_of(result, follows_other).regime_probabilities == NEUTRAL_REGIME_PROBABILITIES

    invalid = {"regime": {0: {"p_bull": 0.9, "p_bear": 0.9, "p_sideways": 0.0}}}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK]), publisher=invalid)
    assert entry_of(result, strategy).regime_probabilities == NEUTRAL_REGIME_PROBABILITIES


# -- allocation -----------------------------------------------------------------------------


def test_allocation_applies_only_to_this_strategy_and_only_when_valid():
    publisher = {
        "allocation": {
            0: {"strategy_id": "S1VwapEmaScalper-000", "weight": 0.5, "model_version": "m-7"},
            1: {"strategy_id": "S2MeanReversion-000", "weight": 0.1},
            2: {"strategy_id": "S1VwapEmaScalper-000", "weight": 1.5},  # invalid: ignored
        },
    }
    result = run(
        [strategy := s1(allocation_weight=1.0)],
        make_bars([*UPTREND, PULLBACK]),
        publisher=publisher,
    )
    entry = entry_of(result, strategy)
    assert strategy.allocation_weight == 0.5
    assert entry.allocation_weight == 0.5
    assert entry.model_versions["allocation"] == "m-7"
    assert entry.features["allocated_equity"] == pytest.approx(0.5 * entry.features["equity"])
    assert entry.features["risk_amount"] == pytest.approx(0.5 * 1_000_000 * 0.01)


def test_yaml_weight_is_used_without_a_meta_controller():
    result = run([strategy := s1(allocation_weight=0.25)], make_bars([*UPTREND, PULLBACK]))
    entry = entry_of(result, strategy)
    assert entry.allocation_weight == 0.25
    assert entry.model_versions["allocation"] == "static"
    assert entry.features["risk_amount"] == pytest.approx(0.25 * 1_000_000 * 0.01)


# -- denied orders, kill switch --------------------------------------------------------------


def deny_first_order_list(engine) -> list[str]:
    """Install a gate at ``RiskEngine.execute`` (like the portfolio risk gate) that denies the
    first ``SubmitOrderList`` and forwards everything else."""
    msgbus, cache, clock = engine.kernel.msgbus, engine.kernel.cache, engine.kernel.clock
    forward = engine.kernel.risk_engine.execute
    denied: list[str] = []

    def gate(command) -> None:
        if isinstance(command, SubmitOrderList) and not denied:
            for order in command.order_list.orders:
                if not cache.order_exists(order.client_order_id):
                    cache.add_order(order)
                denied.append(order.client_order_id.value)
                msgbus.send(
                    endpoint="ExecEngine.process",
                    msg=OrderDenied(
                        trader_id=order.trader_id,
                        strategy_id=order.strategy_id,
                        instrument_id=order.instrument_id,
                        client_order_id=order.client_order_id,
                        reason="test gate: exposure limit",
                        event_id=UUID4(),
                        ts_init=clock.timestamp_ns(),
                    ),
                )
            return
        forward(command)

    msgbus.deregister("RiskEngine.execute", forward)
    msgbus.register("RiskEngine.execute", gate)
    return denied


def test_a_denied_entry_resets_the_pending_state_and_the_next_signal_trades():
    def install(engine) -> None:
        install.denied = deny_first_order_list(engine)

    bars = make_bars([*UPTREND, PULLBACK, SECOND_PULLBACK, HOLD])
    result = run([strategy := s1()], bars, before_run=install)
    entries = result.decisions_of(strategy, "entry")
    assert [result.bar_index(e.ts_event) for e in entries] == [ENTRY, ENTRY + 1]
    assert len(install.denied) == 3  # entry, stop loss, take profit
    assert install.denied[0] == entries[0].intended_order.client_order_id
    assert [t.reason for t in result.targets][:3] == ["entry", "entry_failed", "entry"]
    fills = result.fills()
    assert fills["client_order_id"].iloc[0] == entries[1].intended_order.client_order_id


def halve_order_lists(engine) -> None:
    """A gate at ``RiskEngine.execute`` that resizes every order list to half its quantity the
    way the portfolio risk gate does: ``OrderUpdated`` applied to the INITIALIZED orders
    (children first) and published to the strategy, then forwarded."""
    msgbus, cache, clock = engine.kernel.msgbus, engine.kernel.cache, engine.kernel.clock
    forward = engine.kernel.risk_engine.execute

    def gate(command) -> None:
        if isinstance(command, SubmitOrderList):
            entry = command.order_list.first
            half = Quantity.from_int(int(entry.quantity.as_double()) // 2)
            events = []
            for order in sorted(command.order_list.orders, key=lambda o: o is entry):
                event = OrderUpdated(
                    trader_id=order.trader_id,
                    strategy_id=order.strategy_id,
                    instrument_id=order.instrument_id,
                    client_order_id=order.client_order_id,
                    venue_order_id=None,
                    account_id=None,
                    quantity=half,
                    price=None,
                    trigger_price=None,
                    event_id=UUID4(),
                    ts_event=clock.timestamp_ns(),
                    ts_init=clock.timestamp_ns(),
                )
                order.apply(event)
                cache.update_order(order)
                events.append(event)
            for event in events:
                msgbus.publish(f"events.order.{event.strategy_id}", event)
        forward(command)

    msgbus.deregister("RiskEngine.execute", forward)
    msgbus.register("RiskEngine.execute", gate)


def test_an_entry_resized_by_the_risk_gate_is_followed():
    bars = make_bars([*UPTREND, PULLBACK, HOLD])
    result = run(
        [strategy := s1(close_positions_on_stop=False)], bars, before_run=halve_order_lists
    )
    entry = entry_of(result, strategy)
    half = int(entry.intended_order.quantity) // 2
    position = result.positions(strategy)[0]
    assert position.quantity.as_double() == half
    assert [t.reason for t in result.targets] == ["entry", "entry_resized"]
    assert strategy.target_quantity == half
    assert {
        o.quantity.as_double() for o in result.engine.cache.orders_open(strategy_id=strategy.id)
    } == {half}


def test_kill_switch_halts_entries_until_reset():
    publisher = {
        "kill_switch": {
            0: {"action": "halt", "reason": "drawdown", "source": "test"},
            ENTRY + 1: {"action": "reset", "reason": "", "source": "test"},
        },
    }
    bars = make_bars([*UPTREND, PULLBACK, SECOND_PULLBACK])
    result = run([strategy := s1()], bars, publisher=publisher)
    entries = result.decisions_of(strategy, "entry")
    assert [result.bar_index(e.ts_event) for e in entries] == [ENTRY + 1]


# -- regime rebalancing ----------------------------------------------------------------------


def test_soft_rebalance_scales_the_position_and_its_bracket_down():
    publisher = {"regime": {0: regime(0.9, 0.0, 0.1), ENTRY + 1: regime(0.3, 0.0, 0.7)}}
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD])
    result = run(
        [strategy := s1(close_positions_on_stop=False)],
        bars,
        publisher=publisher,
    )
    entry = entry_of(result, strategy)
    entered = int(entry.intended_order.quantity)
    assert entered == expected_quantity(entry, 0.9)
    adjusts = result.decisions_of(strategy, "adjust")
    assert [a.reason for a in adjusts] == ["regime"]
    assert result.bar_index(adjusts[0].ts_event) == ENTRY + 1
    target = math.floor(entry.features["base_quantity"] * 0.3)
    assert adjusts[0].features["target_quantity"] == target
    assert int(adjusts[0].intended_order.quantity) == entered - target
    assert adjusts[0].intended_order.reduce_only
    position = result.engine.cache.position(PositionId(f"{INSTRUMENT_ID}-{strategy.id}"))
    assert position.quantity.as_double() == target
    # The stop and the target shrank with the position.
    working = result.engine.cache.orders_open(strategy_id=strategy.id)
    assert sorted(o.quantity.as_double() for o in working) == [target, target]
    assert [t.reason for t in result.targets] == ["entry", "adjust:regime"]


def test_small_regime_moves_do_not_churn():
    publisher = {"regime": {0: regime(0.9, 0.0, 0.1), ENTRY + 1: regime(0.8, 0.0, 0.2)}}
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK, HOLD]), publisher=publisher)
    assert result.decisions_of(strategy, "adjust") == []  # 11% < the 25% threshold


def test_hard_gating_closes_when_the_most_likely_regime_turns():
    publisher = {"regime": {0: regime(0.9, 0.0, 0.1), ENTRY + 1: regime(0.3, 0.0, 0.7)}}
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD])
    result = run([strategy := s1(regime_gating="hard")], bars, publisher=publisher)
    entry = entry_of(result, strategy)
    assert int(entry.intended_order.quantity) == expected_quantity(entry, 1.0)
    exits = result.decisions_of(strategy, "exit")
    assert [(e.reason, result.bar_index(e.ts_event)) for e in exits] == [("regime", ENTRY + 1)]
    assert result.positions(strategy)[0].is_closed
    assert [t.reason for t in result.targets] == ["entry", "exit:regime"]


def test_rebalancing_can_be_turned_off():
    publisher = {"regime": {0: regime(0.9, 0.0, 0.1), ENTRY + 1: regime(0.0, 0.0, 1.0)}}
    bars = make_bars([*UPTREND, PULLBACK, HOLD])
    result = run(
        [strategy := s1(regime_rebalance_threshold=None)],
        bars,
        publisher=publisher,
    )
    assert [d.action for d in result.decisions_of(strategy)] == ["entry"]


# -- exits owned by the base -----------------------------------------------------------------


def test_time_stop():
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD, HOLD])
    result = run([strategy := s1(max_holding_bars=2)], bars)
    exits = result.decisions_of(strategy, "exit")
    assert [(e.reason, result.bar_index(e.ts_event)) for e in exits] == [("time_stop", ENTRY + 2)]
    assert exits[0].features["bars_held"] == 2.0


def test_flattens_before_the_session_close_and_blocks_late_entries():
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD])  # index 8 closes at 14:39 UTC
    result = run(
        [strategy := s1(session_close="14:41", flatten_before_close_minutes=1.0)],
        bars,
    )
    exits = result.decisions_of(strategy, "exit")
    assert [(e.reason, result.bar_index(e.ts_event)) for e in exits] == [
        ("session_close", ENTRY + 1),
    ]
    late = run(
        [late_s1 := s1(session_close="14:41", no_entry_before_close_minutes=3.0)],
        bars,
    )
    assert late.decisions_of(late_s1) == []


class CancelAllLaterConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    rest_at_bar: int
    cancel_at_bar: int


class CancelAllLater(Strategy):
    """Rests a far limit order, then sends CancelAllOrders for the instrument: the simulated
    venue applies it to every strategy's orders (another client's cancel-all, live)."""

    def __init__(self, config: CancelAllLaterConfig) -> None:
        super().__init__(config)
        self.count = -1

    def on_start(self) -> None:
        self.subscribe_bars(MINUTE_BARS)

    def on_bar(self, bar) -> None:
        self.count += 1
        instrument = self.cache.instrument(self.config.instrument_id)
        if self.count == self.config.rest_at_bar:
            order = self.order_factory.limit(
                self.config.instrument_id,
                OrderSide.BUY,
                Quantity.from_int(1),
                instrument.make_price(1.0),
            )
            self.submit_order(order)
        elif self.count == self.config.cancel_at_bar:
            self.cancel_all_orders(self.config.instrument_id)


def test_a_stop_canceled_outside_the_strategy_is_re_armed():
    strategy = s1(order_id_tag="001", close_positions_on_stop=False)
    other = CancelAllLater(
        CancelAllLaterConfig(
            instrument_id=INSTRUMENT_ID,
            rest_at_bar=ENTRY,
            cancel_at_bar=ENTRY + 1,
            order_id_tag="002",
        ),
    )
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD, HOLD])
    result = run([strategy, other], bars, before_run=None)
    cache = result.engine.cache
    stops = [o for o in cache.orders(strategy_id=strategy.id) if o.order_type.name == "STOP_MARKET"]
    assert [o.status.name for o in stops] == ["CANCELED", "ACCEPTED"]
    bracket_stop, re_armed = stops
    assert re_armed.trigger_price == bracket_stop.trigger_price
    assert re_armed.quantity == bracket_stop.quantity
    assert result.bar_index(re_armed.ts_init) == ENTRY + 2
    assert cache.positions_open(strategy_id=strategy.id)


def test_an_adopted_position_is_not_cut_by_the_regime_prior():
    # A live restart: the strategy finds its position open at start. It was sized at a regime
    # scale the strategy no longer knows; rebalancing it against the neutral prior would sell.
    from nautilus_trader.model.enums import OmsType
    from nautilus_trader.model.identifiers import AccountId
    from nautilus_trader.model.identifiers import StrategyId
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.position import Position
    from nautilus_trader.test_kit.stubs.events import TestEventStubs
    from nautilus_trader.test_kit.stubs.execution import TestExecStubs

    strategy = s1(order_id_tag="001", regime_rebalance_threshold=0.1, close_positions_on_stop=False)

    def restart_with_open_position(engine):
        instrument = engine.cache.instrument(INSTRUMENT_ID)
        order = TestExecStubs.market_order(
            instrument=instrument,
            order_side=OrderSide.BUY,
            quantity=Quantity.from_int(600),
        )
        strategy_id = StrategyId("S1VwapEmaScalper-001")
        fill = TestEventStubs.order_filled(
            order,
            instrument,
            strategy_id=strategy_id,
            account_id=AccountId("SIM-001"),
            position_id=PositionId(f"{INSTRUMENT_ID}-{strategy_id}"),
            last_px=Price.from_str("100.00"),
        )
        engine.cache.add_order(order)
        engine.cache.add_position(Position(instrument, fill), OmsType.NETTING)

    result = run([strategy], make_bars(UPTREND), before_run=restart_with_open_position)
    assert strategy.current_regime_scale() == pytest.approx(2.0 / 3.0)
    assert result.decisions == []
    (position,) = result.engine.cache.positions_open(strategy_id=strategy.id)
    assert position.quantity == Quantity.from_int(600)


def test_positions_are_kept_at_stop_when_configured():
    bars = make_bars([*UPTREND, PULLBACK, HOLD])
    kept = run([keeper := s1(close_positions_on_stop=False)], bars)
    assert kept.engine.cache.positions_open(strategy_id=keeper.id)
    assert len(kept.engine.cache.orders_open(strategy_id=keeper.id)) == 2  # stop and target
    closed = run([closer := s1(close_positions_on_stop=True)], bars)
    assert not closed.engine.cache.positions_open(strategy_id=closer.id)
    assert not closed.engine.cache.orders_open(strategy_id=closer.id)


# -- several strategies on one instrument ----------------------------------------------------


class MarketShortConfig(StrategyConfig, frozen=True):
    instrument_id: InstrumentId
    at_bar: int
    quantity: int


class MarketShort(Strategy):
    """Sells ``quantity`` at market on bar ``at_bar`` and holds (another desk's strategy)."""

    def __init__(self, config: MarketShortConfig) -> None:
        super().__init__(config)
        self.count = -1

    def on_start(self) -> None:
        self.subscribe_bars(MINUTE_BARS)

    def on_bar(self, bar) -> None:
        self.count += 1
        if self.count == self.config.at_bar:
            order = self.order_factory.market(
                self.config.instrument_id,
                OrderSide.SELL,
                Quantity.from_int(self.config.quantity),
                time_in_force=TimeInForce.GTC,
            )
            self.submit_order(order)


def test_two_strategies_on_one_instrument_keep_their_own_positions_stops_and_pnl():
    tight = s1(order_id_tag="001", stop_atr_multiple=0.5)
    wide = s1(order_id_tag="002", stop_atr_multiple=2.0)
    shorter = MarketShort(
        MarketShortConfig(
            instrument_id=INSTRUMENT_ID,
            at_bar=ENTRY,
            quantity=3000,
            order_id_tag="003",
            oms_type="NETTING",
        ),
    )
    dip = (107.0, 107.1, 106.3, 106.5, VOLUME)  # hits the tight stop only
    bars = make_bars([*UPTREND, PULLBACK, dip, HOLD])
    result = run(
        [tight, wide, shorter],
        bars,
        before_run=None,
    )
    cache = result.engine.cache
    tight_entry = entry_of(result, tight)
    wide_entry = entry_of(result, wide)
    tight_stop = float(tight_entry.intended_order.stop_loss)
    assert tight_stop > 106.3 > float(wide_entry.intended_order.stop_loss)
    # One position per (instrument, strategy): ids are {instrument}-{strategy}.
    ids = {p.id.value for p in cache.positions(instrument_id=INSTRUMENT_ID)}
    assert ids == {f"{INSTRUMENT_ID}-{s.id}" for s in (tight, wide, shorter)}
    tight_position = cache.position(PositionId(f"{INSTRUMENT_ID}-{tight.id}"))
    # The tight stop closed the tight strategy's position only, at its stop price ...
    tight_fills = result.fills().query("strategy_id == @tight.id.value")
    assert list(tight_fills["order_side"]) == ["BUY", "SELL"]
    assert tight_fills["last_px"].iloc[1] == tight_entry.intended_order.stop_loss
    assert tight_position.realized_pnl.as_double() == pytest.approx(
        -int(tight_entry.intended_order.quantity) * (107.0 - tight_stop),
    )
    # ... the short of another strategy did not net against either long ...
    assert tight_position.peak_qty.as_double() == int(tight_entry.intended_order.quantity)
    wide_fills = result.fills().query("strategy_id == @wide.id.value")
    assert (
        list(wide_fills["last_qty"].astype(float))
        == [
            float(wide_entry.intended_order.quantity),
        ]
        * 2
    )  # entry, then the flattening at stop: no partial closes by other strategies
    short_position = cache.position(PositionId(f"{INSTRUMENT_ID}-{shorter.id}"))
    assert short_position.signed_qty == -3000
    # ... and the per-strategy PnL adds up to the account's.
    account = result.engine.portfolio.account(INSTRUMENT_ID.venue)
    total_realized = sum(
        p.realized_pnl.as_double() for p in cache.positions(instrument_id=INSTRUMENT_ID)
    )
    unrealized = result.engine.portfolio.unrealized_pnl(INSTRUMENT_ID)
    change = account.balance_total().as_double() - 1_000_000
    assert change == pytest.approx(total_realized, abs=0.01)
    assert unrealized is not None


def test_an_exit_cancels_only_the_exiting_strategys_bracket():
    # Nautilus' cancel_all_orders(instrument) is applied by the simulated matching engine to every
    # order of the instrument, whatever its strategy: an exit must not take the sibling's stop.
    leaver = s1(order_id_tag="001", max_holding_bars=2, close_positions_on_stop=False)
    stayer = s1(order_id_tag="002", close_positions_on_stop=False)
    bars = make_bars([*UPTREND, PULLBACK, HOLD, HOLD])
    result = run([leaver, stayer], bars, before_run=None)
    cache = result.engine.cache
    exits = result.decisions_of(leaver, "exit")
    assert [(e.reason, result.bar_index(e.ts_event)) for e in exits] == [("time_stop", ENTRY + 2)]

    def bracket_of(strategy):
        entry = result.decisions_of(strategy, "entry")[0]
        orders = [o for o in cache.orders(strategy_id=strategy.id) if o.parent_order_id]
        return [o for o in orders if trace_id_from_tags(o.tags) == entry.trace_id]

    # The leaver's first stop and target were canceled by its own exit ...
    assert sorted(o.status.name for o in bracket_of(leaver)) == ["CANCELED", "CANCELED"]
    # ... and the sibling on the same instrument keeps its position, stop and target.
    assert cache.positions_open(strategy_id=stayer.id)
    stayer_bracket = bracket_of(stayer)
    assert sorted(o.order_type.name for o in stayer_bracket) == ["LIMIT", "STOP_MARKET"]
    assert all(o.status.name == "ACCEPTED" for o in stayer_bracket)


def test_a_cash_account_bracket_above_half_the_cash_is_not_denied():
    # ~97% of the cash in one long: Nautilus' RiskEngine would add plain (non-reduce-only) SELL
    # children to a cumulative notional and deny the list; reduce-only children are exits.
    strategy = s1(stop_atr_multiple=0.3, regime_affinity={"bull": 1.0, "bear": 1.0})
    result = run(
        [strategy],
        make_bars([*UPTREND, PULLBACK, HOLD]),
        account_type=AccountType.CASH,
        publisher={"regime": {0: regime(1.0, 0.0, 0.0)}},
    )
    entry = entry_of(result, strategy)
    notional = int(entry.intended_order.quantity) * 107.0
    assert notional > 0.9 * 1_000_000
    fills = result.fills()
    assert fills["client_order_id"].iloc[0] == entry.intended_order.client_order_id
    children = [o for o in result.orders(strategy) if o.parent_order_id is not None]
    assert len(children) == 2
    assert all(o.is_reduce_only for o in children)


# -- exits that fill in several parts ---------------------------------------------------------


@pytest.mark.parametrize(
    ("exit_bar", "role"),
    [
        ((108.5, 109.5, 108.4, 109.2, 8_000.0), "TAKE_PROFIT"),  # target fills 2,000 at a time
        ((107.0, 107.1, 105.0, 105.2, 8_000.0), "STOP_LOSS"),  # stop walks a thin book
    ],
)
def test_exits_larger_than_the_bar_liquidity_close_the_whole_position(exit_bar, role):
    thin = [exit_bar] * 6  # several thin bars: the target may need more than one
    result = run([strategy := s1()], make_bars([*UPTREND, PULLBACK, *thin]))
    entry = result.decisions_of(strategy, "entry")[0]
    quantity = int(entry.intended_order.quantity)
    fills = result.fills()
    of_trace = fills[
        [
            trace_id_from_tags(result.order(o).tags) == entry.trace_id
            for o in fills["client_order_id"]
        ]
    ]
    exits = of_trace[of_trace["order_side"] == "SELL"]
    assert len(exits) > 1  # filled in parts
    assert exits["last_qty"].astype(float).sum() == quantity  # all of it, no orphan
    assert {tag for o in exits["client_order_id"] for tag in result.order(o).tags} >= {role}
    # The other child was cancelled once the position was closed.
    children = [o for o in result.orders(strategy) if trace_id_from_tags(o.tags) == entry.trace_id]
    assert all(o.is_closed for o in children)


# -- the researcher's boundary ---------------------------------------------------------------------


def test_a_subclass_may_not_override_the_framework_handlers():
    with pytest.raises(TypeError, match=r"overrides on_bar, on_order_filled .*pre_bar"):

        class Sneaky(S1VwapEmaScalper):
            def on_bar(self, bar) -> None:
                super().on_bar(bar)

            def on_order_filled(self, event) -> None:
                super().on_order_filled(event)


def test_pre_bar_sees_every_bar_before_the_decision_and_post_bar_after():
    seen: list[tuple[str, int]] = []

    class Traced(S1VwapEmaScalper):
        def pre_bar(self, bar) -> None:
            seen.append(("pre", bar.ts_event))

        def entry_signal(self, bar):
            seen.append(("entry", bar.ts_event))
            return super().entry_signal(bar)

        def post_bar(self, bar) -> None:
            seen.append(("post", bar.ts_event))
            super().post_bar(bar)

    strategy = Traced(s1().config)
    bars = make_bars([*UPTREND, PULLBACK])
    run([strategy], bars)
    assert [kind for kind, ts in seen if ts == bars[0].ts_event] == ["pre", "post"]  # warm-up
    assert [kind for kind, ts in seen if ts == bars[ENTRY].ts_event] == ["pre", "entry", "post"]
