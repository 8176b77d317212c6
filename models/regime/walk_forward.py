"""Walk-forward regime inference: features → forward filter, with periodic refits on a trailing
window. One :meth:`WalkForwardRegime.update` per bar close; the regime actor and
``grodt regime infer`` both run this class, so they produce the same numbers.

Causality, by construction:

- the features at bar t use closes up to t (:mod:`models.regime.features`);
- the probabilities at bar t are the forward filter's p(state_t | x_1..x_t);
- a (re)fit at bar t uses the trailing ``train_bars`` feature rows ending at t — never a later
  row — and the new model's filter is then run over that same window to get its state at t;
- before the first fit the output is the neutral prior (``model_version="prior"``).

A bar whose close is not a positive finite number, or whose features are not finite, skips the
measurement update: the filter only predicts (α ← α·A, the Bayesian treatment of a missing
observation), the row is kept out of the training window, and a warning says so.

Refits off the caller's thread: the schedule is :class:`models.lifecycle.ScheduledRefitter`'s.
With ``refit_lag_bars = L > 0`` a (re)fit due at row t is started on the trailing window ending
at t — in an ``executor`` (the regime actor passes a worker process) or, without one, at once in
the calling thread — and its model takes over at row t + L: the new filter's state at t
(computed with the fit) is run over rows t+1..t+L (a skipped bar predicts only), exactly as if
the model had been in use since t. Rows t..t+L-1 keep the previous model. If the fit has not
finished by row t + L, that row waits for it, so the output is the same with or without an
executor, in a backtest or live; with L = 0 (default) fits run synchronously at the bar their
window ends.
"""

import logging
import math
import os
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from dataclasses import field
from typing import Literal
from typing import NamedTuple

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError
from grodt.core.messages import NEUTRAL_REGIME_PROBABILITIES
from grodt.core.messages import REGIME_LABELS
from models.lifecycle import RetrainSchedule
from models.lifecycle import ScheduledRefitter
from models.lifecycle.refit import RefitError
from models.regime.features import DEFAULT_FEATURES
from models.regime.features import FeatureExtractor
from models.regime.features import parse_features
from models.regime.forward import ForwardFilter
from models.regime.hmm import GaussianRegimeHMM
from models.regime.hmm import RegimeFitError
from models.regime.hmm import min_training_rows
from models.regime.labels import DEFAULT_LABEL_Z

logger = logging.getLogger("grodt.regime")

PRIOR_VERSION = "prior"
_PRIOR: tuple[float, ...] = tuple(NEUTRAL_REGIME_PROBABILITIES[label] for label in REGIME_LABELS)
_LN = math.log

Status = Literal["prior", "filtered", "fitted", "skipped"]


