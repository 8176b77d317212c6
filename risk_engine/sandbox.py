"""A sandbox kernel for the risk gate: a real Nautilus BacktestEngine with hand-driven strategies,
to craft portfolio states (positions, open and in-flight orders, equity) and see what the gate
does with an order. Used by the tests and the benchmark; handy for probing a limit set::

    box = GateSandbox(symbols=("AAA", "BBB"), account_type="MARGIN")
    box.install({"limits": {"max_weight": 0.25}})
    order = box.market("AAA", "BUY", 3000)      # -> resized to 2500
    box.step()                                  # fills at the bar's close
    print(box.last_record().reason)

The engine runs in streaming mode, one bar per instrument per step; a market order submitted
between steps is in flight (SUBMITTED) until the next step fills it at that step's close, so a
constant-price step fills at exactly the price the gate valued it at.
"""

from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.config import StrategyConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarSpecification
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import AggregationSource
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import PriceType
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Symbol
from nautilus_trader.model.identifiers import TraderId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.instruments import Equity
from nautilus_trader.model.objects import Money
from nautilus_trader.model.objects import Price
from nautilus_trader.model.objects import Quantity
from nautilus_trader.trading.strategy import Strategy

from grodt.core.topics import RISK_TARGETS_TOPIC
from grodt.core.topics import Topics
from risk_engine.config import parse_risk_config
from risk_engine.gate import PortfolioRiskGate
from risk_engine.messages import RiskTargets

VENUE = "SIM"
START = pd.Timestamp("2024-01-02 15:00", tz="UTC").value
MINUTE = 60_000_000_000


def equity_instrument(symbol: str, fee: str = "0") -> Equity:
    """A share-level equity (lot size 1) on the test venue."""
    return Equity(
        instrument_id=InstrumentId(Symbol(symbol), Venue(VENUE)),
        raw_symbol=Symbol(symbol),
        currency=USD,
        price_precision=2,
        price_increment=Price.from_str("0.01"),
        lot_size=Quantity.from_int(1),
        ts_event=0,
        ts_init=0,
        maker_fee=Decimal(fee),
        taker_fee=Decimal(fee),
    )


def bar_type(instrument_id: InstrumentId) -> BarType:
    return BarType(
        instrument_id,
        BarSpecification(1, BarAggregation.MINUTE, PriceType.LAST),
        AggregationSource.EXTERNAL,
    )


class ShellStrategy(Strategy):
    """A strategy the test drives by hand; remembers what the gate told it."""

    def __init__(self, config: StrategyConfig) -> None:
        super().__init__(config)
        self.denied: list[OrderDenied] = []
        self.updated: list[OrderUpdated] = []
        self.modify_rejected: list[OrderModifyRejected] = []

    def on_start(self) -> None:
        # Subscribing makes the data engine publish the bars (the gate prices from them).
        for instrument in self.cache.instruments():
            self.subscribe_bars(bar_type(instrument.id))

    def on_order_denied(self, event: OrderDenied) -> None:
        self.denied.append(event)

    def on_order_updated(self, event: OrderUpdated) -> None:
        self.updated.append(event)

    def on_order_modify_rejected(self, event: OrderModifyRejected) -> None:
        self.modify_rejected.append(event)


