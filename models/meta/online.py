"""Online retraining of the meta-controller's performance model on the rows it logs itself.

At every rebalance after the warm-up the meta-controller has one feature row per strategy
(:func:`models.meta.features.feature_names` order) and, one rebalance later, each strategy's
per-unit return over the window that followed: a training row, exactly as ``grodt meta train``
builds them from the allocation records (``grodt.experiments.meta_dataset.allocation_rows``:
strategies at weight 0 over the window give no row). :class:`OnlineMetaTrainer` keeps the last
``window`` rebalances' rows and refits the model on a :class:`MetaRetrainConfig` schedule through
the lifecycle's scheduled refit with lag (:class:`models.lifecycle.ScheduledRefitter`):

- the schedule counts **rebalances** (one row of the schedule = one rebalance with inputs): a fit
  is due every ``every`` rebalances once ``min_window`` are there; it trains on the window ending
  at that rebalance and takes over ``lag`` rebalances later, at a rebalance boundary, whether it
  ran in a worker process (the actor's, with ``lag`` > 0) or synchronously (replay; a late fit is
  waited for) — so a backtest, a live node and a replay switch models at the same decision;
- a fit (:func:`fit_meta_online`) takes the earlier ``1 − calibration_share`` of the window's
  rows (in time) for the quantile boosters and the later rows for the conformal interval and the
  isotonic P(return > 0) (fitted on the new boosters' predictions of rows they did not train
  on in this fit; with a warm start earlier fits' trees have seen some of them, so the
  interval can be a little narrow: the coverage monitor's ``calibration_drift`` check guards
  it);
- warm start (``warm_start: true``): LightGBM continued training (``init_model``): the previous
  model's boosters gain ``warm_trees`` trees fitted on the new window; a model that has
  ``max_trees`` trees per level is refitted cold (``n_estimators`` trees), which bounds the
  model's size and prediction cost;
- every model is stamped with its content hash (:meth:`MetaModel.stamp`): the ``model_version``
  of the allocation records changes at the switch.

Deterministic: LightGBM with one thread and ``deterministic``; the same rows give the same model
bit for bit, so replay refits the same versions.
"""

from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from grodt.core.errors import ConfigError
from models.lifecycle import RefitOutcome
from models.lifecycle import RetrainSchedule
from models.lifecycle import ScheduledRefitter
from models.lifecycle.refit import RefitError
from models.meta.calibration import ConformalInterval
from models.meta.calibration import PositiveProbability
from models.meta.calibration import raw_positive_probability
from models.meta.features import feature_names
from models.meta.model import MetaModel
from models.meta.quantile import QuantileReturnModel

__all__ = [
    "MetaRetrainConfig",
    "OnlineMetaTrainer",
    "RetrainPayload",
    "fit_meta_online",
    "warm_up_worker",
]

_WEIGHT_TOLERANCE = 1e-9