@dataclass(frozen=True)
class WalkForwardConfig:
    """Model and schedule of a walk-forward regime filter.

    Parameters
    ----------
    features : tuple[str, ...]
        Feature specs (:mod:`models.regime.features`).
    n_states, covariance_type, min_covar, n_iter, tol, n_init, random_state, label_z,
    transition_pseudocount, temperature
        The model's hyperparameters (:class:`~models.regime.hmm.GaussianRegimeHMM`).
    train_bars : int, default 1000
        Length of the trailing training window, in feature rows (valid bars).
    min_train_bars : int, optional
        Rows needed for the first fit (default ``train_bars``); until then the neutral prior.
    refit_every : int, default 0
        Rows between refits after the first fit; 0 fits once and never again.
    warm_start : bool, default True
        Start each refit's EM from the previous model (one run) instead of ``n_init`` cold runs.
    refit_lag_bars : int, default 0
        Rows between a (re)fit's last training row and the row its model takes over (see the
        module docstring); 0: the same row (the fit runs synchronously). Must be below
        ``refit_every`` when that is set.
    """

    features: tuple[str, ...] = DEFAULT_FEATURES
    n_states: int = 3
    covariance_type: str = "full"
    min_covar: float = 1e-3
    n_iter: int = 100
    tol: float = 1e-4
    n_init: int = 3
    random_state: int = 0
    label_z: float = DEFAULT_LABEL_Z
    transition_pseudocount: float = 1.0
    temperature: float = 1.0
    train_bars: int = 1000
    min_train_bars: int | None = None
    refit_every: int = 0
    warm_start: bool = True
    refit_lag_bars: int = 0

    def __post_init__(self) -> None:
        specs = parse_features(self.features)
        # Constructing the model validates its hyperparameters (ConfigError naming the field).
        self.new_model()
        needed = min_training_rows(self.n_states, len(specs), self.covariance_type)
        if self.train_bars < needed:
            raise ConfigError(
                f"train_bars: {self.train_bars} is too few bars to fit a {self.n_states}-state "
                f"{self.covariance_type}-covariance HMM on {len(specs)} features; "
                f"need at least {needed}",
            )
        first = self.first_fit_rows
        if not needed <= first <= self.train_bars:
            raise ConfigError(
                f"min_train_bars: must be in [{needed}, train_bars={self.train_bars}], was {first}",
            )
        if self.refit_every < 0:
            raise ConfigError(f"refit_every: must be >= 0, was {self.refit_every}")
        if self.refit_lag_bars < 0:
            raise ConfigError(f"refit_lag_bars: must be >= 0, was {self.refit_lag_bars}")
        if self.refit_every and self.refit_lag_bars >= self.refit_every:
            raise ConfigError(
                f"refit_lag_bars: must be below refit_every={self.refit_every} (one fit in "
                f"flight at a time), was {self.refit_lag_bars}",
            )

    @property
    def first_fit_rows(self) -> int:
        return self.train_bars if self.min_train_bars is None else self.min_train_bars

    @property
    def schedule(self) -> RetrainSchedule:
        """The refit schedule as a :class:`~models.lifecycle.RetrainSchedule` (window
        ``train_bars``, every ``refit_every``, lag ``refit_lag_bars``, ``warm_start``)."""
        return RetrainSchedule(
            window=self.train_bars,
            every=self.refit_every,
            lag_bars=self.refit_lag_bars,
            warm_start=self.warm_start,
            min_window=self.min_train_bars,
        )

    def new_model(self) -> GaussianRegimeHMM:
        """An unfitted model with these hyperparameters."""
        return GaussianRegimeHMM(
            features=self.features,
            n_states=self.n_states,
            covariance_type=self.covariance_type,  # type: ignore[arg-type]
            min_covar=self.min_covar,
            n_iter=self.n_iter,
            tol=self.tol,
            n_init=self.n_init,
            random_state=self.random_state,
            label_z=self.label_z,
            transition_pseudocount=self.transition_pseudocount,
            temperature=self.temperature,
        )


class RegimeStep(NamedTuple):
    """The regime estimate at one bar.

    Attributes
    ----------
    probabilities : tuple[float, ...]
        p(label_t | bars_1..t) in ``REGIME_LABELS`` order (bull, bear, sideways); sums to 1.
    most_likely : str
        The label with the highest probability (ties: sideways, then bull).
    entropy : float
        Shannon entropy of ``probabilities`` in nats, in [0, ln 3].
    model_version : str
        The model behind the estimate (``"prior"`` before the first fit).
    status : str
        ``prior`` (no model yet), ``filtered`` (forward update), ``fitted`` (a (re)fit at this
        bar), ``skipped`` (invalid input: prediction only).
    events : tuple[str, ...]
        What happened at this bar worth a record: ``fit``, ``refit``, ``fit_failed``,
        ``label_change``.
    """

    probabilities: tuple[float, ...]
    most_likely: str
    entropy: float
    model_version: str
    status: Status
    events: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, float]:
        return dict(zip(REGIME_LABELS, self.probabilities, strict=True))


def most_likely_label(probabilities: Sequence[float]) -> str:
    """Argmax label of (bull, bear, sideways) probabilities; exact ties resolve to ``sideways``,
    then ``bull``."""
    bull, bear, sideways = probabilities
    if sideways >= bull and sideways >= bear:
        return "sideways"
    return "bull" if bull >= bear else "bear"


def entropy_nats(probabilities: Iterable[float]) -> float:
    """Shannon entropy in nats (0·ln 0 = 0)."""
    total = 0.0
    for p in probabilities:
        if p > 0.0:
            total -= p * _LN(p)
    return total if total > 0.0 else 0.0


