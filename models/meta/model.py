"""The meta-controller's performance model: quantiles, conformal interval and P(return > 0) in one
file.

:class:`MetaModel` is what ``grodt meta train`` writes and the meta-controller actor loads: a
:class:`~models.meta.quantile.QuantileReturnModel`, its out-of-sample
:class:`~models.meta.calibration.ConformalInterval` and
:class:`~models.meta.calibration.PositiveProbability`, the feature names it expects, the horizon
of its target, the time of its last training row, and the metrics measured out of sample. The
file is JSON; its version is a hash of its content.
"""

import hashlib
import json
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np

from grodt.core.errors import ConfigError
from models.meta.calibration import ConformalInterval
from models.meta.calibration import PositiveProbability
from models.meta.calibration import raw_positive_probability
from models.meta.quantile import QuantileReturnModel

__all__ = ["Forecast", "MetaModel"]

FORMAT = "grodt.meta.model/1"


@dataclass(frozen=True)
class Forecast:
    """Calibrated forecasts of next-window returns per unit of allocation, one row per strategy.

    Attributes
    ----------
    mu : np.ndarray, shape (n,)
        The median (q50).
    lower, upper : np.ndarray, shape (n,)
        Conformal bounds of the nominal interval (80% by default).
    sigma : np.ndarray, shape (n,)
        ``(upper − lower) / (2 · 1.2816)``: σ of a normal with that 80% interval.
    p_positive : np.ndarray, shape (n,)
        Calibrated P(return > 0).
    crossing : np.ndarray, shape (n,)
        Raw quantile crossing before rearrangement.
    """

    mu: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    sigma: np.ndarray
    p_positive: np.ndarray
    crossing: np.ndarray


@dataclass
class MetaModel:
    """A trained performance model (see the module docstring).

    Attributes
    ----------
    quantiles : QuantileReturnModel
    interval : ConformalInterval
    probability : PositiveProbability
    feature_names : list[str]
        Column order of the rows :meth:`forecast` takes.
    horizon_bars : int
        The target's window, in clock bars (the actor's ``rebalance_every``).
    trained_until_ns : int
        ``ts_event`` of the last training row (UNIX ns): staleness is measured from it.
    metrics : dict[str, float]
        Out-of-sample figures of the training run.
    """

    quantiles: QuantileReturnModel
    interval: ConformalInterval
    probability: PositiveProbability
    feature_names: list[str]
    horizon_bars: int
    trained_until_ns: int
    metrics: dict[str, float] = field(default_factory=dict)
    version_: str = ""

    def forecast(self, x: np.ndarray) -> Forecast:
        """Calibrated forecasts of ``x`` (shape (n, len(feature_names)))."""
        prediction = self.quantiles.predict(x)
        levels = prediction.levels
        lower, upper = self.interval.transform(prediction.values[:, 0], prediction.values[:, -1])
        z = 1.2815515655446004
        raw_probability = raw_positive_probability(prediction.values, levels)
        return Forecast(
            mu=prediction.median,
            lower=lower,
            upper=upper,
            sigma=(upper - lower) / (2.0 * z),
            p_positive=self.probability.predict(raw_probability),
            crossing=prediction.crossing,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "feature_names": list(self.feature_names),
            "horizon_bars": self.horizon_bars,
            "trained_until_ns": self.trained_until_ns,
            "metrics": self.metrics,
            "quantiles": self.quantiles.to_dict(),
            "interval": self.interval.to_dict(),
            "probability": self.probability.to_dict(),
        }

    def stamp(self) -> "MetaModel":
        """Set :attr:`version_` from the model's content, as :meth:`save` would (for a model
        that lives in memory: retrained online). Returns the model."""
        self.version_ = _version(json.dumps(self.to_dict(), sort_keys=True))
        return self

    def save(self, path: str | Path) -> Path:
        """Write the model as JSON and set :attr:`version_` (a hash of the text written)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(self.to_dict(), sort_keys=True)
        self.version_ = _version(text)
        path.write_text(text)
        return path

    @classmethod
    def load(cls, path: str | Path) -> "MetaModel":
        """Read a model written by :meth:`save`.

        Raises
        ------
        ConfigError
            Missing file, not JSON, another format, or a missing field (named).
        """
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"meta model {path}: cannot read: {e}") from None
        try:
            data = json.loads(text)
        except ValueError as e:
            raise ConfigError(f"meta model {path}: not JSON: {e}") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ConfigError(f"meta model {path}: format {found!r}, expected {FORMAT!r}")
        try:
            model = cls(
                quantiles=QuantileReturnModel.from_dict(data["quantiles"]),
                interval=ConformalInterval.from_dict(data["interval"]),
                probability=PositiveProbability.from_dict(data["probability"]),
                feature_names=list(data["feature_names"]),
                horizon_bars=int(data["horizon_bars"]),
                trained_until_ns=int(data["trained_until_ns"]),
                metrics=dict(data.get("metrics", {})),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"meta model {path}: invalid field {e}") from None
        model.version_ = _version(text)
        return model


def _version(text: str) -> str:
    return "meta-" + hashlib.sha256(text.encode()).hexdigest()[:12]
