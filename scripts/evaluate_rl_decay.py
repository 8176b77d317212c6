"""Decay of the RL specialist ensemble: static specialists trained once against the same
specialists fine-tuned online on the recent window, month by month out of sample.

For each dataset and seed:

1. ``grodt rl train`` of the dataset's config (the training period only, few steps; seed = the
   training seed): the **static** specialists.
2. **Online**: the strategy's fine-tune (:func:`models.rl.online.fine_tune_specialists`, the very
   function a node's ``retrain`` schedule runs) at the first test bar and then every ``every``
   rows, each on the trailing ``window`` rows ending at that bar, warm-started from the previous
   set, in use from the next bar (``lag_bars`` 1). The schedule is emulated here (rows counted
   from the first test bar); the fits are the product's.
3. One deterministic pass over the test period in the env (the run's fills, fees and safety
   layer; ``docs/rl.md``: the env/engine parity test ties it to the engine) per mode: ``blend``
   (Σ p·a with the causal regime probabilities of the training HMM) and ``always_on`` (equal
   weights: the baseline), each with the static and the online specialists, through the
   strategy's own inference (``strategies.rl_ensemble.load_policy`` / ``propose``), and
   buy-and-hold (target +1 through the same fills).
4. Per month (21 sessions) of the test period: the return and the annualised Sharpe of the
   per-bar net returns. Decay as ``docs/lifecycle.md`` defines it for an unbounded score: the drop
   ``perf_1 − perf_k`` from month 1 (Sharpe), beside the online model.

Datasets: ``sp500`` (SPX.SAMPLE daily of GRODT_CATALOG; train 1999–2012, test from 2013 for
``--months``; fine-tune every 21 bars on the trailing 250), ``synthetic`` (a drifting synthetic
market built in a temporary catalog: ``catalogs.synthetic`` with ``parameter_drift`` 0.6, one
instrument SYNA.XSYN one-minute bars, 20 sessions train then ``--months`` × 21 sessions; fine-tune
every 10 sessions on the trailing 5). Training is demonstration-sized (defaults: 2,048 generalist
+ 3 × 1,024 specialist steps, PPO rollouts of 256, 256 steps per specialist per fine-tune) so a
dataset's three seeds take minutes on a loaded 2-core box.

    nice -n 10 .venv/bin/python scripts/evaluate_rl_decay.py --datasets sp500 --seeds 0 1 2
    nice -n 10 .venv/bin/python scripts/evaluate_rl_decay.py --datasets synthetic --json out.json
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SESSIONS_PER_MONTH = 21
MINUTES = 390
DATASETS: dict[str, dict[str, Any]] = {
    "sp500": {
        "config": ROOT / "node_configs/rl/sp500_daily.yaml",
        "bars_per_month": SESSIONS_PER_MONTH,
        "window": 250,
        "every": SESSIONS_PER_MONTH,
        "episode_bars": 60,
        "stride": 10,
    },
    "synthetic": {
        "config": ROOT / "node_configs/rl/synthetic_minute.yaml",
        "bars_per_month": SESSIONS_PER_MONTH * MINUTES,
        "window": 5 * MINUTES,
        "every": 10 * MINUTES,
        "episode_bars": MINUTES,
        "stride": MINUTES,
    },
}
TRAIN_SESSIONS = 20


def _synthetic_catalog(directory: Path, months: int, drift: float) -> tuple[Path, list[str]]:
    """A drifting synthetic catalog; returns it and the (train end, test end) dates."""
    from catalogs.sample import build_sample_catalog
    from catalogs.synthetic import SyntheticParams

    days = TRAIN_SESSIONS + months * SESSIONS_PER_MONTH
    params = SyntheticParams(days=days + 1, seed=7, parameter_drift=drift)
    catalog = directory / "catalog"
    build_sample_catalog(catalog, ["synthetic"], synthetic=params)
    sessions = pd.bdate_range(pd.Timestamp(params.start), periods=days + 1)
    return catalog, [str(sessions[TRAIN_SESSIONS].date()), str(sessions[days].date())]


def _overrides(name: str, seed: int, args: argparse.Namespace, dates: list[str]) -> list[str]:
    months = args.months
    common = [
        f"seed={seed}",
        f"timesteps.generalist={args.generalist_steps}",
        f"timesteps.specialist={args.specialist_steps}",
        f"policy.n_steps={args.n_steps}",
        f"policy.batch_size={min(128, args.n_steps)}",
        "checkpoints.every=0",
    ]
    if name == "sp500":
        end = pd.Timestamp("2013-01-01") + pd.DateOffset(months=months + 1)
        return [*common, f"test={{start: '2013-01-01', end: '{end.date()}'}}"]
    return [
        *common,
        "bar_types=[SYNA.XSYN-1-MINUTE-LAST-EXTERNAL]",
        f"train={{end: '{dates[0]}'}}",
        f"test={{start: '{dates[0]}', end: '{dates[1]}'}}",
    ]


def _monthly(trajectory: Any, bars_per_month: int, months: int, ppy: float) -> list[dict]:
    """Per month: total return, annualised Sharpe (NaN when the returns are constant: no
    position) and mean |position| (the safety layer's target, fraction of ``max_weight``)."""
    from research.metrics import sharpe_ratio
    from research.metrics import total_return

    returns = trajectory.returns
    positions = np.abs(np.asarray(trajectory.positions, dtype=float))
    rows = []
    for k in range(months):
        chunk = returns[k * bars_per_month : (k + 1) * bars_per_month]
        if len(chunk) < bars_per_month // 2:
            break
        rows.append(
            {
                "return": float(total_return(chunk)),
                "sharpe": float(sharpe_ratio(chunk, ppy)),  # type: ignore[arg-type]
                "exposure": float(positions[k * bars_per_month : (k + 1) * bars_per_month].mean()),
            }
        )
    return rows


def run_seed(name: str, seed: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from grodt.core.messages import REGIME_LABELS
    from grodt.experiments.rl_config import load_rl_config
    from grodt.experiments.rl_data import prepare_data
    from grodt.experiments.rl_training import train_rl
    from models.rl.online import FineTuneConfig
    from models.rl.online import FineTunePayload
    from models.rl.online import fine_tune_specialists
    from models.rl.training import rollout
    from strategies.rl_ensemble import load_fine_tuned
    from strategies.rl_ensemble import load_policy
    from strategies.rl_ensemble import propose

    spec = DATASETS[name]
    catalog, dates = None, []
    if name == "synthetic":
        catalog, dates = _synthetic_catalog(work, args.months, args.drift)
    overrides = _overrides(name, seed, args, dates)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    config = load_rl_config(spec["config"], tuple(overrides))
    train_config = config.model_copy(update={"test": None})
    result = train_rl(
        train_config,
        run_dir=work / f"train-{seed}",
        store=None,
        catalog=catalog,
        matrices_dir=work / "matrices",
    )
    timings["train"] = time.perf_counter() - started
    data = prepare_data(config, work / "matrices", catalog)
    first, last = data.test_segments[0]
    matrix = data.matrix
    static_dir = result.specialists_dir
    fine = FineTuneConfig(
        window=spec["window"],
        every=spec["every"],
        lag_bars=1,
        timesteps=args.fine_tune_steps,
        episode_bars=spec["episode_bars"],
        stride=spec["stride"],
        learning_rate=args.fine_tune_rate,
        seed=seed,
        output=str(work / "fine_tuned"),
        worker=False,
    )
    started = time.perf_counter()
    applies: list[int] = []
    directories: list[str] = []
    previous = str(static_dir)
    train_first = data.train_segments[0][0]
    for k, t in enumerate(range(first, last, spec["every"])):
        lo = max(train_first, t - spec["window"] + 1)
        payload = FineTunePayload(
            features=np.asarray(matrix.features[lo : t + 1], dtype=np.float64),
            opens=np.asarray(matrix.bars["open"][lo : t + 1], dtype=np.float64),
            closes=np.asarray(matrix.bars["close"][lo : t + 1], dtype=np.float64),
            base_directory=str(static_dir),
            config=fine,
            execution=data.env.execution,
            limits=data.env.limits,
            fit_index=k,
            window_end_ns=int(matrix.ts[t]),
        )
        previous = fine_tune_specialists(payload, previous)
        applies.append(t + 1)
        directories.append(previous)
    timings["fine_tunes"] = time.perf_counter() - started
    timings["fine_tune_each"] = timings["fine_tunes"] / max(1, len(directories))
    static = load_policy(str(static_dir), "auto")
    online = [load_fine_tuned(d, "auto") for d in directories]
    labels = static.specialists.labels
    columns = [REGIME_LABELS.index(label) for label in labels]
    env = data.env.build(data.train_windows, action_kind="continuous", matrix=matrix)

    def policy_at(bar: int, use_online: bool) -> Any:
        if not use_online:
            return static
        k = int(np.searchsorted(applies, bar, side="right"))
        return static if k == 0 else online[k - 1]

    def act(mode: str, use_online: bool) -> Callable[[np.ndarray, int], float]:
        def step(obs: np.ndarray, bar: int) -> float:
            proposals = propose(policy_at(bar, use_online), obs)
            a = np.array([proposals[label] for label in labels])
            if mode == "always_on":
                return float(a.mean())
            p = data.regimes[bar, columns]
            total = p.sum()
            w = p / total if total > 0 else np.full(len(labels), 1.0 / len(labels))
            return float(w @ a)

        return step

    months: dict[str, list[dict]] = {}
    passes = {
        "buy_and_hold": lambda _obs, _bar: 1.0,
        "static blend": act("blend", False),
        "online blend": act("blend", True),
        "static always_on": act("always_on", False),
        "online always_on": act("always_on", True),
    }
    for mode, step in passes.items():
        trajectory = rollout(env, (first, last), step)
        months[mode] = _monthly(
            trajectory, spec["bars_per_month"], args.months, data.periods_per_year
        )
    return {
        "dataset": name,
        "seed": seed,
        "test_rows": [int(first), int(last)],
        "test_start": str(pd.Timestamp(int(matrix.ts[first]), tz="UTC")),
        "fine_tunes": len(directories),
        "months": months,
        "seconds": timings,
    }


def summarise(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per mode and month, over the seeds: mean and sample std of the return, mean Sharpe (over
    the seeds where it is defined), mean exposure; the Sharpe drop month 1 → last month."""
    modes = list(results[0]["months"])
    n_months = min(len(r["months"][m]) for r in results for m in modes)

    def grid(mode: str, key: str) -> np.ndarray:
        return np.array(
            [[r["months"][mode][k].get(key, np.nan) for k in range(n_months)] for r in results]
        )

    table = {}
    for mode in modes:
        sharpe, ret, exposure = grid(mode, "sharpe"), grid(mode, "return"), grid(mode, "exposure")
        std = ret.std(axis=0, ddof=1) if len(results) > 1 else np.zeros(n_months)
        with np.errstate(all="ignore"):
            sharpe_mean = np.nanmean(sharpe, axis=0)
        table[mode] = {
            "return_mean": ret.mean(axis=0).tolist(),
            "return_std": std.tolist(),
            "sharpe_mean": sharpe_mean.tolist(),
            "sharpe_defined": np.isfinite(sharpe).sum(axis=0).tolist(),
            "exposure_mean": np.nanmean(exposure, axis=0).tolist(),
            "sharpe_drop_last": float(sharpe_mean[0] - sharpe_mean[-1]),
            "total_return_mean": float(np.mean([np.prod(1 + row) - 1 for row in ret])),
            "total_return_std": float(
                np.std([np.prod(1 + row) - 1 for row in ret], ddof=1) if len(results) > 1 else 0
            ),
        }
    return {"months": n_months, "modes": table}


def print_summary(name: str, summary: dict[str, Any], test_start: str, seeds: list[int]) -> None:
    n = summary["months"]
    print(f"\n{name}: test from {test_start}, {n} months, seeds {seeds}: monthly return mean ± std")
    print("  (Sharpe mean over the seeds where defined; mean |position|)")
    for mode, row in summary["modes"].items():
        cells = " | ".join(
            f"{m:+.2%} ± {s:.2%} (S {sh:.2f}, x {e:.2f})"
            for m, s, sh, e in zip(
                row["return_mean"],
                row["return_std"],
                row["sharpe_mean"],
                row["exposure_mean"],
                strict=True,
            )
        )
        print(
            f"  {mode:<17} {cells}  total {row['total_return_mean']:+.2%} ± "
            f"{row['total_return_std']:.2%}; Sharpe drop m1→m{n} {row['sharpe_drop_last']:+.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="+", default=["sp500", "synthetic"], choices=DATASETS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--drift", type=float, default=0.6)
    parser.add_argument("--generalist-steps", type=int, default=2048)
    parser.add_argument("--specialist-steps", type=int, default=1024)
    parser.add_argument("--fine-tune-steps", type=int, default=256)
    parser.add_argument("--n-steps", type=int, default=256, help="PPO rollout length")
    parser.add_argument("--fine-tune-rate", type=float, default=1e-4)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
        "args": {k: str(v) for k, v in vars(args).items()},
        "datasets": {},
    }
    for name in args.datasets:
        results = []
        for seed in args.seeds:
            with tempfile.TemporaryDirectory(prefix=f"rl_decay_{name}_") as tmp:
                started = time.perf_counter()
                result = run_seed(name, seed, args, Path(tmp))
            results.append(result)
            print(
                f"{name} seed {seed}: {result['fine_tunes']} fine-tunes "
                f"({result['seconds']['fine_tune_each']:.1f} s each), "
                f"{time.perf_counter() - started:.0f} s",
                flush=True,
            )
        summary = summarise(results)
        report["datasets"][name] = {"per_seed": results, "summary": summary}
        print_summary(name, summary, results[0]["test_start"], args.seeds)
    report["load_after"] = os.getloadavg()[0]
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