@dataclass(frozen=True)
class MetaRetrainConfig:
    """The meta-controller's retraining schedule (YAML ``retrain:`` of its config).

    Parameters
    ----------
    window : int, default 104
        Rebalances in the sliding training window (each gives one row per strategy that had a
        weight; weekly rebalances: two years).
    every : int, default 4
        Rebalances between refits (0: fit once).
    lag : int, default 1
        Rebalances between a fit's last training window and the rebalance its model takes over
        at (> 0: the fit runs in a worker process meanwhile; 0: synchronously, on the engine
        thread). Below ``every`` when that is set.
    warm_start : bool, default True
        Continue the previous model's boosters (LightGBM ``init_model``) instead of a cold fit.
    min_window : int, optional
        Rebalances before the first fit (default ``window``).
    warm_trees : int, default 25
        Trees per level added by a warm-started fit.
    max_trees : int, default 600
        A model with this many trees per level is refitted cold.
    n_estimators, min_child_samples : int, default 150, 30
        The cold fit's LightGBM trees and minimum rows per leaf.
    calibration_share : float, default 0.25
        The later share of the window's rows kept for the calibrators.
    register_as : str, optional
        A registry model name: every refitted model that takes over is registered as a new
        version of it with the alias ``challenger`` (by the actor, in its worker process; a
        replay never registers). None: not registered.
    tracking_uri : str, optional
        The registry's store (default: the process's, ``GRODT_TRACKING_URI`` / settings).
    """

    window: int = 104
    every: int = 4
    lag: int = 1
    warm_start: bool = True
    min_window: int | None = None
    warm_trees: int = 25
    max_trees: int = 600
    n_estimators: int = 150
    min_child_samples: int = 30
    calibration_share: float = 0.25
    register_as: str | None = None
    tracking_uri: str | None = None

    def __post_init__(self) -> None:
        if not 0.0 < self.calibration_share < 1.0:
            raise ConfigError(
                f"retrain.calibration_share: must be in (0, 1), was {self.calibration_share}"
            )
        for name in ("warm_trees", "max_trees", "n_estimators", "min_child_samples"):
            if getattr(self, name) < 1:
                raise ConfigError(f"retrain.{name}: must be >= 1, was {getattr(self, name)}")
        try:
            self.schedule()
        except ConfigError as e:
            raise ConfigError(f"retrain.{e}") from None

    def schedule(self) -> RetrainSchedule:
        """The lifecycle schedule (rows = rebalances)."""
        return RetrainSchedule(
            window=self.window,
            every=self.every,
            lag_bars=self.lag,
            warm_start=self.warm_start,
            min_window=self.min_window,
        )


@dataclass(frozen=True)
class RetrainPayload:
    """One fit's input (picklable: it goes to the worker process).

    Attributes
    ----------
    x : np.ndarray, shape (n_rows, n_features)
        Training rows in time order.
    y : np.ndarray, shape (n_rows,)
        Their next-window per-unit returns.
    trained_until_ns : int
        The end of the last target window (UNIX ns): the model's ``trained_until``.
    horizon_bars : int
        The target's window in clock bars.
    config : MetaRetrainConfig
    """

    x: np.ndarray
    y: np.ndarray
    trained_until_ns: int
    horizon_bars: int
    config: MetaRetrainConfig


def fit_meta_online(payload: RetrainPayload, previous: MetaModel | None) -> MetaModel:
    """Fit (or continue) the model on the window (see the module docstring).

    Raises
    ------
    RefitError
        Too few rows for the boosters or the calibrators.
    """
    config = payload.config
    n = payload.y.shape[0]
    split = round(n * (1.0 - config.calibration_share))
    if split < 2 * config.min_child_samples or n - split < 10:
        raise RefitError(
            f"{n} rows are too few: {split} to train (need {2 * config.min_child_samples}) and "
            f"{n - split} to calibrate (need 10)"
        )
    x_fit, y_fit = payload.x[:split], payload.y[:split]
    warm = previous is not None and previous.quantiles.n_trees < config.max_trees
    if warm:
        assert previous is not None
        quantiles = previous.quantiles.continue_fit(x_fit, y_fit, config.warm_trees)
    else:
        quantiles = QuantileReturnModel(
            n_estimators=config.n_estimators, min_child_samples=config.min_child_samples
        ).fit(x_fit, y_fit)
    held_out = quantiles.predict(payload.x[split:])
    y_held = payload.y[split:]
    interval = ConformalInterval(0.8).fit(held_out.values[:, 0], held_out.values[:, -1], y_held)
    probability = PositiveProbability().fit(
        raw_positive_probability(held_out.values, quantiles.levels), (y_held > 0.0).astype(float)
    )
    model = MetaModel(
        quantiles,
        interval,
        probability,
        feature_names(),
        horizon_bars=payload.horizon_bars,
        trained_until_ns=payload.trained_until_ns,
        metrics={"rows": float(n), "warm_start": float(warm), "trees": float(quantiles.n_trees)},
    )
    # As a file would load it (LightGBM's text form): the model in use, a saved copy and a
    # replay's refit predict the same bits.
    again = MetaModel(
        QuantileReturnModel.from_dict(model.quantiles.to_dict()),
        ConformalInterval.from_dict(interval.to_dict()),
        PositiveProbability.from_dict(probability.to_dict()),
        model.feature_names,
        model.horizon_bars,
        model.trained_until_ns,
        model.metrics,
    )
    return again.stamp()


