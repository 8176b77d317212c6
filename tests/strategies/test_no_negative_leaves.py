"""A bracket whose stop and target both fill in parts must not abort the process.

Nautilus 1.221 keeps OUO-linked orders in step by setting the sibling's *quantity* to the filled
order's ``leaves_qty``, ignoring what the sibling has filled itself. Once the target has filled
300 of 1,000 shares and the stop then fills 500 of its remaining 700, the target's quantity becomes
200 < 300 filled: ``leaves = quantity - filled`` underflows and ``Quantity::from_raw`` panics,
which kills the Python process (the meta-controller's all-capital ``trailing_sharpe`` run on the
synthetic margin venue, docs/meta.md). ``strategies.orders.bracket`` therefore links stop and
target one-cancels-other.

The scenario runs in a child process (``python <this file> <link>``): a panic there fails the
test instead of aborting pytest. The same bars with an OUO link show the engine's abort, so the
test notices if Nautilus ever fixes it (then the OCO choice can be revisited).
"""

import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import OrderStatus
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy
from nautilus_trader.trading.strategy import StrategyConfig

import strategies.orders
from strategies.orders import bracket

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SHARES = 1_000

# (open, high, low, close, volume). Bar 0: the strategy submits; bar 1: the entry fills (deep
# liquidity); bar 2: the high touches the 105 target on a thin bar (300 of 1,000 fill, about
# volume / 4); bar 3: the low crosses the 95 stop (its first book level, 500, leaves 200 of the
# 700 the OUO link left it: fewer than the target's 300 filled).
ROWS = [
    (100.0, 100.5, 99.5, 100.0, 1_000_000.0),
    (100.0, 100.5, 99.5, 100.0, 1_000_000.0),
    (100.0, 105.0, 99.5, 100.0, 1_200.0),
    (96.0, 96.0, 94.0, 95.5, 2_000.0),
    (94.0, 94.5, 93.5, 94.0, 1_000_000.0),
]


class OneBracket(Strategy):
    """Submits one long bracket (strategies.orders) of ``SHARES`` on the first bar."""

    def __init__(self, bar_type) -> None:
        super().__init__(StrategyConfig(strategy_id="OneBracket-001"))
        self.bar_type = bar_type
        self.submitted = False

    def on_start(self) -> None:
        self.subscribe_bars(self.bar_type)

    def on_bar(self, bar) -> None:
        if self.submitted:
            return
        self.submitted = True
        orders = bracket(
            factory=self.order_factory,
            clock=self.clock,
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=bar.bar_type.instrument_id,
            side=OrderSide.BUY,
            quantity=Quantity.from_int(SHARES),
            stop_price=Price(95.0, 2),
            target_price=Price(105.0, 2),
            tags=[],
        )
        self.submit_order_list(orders)


def scenario(link: str) -> str:
    """Run the bars; ``link`` ``ours`` (strategies.orders as shipped) or ``ouo`` (the stop and
    target linked one-updates-other). Returns ``<role> <link> <status> <filled>`` lines and the
    position."""
    sys.path.insert(0, str(HERE))
    from strategies_kit import make_bars
    from strategies_kit import run

    if link == "ouo":
        strategies.orders.ContingencyType = SimpleNamespace(
            OTO=ContingencyType.OTO, OCO=ContingencyType.OUO
        )
    bars = make_bars(ROWS)
    strategy = OneBracket(bars[0].bar_type)
    result = run([strategy], bars)
    lines = []
    for order in result.orders(strategy):
        role = next(t for t in order.tags if t in ("ENTRY", "STOP_LOSS", "TAKE_PROFIT"))
        lines.append(f"{role} {order.contingency_type.name} {order.status.name} {order.filled_qty}")
    positions = result.positions(strategy)
    lines.append(f"POSITION {positions[0].signed_qty if positions else None}")
    return "\n".join(sorted(lines))


def run_child(link: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, __file__, link],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_partial_fills_of_both_bracket_children_do_not_abort():
    child = run_child("ours")
    assert child.returncode == 0, child.stderr[-2000:]
    lines = dict(line.split(" ", 1) for line in child.stdout.strip().splitlines())
    # The entry filled; the target's first partial fill cancelled both OCO children (the
    # strategies re-arm the rest: strategies.base ``_protect``); no over-fill into a short.
    assert lines["ENTRY"] == f"OTO {OrderStatus.FILLED.name} {SHARES}"
    link, status, filled = lines["TAKE_PROFIT"].split()
    assert (link, status) == ("OCO", OrderStatus.CANCELED.name)
    assert 0 < int(filled) < SHARES
    assert lines["STOP_LOSS"] == f"OCO {OrderStatus.CANCELED.name} 0"
    assert float(lines["POSITION"]) == SHARES - int(filled)


def test_the_same_bars_with_an_ouo_link_abort_the_engine():
    """The trigger itself: if this starts passing, Nautilus fixed OUO partial fills."""
    child = run_child("ouo")
    assert child.returncode != 0
    assert "Quantity::from_raw" in child.stderr


if __name__ == "__main__":
    print(scenario(sys.argv[1]))
    sys.stdout.flush()
