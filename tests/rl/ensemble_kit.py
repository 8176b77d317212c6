"""A small daily market for the ensemble's engine tests: a seeded daily file ingested into a
catalog with regime records that drift between the labels (so blend weights change every bar), a
feature set, and specialists trained for a few PPO steps in the env on its first bars."""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalogs.ingest import ingest_files
from catalogs.validation import ValidationConfig
from grodt.core.messages import RegimeProbabilities
from grodt.core.records import DecisionRecord
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.fill_reference import daily_bars
from models.regime.catalog_io import replay_data_config
from models.regime.catalog_io import write_regime_records
from models.rl.env import TradingEnv
from models.rl.observation import ObservationSpec
from models.rl.specialists import save_specialists
from models.rl.training import PolicyConfig
from models.rl.training import make_vec_env
from models.rl.training import new_model
from node_configs.loader import load_backtest_config
from research.features import FeatureSet
from research.features import compute_batch

INSTRUMENT = "SYN.XNAS"
BAR_TYPE = f"{INSTRUMENT}-1-DAY-LAST-EXTERNAL"
LABELS = ("bull", "bear", "sideways")
FEATURE_SET_NAME = "rl_replay_test"
FEATURES_YAML = (
    f"name: {FEATURE_SET_NAME}\n"
    + """\
features:
  - {kind: log_return, periods: 1}
  - {kind: rsi, period: 14}
  - {kind: volatility, window: 20}
"""
)
SPEC_YAML = f"""\
kind: equity
id: {INSTRUMENT}
currency: USD
price_precision: 2
lot_size: 1
maker_fee: 0.0001
taker_fee: 0.0001
timezone: America/New_York
session_close: "16:00"
"""
TINY_PPO = PolicyConfig(net_arch=[16], n_steps=32, batch_size=32, n_epochs=1)


def ingest_daily(root: Path, days: int, seed: int, *names: str) -> list[Path]:
    """A seeded daily file of ``days`` bars (``root/syn.csv``, spec ``root/syn.yaml``) ingested
    into one catalog per name (``root/<name>``); the catalogs' paths, in order."""
    csv = root / "syn.csv"
    daily_bars(days=days, seed=seed).to_csv(csv, date_format="%Y-%m-%d")
    (root / "syn.yaml").write_text(SPEC_YAML)
    catalogs = [root / name for name in names]
    for catalog in catalogs:
        ingest_files([csv], root / "syn.yaml", catalog, config=ValidationConfig(label="close"))
    return catalogs


def feature_batch(root: Path, engine_bars: list[Any]) -> tuple[Path, FeatureSet, pd.DataFrame]:
    """The test feature set written to ``root/features.yaml``, and its batch features over
    ``engine_bars`` (rows indexed by the bars' UTC times; columns open..volume as read)."""
    features_yaml = root / "features.yaml"
    features_yaml.write_text(FEATURES_YAML)
    feature_set = FeatureSet.from_yaml(features_yaml)
    frame = pd.DataFrame(
        {
            "open": [b.open.as_double() for b in engine_bars],
            "high": [b.high.as_double() for b in engine_bars],
            "low": [b.low.as_double() for b in engine_bars],
            "close": [b.close.as_double() for b in engine_bars],
            "volume": [b.volume.as_double() for b in engine_bars],
        },
        index=pd.DatetimeIndex(pd.to_datetime([b.ts_event for b in engine_bars], utc=True)),
    )
    return features_yaml, feature_set, compute_batch(frame, feature_set)