class _RowWindow:
    """The trailing training window: the last ``capacity`` feature rows (tuples of floats) in a
    preallocated ring. Appending stores a reference (a per-bar cost; converting the row into a
    numpy row costs ~1 µs more); :meth:`array` converts the window once per fit."""

    def __init__(self, capacity: int, width: int) -> None:
        self._rows: list[Sequence[float]] = [()] * capacity
        self._capacity = capacity
        self._width = width
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, row: Sequence[float]) -> None:
        self._rows[self._next] = row
        self._next = (self._next + 1) % self._capacity
        if self._count < self._capacity:
            self._count += 1

    def array(self) -> np.ndarray:
        """The rows, oldest first, shape (len, width) (float64, a new array)."""
        if self._count < self._capacity:
            rows = self._rows[: self._count]
        else:
            rows = self._rows[self._next :] + self._rows[: self._next]
        return np.array(rows, dtype=float).reshape(len(rows), self._width)


class WindowFit(NamedTuple):
    """What :func:`fit_on_window` returns: the fitted model as data, the new filter's state at
    the window's last row, the fit's duration; or the reason it failed (``model`` is None)."""

    model: dict | None
    state: tuple[float, ...]
    seconds: float
    error: str | None = None


def fit_on_window(
    config: WalkForwardConfig,
    window: np.ndarray,
    previous: dict | None,
    train_end_ns: int | None,
) -> WindowFit:
    """Fit ``config``'s model on ``window`` (N, D raw feature rows) and run its filter over the
    window. Picklable in and out (the model as :meth:`GaussianRegimeHMM.to_dict` data), so it
    runs in a worker process as well as in the caller.

    ``previous`` is the model to warm-start from (``to_dict`` data), ``None`` for a cold fit.
    Fit failures come back as ``error`` (never raised).
    """
    model = config.new_model()
    started = time.perf_counter()
    try:
        init_from = GaussianRegimeHMM.from_dict(previous) if previous is not None else None
        model.fit(window, init_from=init_from, train_end_ns=train_end_ns)
    except (RegimeFitError, ConfigError, ValueError, np.linalg.LinAlgError) as e:
        return WindowFit(None, (), time.perf_counter() - started, str(e))
    seconds = time.perf_counter() - started
    forward = model.forward_filter()
    state: tuple[float, ...] = ()
    for values in window.tolist():
        state = forward.update(values)
    return WindowFit(model.to_dict(), tuple(state), seconds)


def worker_ready() -> int:
    """A no-op for a fit worker process to run first: importing this module there (numpy,
    hmmlearn) before the first fit is due. Returns the worker's pid."""
    return os.getpid()


class _ReadyFit(NamedTuple):
    """A finished fit made usable: the model and its filter at the window's end."""

    model: GaussianRegimeHMM
    forward: ForwardFilter


def _make_ready(outcome: WindowFit) -> _ReadyFit:
    """Rebuild the model from its data and start its filter at the window's end state (on the
    refitter's helper thread when fits run in a worker, so the bar thread only replays the rows
    since)."""
    assert outcome.model is not None
    model = GaussianRegimeHMM.from_dict(outcome.model)
    forward = model.forward_filter()
    forward.reset(prior=outcome.state)
    return _ReadyFit(model, forward)


class _FitTask(NamedTuple):
    """The payload of one scheduled fit (picklable: it may go to a worker process)."""

    config: WalkForwardConfig
    window: np.ndarray
    train_end_ns: int | None


def _refit(task: _FitTask, previous: WindowFit | None) -> WindowFit:
    """The regime model's fit function for :class:`~models.lifecycle.ScheduledRefitter`: warm
    start from ``previous``'s parameters; a failed fit raises :class:`RefitError` with the
    reason."""
    outcome = fit_on_window(
        task.config,
        task.window,
        previous.model if previous is not None else None,
        task.train_end_ns,
    )
    if outcome.model is None:
        raise RefitError(outcome.error or "fit failed")
    return outcome


class _FitContext(NamedTuple):
    """What the actor needs back at the swap: when the window ended and what it held."""

    ts_ns: int
    window: np.ndarray


@dataclass
class FitInfo:
    """One (re)fit performed by the walk-forward filter."""

    row: int
    version: str
    n_train: int
    seconds: float
    warnings: list[str] = field(default_factory=list)
    waited_seconds: float = 0.0
    """How long the bar that swapped it in waited for it (0: it had finished in time)."""


