"""Disk growth of a simulated month of the regime model's lifecycle, with version retention.

Every simulated trading day, on a synthetic one-minute market (``catalogs.synthetic``, 390 bars
per session, ``parameter_drift`` 0.6): the regime HMM is retrained on the trailing 20 sessions
(warm start from yesterday's model), registered as a new version of ``regime_hmm`` with the
alias ``challenger`` through a training run (params, metrics, model files), challenged against
``regime_hmm@champion`` on the day just past (:mod:`grodt.tracking.registry_gates`: an audited
promote or refuse), and the registry pruned (the last 5 versions + every aliased one; pruned
versions' model files deleted, and their copies in the model download cache, which also keeps
only the newest 5 copies + the aliases' pins after each download: ``prune_model_cache``). Prints
the runs directory's bytes by part (and the cached model versions) after each week and at the
end, per day, with the time of a day's cycle. A script that prints figures, not a test::

    .venv/bin/python benchmarks/lifecycle_month.py [--days 21] [--json month.json]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def tree_bytes(path: Path) -> int:
    if not path.exists():
        return 0
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def parts(runs: Path) -> dict[str, int]:
    db = sum(tree_bytes(p) for p in runs.glob("mlflow.db*"))
    return {
        "tracking_db": db,
        "artifacts": tree_bytes(runs / "mlartifacts"),
        "training_run_dirs": tree_bytes(runs / "training"),
        "model_cache": tree_bytes(runs / "model_cache"),
        "audit_jsonl": tree_bytes(runs / "registry_audit"),
        "total": tree_bytes(runs),
        "cached_versions": sum(
            1 for p in (runs / "model_cache").glob("*/*") if p.is_dir() and p.name.isdigit()
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=21, help="Simulated trading days.")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    runs = Path(tempfile.mkdtemp(prefix="grodt-lifecycle-month-"))
    os.environ["GRODT_RUNS_DIR"] = str(runs)
    os.environ.pop("GRODT_TRACKING_URI", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import generate_market
    from grodt.core.settings import get_settings
    from grodt.tracking.registry import prune_model_versions
    from grodt.tracking.registry_gates import PromotionGates
    from grodt.tracking.registry_gates import challenge
    from grodt.tracking.registry_gates import regime_scorer
    from grodt.tracking.registry_lifecycle import promote
    from grodt.tracking.store import resolve_store
    from grodt.tracking.training import TrainingRun
    from models.regime.features import FeatureExtractor
    from models.regime.features import parse_features
    from models.regime.walk_forward import WalkForwardConfig

    get_settings.cache_clear()
    store = resolve_store()
    sessions = 20 + args.days
    market = generate_market(SyntheticParams(days=sessions, seed=11, parameter_drift=0.6))
    closes = market.frames["SYNA.XSYN"]["close"].to_numpy()
    config = WalkForwardConfig(train_bars=7800, refit_every=390, temperature=20.0)
    features = FeatureExtractor(parse_features(config.features)).transform(closes)
    gates = PromotionGates(max_score_drop=0.05, max_calibration_error=0.1)
    previous = None
    rows: list[dict[str, Any]] = []
    print(f"simulated {args.days} trading days of regime lifecycle in {runs}")
    for day in range(args.days):
        end = (20 + day) * 390
        window = features[end - 7800 : end]
        window = window[np.isfinite(window).all(axis=1)]
        started = time.perf_counter()
        model = config.new_model().fit(window, init_from=previous)
        fit_seconds = time.perf_counter() - started
        with TrainingRun("regime_hmm", params={"day": day}, store=store, stream=False) as run:
            run.log_summary({"log_likelihood": model.log_likelihood_, "fit_seconds": fit_seconds})
            run.register_model(model, "regime_hmm", aliases=["challenger"], filename="regime.json")
        if day == 0:
            promote("regime_hmm", 1, reason="first champion", store=store)
            outcome = "promote"
        else:
            latest = features[end - 390 : end]
            decision = challenge(
                "regime_hmm",
                regime_scorer(latest[np.isfinite(latest).all(axis=1)]),
                gates,
                store=store,
            )
            outcome = "promote" if decision.promoted else "refuse"
        pruned = prune_model_versions("regime_hmm", keep_last=5, store=store)
        previous = model
        cycle = time.perf_counter() - started
        sizes = parts(runs)
        rows.append(
            {"day": day + 1, "cycle_seconds": cycle, "fit_seconds": fit_seconds, **sizes},
        )
        if (day + 1) % 5 == 0 or day + 1 == args.days:
            print(
                f"  day {day + 1:>3}: {sizes['total'] / 1e6:7.2f} MB (db "
                f"{sizes['tracking_db'] / 1e6:.2f}, artifacts {sizes['artifacts'] / 1e6:.2f}, "
                f"run dirs {sizes['training_run_dirs'] / 1e6:.2f}, cache "
                f"{sizes['model_cache'] / 1e6:.2f}, {sizes['cached_versions']} cached versions); "
                f"last cycle {cycle:.1f} s "
                f"(fit {fit_seconds:.2f} s), {outcome}, pruned {pruned}",
            )
    total = rows[-1]["total"]
    print(
        f"{args.days} days: {total / 1e6:.2f} MB on disk, {total / args.days / 1e6:.3f} MB/day; "
        f"mean cycle {np.mean([r['cycle_seconds'] for r in rows]):.1f} s",
    )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