def build_market(root: Path, days: int = 120, seed: int = 11) -> dict[str, Any]:
    """Catalog with regime records, the feature set, the batch features, bars as arrays."""
    (catalog,) = ingest_daily(root, days, seed, "catalog")
    engine_bars = ParquetDataCatalog(str(catalog)).bars(bar_types=[BAR_TYPE])
    stamps = [bar.ts_event for bar in engine_bars]
    rng = np.random.default_rng(seed)
    logits = np.cumsum(rng.normal(0.0, 0.6, (len(stamps), 3)), axis=0)
    probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    records = [
        RegimeProbabilities(
            instrument_id=InstrumentId.from_str(INSTRUMENT),
            p_bull=float(p[0]),
            p_bear=float(p[1]),
            p_sideways=1.0 - float(p[0]) - float(p[1]),
            most_likely=LABELS[int(np.argmax(p))],
            entropy=0.0,
            model_version="drifting-test",
            ts_event=ts,
            ts_init=ts,
        )
        for p, ts in zip(probabilities, stamps, strict=True)
    ]
    write_regime_records(catalog, records, INSTRUMENT)
    features_yaml, feature_set, batch = feature_batch(root, engine_bars)
    return {
        "root": root,
        "catalog": catalog,
        "features_yaml": features_yaml,
        "feature_set": feature_set,
        "batch": batch,
        "opens": np.array([b.open.as_double() for b in engine_bars]),
        "closes": np.array([b.close.as_double() for b in engine_bars]),
        "stamps": stamps,
    }


def train_specialists(
    market: dict[str, Any], directory: Path, train_bars: int, steps: int = 64, seed: int = 5
) -> Path:
    """One PPO specialist per label trained ``steps`` env steps on 20-bar episodes of the first
    ``train_bars`` bars (normalisation fitted on them), saved as a SpecialistSet."""
    features = market["batch"].to_numpy()
    spec = ObservationSpec(market["feature_set"].columns, feature_set=FEATURE_SET_NAME).fit(
        features[:train_bars]
    )
    starts = np.arange(20, train_bars - 21, 5)
    windows = np.stack([starts, starts + 20], axis=1)

    def make_env(_: int) -> TradingEnv:
        return TradingEnv(features, market["opens"], market["closes"], windows, spec)

    models = {}
    for i, label in enumerate(LABELS):
        model = new_model(TINY_PPO, make_vec_env(make_env, 1), seed=seed + i)
        model.learn(total_timesteps=steps)
        models[label] = model
    save_specialists(directory, models, "PPO", "continuous", spec, extra={"seed": seed})
    return directory


def node_document(strategy: dict[str, Any], name: str = "rl_replay") -> dict[str, Any]:
    """A BacktestNode config: regime records before bars, the ensemble on a margin account."""
    config = {
        "instrument_id": INSTRUMENT,
        "bar_type": BAR_TYPE,
        "allow_short": True,
        "order_id_tag": "900",
        **strategy,
    }
    return {
        "name": name,
        "venues": [
            {
                "name": "XNAS",
                "oms_type": "NETTING",
                "account_type": "MARGIN",
                "base_currency": "USD",
                "starting_balances": ["100000 USD"],
            },
        ],
        "data": [replay_data_config(INSTRUMENT), {"bar_types": [BAR_TYPE]}],
        "strategies": [{"path": "strategies.rl_ensemble:RLEnsembleStrategy", "config": config}],
        "forensics": {"sink": "auto"},
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }


def write_node(strategy: dict[str, Any], directory: Path) -> Path:
    """The node YAML of :func:`node_document` in ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "node.yaml"
    path.write_text(yaml.safe_dump(node_document(strategy), sort_keys=False))
    return path


def decisions_of(run: Path) -> list[DecisionRecord]:
    """The decision records of a run directory's forensics."""
    return [r.record for r in read_run(run) if isinstance(r.record, DecisionRecord)]


def run_node(
    market: dict[str, Any], strategy: dict[str, Any], directory: Path
) -> tuple[Path, list[DecisionRecord]]:
    """Run the ensemble in a BacktestNode; returns the run directory and its decisions."""
    path = write_node(strategy, directory)
    run = directory / "run"
    run_backtest(load_backtest_config(path), market["catalog"], run, quiet=True)
    return run, decisions_of(run)
