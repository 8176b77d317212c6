"""Monitors of the regime actor's model: Bayesian online change points on log returns and feature
drift of the live window against the model's training window, with YAML thresholds that can ask
for a retrain or a fallback.

Configured under the regime actor's ``monitors`` key::

    monitors:
      changepoint: {expected_run: 250, window: 5, max_run: 500}   # models.changepoint
      changepoint_threshold: 0.5
      changepoint_burn_in: 50          # returns before an alarm counts (short runs are certain)
      on_changepoint: retrain          # log | retrain
      drift_every: 21                  # rows between drift checks (0: off)
      drift_window: 250                # live rows compared with the training rows
      drift: {psi_retrain: 0.25, ks_pvalue_retrain: 0.001, psi_fallback: null}
      on_drift: act                    # log | act (act: the thresholds' retrain / fallback)
      coverage_window: 250             # rolling one-step interval coverage (0: off)
      coverage_nominal: 0.9
      coverage_tolerance: 0.1          # |coverage − nominal| beyond this is an event
      on_coverage: retrain             # log | retrain

Each check that crosses its threshold is a forensics record (the actor publishes a
``RegimeUpdateRecord`` with reason ``changepoint:…`` / ``drift:…`` / ``coverage:…``) and the
latest values are in :meth:`RegimeMonitors.health` (``changepoint_p``, ``drift_psi_max``,
``drift_feature``, ``coverage``, ``fallback``).

Coverage is the rolling share of bars whose first feature (``log_return`` by default) fell inside
the central ``coverage_nominal`` interval of the model's one-step predictive distribution (the
Gaussian moment-matched to the predictive mixture, as in :mod:`models.regime.scoring`), counted
on bars filtered by an unchanged model.
"""

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from statistics import NormalDist
from typing import Literal

import numpy as np

from grodt.core.errors import ConfigError
from models.changepoint.bocpd import BocpdConfig
from models.changepoint.bocpd import OnlineChangePoint
from models.regime.hmm import GaussianRegimeHMM
from research.drift import DriftThresholds
from research.drift import drift_action
from research.drift import feature_drift

__all__ = ["MonitorEvent", "RegimeMonitors", "RegimeMonitorsConfig"]


@dataclass(frozen=True)
class RegimeMonitorsConfig:
    """See the module docstring for every field."""

    changepoint: BocpdConfig | None = None
    changepoint_threshold: float = 0.5
    changepoint_burn_in: int = 50
    on_changepoint: Literal["log", "retrain"] = "log"
    drift_every: int = 0
    drift_window: int = 250
    drift: DriftThresholds = field(default_factory=DriftThresholds)
    on_drift: Literal["log", "act"] = "log"
    coverage_window: int = 0
    coverage_nominal: float = 0.9
    coverage_tolerance: float = 0.1
    on_coverage: Literal["log", "retrain"] = "log"

    def __post_init__(self) -> None:
        if self.coverage_window and (
            self.coverage_window < 20 or not 0.0 < self.coverage_nominal < 1.0
        ):
            raise ConfigError(
                f"coverage_window must be 0 or >= 20 and coverage_nominal in (0, 1), were "
                f"{self.coverage_window} and {self.coverage_nominal}",
            )
        if not 0.0 < self.changepoint_threshold < 1.0:
            raise ConfigError(
                f"changepoint_threshold: must be in (0, 1), was {self.changepoint_threshold}",
            )
        if self.drift_every < 0 or self.drift_window < 20:
            raise ConfigError(
                f"drift_every must be >= 0 and drift_window >= 20, were {self.drift_every} "
                f"and {self.drift_window}",
            )


@dataclass(frozen=True)
class MonitorEvent:
    """A threshold crossed at one bar: ``kind`` (changepoint / drift), ``action`` (log /
    retrain / fallback) and a short ``detail`` for the record's reason."""

    kind: str
    action: str
    detail: str


