"""Where a backtest's wall time goes as it runs: samples of (wall clock, bars, orders) over the
run, for ``benchmarks/throughput.py`` (µs per order in the first and last decile of the orders).

The actor counts bars and submitted orders from the message bus (``data.bars.*``,
``events.order.*``) and samples the wall clock every ``interval_minutes`` of simulated time, so
it costs one counter per message and a list append per sample.
"""

import json
import time
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.events import OrderSubmitted

__all__ = ["ThroughputProbe", "ThroughputProbeConfig", "decile_costs"]

_NANOS_PER_MINUTE = 60_000_000_000


class ThroughputProbeConfig(ActorConfig, frozen=True):
    """Configuration for :class:`ThroughputProbe`.

    Parameters
    ----------
    interval_minutes : int, default 60
        Simulated minutes between samples.
    output_path : str, optional
        JSON file the samples are written to when the actor stops.
    """

    interval_minutes: PositiveInt = 60
    output_path: str | None = None


class ThroughputProbe(Actor):
    """Samples ``(perf_counter seconds, bars seen, orders submitted)`` as the run advances."""

    def __init__(self, config: ThroughputProbeConfig) -> None:
        super().__init__(config)
        self.bars = 0
        self.orders = 0
        self.samples: list[tuple[float, int, int]] = []

    def on_start(self) -> None:
        self.msgbus.subscribe(topic="data.bars.*", handler=self._on_bar)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self.samples.append((time.perf_counter(), 0, 0))
        self.clock.set_timer_ns(
            name="grodt-throughput-probe",
            interval_ns=self.config.interval_minutes * _NANOS_PER_MINUTE,
            start_time_ns=0,
            stop_time_ns=0,
            callback=self._on_timer,
        )

    def on_stop(self) -> None:
        self.samples.append((time.perf_counter(), self.bars, self.orders))
        if "grodt-throughput-probe" in self.clock.timer_names:
            self.clock.cancel_timer("grodt-throughput-probe")
        if self.config.output_path:
            Path(self.config.output_path).write_text(json.dumps(self.samples))

    def on_dispose(self) -> None:
        self.msgbus.unsubscribe(topic="data.bars.*", handler=self._on_bar)
        self.msgbus.unsubscribe(topic="events.order.*", handler=self._on_order_event)

    def _on_bar(self, bar: object) -> None:
        self.bars += 1

    def _on_order_event(self, event: object) -> None:
        if type(event) is OrderSubmitted:
            self.orders += 1

    def _on_timer(self, event: TimeEvent) -> None:
        self.samples.append((time.perf_counter(), self.bars, self.orders))


def decile_costs(samples: list[tuple[float, int, int]]) -> tuple[float, float]:
    """Wall µs per order in the first and the last tenth of the orders, from the samples
    nearest the decile boundaries (NaN without orders)."""
    total = samples[-1][2] if samples else 0
    if total < 10:
        return float("nan"), float("nan")

    def at(orders: float) -> tuple[float, int]:
        for wall, _, count in samples:
            if count >= orders:
                return wall, count
        return samples[-1][0], samples[-1][2]

    start = samples[0][0]
    first_wall, first_orders = at(total / 10)
    last_wall, last_orders = at(total * 9 / 10)
    first = (first_wall - start) / max(first_orders, 1) * 1e6
    last = (samples[-1][0] - last_wall) / max(total - last_orders, 1) * 1e6
    return first, last