class WalkForwardRegime:
    """Online regime probabilities for one instrument.

    Parameters
    ----------
    config : WalkForwardConfig
    model : GaussianRegimeHMM, optional
        A fitted model to start from (e.g. from ``grodt regime fit``); it must use the same
        features. With ``refit_every > 0`` it is refitted on the trailing window like any other.
    on_warning : Callable[[str], None], optional
        Where warnings go (invalid inputs, degenerate fits); default: the ``grodt.regime``
        Python logger. The actor passes its Nautilus logger.
    on_info : Callable[[str], None], optional
        Where fit summaries go; default: the Python logger at INFO.
    executor : concurrent.futures.Executor, optional
        Where fits run when ``config.refit_lag_bars > 0`` (e.g. a one-worker process pool);
        default: in the calling thread. The output is the same either way.
    """

    def __init__(
        self,
        config: WalkForwardConfig,
        model: GaussianRegimeHMM | None = None,
        on_warning: Callable[[str], None] | None = None,
        on_info: Callable[[str], None] | None = None,
        executor: Executor | None = None,
    ) -> None:
        self.config = config
        self.executor = executor
        specs = parse_features(config.features)
        if model is not None:
            if not model.is_fitted:
                raise ConfigError("model: a starting model must be fitted")
            if model.features != specs:
                raise ConfigError(
                    f"model: fitted on features {[str(s) for s in model.features]}, "
                    f"configured {[str(s) for s in specs]}",
                )
            if model.n_states != config.n_states:
                raise ConfigError(
                    f"model: has {model.n_states} states, configured n_states={config.n_states}",
                )
        self._initial_model = model
        self.refitter: ScheduledRefitter[_FitTask, WindowFit, _ReadyFit] = ScheduledRefitter(
            config.schedule,
            _refit,
            prepare=_make_ready,
            executor=executor,
            model=WindowFit(model.to_dict(), (), 0.0) if model is not None else None,
        )
        """Runs the (re)fits on the schedule of ``config`` (:mod:`models.lifecycle`)."""
        self._warn = on_warning or logger.warning
        self._info = on_info or logger.info
        self.extractor = FeatureExtractor(specs)
        self.reset()

    def reset(self) -> None:
        """Forget all bars and fitted models (back to the starting model or the prior)."""
        self.extractor.reset()
        self.refitter.reset()
        self.model: GaussianRegimeHMM | None = self._initial_model
        self._filter: ForwardFilter | None = (
            self._initial_model.forward_filter() if self._initial_model else None
        )
        self._window = _RowWindow(self.config.train_bars, len(self.extractor.specs))
        self._tail: list[tuple[float, ...] | None] = []
        """Rows since the window of the fit in flight ended (None: a skipped bar), replayed on
        the new filter at its swap."""
        self._last_label: str | None = None
        self._last_step: RegimeStep | None = None
        self.rows = 0
        """Valid feature rows seen."""
        self.bars = 0
        """Bars seen (valid or not)."""
        self.skipped = 0
        """Bars whose update was skipped (invalid close or non-finite features)."""
        self.fits: list[FitInfo] = []
        self.last_row: tuple[float, ...] | None = None
        """The last valid feature row (None before the first, or when the last bar skipped)."""
        self.training_rows: np.ndarray | None = None
        """The feature rows the current model was fitted on (None: a starting model or prior)."""

    @property
    def failed_fits(self) -> int:
        return self.refitter.failed_fits

    @property
    def fit_wait_seconds(self) -> float:
        """Time :meth:`update` spent waiting for fits still running when their model was due."""
        return self.refitter.fit_wait_seconds

    @property
    def fit_waits(self) -> int:
        """Swaps whose fit was still running when its model was due, so :meth:`update` waited
        (0 when ``refit_lag_bars`` leaves the fits time enough on this machine)."""
        return self.refitter.fit_waits

    @property
    def version(self) -> str:
        return self.model.version_ if self.model is not None else PRIOR_VERSION

    @property
    def last_step(self) -> RegimeStep | None:
        return self._last_step

    @property
    def state(self) -> list[float] | None:
        """The filter's current state distribution (length K), None before the first fit."""
        return self._filter.probabilities if self._filter is not None else None

    # -- per bar -----------------------------------------------------------------------------

    def update(self, close: float, ts_ns: int = 0) -> RegimeStep:
        """Admit one bar close (at ``ts_ns``, UNIX ns, used in messages only)."""
        self.bars += 1
        valid_close = close > 0.0 and math.isfinite(close)
        row = self.extractor.update(close) if valid_close else None
        if not valid_close:
            self._warn(
                f"bar at {_iso(ts_ns)}: close {close!r} is not a positive finite number; "
                "regime update skipped",
            )
            return self._skip()
        if row is None:  # warming up the features
            return self._emit(_PRIOR, "prior", ())
        if not all(map(math.isfinite, row)):
            names = [str(s) for s, v in zip(self.extractor.specs, row, strict=True)]
            bad = [n for n, v in zip(names, row, strict=True) if not math.isfinite(v)]
            self._warn(
                f"bar at {_iso(ts_ns)}: feature {', '.join(bad)} is not finite; "
                "regime update skipped",
            )
            return self._skip()

        values = row
        self.last_row = values
        self._window.append(values)
        self.rows += 1
        refitter = self.refitter
        if refitter.advance(len(self._window)):
            self._tail = []
            window = self._window.array()
            refitter.start(
                _FitTask(self.config, window, ts_ns or None),
                context=_FitContext(ts_ns, window),
            )
        elif refitter.in_flight:
            self._tail.append(values)
        events: tuple[str, ...] = ()
        if refitter.swap_due:
            events = self._swap()
            if events != ("fit_failed",):
                # The new filter has been run over the window and the rows since: this bar's.
                assert self._filter is not None
                return self._emit(self._labels(self._filter.probabilities), "fitted", events)
        if self._filter is None:
            return self._emit(_PRIOR, "prior", events)
        state = self._filter.update(values)
        return self._emit(self._labels(state), "filtered", events)

    def request_refit(self) -> bool:
        """Make a (re)fit due at the next valid row (a drift or change-point monitor asks), or,
        with a fit in flight, at the row after it takes over (``refitter.queued``); False when
        none can start (too few rows for a first fit)."""
        return self.refitter.request_refit(len(self._window))

    def _skip(self) -> RegimeStep:
        self.last_row = None
        self.skipped += 1
        if self.refitter.in_flight:
            self._tail.append(None)
        if self._filter is None:
            return self._emit(_PRIOR, "prior", ())
        return self._emit(self._labels(self._filter.predict()), "skipped", ())

    def _labels(self, state: Sequence[float]) -> tuple[float, ...]:
        assert self.model is not None
        return self.model.label_probabilities(state)

    def _swap(self) -> tuple[str, ...]:
        """Swap in the fit whose model takes over at this row (waiting for it if still
        running): its filter state at the window's end, run over the rows since; or keep the
        current model if it failed."""
        outcome = self.refitter.swap()
        context: _FitContext = outcome.context
        tail, self._tail = self._tail, []
        at = _iso(context.ts_ns)
        n_train = len(context.window)
        if outcome.late:
            # Backtest and live wait alike (the swap row is fixed by the data): say the lag is
            # short for this machine, loudly once, then at INFO (the count is in fit_waits).
            report = self._warn if self.refitter.fit_waits == 1 else self._info
            report(
                f"regime fit at {at} was still running {len(tail)} rows later, when its model "
                f"was due: waited {outcome.waited_seconds * 1e3:.0f} ms "
                f"(refit_lag_bars={self.config.refit_lag_bars}; waits so far "
                f"{self.refitter.fit_waits})",
            )
        if not outcome.ok:
            retry = self.refitter.next_attempt_rows
            self._warn(
                f"regime fit at {at} on {n_train} bars failed: {outcome.error}; "
                f"keeping {self.version}" + (f", next attempt in {retry} bars" if retry else ""),
            )
            return ("fit_failed",)
        assert outcome.ready is not None and outcome.model is not None
        model, forward = outcome.ready
        for message in model.fit_warnings_:
            self._warn(f"regime fit at {at}: {message}")
        for values in tail:
            if values is None:
                forward.predict()
            else:
                forward.update(values)
        self.model = model
        self.training_rows = context.window
        self._filter = forward
        seconds = outcome.model.seconds
        self.fits.append(
            FitInfo(
                outcome.row,
                model.version_,
                n_train,
                seconds,
                list(model.fit_warnings_),
                outcome.waited_seconds if outcome.late else 0.0,
            ),
        )
        lag = f", in use from {len(tail)} rows later" if self.config.refit_lag_bars else ""
        self._info(
            f"regime {outcome.kind} at {at}: {model.version_} on {n_train} bars in "
            f"{seconds * 1e3:.0f} ms{lag}, states {list(model.state_labels_)}",
        )
        return (outcome.kind,)

    def _emit(
        self,
        probabilities: tuple[float, ...],
        status: Status,
        events: tuple[str, ...],
    ) -> RegimeStep:
        label = most_likely_label(probabilities)
        if self._last_label is not None and label != self._last_label:
            events = (*events, "label_change")
        self._last_label = label
        step = RegimeStep(
            probabilities=probabilities,
            most_likely=label,
            entropy=entropy_nats(probabilities),
            model_version=self.version if status != "prior" else PRIOR_VERSION,
            status=status,
            events=events,
        )
        self._last_step = step
        return step


