"""Logs sized for backtests: the JSON log file is at WARNING unless the config asks for more, and
tracking uploads the logs gzip-compressed (the run directory keeps the originals)."""

import gzip
import json
from pathlib import Path

from grodt.nodes.backtest import build_run_config
from grodt.tracking.backtest import compress_logs
from grodt.tracking.backtest import select_artifacts
from node_configs.loader import load_backtest_document
from node_configs.loader import resolve_includes
from node_configs.schema import BacktestNodeSpec

REPO = Path(__file__).resolve().parents[1]
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"


def _spec(logging: dict | None = None) -> BacktestNodeSpec:
    document = {
        "name": "ema",
        "venues": [{"include": "node_configs/venues/sample_cash.yaml"}],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [{"include": "node_configs/components/strategies/ema_cross_spx.yaml"}],
    }
    if logging is not None:
        document["logging"] = logging
    return load_backtest_document(resolve_includes(document, REPO), "ema")


def test_backtest_file_log_is_warning_unless_asked(tmp_path):
    default = build_run_config(_spec(), tmp_path, tmp_path).engine.logging
    assert default.log_level_file == "WARNING"
    assert default.log_directory == str(tmp_path / "logs")
    asked = build_run_config(_spec({"file_level": "INFO"}), tmp_path, tmp_path).engine.logging
    assert asked.log_level_file == "INFO"
    off = build_run_config(_spec({"file_level": "OFF"}), tmp_path, tmp_path).engine.logging
    assert off.log_level_file is None and off.log_directory is None
    console = build_run_config(_spec({"level": "INFO"}), tmp_path, tmp_path).engine.logging
    assert console.log_level == "INFO" and console.log_level_file == "WARNING"


def test_tracking_uploads_logs_compressed(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "logs").mkdir(parents=True)
    line = json.dumps({"level": "INFO", "message": "order filled " * 8}) + "\n"
    original = (line * 5_000).encode()
    (run_dir / "logs" / "GRODT-001.json").write_bytes(original)
    (run_dir / "logs" / "empty.json").write_bytes(b"")
    (run_dir / "summary.json").write_text("{}")
    compressed = compress_logs(run_dir)
    assert [p.name for p in compressed.iterdir()] == ["GRODT-001.json.gz"]
    packed = compressed / "GRODT-001.json.gz"
    assert gzip.decompress(packed.read_bytes()) == original
    assert packed.stat().st_size < len(original) / 10
    chosen, skipped = select_artifacts(run_dir)
    paths = {entry.path: entry.artifact_path for entry in chosen}
    assert paths["tracking/logs"] == "logs" and "logs" not in paths
    assert not skipped
    assert (run_dir / "logs" / "GRODT-001.json").read_bytes() == original  # kept locally
