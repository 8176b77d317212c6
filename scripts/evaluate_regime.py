"""Evaluate the regime model: synthetic accuracy, detection delay, position disruption, S&P 500.

Usage::

    .venv/bin/python scripts/evaluate_regime.py --catalog data/catalog
    .venv/bin/python scripts/evaluate_regime.py --catalog data/catalog --skip-disruption
    .venv/bin/python scripts/evaluate_regime.py --only disruption --half-window 60

Figures (all written to ``<run-dir>/evaluation.json`` and ``evaluation.md``):

1. **Synthetic market** (``SYNA..SYND.XSYN``, truth from ``catalogs.synthetic``): the regime
   actor's walk-forward probabilities (settings from
   ``node_configs/components/actors/regime_synthetic.yaml``) scored bar by bar after the first
   fit: accuracy and macro-F1 of the most likely label, confusion matrix, and the mean detection
   delay at true transitions (``models.regime.evaluation``); and the quality of the
   probabilities themselves (causal, so out of sample) against the true labels:
   ``research.prediction_metrics.prediction_summary`` with the three labels as classes
   (accuracy, macro precision/recall/F1, one-vs-rest macro ROC AUC, log loss in nats, multi-class
   Brier, top-label ECE with L1/L2/max norms over 10 uniform bins). Chart:
   ``synthetic_SYNA.html``.
2. **Position disruption** at true transitions (definition: ``research/disruption.py``,
   ``docs/regime.md``) of S1+S2+S3 × 4 instruments (the strategies, affinities and weights of
   ``node_configs/backtest/rules_synthetic_regime.yaml``) with **soft** blending vs **hard**
   argmax gating applied to the same regime path. With ``--backtests`` also the realised
   target changes of the two full backtests (``rules_synthetic_regime.yaml`` and
   ``..._hard.yaml``, their regime actor replaced by the component above unless
   ``--keep-actor``), recorded from the strategies' target-exposure topic.
3. **S&P 500 sample** (real, daily): walk-forward probabilities with
   ``regime_spx.yaml`` settings, and their chart ``spx_regime.html`` in the run directory.

The catalog must hold the ``sp500`` and ``synthetic`` sample datasets; they are built into it if
missing (``catalogs.sample.build_sample_catalog(..., if_missing=True)``).

Every run is also logged to MLflow (``grodt.tracking``; the embedded SQLite store under the runs
directory unless ``GRODT_TRACKING_URI`` names another) as one run of the experiment
``regime_evaluation`` (``--experiment``): the script's options and the component settings as
params, the figures above as metrics (``synthetic.probability.log_loss``, ``synthetic.accuracy``,
…), ``evaluation.json``/``evaluation.md`` as artifacts. ``--no-tracking`` skips it; an
unreachable store leaves the run's bundle in the run directory (``grodt tracking sync``).
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from grodt.core.settings import get_settings

REPO = Path(__file__).resolve().parents[1]
COMPONENTS = REPO / "node_configs" / "components" / "actors"
BACKTESTS = REPO / "node_configs" / "backtest"
SYNTHETIC_COMPONENT = COMPONENTS / "regime_synthetic.yaml"
SPX_COMPONENT = COMPONENTS / "regime_spx.yaml"
SOFT_CONFIG = BACKTESTS / "rules_synthetic_regime.yaml"
HARD_CONFIG = BACKTESTS / "rules_synthetic_regime_hard.yaml"
SPX_BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
PARTS = ("synthetic", "disruption", "spx")


def actor_config(component: Path, bar_type: str | None = None) -> Any:
    """The regime actor config of a component file (optionally for one of its bar types)."""
    import msgspec

    from actors.regime_actor import RegimeActorConfig
    from node_configs.loader import load_yaml_document

    settings = dict(load_yaml_document(component)["config"])
    if bar_type is not None:
        settings["bar_types"] = [bar_type]
    # Each model from the bar its window ends (refit_lag_bars 0), as when the figures of
    # docs/regime.md were measured; the synthetic component's lag is where its fits run in a node.
    settings["walk_forward"] = {**settings.get("walk_forward", {}), "refit_lag_bars": 0}
    return RegimeActorConfig.parse(msgspec.json.encode(settings))


def walk_forward(catalog: Path, bar_type: str, component: Path) -> tuple[pd.DataFrame, Any, Any]:
    """Walk-forward probabilities of one bar type with a component's settings."""
    from models.regime.catalog_io import load_bars
    from models.regime.walk_forward import run_walk_forward

    config = actor_config(component, bar_type)
    bars = load_bars(catalog, bar_type)
    started = time.perf_counter()
    frame, engine = run_walk_forward(
        bars.close,
        bars.ts_event,
        config.walk_forward,
        on_warning=lambda _m: None,
        on_info=lambda _m: None,
    )
    seconds = time.perf_counter() - started
    frame.insert(1, "ts_init", bars.ts_init)
    info = {
        "bars": len(frame),
        "fits": len(engine.fits),
        "failed_fits": engine.failed_fits,
        "fit_seconds": sum(f.seconds for f in engine.fits),
        "seconds": seconds,
        "us_per_bar_without_fits": (seconds - sum(f.seconds for f in engine.fits))
        / len(frame)
        * 1e6,
    }
    return frame, bars, info


