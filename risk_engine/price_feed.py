"""Prices for the risk gate, from the bus, before any strategy sees them.

Bars (close), quote ticks (mid) and trade ticks (price) go into the portfolio view's price book
at a priority above the strategies'. Each new bar timestamp, and ticks at most once a second of
market time, also ask for an equity check (the loss triggers of the kill switch).
"""

from collections.abc import Callable
from typing import Any

from nautilus_trader.common.component import is_matching_py
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import QuoteTick
from nautilus_trader.model.data import TradeTick

from risk_engine.portfolio_state import PortfolioView

__all__ = ["PriceFeed"]

_MONITOR_TICK_INTERVAL_NS = 1_000_000_000
_PRIORITY = 100  # higher runs first: prices are in before any strategy's handler


class PriceFeed:
    """Subscribes the price book of ``view`` to the market data on ``msgbus``.

    Parameters
    ----------
    view : PortfolioView
        Whose ``prices`` it fills.
    monitor : Callable[[int], None] | None
        Called with the market time (UNIX ns) when equity is due for a check (None: never).
    """

    def __init__(self, view: PortfolioView, monitor: Callable[[int], None] | None) -> None:
        self._prices = view.prices
        self._monitor = monitor
        self._last_monitor_ns = -1
        self._market_ns = -1
        self._last_message: Any = None
        self._subscriptions: list[tuple[str, Callable[[Any], None]]] = []
        self._msgbus: Any = None

    def subscribe(self, msgbus: Any) -> None:
        self._msgbus = msgbus
        for pattern, handler in (
            ("data.bars.*", self._on_bar),
            ("data.quotes.*", self._on_quote),
            ("data.trades.*", self._on_trade),
        ):
            msgbus.subscribe(pattern, handler, priority=_PRIORITY)
            self._subscriptions.append((pattern, handler))
            # Nautilus 1.221's MessageBus.subscribe matches a new wildcard against the topics
            # already published with its arguments swapped, so a topic published before this
            # call would never reach the wildcard: subscribe those exactly as well (the
            # handlers ignore a message they have just seen).
            for topic in msgbus.topics():
                if "*" in topic or "?" in topic or not is_matching_py(topic, pattern):
                    continue
                msgbus.subscribe(topic, handler, priority=_PRIORITY)
                self._subscriptions.append((topic, handler))

    def unsubscribe(self) -> None:
        for topic, handler in self._subscriptions:
            self._msgbus.unsubscribe(topic, handler)
        self._subscriptions.clear()

    def market_time_ns(self) -> int:
        """The newest market-data timestamp seen, UNIX ns (−1 before any)."""
        return self._market_ns

    def _monitor_at(self, ts_ns: int) -> None:
        """Run the equity check at ``ts_ns`` (and count it as the latest)."""
        self._last_monitor_ns = ts_ns
        assert self._monitor is not None
        self._monitor(ts_ns)

    def _on_bar(self, bar: Bar) -> None:
        if bar is self._last_message:
            return
        self._last_message = bar
        self._market_ns = max(self._market_ns, bar.ts_event)
        self._prices[bar.bar_type.instrument_id] = bar.close.as_double()
        if self._monitor is not None and bar.ts_event > self._last_monitor_ns:
            self._monitor_at(bar.ts_event)

    def _on_quote(self, quote: QuoteTick) -> None:
        if quote is self._last_message:
            return
        self._last_message = quote
        self._market_ns = max(self._market_ns, quote.ts_event)
        mid = (quote.bid_price.as_double() + quote.ask_price.as_double()) / 2.0
        self._prices[quote.instrument_id] = mid
        if self._monitor is not None and quote.ts_event >= (
            self._last_monitor_ns + _MONITOR_TICK_INTERVAL_NS
        ):
            self._monitor_at(quote.ts_event)

    def _on_trade(self, trade: TradeTick) -> None:
        if trade is self._last_message:
            return
        self._last_message = trade
        self._market_ns = max(self._market_ns, trade.ts_event)
        self._prices[trade.instrument_id] = trade.price.as_double()
        if self._monitor is not None and trade.ts_event >= (
            self._last_monitor_ns + _MONITOR_TICK_INTERVAL_NS
        ):
            self._monitor_at(trade.ts_event)
