"""An actor that SIGKILLs its own node process on chosen bars (the crash/restart tests)."""

import os
import signal
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.core.data import Data
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType


class CrashAtConfig(ActorConfig, frozen=True):
    """Kill the process on each ``at_bars``-th bar of ``bar_type`` (1-based, over the whole
    replay: the bars a restarted node warms up on count), once each. ``marker`` lists the kills
    done, one line ``<bar number> <ts_init>`` each, written before the kill; an empty
    ``at_bars`` never kills."""

    bar_type: BarType
    at_bars: list[PositiveInt]
    marker: str


def killed_at(marker: Path) -> dict[int, int]:
    """Bar number → ``ts_init`` (UNIX ns) of every kill ``marker`` records."""
    if not marker.exists():
        return {}
    lines = marker.read_text().split("\n")
    return {int(n): int(ts) for n, ts in (line.split() for line in lines if line.strip())}


class CrashAt(Actor):
    """SIGKILL inside a bar's dispatch: the venue has seen the bar (it moves first), the
    strategies have not."""

    def __init__(self, config: CrashAtConfig) -> None:
        super().__init__(config)
        self._bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_historical_data(self, data: Data) -> None:
        # A restarted node's warm-up: the bars the crashed node had seen.
        if isinstance(data, Bar) and data.bar_type == self.config.bar_type:
            self._bars += 1

    def on_bar(self, bar: Bar) -> None:
        self._bars += 1
        marker = Path(self.config.marker)
        if self._bars in self.config.at_bars and self._bars not in killed_at(marker):
            with marker.open("a") as sink:
                sink.write(f"{self._bars} {bar.ts_init}\n")
            os.kill(os.getpid(), signal.SIGKILL)
