"""Evaluate the meta-controller out of sample against static, equal-weight and FinRL-rule
allocations on the S&P 500 sample, the 20 stocks and the synthetic market.

For each data set (a shipped node config):

1. **Train** on the span before ``split`` only: ``grodt meta train``'s pipeline
   (:func:`grodt.experiments.meta_dataset.collect_dataset` walk-forward in BacktestNodes with the
   meta-controller static, then :func:`grodt.experiments.meta_train.fit_meta_model`), so the
   model has seen nothing of the evaluation span; its out-of-sample prediction figures are
   printed. The synthetic market's config runs one regime actor over four instruments, which
   the walk-forward's per-fold fitting refuses: its rows come from one BacktestNode over the
   training span, where the regime actor refits causally on trailing bars.
2. **Evaluate** on ``[split, end]``, one BacktestNode per allocation policy, everything else
   equal: ``yaml`` (the config as shipped, no meta-controller), ``equal`` (meta-controller
   static at 1/N), ``trailing_sharpe`` (FinRL's rule: all capital to the best trailing Sharpe),
   ``predictive`` (the model above), ``bandit`` (three seeds: mean ± standard deviation).
   Sharpe, total return, max drawdown, trades, allocation turnover (½·Σ|Δw| per year), and
   buy-and-hold of the config's benchmark over the same span.

The goal of the old system was +20% risk-adjusted return (Sharpe) over static weights: the
ratio is printed for each data set, met or not. A script that prints figures, not a test (about
ten minutes per data set on the loaded 2-core machine)::

    .venv/bin/python scripts/evaluate_meta.py --catalog data/catalog [--datasets sp500 synthetic]
"""

import argparse
import json
import math
import statistics
import time
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pandas as pd

from grodt.core.records import AllocationRecord
from grodt.core.topics import Topics
from grodt.experiments.meta_dataset import META_ACTOR_PATH
from grodt.experiments.meta_dataset import allocation_rows
from grodt.experiments.meta_dataset import collect_dataset
from grodt.experiments.meta_train import fit_meta_model
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from models.meta import MetaModel
from node_configs.loader import load_backtest_document
from node_configs.loader import load_document

REPO = Path(__file__).resolve().parents[1]
BANDIT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class Dataset:
    config: str
    clock: str
    split: str
    end: str | None
    train: str
    test: str
    rebalance_every: int
    performance_window: int
    min_allocation: float
    max_allocation: float
    start: str | None = None
    walk_forward: bool = True
    """False: the training rows come from one BacktestNode over the training span (the regime
    actor's own causal refits; its walk-forward fold fitting handles one instrument per actor)."""


DATASETS = {
    "sp500": Dataset(
        "node_configs/backtest/rules_sp500_regime.yaml",
        "SPX.SAMPLE-1-DAY-LAST-EXTERNAL",
        split="2009-01-01",
        end=None,
        train="3y",
        test="1y",
        rebalance_every=5,
        performance_window=60,
        min_allocation=0.1,
        max_allocation=0.6,
    ),
    "stocks": Dataset(
        "node_configs/backtest/risk_rules_stocks.yaml",
        "AAPL.SAMPLE-1-DAY-LAST-EXTERNAL",
        split="2020-01-01",
        end=None,
        train="2y",
        test="1y",
        rebalance_every=5,
        performance_window=60,
        min_allocation=0.0,
        max_allocation=0.05,
        start="2014-01-01",  # keeps the 60-strategy walk-forward to four folds on 2 cores
    ),
    "synthetic": Dataset(
        "node_configs/backtest/rules_synthetic_regime.yaml",
        "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL",
        split="2024-03-04",
        end=None,
        train="14d",
        test="7d",
        rebalance_every=30,
        performance_window=120,
        min_allocation=0.0,
        max_allocation=0.25,
        walk_forward=False,
    ),
}


def strategy_ids(document: dict[str, Any]) -> dict[str, float]:
    """Strategy id → YAML allocation_weight (Nautilus ids are ``<Class>-<order_id_tag>``)."""
    weights = {}
    for entry in document["strategies"]:
        name = entry["path"].split(":")[-1]
        config = entry.get("config") or {}
        weights[f"{name}-{config['order_id_tag']}"] = float(config.get("allocation_weight", 1.0))
    return weights


def with_meta(document: dict[str, Any], data: Dataset, **config: Any) -> dict[str, Any]:
    actors = [a for a in document.get("actors") or [] if a.get("path") != META_ACTOR_PATH]
    actor = {
        "path": META_ACTOR_PATH,
        "config": {
            "bar_type": data.clock,
            "rebalance_every": data.rebalance_every,
            "performance_window": data.performance_window,
            "min_allocation": data.min_allocation,
            "max_allocation": data.max_allocation,
            **config,
        },
    }
    return {**document, "actors": [*actors, actor], "forensics": {"sink": "parquet"}}


