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

Refits off the caller's thread: with ``refit_lag_bars = L > 0`` a (re)fit due at row t is
started on the trailing window ending at t — in an ``executor`` (the regime actor passes a worker
process) or, without one, at once in the calling thread — and its model takes over at row t + L:
the new filter's state at t (computed with the fit) is run over rows t+1..t+L (a skipped bar
predicts only), exactly as if the model had been in use since t. Rows t..t+L-1 keep the previous
model. If the fit has not finished by row t + L, that row waits for it, so the output is the same
with or without an executor, in a backtest or live; with L = 0 (default) fits run synchronously
at the bar their window ends, as always.
"""

import logging
import math
import time
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from concurrent.futures import Executor
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from dataclasses import field
from typing import Literal
from typing import NamedTuple

import numpy as np
import pandas as pd

from grodt.core.errors import ConfigError
from grodt.core.messages import NEUTRAL_REGIME_PROBABILITIES
from grodt.core.messages import REGIME_LABELS
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
    """The trailing training window: the last ``capacity`` feature rows in a preallocated ring
    (appending is one row copy; :meth:`array` is one ordered copy, no per-row conversion)."""

    def __init__(self, capacity: int, width: int) -> None:
        self._rows = np.empty((capacity, width), dtype=float)
        self._capacity = capacity
        self._next = 0
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def append(self, row: Sequence[float]) -> None:
        self._rows[self._next] = row
        self._next = (self._next + 1) % self._capacity
        self._count = min(self._count + 1, self._capacity)

    def array(self) -> np.ndarray:
        """The rows, oldest first, shape (len, width) (a copy)."""
        if self._count < self._capacity:
            return self._rows[: self._count].copy()
        return np.concatenate((self._rows[self._next :], self._rows[: self._next]))


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


class _ReadyFit(NamedTuple):
    """A finished fit made usable: the model and its filter at the window's end (or None)."""

    outcome: WindowFit
    model: GaussianRegimeHMM | None
    model_data: dict | None
    forward: ForwardFilter | None


def _make_ready(outcome: WindowFit) -> _ReadyFit:
    """Rebuild the model from its data and start its filter at the window's end state."""
    if outcome.model is None:
        return _ReadyFit(outcome, None, None, None)
    model = GaussianRegimeHMM.from_dict(outcome.model)
    forward = model.forward_filter()
    forward.reset(prior=outcome.state)
    return _ReadyFit(outcome, model, outcome.model, forward)


def _fit_and_make_ready(executor: Executor, args: tuple) -> _ReadyFit:
    """Run on the submitting thread: hand the fit to ``executor``, wait for it, and make the
    model usable, so the caller of :meth:`WalkForwardRegime.update` only replays the rows
    since. (Submitting to a process pool wakes its threads and pipes; done from the bar thread
    that cost milliseconds of GIL hand-offs on a loaded machine.)"""
    return _make_ready(executor.submit(fit_on_window, *args).result())


@dataclass
class _PendingFit:
    """A fit started at ``row`` whose model takes over at ``apply_row``."""

    future: "Future[_ReadyFit]"
    row: int
    apply_row: int
    ts_ns: int
    n_train: int
    kind: str
    window: np.ndarray
    tail: list[tuple[float, ...] | None] = field(default_factory=list)
    """Rows after the window's last one (None: a skipped bar), replayed on the new filter."""


