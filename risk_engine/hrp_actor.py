"""HRP target actor: rolling returns of the traded instruments → target weights for the gate.

Samples the last close of every instrument once per ``sampling`` period (a new bar timestamp, or
an interval such as one day), keeps ``window`` return periods, and on the ``rebalance`` schedule
fits :class:`risk_engine.hrp.HierarchicalRiskParity` and publishes :class:`RiskTargets` (target
weights plus the return window, which the gate's CVaR limit uses as scenarios) on
:data:`risk_engine.messages.RISK_TARGETS_TOPIC`.

A period is recorded when the first bar of the next period arrives, so every sample is complete
and causal; the actor runs before the strategies, so targets fitted at bar ``t`` are in place
before any strategy's ``on_bar(t)`` — in backtest and live alike. Instruments with fewer than
``min_history`` returns in the window (late starters) get no target yet: the band does not apply
to them until they have the history.
"""

from collections import deque

import numpy as np
import pandas as pd
from nautilus_trader.common.actor import Actor
from nautilus_trader.common.config import ActorConfig
from nautilus_trader.config import PositiveInt
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType

from grodt.core.errors import GrodtError
from grodt.core.topics import RISK_TARGETS_TOPIC
from risk_engine.config import interval_ns
from risk_engine.hrp import HierarchicalRiskParity
from risk_engine.messages import RiskTargets


class HrpTargetActorConfig(ActorConfig, frozen=True):
    """Configuration for :class:`HrpTargetActor` (built from the ``risk.hrp`` section).

    Parameters
    ----------
    bar_types : list[BarType]
        Bars whose closes give the returns, one column per instrument. Every listed bar type
        of an instrument updates that column's close (the sample is the latest close of any of
        them, and any of them can start a new period): list one bar type per instrument.
    method : str, default "textbook"
        ``textbook``, ``hrp`` or ``herc``.
    codependence, linkage, risk_measure : str
        riskfolio-lib options for ``hrp``/``herc``.
    max_k : int, default 10
        HERC's maximum number of clusters.
    leaf_order : bool, default True
        riskfolio-lib's optimal leaf ordering.
    sampling : str, default "bar"
        ``"bar"`` or an interval (``"1D"``): one return per period.
    rebalance : str, default "1D"
        ``"bar"`` (every sample) or an interval between fits.
    window : int, default 252
        Return periods kept.
    min_history : int, default 60
        Returns an instrument needs before it gets a target.
    returns : str, default "simple"
        ``simple`` or ``log``.
    topic : str
        Where targets are published.
    """

    bar_types: list[BarType]
    method: str = "textbook"
    codependence: str = "pearson"
    linkage: str = "single"
    risk_measure: str = "MV"
    max_k: PositiveInt = 10
    leaf_order: bool = True
    sampling: str = "bar"
    rebalance: str = "1D"
    window: PositiveInt = 252
    min_history: PositiveInt = 60
    returns: str = "simple"
    topic: str = RISK_TARGETS_TOPIC

    def __post_init__(self) -> None:
        if not self.bar_types:
            raise ValueError("bar_types: list at least one bar type")
        interval_ns(self.sampling)
        interval_ns(self.rebalance)
        if self.min_history > self.window:
            raise ValueError(f"min_history ({self.min_history}) exceeds window ({self.window})")
        if self.returns not in {"simple", "log"}:
            raise ValueError(f"returns must be 'simple' or 'log', was {self.returns!r}")


