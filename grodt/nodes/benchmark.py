"""The run's benchmark (``benchmark: <bar type>`` in a backtest config): its buy-and-hold equity
on the run's bar index and the summary figures against it."""

from pathlib import Path
from typing import Any

from catalogs.reader import read_bars_frame
from catalogs.transaction import bar_directory
from grodt.core.errors import ConfigError
from research.benchmark import BENCHMARK_COLUMN
from research.benchmark import benchmark_summary
from research.benchmark import buy_and_hold
from research.performance import EquityCurve
from research.performance import daily_returns

__all__ = ["add_benchmark", "check_benchmark"]


def check_benchmark(catalog: Path, bar_type: str) -> None:
    """Fail before the run when the catalog holds no bars of the benchmark ``bar_type``."""
    directory = Path(catalog) / bar_directory(bar_type)
    if not directory.is_dir() or not any(directory.glob("*.parquet")):
        raise ConfigError(
            f"benchmark: {bar_type}: no such bar type in the catalog {catalog} "
            "(`grodt catalog list` shows what it holds)",
        )


def add_benchmark(
    curve: EquityCurve,
    catalog: Path,
    bar_type: str,
    periods_per_year: int,
) -> dict[str, Any]:
    """Add :data:`research.benchmark.BENCHMARK_COLUMN` to ``curve.frame`` and return the
    summary's ``benchmark`` entry.

    The benchmark is bought at its first close inside the run's span (no fees) and held to the
    end; its closes are carried forward onto the run's bar closes, so a benchmark on another
    calendar or bar size still gives one value per run bar. Returns are daily, on the days the
    run has bars, like the run's own (:func:`research.performance.daily_returns`).

    Returns
    -------
    dict
        ``bar_type`` and the figures of :func:`research.benchmark.benchmark_summary`.

    Raises
    ------
    ConfigError
        The catalog holds no bars of ``bar_type``, or none inside the run's span.
    """
    frame = curve.frame
    if frame.empty:
        raise ConfigError(f"benchmark: {bar_type}: the run has no bars to compare it with")
    try:
        bars = read_bars_frame(catalog, bar_type, start=frame.index[0], end=frame.index[-1])
    except FileNotFoundError:
        raise ConfigError(
            f"benchmark: {bar_type}: no such bar type in the catalog {catalog} "
            "(`grodt catalog list` shows what it holds)",
        ) from None
    if bars.empty:
        raise ConfigError(
            f"benchmark: {bar_type}: no bars between {frame.index[0]} and {frame.index[-1]} "
            f"in the catalog {catalog}",
        )
    # Carry each close forward to the run's next bar close (union, ffill, then the run's index).
    union = frame.index.union(bars.index)
    closes = bars["close"].reindex(union).ffill().reindex(frame.index)
    frame[BENCHMARK_COLUMN] = buy_and_hold(closes, curve.starting_equity)
    returns = daily_returns(frame["equity"], curve.starting_equity)
    benchmark_returns = daily_returns(frame[BENCHMARK_COLUMN], curve.starting_equity)
    return {
        "bar_type": bar_type,
        **benchmark_summary(returns, benchmark_returns, periods_per_year),
    }
