"""Walk-forward over the engine: fit on each train window, run the test window in a BacktestNode.

For each fold of :func:`research.cv.time_walk_forward` (windows by calendar time
over the config's first bar type, mapped to the first and last bar inside each):

1. every learning component of the config (:func:`~grodt.experiments.learners.learnables_of`:
   the regime HMM today) is fitted on the train window's bars only;
2. a BacktestNode runs the test window (``start``/``end`` overridden) with the fitted models
   (the components' own ``PATH=VALUE`` overrides, :mod:`node_configs.overrides`);
3. when the config routes by regime, its always-on baseline
   (:func:`~grodt.experiments.baseline.always_on_document`) runs the same window.

Every node starts flat with the config's starting equity: strategies' indicators and the regime
features warm up inside each test window, the same for the routed run and the baseline. The fold
curves are stitched by chaining daily returns (:mod:`grodt.experiments.stitch`); buy-and-hold of
the config's ``benchmark`` (else its first bar type) is stitched the same way. The result is
written to the run directory (``folds.csv``, ``stitched_equity.csv``, ``summary.json``,
``walkforward.html``) and, with ``track``, to MLflow as one parent run with a nested run per fold
and variant (:mod:`grodt.experiments.walkforward_tracking`).
"""

import logging
import time
from collections.abc import Callable
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from catalogs.reader import read_closes
from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.settings import get_settings
from grodt.experiments.baseline import always_on_document
from grodt.experiments.learners import learnables_of
from grodt.experiments.results import FoldResult
from grodt.experiments.results import WalkForwardResult
from grodt.experiments.stitch import chain_returns
from grodt.experiments.stitch import stitched_figures
from grodt.experiments.windows import bar_windows
from grodt.experiments.windows import check_windows
from grodt.nodes.backtest import BacktestOutcome
from grodt.nodes.backtest import data_span_ns
from grodt.nodes.backtest import run_backtest
from grodt.nodes.catalog_data import bar_types_of
from grodt.nodes.run_files import new_run_dir
from grodt.nodes.run_files import write_json
from grodt.tracking.store import TrackingStore
from grodt.tracking.store import resolve_store
from node_configs.loader import load_backtest_document
from node_configs.loader import load_document
from node_configs.overrides import apply_overrides
from node_configs.schema import BacktestNodeSpec
from research.benchmark import BENCHMARK_COLUMN
from research.cv import time_walk_forward
from research.overfitting import result_credibility

__all__ = ["run_walk_forward", "window_overrides"]

logger = logging.getLogger("grodt.experiments")


def _quoted(value: str) -> str:
    # JSON strings are YAML strings: an ISO timestamp stays text through the override parser.
    return '"' + value + '"'


def window_overrides(
    document: Mapping[str, Any],
    start: pd.Timestamp,
    end: pd.Timestamp,
    benchmark: str,
) -> list[str]:
    """Overrides that make ``document`` run [start, end] (node level and every data entry that
    writes its own range, so the one date range agrees) with ``benchmark``."""
    overrides = [f"start={_quoted(start.isoformat())}", f"end={_quoted(end.isoformat())}"]
    for index, entry in enumerate(document.get("data") or []):
        for name, value in (("start", start), ("end", end)):
            if isinstance(entry, Mapping) and entry.get(name) is not None:
                overrides.append(f"data[{index}].{name}={_quoted(value.isoformat())}")
    overrides.append(f"benchmark={benchmark}")
    return overrides


def _bar_index(spec: BacktestNodeSpec, catalog: Path) -> pd.DatetimeIndex:
    span = data_span_ns(spec, catalog)
    if span is None:
        raise ConfigError(f"data: no bars of {bar_types_of(spec.data)} in {catalog}")
    first = bar_types_of(spec.data)[:1]
    return pd.DatetimeIndex(read_closes(catalog, first, span[0], span[1]).index)


def _equity(outcome: BacktestOutcome, column: str = "equity") -> pd.Series:
    if outcome.curve is None or column not in outcome.curve.frame:
        return pd.Series(dtype=float)
    return outcome.curve.frame[column]


def _run(
    document: dict[str, Any],
    source: str,
    catalog: Path,
    run_dir: Path,
) -> tuple[BacktestNodeSpec, BacktestOutcome]:
    spec = load_backtest_document(document, source)
    return spec, run_backtest(spec, catalog, run_dir, document=document, quiet=True)


