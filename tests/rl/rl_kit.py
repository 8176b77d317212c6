"""Helpers of the RL tests: a small synthetic catalog (4 instruments x 4 one-minute sessions) and
a training YAML over it with a few hundred steps."""

from pathlib import Path

import yaml

from catalogs.sample import build_sample_catalog
from catalogs.synthetic import SyntheticParams

ROOT = Path(__file__).resolve().parents[2]
BAR_TYPES = [f"SYN{s}.XSYN-1-MINUTE-LAST-EXTERNAL" for s in "AB"]

FEATURES = {
    "name": "rl_test",
    "features": [
        {"kind": "log_return", "periods": 1},
        {"kind": "log_return", "periods": 5},
        {"kind": "volatility", "window": 20},
        {"kind": "rsi", "period": 14},
    ],
}


def synthetic_catalog(directory: Path, days: int = 4) -> Path:
    catalog = directory / "catalog"
    build_sample_catalog(catalog, ["synthetic"], synthetic=SyntheticParams(days=days))
    return catalog


def training_config(directory: Path, catalog: Path, **changes: object) -> Path:
    """An RL training YAML: first 3 sessions train, the last one tests; tiny PPO."""
    feature_set = directory / "features.yaml"
    feature_set.write_text(yaml.safe_dump(FEATURES))
    document: dict[str, object] = {
        "name": "syn_test",
        "catalog": str(catalog),
        "bar_types": BAR_TYPES,
        "feature_set": str(feature_set),
        "venue": str(ROOT / "node_configs/venues/synthetic_margin.yaml"),
        "train": {"end": "2024-01-05"},
        "test": {"start": "2024-01-05"},
        "episodes": {"sessions": True, "timezone": "America/New_York"},
        "regime": {"train_bars": 600, "n_init": 1},
        "policy": {"net_arch": [16], "n_steps": 64, "batch_size": 32, "n_epochs": 1},
        "timesteps": {"generalist": 128, "specialist": 64},
        "checkpoints": {"every": 64, "keep_last": 1, "keep_best": 0},
        "seed": 3,
    }
    document.update(changes)
    path = directory / "rl.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path
