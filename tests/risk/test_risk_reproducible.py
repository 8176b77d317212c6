"""The gate's portfolio snapshot is the same to the last bit in every process: the cache hands
out open positions and order ids in the order of sets whose string hashes change with the
process's hash seed (PYTHONHASHSEED), and the snapshot's float sums would follow that order."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

_SNAPSHOT = """
import sys
sys.path.insert(0, "tests/risk")
from risk_kit import RiskHarness, limits

symbols = [f"A{k}" for k in range(8)]
prices = {s: 100.0 + 0.37 * k + 0.011 * k * k for k, s in enumerate(symbols)}
harness = RiskHarness(symbols=symbols, strategies=3, account_type="MARGIN", prices=prices)
harness.install(limits())
for k, s in enumerate(symbols):
    harness.market(s, "BUY" if k % 2 else "SELL", 3 + 7 * k, strategy=k % 3)
harness.step({s: p * 1.0123 for s, p in prices.items()})
for k, s in enumerate(symbols):
    for j in range(5):
        far = prices[s] * (0.5 + 0.013 * j)  # resting: never fills here
        harness.limit(s, "BUY", 11 + 13 * j + k, round(far, 2), strategy=j % 3)
view = harness.gate.view
snapshot = view.snapshot(set(), {})
print(repr(snapshot.equity), repr(snapshot.pending_notional), repr(view.equity()))
harness.dispose()
"""


def _snapshot_in_process(seed: int) -> str:
    run = subprocess.run(
        [sys.executable, "-c", _SNAPSHOT],
        cwd=REPO,
        env={**os.environ, "PYTHONHASHSEED": str(seed)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stdout.strip().splitlines()[-1]


def test_snapshot_sums_do_not_depend_on_the_hash_seed():
    results = {seed: _snapshot_in_process(seed) for seed in (1, 2, 3, 4, 5)}
    assert len(set(results.values())) == 1, results
