"""Bar arrival → order submitted latency, measured inside a live node.

Three stamps, all ``time.perf_counter_ns()`` on the event-loop thread:

1. arrival: the replay data client hands a record to the engine (``_handle_data``);
2. dispatch: the data engine publishes the record to subscribers (the probe subscribes with the
   highest priority, so it runs before the venue and every strategy); from here until the next
   stamped record's dispatch, every ``OrderInitialized`` is attributed to that record (data an
   actor publishes while the record is dispatched, e.g. regime probabilities, does not start a
   new attribution);
3. submit: the sandbox execution client receives the ``SubmitOrder`` command, after the risk
   engine (and the portfolio risk gate, when configured) let it through.

The latency of an order is ``submit - arrival`` of the record that was being processed when it was
created: it includes the data-engine queue, the strategy's decision, the risk checks and the
risk/execution queues. A record without an arrival stamp (a broker adapter's data) is measured
from its dispatch. The summary also splits it in three stages: ``queue`` (arrival → dispatch),
``decide`` (dispatch → ``OrderInitialized``: every subscriber that ran before the strategy's
decision, then the decision) and ``route`` (``OrderInitialized`` → submit: risk engine, risk gate,
execution engine and their queues).

With ``cpu=True`` the probe also stamps the event-loop thread's CPU time
(``time.thread_time_ns()``, about 2 µs a call here, so off by default) at arrival and submit: the
CPU latency of an order is the work the engine thread did between the record's arrival and the
order's submit, whatever else ran on the machine. Wall minus CPU is waiting: the OS running other
processes, another Python thread holding the GIL, the event loop idle.

Orders sent once the node stops (flatten, strategies closing positions in ``on_stop``) answer the
stop, not a record: after :meth:`LatencyProbe.end_attribution` they are counted (``at_stop``),
not measured (before, the last record's arrival was their start and they set the run's maximum).

Memory is bounded: pending stamps are capped and samples beyond ``max_samples`` are kept by
reservoir sampling, so a week-long run costs the same as a minute. :meth:`LatencyProbe.summary`
(the run's figures, computed at stop) reads every kept sample; the periodic health line uses
:meth:`LatencyProbe.recent_summary`, over the last ``recent`` samples only, so it costs the same
after a week as after a minute and never stalls the event loop.
"""

import random
import time
from collections import OrderedDict
from collections import deque
from typing import Any

import numpy as np
from nautilus_trader.common.component import MessageBus
from nautilus_trader.model.events import OrderInitialized
from nautilus_trader.model.identifiers import ClientOrderId

from grodt.core.topics import NAUTILUS_ALL_DATA
from grodt.core.topics import NAUTILUS_ORDER_EVENTS

_MAX_PENDING = 65_536


