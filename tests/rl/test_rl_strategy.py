"""RLEnsembleStrategy in a real BacktestNode: SB3 specialists saved with a fixed seed load and
trade, the blend modes weigh them as documented, streaming features reach the policy equal to
the batch features, and bad specialists or inputs fail (or fall back) as documented.

The specialists are SB3 PPO MLP policies built with a fixed seed and never trained; the mode
tests set their action heads to constants (bull +0.8, bear -0.6, sideways +0.2) so that every
blended action is known from the regime records alone.
"""

import json
import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from ensemble_kit import BAR_TYPE
from ensemble_kit import FEATURE_SET_NAME
from ensemble_kit import INSTRUMENT
from ensemble_kit import feature_batch
from ensemble_kit import ingest_daily
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from stable_baselines3 import PPO

from grodt.core.errors import ConfigError
from grodt.core.errors import GrodtError
from grodt.core.messages import RegimeProbabilities
from grodt.core.records import DecisionRecord
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from grodt.nodes.parity import run_parity
from grodt.tracking.registry import register_model
from models.regime.catalog_io import replay_data_config
from models.regime.catalog_io import write_regime_records
from models.rl.actions import action_space
from models.rl.observation import ObservationSpec
from models.rl.specialists import MANIFEST_FILE
from models.rl.specialists import SpecialistsError
from models.rl.specialists import SpecialistSet
from models.rl.specialists import save_specialists
from node_configs.loader import load_backtest_config
from strategies.rl_ensemble import RLEnsembleStrategy
from strategies.rl_ensemble import RLEnsembleStrategyConfig
from strategies.rl_ensemble import blend_weights
from strategies.rl_ensemble import load_scripted_actions

DAYS = 120
CONSTANT = {"bull": 0.8, "bear": -0.6, "sideways": 0.2}


class _SpacesOnly(gym.Env):
    """The spaces SB3 needs to build a policy; these models are never trained."""

    def __init__(self, n_obs: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = action_space("continuous")

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}


