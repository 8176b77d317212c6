"""Gaussian HMM regime model: hmmlearn EM for fitting, a causal forward filter for inference.

Estimator-style::

    model = GaussianRegimeHMM(features=("log_return", "realized_vol:20", "trend:50"))
    model.fit(x_train)                    # x_train: (N, D) raw features (FeatureExtractor)
    P = model.filter_proba(x)             # (N, 3) causal p(label_t | x_1..x_t)
    model.save("regime.json"); GaussianRegimeHMM.load("regime.json").version_

Features are standardised with the training window's mean and standard deviation (stored with
the model); ``min_covar`` is a floor on the eigenvalues of every state covariance in those
standardised units. ``version_`` is a content hash of everything that determines the filter's
output, so two identical fits have the same version and any change gets a new one.

hmmlearn's ``predict_proba``/``predict``/``decode`` smooth over the whole sequence (they look
ahead); they are never used for inference here. :meth:`smoothed_proba` exposes them only to
compare.
"""

import copy
import hashlib
import json
import logging
import math
import os
from collections.abc import Sequence
from functools import cache
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any
from typing import Literal
from typing import Self

import numpy as np
from hmmlearn.hmm import GaussianHMM
from threadpoolctl import ThreadpoolController

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.messages import REGIME_LABELS
from models.regime.features import DEFAULT_FEATURES
from models.regime.features import FeatureSpec
from models.regime.features import parse_features
from models.regime.forward import ForwardFilter
from models.regime.labels import DEFAULT_LABEL_Z
from models.regime.labels import assign_labels
from models.regime.labels import compile_label_sum
from models.regime.labels import drift_scores
from models.regime.labels import label_matrix
from models.regime.labels import state_volatility

logger = logging.getLogger("grodt.regime")

CovarianceType = Literal["full", "diag", "spherical", "tied"]
MODEL_FORMAT = "grodt.regime.gaussian_hmm"
MODEL_FORMAT_VERSION = 1
MIN_SAMPLES_PER_PARAMETER = 5
"""A fit needs at least this many training rows per free parameter."""


class RegimeFitError(GrodtError):
    """The regime model could not be fitted (too few rows, or every EM run degenerated)."""


def n_free_parameters(n_states: int, n_features: int, covariance_type: str) -> int:
    """Free parameters of a Gaussian HMM (transitions, means, covariances)."""
    k, d = n_states, n_features
    cov = {
        "full": k * d * (d + 1) // 2,
        "diag": k * d,
        "spherical": k,
        "tied": d * (d + 1) // 2,
    }[covariance_type]
    return k * (k - 1) + k * d + cov


def min_training_rows(n_states: int, n_features: int, covariance_type: str) -> int:
    """The fewest feature rows a fit accepts (``MIN_SAMPLES_PER_PARAMETER`` per parameter)."""
    return MIN_SAMPLES_PER_PARAMETER * n_free_parameters(n_states, n_features, covariance_type)


@cache
def _threadpools() -> ThreadpoolController:
    """The process's BLAS/OpenMP thread pools, found once: ``threadpool_limits`` rescans the
    loaded libraries (/proc/self/maps) at every use, 4-30 ms per fit, twice per fit. Made at the
    first fit, when numpy, scipy and hmmlearn (everything EM calls) are loaded."""
    return ThreadpoolController()


def _single_threaded() -> Any:
    """A context in which the BLAS/OpenMP pools run one thread (see :meth:`_run_em`)."""
    return _threadpools().limit(limits=1)


@cache
def _hmmlearn_version() -> str:
    return package_version("hmmlearn")  # reads the package metadata: once per process


def _canonical(values: np.ndarray) -> list[Any]:
    return np.asarray(values, dtype=float).tolist()