def warm_up_worker() -> bool:
    """Nothing, in a worker process: calling it there starts the process and imports this module
    (LightGBM included) before the first fit, so the first swap does not wait for them."""
    return True


class OnlineMetaTrainer:
    """The sliding window of training rows and the scheduled refits of one meta-controller.

    Parameters
    ----------
    config : MetaRetrainConfig
    horizon_bars : int
        The actor's ``rebalance_every``.
    model : MetaModel, optional
        The model in use at the start (the first warm start); None: none until the first fit.
    executor : Executor, optional
        Where fits run when ``config.lag > 0`` (a one-worker process pool); None: synchronously.
    """

    def __init__(
        self,
        config: MetaRetrainConfig,
        horizon_bars: int,
        model: MetaModel | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.horizon_bars = horizon_bars
        self.refitter: ScheduledRefitter[RetrainPayload, MetaModel, MetaModel] = ScheduledRefitter(
            config.schedule(), fit_meta_online, executor=executor, model=model
        )
        self._windows: deque[tuple[np.ndarray, np.ndarray]] = deque(maxlen=config.window)
        self._last_rows: np.ndarray | None = None

    @property
    def windows(self) -> int:
        """Rebalance windows in the training window."""
        return len(self._windows)

    def step(
        self,
        rows: np.ndarray | None,
        previous: np.ndarray,
        realised: np.ndarray | None,
        now_ns: int,
    ) -> RefitOutcome[MetaModel, MetaModel] | None:
        """One rebalance, before its decision.

        Parameters
        ----------
        rows : np.ndarray, shape (n, n_features), optional
            This rebalance's model rows (None: no inputs; the pairing with the next window
            restarts).
        previous : np.ndarray, shape (n,)
            The weights in force over the window that just ended.
        realised : np.ndarray, shape (n,), optional
            Each strategy's per-unit return over that window: the targets of the last
            rebalance's rows.
        now_ns : int
            This rebalance's time (the fit's ``trained_until``).

        Returns
        -------
        RefitOutcome or None
            A fit that takes over at this rebalance (its model, or the reason it failed).
        """
        if rows is None:
            self._last_rows = None
            return None
        if self._last_rows is not None and realised is not None:
            keep = (
                (np.asarray(previous) > _WEIGHT_TOLERANCE)
                & np.isfinite(realised)
                & np.isfinite(self._last_rows).all(axis=1)
            )
            if keep.any():
                self._windows.append((self._last_rows[keep], np.asarray(realised)[keep]))
        self._last_rows = np.array(rows, dtype=float)
        refitter = self.refitter
        if refitter.advance(len(self._windows)):
            x = np.vstack([w[0] for w in self._windows])
            y = np.concatenate([w[1] for w in self._windows])
            refitter.start(
                RetrainPayload(x, y, int(now_ns), self.horizon_bars, self.config), context=now_ns
            )
        if refitter.swap_due:
            return refitter.swap()
        return None

    def request_refit(self) -> bool:
        """Make a fit due at the next rebalance (a monitor asks), or, with a fit in flight, at
        the rebalance after it takes over (:attr:`queued`); False when none can start (fewer
        rebalances than the schedule's first fit needs)."""
        return self.refitter.request_refit(len(self._windows))

    @property
    def queued(self) -> bool:
        """A retrain was requested while a fit was in flight; it starts after that fit."""
        return self.refitter.queued

    def close(self) -> None:
        """Drop a fit in flight."""
        self.refitter.close()
