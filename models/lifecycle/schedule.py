"""The retraining schedule of a model that retrains online: a sliding window, a cadence, a lag
and a warm start, counted in rows (one row per bar the model consumes)."""

from dataclasses import dataclass

from grodt.core.errors import ConfigError

__all__ = ["RetrainSchedule"]


@dataclass(frozen=True)
class RetrainSchedule:
    """When a model is (re)fitted and when the new model takes over.

    Parameters
    ----------
    window : int
        Length of the sliding training window, in rows (the caller keeps the rows; the schedule
        only says how many a fit uses).
    every : int, default 1
        Rows between fit attempts after the first fit (1 with daily bars: a daily retrain);
        0 fits once and never again.
    lag_bars : int, default 0
        Rows between a fit's last training row t and the row its model takes over (t + lag).
        0: the fit runs synchronously at row t. Above 0 it runs in the refitter's executor
        (a worker process) while rows t+1..t+lag keep the previous model. Must be below
        ``every`` when that is set (one fit in flight at a time).
    warm_start : bool, default True
        Hand the previous model to the fit function (HMM from the previous parameters, LightGBM
        continued training, RL fine-tuning); False: every fit starts cold (``previous=None``).
    min_window : int, optional
        Rows needed before the first fit (default ``window``).
    """

    window: int
    every: int = 1
    lag_bars: int = 0
    warm_start: bool = True
    min_window: int | None = None

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"window: must be >= 1 rows, was {self.window}")
        if self.every < 0:
            raise ConfigError(f"every: must be >= 0, was {self.every}")
        if self.lag_bars < 0:
            raise ConfigError(f"lag_bars: must be >= 0, was {self.lag_bars}")
        if self.every and self.lag_bars >= self.every:
            raise ConfigError(
                f"lag_bars: must be below every={self.every} (one fit in flight at a time), "
                f"was {self.lag_bars}",
            )
        if not 1 <= self.first_fit_rows <= self.window:
            raise ConfigError(
                f"min_window: must be in [1, window={self.window}], was {self.min_window}",
            )

    @property
    def first_fit_rows(self) -> int:
        """Rows needed before the first fit."""
        return self.window if self.min_window is None else self.min_window

    @property
    def retry_rows(self) -> int:
        """Rows to wait after a failed first fit: ``every``, or a quarter of the first window
        when the model is fitted once."""
        return self.every if self.every > 0 else max(1, self.first_fit_rows // 4)
