"""Property: random streams of orders from several strategies over several instruments never
leave a limit breached after fills.

Each example is a real engine (margin account, three instruments at constant random prices, 1 bp
fees, three strategies) with the gate installed, HRP targets and CVaR scenarios published, and a
random stream of market, limit (marketable or resting) and bracket orders, closes, fills and
kill-switch halts/resets. After every fill step the positions in the cache are checked against
every limit with an independent computation (Nautilus' own account balance and unrealised PnL,
plain numpy CVaR).

Closing orders always pass (the gate never traps a position). The exposure bounds already allow
for any position being closed (strategies' opposite positions are never counted as a hedge), so
the weight, band, group, gross and net limits must hold after any fill. CVaR is limited on the
committed book (positions plus pending orders, whichever fill): closing the hedging leg of a pair
can raise it, so CVaR is checked up to the first closing fill, and always in a second property
whose streams trade each instrument in one direction only (no order can close anything).
"""

import math

import numpy as np
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Quantity
from risk_kit import RiskHarness

from grodt.core.topics import KILL_SWITCH_TOPIC

SYMBOLS = ("AAA", "BBB", "CCC")
MAX_WEIGHT, GROSS, NET, GROUP = 0.2, 0.5, 0.3, 0.3
TARGETS = {"AAA": 0.1, "BBB": 0.45, "CCC": 0.45}
TOLERANCE = 0.5
NOTIONAL = 150_000.0
TRADE_RISK = 0.01
CVAR = 0.01
SCENARIOS = np.random.default_rng(42).standard_t(3, size=(100, 3)) * 0.01
SCENARIOS[:, 1] = -0.6 * SCENARIOS[:, 0] + 0.4 * SCENARIOS[:, 1]  # BBB partly hedges AAA
SECTION = {
    "limits": {
        "max_weight": MAX_WEIGHT,
        "gross_exposure": GROSS,
        "net_exposure": NET,
        "groups": {"ab": {"members": ["AAA.SIM", "BBB.SIM"], "max_weight": GROUP}},
        "trade_risk": TRADE_RISK,
        "max_order_notional": NOTIONAL,
        "cvar": {"limit": CVAR, "alpha": 0.95, "window": 100, "min_observations": 50},
    },
    "hrp": {"tolerance": TOLERANCE, "window": 100, "min_history": 50},
}
EPS = 1e-9

prices = st.fixed_dictionaries(
    {s: st.sampled_from([20.0, 55.5, 100.0, 240.25]) for s in SYMBOLS},
)
strategy_index = st.integers(0, 2)
symbol = st.sampled_from(SYMBOLS)
side = st.sampled_from(["BUY", "SELL"])
quantity = st.integers(1, 6000)
orders = st.one_of(
    st.tuples(st.just("market"), strategy_index, symbol, side, quantity),
    st.tuples(st.just("limit"), strategy_index, symbol, side, quantity, st.sampled_from([-1, 1])),
    st.tuples(
        st.just("bracket"),
        strategy_index,
        symbol,
        side,
        quantity,
        st.floats(0.005, 0.1),
    ),
)
# Orders dominate; fills, closes and kill-switch messages are sprinkled in.
action = st.one_of(
    orders,
    orders,
    orders,
    orders,
    st.tuples(st.just("step")),
    st.tuples(st.just("step")),
    st.tuples(st.just("close"), strategy_index, symbol),
    st.sampled_from([("halt",), ("reset",)]),
)


def _cvar(pnl: np.ndarray) -> float:
    losses = np.sort(-pnl)[::-1]
    return float(losses[:5].mean())  # ceil(5% × 100) worst periods