def evaluate_synthetic(
    catalog: Path,
    run_dir: Path,
    persist: int,
    frames: dict[str, pd.DataFrame],
) -> dict[str, Any]:
    """Score the walk-forward probabilities of every synthetic instrument against the truth;
    fills ``frames`` (instrument id → regime frame) for the disruption figure."""
    from catalogs.synthetic import load_regime_truth
    from models.regime.chart import regime_chart
    from models.regime.evaluation import PROBABILITY_COLUMNS
    from models.regime.evaluation import classification_scores
    from models.regime.evaluation import detection_delays
    from models.regime.evaluation import label_codes
    from research.prediction_metrics import prediction_summary

    truth = load_regime_truth(catalog).set_index("ts_event")["label"]
    config = actor_config(SYNTHETIC_COMPONENT)
    per_instrument: dict[str, Any] = {}
    all_pred, all_true, all_probs, delays, missed, transitions = [], [], [], [], 0, 0
    for bar_type in [str(b) for b in config.bar_types]:
        frame, bars, info = walk_forward(catalog, bar_type, SYNTHETIC_COMPONENT)
        labels = truth.reindex(frame["ts_event"].to_numpy()).to_numpy()
        scored = (frame["status"] != "prior").to_numpy()
        predicted = frame["most_likely"].to_numpy()
        scores = classification_scores(predicted[scored], labels[scored])
        probs = frame[list(PROBABILITY_COLUMNS)].to_numpy(dtype=float)[scored]
        probability = prediction_summary(label_codes(labels[scored]), probs)
        detection = detection_delays(predicted, labels, persist=persist, scored=scored)
        instrument = bar_type.split("-")[0]
        frames[instrument] = frame
        frame.to_parquet(run_dir / f"synthetic_{instrument}.parquet", index=False)
        if instrument.startswith("SYNA"):
            regime_chart(
                frame,
                bars.close,
                run_dir / "synthetic_SYNA.html",
                title=f"Synthetic market {instrument}: filtered regime probabilities vs truth",
                truth=pd.Series(labels),
                log_price=False,
            )
        per_instrument[instrument] = {
            "accuracy": scores["accuracy"],
            "macro_f1": scores["macro_f1"],
            "f1": scores["f1"],
            "scored_bars": scores["bars"],
            "probability": probability,
            "detection": detection.as_dict(),
            **info,
        }
        all_pred.append(predicted[scored])
        all_true.append(labels[scored])
        all_probs.append(probs)
        delays.extend(detection.delays.tolist())
        missed += detection.missed
        transitions += detection.transitions
    pooled = classification_scores(np.concatenate(all_pred), np.concatenate(all_true))
    pooled_probability = prediction_summary(
        label_codes(np.concatenate(all_true)), np.concatenate(all_probs)
    )
    return {
        "settings": str(SYNTHETIC_COMPONENT.relative_to(REPO)),
        "accuracy": pooled["accuracy"],
        "macro_f1": pooled["macro_f1"],
        "f1": pooled["f1"],
        "confusion": pooled["confusion"].to_dict(orient="index"),
        "scored_bars": pooled["bars"],
        "probability": pooled_probability,
        "mean_detection_delay_bars": float(np.mean(delays)) if delays else math.nan,
        "median_detection_delay_bars": float(np.median(delays)) if delays else math.nan,
        "transitions": transitions,
        "detected": len(delays),
        "missed": missed,
        "persist_bars": persist,
        "instruments": per_instrument,
    }


