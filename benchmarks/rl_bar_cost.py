"""The RL ensemble strategy's own CPU per bar on the engine thread, before and after a change.

Runs each config in a BacktestNode (a paper config through its backtest twin, the components
``grodt parity`` compares) in a fresh process per run and stamps ``RLEnsembleStrategy.on_bar``
with ``time.thread_time_ns`` (the engine thread's CPU, not wall time). Prints per variant, the
median over ``--rounds`` of the P50 / P99 / mean in µs over every bar and over the bars whose
decision was recorded (an order or an exit), and the same **without the order submission**:
the nested ``submit_order`` / ``cancel_order`` calls subtracted, because in a BacktestNode they
run the risk gate, execution engine and simulated venue synchronously inside ``on_bar``, while
in the paper node they return once the command is queued (what ``docs/live.md``'s span table
counts as the strategy's). Also checks that every variant published the same decision records
(digest of their JSON, ``ts_init`` included) and names the first variant that differs.

A variant is a source tree put first on the path (its code; the configs, catalog and trained
specialists stay this tree's): ``--before DIR`` and ``--after DIR`` (default: this tree)::

    mkdir -p /tmp/before /tmp/after
    git archive <old rev> | tar -x -C /tmp/before
    git archive <new rev> | tar -x -C /tmp/after
    nice -n 10 .venv/bin/python benchmarks/rl_bar_cost.py --before /tmp/before --after /tmp/after

Configs (default): ``node_configs/live/parity_sample_full.yaml`` (scripted policy beside the
regime actor, the meta-controller, S1-S3, the risk gate and forensics) and
``node_configs/backtest/full_stack_sp500.yaml`` (the demo: trained specialists from
``data/models/rl_demo``, made by ``make demo``). Needs the sample catalog (``data/catalog``).
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIGS = (
    "node_configs/live/parity_sample_full.yaml",
    "node_configs/backtest/full_stack_sp500.yaml",
)
_QUIET = ("logging.level=ERROR", "logging.file_level='OFF'")  # quoted: YAML reads OFF as false


def _one_run(config: str, catalog: Path) -> dict:
    """Run ``config`` once in this process; per-bar stamps and the records' digest."""
    import numpy as np

    import strategies.rl_ensemble as rl
    from grodt.nodes.backtest import run_backtest
    from node_configs.live_schema import LiveNodeSpec
    from node_configs.live_schema import backtest_twin
    from node_configs.live_schema import load_node_config

    spec = load_node_config(REPO / config, _QUIET)
    if isinstance(spec, LiveNodeSpec):
        spec = backtest_twin(spec, config)
    own: list[int] = []
    nested: list[int] = []
    decided: list[bool] = []
    digest = hashlib.sha256()
    records = 0
    inside = [0]

    def stamped(original):
        def call(self, *args, **kwargs):
            started = time.thread_time_ns()
            try:
                return original(self, *args, **kwargs)
            finally:
                inside[0] += time.thread_time_ns() - started

        return call

    on_bar = rl.RLEnsembleStrategy.on_bar

    def timed_on_bar(self, bar):
        before, inside[0] = self._recorder.decisions, 0
        started = time.thread_time_ns()
        on_bar(self, bar)
        own.append(time.thread_time_ns() - started)
        nested.append(inside[0])
        decided.append(self._recorder.decisions != before)

    publish = rl.RLEnsembleStrategy._publish

    def recorded_publish(self, topic, message):
        nonlocal records
        if hasattr(message, "model_dump_json"):
            digest.update(message.model_dump_json().encode())
            records += 1
        return publish(self, topic, message)

    rl.RLEnsembleStrategy.on_bar = timed_on_bar
    rl.RLEnsembleStrategy._publish = recorded_publish
    for name in ("submit_order", "cancel_order"):
        setattr(rl.RLEnsembleStrategy, name, stamped(getattr(rl.RLEnsembleStrategy, name)))
    with tempfile.TemporaryDirectory() as tmp:
        run_backtest(spec, catalog, Path(tmp) / "run", quiet=True)
    total = np.array(own) / 1e3
    without = (np.array(own) - np.array(nested)) / 1e3
    mask = np.array(decided)

    def figures(values) -> list[float]:
        if not len(values):
            return [float("nan")] * 3
        return [float(np.percentile(values, 50)), float(np.percentile(values, 99)), values.mean()]

    return {
        "module": rl.__file__,
        "bars": len(own),
        "decision_bars": int(mask.sum()),
        "all": figures(total),
        "decisions": figures(total[mask]),
        "all_no_submit": figures(without),
        "decisions_no_submit": figures(without[mask]),
        "records": records,
        "digest": digest.hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", help="A source tree of the older revision.")
    parser.add_argument("--after", default=str(REPO), help="A source tree (default: this one).")
    parser.add_argument("--config", action="append", help="Repeatable (default: both above).")
    parser.add_argument("--catalog", default=str(REPO / "data" / "catalog"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", help=argparse.SUPPRESS)  # a child run: the config
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        result = _one_run(args.one, Path(args.catalog))
        Path(args.out).write_text(json.dumps(result))
        return
    variants = {"after": str(Path(args.after).resolve())}
    if args.before:
        variants = {"before": str(Path(args.before).resolve()), **variants}
    configs = args.config or list(DEFAULT_CONFIGS)
    results: dict[tuple[str, str], list[dict]] = {}
    loads = []
    for _ in range(args.rounds):
        for config in configs:
            for variant, root in variants.items():
                with tempfile.NamedTemporaryFile(suffix=".json") as out:
                    env = {**os.environ, "PYTHONPATH": f"{root}{os.pathsep}{REPO}"}
                    command = [sys.executable, __file__, "--one", config, "--out", out.name]
                    command += ["--catalog", args.catalog]
                    loads.append(os.getloadavg()[0])
                    subprocess.run(command, env=env, check=True, cwd=REPO)
                    results.setdefault((config, variant), []).append(json.loads(out.read()))
    print(f"load average (1 min) at the runs' starts: {min(loads):.1f}-{max(loads):.1f}")
    print("own CPU of RLEnsembleStrategy.on_bar, µs: P50 / P99 / mean (median over rounds)")
    for config in configs:
        print(f"\n{config}")
        digests = {}
        for variant in variants:
            runs = results[(config, variant)]
            first = runs[0]
            digests[variant] = {run["digest"] for run in runs}
            print(
                f"  {variant:6s} ({first['module']}): {first['bars']} bars, "
                f"{first['decision_bars']} with a decision, {first['records']} records"
            )
            for key, title in (
                ("all", "every bar"),
                ("decisions", "decision bars"),
                ("all_no_submit", "every bar, submit excluded"),
                ("decisions_no_submit", "decision bars, submit excluded"),
            ):
                p50, p99, mean = (statistics.median(run[key][i] for run in runs) for i in range(3))
                print(f"    {title:32s} {p50:8.1f} {p99:8.1f} {mean:8.1f}")
        reference = digests[next(iter(variants))]
        for variant, found in digests.items():
            same = found == reference and len(found) == 1
            print(f"  records of {variant}: {'identical' if same else 'DIFFER'} to the first")


if __name__ == "__main__":
    main()