class GateSandbox:
    """A streaming BacktestEngine with instruments, shell strategies and (optionally) the gate.

    Parameters
    ----------
    symbols : list[str]
        Instruments (``<symbol>.SIM``).
    strategies : int
        Number of shell strategies (``S0-001``, ``S1-001``...).
    account_type : str
        ``CASH`` or ``MARGIN`` (shorts need MARGIN).
    balance : float
        Starting USD balance.
    prices : dict[str, float] | float
        First bar's close per symbol.
    fee : str
        Maker/taker fee of every instrument.
    """

    def __init__(
        self,
        symbols: Iterable[str] = ("AAA", "BBB", "CCC"),
        strategies: int = 2,
        account_type: str = "MARGIN",
        balance: float = 1_000_000.0,
        prices: dict[str, float] | float = 100.0,
        fee: str = "0",
    ) -> None:
        self.engine = BacktestEngine(
            BacktestEngineConfig(
                trader_id=TraderId("TEST-001"),
                logging=LoggingConfig(log_level="ERROR", bypass_logging=True),
                run_analysis=False,
            ),
        )
        self.engine.add_venue(
            Venue(VENUE),
            oms_type=OmsType.NETTING,
            account_type=AccountType[account_type],
            base_currency=USD,
            starting_balances=[Money(balance, USD)],
            bar_adaptive_high_low_ordering=False,
        )
        self.instruments = {s: equity_instrument(s, fee) for s in symbols}
        for instrument in self.instruments.values():
            self.engine.add_instrument(instrument)
        self.strategies = [
            ShellStrategy(StrategyConfig(strategy_id=f"S{k}-001")) for k in range(strategies)
        ]
        for strategy in self.strategies:
            self.engine.add_strategy(strategy)
        self.records: list[Any] = []
        self.kill_messages: list[Any] = []
        self.ts = START
        self.prices = dict.fromkeys(self.instruments, 100.0)
        self.step(prices)
        self.engine.kernel.msgbus.subscribe(Topics.RISK, self.records.append)
        self.gate: PortfolioRiskGate | None = None

    # -- state -------------------------------------------------------------------------------

    def iid(self, symbol: str) -> InstrumentId:
        return self.instruments[symbol].id

    @property
    def cache(self) -> Any:
        return self.engine.cache

    def step(self, prices: dict[str, float] | float | None = None) -> None:
        """Advance one bar per instrument (same prices by default); fills what is in flight."""
        if isinstance(prices, int | float):
            prices = dict.fromkeys(self.instruments, float(prices))
        self.prices.update(prices or {})
        bars = []
        for symbol, instrument in self.instruments.items():
            price = Price(self.prices[symbol], 2)
            bars.append(
                Bar(
                    bar_type(instrument.id),
                    price,
                    price,
                    price,
                    price,
                    Quantity.from_int(100_000_000),
                    self.ts,
                    self.ts,
                ),
            )
        self.engine.clear_data()
        self.engine.add_data(bars)
        self.engine.run(streaming=True)
        self.ts += MINUTE

    def install(self, section: dict | None = None, **limits: Any) -> PortfolioRiskGate:
        """Install a gate with ``section`` (or ``{"limits": limits}``)."""
        config = parse_risk_config(section if section is not None else {"limits": limits})
        self.gate = PortfolioRiskGate(config)
        self.gate.install(self.engine.kernel)
        # The gate learns prices from the bus; seed it with the bars already processed.
        for symbol, price in self.prices.items():
            self.gate.view.prices[self.iid(symbol)] = price
        return self.gate

    def publish_targets(
        self,
        weights: dict[str, float],
        returns: np.ndarray | None = None,
        version: str = "test-1",
    ) -> None:
        symbols = list(weights)
        if returns is None:
            returns = np.zeros((0, len(symbols)))
        self.engine.kernel.msgbus.publish(
            RISK_TARGETS_TOPIC,
            RiskTargets(
                ts_event=self.ts,
                instrument_ids=tuple(str(self.iid(s)) for s in symbols),
                weights=tuple(weights.values()),
                returns=returns,
                method="test",
                model_version=version,
            ),
        )

    def equity(self) -> float:
        assert self.gate is not None
        return self.gate.view.equity()

    def position(self, symbol: str) -> float:
        return sum(p.signed_qty for p in self.cache.positions_open(instrument_id=self.iid(symbol)))

    # -- orders ------------------------------------------------------------------------------

    def market(
        self,
        symbol: str,
        side: str,
        quantity: float,
        strategy: int = 0,
        reduce_only: bool = False,
        tags: list[str] | None = None,
    ) -> Any:
        s = self.strategies[strategy]
        order = s.order_factory.market(
            instrument_id=self.iid(symbol),
            order_side=OrderSide[side],
            quantity=Quantity(quantity, 0),
            reduce_only=reduce_only,
            tags=tags,
        )
        s.submit_order(order)
        return order

    def limit(
        self,
        symbol: str,
        side: str,
        quantity: float,
        price: float,
        strategy: int = 0,
        tags: list[str] | None = None,
    ) -> Any:
        s = self.strategies[strategy]
        order = s.order_factory.limit(
            instrument_id=self.iid(symbol),
            order_side=OrderSide[side],
            quantity=Quantity(quantity, 0),
            price=Price(price, 2),
            tags=tags,
        )
        s.submit_order(order)
        return order

    def bracket(
        self,
        symbol: str,
        side: str,
        quantity: float,
        stop: float,
        take_profit: float,
        strategy: int = 0,
    ) -> Any:
        s = self.strategies[strategy]
        order_list = s.order_factory.bracket(
            instrument_id=self.iid(symbol),
            order_side=OrderSide[side],
            quantity=Quantity(quantity, 0),
            sl_trigger_price=Price(stop, 2),
            tp_price=Price(take_profit, 2),
        )
        s.submit_order_list(order_list)
        return order_list

    def last_record(self) -> Any:
        return self.records[-1]

    def dispose(self) -> None:
        if self.gate is not None:
            self.gate.uninstall()
        self.engine.end()
        self.engine.dispose()
