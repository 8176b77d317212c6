"""Order tags the risk gate reads.

A strategy that submits a plain order (no bracket) but knows where its stop is can tell the gate
with a ``stop_loss=<price>`` tag, so the per-trade risk budget is checked at that distance::

    order = self.order_factory.market(..., tags=[trace_tag(trace_id), stop_loss_tag(stop)])
"""

import math

STOP_LOSS_TAG_PREFIX = "stop_loss="


def stop_loss_tag(price: float | str) -> str:
    """The order tag announcing the stop-loss price of an entry."""
    return f"{STOP_LOSS_TAG_PREFIX}{price}"


def stop_price_from_tags(tags: list[str] | None) -> float | None:
    """The stop-loss price announced in ``tags`` (None if absent or not a positive number)."""
    if not tags:
        return None
    for tag in tags:
        if tag.startswith(STOP_LOSS_TAG_PREFIX):
            try:
                price = float(tag[len(STOP_LOSS_TAG_PREFIX) :])
            except ValueError:
                return None
            return price if math.isfinite(price) and price > 0.0 else None
    return None