def run_walk_forward(
    spec: Mapping[str, Any] | str | Path,
    catalog: str | Path | None,
    train: str,
    test: str,
    step: str | None = None,
    expanding: bool = False,
    baseline: bool = True,
    run_dir: Path | None = None,
    track: bool = True,
    *,
    overrides: tuple[str, ...] = (),
    experiment: str | None = None,
    tracking_uri: str | None = None,
    tearsheet: bool = True,
    n_trials: int = 1,
    on_fold: Callable[[FoldResult], None] | None = None,
) -> WalkForwardResult:
    """Walk ``spec`` forward over ``catalog`` (see the module docstring).

    Parameters
    ----------
    spec : Mapping | str | Path
        A node config file, or a resolved document (includes merged, e.g. after
        :func:`~node_configs.overrides.apply_overrides`).
    catalog : str | Path | None
        None: the config's ``catalog``, else ``GRODT_CATALOG``.
    train, test, step : str
        Durations (``3y``, ``6m``, ``30d``); ``step`` defaults to ``test`` and may not be
        shorter (overlapping test windows have no single stitched path).
    expanding : bool
        Train windows grow from the first bar instead of sliding.
    baseline : bool
        Run the always-on baseline beside every regime-routed fold.
    run_dir : Path, optional
        Default ``<GRODT_RUNS_DIR>/<name>_walkforward/<timestamp>``.
    track : bool
        Log to MLflow: a parent run, a nested run per fold and variant.
    overrides : tuple[str, ...]
        ``PATH=VALUE`` applied to the document first (like ``grodt backtest --set``).
    n_trials : int
        Configurations tried before this one, for the deflated Sharpe ratio.
    on_fold : Callable[[FoldResult], None], optional
        Called after each fold (progress output).

    Raises
    ------
    ConfigError
        Bad durations, a config that does not load, no fold in the data's span.
    RegimeFitError
        A learning component could not be fitted on a fold's train window (names the window).
    """
    started = time.perf_counter()
    settings = get_settings()
    if isinstance(spec, str | Path):
        source = str(spec)
        document = load_document(spec, overrides)
    else:
        source = str(spec.get("name", "<document>"))
        document = apply_overrides(spec, overrides)
    node = load_backtest_document(document, source)
    catalog_path = Path(catalog or node.catalog or settings.catalog)
    check_windows(train, test, step)
    index = _bar_index(node, catalog_path)
    folds_windows = bar_windows(index, time_walk_forward(index, train, test, step, expanding))
    if not folds_windows:
        raise ConfigError(
            f"{source}: no walk-forward fold fits the data's span (--train {train} plus "
            f"--test {test} is longer than the bars between {node.start or 'the first bar'} and "
            f"{node.end or 'the last bar'})",
        )
    # Resolve the tracking store first: a malformed URI fails now, not after every fold ran.
    store = resolve_store(tracking_uri) if track else None
    benchmark = node.benchmark or bar_types_of(node.data)[0]
    learnables = learnables_of(document)
    baseline_document = always_on_document(document) if baseline else None
    root = Path(run_dir) if run_dir else new_run_dir(settings.runs_dir, f"{node.name}_walkforward")
    root.mkdir(parents=True, exist_ok=True)

    folds: list[FoldResult] = []
    routed_equity: list[pd.Series] = []
    baseline_equity: list[pd.Series] = []
    benchmark_equity: list[pd.Series] = []
    specs: dict[Path, tuple[BacktestNodeSpec, dict[str, Any]]] = {}
    for index, (train_start, train_end, test_start, test_end) in enumerate(folds_windows):
        fold_started = time.perf_counter()
        fold_dir = root / f"fold_{index:02d}"
        where = f"{source}, fold {index} (test {test_start.date()} → {test_end.date()})"
        try:
            fitted = [
                learnable.fit(catalog_path, train_start, train_end, fold_dir / "models")
                for learnable in learnables
            ]
            window = window_overrides(document, test_start, test_end, benchmark)
            routed_document = apply_overrides(
                document, [*window, *(o for f in fitted for o in f.overrides)]
            )
            routed_spec, routed = _run(routed_document, where, catalog_path, fold_dir / "routed")
            specs[routed.run_dir] = (routed_spec, routed_document)
            fold = FoldResult(
                index,
                train_start,
                train_end,
                test_start,
                test_end,
                fitted,
                routed.summary,
                routed.run_dir,
            )
            routed_equity.append(_equity(routed))
            benchmark_equity.append(_equity(routed, BENCHMARK_COLUMN))
            if baseline_document is not None:
                base_document = apply_overrides(baseline_document, window)
                base_spec, base = _run(
                    base_document, f"{where}, baseline", catalog_path, fold_dir / "baseline"
                )
                specs[base.run_dir] = (base_spec, base_document)
                fold.baseline_summary = base.summary
                fold.baseline_run_dir = base.run_dir
                baseline_equity.append(_equity(base))
        except GrodtError as e:
            raise type(e)(f"{where}: {e}") from None
        fold.seconds = time.perf_counter() - fold_started
        folds.append(fold)
        if on_fold is not None:
            on_fold(fold)

    starting = float(folds[0].summary["starting_equity"])
    periods_per_year = int(folds[0].summary["periods_per_year"])
    routed_returns = chain_returns(routed_equity, starting)
    stitched = pd.DataFrame({"equity": starting * (1.0 + routed_returns).cumprod()})
    baseline_summary = benchmark_summary = None
    if baseline_equity:
        baseline_returns = chain_returns(baseline_equity, starting)
        baseline_summary = stitched_figures(baseline_returns, periods_per_year)
        stitched["baseline_equity"] = starting * (1.0 + baseline_returns).cumprod()
    if any(len(e) for e in benchmark_equity):
        benchmark_returns = chain_returns(benchmark_equity, starting)
        benchmark_summary = stitched_figures(benchmark_returns, periods_per_year)
        stitched["benchmark_equity"] = starting * (1.0 + benchmark_returns).cumprod()
    stitched.index.name = "date"
    result = WalkForwardResult(
        name=node.name,
        folds=folds,
        stitched_summary=stitched_figures(routed_returns, periods_per_year),
        baseline_stitched_summary=baseline_summary,
        benchmark_stitched_summary=benchmark_summary,
        stitched=stitched,
        benchmark=benchmark,
        credibility=result_credibility(
            routed_returns, n_trials=n_trials, periods_per_year=periods_per_year
        ),
        run_dir=root,
        settings={
            "config": source,
            "catalog": str(catalog_path),
            "train": train,
            "test": test,
            "step": step or test,
            "expanding": expanding,
            "learning_components": [learnable.location for learnable in learnables],
        },
    )
    result.folds_frame().to_csv(root / "folds.csv", index=False)
    stitched.to_csv(root / "stitched_equity.csv")
    if tearsheet:
        result.tearsheet = _write_tearsheet(result)
    result.wall_seconds = time.perf_counter() - started
    write_json(root / "summary.json", result.summary())
    if store is not None:
        result.tracking = _track(result, document, specs, catalog_path, experiment, store)
    return result


def _track(
    result: WalkForwardResult,
    document: dict[str, Any],
    specs: dict[Path, tuple[BacktestNodeSpec, dict[str, Any]]],
    catalog: Path,
    experiment: str | None,
    store: TrackingStore,
) -> dict[str, Any]:
    """Publish to MLflow; a failure is logged and returned, and loses no result on disk."""
    from grodt.experiments.walkforward_tracking import track_walk_forward

    try:
        return track_walk_forward(result, document, specs, catalog, experiment, store)
    except Exception as e:  # the folds' results are on disk; say loudly what broke
        logger.warning("walk-forward not tracked: %s: %s", type(e).__name__, e, exc_info=True)
        return {"status": "error", "reason": f"{type(e).__name__}: {e}"}


def _write_tearsheet(result: WalkForwardResult) -> Path | None:
    """Render ``walkforward.html``; a rendering failure is logged and loses no result."""
    from grodt.experiments.walkforward_report import render_walkforward

    try:
        return render_walkforward(result)
    except Exception as e:  # a plotting bug must not lose the folds' results
        logger.warning("walkforward.html not written: %s: %s", type(e).__name__, e, exc_info=True)
        return None
