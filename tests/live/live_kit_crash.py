"""An actor that SIGKILLs its own node process once, mid-run (the crash/restart tests)."""

import os
import signal
from pathlib import Path

from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType


class CrashOnceConfig(ActorConfig, frozen=True):
    """Kill the process on the ``at_bar``-th bar of ``bar_type`` unless ``marker`` exists
    (written first: the restarted node runs through)."""

    bar_type: BarType
    at_bar: PositiveInt
    marker: str


class CrashOnce(Actor):
    """SIGKILL inside a bar's dispatch: the venue has seen the bar, the strategies have not."""

    def __init__(self, config: CrashOnceConfig) -> None:
        super().__init__(config)
        self._bars = 0

    def on_start(self) -> None:
        self.subscribe_bars(self.config.bar_type)

    def on_bar(self, bar: Bar) -> None:
        self._bars += 1
        marker = Path(self.config.marker)
        if self._bars >= self.config.at_bar and not marker.exists():
            marker.write_text(str(bar.ts_init))
            os.kill(os.getpid(), signal.SIGKILL)