class LatencyProbe:
    """Collects data-arrival → order-submit latencies of one node.

    Parameters
    ----------
    max_samples : int, default 200_000
        Samples kept exactly; later ones are reservoir-sampled (percentiles stay unbiased).
    seed : int, default 0
        Seed of the reservoir sampler.
    recent : int, default 1_000
        Latest latencies kept for :meth:`recent_summary` (the health line).
    cpu : bool, default False
        Also measure the engine thread's CPU time from arrival to submit (``summary()["cpu"]``,
        over the first ``max_samples`` orders: a benchmark's setting).
    """

    def __init__(
        self,
        max_samples: int = 200_000,
        seed: int = 0,
        recent: int = 1_000,
        cpu: bool = False,
    ) -> None:
        self.max_samples = max_samples
        self.cpu = cpu
        self._cpu_arrivals: dict[int, int] = {}
        self._current_cpu_ns = 0
        self._order_cpu: dict[ClientOrderId, int] = {}
        self._cpu_samples: list[int] = []
        self._recent: deque[int] = deque(maxlen=recent)
        self._arrivals: OrderedDict[int, int] = OrderedDict()
        self._current_arrival_ns: int | None = None
        self._current_dispatch_ns = 0
        self._stamped = False
        self._orders: OrderedDict[ClientOrderId, tuple[int, int, int]] = OrderedDict()
        self._samples: list[tuple[int, int, int, int]] = []
        self._seen = 0
        self._rng = random.Random(seed)
        self.unattributed = 0
        self.at_stop = 0
        self._ended = False

    # -- stamps ---------------------------------------------------------------------------------

    def on_arrival(self, data: object) -> None:
        """Stamp a record handed to the data engine (call right before ``_handle_data``)."""
        self._stamped = True
        self._arrivals[id(data)] = time.perf_counter_ns()
        if self.cpu:
            self._cpu_arrivals[id(data)] = time.thread_time_ns()
        if len(self._arrivals) > _MAX_PENDING:
            key, _ = self._arrivals.popitem(last=False)
            self._cpu_arrivals.pop(key, None)

    def on_dispatch(self, data: object) -> None:
        """The data engine publishes ``data``: orders created from now on stem from it."""
        now = time.perf_counter_ns()
        arrival = self._arrivals.pop(id(data), None)
        if arrival is None and self._stamped:
            # Data published inside the node (an actor's regime record during a bar's dispatch)
            # belongs to the record that caused it, not to a new arrival.
            return
        self._current_arrival_ns = arrival if arrival is not None else now
        self._current_dispatch_ns = now
        if self.cpu:
            cpu_arrival = self._cpu_arrivals.pop(id(data), None)
            self._current_cpu_ns = time.thread_time_ns() if cpu_arrival is None else cpu_arrival

    def end_attribution(self) -> None:
        """The node stops: orders created from now on stem from no record (counted, not
        measured); orders already created keep their stamps."""
        self._ended = True
        self._current_arrival_ns = None

    def on_order_initialized(self, event: object) -> None:
        if not isinstance(event, OrderInitialized) or self._current_arrival_ns is None:
            return
        self._orders[event.client_order_id] = (
            self._current_arrival_ns,
            self._current_dispatch_ns,
            time.perf_counter_ns(),
        )
        if self.cpu:
            self._order_cpu[event.client_order_id] = self._current_cpu_ns
        if len(self._orders) > _MAX_PENDING:
            client_order_id, _ = self._orders.popitem(last=False)
            self._order_cpu.pop(client_order_id, None)

    def on_submit(self, client_order_id: ClientOrderId) -> None:
        """The execution client received the order's submit command."""
        stamps = self._orders.pop(client_order_id, None)
        if stamps is None:
            if self._ended:
                self.at_stop += 1
            else:
                self.unattributed += 1
            return
        arrival, dispatch, initialized = stamps
        now = time.perf_counter_ns()
        if self.cpu:
            cpu_arrival = self._order_cpu.pop(client_order_id, None)
            if cpu_arrival is not None and len(self._cpu_samples) < self.max_samples:
                self._cpu_samples.append(time.thread_time_ns() - cpu_arrival)
        self._record((now - arrival, dispatch - arrival, initialized - dispatch, now - initialized))

    def _record(self, sample: tuple[int, int, int, int]) -> None:
        self._seen += 1
        self._recent.append(sample[0])
        if len(self._samples) < self.max_samples:
            self._samples.append(sample)
            return
        slot = self._rng.randrange(self._seen)
        if slot < self.max_samples:
            self._samples[slot] = sample

    # -- wiring ---------------------------------------------------------------------------------

    def attach(self, msgbus: MessageBus) -> None:
        """Subscribe to data dispatches (before any other handler) and order events."""
        msgbus.subscribe(NAUTILUS_ALL_DATA, self.on_dispatch, priority=1_000_000)
        msgbus.subscribe(NAUTILUS_ORDER_EVENTS, self.on_order_initialized, priority=1_000_000)

    def detach(self, msgbus: MessageBus) -> None:
        for topic, handler in (
            (NAUTILUS_ALL_DATA, self.on_dispatch),
            (NAUTILUS_ORDER_EVENTS, self.on_order_initialized),
        ):
            if msgbus.is_subscribed(topic, handler):
                msgbus.unsubscribe(topic, handler)

    # -- results --------------------------------------------------------------------------------

    @property
    def count(self) -> int:
        """Orders measured (including those no longer held as samples)."""
        return self._seen

    def summary(self) -> dict[str, Any]:
        """Count and percentiles in microseconds (``None`` without samples)."""
        if not self._samples:
            return {"count": 0, "unattributed": self.unattributed, "at_stop": self.at_stop}
        samples = np.asarray(self._samples, dtype=np.float64) / 1_000.0
        values = samples[:, 0]
        p50, p95, p99 = np.percentile(values, [50, 95, 99])
        stages = {}
        for column, name in ((1, "queue"), (2, "decide"), (3, "route")):
            q50, q99 = np.percentile(samples[:, column], [50, 99])
            stages[name] = {"p50_us": float(q50), "p99_us": float(q99)}
        summary: dict[str, Any] = {
            "count": self._seen,
            "sampled": len(self._samples),
            "unattributed": self.unattributed,
            "at_stop": self.at_stop,
            "p50_us": float(p50),
            "p95_us": float(p95),
            "p99_us": float(p99),
            "max_us": float(values.max()),
            "mean_us": float(values.mean()),
            "stages": stages,
        }
        if self._cpu_samples:
            cpu = np.asarray(self._cpu_samples, dtype=np.float64) / 1_000.0
            c50, c95, c99 = np.percentile(cpu, [50, 95, 99])
            summary["cpu"] = {
                "count": len(cpu),
                "p50_us": float(c50),
                "p95_us": float(c95),
                "p99_us": float(c99),
                "max_us": float(cpu.max()),
                "mean_us": float(cpu.mean()),
            }
        return summary

    def recent_summary(self) -> dict[str, Any]:
        """Percentiles (µs) of the latest ``recent`` latencies: cheap enough for every health line.

        ``count`` is every order measured so far, ``window`` the latencies summarised.
        """
        if not self._recent:
            return {"count": self._seen, "window": 0, "unattributed": self.unattributed}
        values = sorted(self._recent)
        n = len(values)

        def at(q: float) -> float:
            return values[min(n - 1, int(q * n))] / 1_000.0

        return {
            "count": self._seen,
            "window": n,
            "unattributed": self.unattributed,
            "p50_us": at(0.50),
            "p95_us": at(0.95),
            "p99_us": at(0.99),
            "max_us": values[-1] / 1_000.0,
        }