class GaussianRegimeHMM:
    """A Gaussian HMM whose states are labelled bull / bear / sideways.

    Parameters
    ----------
    features : Sequence[str]
        Feature specs (see :mod:`models.regime.features`), in column order of ``x``.
    n_states : int, default 3
        Hidden states K (≥ 2). With K > 3 several states share the ``sideways`` label.
    covariance_type : {"full", "diag", "spherical", "tied"}, default "full"
    min_covar : float, default 1e-3
        Floor on every state covariance eigenvalue, in standardised feature units. Fits that
        hit it are clamped and say so in ``fit_warnings_``.
    n_iter : int, default 100
        Maximum EM iterations per run.
    tol : float, default 1e-4
        EM convergence threshold on the log-likelihood gain.
    n_init : int, default 3
        EM runs from different k-means initialisations (cold fits); the best log-likelihood wins.
    random_state : int, default 0
        Seed of the first run (run i uses ``random_state + i``): fits are deterministic.
    label_z : float, default 3.0
        Drift t-statistic a state needs to be labelled bull (≥ +label_z) or bear (≤ −label_z);
        see :mod:`models.regime.labels`.
    transition_pseudocount : float, default 1.0
        Dirichlet pseudo-count added to every transition count (MAP estimate): no transition
        probability is exactly 0, so the filter can always leave a state it is sure of.
    temperature : float, default 1.0
        Emission tempering of the forward filter (≥ 1; see
        :class:`~models.regime.forward.ForwardFilter`). Fitting is unaffected.

    Attributes (after fit or load)
    ------------------------------
    scaler_mean_, scaler_scale_ : np.ndarray, shape (D,)
    means_ : np.ndarray, shape (K, D), standardised units
    covars_ : np.ndarray, shape (K, D, D), standardised units
    transmat_ : np.ndarray, shape (K, K)
    state_labels_ : tuple[str, ...], length K
    state_occupancy_ : np.ndarray, shape (K,), expected training bars per state
    state_drift_t_ : np.ndarray, shape (K,), drift t-statistics behind the labels
    state_volatility_ : np.ndarray, shape (K,), state volatilities behind the labels
    initial_ : np.ndarray, shape (K,), the filter's prior for a first bar (occupancy shares)
    log_likelihood_ : float, of the training rows (standardised units)
    n_train_ : int, training rows
    train_start_ns_, train_end_ns_ : int | None, UNIX ns of the first and last training bar
    converged_ : bool
    fit_warnings_ : list[str]
    version_ : str, ``"hmm-<12 hex>"`` content hash
    """

    def __init__(
        self,
        features: Sequence[str] = DEFAULT_FEATURES,
        n_states: int = 3,
        covariance_type: CovarianceType = "full",
        min_covar: float = 1e-3,
        n_iter: int = 100,
        tol: float = 1e-4,
        n_init: int = 3,
        random_state: int = 0,
        label_z: float = DEFAULT_LABEL_Z,
        transition_pseudocount: float = 1.0,
        temperature: float = 1.0,
    ) -> None:
        self.features: tuple[FeatureSpec, ...] = parse_features(features)
        if n_states < 2:
            raise ConfigError(f"n_states: must be at least 2, was {n_states}")
        if covariance_type not in ("full", "diag", "spherical", "tied"):
            raise ConfigError(
                f"covariance_type: must be full, diag, spherical or tied, was {covariance_type!r}",
            )
        if not min_covar > 0:
            raise ConfigError(f"min_covar: must be positive, was {min_covar}")
        if n_iter < 1 or n_init < 1:
            raise ConfigError("n_iter and n_init: must be at least 1")
        self.n_states = int(n_states)
        self.covariance_type = covariance_type
        self.min_covar = float(min_covar)
        self.n_iter = int(n_iter)
        self.tol = float(tol)
        self.n_init = int(n_init)
        self.random_state = int(random_state)
        if not label_z > 0:
            raise ConfigError(f"label_z: must be positive, was {label_z}")
        self.label_z = float(label_z)
        if not transition_pseudocount >= 0:
            raise ConfigError(
                f"transition_pseudocount: must be >= 0, was {transition_pseudocount}",
            )
        self.transition_pseudocount = float(transition_pseudocount)
        if not (math.isfinite(temperature) and temperature >= 1.0):
            raise ConfigError(f"temperature: must be a number >= 1, was {temperature}")
        self.temperature = float(temperature)
        self.fit_warnings_: list[str] = []
        self._filter_template: ForwardFilter | None = None

    # -- fitting -----------------------------------------------------------------------------

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def min_training_rows(self) -> int:
        """Fewest training rows :meth:`fit` accepts."""
        return min_training_rows(self.n_states, self.n_features, self.covariance_type)

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "version_")

    def fit(
        self,
        x: np.ndarray,
        *,
        init_from: "GaussianRegimeHMM | None" = None,
        train_start_ns: int | None = None,
        train_end_ns: int | None = None,
    ) -> Self:
        """Fit on a training window of raw feature rows.

        Parameters
        ----------
        x : np.ndarray
            Shape (N, D), finite raw features (FeatureExtractor output without warm-up rows).
        init_from : GaussianRegimeHMM, optional
            A fitted model to start EM from (walk-forward refits): one EM run from its
            parameters, re-expressed in this window's standardisation, instead of ``n_init``
            k-means starts. Faster, and keeps the states continuous across refits.
        train_start_ns, train_end_ns : int, optional
            Timestamps of the first and last training bar, kept with the model.

        Raises
        ------
        RegimeFitError
            Fewer than :attr:`min_training_rows` rows, or every EM run degenerated.
        """
        x = np.asarray(x, dtype=float)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise ValueError(f"x must have shape (N, {self.n_features}), got {x.shape}")
        if not np.isfinite(x).all():
            bad = int((~np.isfinite(x).all(axis=1)).sum())
            raise ValueError(f"x has {bad} non-finite rows; drop them before fitting")
        if len(x) < self.min_training_rows:
            raise RegimeFitError(
                f"too few bars to fit: {len(x)} rows, a {self.n_states}-state "
                f"{self.covariance_type}-covariance HMM on {self.n_features} features "
                f"({n_free_parameters(self.n_states, self.n_features, self.covariance_type)} "
                f"free parameters) needs at least {self.min_training_rows}",
            )
        warnings: list[str] = []
        mean = x.mean(axis=0)
        scale = x.std(axis=0)
        for i, s in enumerate(scale):
            if not s > 1e-12 * max(1.0, abs(mean[i])):
                warnings.append(
                    f"feature {self.features[i]} is constant in the training window; "
                    "it carries no information (scale set to 1)",
                )
                scale[i] = 1.0
        z = (x - mean) / scale

        errors: list[str] = []
        runs: list[tuple[float, GaussianHMM]] = []
        if init_from is not None and init_from.is_fitted:
            warm_errors: list[str] = []
            runs = self._run_em([self._warm_model(init_from, mean, scale)], z, warm_errors)
            if not runs:
                warnings.append(
                    f"{warm_errors[0]}; refitted from {self.n_init} k-means start(s) instead",
                )
        if not runs:
            cold = [self._cold_model(self.random_state + i) for i in range(self.n_init)]
            runs = self._run_em(cold, z, errors)
        if not runs:
            raise RegimeFitError("every EM run failed: " + "; ".join(errors))
        warnings.extend(errors)
        score, best, posteriors = max(runs, key=lambda item: item[0])

        covars, clamp_warnings = self._floor_covariances(np.asarray(best.covars_))
        warnings.extend(clamp_warnings)
        transmat = np.asarray(best.transmat_, dtype=float)
        empty_rows = transmat.sum(axis=1) <= 0
        if empty_rows.any():
            warnings.append(
                f"states {np.flatnonzero(empty_rows).tolist()} were never left in training; "
                "their transitions were set uniform",
            )
            transmat[empty_rows] = 1.0 / self.n_states
        transmat = transmat / transmat.sum(axis=1, keepdims=True)

        self.scaler_mean_ = mean
        self.scaler_scale_ = scale
        self.means_ = np.asarray(best.means_, dtype=float)
        self.covars_ = covars
        self.transmat_ = transmat
        # Training-window fit statistic: the run's posteriors (its predict_proba(z)), from the
        # pass that scored it.
        occupancy = posteriors.sum(axis=0)
        self.state_occupancy_ = np.asarray(occupancy, dtype=float)
        self.log_likelihood_ = score
        self.n_train_ = len(x)
        self.train_start_ns_ = train_start_ns
        self.train_end_ns_ = train_end_ns
        self.converged_ = bool(best.monitor_.converged)
        if not self.converged_:
            warnings.append(f"EM did not converge in {self.n_iter} iterations")
        self.fit_warnings_ = warnings
        self._finish()
        return self

    @staticmethod
    def _run_em(
        starts: list[GaussianHMM],
        z: np.ndarray,
        errors: list[str],
    ) -> list[tuple[float, GaussianHMM, np.ndarray]]:
        """Run EM from each start; keep the runs that end finite, with their log-likelihood and
        posteriors, shape (N, K)."""
        runs = []
        # hmmlearn logs "rows of transmat_ have zero sum" itself; fit() reports that as a
        # warning of its own, through the caller's channel.
        hmm_logger = logging.getLogger("hmmlearn.base")
        level = hmm_logger.level
        hmm_logger.setLevel(logging.ERROR)
        try:
            # EM works on (N, D≤10) arrays: a multi-threaded BLAS only adds contention (measured
            # 20x slower on a busy 2-core machine), so fits run single-threaded.
            with _single_threaded():
                for hmm in starts:
                    runs.extend(GaussianRegimeHMM._run_one(hmm, z, errors))
        finally:
            hmm_logger.setLevel(level)
        return runs

    @staticmethod
    def _run_one(
        hmm: GaussianHMM,
        z: np.ndarray,
        errors: list[str],
    ) -> list[tuple[float, GaussianHMM, np.ndarray]]:
        """One EM run: ``[(log-likelihood, model, posteriors)]``, or ``[]`` (reason appended to
        errors). The log-likelihood is ``hmm.score(z)``, from the same forward pass as the
        posteriors (``hmm.predict_proba(z)``): one pass instead of two for the winning run."""
        label = "warm start" if hmm.init_params == "" else f"seed {hmm.random_state}"
        try:
            with np.errstate(all="ignore"):
                hmm.fit(z)
                log_prob, posteriors = hmm.score_samples(z)
                score = float(log_prob)
        except (ValueError, np.linalg.LinAlgError) as e:
            errors.append(f"EM run ({label}) failed: {e}")
            return []
        finite = (
            np.isfinite(hmm.means_).all()
            and np.isfinite(hmm.covars_).all()
            and np.isfinite(hmm.transmat_).all()
        )
        if not (math.isfinite(score) and finite):
            errors.append(f"EM run ({label}) degenerated (non-finite parameters)")
            return []
        return [(score, hmm, posteriors)]

    def _cold_model(self, seed: int) -> GaussianHMM:
        return GaussianHMM(
            n_components=self.n_states,
            covariance_type=self.covariance_type,
            min_covar=self.min_covar,
            covars_prior=self._covars_prior(),
            transmat_prior=1.0 + self.transition_pseudocount,
            n_iter=self.n_iter,
            tol=self.tol,
            random_state=seed,
            implementation="scaling",
        )

    def _warm_model(
        self,
        previous: "GaussianRegimeHMM",
        mean: np.ndarray,
        scale: np.ndarray,
    ) -> GaussianHMM:
        """An hmmlearn model initialised at ``previous``'s parameters in the new scaling."""
        if previous.n_states != self.n_states or previous.features != self.features:
            raise ValueError("init_from must have the same states and features")
        # raw = z_old * s_old + m_old, z_new = (raw - m_new) / s_new
        ratio = previous.scaler_scale_ / scale
        means = (previous.means_ * previous.scaler_scale_ + previous.scaler_mean_ - mean) / scale
        covars = previous.covars_ * ratio[None, :, None] * ratio[None, None, :]
        hmm = self._cold_model(self.random_state)
        hmm.init_params = ""
        hmm.startprob_ = previous.initial_
        hmm.transmat_ = previous.transmat_
        hmm.means_ = means
        hmm.covars_ = _to_hmmlearn_covars(covars, self.covariance_type)
        return hmm

    def _covars_prior(self) -> float | np.ndarray:
        if self.covariance_type == "full":
            return np.tile(self.min_covar * np.eye(self.n_features), (self.n_states, 1, 1))
        if self.covariance_type == "tied":
            return self.min_covar * np.eye(self.n_features)
        return self.min_covar

    def _floor_covariances(self, covars: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """Clamp eigenvalues below ``min_covar`` (degenerate states), with a warning each."""
        out = np.empty_like(covars)
        warnings = []
        for k, cov in enumerate(covars):
            sym = 0.5 * (cov + cov.T)
            values, vectors = np.linalg.eigh(sym)
            if values.min() < self.min_covar:
                warnings.append(
                    f"degenerate covariance in state {k}: smallest eigenvalue {values.min():.3g} "
                    f"clamped to min_covar={self.min_covar:g} (standardised units)",
                )
                values = np.maximum(values, self.min_covar)
                sym = (vectors * values) @ vectors.T
            out[k] = sym
        return out, warnings

    # -- derived -----------------------------------------------------------------------------

    def _finish(self) -> None:
        self.state_drift_t_ = drift_scores(
            self.raw_means(),
            self.raw_stds(),
            self.state_occupancy_,
            self.features,
        )
        self.state_volatility_ = state_volatility(self.raw_means(), self.raw_stds(), self.features)
        self.state_labels_ = assign_labels(
            self.state_drift_t_,
            self.state_volatility_,
            self.label_z,
        )
        # The filter's prior for a first bar: the share of training time in each state. (The
        # stationary distribution of A is the textbook choice, but a state that is never left
        # in a short window makes A reducible and that prior degenerate.)
        occupancy = np.maximum(self.state_occupancy_, 1e-12)
        self.initial_ = occupancy / occupancy.sum()
        self._label_sum = compile_label_sum(label_matrix(self.state_labels_))
        self._filter_template = ForwardFilter(
            self.means_,
            self.covars_,
            self.transmat_,
            self.initial_,
            self.scaler_mean_,
            self.scaler_scale_,
            self.temperature,
        )
        self.version_ = (
            "hmm-"
            + hashlib.sha256(
                json.dumps(self._identity(), sort_keys=True).encode(),
            ).hexdigest()[:12]
        )

    def _identity(self) -> dict[str, Any]:
        """What determines the filter's output (hashed into the version)."""
        return {
            "features": [str(s) for s in self.features],
            "state_labels": list(self.state_labels_),
            "state_occupancy": _canonical(self.state_occupancy_),
            "scaler_mean": _canonical(self.scaler_mean_),
            "scaler_scale": _canonical(self.scaler_scale_),
            "means": _canonical(self.means_),
            "covars": _canonical(self.covars_),
            "transmat": _canonical(self.transmat_),
            "temperature": self.temperature,
        }

    def with_temperature(self, temperature: float) -> Self:
        """The same fitted model with another filter tempering (and so another version)."""
        self._check_fitted()
        if not (math.isfinite(temperature) and temperature >= 1.0):
            raise ConfigError(f"temperature: must be a number >= 1, was {temperature}")
        twin = copy.copy(self)
        twin.temperature = float(temperature)
        twin._finish()
        return twin

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise RegimeFitError("the regime model is not fitted")

    def forward_filter(self) -> ForwardFilter:
        """A fresh forward filter for this model (prior: :attr:`initial_`)."""
        self._check_fitted()
        assert self._filter_template is not None
        return self._filter_template.clone()

    def label_probabilities(self, state_probabilities: Sequence[float]) -> tuple[float, ...]:
        """Sum state probabilities into ``REGIME_LABELS`` order (bull, bear, sideways)."""
        return self._label_sum(state_probabilities)

    def filter_proba(self, x: np.ndarray, *, labels: bool = True) -> np.ndarray:
        """Causal filtered probabilities of a whole sequence (one forward step per row).

        Rows with a non-finite value are treated as missing: the filter only predicts there.

        Parameters
        ----------
        x : np.ndarray
            Shape (N, D) raw features.
        labels : bool, default True
            Return label probabilities (N, 3) in ``REGIME_LABELS`` order; else states (N, K).

        Returns
        -------
        np.ndarray
            Row t is p(· | x_1..x_t): it never depends on rows after t.
        """
        self._check_fitted()
        x = np.asarray(x, dtype=float)
        fwd = self.forward_filter()
        width = len(REGIME_LABELS) if labels else self.n_states
        out = np.empty((len(x), width))
        for t, row in enumerate(x.tolist()):
            state = fwd.update(row) if all(map(math.isfinite, row)) else fwd.predict()
            out[t] = self.label_probabilities(state) if labels else state
        return out

    def smoothed_proba(self, x: np.ndarray) -> np.ndarray:
        """hmmlearn's forward-backward posteriors (NON-causal: row t uses rows after t).

        For comparison and diagnostics only; shape (N, K) states.
        """
        z = (np.asarray(x, dtype=float) - self.scaler_mean_) / self.scaler_scale_
        return self.to_hmmlearn().predict_proba(z)

    def to_hmmlearn(self) -> GaussianHMM:
        """An equivalent hmmlearn model on standardised features (start = ``initial_``)."""
        self._check_fitted()
        hmm = GaussianHMM(
            n_components=self.n_states,
            covariance_type="full",
            init_params="",
            implementation="scaling",
        )
        hmm.n_features = self.n_features
        hmm.startprob_ = self.initial_
        hmm.transmat_ = self.transmat_
        hmm.means_ = self.means_
        hmm.covars_ = self.covars_
        return hmm

    def raw_means(self) -> np.ndarray:
        """State means in raw feature units, shape (K, D)."""
        return self.means_ * self.scaler_scale_ + self.scaler_mean_

    def raw_stds(self) -> np.ndarray:
        """State standard deviations in raw feature units, shape (K, D)."""
        return np.sqrt(np.diagonal(self.covars_, axis1=1, axis2=2)) * self.scaler_scale_

    def describe(self) -> list[dict[str, Any]]:
        """Per state: label, prior weight, drift t, expected duration (bars), raw moments."""
        self._check_fitted()
        means, stds = self.raw_means(), self.raw_stds()
        out = []
        for k in range(self.n_states):
            stay = float(self.transmat_[k, k])
            out.append(
                {
                    "state": k,
                    "label": self.state_labels_[k],
                    "weight": float(self.initial_[k]),
                    "drift_t": float(self.state_drift_t_[k]),
                    "volatility": float(self.state_volatility_[k]),
                    "expected_duration_bars": math.inf if stay >= 1.0 else 1.0 / (1.0 - stay),
                    "mean": {str(s): float(means[k, i]) for i, s in enumerate(self.features)},
                    "std": {str(s): float(stds[k, i]) for i, s in enumerate(self.features)},
                },
            )
        return out

    # -- persistence -------------------------------------------------------------------------

    def hyperparameters(self) -> dict[str, Any]:
        return {
            "features": [str(s) for s in self.features],
            "n_states": self.n_states,
            "covariance_type": self.covariance_type,
            "min_covar": self.min_covar,
            "n_iter": self.n_iter,
            "tol": self.tol,
            "n_init": self.n_init,
            "random_state": self.random_state,
            "label_z": self.label_z,
            "transition_pseudocount": self.transition_pseudocount,
            "temperature": self.temperature,
        }

    def to_dict(self) -> dict[str, Any]:
        """The model as JSON-ready data (floats round-trip exactly)."""
        self._check_fitted()
        return {
            "format": MODEL_FORMAT,
            "format_version": MODEL_FORMAT_VERSION,
            "version": self.version_,
            "labels": list(REGIME_LABELS),
            "hyperparameters": self.hyperparameters(),
            **self._identity(),
            "training": {
                "n_samples": self.n_train_,
                "log_likelihood": self.log_likelihood_,
                "start_ns": self.train_start_ns_,
                "end_ns": self.train_end_ns_,
                "converged": self.converged_,
                "warnings": list(self.fit_warnings_),
            },
            "libraries": {"hmmlearn": _hmmlearn_version(), "numpy": np.__version__},
        }

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON (no pickle: safe to load, diffable); returns the path.

        The file is written beside its target and renamed into place, so a crash never leaves
        a half-written model that a later :meth:`load` would reject.

        Raises
        ------
        ConfigError
            Naming the file, when it cannot be written (its directory is a file, no permission).
        """
        path = Path(path)
        text = json.dumps(self.to_dict(), indent=1) + "\n"
        partial = path.with_name(f".{path.name}.partial")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            partial.write_text(text, encoding="utf-8")
            os.replace(partial, path)
        except OSError as e:
            if partial.parent.is_dir():
                partial.unlink(missing_ok=True)
            raise ConfigError(f"{path}: cannot write the model file ({e.strerror})") from None
        return path

    @classmethod
    def from_dict(cls, data: Any, source: str = "<dict>") -> Self:
        """Rebuild a fitted model; raises ConfigError naming ``source`` and the bad field."""
        if not isinstance(data, dict):
            raise ConfigError(
                f"{source}: not a grodt regime model (the JSON is a {type(data).__name__}, "
                "expected an object)"
            )
        if data.get("format") != MODEL_FORMAT:
            raise ConfigError(f"{source}: not a grodt regime model (format {data.get('format')!r})")
        if data.get("format_version") != MODEL_FORMAT_VERSION:
            raise ConfigError(
                f"{source}: format_version {data.get('format_version')!r} is not supported "
                f"(this grodt reads {MODEL_FORMAT_VERSION})",
            )
        for name in ("hyperparameters", "training"):
            if name in data and not isinstance(data[name], dict):
                raise ConfigError(
                    f"{source}: {name} must be an object, got {type(data[name]).__name__}"
                )
        try:
            model = cls(**data["hyperparameters"])
        except KeyError as e:
            raise ConfigError(f"{source}: missing field {e.args[0]!r}") from None
        except ConfigError as e:
            raise ConfigError(f"{source}: hyperparameters.{e}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: hyperparameters: {e}") from None
        try:
            model.scaler_mean_ = np.asarray(data["scaler_mean"], dtype=float)
            model.scaler_scale_ = np.asarray(data["scaler_scale"], dtype=float)
            model.means_ = np.asarray(data["means"], dtype=float)
            model.covars_ = np.asarray(data["covars"], dtype=float)
            model.transmat_ = np.asarray(data["transmat"], dtype=float)
            model.state_occupancy_ = np.asarray(data["state_occupancy"], dtype=float)
            stored_labels = tuple(data["state_labels"])
            training = data["training"]
            model.log_likelihood_ = float(training.get("log_likelihood", math.nan))
            model.n_train_ = int(training.get("n_samples", 0))
            model.train_start_ns_ = training.get("start_ns")
            model.train_end_ns_ = training.get("end_ns")
            model.converged_ = bool(training.get("converged", True))
            model.fit_warnings_ = list(training.get("warnings", []))
        except KeyError as e:
            raise ConfigError(f"{source}: missing field {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{source}: {e}") from None
        k, d = model.n_states, model.n_features
        for name, value, shape in (
            ("scaler_mean", model.scaler_mean_, (d,)),
            ("scaler_scale", model.scaler_scale_, (d,)),
            ("means", model.means_, (k, d)),
            ("covars", model.covars_, (k, d, d)),
            ("transmat", model.transmat_, (k, k)),
            ("state_occupancy", model.state_occupancy_, (k,)),
        ):
            if value.shape != shape:
                raise ConfigError(f"{source}: {name} has shape {value.shape}, expected {shape}")
            if not np.isfinite(value).all():
                raise ConfigError(f"{source}: {name} holds a non-finite value")
        try:
            model._finish()
        except np.linalg.LinAlgError as e:
            raise ConfigError(f"{source}: covars are not positive definite ({e})") from None
        if model.state_labels_ != stored_labels:
            raise ConfigError(
                f"{source}: state_labels {list(stored_labels)} do not follow from the parameters "
                f"({list(model.state_labels_)})",
            )
        stored = data.get("version")
        if stored != model.version_:
            raise ConfigError(
                f"{source}: content hash {model.version_} does not match the stored version "
                f"{stored!r} (the file was edited or corrupted)",
            )
        return model

    @classmethod
    def load(cls, path: str | Path) -> Self:
        """Read a model written by :meth:`save`; the version is re-derived and checked.

        Raises
        ------
        ConfigError
            Naming the file: missing or unreadable, not UTF-8, not JSON, not a JSON object, or
            not a regime model of this format (missing/mistyped field, wrong shape, edited).
        """
        path = Path(path)
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{path}: model file not found") from None
        except IsADirectoryError:
            raise ConfigError(f"{path}: is a directory, not a model file") from None
        except OSError as e:
            raise ConfigError(f"{path}: cannot read the model file ({e.strerror})") from None
        except UnicodeDecodeError as e:
            raise ConfigError(
                f"{path}: not a grodt regime model (not UTF-8 text: byte {e.start})"
            ) from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ConfigError(f"{path}: not valid JSON: {e}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid JSON: nested too deeply") from None
        return cls.from_dict(data, source=str(path))


def _to_hmmlearn_covars(covars: np.ndarray, covariance_type: str) -> np.ndarray:
    """Full (K, D, D) covariances in hmmlearn's per-type layout."""
    if covariance_type == "full":
        return covars
    if covariance_type == "diag":
        return np.diagonal(covars, axis1=1, axis2=2).copy()
    if covariance_type == "spherical":
        return np.diagonal(covars, axis1=1, axis2=2).mean(axis=1)
    return covars.mean(axis=0)  # tied