def run_with_recorder(
    config_path: Path,
    catalog: Path,
    run_dir: Path,
    keep_actor: bool,
) -> tuple[pd.DataFrame, pd.DatetimeIndex, dict[str, Any]]:
    """Run a node config with the target-exposure recorder; returns the recorded target changes,
    the bar grid and a few run figures."""
    from nautilus_trader.backtest.node import BacktestNode
    from nautilus_trader.common.config import ImportableActorConfig

    from catalogs.reader import read_closes
    from grodt.nodes.backtest import build_run_config
    from grodt.nodes.catalog_data import bar_types_of
    from node_configs.loader import load_backtest_config
    from node_configs.loader import load_yaml_document
    from node_configs.schema import BacktestNodeSpec

    spec = load_backtest_config(config_path)
    if not keep_actor:
        component = load_yaml_document(SYNTHETIC_COMPONENT)
        actors = [a for a in spec.actors if a.path != component["path"]]
        document = spec.model_dump(mode="json")
        document["actors"] = [a.model_dump(mode="json") for a in actors] + [component]
        spec = BacktestNodeSpec.model_validate(document)
    recorder = ImportableActorConfig(
        actor_path="research.disruption:TargetExposureRecorder",
        config_path="research.disruption:TargetExposureRecorderConfig",
        config={},
    )
    run_config = build_run_config(spec, catalog, run_dir, quiet=True, extra_actors=[recorder])
    node = BacktestNode(configs=[run_config])
    started = time.perf_counter()
    try:
        node.build()
        engine = node.get_engine(run_config.id)
        node.run()
        actor = next(
            a for a in engine.trader.actors() if type(a).__name__ == "TargetExposureRecorder"
        )
        events = actor.to_frame()
        fills = len(engine.trader.generate_fills_report())
        bars = int(engine.iteration)
    finally:
        node.dispose()
    seconds = time.perf_counter() - started
    grid = read_closes(catalog, bar_types_of(spec.data), None, None).index
    return events, grid, {"bars": bars, "fills": fills, "seconds": seconds}


def strategy_budgets(config_path: Path) -> list[dict[str, Any]]:
    """Strategy id, regime instrument, affinity and allocation weight of a node config's
    regime-aware strategies (their config classes fill the defaults)."""
    import msgspec

    from node_configs.loader import import_object
    from node_configs.loader import load_backtest_config

    out = []
    for component in load_backtest_config(config_path).strategies:
        config_cls = import_object(component.resolved_config_path)
        config = config_cls.parse(msgspec.json.encode(component.config))
        if not hasattr(config, "regime_affinity"):
            continue
        strategy_cls = component.path.split(":")[1]
        out.append(
            {
                "strategy_id": f"{strategy_cls}-{config.order_id_tag}",
                "instrument_id": str(config.regime_instrument_id or config.instrument_id),
                "affinity": dict(config.regime_affinity),
                "weight": float(config.allocation_weight),
            },
        )
    return out


