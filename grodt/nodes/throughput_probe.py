"""Where a backtest's wall time and memory go as it runs: samples of (wall clock, bars, orders,
resident memory) over the run, for ``benchmarks/throughput.py`` (µs per order in the first and
last decile of the orders; memory in the second half of the run).

The actor counts bars and submitted orders from the message bus (``data.bars.*``,
``events.order.*``) and samples the wall clock every ``interval_minutes`` of simulated time, so
it costs one counter per message and a list append per sample.
"""

import json
import os
import time
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.events import OrderSubmitted

__all__ = [
    "ThroughputProbe",
    "ThroughputProbeConfig",
    "decile_costs",
    "memory_profile",
    "position_order_lists",
]

_NANOS_PER_MINUTE = 60_000_000_000
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20


def _rss_mb() -> float:
    """Resident memory of this process now, MB (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * _PAGE_MB


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
    """Samples ``(perf_counter seconds, bars seen, orders submitted, RSS MB[, longest order
    list of an open position])`` as the run advances."""

    def __init__(self, config: ThroughputProbeConfig) -> None:
        super().__init__(config)
        self.bars = 0
        self.orders = 0
        self.samples: list[tuple] = []

    def on_start(self) -> None:
        self.msgbus.subscribe(topic="data.bars.*", handler=self._on_bar)
        self.msgbus.subscribe(topic="events.order.*", handler=self._on_order_event)
        self.samples.append((time.perf_counter(), 0, 0, _rss_mb()))
        self.clock.set_timer_ns(
            name="grodt-throughput-probe",
            interval_ns=self.config.interval_minutes * _NANOS_PER_MINUTE,
            start_time_ns=0,
            stop_time_ns=0,
            callback=self._on_timer,
        )

    def on_stop(self) -> None:
        self.samples.append((time.perf_counter(), self.bars, self.orders, _rss_mb()))
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
        # The list the simulated matching engine walks on every fill of a position.
        longest = max(
            (len(self.cache.orders_for_position(p.id)) for p in self.cache.positions_open()),
            default=0,
        )
        self.samples.append((time.perf_counter(), self.bars, self.orders, _rss_mb(), longest))


def decile_costs(samples: list[list[float]]) -> tuple[float, float]:
    """Wall µs per order in the first and the last tenth of the orders, from the samples
    nearest the decile boundaries (NaN without orders)."""
    total = samples[-1][2] if samples else 0
    if total < 10:
        return float("nan"), float("nan")

    def at(orders: float) -> tuple[float, int]:
        for sample in samples:
            if sample[2] >= orders:
                return sample[0], sample[2]
        return samples[-1][0], samples[-1][2]

    start = samples[0][0]
    first_wall, first_orders = at(total / 10)
    last_wall, last_orders = at(total * 9 / 10)
    first = (first_wall - start) / max(first_orders, 1) * 1e6
    last = (samples[-1][0] - last_wall) / max(total - last_orders, 1) * 1e6
    return first, last


def memory_profile(samples: list[list[float]]) -> dict[str, float]:
    """Resident memory (MB) during the event loop: its peak, at mid-run (by bars) and at the end
    of the loop (NaN for samples without memory)."""
    if not samples or len(samples[0]) < 4:
        nan = float("nan")
        return {"loop_peak_rss_mb": nan, "mid_rss_mb": nan, "end_rss_mb": nan}
    bars = samples[-1][1]
    mid = next(sample for sample in samples if sample[1] >= bars / 2)
    return {
        "loop_peak_rss_mb": max(sample[3] for sample in samples),
        "mid_rss_mb": mid[3],
        "end_rss_mb": samples[-1][3],
    }


def position_order_lists(samples: list[list[float]]) -> tuple[float, float]:
    """The longest ``cache.orders_for_position`` list of an open position (what the matching
    engine loops over on each fill), largest over the first and over the last tenth of the
    bars (NaN for samples without it)."""
    rows = [sample for sample in samples if len(sample) >= 5]
    if not rows:
        return float("nan"), float("nan")
    bars = samples[-1][1]
    first = [sample[4] for sample in rows if sample[1] <= bars / 10]
    last = [sample[4] for sample in rows if sample[1] >= bars * 9 / 10]
    return float(max(first, default=0)), float(max(last, default=0))
