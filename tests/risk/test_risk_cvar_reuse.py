"""The CVaR limit's reuse of per-scenario work gives the bits of the plain computation.

:class:`risk_engine.limits.Scenarios` keeps each instrument's return column and the column
subsets its corner tables multiply (the returns never change for one Scenarios), and
:meth:`Scenarios.cvar_of_temporary` negates and partitions a P&L array in place. Both must give
exactly what the straightforward numpy expressions give: the verdict records carry the CVaR
values, and the gate's outputs must not move by a bit.
"""

import numpy as np
import pytest
from nautilus_trader.model.identifiers import InstrumentId

from risk_engine.config import CvarLimit
from risk_engine.limits import Scenarios
from risk_engine.limits import _corner_bits
from risk_engine.portfolio_state import Exposure
from risk_engine.portfolio_state import Snapshot

IDS = [InstrumentId.from_str(f"S{i}.XSYN") for i in range(7)]


def _reference_vertex_pnls(
    scenarios: Scenarios,
    snapshot: Snapshot,
    instrument_id: InstrumentId,
    side: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The corner P&L as computed before the reuse (fresh fancy indexing on every call)."""
    fixed = np.zeros(len(scenarios.columns))
    ambiguous: list[tuple[int, float, float]] = []
    for other_id, exposure in snapshot.exposures.items():
        column = scenarios.columns.get(other_id)
        value = exposure.unit_value
        if column is None or value != value or other_id == instrument_id:
            continue
        low = (exposure.position - exposure.pending_sell) * value
        high = (exposure.position + exposure.pending_buy) * value
        if low == high:
            fixed[column] = low
        else:
            ambiguous.append((column, low, high))
    if len(ambiguous) > Scenarios.MAX_EXACT:
        ambiguous.sort(key=lambda a: a[1] - a[2])
        ambiguous = ambiguous[: Scenarios.MAX_EXACT]
    base = scenarios.returns @ fixed
    if ambiguous:
        table = np.array(ambiguous)
        columns = table[:, 0].astype(np.intp)
        corners = np.where(_corner_bits(len(ambiguous)), table[:, 2:3], table[:, 1:2])
        base = base[:, None] + scenarios.returns[:, columns] @ corners
    else:
        base = base[:, None]
    own = scenarios.returns[:, scenarios.columns[instrument_id]][:, None]
    return base, own


def _random_snapshot(rng: np.random.Generator, n: int) -> Snapshot:
    snapshot = Snapshot(equity=1e6)
    for instrument_id in IDS[:n]:
        if rng.random() < 0.15:
            continue  # not in the book
        exposure = Exposure(float(rng.uniform(20.0, 200.0)))
        exposure.position = float(rng.choice([0.0, rng.normal(0.0, 400.0)]))
        exposure.pending_buy = float(rng.choice([0.0, abs(rng.normal(0.0, 400.0))]))
        exposure.pending_sell = float(rng.choice([0.0, abs(rng.normal(0.0, 400.0))]))
        snapshot.exposures[instrument_id] = exposure
    return snapshot


@pytest.mark.parametrize("n", [1, 4, 7])
def test_vertex_pnls_and_cvar_match_the_plain_computation_bit_for_bit(n):
    rng = np.random.default_rng(11 + n)
    config = CvarLimit(limit=0.004, alpha=0.95, window=390, min_observations=78)
    scenarios = Scenarios(IDS[:n], rng.standard_t(3, size=(400, n)) * 0.01, config)
    corners_seen = set()
    for _ in range(400):  # many calls on one Scenarios: its column subsets are reused
        snapshot = _random_snapshot(rng, n)
        instrument_id = IDS[int(rng.integers(n))]
        side = int(rng.choice([-1, 1]))
        base, own, side_value, _, _ = scenarios.vertex_pnls(snapshot, instrument_id, side)
        expected_base, expected_own = _reference_vertex_pnls(
            scenarios,
            snapshot,
            instrument_id,
            side,
        )
        assert base.shape == expected_base.shape
        assert base.tobytes() == expected_base.tobytes()
        assert own.tobytes() == expected_own.tobytes()
        corners_seen.add(base.shape[1])
        for q in (0.0, 3.0, 250.5):
            pnl = base + own * (side_value + q * 7.25)
            kept = pnl.copy()
            plain = scenarios.cvar(pnl)
            assert pnl.tobytes() == kept.tobytes()  # cvar leaves its argument alone
            in_place = scenarios.cvar_of_temporary(pnl)
            assert repr(in_place) == repr(plain)
    if n > 1:
        assert len(corners_seen) > 1  # both corner tables and plain columns were exercised


def test_reused_columns_are_read_only():
    config = CvarLimit(limit=0.004, alpha=0.95, window=100, min_observations=20)
    scenarios = Scenarios(IDS[:2], np.ones((120, 2)) * 0.01, config)
    snapshot = Snapshot(equity=1e6)
    exposure = Exposure(100.0)
    exposure.pending_buy = 10.0
    snapshot.exposures[IDS[1]] = exposure
    _, own, _, _, _ = scenarios.vertex_pnls(snapshot, IDS[0], 1)
    with pytest.raises(ValueError):
        own[0, 0] = 1.0  # shared between calls: a caller must not change it