def span(document: dict[str, Any], start: str | None, end: str | None) -> dict[str, Any]:
    document = dict(document)
    if start is not None:
        document["start"] = start
    if end is not None:
        document["end"] = end
    return document


def allocation_turnover(run_dir: Path, years: float) -> float:
    try:
        stored = read_run(run_dir, topics=[Topics.ALLOCATIONS])
    except Exception:  # a run without a meta-controller has no records: no allocation turnover
        return 0.0
    records = sorted(
        (s.record for s in stored if isinstance(s.record, AllocationRecord)),
        key=lambda r: r.ts_event,
    )
    total = 0.0
    for before, after in pairwise(records):
        names = set(before.weights) | set(after.weights)
        total += 0.5 * sum(
            abs(after.weights.get(n, 0.0) - before.weights.get(n, 0.0)) for n in names
        )
    return total / years if years > 0 else math.nan


def backtest(document: dict[str, Any], catalog: Path, run_dir: Path, label: str) -> dict[str, Any]:
    spec = load_backtest_document(document, label)
    outcome = run_backtest(spec, catalog, run_dir, document=document, quiet=True)
    summary = outcome.summary
    curve = outcome.curve.frame if outcome.curve is not None else None
    years = (
        (curve.index[-1] - curve.index[0]).total_seconds() / (365.25 * 86_400)
        if curve is not None and len(curve)
        else math.nan
    )
    return {
        "sharpe": summary.get("sharpe"),
        "total_return": summary.get("total_return"),
        "max_drawdown": summary.get("max_drawdown"),
        "trades": summary.get("trades"),
        "allocation_turnover_per_year": allocation_turnover(outcome.run_dir, years),
        "benchmark": summary.get("benchmark") or {},
        "run_dir": str(outcome.run_dir),
    }


def training_rows(document: dict[str, Any], catalog: Path, run_dir: Path) -> pd.DataFrame:
    """Training rows of one BacktestNode over ``document``'s span (meta-controller static)."""
    spec = load_backtest_document(document, "training")
    outcome = run_backtest(spec, catalog, run_dir, document=document, quiet=True)
    stored = read_run(outcome.run_dir, topics=[Topics.ALLOCATIONS])
    return allocation_rows([s.record for s in stored if isinstance(s.record, AllocationRecord)])


