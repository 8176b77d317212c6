"""Parity: the same config in a BacktestNode and in the lockstep paper TradingNode.

These are the CI parity checks. ``test_parity_fullest_sample_config`` runs the fullest stack that
exists (regime actor, S1/S2/S3, portfolio risk gate, forensics bridge); later features join it by
being added to ``node_configs/live/parity_sample_full.yaml``.
"""

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from live_kit import REPO
from live_kit import ema_cross
from live_kit import paper_document
from live_kit import write_yaml

from grodt.cli import main
from grodt.nodes.parity import compare_reports
from grodt.nodes.parity import normalise_client_order_id
from grodt.nodes.parity import run_parity
from grodt.nodes.sandbox import GrodtSandboxExecutionClient
from node_configs.live_schema import backtest_twin
from node_configs.live_schema import load_live_config
from node_configs.live_schema import paper_twin
from node_configs.loader import load_backtest_config

BACKTEST = REPO / "node_configs" / "backtest"
LIVE = REPO / "node_configs" / "live"


@pytest.fixture(scope="module")
def full_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sample's real daily indices and stocks (what parity_sample_full.yaml trades)."""
    from catalogs.sample import build_sample_catalog

    path = tmp_path_factory.mktemp("full-sample-catalog")
    build_sample_catalog(path, datasets=("sp500", "stocks"))
    return path


def test_client_order_ids_are_compared_without_the_clock_stamp():
    assert normalise_client_order_id("O-19990604-200000-001-000-12") == "O-*-001-000-12"
    assert normalise_client_order_id("O-20261122-140927-001-000-12") == "O-*-001-000-12"
    assert normalise_client_order_id("custom-id-7") == "custom-id-7"


