"""The strategy monitor: each strategy's rolling live performance against its backtest
expectation, with YAML thresholds that can ask the models for a retrain or a fallback.

For every strategy named in ``expectations``, the actor keeps the realised returns of its last
``window`` closed positions (``PositionClosed.realized_return``, a fraction of the position's
entry value) and computes after each close:

- ``hit_rate``: share of those positions with a positive return;
- ``mean_return``: their mean return per position;
- ``sharpe``: mean / sample sd of the returns, per position (not annualised; NaN with one
  position or no spread).

The expectation is the same three figures from a reference run — a backtest of the same
strategy — given in the config or a YAML file (``expectation_from_returns`` computes them from
that run's closed-position returns, e.g. its ``positions.csv``)::

    actors:
      - path: actors.strategy_monitor:StrategyMonitor
        config:
          window: 20                      # closed positions per strategy
          expectations:                   # or expectations_file: a YAML of this mapping
            EMACross-001: {hit_rate: 0.4, mean_return: 0.004, sharpe: 0.15, source: runs/…}
          max_hit_rate_shortfall: 0.15    # live below expected − this: a breach (null: off)
          max_sharpe_shortfall: 0.5
          max_mean_return_shortfall: null
          on_breach: retrain              # log | retrain | fallback

Once ``window`` positions have closed, a figure below its expectation by more than its
shortfall is a breach: one per excursion below (as the regime monitors do), each a warning, a
:class:`~grodt.core.records.MonitorRecord` (``monitor = "strategy_vs_backtest"``, the strategy
id as ``subject``, live ``figures`` beside ``expected``, the ``action``) on
``Topics.REGIME``, and — for ``retrain`` or ``fallback`` — a message on
:data:`~grodt.core.topics.MODEL_CONTROL_TOPIC`: a dict ``{"action": "retrain" | "fallback",
"reason": "<strategy id>: <shortfalls>", "source": <this actor's id>, "subject": <strategy id>}``.
The regime actor answers every request (a refit at its next row; the neutral prior until its
next fit); the meta-controller (``actors.meta_controller``: its retrain schedule's refit at the
next rebalance; the static weights) and the RL ensemble (``strategies.rl_ensemble``: its
fine-tune at the next row; flat) answer the requests whose ``subject`` is one of their
strategies (or that have no ``subject``). :meth:`StrategyMonitor.health` puts the
figures on the live node's health line. The actor trades nothing and does not know whether it
runs in a backtest or live.
"""

import math
from collections import deque
from dataclasses import asdict
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import msgspec
import numpy as np
import yaml
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.events import PositionClosed

from grodt.core.errors import ConfigError
from grodt.core.records import MonitorRecord
from grodt.core.records import make_trace_id
from grodt.core.topics import MODEL_CONTROL_TOPIC
from grodt.core.topics import NAUTILUS_POSITION_EVENTS
from grodt.core.topics import Topics

__all__ = [
    "StrategyExpectation",
    "StrategyMonitor",
    "StrategyMonitorConfig",
    "expectation_from_returns",
    "performance_figures",
]

MONITOR_NAME = "strategy_vs_backtest"


@dataclass(frozen=True)
class StrategyExpectation:
    """A strategy's figures in its reference run, per closed position (see the module
    docstring): ``hit_rate`` in [0, 1], ``mean_return`` and ``sharpe`` per position, and the
    ``source`` they came from (a run directory)."""

    hit_rate: float
    mean_return: float
    sharpe: float
    source: str = ""

    def __post_init__(self) -> None:
        if not 0.0 <= self.hit_rate <= 1.0:
            raise ConfigError(f"hit_rate: must be in [0, 1], was {self.hit_rate}")


