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
      accuracy_window: 250             # rolling prediction accuracy (0: off)
      accuracy_horizon: 20             # bars of the realised label's window
      accuracy_z: 0.5                  # label threshold, in trailing one-bar sds × √horizon
      accuracy_max_brier: null         # rolling Brier above this is an event (null: record only)
      accuracy_max_loglik_drop: 1.0    # nats/bar below the model's first full window: an event
      on_accuracy: retrain             # log | retrain | fallback

Each check that crosses its threshold is a forensics record (the actor publishes a
``RegimeUpdateRecord`` with reason ``changepoint:…`` / ``drift:…`` / ``coverage:…``) and the
latest values are in :meth:`RegimeMonitors.health` (``changepoint_p``, ``drift_psi_max``,
``drift_feature``, ``coverage``, ``predictive_loglik``, ``brier``, ``regime_accuracy``,
``fallback``).

Coverage is the rolling share of bars whose first feature (``log_return`` by default) fell inside
the central ``coverage_nominal`` interval of the model's one-step predictive distribution (the
Gaussian moment-matched to the predictive mixture, as in :mod:`models.regime.scoring`), counted
on bars filtered by an unchanged model.

Prediction accuracy (``accuracy_window`` > 0), two rolling means over the last
``accuracy_window`` scored bars:

- ``predictive_loglik``: the one-step predictive log density of the bar's first feature (nats
  per bar, raw feature units): log Σ_j p(state_t = j | bars ..t−1) · N(x_t; μ_j, σ_j²), on the
  same bars as coverage (filtered by an unchanged model); the window restarts with each new
  model, whose first full window is its reference: a fall of more than
  ``accuracy_max_loglik_drop`` nats per bar below it is a ``loglik`` event (a difference of
  log densities does not depend on the feature's units);
- ``brier`` and ``regime_accuracy`` of the regime probabilities against a realised label defined
  causally: the probabilities published at bar t − h (h = ``accuracy_horizon``) are scored at
  bar t against the label of the h bars after them — ``bull`` when the log return over
  (t − h, t] exceeds ``accuracy_z`` · σ · √h, ``bear`` below −``accuracy_z`` · σ · √h, else
  ``sideways``, with σ the sd of the one-bar log returns of the ``accuracy_window`` bars before
  t − h. Brier = Σ_label (p − 1[label])², in [0, 2]; the neutral prior scores ~0.67, a model
  above ``accuracy_max_brier`` is worse than that when the bound is set there.
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
    accuracy_window: int = 0
    accuracy_horizon: int = 20
    accuracy_z: float = 0.5
    accuracy_max_brier: float | None = None
    accuracy_max_loglik_drop: float | None = None
    on_accuracy: Literal["log", "retrain", "fallback"] = "log"

    def __post_init__(self) -> None:
        if self.accuracy_window and (
            self.accuracy_window < 20 or self.accuracy_horizon < 1 or self.accuracy_z < 0.0
        ):
            raise ConfigError(
                f"accuracy_window must be 0 or >= 20, accuracy_horizon >= 1 and accuracy_z >= 0; "
                f"were {self.accuracy_window}, {self.accuracy_horizon} and {self.accuracy_z}",
            )
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
        window = max(config.accuracy_window, 1)
        self._logliks: deque[float] = deque(maxlen=window)
        self._log_closes: deque[float] = deque(maxlen=window + config.accuracy_horizon + 1)
        self._published: deque[tuple[float, ...] | None] = deque(maxlen=config.accuracy_horizon + 1)
        self._briers: deque[float] = deque(maxlen=window)
        self._hits: deque[int] = deque(maxlen=window)
        self._accuracy_alarm = False
        self._loglik_model = ""
        self._loglik_reference = math.nan
        self._loglik_alarm = False
        self.predictive_loglik = math.nan
        self.brier = math.nan
        self.regime_accuracy = math.nan

    @property
    def watches_model(self) -> bool:
        """Coverage or predictive log-likelihood is on: the caller passes the model and filter
        state from before each bar to :meth:`observe_coverage`."""
        return bool(self.config.coverage_window or self.config.accuracy_window)

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
        if not (config.coverage_window or config.accuracy_window):
            return []
        if not filtered or model is None or row is None or state_before is None:
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
        events = self._observe_loglik(model.version_, row[0], predicted, means, variances)
        if not config.coverage_window:
            return events
        half = self._z * math.sqrt(max(second - mean * mean, 0.0))
        self._covered.append(int(mean - half <= row[0] <= mean + half))
        if len(self._covered) < config.coverage_window:
            return []
        self.coverage = sum(self._covered) / len(self._covered)
        alarm = abs(self.coverage - config.coverage_nominal) > config.coverage_tolerance
        fired = alarm and not self._coverage_alarm
        self._coverage_alarm = alarm
        if not fired:
            return events
        self.events += 1
        action = "retrain" if config.on_coverage == "retrain" else "log"
        return [*events, MonitorEvent("coverage", action, f"coverage={self.coverage:.3f}")]

    def _observe_loglik(
        self,
        version: str,
        x: float,
        predicted: Sequence[float],
        means: Sequence[float],
        variances: Sequence[float],
    ) -> list[MonitorEvent]:
        """The rolling one-step predictive log density of ``x`` (see the module docstring)."""
        config = self.config
        if not config.accuracy_window:
            return []
        if version != self._loglik_model:  # a new model: a new window and reference
            self._loglik_model = version
            self._logliks.clear()
            self._loglik_reference = math.nan
            self._loglik_alarm = False
        density = sum(
            p * math.exp(-0.5 * (x - m) ** 2 / v) / math.sqrt(2.0 * math.pi * v)
            for p, m, v in zip(predicted, means, variances, strict=True)
        )
        self._logliks.append(math.log(density) if density > 0.0 else -745.0)  # ln(5e-324)
        if len(self._logliks) < config.accuracy_window:
            return []
        self.predictive_loglik = sum(self._logliks) / len(self._logliks)
        if math.isnan(self._loglik_reference):
            self._loglik_reference = self.predictive_loglik
        if config.accuracy_max_loglik_drop is None:
            return []
        drop = self._loglik_reference - self.predictive_loglik
        alarm = drop > config.accuracy_max_loglik_drop
        fired = alarm and not self._loglik_alarm
        self._loglik_alarm = alarm
        if not fired:
            return []
        self.events += 1
        detail = f"loglik={self.predictive_loglik:.3f},drop={drop:.3f}"
        return [MonitorEvent("loglik", config.on_accuracy, detail)]

    def observe_regime(
        self,
        close: float,
        probabilities: Sequence[float] | None,
    ) -> list[MonitorEvent]:
        """Score the probabilities of ``accuracy_horizon`` bars ago against the label realised
        since (see the module docstring); ``probabilities`` are this bar's (bull, bear,
        sideways), None while the model gives only the prior. A bar with an invalid close is
        not counted."""
        config = self.config
        if not config.accuracy_window or not (close > 0.0 and math.isfinite(close)):
            return []
        self._log_closes.append(math.log(close))
        self._published.append(tuple(probabilities) if probabilities is not None else None)
        h = config.accuracy_horizon
        if len(self._published) <= h or len(self._log_closes) < self._log_closes.maxlen:
            return []
        scored = self._published[0]
        if scored is None:
            return []
        logs = list(self._log_closes)
        realised = logs[-1] - logs[-1 - h]
        before = np.diff(logs[: len(logs) - h])
        bound = config.accuracy_z * float(np.std(before)) * math.sqrt(h)
        label = 0 if realised > bound else 1 if realised < -bound else 2  # bull, bear, sideways
        self._briers.append(sum((p - (i == label)) ** 2 for i, p in enumerate(scored)))
        bull, bear, sideways = scored
        guess = 2 if sideways >= bull and sideways >= bear else 0 if bull >= bear else 1
        self._hits.append(int(guess == label))
        if len(self._briers) < config.accuracy_window:
            return []
        self.brier = sum(self._briers) / len(self._briers)
        self.regime_accuracy = sum(self._hits) / len(self._hits)
        if config.accuracy_max_brier is None:
            return []
        alarm = self.brier > config.accuracy_max_brier
        fired = alarm and not self._accuracy_alarm
        self._accuracy_alarm = alarm
        if not fired:
            return []
        self.events += 1
        loglik = "nan" if math.isnan(self.predictive_loglik) else f"{self.predictive_loglik:.3f}"
        detail = f"brier={self.brier:.3f},accuracy={self.regime_accuracy:.3f},loglik={loglik}"
        return [MonitorEvent("accuracy", config.on_accuracy, detail)]

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
            "predictive_loglik": _or_none(self.predictive_loglik),
            "brier": _or_none(self.brier),
            "regime_accuracy": _or_none(self.regime_accuracy),
            "fallback": self.fallback,
            "monitor_events": self.events,
        }


def _or_none(value: float) -> float | None:
    """NaN (not measured yet) as None: health lines are strict JSON."""
    return None if math.isnan(value) else value