def make_specialists(
    directory: Path,
    spec: ObservationSpec,
    constants: dict[str, float] | None,
    seed: int = 3,
) -> Path:
    """PPO specialists per label: constant actions (head weights 0, bias = the constant), or
    with ``constants=None`` feature-dependent ones (the seeded head scaled up 50x)."""
    models = {}
    for i, label in enumerate(("bull", "bear", "sideways")):
        model = PPO(
            "MlpPolicy",
            _SpacesOnly(spec.n_obs),
            n_steps=8,
            batch_size=8,
            seed=seed + i,
            device="cpu",
        )
        head = model.policy.action_net
        with torch.no_grad():
            if constants is None:
                head.weight.mul_(50.0)
            else:
                head.weight.zero_()
                head.bias.fill_(constants[label])
        models[label] = model
    save_specialists(directory, models, "PPO", "continuous", spec, extra={"seed": seed})
    return directory


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A seeded daily file ingested into a catalog, regime records for it (bull, bear, then
    sideways thirds), the feature set and two specialist directories."""
    root = tmp_path_factory.mktemp("rl-strategy")
    catalog, regime_catalog = ingest_daily(root, DAYS, 11, "catalog", "regime_catalog")
    engine_bars = ParquetDataCatalog(str(catalog)).bars(bar_types=[BAR_TYPE])
    stamps = [bar.ts_event for bar in engine_bars]
    thirds = [(0.7, 0.2, 0.1, "bull"), (0.1, 0.8, 0.1, "bear"), (0.2, 0.2, 0.6, "sideways")]
    records = []
    for i, ts in enumerate(stamps):
        p_bull, p_bear, p_sideways, label = thirds[min(2, 3 * i // len(stamps))]
        records.append(
            RegimeProbabilities(
                instrument_id=InstrumentId.from_str(INSTRUMENT),
                p_bull=p_bull,
                p_bear=p_bear,
                p_sideways=p_sideways,
                most_likely=label,
                entropy=0.0,
                model_version="scripted-test",
                ts_event=ts,
                ts_init=ts,
            ),
        )
    write_regime_records(regime_catalog, records, INSTRUMENT)
    features_yaml, feature_set, batch = feature_batch(root, engine_bars)
    spec = ObservationSpec(feature_set.columns, feature_set=FEATURE_SET_NAME).fit(batch.to_numpy())
    constant = make_specialists(root / "constant", spec, CONSTANT)
    varying = make_specialists(root / "varying", spec, None)
    return {
        "root": root,
        "catalog": catalog,
        "regime_catalog": regime_catalog,
        "features_yaml": features_yaml,
        "batch": batch,
        "records": {r.ts_event: r for r in records},
        "constant": constant,
        "varying": varying,
        "stamps": stamps,
    }


def document(strategy: dict[str, Any], regime: bool, name: str = "rl") -> dict[str, Any]:
    data: list[dict[str, Any]] = [{"bar_types": [BAR_TYPE]}]
    if regime:  # listed first: each bar's record reaches the strategy before the bar
        data.insert(0, replay_data_config(INSTRUMENT))
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
        "data": data,
        "strategies": [{"path": "strategies.rl_ensemble:RLEnsembleStrategy", "config": config}],
        "forensics": {"sink": "auto"},
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }


def run(market: dict[str, Any], strategy: dict[str, Any], tmp_path: Path, regime: bool = True):
    """Run the node; returns (decision records, fills frame, summary)."""
    doc = document(strategy, regime)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    spec = load_backtest_config(path)
    catalog = market["regime_catalog"] if regime else market["catalog"]
    outcome = run_backtest(spec, catalog, tmp_path / "run", quiet=True)
    decisions = [
        r.record for r in read_run(tmp_path / "run") if isinstance(r.record, DecisionRecord)
    ]
    fills = pd.read_csv(tmp_path / "run" / "fills.csv")
    return decisions, fills, outcome.summary


def model_strategy(market: dict[str, Any], mode: str, which: str = "constant") -> dict[str, Any]:
    return {
        "blend_mode": mode,
        "specialists": str(market[which]),
        "feature_set": str(market["features_yaml"]),
    }


def expected_action(mode: str, record: RegimeProbabilities) -> float:
    p = {"bull": record.p_bull, "bear": record.p_bear, "sideways": record.p_sideways}
    if mode == "blend":
        return sum(p[label] * CONSTANT[label] for label in CONSTANT)
    if mode == "hard":
        return CONSTANT[record.most_likely]
    return sum(CONSTANT.values()) / 3.0


@pytest.mark.parametrize("mode", ["blend", "hard", "always_on"])
def test_modes_weigh_the_specialists_by_the_regime_records(mode, market, tmp_path):
    decisions, fills, _ = run(market, model_strategy(market, mode), tmp_path)
    assert decisions and len(fills) >= 1
    for record in decisions:
        if record.reason == "strategy_stop":
            continue
        regime = market["records"][record.ts_event]
        assert record.blended_action == pytest.approx(expected_action(mode, regime), abs=1e-6)
        assert record.specialist_actions == pytest.approx(CONSTANT, abs=1e-6)
        assert sum(record.blend_weights.values()) == pytest.approx(1.0)
        assert record.model_versions["specialists"] != "scripted"
        assert record.intended_order is not None
    # The position follows the blended action's sign: in the bear third hard switching (-0.6)
    # and the blend (-0.38) go short; the always-on book (+0.133) stays long throughout.
    assert _went_short(fills) == (mode != "always_on")


def _went_short(fills: pd.DataFrame) -> bool:
    fills = fills.sort_values("ts_event", kind="stable")
    signed = np.where(fills["order_side"] == "BUY", 1.0, -1.0) * fills["last_qty"].astype(float)
    return bool((np.cumsum(signed) < 0).any())


@pytest.mark.parametrize("inference", ["torch", "numpy"])
def test_streaming_features_reach_the_policy_equal_to_the_batch_features(
    inference, market, tmp_path
):
    """Offline check of every decision: batch features of the bar → the observation →
    ``SpecialistSet.predict`` (torch) equals what the strategy proposed, with either runtime."""
    strategy = {**model_strategy(market, "blend", "varying"), "inference": inference}
    decisions, fills, _ = run(market, strategy, tmp_path)
    specialists = SpecialistSet.load(market["varying"])
    batch = market["batch"]
    checked = 0
    for record in decisions:
        if not record.specialist_actions:
            continue
        row = batch.loc[pd.Timestamp(record.ts_event, tz="UTC")]
        for name in batch.columns:
            assert record.features[name] == pytest.approx(row[name], rel=1e-9, abs=1e-12)
        observation = specialists.observation.build(
            row.to_numpy(), record.features["observed_position"]
        )
        offline = specialists.predict(observation)
        assert record.specialist_actions == pytest.approx(offline, abs=1e-6)
        checked += 1
    assert checked >= 10 and len(fills) >= 10
    # Feature-dependent specialists: the proposals change from bar to bar.
    assert len({round(r.blended_action, 6) for r in decisions if r.blended_action}) > 5


def test_without_regime_records_the_blend_is_the_always_on_blend(market, tmp_path):
    """Documented fallback: before (or without) regime records the base holds the neutral prior,
    so ``blend`` weighs the specialists equally and ``hard`` falls back to equal weights."""
    blend, blend_fills, _ = run(market, model_strategy(market, "blend"), tmp_path / "b", False)
    hard, hard_fills, _ = run(market, model_strategy(market, "hard"), tmp_path / "h", False)
    _, always_fills, _ = run(market, model_strategy(market, "always_on"), tmp_path / "a")
    equal = sum(CONSTANT.values()) / 3.0
    for record in [*blend, *hard]:
        if record.reason != "strategy_stop":
            assert record.blended_action == pytest.approx(equal, abs=1e-6)
            assert record.blend_weights == pytest.approx(dict.fromkeys(CONSTANT, 1 / 3))
    columns = ["ts_event", "order_side", "last_qty", "last_px"]
    assert blend_fills[columns].equals(always_fills[columns])
    assert hard_fills[columns].equals(always_fills[columns])


def test_blend_weights_modes():
    labels = ("bull", "bear", "sideways")
    p = {"bull": 0.5, "bear": 0.3, "sideways": 0.2}
    assert blend_weights("blend", labels, p, "bull") == pytest.approx(p)
    assert blend_weights("hard", labels, p, "bear") == {"bull": 0.0, "bear": 1.0, "sideways": 0.0}
    assert blend_weights("hard", labels, p, None) == {"bull": 1.0, "bear": 0.0, "sideways": 0.0}
    tie = dict.fromkeys(labels, 1 / 3)
    assert blend_weights("hard", labels, tie, None) == pytest.approx(tie)
    assert blend_weights("always_on", labels, p, "bull") == pytest.approx(tie)
    # Specialists for two labels only: the weights are renormalised over them.
    assert blend_weights("blend", ("bull", "bear"), p, None) == pytest.approx(
        {"bull": 0.625, "bear": 0.375}
    )


def _config(**kwargs: Any) -> RLEnsembleStrategyConfig:
    return RLEnsembleStrategyConfig(
        instrument_id=InstrumentId.from_str(INSTRUMENT),
        bar_type=BarType.from_str(BAR_TYPE),
        **kwargs,
    )


def test_bad_specialists_directory_names_the_file_and_field(market, tmp_path):
    features = str(market["features_yaml"])
    # Through a node: the build fails with a ConfigError (``grodt backtest``: "error: ...").
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"empty/manifest\.json: no manifest") as caught:
        run(market, {**model_strategy(market, "blend"), "specialists": str(empty)}, tmp_path)
    assert isinstance(caught.value.__cause__, SpecialistsError)
    broken = tmp_path / "broken"
    broken.mkdir()
    manifest = json.loads((market["constant"] / MANIFEST_FILE).read_text())
    del manifest["action_kind"]
    (broken / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"broken/manifest\.json: missing field 'action_kind'"):
        RLEnsembleStrategy(_config(specialists=str(broken), feature_set=features))
    manifest["action_kind"] = "continuous"
    (broken / MANIFEST_FILE).write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"bull: no file .*broken/bull\.zip"):
        RLEnsembleStrategy(_config(specialists=str(broken), feature_set=features))
    other = tmp_path / "other.yaml"
    other.write_text("features:\n  - {kind: rsi, period: 14}\n")
    with pytest.raises(ConfigError, match=r"other\.yaml does not compute \['log_return_1'"):
        RLEnsembleStrategy(_config(specialists=str(market["constant"]), feature_set=str(other)))
    with pytest.raises(ValueError, match="specialists: required with blend_mode 'blend'"):
        _config(feature_set=features)
    with pytest.raises(GrodtError, match="rl_absent"):
        RLEnsembleStrategy(_config(specialists="rl_absent@champion", feature_set=features))


def test_a_registry_reference_loads_the_registered_specialists(market):
    """``specialists: name@alias`` resolves through the tracking registry (a real SQLite MLflow
    store in the suite's runs directory) and the decisions cite ``name/<version>``."""
    specialists = SpecialistSet.load(market["constant"])
    register_model(specialists, "rl_strategy_test", aliases=["champion"], filename="specialists")
    strategy = RLEnsembleStrategy(
        _config(specialists="rl_strategy_test@champion", feature_set=str(market["features_yaml"]))
    )
    assert strategy.specialists is not None
    assert strategy.specialists.labels == ("bull", "bear", "sideways")
    assert strategy.specialists_version.startswith("rl_strategy_test/")


def test_scripted_actions_file_errors_name_the_row(tmp_path):
    good = tmp_path / "actions.txt"
    good.write_text("# warm-up\n0\n0.5\n\n-1\n")
    assert load_scripted_actions(good) == (0.0, 0.5, -1.0)
    bad = tmp_path / "bad.txt"
    bad.write_text("0\n0.5\nhalf\n")
    with pytest.raises(ValueError, match=r"bad\.txt: line 3: 'half' is not a number"):
        load_scripted_actions(bad)
    outside = tmp_path / "outside.json"
    outside.write_text("[0, 0.2, 1.5]")
    with pytest.raises(ValueError, match=r"outside\.json: index 2: action 1\.5 is not in"):
        load_scripted_actions(outside)
    with pytest.raises(ValueError, match=r"scripted_actions\[1\]: action nan"):
        _config(blend_mode="scripted", scripted_actions=[0.0, math.nan])
    with pytest.raises(ValueError, match="exactly one of scripted_actions"):
        _config(blend_mode="scripted")


def test_backtest_and_paper_node_are_identical_with_the_specialists(market, tmp_path):
    """The model path (streaming features, the regime actor's probabilities, torch-checked numpy
    inference, target orders) in a BacktestNode and in the lockstep paper TradingNode."""
    doc = document(model_strategy(market, "blend", "varying"), regime=False, name="rl_parity")
    doc["actors"] = [
        {
            "path": "actors.regime_actor:RegimeActor",
            "config": {
                "bar_types": [BAR_TYPE],
                "walk_forward": {
                    "features": ["log_return"],
                    "covariance_type": "diag",
                    "train_bars": 60,
                    "refit_every": 20,
                },
            },
        },
    ]
    path = tmp_path / "node.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    report = run_parity(load_backtest_config(path), tmp_path / "parity", market["catalog"])
    assert report.identical, report.first_divergence
    assert report.fills[0] == report.fills[1] >= 10
    decisions = [
        r.record
        for r in read_run(tmp_path / "parity" / "paper")
        if isinstance(r.record, DecisionRecord)
    ]
    # The regime actor's records reached the blend: the weights are not all equal.
    assert any(max(r.blend_weights.values()) > 0.34 for r in decisions if r.blend_weights)


def test_bracket_execution_enters_through_the_base_and_exits_on_a_sign_change(market, tmp_path):
    """``execution: bracket``: entries are the base's brackets sized by strength ``|a|``; a
    blended action of the other sign exits (bull third +0.46 long, bear third -0.38 short,
    sideways third +0.16 long again)."""
    strategy = {**model_strategy(market, "blend"), "execution": "bracket", "risk_reward_ratio": 5}
    decisions, fills, _ = run(market, strategy, tmp_path)
    orders = pd.read_csv(tmp_path / "run" / "orders.csv")
    assert {"STOP_MARKET", "LIMIT"} <= set(orders["type"])
    entries = [r for r in decisions if r.action == "entry"]
    exits = [r for r in decisions if r.action == "exit" and r.reason == "policy_blend"]
    strengths = [round(r.signal.strength, 6) for r in entries]
    assert strengths[0] == 0.46 and -0.38 in strengths  # (stops may re-enter in between)
    assert set(strengths) <= {0.46, -0.38, 0.16}
    assert exits and all(r.blended_action is not None for r in exits)
    assert _went_short(fills)


@pytest.mark.parametrize("on_model_error", ["hold", "flat"])
def test_a_specialist_that_returns_nan_is_a_logged_model_error_not_a_trade(
    on_model_error, market, tmp_path
):
    """A real SB3 specialist whose action head outputs NaN: every bar is a model error (the run
    finishes, nothing is traded on a NaN, no decision carries a proposal), where the same
    specialists with a finite bear head trade (the mode tests)."""
    spec = SpecialistSet.load(market["constant"]).observation
    broken = make_specialists(tmp_path / "nan", spec, {**CONSTANT, "bear": math.nan})
    strategy = {
        "blend_mode": "blend",
        "specialists": str(broken),
        "feature_set": str(market["features_yaml"]),
        "on_model_error": on_model_error,
    }
    decisions, fills, summary = run(market, strategy, tmp_path)
    assert len(fills) == 0
    assert not any(record.specialist_actions for record in decisions)
    assert summary["orders"] == 0
