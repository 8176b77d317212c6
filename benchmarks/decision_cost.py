"""What a rule strategy's decision costs in the event loop, and what replaying it costs.

Builds a synthetic catalog (``catalogs.synthetic``, one-minute bars) in a temporary directory and
runs the full rule stack on ``--instruments`` of its instruments (SYNA first): the regime actor,
S1 + S2 + S3 on each and forensics to Parquet, under ``cProfile``. Prints the bars, the calls and
cumulative time of ``RegimeAwareStrategy._enter`` (the entry decision: gate, account read, sizing,
bracket, record) and of ``_account_equity``, per call, and the calls of ``_on_regime`` (the
regime fan-out: one per record and strategy that follows its instrument); then replays every
decision of the run (``grodt.forensics.decision_replay``) and prints the share equal bit for bit
and the time per decision.

To compare with another revision of the strategies, put that revision's ``strategies`` package
first on the path (the run's other code stays this tree's)::

    nice -n 10 .venv/bin/python benchmarks/decision_cost.py --days 10
    git archive <rev> strategies | tar -x -C /tmp/old
    PYTHONPATH=/tmp/old nice -n 10 .venv/bin/python benchmarks/decision_cost.py --no-replay
"""

import argparse
import cProfile
import pstats
import tempfile
import time
from pathlib import Path

from catalogs.sample import build_sample_catalog
from catalogs.synthetic import SyntheticParams
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes

REPO = Path(__file__).resolve().parents[1]
STRATEGIES = REPO / "node_configs" / "components" / "strategies"
SYMBOLS = ("SYNA", "SYNB", "SYNC", "SYND")


def _document(instruments: int) -> dict:
    symbols = SYMBOLS[:instruments]
    bar_types = [f"{symbol}.XSYN-1-MINUTE-LAST-EXTERNAL" for symbol in symbols]
    strategies = [
        {
            "include": str(STRATEGIES / f"{name}_syn.yaml"),
            "config": {
                "instrument_id": f"{symbol}.XSYN",
                "bar_type": bar_type,
                "order_id_tag": f"{kind}0{k + 1}",
            },
        }
        for k, (symbol, bar_type) in enumerate(zip(symbols, bar_types, strict=True))
        for kind, name in ((1, "s1_vwap_ema"), (2, "s2_mean_reversion"), (3, "s3_breakout"))
    ]
    return resolve_includes(
        {
            "name": "decision_cost",
            "venues": [{"include": "node_configs/venues/synthetic_margin.yaml"}],
            "data": [{"bar_types": bar_types}],
            "actors": [
                {
                    "path": "actors.regime_actor:RegimeActor",
                    "config": {
                        "bar_types": bar_types,
                        "walk_forward": {"train_bars": 390, "refit_every": 390},
                    },
                },
            ],
            "strategies": strategies,
            "forensics": {"sink": "parquet"},
            "logging": {"level": "ERROR", "file_level": "OFF"},
        },
        REPO,
    )


def _function_stats(stats: pstats.Stats, name: str) -> tuple[int, float]:
    """(calls, cumulative seconds) of every function called ``name`` in the strategies."""
    calls, cumulative = 0, 0.0
    for (filename, _, function), (_, ncalls, _, ct, _) in stats.stats.items():  # type: ignore[attr-defined]
        if function == name and "strategies" in filename:
            calls += ncalls
            cumulative += ct
    return calls, cumulative


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=10, help="Synthetic sessions (390 bars each).")
    parser.add_argument("--no-replay", action="store_true", help="Only the run's profile.")
    parser.add_argument("--callees", action="store_true", help="Print what _enter calls.")
    parser.add_argument("--instruments", type=int, default=1, choices=range(1, 5))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        catalog = Path(tmp) / "catalog"
        build_sample_catalog(
            catalog, datasets=("synthetic",), synthetic=SyntheticParams(days=args.days)
        )
        document = _document(args.instruments)
        spec = load_backtest_document(document, "decision_cost")
        profile = cProfile.Profile()
        started = time.perf_counter()
        profile.enable()
        outcome = run_backtest(spec, catalog, Path(tmp) / "run", document=document, quiet=True)
        profile.disable()
        wall = time.perf_counter() - started
        stats = pstats.Stats(profile)
        enter_calls, enter_s = _function_stats(stats, "_enter")
        equity_calls, equity_s = _function_stats(stats, "_account_equity")
        decide_calls, decide_s = _function_stats(stats, "_decide")
        regime_calls, _ = _function_stats(stats, "_on_regime")
        bars = args.days * 390 * args.instruments
        print(
            f"bars: {bars:,} ({args.instruments} instruments × {args.days * 390:,}), "
            f"{3 * args.instruments} strategies; run under cProfile {wall:.1f} s"
        )
        print(f"_on_regime      {regime_calls:>7,} calls ({regime_calls / bars:.1f} per bar)")
        print(f"_decide         {decide_calls:>7,} calls  {decide_s:7.3f} s cumulative")
        per_entry = enter_s / enter_calls * 1e6 if enter_calls else 0.0
        print(
            f"_enter          {enter_calls:>7,} calls  {enter_s:7.3f} s cumulative "
            f"({per_entry:.0f} µs per call)"
        )
        per_equity = equity_s / equity_calls * 1e6 if equity_calls else 0.0
        print(
            f"_account_equity {equity_calls:>7,} calls  {equity_s:7.3f} s cumulative "
            f"({per_equity:.0f} µs per call)"
        )
        if args.callees:
            stats.sort_stats("cumulative").print_callees("_enter")
        if args.no_replay:
            return
        from grodt.forensics.decision_replay import replay_decisions

        results, not_replayable, seconds = replay_decisions(outcome.run_dir)
        equal = sum(r.equal for r in results)
        print(
            f"replay: {equal} of {len(results) + len(not_replayable)} decision records equal bit "
            f"for bit, {seconds / max(len(results), 1) * 1e6:.0f} µs per decision"
        )


if __name__ == "__main__":
    main()
