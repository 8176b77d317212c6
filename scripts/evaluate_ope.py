"""Validate the off-policy estimators against ground truth on the synthetic market.

Usage::

    nice -n 10 .venv/bin/python scripts/evaluate_ope.py                 # 20 seeds, 60 days each
    nice -n 10 .venv/bin/python scripts/evaluate_ope.py --reward-model ridge --logger-temperature 2
    nice -n 10 .venv/bin/python scripts/evaluate_ope.py --seeds 5 --days 120 --json out.json

Per seed (``research.ope.validation.validate_on_synthetic_market``): the synthetic market of that
seed (``catalogs.synthetic``, 4 instruments, 390 one-minute bars a day), one round every
``--window`` bars with a context of trailing momentum z-scores and volatility, six allocations as
actions (cash, equal weight, all-in on each instrument), reward = the next window's return of the
chosen allocation. A softmax-over-momentum logger (``--logger-temperature``) picks the logged
actions; the estimators estimate an ε-greedy contrarian allocator's value (``--target-epsilon``)
from that log; the same allocator then runs for real on the same rounds (every action's reward is
known, so its true value is exact). DM and the DR family use a cross-fitted reward model
(``--reward-model``: LightGBM or ridge regression on context × action). Printed: per estimator
the bias (± its standard error over seeds) and RMSE against the truth, the coverage of the
``1 − alpha`` bootstrap intervals and their mean width (basis points per window), and per seed
the target's true and realised values beside the logger's and equal weight's (the always-on
baseline).
"""

import argparse
import json
import time
from pathlib import Path

import numpy as np
import yaml
from sklearn.linear_model import Ridge

from actors.forensics.pipeline import new_session_id
from catalogs.synthetic import SyntheticParams
from catalogs.synthetic import generate_market
from grodt.forensics.ope_logs import write_records
from research.ope.market_bandit import allocation_bandit
from research.ope.market_bandit import allocation_records
from research.ope.policies import sample_actions
from research.ope.validation import contrarian_target
from research.ope.validation import momentum_logger
from research.ope.validation import summarise_validation
from research.ope.validation import validate_on_synthetic_market

BP = 1e4


def write_example_run(
    run: Path, days: int, window: int, lookback: int, args: argparse.Namespace
) -> None:
    """Seed 0's log (the same draws as the validation's) as a run's forensics, and the target's
    policy file."""
    bandit = allocation_bandit(
        generate_market(SyntheticParams(days=days, seed=0)).frames,
        window_bars=window,
        lookback_bars=lookback,
    )
    logger = momentum_logger(bandit, args.logger_temperature).action_dist(bandit.context)
    action, _ = sample_actions(logger, np.random.default_rng(0))
    records = allocation_records(bandit, action, logger, component_id="MetaController-000")
    write_records(run, records, session=new_session_id())
    target = contrarian_target(bandit, args.target_epsilon)
    n_instruments = len(bandit.instruments)
    policy = {
        "kind": "epsilon_greedy",
        "features": list(bandit.feature_names[:n_instruments]),
        "coef": target.coef[:n_instruments].tolist(),
        "epsilon": args.target_epsilon,
    }
    (run / "contrarian_policy.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    print(
        f"\nwrote {len(records)} allocation records to {run}/forensics and the target to "
        f"{run}/contrarian_policy.yaml; true value of the target on them "
        f"{bandit.value(target.action_dist(bandit.context)) * BP:.3f} bp/window"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="seeds 0..N-1 (market and logger)")
    parser.add_argument("--days", type=int, default=60, help="trading days per market")
    parser.add_argument("--window", type=int, default=65, help="bars between decisions")
    parser.add_argument("--lookback", type=int, default=130, help="bars behind each context")
    parser.add_argument("--logger-temperature", type=float, default=1.0)
    parser.add_argument("--target-epsilon", type=float, default=0.1)
    parser.add_argument("--tau", type=float, default=5.0, help="Switch-DR's weight threshold")
    parser.add_argument("--n-bootstrap", type=int, default=500)
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument(
        "--reward-model",
        choices=("lightgbm", "ridge"),
        default="lightgbm",
        help="regressor of the cross-fitted q_hat (DM and the DR family)",
    )
    parser.add_argument("--json", type=Path, help="also write every (seed, estimator) row here")
    parser.add_argument(
        "--write-run",
        type=Path,
        help="also write seed 0's logged allocation records as a run directory (Parquet "
        "forensics) and the target as <run>/contrarian_policy.yaml, for `grodt ope evaluate`",
    )
    args = parser.parse_args()

    started = time.perf_counter()
    results = validate_on_synthetic_market(
        range(args.seeds),
        days=args.days,
        window_bars=args.window,
        lookback_bars=args.lookback,
        logger_temperature=args.logger_temperature,
        target_epsilon=args.target_epsilon,
        tau=args.tau,
        n_bootstrap=args.n_bootstrap,
        alpha=args.alpha,
        regressor=Ridge(alpha=1.0) if args.reward_model == "ridge" else None,
    )
    elapsed = time.perf_counter() - started
    per_seed = results.groupby("seed").first()
    print(
        f"OPE on the synthetic market: {args.seeds} seeds × {int(per_seed['n_rounds'].mean())} "
        f"rounds ({args.days} days, a round every {args.window} bars), logger softmax "
        f"T={args.logger_temperature}, target ε-greedy contrarian ε={args.target_epsilon}, "
        f"{args.n_bootstrap} bootstrap resamples, {1 - args.alpha:.0%} intervals, reward model "
        f"{args.reward_model}, {elapsed:.1f} s"
    )
    print("\nper seed, bp per window:")
    print(
        (per_seed[["truth", "realised", "logger_value", "equal_weight_value"]] * BP).to_string(
            float_format=lambda v: f"{v:8.3f}"
        )
        + "\n"
        + per_seed[["ess", "max_weight"]].to_string(float_format=lambda v: f"{v:8.1f}")
    )
    summary = summarise_validation(results)
    print(
        "\nestimators against the truth (bias ± its standard error over seeds, RMSE, mean "
        "interval width: bp per window):"
    )
    shown = summary.assign(
        bias=summary["bias"] * BP,
        bias_se=summary["bias_se"] * BP,
        rmse=summary["rmse"] * BP,
        mean_width=summary["mean_width"] * BP,
    )
    print(shown.to_string(float_format=lambda v: f"{v:8.3f}"))
    truth = per_seed["truth"].mean() * BP
    baseline = per_seed["equal_weight_value"].mean() * BP
    logger = per_seed["logger_value"].mean() * BP
    print(
        f"\ntarget's true value {truth:.3f} bp/window on average, logger {logger:.3f}, "
        f"equal weight held throughout (always-on baseline) {baseline:.3f}: the target "
        f"{'beats' if truth > baseline else 'loses to'} the baseline"
    )
    if args.write_run:
        write_example_run(args.write_run, args.days, args.window, args.lookback, args)
    if args.json:
        args.json.write_text(json.dumps(results.to_dict(orient="records"), indent=1))
        print(f"rows: {args.json}")


if __name__ == "__main__":
    main()
