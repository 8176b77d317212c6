"""The causal forward filter: p(state_t | x_1..x_t), one O(K² + K·D²) update per bar.

hmmlearn's ``predict``/``predict_proba``/``decode`` run forward-backward or Viterbi over the whole
sequence, so their value at bar t depends on bars after t. Online regime probabilities must come
from the forward recursion alone::

    predicted_j = Σ_i filtered_i · A[i, j]                     (time update)
    filtered_j  ∝ predicted_j · N(x_t; μ_j, Σ_j)               (measurement update)

Everything per state is precomputed: the whitening matrix L⁻¹ of each covariance (Σ = LLᵀ) with
the feature scaler folded in, and the log normalisers. The model is then *compiled* to one
straight-line Python function (its parameters as float literals, the triangular products
unrolled): for 3 states and 3 features that is ~60 multiply-adds and one ``exp`` per state,
about 10x cheaper than the same arithmetic in loops and far cheaper than a dozen small numpy
calls. The literals are ``repr`` of the float64 parameters, which round-trip exactly.

The recursion is normalised at every step; emission log-densities are shifted by their maximum
before exponentiation, and when the normalised update underflows (zeros in A next to a decisive
observation) the same update is done in log space, so no input makes it NaN.
"""

import math
from collections.abc import Callable
from collections.abc import Sequence

import numpy as np

_LOG_2PI = math.log(2.0 * math.pi)
_TINY = 1e-280

StepFunction = Callable[
    [Sequence[float], Sequence[float]],
    tuple[tuple[float, ...], float] | None,
]


def _literal(value: float) -> str:
    return repr(float(value))


def _compile(
    rows: list[list[float]],
    offsets: list[float],
    log_norm: list[float],
    transmat: np.ndarray,
    n_states: int,
    n_features: int,
    temperature: float = 1.0,
) -> tuple[Callable[[Sequence[float]], list[float]], StepFunction, StepFunction]:
    """Straight-line functions ``emission(x)``, ``step(x, alpha)`` and ``first(x, prior)``.

    ``step`` applies A to ``alpha`` then the measurement; ``first`` only the measurement.
    Both return ``(posterior tuple, log p(x | past))`` or ``None`` when the normalised update
    underflows.
    """
    k, d = n_states, n_features
    unpack_x = "    " + ", ".join(f"x{c}" for c in range(d)) + ", = x"
    emission: list[str] = []
    for s in range(k):
        squares = []
        for r in range(d):
            i = s * d + r
            terms = "".join(f" + {_literal(rows[i][c])} * x{c}" for c in range(r + 1))
            emission.append(f"    z{s}_{r} = {_literal(-offsets[i])}{terms}")
            squares.append(f"z{s}_{r} * z{s}_{r}")
        density = f"{_literal(log_norm[s])} - 0.5 * ({' + '.join(squares)})"
        if temperature != 1.0:
            density = f"({density}) * {_literal(1.0 / temperature)}"
        emission.append(f"    l{s} = {density}")
    logs = ", ".join(f"l{s}" for s in range(k))
    unpack_a = "    " + ", ".join(f"a{i}" for i in range(k)) + ", = a"

    def body(with_transition: bool) -> list[str]:
        lines = [unpack_x, *emission, f"    m = max({logs})", unpack_a]
        for j in range(k):
            if with_transition:
                predicted = " + ".join(f"a{i} * {_literal(transmat[i, j])}" for i in range(k))
            else:
                predicted = f"a{j}"
            lines.append(f"    p{j} = ({predicted}) * exp(l{j} - m)")
        lines.append("    t = " + " + ".join(f"p{j}" for j in range(k)))
        lines.append(f"    if not ({_TINY!r} < t < inf):")
        lines.append("        return None")
        lines.append("    return (" + ", ".join(f"p{j} / t" for j in range(k)) + ",), log(t) + m")
        return lines

    source = "\n".join(
        [
            "def emission(x):",
            unpack_x,
            *emission,
            f"    return [{logs}]",
            "",
            "def step(x, a):",
            *body(with_transition=True),
            "",
            "def first(x, a):",
            *body(with_transition=False),
        ],
    )
    namespace: dict[str, object] = {"exp": math.exp, "log": math.log, "inf": math.inf}
    exec(compile(source, "<regime forward filter>", "exec"), namespace)
    return namespace["emission"], namespace["step"], namespace["first"]  # type: ignore[return-value]