@dataclass
class FitInfo:
    """One (re)fit performed by the walk-forward filter."""

    row: int
    version: str
    n_train: int
    seconds: float
    warnings: list[str] = field(default_factory=list)


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
        self._submitter: ThreadPoolExecutor | None = None
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
        self._warn = on_warning or logger.warning
        self._info = on_info or logger.info
        self.extractor = FeatureExtractor(specs)
        self.reset()

    def reset(self) -> None:
        """Forget all bars and fitted models (back to the starting model or the prior)."""
        self.extractor.reset()
        self.model: GaussianRegimeHMM | None = self._initial_model
        self._filter: ForwardFilter | None = (
            self._initial_model.forward_filter() if self._initial_model else None
        )
        self._window = _RowWindow(self.config.train_bars, len(self.extractor.specs))
        self._first_fit_rows = self.config.first_fit_rows
        self._rows_since_attempt = 0
        self._last_label: str | None = None
        self._last_step: RegimeStep | None = None
        self.rows = 0
        """Valid feature rows seen."""
        self.bars = 0
        """Bars seen (valid or not)."""
        self.skipped = 0
        """Bars whose update was skipped (invalid close or non-finite features)."""
        self.fits: list[FitInfo] = []
        self.failed_fits = 0
        if getattr(self, "_pending", None) is not None:
            self._pending.future.cancel()
        self._pending: _PendingFit | None = None
        self._forced_refit = False
        self._model_data: dict | None = None
        """``self.model.to_dict()`` when known (the next warm start's input)."""
        self.fit_wait_seconds = 0.0
        """Time :meth:`update` spent waiting for fits still running when their model was due."""
        self.last_row: tuple[float, ...] | None = None
        """The last valid feature row (None before the first, or when the last bar skipped)."""
        self.training_rows: np.ndarray | None = None
        """The feature rows the current model was fitted on (None: a starting model or prior)."""

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
        self._rows_since_attempt += 1
        events: tuple[str, ...] = ()
        if self._pending is not None:
            self._pending.tail.append(values)
            if self.rows >= self._pending.apply_row:
                events = self._apply_pending()
                if events != ("fit_failed",):
                    assert self._filter is not None
                    return self._emit(self._labels(self._filter.probabilities), "fitted", events)
        elif (due := self._fit_due()) and self.config.refit_lag_bars > 0:
            self._start_fit(ts_ns)
        elif due:
            events = self._fit(ts_ns)
            if events != ("fit_failed",):
                # The new filter has been run over the window, this bar included.
                assert self._filter is not None
                return self._emit(self._labels(self._filter.probabilities), "fitted", events)
        if self._filter is None:
            return self._emit(_PRIOR, "prior", events)
        state = self._filter.update(values)
        return self._emit(self._labels(state), "filtered", events)

    def request_refit(self) -> bool:
        """Make a (re)fit due at the next valid row (a drift or change-point monitor asks);
        False when none can start (a fit in flight, or too few rows for a first fit)."""
        if self._pending is not None or len(self._window) < self._first_fit_rows:
            return False
        self._rows_since_attempt = max(self.config.refit_every, self._retry_interval(), 1) + 1
        if self.model is not None and self.config.refit_every == 0:
            self._forced_refit = True
        return True

    def _skip(self) -> RegimeStep:
        self.last_row = None
        self.skipped += 1
        if self._pending is not None:
            self._pending.tail.append(None)
        if self._filter is None:
            return self._emit(_PRIOR, "prior", ())
        return self._emit(self._labels(self._filter.predict()), "skipped", ())

    def _labels(self, state: Sequence[float]) -> tuple[float, ...]:
        assert self.model is not None
        return self.model.label_probabilities(state)

    def _fit_due(self) -> bool:
        if len(self._window) < self._first_fit_rows:
            return False
        if self._forced_refit:
            self._forced_refit = False
            return True
        if self.model is None:
            attempted = bool(self.fits) or self.failed_fits > 0
            return not attempted or self._rows_since_attempt >= self._retry_interval()
        if self.config.refit_every == 0:
            return False
        return self._rows_since_attempt >= self.config.refit_every

    def _retry_interval(self) -> int:
        """Rows to wait after a failed first fit."""
        if self.config.refit_every > 0:
            return self.config.refit_every
        return max(1, self.config.first_fit_rows // 4)

    def _start_fit(self, ts_ns: int) -> None:
        """Start a fit on the trailing window ending at this row; its model takes over
        ``refit_lag_bars`` rows later (:meth:`_apply_pending`)."""
        self._rows_since_attempt = 0
        config = self.config
        window = self._window.array()
        previous = None
        if config.warm_start and self.model is not None:
            if self._model_data is None:
                self._model_data = self.model.to_dict()
            previous = self._model_data
        args = (config, window, previous, ts_ns or None)
        if self.executor is not None:
            if self._submitter is None:
                self._submitter = ThreadPoolExecutor(1, thread_name_prefix="regime-fit")
            future = self._submitter.submit(_fit_and_make_ready, self.executor, args)
        else:
            future = Future()
            future.set_result(_make_ready(fit_on_window(*args)))
        self._pending = _PendingFit(
            future=future,
            row=self.rows,
            apply_row=self.rows + config.refit_lag_bars,
            ts_ns=ts_ns,
            n_train=len(window),
            kind="refit" if self.model is not None else "fit",
            window=window,
        )

    def _apply_pending(self) -> tuple[str, ...]:
        """Swap in the pending fit's model (waiting for it if still running): its filter state
        at the window's end, run over the rows since; or keep the current model if it failed."""
        pending = self._pending
        assert pending is not None
        self._pending = None
        waited = time.perf_counter()
        try:
            ready = pending.future.result()
        except Exception as e:  # a dead worker or a bad result: keep the model, say why
            ready = _ReadyFit(
                WindowFit(None, (), 0.0, f"{type(e).__name__}: {e}"), None, None, None
            )
        self.fit_wait_seconds += time.perf_counter() - waited
        outcome, model, forward = ready.outcome, ready.model, ready.forward
        at = _iso(pending.ts_ns)
        if model is None:
            self.failed_fits += 1
            retry = self.config.refit_every if self.model is not None else self._retry_interval()
            self._warn(
                f"regime fit at {at} on {pending.n_train} bars failed: {outcome.error}; "
                f"keeping {self.version}" + (f", next attempt in {retry} bars" if retry else ""),
            )
            return ("fit_failed",)
        assert forward is not None
        for message in model.fit_warnings_:
            self._warn(f"regime fit at {at}: {message}")
        for values in pending.tail:
            if values is None:
                forward.predict()
            else:
                forward.update(values)
        self.model = model
        self._model_data = ready.model_data
        self.training_rows = pending.window
        self._filter = forward
        self.fits.append(
            FitInfo(
                pending.row,
                model.version_,
                pending.n_train,
                outcome.seconds,
                list(model.fit_warnings_),
            ),
        )
        self._info(
            f"regime {pending.kind} at {at}: {model.version_} on {pending.n_train} bars in "
            f"{outcome.seconds * 1e3:.0f} ms, in use from {len(pending.tail)} rows later, "
            f"states {list(model.state_labels_)}",
        )
        return (pending.kind,)

    def _fit(self, ts_ns: int) -> tuple[str, ...]:
        """Fit on the trailing window ending at this bar; on success the filter restarts on the
        new model and is run over the window, giving its state at this bar."""
        self._rows_since_attempt = 0
        config = self.config
        previous = self.model
        model = config.new_model()
        window = self._window.array()
        started = time.perf_counter()
        try:
            model.fit(
                window,
                init_from=previous if config.warm_start else None,
                train_end_ns=ts_ns or None,
            )
        except (RegimeFitError, ValueError, np.linalg.LinAlgError) as e:
            self.failed_fits += 1
            retry = self.config.refit_every if self.model is not None else self._retry_interval()
            self._warn(
                f"regime fit at {_iso(ts_ns)} on {len(window)} bars failed: {e}; "
                f"keeping {self.version}" + (f", next attempt in {retry} bars" if retry else ""),
            )
            return ("fit_failed",)
        seconds = time.perf_counter() - started
        for message in model.fit_warnings_:
            self._warn(f"regime fit at {_iso(ts_ns)}: {message}")
        kind = "refit" if previous is not None else "fit"
        self.model = model
        self._model_data = None
        self.training_rows = window
        self._filter = model.forward_filter()
        for values in window.tolist():
            self._filter.update(values)
        self.fits.append(
            FitInfo(self.rows, model.version_, len(window), seconds, list(model.fit_warnings_)),
        )
        self._info(
            f"regime {kind} at {_iso(ts_ns)}: {model.version_} on {len(window)} bars in "
            f"{seconds * 1e3:.0f} ms, states {list(model.state_labels_)}",
        )
        return (kind,)

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