class RegimeMonitors:
    """The monitors of one bar type (see the module docstring)."""

    def __init__(self, config: RegimeMonitorsConfig, feature_names: Sequence[str]) -> None:
        self.config = config
        self.feature_names = [str(n) for n in feature_names]
        self._changepoint = OnlineChangePoint(config.changepoint) if config.changepoint else None
        self._live: deque[tuple[float, ...]] = deque(maxlen=config.drift_window)
        self._rows_since_drift = 0
        self._previous_close: float | None = None
        self._alarm = False
        self.changepoint_p = math.nan
        self.drift_psi_max = math.nan
        self.drift_feature = ""
        self.fallback = False
        self.events = 0
        self._covered: deque[int] = deque(maxlen=max(config.coverage_window, 1))
        self._coverage_alarm = False
        self._z = NormalDist().inv_cdf(0.5 + config.coverage_nominal / 2.0)
        self._moments: tuple[str, list[float], list[float], list[list[float]]] | None = None
        self.coverage = math.nan

    def observe_coverage(
        self,
        model: GaussianRegimeHMM | None,
        state_before: Sequence[float] | None,
        row: tuple[float, ...] | None,
        filtered: bool,
    ) -> list[MonitorEvent]:
        """Score this bar's first feature against the interval predicted from the filter state
        before it (``filtered``: the same model filtered this bar; otherwise not counted)."""
        config = self.config
        if not config.coverage_window or not filtered or model is None or row is None:
            return []
        if state_before is None:
            return []
        if self._moments is None or self._moments[0] != model.version_:
            self._moments = (
                model.version_,
                model.raw_means()[:, 0].tolist(),
                (model.raw_stds()[:, 0] ** 2).tolist(),
                model.transmat_.tolist(),
            )
        _, means, variances, transmat = self._moments
        k = len(means)
        predicted = [sum(state_before[i] * transmat[i][j] for i in range(k)) for j in range(k)]
        mean = sum(p * m for p, m in zip(predicted, means, strict=True))
        second = sum(p * (v + m * m) for p, v, m in zip(predicted, variances, means, strict=True))
        half = self._z * math.sqrt(max(second - mean * mean, 0.0))
        self._covered.append(int(mean - half <= row[0] <= mean + half))
        if len(self._covered) < config.coverage_window:
            return []
        self.coverage = sum(self._covered) / len(self._covered)
        alarm = abs(self.coverage - config.coverage_nominal) > config.coverage_tolerance
        fired = alarm and not self._coverage_alarm
        self._coverage_alarm = alarm
        if not fired:
            return []
        self.events += 1
        action = "retrain" if config.on_coverage == "retrain" else "log"
        return [MonitorEvent("coverage", action, f"coverage={self.coverage:.3f}")]

    def update(
        self,
        close: float,
        row: tuple[float, ...] | None,
        training_rows: np.ndarray | None,
    ) -> list[MonitorEvent]:
        """One bar: its close, its feature row (None if skipped) and the current model's
        training rows (None: no drift reference yet). Returns the thresholds crossed."""
        events: list[MonitorEvent] = []
        config = self.config
        if self._changepoint is not None and close > 0 and math.isfinite(close):
            if self._previous_close is not None:
                step = self._changepoint.update(math.log(close / self._previous_close))
                self.changepoint_p = step.p_change
                burnt_in = self._changepoint.count > config.changepoint_burn_in
                alarm = burnt_in and step.p_change > config.changepoint_threshold
                if alarm and not self._alarm:  # one event per excursion above the threshold
                    action = "retrain" if config.on_changepoint == "retrain" else "log"
                    events.append(
                        MonitorEvent("changepoint", action, f"p={step.p_change:.3f}"),
                    )
                self._alarm = alarm
            self._previous_close = close
        if row is not None and config.drift_every > 0:
            self._live.append(row)
            self._rows_since_drift += 1
            if (
                self._rows_since_drift >= config.drift_every
                and len(self._live) == config.drift_window
                and training_rows is not None
            ):
                self._rows_since_drift = 0
                events.extend(self._check_drift(training_rows))
        self.events += len(events)
        return events

    def _check_drift(self, training_rows: np.ndarray) -> list[MonitorEvent]:
        drifts = feature_drift(training_rows, np.asarray(self._live), self.feature_names)
        worst = max(drifts, key=lambda d: d.psi)
        self.drift_psi_max = worst.psi
        self.drift_feature = worst.feature
        action = drift_action(drifts, self.config.drift)
        if action == "none":
            return []
        taken = action if self.config.on_drift == "act" else "log"
        detail = f"psi={worst.psi:.3f},feature={worst.feature},ks_p={worst.ks_pvalue:.2g}"
        return [MonitorEvent("drift", taken, detail)]

    def health(self) -> dict[str, object]:
        """The monitors' latest values (a health-line extract)."""
        return {
            "changepoint_p": _or_none(self.changepoint_p),
            "drift_psi_max": _or_none(self.drift_psi_max),
            "drift_feature": self.drift_feature,
            "coverage": _or_none(self.coverage),
            "fallback": self.fallback,
            "monitor_events": self.events,
        }


def _or_none(value: float) -> float | None:
    """NaN (not measured yet) as None: health lines are strict JSON."""
    return None if math.isnan(value) else value