def _iso(ts_ns: int) -> str:
    if not ts_ns:
        return "?"
    return pd.Timestamp(ts_ns, unit="ns", tz="UTC").isoformat()


STEP_COLUMNS: tuple[str, ...] = (
    "p_bull",
    "p_bear",
    "p_sideways",
    "most_likely",
    "entropy",
    "model_version",
    "status",
    "events",
)


def run_walk_forward(
    closes: Iterable[float],
    ts_event: Iterable[int],
    config: WalkForwardConfig,
    model: GaussianRegimeHMM | None = None,
    on_warning: Callable[[str], None] | None = None,
    on_info: Callable[[str], None] | None = None,
) -> tuple[pd.DataFrame, WalkForwardRegime]:
    """Run the walk-forward filter over a close series (the batch form of the actor).

    Parameters
    ----------
    closes : Iterable[float]
        Bar closes in time order, length N.
    ts_event : Iterable[int]
        The bars' close timestamps, UNIX ns, length N.

    Returns
    -------
    tuple[pd.DataFrame, WalkForwardRegime]
        One row per bar: ``ts_event`` (int64 ns) and :data:`STEP_COLUMNS` (``events`` joined
        with ``,``); and the filter (for its fits and counters).
    """
    engine = WalkForwardRegime(config, model=model, on_warning=on_warning, on_info=on_info)
    records: list[tuple] = []
    stamps = [int(t) for t in ts_event]
    values = [float(c) for c in closes]
    if len(stamps) != len(values):
        raise ValueError(f"closes ({len(values)}) and ts_event ({len(stamps)}) differ in length")
    for close, ts in zip(values, stamps, strict=True):
        step = engine.update(close, ts)
        records.append(
            (
                *step.probabilities,
                step.most_likely,
                step.entropy,
                step.model_version,
                step.status,
                ",".join(step.events),
            ),
        )
    frame = pd.DataFrame.from_records(records, columns=list(STEP_COLUMNS))
    frame.insert(0, "ts_event", np.asarray(stamps, dtype=np.int64))
    return frame, engine


