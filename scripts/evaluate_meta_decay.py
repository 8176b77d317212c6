"""Decay of the meta-controller's performance model: trained once (static) against the same
model retrained online, period by period out of sample (``docs/meta.md``, "Decay, measured").

The rows are the meta-controller's own: one BacktestNode per market with the rule strategies,
the regime actor and the meta-controller on its static policy, its allocation records turned
into training rows (``grodt.experiments.meta_dataset.allocation_rows``: each strategy's features
at a rebalance, its per-unit return over the next window). Then, walking the rebalances forward:

- **static**: :func:`models.meta.online.fit_meta_online` (the online fit itself, cold) on the
  first ``window`` rebalances, never refitted;
- **online**: the same model, refitted by the lifecycle's
  :class:`~models.lifecycle.ScheduledRefitter` on the trailing ``window`` rebalances every
  ``every`` rebalances, warm-started (LightGBM continued training), taking over one rebalance
  after its last training window — the actor's ``retrain:`` schedule
  (:class:`models.meta.online.MetaRetrainConfig`).

Every prediction is made before its target is known (the rows of rebalance k are predicted by
the model in force at k, trained on windows that ended by k). Performance per period after the
training window: directional accuracy on the windows with a non-zero return (up when the mean
of the raw quantiles is >= 0: ``grodt meta train``'s rule), beside the naive rule (up when the
last window's return was >= 0) on the same rows; mean pinball loss of q10/q50/q90; coverage of
the calibrated 80% interval. Decay (``docs/lifecycle.md``): ``1 − acc_k / acc_1`` for the
accuracy of period k.

Markets:

- **synthetic** (``catalogs.synthetic``): S1 + S2 + S3 × SYNA..SYND, one-minute bars (the
  ``rules_synthetic_regime.yaml`` strategies without its regime actor), rebalance every 30 bars
  (13 per session); ``parameter_drift`` 0.6 (every regime's vol 60% higher and its
  drift 60% weaker by the last bar) and, as a control, the same seeds without drift; 20 training
  sessions, then months of 21 sessions; online refit every 13 rebalances (daily). Seeds vary the
  market; LightGBM is deterministic (one thread), so the fits add no variance of their own.
- **sp500**: ``node_configs/backtest/rules_sp500_regime.yaml`` 1999–2018 with
  ``meta_controller_spx.yaml`` (weekly rebalances), 104 training rebalances (two years), then
  calendar years; online refit every 4 rebalances (about monthly). One path.

    nice -n 10 .venv/bin/python scripts/evaluate_meta_decay.py --catalog data/catalog \
        [--markets synthetic sp500] [--seeds 7 8 9] [--months 3] [--json decay.json]
"""

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SYN_CONFIG = REPO / "node_configs" / "backtest" / "rules_synthetic_regime.yaml"
SPX_CONFIG = REPO / "node_configs" / "backtest" / "rules_sp500_regime.yaml"
SPX_META = REPO / "node_configs" / "components" / "actors" / "meta_controller_spx.yaml"
SYN_CLOCK = "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL"
SYN_REBALANCE = 30
SYN_PER_SESSION = 390 // SYN_REBALANCE
SESSIONS_PER_MONTH = 21


def meta_rows(document: dict[str, Any], catalog: Path, run_dir: Path) -> pd.DataFrame:
    """Training rows of one BacktestNode of ``document`` (its meta-controller static)."""
    from grodt.core.records import AllocationRecord
    from grodt.core.topics import Topics
    from grodt.experiments.meta_dataset import allocation_rows
    from grodt.experiments.meta_dataset import with_static_meta_controller
    from grodt.forensics.reader import read_run
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_document

    document = with_static_meta_controller(document)
    document["logging"] = {"level": "ERROR", "file_level": "OFF"}
    spec = load_backtest_document(document, "meta_decay")
    outcome = run_backtest(spec, catalog, run_dir, document=document, quiet=True)
    stored = read_run(outcome.run_dir, topics=[Topics.ALLOCATIONS])
    return allocation_rows([s.record for s in stored if isinstance(s.record, AllocationRecord)])