class ForwardFilter:
    """Normalised forward recursion of a Gaussian HMM on raw (unscaled) feature vectors.

    Parameters
    ----------
    means : np.ndarray
        Shape (K, D), state means in standardised feature units.
    covars : np.ndarray
        Shape (K, D, D), full state covariances in standardised units (positive definite).
    transmat : np.ndarray
        Shape (K, K), row-stochastic transition matrix A[i, j] = p(s_t = j | s_{t-1} = i).
    initial : np.ndarray
        Shape (K,), the state distribution at the first observation.
    scaler_mean, scaler_scale : np.ndarray
        Shape (D,), the standardisation ``z = (x - scaler_mean) / scaler_scale`` applied to raw
        feature vectors before the Gaussian densities.
    temperature : float, default 1.0
        Emission tempering T ≥ 1: each observation's log-density is divided by T. Features over
        overlapping windows (a 20-bar volatility, a 50-bar trend) repeat the same information
        for many bars, and an HMM that treats them as independent is overconfident; T ≈ the
        feature window restores calibrated, smoothly moving probabilities. T = 1 is the exact
        model posterior (what hmmlearn computes).
    """

    def __init__(
        self,
        means: np.ndarray,
        covars: np.ndarray,
        transmat: np.ndarray,
        initial: np.ndarray,
        scaler_mean: np.ndarray,
        scaler_scale: np.ndarray,
        temperature: float = 1.0,
    ) -> None:
        if not (math.isfinite(temperature) and temperature >= 1.0):
            raise ValueError(f"temperature must be a finite number >= 1, was {temperature}")
        self.temperature = float(temperature)
        means = np.asarray(means, dtype=float)
        covars = np.asarray(covars, dtype=float)
        transmat = np.asarray(transmat, dtype=float)
        k, d = means.shape
        if covars.shape != (k, d, d) or transmat.shape != (k, k):
            raise ValueError(
                f"inconsistent shapes: means {means.shape}, covars {covars.shape}, "
                f"transmat {transmat.shape}",
            )
        scale = np.asarray(scaler_scale, dtype=float)
        shift = np.asarray(scaler_mean, dtype=float)
        for name, value in (
            ("means", means),
            ("covars", covars),
            ("transmat", transmat),
            ("scaler_mean", shift),
            ("scaler_scale", scale),
        ):
            if not np.isfinite(value).all():
                raise ValueError(f"{name} has non-finite values")
        if (transmat < 0).any() or (scale <= 0).any():
            raise ValueError("transmat must be non-negative and scaler_scale positive")
        self.n_states = k
        self.n_features = d
        rows: list[list[float]] = []
        offsets: list[float] = []
        log_norm: list[float] = []
        for state in range(k):
            chol = np.linalg.cholesky(covars[state])
            whiten = np.linalg.inv(chol)  # L⁻¹, lower triangular
            # z = L⁻¹((x - m)/s - μ) = (L⁻¹ diag(1/s)) x - L⁻¹(m/s + μ)
            matrix = np.tril(whiten / scale[None, :])
            offset = whiten @ (shift / scale + means[state])
            rows.extend(matrix.tolist())
            offsets.extend(offset.tolist())
            log_norm.append(-0.5 * (d * _LOG_2PI) - float(np.log(np.diag(chol)).sum()))
        self._columns: list[list[float]] = transmat.T.tolist()
        self._emission, self._step, self._first = _compile(
            rows,
            offsets,
            log_norm,
            transmat,
            k,
            d,
            self.temperature,
        )
        self._initial: list[float] = [float(p) for p in initial]
        self.reset()

    def clone(self) -> "ForwardFilter":
        """A new filter sharing this one's compiled model, reset to the initial state."""
        twin = object.__new__(ForwardFilter)
        twin.__dict__.update(self.__dict__)
        twin.reset()
        return twin

    def reset(self, prior: Sequence[float] | None = None) -> None:
        """Restart the recursion.

        Parameters
        ----------
        prior : Sequence[float] | None
            The filtered distribution at the bar *before* the next update (the next update
            applies the transition matrix to it). ``None`` restarts from the initial
            distribution, taken as the state distribution *at* the next bar.
        """
        self._alpha: tuple[float, ...] = tuple(self._initial if prior is None else prior)
        self._started = prior is not None
        self.log_likelihood = 0.0
        """Σ_t log p(x_t | x_1..x_{t-1}) in standardised units since the last reset."""

    @property
    def probabilities(self) -> list[float]:
        """The current filtered state distribution (length K)."""
        return list(self._alpha)

    def emission_log_densities(self, x: Sequence[float]) -> list[float]:
        """log N(x; μ_k, Σ_k) / T for every state k, in standardised units (length K)."""
        return self._emission(x)

    def _predicted(self) -> list[float]:
        alpha = self._alpha
        return [sum(a * t for a, t in zip(alpha, col, strict=True)) for col in self._columns]

    def predict(self) -> tuple[float, ...]:
        """Time update only (a missing observation): α ← α·A. Returns the new distribution."""
        if not self._started:
            # The initial distribution already is the prediction for the first bar.
            self._started = True
            return self._alpha
        predicted = self._predicted()
        total = sum(predicted)
        self._alpha = tuple(p / total for p in predicted)
        return self._alpha

    def update(self, x: Sequence[float]) -> tuple[float, ...]:
        """One forward step with observation ``x`` (raw feature vector, length D).

        Returns
        -------
        tuple[float, ...]
            p(state_t | x_1..x_t), length K, summing to 1.
        """
        result = self._step(x, self._alpha) if self._started else self._first(x, self._alpha)
        if result is None:
            predicted = self._predicted() if self._started else list(self._alpha)
            self._alpha = self._log_space_update(predicted, self._emission(x))
        else:
            self._alpha, step_log_likelihood = result
            self.log_likelihood += step_log_likelihood
        self._started = True
        return self._alpha

    def _log_space_update(self, predicted: list[float], log_b: list[float]) -> tuple[float, ...]:
        """The same update in log space, for when the scaled one underflows (zeros in A)."""
        log_post: list[float] = []
        for p, lb in zip(predicted, log_b, strict=True):
            log_post.append((math.log(p) if p > 0.0 else -math.inf) + lb)
        top = max(log_post)
        if not math.isfinite(top):
            # No state can explain x: keep the prediction (renormalised) rather than emit NaN.
            total = sum(predicted)
            return tuple(p / total for p in predicted)
        weights = [math.exp(v - top) for v in log_post]
        total = sum(weights)
        self.log_likelihood += top + math.log(total)
        return tuple(w / total for w in weights)
