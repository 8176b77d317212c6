"""Closed orders and positions purged from the backtest cache (grodt.nodes.cache_purge): the
same run with and without the purge gives the same fills, orders, positions, account and summary
(UUIDs aside: event ids and position snapshot suffixes are random in every run)."""

import json
import re
import sys
from pathlib import Path

import pytest

from grodt.nodes import backtest_reports
from grodt.nodes.backtest import run_backtest
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes
from node_configs.schema import BacktestNodeSpec

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def synthetic_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sessions of the synthetic market (4 instruments × 780 one-minute bars)."""
    from catalogs.sample import build_sample_catalog
    from catalogs.synthetic import SyntheticParams

    path = tmp_path_factory.mktemp("purge-catalog")
    build_sample_catalog(path, datasets=("synthetic",), synthetic=SyntheticParams(days=2))
    return path


def _spec() -> BacktestNodeSpec:
    """S1, S2 and S3 on one synthetic instrument, shorts allowed (bracket orders, reversals and a
    NETTING position id that closes and reopens many times)."""
    bar_type = "SYNA.XSYN-1-MINUTE-LAST-EXTERNAL"
    strategies = [
        {
            "include": f"node_configs/components/strategies/{name}_syn.yaml",
            "config": {
                "instrument_id": "SYNA.XSYN",
                "bar_type": bar_type,
                "order_id_tag": tag,
                "allocation_weight": 0.3,
                "allow_short": True,
            },
        }
        for name, tag in (
            ("s1_vwap_ema", "101"),
            ("s2_mean_reversion", "201"),
            ("s3_breakout", "301"),
        )
    ]
    document = {
        "name": "purge",
        "venues": [{"include": "node_configs/venues/synthetic_margin.yaml"}],
        "data": [{"bar_types": [bar_type]}],
        "strategies": strategies,
    }
    return load_backtest_document(resolve_includes(document, REPO), "purge")


def _text(path: Path) -> list[str]:
    return [_UUID.sub("<uuid>", line) for line in path.read_text().splitlines()]


@pytest.fixture(scope="module")
def kept(synthetic_catalog: Path, tmp_path_factory: pytest.TempPathFactory):
    """The run with the cache kept whole: Nautilus' own reports."""
    run_dir = tmp_path_factory.mktemp("kept")
    return run_backtest(_spec(), synthetic_catalog, run_dir, quiet=True, purge_cache=False)


@pytest.mark.parametrize("chunk_rows", [None, 7], ids=["one-chunk", "chunks-of-7"])
def test_purged_run_reports_equal_the_unpurged_run(
    synthetic_catalog, kept, tmp_path, monkeypatch, chunk_rows
):
    if chunk_rows is not None:
        # Reports streamed from the spill in many chunks, spilled batches reloaded as they are
        # needed: the text must not depend on where the chunks end.
        monkeypatch.setattr(backtest_reports, "REPORT_CHUNK_ROWS", chunk_rows)
        monkeypatch.setattr(backtest_reports, "_LOADED_BATCHES", 2)
    switch_interval = sys.getswitchinterval()
    purged = run_backtest(_spec(), synthetic_catalog, tmp_path / "purged", quiet=True)
    assert sys.getswitchinterval() == switch_interval  # lowered for the event loop only
    assert "cache_purged" not in kept.summary
    counts = purged.summary["cache_purged"]
    # Most orders and positions left the cache during the run; not every one (the last hour's).
    assert 0 < counts["orders"] < purged.summary["orders"]
    assert counts["positions"] > 0
    assert counts["account_states"] > 0  # one per fill: spilled and purged too
    # Brackets' order lists leave the cache with their last order (Nautilus keeps them, and
    # every order in them, otherwise).
    assert counts["order_lists"] > 0
    for name in ("fills.csv", "orders.csv", "positions.csv", "account_XSYN.csv"):
        assert _text(purged.run_dir / name) == _text(kept.run_dir / name), name
    positions = (purged.run_dir / "positions.csv").read_text()
    assert ",True" in positions  # closed round trips of reopened positions are snapshots
    timing = {"wall_seconds", "bars_per_second", "run_dir", "reports", "cache_purged"}
    mine = json.loads((purged.run_dir / "summary.json").read_text())
    theirs = json.loads((kept.run_dir / "summary.json").read_text())
    assert {k: v for k, v in mine.items() if k not in timing} == {
        k: v for k, v in theirs.items() if k not in timing
    }
    assert not (purged.run_dir / ".purged_reports").exists()


def test_position_snapshots_are_spilled_as_the_caches_own_bytes():
    """The purge spills position snapshots as the pickled bytes the cache holds (found in the
    cache's private dict): they must decode to what ``Cache.position_snapshots`` returns."""
    import pickle

    from nautilus_trader.cache.cache import Cache
    from nautilus_trader.model.enums import OmsType
    from nautilus_trader.model.identifiers import PositionId
    from nautilus_trader.model.objects import Price
    from nautilus_trader.model.position import Position
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.test_kit.stubs.events import TestEventStubs
    from nautilus_trader.test_kit.stubs.execution import TestExecStubs

    from grodt.nodes.cache_purge import _position_snapshots_dict

    instrument = TestInstrumentProvider.default_fx_ccy("AUD/USD")
    cache = Cache()
    assert _position_snapshots_dict(cache) is None  # no snapshot yet: nothing to find
    order = TestExecStubs.limit_order(instrument=instrument)
    fill = TestEventStubs.order_filled(
        order, instrument, position_id=PositionId("P-1"), last_px=Price.from_str("1.00000")
    )
    position = Position(instrument, fill)
    cache.add_position(position, OmsType.NETTING)
    cache.snapshot_position(position)
    cache.snapshot_position(position)
    snapshots = _position_snapshots_dict(cache)
    assert snapshots is not None
    decoded = [pickle.loads(pickled).to_dict() for pickled in snapshots[position.id]]
    assert len(decoded) == 2
    assert decoded == [s.to_dict() for s in cache.position_snapshots(position.id)]
    cache.snapshot_position(position)
    assert len(snapshots[position.id]) == 3  # the cache's own dict, not a copy