def synthetic_rows(
    seed: int, drift: float, days: int, work: Path, instruments: int = 4
) -> pd.DataFrame:
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import write_synthetic
    from grodt.experiments.meta_dataset import META_ACTOR_PATH
    from node_configs.loader import load_document

    catalog = work / f"catalog_{seed}_{drift}"
    write_synthetic(catalog, SyntheticParams(days=days, seed=seed, parameter_drift=drift))
    document = load_document(SYN_CONFIG)
    # Without the regime actor (its per-session HMM refits on four instruments were most of the
    # run's time on the shared box): the strategies and the meta-controller see the neutral
    # regime prior, the rest of the features are the same.
    document["actors"] = [
        a for a in document.get("actors", []) if "regime_actor" not in str(a.get("path"))
    ]
    symbols = [f"SYN{c}.XSYN" for c in "ABCD"[:instruments]]
    document["strategies"] = [
        s for s in document["strategies"] if (s.get("config") or {}).get("instrument_id") in symbols
    ]
    document["data"] = [
        {**d, "bar_types": [b for b in d["bar_types"] if b.split("-")[0] in symbols]}
        for d in document["data"]
    ]
    weights = {}
    for entry in document["strategies"]:
        config = entry.get("config") or {}
        weights[f"{entry['path'].split(':')[-1]}-{config['order_id_tag']}"] = 1.0 / (
            3 * instruments
        )
    meta = {
        "path": META_ACTOR_PATH,
        "config": {
            "bar_type": SYN_CLOCK,
            "static_weights": weights,
            "rebalance_every": SYN_REBALANCE,
            "performance_window": 120,
        },
    }
    document["actors"] = [*document.get("actors", []), meta]
    return meta_rows(document, catalog, work / f"run_{seed}_{drift}")


def spx_rows(catalog: Path, work: Path) -> pd.DataFrame:
    from node_configs.loader import load_document
    from node_configs.loader import load_yaml_document

    document = load_document(SPX_CONFIG)
    document["actors"] = [*document.get("actors", []), load_yaml_document(SPX_META)]
    return meta_rows(document, catalog, work / "run_spx")


def walk(
    rows: pd.DataFrame,
    window: int,
    every: int,
    horizon: int,
    min_child_samples: int = 30,
) -> pd.DataFrame:
    """Static and online predictions of every row after the first ``window`` rebalances."""
    from models.lifecycle import ScheduledRefitter
    from models.meta import feature_names
    from models.meta.online import MetaRetrainConfig
    from models.meta.online import RetrainPayload
    from models.meta.online import fit_meta_online

    rows = rows.sort_values(["ts", "strategy"], kind="stable").reset_index(drop=True)
    names = feature_names()
    groups = [g for _, g in rows.groupby("ts", sort=True)]
    xs = [g[names].to_numpy(dtype=float) for g in groups]
    ys = [g["target"].to_numpy(dtype=float) for g in groups]
    stamps = [int(pd.Timestamp(g["end"].iloc[0]).value) for g in groups]
    config = MetaRetrainConfig(
        window=window, every=every, lag=1, min_child_samples=min_child_samples
    )

    def payload(k: int) -> RetrainPayload:
        # Windows [k - window, k): every target known at rebalance k.
        return RetrainPayload(
            np.vstack(xs[k - window : k]),
            np.concatenate(ys[k - window : k]),
            stamps[k - 1],
            horizon,
            config,
        )

    static = fit_meta_online(payload(window), None)
    refitter = ScheduledRefitter(config.schedule(), fit_meta_online, model=static)
    online = static
    versions = 1
    parts = []
    for k in range(window, len(groups)):
        if refitter.advance(window):
            refitter.start(payload(k))
        if refitter.swap_due:
            outcome = refitter.swap()
            if outcome.ok and outcome.model is not None:
                online, versions = outcome.model, versions + 1
        part = groups[k][["ts", "strategy", "target", "last_window_return"]].copy()
        for label, model in (("static", static), ("online", online)):
            raw = model.quantiles.predict(xs[k]).values
            forecast = model.forecast(xs[k])
            part[f"{label}_up"] = raw.mean(axis=1) >= 0.0
            part[f"{label}_pinball"] = np.mean(
                [
                    np.maximum(q * (ys[k] - raw[:, j]), (q - 1.0) * (ys[k] - raw[:, j]))
                    for j, q in enumerate((0.1, 0.5, 0.9))
                ],
                axis=0,
            )
            part[f"{label}_covered"] = (forecast.lower <= ys[k]) & (ys[k] <= forecast.upper)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    frame.attrs["versions"] = versions
    return frame