def evaluate(
    name: str,
    data: Dataset,
    catalog: Path,
    out: Path,
    skip: tuple[str, ...] = (),
    reuse: bool = False,
) -> dict[str, Any]:
    started = time.perf_counter()
    document = load_document(REPO / data.config)
    yaml_weights = strategy_ids(document)
    n = len(yaml_weights)
    equal = {sid: 1.0 / n for sid in yaml_weights}
    static = yaml_weights if sum(yaml_weights.values()) <= 1.0 + 1e-9 else equal
    # -- train on the span before the split -------------------------------------------------------
    training = with_meta(span(document, data.start, data.split), data, static_weights=static)
    saved_model, saved_rows = out / name / "meta_model.json", out / name / "dataset.parquet"
    if reuse and saved_model.is_file() and saved_rows.is_file():
        # A previous run of this script into the same --out trained on the same span: reuse it.
        model = MetaModel.load(saved_model)
        rows = pd.read_parquet(saved_rows)
        metrics, model_path, windows = model.metrics, saved_model, "a previous run (reused)"
    elif data.walk_forward:
        rows, walk = collect_dataset(
            training, catalog, data.train, data.test, run_dir=out / name / "training"
        )
        windows = f"{len(walk.folds)} walk-forward test windows"
    else:
        rows = training_rows(training, catalog, out / name / "training")
        windows = "one causal run"
    if not (reuse and saved_model.is_file() and saved_rows.is_file()):
        fit = fit_meta_model(rows, horizon_bars=data.rebalance_every)
        model_path = fit.model.save(saved_model)
        rows.to_parquet(saved_rows)
        metrics = fit.metrics
    print(
        f"\n== {name}: {data.config}, {n} strategies; model on {len(rows):,} rows from "
        f"{windows} before {data.split}",
    )
    print("   out of sample (later half of the walk-forward predictions):")
    print("   " + "  ".join(f"{k} {v:.3f}" for k, v in metrics.items() if k != "rows"))
    # -- evaluate on [split, end] ----------------------------------------------------------------
    evaluation = {**span(document, data.split, data.end), "benchmark": data.clock}
    variants: dict[str, dict[str, Any]] = {
        "yaml": evaluation,
        "equal": with_meta(evaluation, data, static_weights=equal, policy="static"),
        "trailing_sharpe": with_meta(
            evaluation, data, static_weights=static, policy="trailing_sharpe", max_allocation=1.0
        ),
        "predictive": with_meta(
            evaluation,
            data,
            static_weights=static,
            policy="predictive",
            model=str(model_path),
            max_model_age_days=None,
        ),
    }
    for seed in () if "bandit" in skip else BANDIT_SEEDS:
        variants[f"bandit_seed{seed}"] = with_meta(
            evaluation,
            data,
            static_weights=static,
            policy="bandit",
            bandit_seed=seed,
            bandit_exploration=0.05,  # the budget the docs/meta.md figures were measured with
        )
    results: dict[str, dict[str, Any]] = {}
    for label, variant in variants.items():
        if label in skip:
            continue
        results[label] = backtest(variant, catalog, out / name / label, f"{name}/{label}")
    bandit = [results[f"bandit_seed{s}"] for s in BANDIT_SEEDS if f"bandit_seed{s}" in results]
    if bandit:
        results["bandit"] = {
            key: statistics.mean(r[key] for r in bandit)
            for key in ("sharpe", "total_return", "max_drawdown", "allocation_turnover_per_year")
        }
        results["bandit"]["sharpe_sd"] = statistics.stdev(r["sharpe"] for r in bandit)
        results["bandit"]["trades"] = statistics.mean(r["trades"] for r in bandit)
    baseline = "yaml" if static is yaml_weights else "equal"
    benchmark = next((r["benchmark"] for r in results.values() if r.get("benchmark")), {})
    print(f"   evaluation {data.split} → {data.end or 'end of data'} (out of sample)")
    print(
        f"   {'policy':<16}{'Sharpe':>8}{'return':>10}{'max DD':>10}{'trades':>8}"
        f"{'alloc. turnover/yr':>20}",
    )
    for label in ("yaml", "equal", "trailing_sharpe", "predictive", "bandit"):
        if label not in results:
            print(f"   {label:<16}skipped (--skip)")
            continue
        r = results[label]
        extra = f" ± {r['sharpe_sd']:.3f}" if label == "bandit" else ""
        print(
            f"   {label:<16}{r['sharpe']:>8.3f}{r['total_return']:>10.2%}{r['max_drawdown']:>10.2%}"
            f"{r['trades']:>8.0f}{r['allocation_turnover_per_year']:>20.2f}{extra}",
        )
    if benchmark:
        print(
            f"   {'buy and hold':<16}{benchmark.get('sharpe', math.nan):>8.3f}"
            f"{benchmark.get('total_return', math.nan):>10.2%}"
            f"{benchmark.get('max_drawdown', math.nan):>10.2%}",
        )
    static_sharpe = results[baseline]["sharpe"] if baseline in results else math.nan
    for label in ("predictive", "bandit"):
        if label not in results:
            continue
        # Relative to |static|: with a negative static Sharpe a smaller loss is an improvement.
        ratio = (
            (results[label]["sharpe"] - static_sharpe) / abs(static_sharpe)
            if static_sharpe
            else math.nan
        )
        verdict = "met" if ratio >= 0.2 else "NOT met"
        print(f"   {label} vs static ({baseline}) Sharpe: {ratio:+.1%} (goal +20%: {verdict})")
    return {
        "config": data.config,
        "split": data.split,
        "static_baseline": baseline,
        "model_metrics": metrics,
        "rows": len(rows),
        "results": results,
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "catalog")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["yaml", "equal", "trailing_sharpe", "predictive", "bandit"],
        help="Policies not to run.",
    )
    parser.add_argument(
        "--reuse-model",
        action="store_true",
        help="Reuse the model and dataset a previous run left in --out (same spans).",
    )
    args = parser.parse_args()
    stamp = datetime.now(tz=UTC).strftime("%Y%m%dT%H%M%SZ")
    out = args.out or REPO / "runs" / "meta_evaluation" / stamp
    out.mkdir(parents=True, exist_ok=True)
    report = {
        name: evaluate(name, DATASETS[name], args.catalog, out, tuple(args.skip), args.reuse_model)
        for name in args.datasets
    }
    (out / "results.json").write_text(json.dumps(report, indent=2, default=str))
    print(f"\nResults: {out / 'results.json'}")


if __name__ == "__main__":
    main()
