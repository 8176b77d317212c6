"""Out-of-sample figures of the RL specialist ensemble (docs/rl.md), seed by seed.

For each dataset and seed: ``grodt rl train`` of its config (``node_configs/rl/``) with the seed
and few training steps, then the out-of-sample evaluation of every mode in the env
(:mod:`grodt.experiments.rl_evaluation`: blend, hard, always_on, finrl, each specialist, the
generalist, buy-and-hold), then mean ± std over the seeds of Sharpe, total return, max drawdown
and turnover; and the training wall time of each model.

Usage::

    .venv/bin/python scripts/evaluate_rl.py                       # 3 datasets x 5 seeds
    .venv/bin/python scripts/evaluate_rl.py --datasets sp500 --seeds 2 --generalist-steps 2048
    .venv/bin/python scripts/evaluate_rl.py --out rl_eval.json

Datasets: ``sp500`` (SPX.SAMPLE daily, train 1999–2012, test 2013–2018), ``synthetic``
(SYNA..SYND.XSYN one-minute bars, first 50 sessions train, last 10 test), ``stocks`` (the 20
sample stocks, train 1990–2012, test 2013–2018, metrics averaged over the stocks). The catalog
is GRODT_CATALOG (``grodt catalog sample`` builds it). Nothing is tracked (``store=None``); the
run directories are temporary.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CONFIGS = {
    "sp500": ROOT / "node_configs/rl/sp500_daily.yaml",
    "synthetic": ROOT / "node_configs/rl/synthetic_minute.yaml",
    "stocks": ROOT / "node_configs/rl/stocks_daily.yaml",
}
METRICS = ("sharpe", "total_return", "max_drawdown", "turnover")


def run_dataset(name: str, seeds: list[int], steps: tuple[int, int], workers: int) -> dict:
    from grodt.experiments.rl_config import load_rl_config
    from grodt.experiments.rl_training import train_rl

    per_seed = []
    for seed in seeds:
        config = load_rl_config(
            CONFIGS[name],
            (
                f"seed={seed}",
                f"timesteps.generalist={steps[0]}",
                f"timesteps.specialist={steps[1]}",
                "checkpoints.every=0",
            ),
        )
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix=f"rl_eval_{name}_") as tmp:
            result = train_rl(config, workers=workers, run_dir=Path(tmp) / "run", store=None)
        per_seed.append(
            {
                "seed": seed,
                "evaluation": result.evaluation,
                "train_seconds": {k: o.seconds for k, o in result.outcomes.items()},
                "seconds": result.seconds,
                "wall": time.perf_counter() - started,
            }
        )
        print(f"  {name} seed {seed}: {per_seed[-1]['wall']:.0f} s", file=sys.stderr, flush=True)
    modes = list(per_seed[0]["evaluation"])
    summary = {
        mode: {
            metric: (
                float(np.mean([s["evaluation"][mode][metric] for s in per_seed])),
                float(np.std([s["evaluation"][mode][metric] for s in per_seed], ddof=0)),
            )
            for metric in METRICS
        }
        for mode in modes
    }
    models = list(per_seed[0]["train_seconds"])
    train = {
        model: (
            float(np.mean([s["train_seconds"][model] for s in per_seed])),
            float(np.std([s["train_seconds"][model] for s in per_seed])),
        )
        for model in models
    }
    return {"summary": summary, "train_seconds": train, "per_seed": per_seed}


def print_dataset(name: str, result: dict, seeds: int, steps: tuple[int, int]) -> None:
    print(
        f"\n{name}: {seeds} seeds, generalist {steps[0]:,} steps + specialists {steps[1]:,} "
        "steps each; out of sample, mean ± std over seeds"
    )
    print(f"  {'mode':<21}{'Sharpe':>16}{'return':>20}{'max DD':>20}{'turnover/yr':>18}")
    for mode, row in result["summary"].items():
        sharpe, ret, dd, turn = (row[m] for m in METRICS)
        print(
            f"  {mode:<21}{sharpe[0]:>8.3f} ± {sharpe[1]:<5.3f}"
            f"{ret[0]:>10.2%} ± {ret[1]:<7.2%}{dd[0]:>10.2%} ± {dd[1]:<7.2%}"
            f"{turn[0]:>9.2f} ± {turn[1]:<6.2f}"
        )
    times = ", ".join(f"{k} {m:.1f} ± {s:.1f} s" for k, (m, s) in result["train_seconds"].items())
    print(f"  training wall time per model: {times}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--datasets", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--generalist-steps", type=int, default=8192)
    parser.add_argument("--specialist-steps", type=int, default=4096)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(1)
    steps = (args.generalist_steps, args.specialist_steps)
    seeds = list(range(args.seeds))
    results = {}
    for name in args.datasets:
        results[name] = run_dataset(name, seeds, steps, args.workers)
        print_dataset(name, results[name], len(seeds), steps)
        if args.out:
            args.out.write_text(json.dumps(results, indent=1, default=float))


if __name__ == "__main__":
    main()