class Checker:
    """Independent limit checks from the engine's own state."""

    def __init__(self, harness: RiskHarness) -> None:
        self.h = harness

    def equity(self) -> float:
        portfolio = self.h.engine.portfolio
        venue = Venue("SIM")
        balance = portfolio.account(venue).balance_total().as_double()
        unrealised = sum(m.as_double() for m in portfolio.unrealized_pnls(venue).values())
        return balance + unrealised

    def exposures(self) -> dict[str, float]:
        return {s: self.h.position(s) * self.h.prices[s] for s in SYMBOLS}

    def check(self, with_cvar: bool) -> None:
        equity = self.equity()
        x = self.exposures()
        tolerance = EPS * equity
        for s, value in x.items():
            assert abs(value) <= MAX_WEIGHT * equity + tolerance, ("max_weight", s, value)
            band = TARGETS[s] * (1 + TOLERANCE)
            assert abs(value) <= band * equity + tolerance, ("hrp_band", s, value)
        assert abs(x["AAA"]) + abs(x["BBB"]) <= GROUP * equity + tolerance, ("group", x)
        assert sum(abs(v) for v in x.values()) <= GROSS * equity + tolerance, ("gross", x)
        assert abs(sum(x.values())) <= NET * equity + tolerance, ("net", x)
        if with_cvar:
            pnl = SCENARIOS @ np.array([x[s] for s in SYMBOLS])
            assert _cvar(pnl) <= CVAR * equity + tolerance, ("cvar", x, _cvar(pnl) / equity)

    def check_records(self, records: list) -> None:
        for record in records:
            if record.verdict == "deny" or record.limits.get("binding") == "reducing":
                continue
            approved = float(record.approved_quantity)
            mark = self.h.prices[record.instrument_id.split(".")[0]]
            assert approved * mark <= NOTIONAL * (1 + EPS), ("order_notional", record)
            risk = record.limits.get("trade_risk", {})
            assert (
                risk.get("before") is None
                or risk["max_quantity"] is None
                or (approved <= risk["max_quantity"] + 1e-6)
            ), ("trade_risk", record)
            if record.limits.get("halted"):
                assert record.limits.get("binding") == "kill_switch", ("kill_switch", record)


def _closed_any(harness: RiskHarness) -> bool:
    """Whether an order the gate passed as closing (reduce-only or closing) has filled."""
    closing = {r.client_order_id for r in harness.records if r.limits.get("binding") == "reducing"}
    return any(
        str(o.client_order_id) in closing or o.is_reduce_only
        for o in harness.cache.orders()
        if o.filled_qty.as_double() > 0
    )


def _run(stream: list, start_prices: dict, one_direction: dict | None) -> None:
    harness = RiskHarness(
        SYMBOLS,
        strategies=3,
        account_type="MARGIN",
        prices=start_prices,
        fee="0.0001",
    )
    try:
        harness.install(SECTION)
        harness.publish_targets(TARGETS, returns=SCENARIOS)
        checker = Checker(harness)
        bus = harness.engine.kernel.msgbus
        for item in stream:
            kind = item[0]
            if kind in ("market", "limit", "bracket"):
                s, sym, side_name, qty = item[1], item[2], item[3], item[4]
                if one_direction is not None:
                    side_name = one_direction[sym]
                price = harness.prices[sym]
                if kind == "market":
                    harness.market(sym, side_name, qty, strategy=s)
                elif kind == "limit":
                    sign = item[5] if side_name == "BUY" else -item[5]
                    limit = round(price * (1 + 0.05 * sign), 2)
                    harness.limit(sym, side_name, qty, limit, strategy=s)
                else:
                    distance = max(round(price * item[5], 2), 0.01)
                    stop = price - distance if side_name == "BUY" else price + distance
                    target = price + distance if side_name == "BUY" else price - distance
                    harness.bracket(sym, side_name, qty, round(stop, 2), round(target, 2), s)
            elif kind == "close" and one_direction is None:
                strategy = harness.strategies[item[1]]
                for position in harness.cache.positions_open(
                    instrument_id=harness.iid(item[2]),
                    strategy_id=strategy.id,
                ):
                    order = strategy.order_factory.market(
                        instrument_id=position.instrument_id,
                        order_side=OrderSide.SELL if position.is_long else OrderSide.BUY,
                        quantity=Quantity(position.quantity.as_double(), 0),
                        reduce_only=True,
                    )
                    strategy.submit_order(order)
            elif kind == "halt":
                bus.publish(KILL_SWITCH_TOPIC, {"action": "halt", "source": "operator"})
            elif kind == "reset":
                bus.publish(KILL_SWITCH_TOPIC, {"action": "reset", "source": "operator"})
            if kind == "step":
                harness.step()
                checker.check(with_cvar=not _closed_any(harness))
        harness.step()
        checker.check(with_cvar=not _closed_any(harness))
        checker.check_records(harness.records)
        if one_direction is not None:
            assert not any(r.limits.get("binding") == "reducing" for r in harness.records)
        assert math.isfinite(checker.equity())
    finally:
        harness.dispose()


PROPERTY = settings(
    max_examples=40,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@PROPERTY
@given(stream=st.lists(action, min_size=3, max_size=25), start_prices=prices)
def test_mixed_streams_never_breach_after_fills(stream, start_prices):
    _run(stream, start_prices, one_direction=None)


@PROPERTY
@given(
    stream=st.lists(action, min_size=3, max_size=25),
    start_prices=prices,
    directions=st.fixed_dictionaries({s: side for s in SYMBOLS}),
)
def test_one_direction_streams_never_breach_any_limit(stream, start_prices, directions):
    _run(stream, start_prices, one_direction=directions)