def fit_window(
    config: WalkForwardConfig,
    closes: Iterable[float],
    ts_event: Iterable[int],
) -> GaussianRegimeHMM:
    """Fit the model of ``config`` once on a window of bars (a walk-forward fold's train window).

    The features are computed causally over the window; the fit uses the last
    ``config.train_bars`` rows with valid features (the trailing window the filter would refit
    on at the window's last bar), cold-started with ``n_init`` EM runs.

    Parameters
    ----------
    closes : Iterable[float]
        Bar closes in time order, length N.
    ts_event : Iterable[int]
        The bars' close timestamps, UNIX ns, length N (kept with the model as its train span).

    Raises
    ------
    RegimeFitError
        Fewer valid feature rows than the model needs (the message gives the counts), or every
        EM run degenerated.
    """
    values = np.asarray([float(c) for c in closes], dtype=float)
    stamps = np.asarray([int(t) for t in ts_event], dtype=np.int64)
    if len(values) != len(stamps):
        raise ValueError(f"closes ({len(values)}) and ts_event ({len(stamps)}) differ in length")
    extractor = FeatureExtractor(parse_features(config.features))
    features = extractor.transform(values)
    rows = np.flatnonzero(np.isfinite(features).all(axis=1))[-config.train_bars :]
    model = config.new_model()
    if len(rows) < model.min_training_rows:
        raise RegimeFitError(
            f"too few bars to fit: {len(values)} bars, {len(rows)} with valid features after a "
            f"warm-up of {extractor.warmup_bars}; a {model.n_states}-state model on "
            f"{model.n_features} features needs {model.min_training_rows}",
        )
    return model.fit(
        features[rows],
        train_start_ns=int(stamps[rows[0]]),
        train_end_ns=int(stamps[rows[-1]]),
    )