class HrpTargetActor(Actor):
    """Publishes HRP/HERC target weights of the traded instruments on a rebalance schedule."""

    def __init__(self, config: HrpTargetActorConfig) -> None:
        super().__init__(config)
        self.instrument_ids: list[str] = []
        self._column_of: dict[str, int] = {}
        self._sample_ns = interval_ns(config.sampling)
        self._rebalance_ns = interval_ns(config.rebalance)
        # Last close per instrument (NaN until its first bar) and the sampled closes: a ring of
        # 2 × (window + 1) rows, so the window is always one contiguous slice (no per-fit stack
        # of row arrays on the engine thread).
        self.last_close = np.zeros(0)
        self._closes = np.zeros((0, 0))
        self._kept = 0  # rows of the window held (≤ window + 1)
        self._end = 0  # ring row after the newest sample
        self.sample_times: deque[int] = deque(maxlen=config.window + 1)
        self._period: int | None = None
        self._period_ts = 0
        self._rebalance_period: int | None = None
        self.fits = 0
        self.latest: RiskTargets | None = None
        self.estimator = HierarchicalRiskParity(
            method=config.method,
            codependence=config.codependence,
            linkage=config.linkage,
            risk_measure=config.risk_measure,
            max_k=config.max_k,
            leaf_order=config.leaf_order,
            min_periods=config.min_history,
        )

    def on_start(self) -> None:
        for bar_type in self.config.bar_types:
            instrument_id = str(bar_type.instrument_id)
            if instrument_id not in self._column_of:
                self._column_of[instrument_id] = len(self.instrument_ids)
                self.instrument_ids.append(instrument_id)
        self.last_close = np.full(len(self.instrument_ids), np.nan)
        self._closes = np.full((2 * (self.config.window + 1), len(self.instrument_ids)), np.nan)
        for bar_type in self.config.bar_types:
            self.subscribe_bars(bar_type)

    def on_stop(self) -> None:
        for bar_type in self.config.bar_types:
            self.unsubscribe_bars(bar_type)

    def on_bar(self, bar: Bar) -> None:
        ts = bar.ts_event
        period = ts // self._sample_ns if self._sample_ns else ts
        if self._period is not None and period != self._period:
            self._close_period()
        self._period = period
        self._period_ts = ts
        column = self._column_of.get(str(bar.bar_type.instrument_id))
        if column is not None:
            self.last_close[column] = bar.close.as_double()

    def on_historical_data(self, data: object) -> None:
        """A bar from before this run of the actor (a restarted node's warm-up): handled as in
        :meth:`on_bar`, fits and target publications included, so the samples, the fit count
        and the risk gate's latest targets equal the crashed node's (the targets topic reaches
        the gate only)."""
        if isinstance(data, Bar):
            self.on_bar(data)

    def on_reset(self) -> None:
        self._kept = self._end = 0
        self.sample_times.clear()
        self._period = None
        self._rebalance_period = None
        self.fits = 0
        self.latest = None
        self.last_close[:] = np.nan

    @property
    def samples(self) -> np.ndarray:
        """(n_samples, n_instruments) sampled closes, oldest first (at most ``window + 1``)."""
        return self._closes[self._end - self._kept : self._end]

    def _close_period(self) -> None:
        capacity = self.config.window + 1
        if self._end == self._closes.shape[0]:
            # The ring is full: move the window (capacity − 1 rows) to the front.
            keep = capacity - 1
            self._closes[:keep] = self._closes[self._end - keep : self._end]
            self._end = keep
        self._closes[self._end] = self.last_close
        self._end += 1
        self._kept = min(self._kept + 1, capacity)
        self.sample_times.append(self._period_ts)
        rebalance = self._period_ts // self._rebalance_ns if self._rebalance_ns else self._period_ts
        if rebalance == self._rebalance_period:
            return
        returns = self.returns_window()
        if returns.shape[0] < self.config.min_history:
            return
        self._rebalance_period = rebalance
        self._fit_and_publish(returns)

    def returns_window(self) -> np.ndarray:
        """(n_periods, n_instruments) returns of the sampled closes; NaN before a first price."""
        if self._kept < 2:
            return np.zeros((0, len(self.instrument_ids)))
        closes = self.samples
        with np.errstate(invalid="ignore", divide="ignore"):
            if self.config.returns == "log":
                return np.diff(np.log(closes), axis=0)
            return closes[1:] / closes[:-1] - 1.0

    def _fit_and_publish(self, returns: np.ndarray) -> None:
        counts = np.sum(~np.isnan(returns), axis=0)
        eligible = [
            k for k in range(len(self.instrument_ids)) if counts[k] >= self.config.min_history
        ]
        if not eligible:
            return
        try:
            self.estimator.fit(returns[:, eligible], [self.instrument_ids[k] for k in eligible])
        except (GrodtError, ValueError, ArithmeticError, np.linalg.LinAlgError) as e:
            self.log.error(f"HRP fit failed, keeping the previous targets: {e}")
            return
        self.fits += 1
        ts = self.sample_times[-1]
        stamp = pd.Timestamp(ts, unit="ns", tz="UTC").strftime("%Y%m%dT%H%M%S")
        targets = RiskTargets(
            ts_event=ts,
            instrument_ids=tuple(self.estimator.assets_),
            weights=tuple(float(w) for w in self.estimator.weights_),
            returns=returns[:, eligible],
            method=self.config.method,
            model_version=f"{self.config.method}-{stamp}-{self.fits}",
        )
        self.latest = targets
        self.msgbus.publish(self.config.topic, targets)
        self.log.info(
            f"HRP targets ({targets.model_version}): "
            + ", ".join(
                f"{i}={w:.3f}" for i, w in zip(targets.instrument_ids, targets.weights, strict=True)
            ),
        )