def evaluate_disruption(
    catalog: Path,
    run_dir: Path,
    half_window: int,
    frames: dict[str, pd.DataFrame],
    backtests: bool,
    keep_actor: bool,
) -> dict[str, Any]:
    """Soft vs hard gating of S1+S2+S3 on the same regime path (headline), and optionally the
    realised target changes of the two full backtests."""
    from catalogs.synthetic import load_regime_truth
    from research.disruption import event_disruption
    from research.disruption import gated_exposure
    from research.disruption import position_disruption
    from research.disruption import true_transitions

    truth = load_regime_truth(catalog)
    labels = pd.Series(
        truth["label"].to_numpy(),
        index=pd.to_datetime(truth["ts_event"], unit="ns", utc=True),
    )
    transitions = true_transitions(labels)
    if not frames:
        config = actor_config(SYNTHETIC_COMPONENT)
        for bar_type in [str(b) for b in config.bar_types]:
            frames[bar_type.split("-")[0]] = walk_forward(catalog, bar_type, SYNTHETIC_COMPONENT)[0]
    regimes = {
        instrument: frame.set_index(pd.to_datetime(frame["ts_event"], unit="ns", utc=True))
        for instrument, frame in frames.items()
    }
    strategies = strategy_budgets(SOFT_CONFIG)
    result: dict[str, Any] = {
        "half_window_bars": half_window,
        "true_transitions": len(transitions),
        "strategies": len(strategies),
        "regime_settings": str(SYNTHETIC_COMPONENT.relative_to(REPO)),
    }
    for gating in ("soft", "hard"):
        exposure = (
            pd.DataFrame(
                {
                    s["strategy_id"]: gated_exposure(
                        regimes[s["instrument_id"]],
                        s["affinity"],
                        gating,
                        s["weight"],
                    )
                    for s in strategies
                },
            )
            .reindex(labels.index, method="ffill")
            .fillna(0.0)
        )
        outcome = position_disruption(exposure, transitions, half_window)
        outcome.per_transition.to_csv(run_dir / f"disruption_{gating}.csv", index=False)
        result[gating] = outcome.as_dict()
    if not backtests:
        return result
    for gating, config_path in (("soft", SOFT_CONFIG), ("hard", HARD_CONFIG)):
        mode_dir = run_dir / f"backtest_{gating}"
        mode_dir.mkdir(parents=True, exist_ok=True)
        events, grid, figures = run_with_recorder(config_path, catalog, mode_dir, keep_actor)
        events.to_parquet(mode_dir / "target_exposures.parquet", index=False)
        result[f"backtest_{gating}"] = {
            "config": str(config_path.relative_to(REPO)),
            "all_target_changes": event_disruption(events, grid, transitions, half_window),
            "regime_attributed": event_disruption(
                events,
                grid,
                transitions,
                half_window,
                reasons=("adjust:regime", "exit:regime"),
            ),
            "target_changes": len(events),
            **figures,
        }
    return result


