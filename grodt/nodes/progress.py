"""A progress bar for backtests, driven by the simulated clock (not by every bar).

The actor sets one timer per percent of the run's time span, so it costs about a hundred timer
events per run, whatever the number of bars.
"""

import sys

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.common.events import TimeEvent
from nautilus_trader.config import PositiveInt


class ProgressActorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`ProgressActor`.

    Parameters
    ----------
    start_ns, end_ns : int
        The run's data span in UNIX nanoseconds.
    steps : int, default 100
        Number of updates over the span.
    description : str
        Label shown left of the bar.
    """

    start_ns: int
    end_ns: int
    steps: PositiveInt = 100
    description: str = "backtest"


class ProgressActor(Actor):
    """Draws a tqdm bar on stderr as simulated time advances."""

    def __init__(self, config: ProgressActorConfig) -> None:
        super().__init__(config)
        self._bar = None

    def on_start(self) -> None:
        from tqdm import tqdm

        span = max(self.config.end_ns - self.config.start_ns, 1)
        self._bar = tqdm(
            total=self.config.steps,
            desc=self.config.description,
            unit="%",
            file=sys.stderr,
            leave=False,
            dynamic_ncols=True,
        )
        interval_ns = max(span // self.config.steps, 1)
        self.clock.set_timer_ns(
            name="grodt-progress",
            interval_ns=interval_ns,
            start_time_ns=max(self.clock.timestamp_ns(), self.config.start_ns),
            stop_time_ns=self.config.end_ns,
            callback=self._on_tick,
        )

    def _on_tick(self, event: TimeEvent) -> None:
        if self._bar is None:
            return
        span = max(self.config.end_ns - self.config.start_ns, 1)
        done = int((event.ts_event - self.config.start_ns) * self.config.steps / span)
        self._bar.update(max(min(done, self.config.steps) - self._bar.n, 0))

    def on_stop(self) -> None:
        if self._bar is not None:
            self._bar.update(self.config.steps - self._bar.n)
            self._bar.close()
            self._bar = None
