"""Warm-up of a restarted node: the bars the crashed node had seen, handed over as history.

A node restarted from its cache database (:mod:`grodt.nodes.checkpoint`) gets orders, positions,
accounts and the state components saved (``on_save``/``on_load``) back from the database, but not
what components derive from the market itself: indicators, a regime filter, rolling returns. The
replay is deterministic, so that state is rebuilt exactly by handing every component the bars
it had received before the checkpoint, in the same order, as *historical* data: Nautilus'
``handle_historical_data`` → ``on_historical_data``, the path of a ``request_bars`` response,
which a component uses to update its state without trading. Components that derive nothing from
bars ignore it (the default ``on_historical_data`` does nothing).

Each bar also goes into the cache (as the data engine puts every bar it processes), so prices
read from the cache after the restart are the crashed node's. Only bars are handed over: other
replayed records (custom data) feed state that components save themselves.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.component import is_matching_py
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

__all__ = ["WarmUp", "warm_up"]


@dataclass(frozen=True)
class WarmUp:
    """What :func:`warm_up` handed over.

    Attributes
    ----------
    bars : int
        Bars put into the cache and handed to their subscribers.
    deliveries : int
        ``handle_historical_data`` calls (one per bar and subscribed component).
    components : tuple[str, ...]
        Ids of the components that received bars.
    """

    bars: int
    deliveries: int
    components: tuple[str, ...]


def _subscribers(msgbus: Any, bar_type: BarType) -> list[Actor]:
    """Components (actors and strategies) subscribed to ``bar_type``'s topic, in the bus's
    dispatch order (priority, highest first); each once."""
    topic = f"data.bars.{bar_type}"
    matching = [
        subscription
        for subscription in msgbus.subscriptions()
        if is_matching_py(topic, subscription.topic)
    ]
    # Stable sort: equal priorities keep the order they were subscribed in, as the bus does.
    matching.sort(key=lambda subscription: -subscription.priority)
    # By identity: Nautilus components compare by id, and an actor's id compared with a
    # strategy's raises TypeError.
    components: dict[int, Actor] = {}
    for subscription in matching:
        owner = getattr(subscription.handler, "__self__", None)
        if isinstance(owner, Actor):
            components.setdefault(id(owner), owner)
    return list(components.values())


def warm_up(kernel: Any, history: Sequence[Data]) -> WarmUp:
    """Hand ``history`` (the records the crashed node had replayed, in replay order) to the
    running components as historical bars; see the module docs."""
    cache = kernel.cache
    msgbus = kernel.msgbus
    by_bar_type: dict[BarType, list[Actor]] = {}
    bars = deliveries = 0
    received: dict[str, None] = {}
    for record in history:
        if not isinstance(record, Bar):
            continue
        components = by_bar_type.get(record.bar_type)
        if components is None:
            components = by_bar_type[record.bar_type] = _subscribers(msgbus, record.bar_type)
            for component in components:
                received[component.id.value] = None
        cache.add_bar(record)
        for component in components:
            component.handle_historical_data(record)
        bars += 1
        deliveries += len(components)
    return WarmUp(bars=bars, deliveries=deliveries, components=tuple(received))