def evaluate_spx(catalog: Path, run_dir: Path) -> dict[str, Any]:
    from models.regime.chart import regime_chart

    frame, bars, info = walk_forward(catalog, SPX_BAR_TYPE, SPX_COMPONENT)
    frame.to_parquet(run_dir / "spx_regime.parquet", index=False)
    chart = regime_chart(
        frame,
        bars.close,
        run_dir / "spx_regime.html",
        title="S&P 500 (SPX.SAMPLE, daily): causal regime probabilities, walk-forward HMM",
    )
    fitted = frame[frame["status"] != "prior"]
    years = pd.to_datetime(fitted["ts_event"], unit="ns", utc=True).dt.year
    by_year = fitted.groupby(years)["most_likely"].agg(lambda s: s.value_counts().index[0])
    return {
        "settings": str(SPX_COMPONENT.relative_to(REPO)),
        "chart": str(chart),
        "most_likely_share": fitted["most_likely"].value_counts(normalize=True).to_dict(),
        "mean_entropy_nats": float(fitted["entropy"].mean()),
        "dominant_label_by_year": {int(k): v for k, v in by_year.items()},
        **info,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = ["# Regime model evaluation", ""]
    syn = report.get("synthetic")
    if syn:
        lines += [
            "## Synthetic market (after the first fit)",
            "",
            "| instrument | accuracy | macro-F1 | mean delay (bars) | detected / transitions |",
            "|---|---|---|---|---|",
        ]
        for name, item in syn["instruments"].items():
            d = item["detection"]
            lines.append(
                f"| {name} | {item['accuracy']:.3f} | {item['macro_f1']:.3f} | "
                f"{d['mean_delay_bars']:.1f} | {d['detected']} / {d['transitions']} |",
            )
        lines.append(
            f"| **all** | **{syn['accuracy']:.3f}** | **{syn['macro_f1']:.3f}** | "
            f"**{syn['mean_detection_delay_bars']:.1f}** | {syn['detected']} / "
            f"{syn['transitions']} |",
        )
        lines += [
            "",
            "Probability quality (causal probabilities vs true labels; macro averages over the "
            "three labels, one-vs-rest ROC AUC, log loss in nats, multi-class Brier in [0, 2], "
            "top-label ECE over 10 uniform bins):",
            "",
            "| instrument | precision | recall | F1 | ROC AUC | log loss | Brier | ECE | "
            "ECE (max) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        rows = [(name, item["probability"]) for name, item in syn["instruments"].items()]
        for name, p in [*rows, ("**all**", syn["probability"])]:
            lines.append(
                f"| {name} | {p['precision']:.3f} | {p['recall']:.3f} | {p['f1']:.3f} | "
                f"{p['roc_auc']:.3f} | {p['log_loss']:.3f} | {p['brier']:.3f} | "
                f"{p['ece']:.3f} | {p['ece_max']:.3f} |",
            )
        lines.append("")
    dis = report.get("disruption")
    if dis:
        lines += [
            f"## Position disruption (±{dis['half_window_bars']} bars around "
            f"{dis['true_transitions']} true transitions, {dis['strategies']} strategies)",
            "",
            "| gating | disruption (regime-gated budget) | baseline (outside windows) |",
            "|---|---|---|",
        ]
        for gating in ("soft", "hard"):
            item = dis[gating]
            lines.append(f"| {gating} | {item['disruption']:.2%} | {item['baseline']:.2%} |")
        lines.append("")
        if "backtest_soft" in dis:
            lines += [
                "Full backtests (realised target changes):",
                "",
                "| gating | all changes | regime-attributed changes | target changes | fills |",
                "|---|---|---|---|---|",
            ]
            for gating in ("soft", "hard"):
                item = dis[f"backtest_{gating}"]
                lines.append(
                    f"| {gating} | {item['all_target_changes']['disruption']:.2%} | "
                    f"{item['regime_attributed']['disruption']:.2%} | "
                    f"{item['target_changes']} | {item['fills']} |",
                )
            lines.append("")
    spx = report.get("spx")
    if spx:
        shares = ", ".join(f"{k} {v:.1%}" for k, v in spx["most_likely_share"].items())
        lines += [
            "## S&P 500 sample",
            "",
            f"{spx['bars']} daily bars, {spx['fits']} fits; most likely: {shares}; "
            f"chart: `{spx['chart']}`",
            "",
        ]
    return "\n".join(lines)


def track_evaluation(
    report: dict[str, Any],
    options: dict[str, Any],
    run_dir: Path,
    experiment: str,
) -> dict[str, Any]:
    """Log one evaluation as one MLflow run of ``experiment`` (see the module docstring).

    Params: the script's options and the regime component settings the figures came from;
    metrics: every number of ``report`` (nested keys joined with dots, confusion matrix and
    per-instrument figures included); artifacts: ``evaluation.json`` and ``evaluation.md``.
    Returns the run's ``status``, ``run_id`` and ``experiment`` (the status says why when the
    store was unreachable: the bundle stays in ``run_dir`` for ``grodt tracking sync``).
    """
    from grodt.tracking.training import TrainingRun
    from node_configs.loader import load_yaml_document

    params: dict[str, Any] = {"options": options}
    for part, component in (("synthetic", SYNTHETIC_COMPONENT), ("spx", SPX_COMPONENT)):
        if part in report:
            params[f"{part}.component"] = str(component.relative_to(REPO))
            params[f"{part}.settings"] = load_yaml_document(component)["config"]
    metrics = {key: report[key] for key in PARTS if key in report}
    with TrainingRun(
        "regime_hmm",
        params=params,
        experiment=experiment,
        run_dir=run_dir,
        stream=False,
        tags={"grodt.kind": "evaluation"},
    ) as run:
        run.log_summary(metrics)
        for name in ("evaluation.json", "evaluation.md"):
            run.log_artifact(run_dir / name)
    result = run.result
    return {
        "experiment": experiment,
        "status": result.status if result is not None else "disabled",
        "run_id": run.run_id,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=None, help="default: GRODT_CATALOG")
    parser.add_argument("--run-dir", type=Path, default=None, help="default: runs/regime_eval/…")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--skip-disruption", action="store_true")
    parser.add_argument("--half-window", type=int, default=30, help="disruption window h (bars)")
    parser.add_argument("--persist", type=int, default=5, help="detection persistence (bars)")
    parser.add_argument(
        "--backtests",
        action="store_true",
        help="also run the soft and hard S1+S2+S3 backtests (minutes) for realised figures",
    )
    parser.add_argument(
        "--keep-actor",
        action="store_true",
        help="keep the regime actor settings of the disruption node configs",
    )
    parser.add_argument(
        "--experiment",
        default="regime_evaluation",
        help="MLflow experiment of the run (default: regime_evaluation)",
    )
    parser.add_argument("--no-tracking", action="store_true", help="do not log to MLflow")
    args = parser.parse_args(argv)

    from catalogs.sample import build_sample_catalog
    from grodt.nodes.run_files import new_run_dir
    from grodt.nodes.run_files import write_json

    settings = get_settings()
    catalog = args.catalog or settings.catalog
    build_sample_catalog(catalog, datasets=("sp500", "synthetic"), if_missing=True)
    run_dir = args.run_dir or new_run_dir(settings.runs_dir, "regime_eval")
    run_dir.mkdir(parents=True, exist_ok=True)
    parts = [p for p in args.only if not (p == "disruption" and args.skip_disruption)]
    report: dict[str, Any] = {"catalog": str(catalog), "run_dir": str(run_dir)}
    frames: dict[str, pd.DataFrame] = {}
    if "synthetic" in parts:
        report["synthetic"] = evaluate_synthetic(catalog, run_dir, args.persist, frames)
    if "spx" in parts:
        report["spx"] = evaluate_spx(catalog, run_dir)
    if "disruption" in parts:
        report["disruption"] = evaluate_disruption(
            catalog,
            run_dir,
            args.half_window,
            frames,
            args.backtests,
            args.keep_actor,
        )
    write_json(run_dir / "evaluation.json", report)
    text = markdown(report)
    (run_dir / "evaluation.md").write_text(text + "\n")
    print(text)
    if not args.no_tracking:
        options = {k: v for k, v in vars(args).items() if k not in ("run_dir", "no_tracking")}
        options["catalog"] = str(catalog)
        tracking = track_evaluation(report, options, run_dir, args.experiment)
        print(
            f"MLflow: experiment {tracking['experiment']}, run {tracking['run_id']} "
            f"({tracking['status']})",
        )
    print(f"Run directory: {run_dir}")
    print(json.dumps({"run_dir": str(run_dir)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