def test_parity_cli_on_the_demo_config_is_identical(sp500_catalog: Path, tmp_path: Path):
    result = CliRunner().invoke(
        main,
        [
            "parity",
            str(BACKTEST / "ema_cross_sp500.yaml"),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(tmp_path / "parity"),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["identical"] is True
    assert report["first_divergence"] is None
    assert report["orders"][0] == report["orders"][1] > 40
    assert report["fills"][0] == report["fills"][1] > 40
    # Every order that reached the venue was measured, inside the node.
    latency = report["paper_latency"]
    assert latency["count"] + latency["at_stop"] == report["orders"][1]
    assert report["paper_latency"]["p50_us"] > 0
    fills_bt = (tmp_path / "parity" / "backtest" / "fills.csv").read_text().splitlines()
    fills_paper = (tmp_path / "parity" / "paper" / "fills.csv").read_text().splitlines()
    assert len(fills_bt) == len(fills_paper)


@pytest.mark.slow
def test_parity_fullest_sample_config(full_catalog: Path, tmp_path: Path):
    spec = load_live_config(LIVE / "parity_sample_full.yaml")
    window = spec.replay.model_copy(update={"start": "2004-01-01", "end": "2007-06-30"})
    spec = spec.model_copy(update={"data_clients": [window]})
    report = run_parity(spec, tmp_path, catalog=full_catalog)
    assert report.identical, report.first_divergence
    assert report.orders[0] > 100 and report.fills[0] > 100
    assert set(report.components) >= {
        "actor:actors.regime_actor:RegimeActor",
        "strategy:strategies.s1_vwap_ema_scalper:S1VwapEmaScalper",
        "strategy:strategies.s2_mean_reversion:S2MeanReversion",
        "strategy:strategies.s3_breakout:S3Breakout",
        "section:risk",
        "section:forensics",
    }
    paper = json.loads((tmp_path / "paper" / "summary.json").read_text())
    backtest = json.loads((tmp_path / "backtest" / "summary.json").read_text())
    # Every extension finished in both nodes, with the same figures where they are counts.
    assert set(paper["extensions"]) == set(backtest["extensions"]) == {"risk", "forensics"}
    assert paper["final_equity"] == pytest.approx(backtest["final_equity"], abs=1e-6)
    # Every order is measured; the figure (bar arrival → order submitted, P95 < 50 ms with the
    # full stack) is benchmarks/live_latency.py's.
    assert paper["latency"]["count"] > 0


@pytest.mark.slow
def test_parity_with_three_strategies_on_one_instrument(sp500_catalog: Path, tmp_path: Path):
    """S1, S2 and S3 share the S&P 500: each exit cancels only its own bracket (a
    ``CancelAllOrders`` would be applied to the siblings' orders too, differently in each node)."""
    spec = load_backtest_config(BACKTEST / "rules_sp500.yaml")
    report = run_parity(spec, tmp_path, catalog=sp500_catalog)
    assert report.identical, report.first_divergence
    assert report.orders[0] > 1000 and report.fills[0] > 500


def test_positions_closed_at_stop_trace_the_same_decision(sp500_catalog: Path, tmp_path: Path):
    """S1 holds a position when the data ends: its stop-time exit is stamped at the last bar in
    both nodes (a paper node's clock is the wall clock), so the trace ids agree."""
    spec = load_backtest_config(BACKTEST / "s1_sp500.yaml")
    spec = spec.model_copy(update={"start": "2003-01-01", "end": "2003-08-29"})
    report = run_parity(spec, tmp_path, catalog=sp500_catalog)
    assert report.identical, report.first_divergence
    orders = pd.read_csv(tmp_path / "paper" / "orders.csv")
    last_bar = orders["ts_market"].max()
    (exit_tags,) = orders.loc[orders["ts_market"] == last_bar, "tags"]
    assert "EXIT" in exit_tags
    assert f":{pd.Timestamp(last_bar).value}:" in exit_tags


def test_a_divergence_is_named_precisely(sp500_catalog: Path, tmp_path: Path):
    backtest = load_backtest_config(BACKTEST / "ema_cross_sp500.yaml")
    backtest = backtest.model_copy(update={"start": "2003-01-01", "end": "2006-12-31"})
    from grodt.nodes.backtest import run_backtest
    from grodt.nodes.live import LiveNode

    run_backtest(backtest, sp500_catalog, tmp_path / "backtest", quiet=True)
    # The paper venue starts with half the cash: every entry is half the size.
    paper = paper_twin(backtest)
    sandbox = paper.sandboxes[0]
    poorer = sandbox.model_copy(
        update={"venue": sandbox.venue.model_copy(update={"starting_balances": ["500000 USD"]})},
    )
    paper = paper.model_copy(update={"exec_clients": [poorer]})
    LiveNode(paper, tmp_path / "paper", catalog=sp500_catalog, quiet=True).run()
    report = compare_reports(tmp_path / "backtest", tmp_path / "paper")
    assert not report.identical
    first = report.first_divergence
    assert first is not None
    assert first["kind"] == "order"
    assert first["index"] == 0
    assert first["field"] == "quantity"
    assert int(first["backtest"]) == pytest.approx(2 * int(first["paper"]), abs=1)
    assert first["backtest_id"].startswith("O-2003") and first["paper_id"] != first["backtest_id"]
    assert "quantity" in first["message"] and first["ts"].startswith("2003")


def test_two_instruments_on_the_same_timestamps(minute_catalog, tmp_path: Path):
    catalog, bar_types = minute_catalog
    document = paper_document(
        "two_instruments",
        list(bar_types.values()),
        [
            ema_cross("AAA.PAPER", bar_types["AAA"], order_id_tag="001"),
            ema_cross("BBB.PAPER", bar_types["BBB"], order_id_tag="002", equity_fraction=0.3),
            {
                "path": "live_kit_probes:OrderProbe",
                "config": {
                    "instrument_id": "BBB.PAPER",
                    "bar_type": bar_types["BBB"],
                    "order_id_tag": "003",
                    "every": 7,
                },
            },
        ],
    )
    config = write_yaml(tmp_path / "two.yaml", document)
    report = run_parity(load_live_config(config), tmp_path / "run", catalog=catalog)
    assert report.identical, report.first_divergence
    assert report.fills[0] > 50


def test_every_order_keeps_its_market_time_across_prunes(
    minute_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """The paper node remembers each order's replay time (compared by the parity check) and
    prunes what the cache purged; orders are in the cache only after their OrderInitialized."""
    import grodt.nodes.market_time as market_time

    monkeypatch.setattr(market_time, "PRUNE_EVERY", 5)
    catalog, bar_types = minute_catalog
    document = paper_document(
        "many_orders",
        [bar_types["AAA"]],
        [
            {
                "path": "live_kit_probes:OrderProbe",
                "config": {
                    "instrument_id": "AAA.PAPER",
                    "bar_type": bar_types["AAA"],
                    "every": 3,
                },
            },
        ],
    )
    config = write_yaml(tmp_path / "many.yaml", document)
    report = run_parity(load_live_config(config), tmp_path / "run", catalog=catalog)
    assert report.identical, report.first_divergence
    assert report.orders[1] > 50
    orders = pd.read_csv(tmp_path / "run" / "paper" / "orders.csv")
    assert orders["ts_market"].notna().all()


def _thin_config(tmp_path: Path, thin_catalog) -> Path:
    _, bar_types = thin_catalog
    document = paper_document(
        "thin",
        [bar_types["THIN"]],
        [ema_cross("THIN.PAPER", bar_types["THIN"], equity_fraction=0.5)],
    )
    return write_yaml(tmp_path / "thin.yaml", document)


def test_orders_larger_than_the_bar_liquidity_fill_as_in_the_backtest(thin_catalog, tmp_path):
    catalog, _ = thin_catalog
    spec = load_live_config(_thin_config(tmp_path, thin_catalog))
    report = run_parity(spec, tmp_path / "run", catalog=catalog)
    assert report.identical, report.first_divergence
    # Each order took the bar's liquidity, then the rest one tick worse: two fills per order.
    assert report.fills[0] >= 2 * report.orders[0] > 0


def test_without_synchronous_venue_events_the_paper_node_diverges(
    thin_catalog,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
):
    """Negative control: the stock sandbox behaviour (queued venue events) breaks parity."""
    catalog, _ = thin_catalog
    original = GrodtSandboxExecutionClient.bind

    def bind_without_engine(self, exec_engine, probe=None):
        original(self, None, probe)

    monkeypatch.setattr(GrodtSandboxExecutionClient, "bind", bind_without_engine)
    spec = load_live_config(_thin_config(tmp_path, thin_catalog))
    report = run_parity(spec, tmp_path / "run", catalog=catalog)
    assert not report.identical
    assert report.first_divergence is not None


def test_backtest_twin_of_the_paper_config_is_the_backtest_config():
    paper = load_live_config(LIVE / "ema_cross_sp500_paper.yaml")
    backtest = load_backtest_config(BACKTEST / "ema_cross_sp500.yaml")
    twin = backtest_twin(paper)
    assert twin.strategies == backtest.strategies
    assert twin.venues == backtest.venues
    assert twin.data == backtest.data
