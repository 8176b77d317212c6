"""What a walk-forward produced: per-fold runs and the stitched out-of-sample figures."""

import math
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import pandas as pd

from grodt.experiments.learnable import FittedComponent

__all__ = ["FIGURES", "FoldResult", "WalkForwardResult"]

FIGURES: tuple[str, ...] = ("sharpe", "total_return", "max_drawdown", "cagr")
"""The per-fold figures tabulated for each variant (summary keys)."""


@dataclass
class FoldResult:
    """One fold: its windows, what was fitted, and the out-of-sample runs.

    Attributes
    ----------
    index : int
        From 0.
    train_start, train_end, test_start, test_end : pd.Timestamp
        First and last bar (inclusive, UTC) of each window.
    fitted : list[FittedComponent]
        The learning components fitted on the train window.
    summary : dict
        The regime-routed (as configured) test run's summary (``grodt backtest``'s, with
        ``benchmark`` figures of the fold's buy-and-hold).
    run_dir : Path
        That run's directory.
    baseline_summary, baseline_run_dir
        The always-on baseline's (None when the config has no regime routing or the baseline
        is off).
    seconds : float
        Wall time of the fold (fits and runs).
    """

    index: int
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp
    fitted: list[FittedComponent]
    summary: dict[str, Any]
    run_dir: Path
    baseline_summary: dict[str, Any] | None = None
    baseline_run_dir: Path | None = None
    seconds: float = 0.0

    def row(self) -> dict[str, Any]:
        """The fold's line of ``folds.csv``."""
        row: dict[str, Any] = {
            "fold": self.index,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "test_start": self.test_start.isoformat(),
            "test_end": self.test_end.isoformat(),
            "bars": self.summary.get("bars"),
            "trades": self.summary.get("trades"),
        }
        for key in FIGURES:
            row[key] = self.summary.get(key)
        for key in FIGURES:
            row[f"baseline_{key}"] = (self.baseline_summary or {}).get(key, math.nan)
        benchmark = self.summary.get("benchmark") or {}
        for key in FIGURES:
            row[f"benchmark_{key}"] = benchmark.get(key, math.nan)
        row["models"] = ";".join(str(f.info.get("model_version", "")) for f in self.fitted)
        row["seconds"] = self.seconds
        return row


@dataclass
class WalkForwardResult:
    """A finished walk-forward.

    Attributes
    ----------
    name : str
        The node config's name.
    folds : list[FoldResult]
    stitched_summary : dict[str, float]
        The stitched out-of-sample curve of the routed runs (:func:`stitched_figures` keys:
        ``sharpe``, ``total_return``, ``max_drawdown``, ``cagr``, …).
    baseline_stitched_summary, benchmark_stitched_summary : dict[str, float] | None
        The same for the always-on baseline and for buy-and-hold of ``benchmark``.
    stitched : pd.DataFrame
        Daily stitched equity (UTC day index): ``equity`` and, when run, ``baseline_equity``
        and ``benchmark_equity`` (account currency).
    benchmark : str
        The buy-and-hold bar type.
    credibility : dict[str, float]
        :func:`research.overfitting.result_credibility` of the routed stitched returns.
    run_dir : Path
    tearsheet : Path | None
    tracking : dict[str, Any]
        Parent run and per-fold runs (or why not tracked).
    wall_seconds : float
    settings : dict[str, Any]
        ``train``, ``test``, ``step``, ``expanding``, ``catalog``, ``config``.
    """

    name: str
    folds: list[FoldResult]
    stitched_summary: dict[str, float]
    baseline_stitched_summary: dict[str, float] | None
    benchmark_stitched_summary: dict[str, float] | None
    stitched: pd.DataFrame
    benchmark: str
    credibility: dict[str, float]
    run_dir: Path
    tearsheet: Path | None = None
    tracking: dict[str, Any] = field(default_factory=dict)
    wall_seconds: float = 0.0
    settings: dict[str, Any] = field(default_factory=dict)

    def folds_frame(self) -> pd.DataFrame:
        return pd.DataFrame([fold.row() for fold in self.folds])

    def summary(self) -> dict[str, Any]:
        """JSON-ready: settings, stitched figures of each variant, credibility, per-fold rows."""
        return {
            "name": self.name,
            **self.settings,
            "benchmark": self.benchmark,
            "folds": len(self.folds),
            "stitched": self.stitched_summary,
            "baseline_stitched": self.baseline_stitched_summary,
            "benchmark_stitched": self.benchmark_stitched_summary,
            "credibility": self.credibility,
            "fold_rows": self.folds_frame().to_dict(orient="records"),
            "wall_seconds": self.wall_seconds,
            "run_dir": str(self.run_dir),
            "tearsheet": str(self.tearsheet) if self.tearsheet else None,
        }