def period_figures(frame: pd.DataFrame, period: pd.Series) -> list[dict[str, Any]]:
    figures = []
    for label, part in frame.groupby(period, sort=True):
        nonzero = part["target"] != 0.0
        actual = part.loc[nonzero, "target"] > 0.0
        entry: dict[str, Any] = {"period": str(label), "rows": len(part)}
        entry["nonzero"] = int(nonzero.sum())
        entry["naive_accuracy"] = float(
            ((part.loc[nonzero, "last_window_return"] >= 0.0) == actual).mean()
        )
        for model in ("static", "online"):
            entry[f"{model}_accuracy"] = float((part.loc[nonzero, f"{model}_up"] == actual).mean())
            entry[f"{model}_pinball"] = float(part[f"{model}_pinball"].mean())
            entry[f"{model}_coverage"] = float(part[f"{model}_covered"].mean())
        figures.append(entry)
    return figures


def decay(figures: list[dict[str, Any]], model: str) -> list[float]:
    first = figures[0][f"{model}_accuracy"]
    return [1.0 - f[f"{model}_accuracy"] / first for f in figures]


def show(title: str, figures: list[dict[str, Any]], versions: int) -> None:
    print(f"\n{title}  ({versions} online versions)")
    print(
        "  period      rows  nonzero  acc static / online / naive   pinball static / online"
        "   coverage static / online"
    )
    for f in figures:
        print(
            f"  {f['period']:<10} {f['rows']:5d}  {f['nonzero']:7d}  "
            f"{f['static_accuracy']:.3f} / {f['online_accuracy']:.3f} / {f['naive_accuracy']:.3f}"
            f"       {f['static_pinball']:.6f} / {f['online_pinball']:.6f}"
            f"      {f['static_coverage']:.3f} / {f['online_coverage']:.3f}"
        )
    for model in ("static", "online"):
        print(
            f"  decay of {model} accuracy: "
            + " / ".join(f"{d:+.1%}" for d in decay(figures, model))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=REPO / "data" / "catalog")
    parser.add_argument("--markets", nargs="+", default=["synthetic", "sp500"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[7, 8, 9])
    parser.add_argument("--drifts", nargs="+", type=float, default=[0.6, 0.0])
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--train-sessions", type=int, default=20)
    parser.add_argument(
        "--instruments", type=int, default=4, help="Synthetic instruments traded (1-4)."
    )
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}"
    }
    with tempfile.TemporaryDirectory(prefix="meta_decay_") as tmp:
        work = Path(tmp)
        if "synthetic" in args.markets:
            days = args.train_sessions + 1 + SESSIONS_PER_MONTH * args.months
            window = args.train_sessions * SYN_PER_SESSION
            for drift in args.drifts:
                for seed in args.seeds:
                    t0 = time.perf_counter()
                    rows = synthetic_rows(seed, drift, days, work, args.instruments)
                    # Training starts at the first row (after the actor's 120-bar window).
                    frame = walk(rows, window, SYN_PER_SESSION, SYN_REBALANCE)
                    session = (frame["ts"].dt.normalize().rank(method="dense") - 1).astype(int)
                    month = (session // SESSIONS_PER_MONTH + 1).clip(upper=args.months)
                    figures = period_figures(frame, "m" + month.astype(str))
                    key = f"synthetic drift={drift} seed={seed}"
                    show(
                        f"{key}: {len(rows):,} rows ({time.perf_counter() - t0:.0f} s)",
                        figures,
                        frame.attrs["versions"],
                    )
                    results[key] = figures
        if "sp500" in args.markets:
            t0 = time.perf_counter()
            rows = spx_rows(args.catalog, work)
            frame = walk(rows, 104, 4, 5)
            figures = period_figures(frame, frame["ts"].dt.year)
            show(
                f"sp500: {len(rows):,} rows ({time.perf_counter() - t0:.0f} s)",
                figures,
                frame.attrs["versions"],
            )
            results["sp500"] = figures
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    print(f"\n{results['machine']}; {time.perf_counter() - started:.0f} s in all")


if __name__ == "__main__":
    main()