def performance_figures(returns: np.ndarray) -> dict[str, float]:
    """``trades``, ``hit_rate``, ``mean_return`` and ``sharpe`` (per position) of closed
    positions' returns (fractions), shape (n,)."""
    returns = np.asarray(returns, dtype=float)
    n = len(returns)
    if n == 0:
        return {"trades": 0.0, "hit_rate": math.nan, "mean_return": math.nan, "sharpe": math.nan}
    sd = float(np.std(returns, ddof=1)) if n > 1 else 0.0
    mean = float(np.mean(returns))
    return {
        "trades": float(n),
        "hit_rate": float(np.mean(returns > 0.0)),
        "mean_return": mean,
        "sharpe": mean / sd if sd > 0.0 else math.nan,
    }


def expectation_from_returns(returns: np.ndarray, source: str = "") -> StrategyExpectation:
    """The expectation of a reference run from its closed positions' returns."""
    figures = performance_figures(returns)
    if not figures["trades"]:
        raise ConfigError(f"{source or 'reference run'}: no closed positions to expect from")
    return StrategyExpectation(
        hit_rate=figures["hit_rate"],
        mean_return=figures["mean_return"],
        sharpe=figures["sharpe"],
        source=source,
    )


def _read_expectations(path: str) -> dict[str, StrategyExpectation]:
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"expectations_file: {path}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"expectations_file: {path}: expected a mapping strategy id → figures")
    out = {}
    for strategy_id, fields in data.items():
        try:
            out[str(strategy_id)] = StrategyExpectation(**fields)
        except (TypeError, ConfigError) as e:
            raise ConfigError(f"expectations_file: {path}: {strategy_id}: {e}") from None
    return out


class StrategyMonitorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`StrategyMonitor` (every field in the module docstring).

    Parameters
    ----------
    expectations : dict[str, StrategyExpectation]
        Strategy id → its reference figures (merged over ``expectations_file``'s).
    expectations_file : str, optional
        A YAML mapping of the same, read when the config loads.
    window : int, default 20
        Closed positions per strategy in the rolling figures; none is judged before.
    max_hit_rate_shortfall, max_sharpe_shortfall, max_mean_return_shortfall : float or None
        How far below its expectation a figure may fall (None: not judged).
    on_breach : {"log", "retrain", "fallback"}, default "log"
    """

    expectations: dict[str, StrategyExpectation] = msgspec.field(default_factory=dict)
    expectations_file: str | None = None
    window: int = 20
    max_hit_rate_shortfall: float | None = 0.15
    max_sharpe_shortfall: float | None = 0.5
    max_mean_return_shortfall: float | None = None
    on_breach: Literal["log", "retrain", "fallback"] = "log"

    def __post_init__(self) -> None:
        if self.window < 2:
            raise ConfigError(f"window: must be >= 2 closed positions, was {self.window}")
        if not self.all_expectations():
            raise ConfigError("expectations: no strategy to monitor (give expectations or a file)")

    def all_expectations(self) -> dict[str, StrategyExpectation]:
        """``expectations_file``'s figures, overridden by ``expectations``."""
        merged = _read_expectations(self.expectations_file) if self.expectations_file else {}
        merged.update(self.expectations)
        return merged


class _Rolling:
    """One strategy's last returns, its figures and its breach state."""

    def __init__(self, window: int) -> None:
        self.returns: deque[float] = deque(maxlen=window)
        self.figures = performance_figures(np.empty(0))
        self.breached = False
        self.events = 0


class StrategyMonitor(Actor):
    """Compares each monitored strategy's rolling live figures with its backtest expectation
    (see the module docstring)."""

    def __init__(self, config: StrategyMonitorConfig) -> None:
        super().__init__(config)
        self.expectations = config.all_expectations()
        self.rolling = {name: _Rolling(config.window) for name in self.expectations}
        self._sequence = 0

    def on_start(self) -> None:
        self.msgbus.subscribe(topic=NAUTILUS_POSITION_EVENTS, handler=self._on_position_event)

    def on_stop(self) -> None:
        if self.msgbus.is_subscribed(NAUTILUS_POSITION_EVENTS, self._on_position_event):
            self.msgbus.unsubscribe(topic=NAUTILUS_POSITION_EVENTS, handler=self._on_position_event)

    def on_reset(self) -> None:
        self.rolling = {name: _Rolling(self.config.window) for name in self.expectations}

    def _on_position_event(self, event: object) -> None:
        if not isinstance(event, PositionClosed):
            return
        rolling = self.rolling.get(event.strategy_id.value)
        if rolling is None:
            return
        try:
            self._observe(event, rolling)
        except Exception as e:  # a monitor must never stop the node
            self.log.error(f"strategy monitor failed on {event.position_id}: {e!r}; monitor off")
            self.rolling.pop(event.strategy_id.value, None)

    def _observe(self, event: PositionClosed, rolling: _Rolling) -> None:
        rolling.returns.append(float(event.realized_return))
        rolling.figures = performance_figures(np.fromiter(rolling.returns, dtype=float))
        if len(rolling.returns) < self.config.window:
            return
        strategy_id = event.strategy_id.value
        expected = self.expectations[strategy_id]
        shortfalls = self._shortfalls(rolling.figures, expected)
        breached = bool(shortfalls)
        fired = breached and not rolling.breached
        rolling.breached = breached
        if not fired:
            return
        rolling.events += 1
        action = self.config.on_breach
        reason = "; ".join(shortfalls)
        self.log.warning(f"strategy monitor: {strategy_id} {reason}; action={action}")
        self._sequence += 1
        component = str(self.id)
        self.msgbus.publish(
            Topics.REGIME,
            MonitorRecord(
                trace_id=make_trace_id(component, event.ts_event, self._sequence),
                ts_event=event.ts_event,
                ts_init=self.clock.timestamp_ns(),
                component_id=component,
                monitor=MONITOR_NAME,
                subject=strategy_id,
                figures=rolling.figures,
                expected=_figures_of(expected),
                action=action,
                reason=reason,
            ),
        )
        if action != "log":
            self.msgbus.publish(
                MODEL_CONTROL_TOPIC,
                {
                    "action": action,
                    "reason": f"{strategy_id}: {reason}",
                    "source": component,
                    "subject": strategy_id,
                },
            )

    def _shortfalls(self, figures: dict[str, float], expected: StrategyExpectation) -> list[str]:
        config = self.config
        out = []
        for name, allowed in (
            ("hit_rate", config.max_hit_rate_shortfall),
            ("sharpe", config.max_sharpe_shortfall),
            ("mean_return", config.max_mean_return_shortfall),
        ):
            target = getattr(expected, name)
            live = figures[name]
            if allowed is None or not math.isfinite(target):
                continue
            # No spread (NaN Sharpe) over a full window is judged on the other figures.
            if math.isfinite(live) and live < target - allowed:
                out.append(f"{name} {live:.4g} < expected {target:.4g} - {allowed}")
        return out

    def health(self) -> dict[str, dict[str, object]]:
        """Per monitored strategy, for the live node's health line: the rolling figures, the
        expected ones, whether it is in breach and how many breaches (NaN as None)."""
        out: dict[str, dict[str, object]] = {}
        for name, rolling in self.rolling.items():
            expected = self.expectations[name]
            out[name] = {
                **{k: _or_none(v) for k, v in rolling.figures.items()},
                **{f"expected_{k}": _or_none(v) for k, v in _figures_of(expected).items()},
                "breached": rolling.breached,
                "monitor_events": rolling.events,
            }
        return out

    def summary(self) -> dict[str, dict[str, object]]:
        return self.health()


def _figures_of(expected: StrategyExpectation) -> dict[str, float]:
    return {k: v for k, v in asdict(expected).items() if k != "source"}


def _or_none(value: float) -> float | None:
    return None if isinstance(value, float) and math.isnan(value) else value
