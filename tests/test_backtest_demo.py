"""The demo backtests end to end on the real S&P 500 sample: the EMA-cross example's exact
figures, determinism and CLI; the full-stack demo (`make demo`) on a short window: every
component leaves its records, the summary and tearsheet show them, two runs are identical."""

import json
import math
from decimal import ROUND_HALF_EVEN
from decimal import Decimal
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from stable_baselines3 import PPO

from catalogs.reader import read_bars_frame
from grodt.cli import main
from grodt.forensics.reader import read_run
from grodt.nodes.backtest import run_backtest
from grodt.reports.tearsheet import build_sections
from grodt.reports.tearsheet import load_run
from models.rl.actions import action_space
from models.rl.observation import ObservationSpec
from models.rl.specialists import save_specialists
from node_configs.loader import load_backtest_config
from research.features import FeatureSet
from research.features import compute_batch

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "node_configs" / "backtest" / "ema_cross_sp500.yaml"
FULL_STACK = REPO / "node_configs" / "backtest" / "full_stack_sp500.yaml"
BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
STRATEGY_IDS = {
    "S1VwapEmaScalper-001",
    "S2MeanReversion-002",
    "S3Breakout-003",
    "RLEnsembleStrategy-004",
}


def simulate_ema_cross(
    closes: list[float],
    fast: int,
    slow: int,
    equity_fraction: float,
    fee_rate: Decimal,
    starting_cash: Decimal,
) -> tuple[list[tuple[int, int, Decimal, Decimal]], Decimal]:
    """An independent re-implementation of the demo: Nautilus EMA semantics (seeded with the first
    close, alpha = 2/(n+1), initialised after n bars), long-only crosses, fills at the signal bar's
    close, taker fee rounded to cents (half-even). Returns fills (bar index, signed qty, price,
    commission) and final equity."""
    alpha_fast, alpha_slow = 2 / (fast + 1), 2 / (slow + 1)
    ema_fast = ema_slow = None
    cash, quantity, previous_trend = starting_cash, 0, 0
    fills = []
    for index, close in enumerate(closes):
        ema_fast = close if ema_fast is None else alpha_fast * close + (1 - alpha_fast) * ema_fast
        ema_slow = close if ema_slow is None else alpha_slow * close + (1 - alpha_slow) * ema_slow
        if index + 1 < slow:
            continue
        trend = 1 if ema_fast > ema_slow else -1
        crossed = previous_trend != 0 and trend != previous_trend
        previous_trend = trend
        if not crossed:
            continue
        price = Decimal(str(close))
        target = int(cash * Decimal(str(equity_fraction)) // price) if trend > 0 else 0
        delta = target - quantity
        if delta == 0:
            continue
        commission = (abs(delta) * price * fee_rate).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_EVEN
        )
        cash -= delta * price + commission
        quantity += delta
        fills.append((index, delta, price, commission))
    return fills, cash + quantity * Decimal(str(closes[-1]))


@pytest.fixture(scope="module")
def demo_run(sp500_catalog, tmp_path_factory):
    spec = load_backtest_config(DEMO)
    return run_backtest(spec, sp500_catalog, tmp_path_factory.mktemp("demo-run"), quiet=True)


def test_demo_matches_an_independent_simulation(demo_run, sp500_catalog):
    spec = load_backtest_config(DEMO)
    config = spec.strategies[0].config
    bars = read_bars_frame(sp500_catalog, BAR_TYPE)
    expected_fills, expected_equity = simulate_ema_cross(
        bars["close"].tolist(),
        fast=config["fast_ema_period"],
        slow=config["slow_ema_period"],
        equity_fraction=config["equity_fraction"],
        fee_rate=Decimal("0.0001"),
        starting_cash=Decimal(1_000_000),
    )
    summary = demo_run.summary
    assert len(expected_fills) > 20  # a real run, not a degenerate one
    assert summary["fills"] == len(expected_fills)
    assert summary["trades"] == len(expected_fills) // 2
    assert summary["final_equity"] == pytest.approx(float(expected_equity), abs=0.005)
    assert summary["engine_final_equity"] == pytest.approx(float(expected_equity), abs=0.005)
    assert summary["total_return"] == pytest.approx(float(expected_equity) / 1e6 - 1, abs=1e-9)

    fills = demo_run.fills
    times = bars.index[[index for index, *_ in expected_fills]]
    assert list(fills["ts_event"]) == list(times)
    assert list(fills["signed_qty"]) == [float(qty) for _, qty, _, _ in expected_fills]
    assert list(fills["price"]) == [float(price) for _, _, price, _ in expected_fills]
    assert list(fills["commission"]) == pytest.approx([float(c) for *_, c in expected_fills])


def test_summary_statistics_follow_from_the_equity_curve(demo_run):
    summary = demo_run.summary
    equity = pd.read_parquet(demo_run.run_dir / "equity.parquet")["equity"]
    daily = equity.groupby(equity.index.normalize()).last()
    returns = daily / daily.shift(1).fillna(1_000_000.0) - 1
    sharpe = returns.mean() / returns.std(ddof=1) * math.sqrt(252)
    assert summary["sharpe"] == pytest.approx(sharpe, rel=1e-9)
    running_peak = pd.concat([pd.Series([1_000_000.0]), daily.reset_index(drop=True)]).cummax()
    drawdown = daily.reset_index(drop=True) / running_peak.iloc[1:].reset_index(drop=True) - 1
    assert summary["max_drawdown"] == pytest.approx(drawdown.min(), rel=1e-9)
    assert summary["periods_per_year"] == 252
    assert summary["bars"] == 5031
    for name in ("fills", "orders", "positions", "account_SAMPLE", "equity", "equity_daily"):
        assert Path(summary["reports"][name]).is_file()


def test_two_runs_give_identical_fills(demo_run, sp500_catalog, tmp_path):
    again = run_backtest(load_backtest_config(DEMO), sp500_catalog, tmp_path, quiet=True)
    first = pd.read_csv(demo_run.reports["fills"])
    second = pd.read_csv(again.reports["fills"])
    columns = [
        "client_order_id",
        "venue_order_id",
        "trade_id",
        "order_side",
        "last_qty",
        "last_px",
        "commission",
        "ts_event",
    ]
    pd.testing.assert_frame_equal(first[columns], second[columns])


def test_cli_json_prints_only_the_summary(sp500_catalog, tmp_path):
    result = CliRunner().invoke(
        main,
        [
            "backtest",
            str(DEMO),
            "--catalog",
            str(sp500_catalog),
            "--run-dir",
            str(tmp_path),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["name"] == "ema_cross_sp500"
    assert summary["run_dir"] == str(tmp_path)
    assert (tmp_path / "summary.json").is_file()


def test_cli_reports_a_missing_catalog(tmp_path):
    result = CliRunner().invoke(main, ["backtest", str(DEMO), "--catalog", str(tmp_path / "no")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_chunked_catalog_streaming_gives_the_same_run(demo_run, sp500_catalog, tmp_path):
    spec = load_backtest_config(DEMO).model_copy(update={"chunk_size": 1000})
    streamed = run_backtest(spec, sp500_catalog, tmp_path, quiet=True)
    assert streamed.summary["bars_processed"] == demo_run.summary["bars_processed"]
    assert streamed.summary["fills"] == demo_run.summary["fills"]
    assert streamed.summary["final_equity"] == demo_run.summary["final_equity"]


# -- the full-stack demo (make demo) on a short window --------------------------------------------


class _SpacesOnly(gym.Env):
    """The spaces SB3 needs to build a policy; these specialists are never trained."""

    def __init__(self, n_obs: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (n_obs,), np.float32)
        self.action_space = action_space("continuous")

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return np.zeros(self.observation_space.shape, np.float32), {}

    def step(self, action):
        return np.zeros(self.observation_space.shape, np.float32), 0.0, True, False, {}


def make_demo_specialists(directory: Path, catalog: Path) -> Path:
    """Seeded, untrained PPO specialists on the demo's feature set (the observation scaled on the
    sample's 1999-2012 rows, as `grodt rl train` does), saved the way `grodt rl train` saves
    them. Their head is scaled up so that their actions move with the features."""
    feature_set = FeatureSet.from_yaml(REPO / "node_configs" / "rl" / "features_daily.yaml")
    bars = read_bars_frame(catalog, BAR_TYPE)
    batch = compute_batch(bars.loc[:"2012-12-31"], feature_set)
    spec = ObservationSpec(feature_set.columns, feature_set=feature_set.name).fit(batch.to_numpy())
    models = {}
    for i, label in enumerate(("bull", "bear", "sideways")):
        model = PPO("MlpPolicy", _SpacesOnly(spec.n_obs), n_steps=8, batch_size=8, seed=5 + i)
        with torch.no_grad():
            model.policy.action_net.weight.mul_(50.0)
        models[label] = model
    save_specialists(directory, models, "PPO", "continuous", spec, extra={"seed": 5})
    return directory


def full_stack_overrides(specialists: Path) -> list[str]:
    """Two years with S3 breakouts in them; the regime model's first fit after one year of bars
    (instead of three) so that the window has fitted regimes."""
    return [
        "start=2000-06-01",
        "end=2002-05-31",
        "actors[0].config.walk_forward.min_train_bars=250",
        f"strategies[3].config.specialists={specialists}",
    ]


@pytest.fixture(scope="module")
def full_stack_run(sp500_catalog, tmp_path_factory):
    """One short full-stack run through the CLI, tracked into a SQLite store in tmp."""
    root = tmp_path_factory.mktemp("full-stack")
    specialists = make_demo_specialists(root / "specialists", sp500_catalog)
    run_dir = root / "run"
    arguments = ["backtest", str(FULL_STACK), "--catalog", str(sp500_catalog)]
    for override in full_stack_overrides(specialists):
        arguments += ["--set", override]
    arguments += ["--run-dir", str(run_dir), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}"]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    return {"root": root, "specialists": specialists, "run_dir": run_dir, "output": result.output}


def test_full_stack_demo_config_checks(sp500_catalog):
    arguments = ["config", "check", str(FULL_STACK), "--catalog", str(sp500_catalog)]
    result = CliRunner().invoke(main, arguments)
    assert result.exit_code == 0, result.output
    spec = load_backtest_config(FULL_STACK)
    assert {s.config["order_id_tag"] for s in spec.strategies} == {"001", "002", "003", "004"}
    meta = spec.actors[1].config
    assert meta["policy"] == "bandit"
    assert set(meta["static_weights"]) == STRATEGY_IDS
    assert spec.risk is not None and spec.forensics is not None
    assert spec.benchmark == BAR_TYPE


def test_full_stack_demo_runs_every_component(full_stack_run):
    run_dir = full_stack_run["run_dir"]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert set(summary["strategies"]) == STRATEGY_IDS
    assert summary["benchmark"]["total_return"] is not None
    risk = summary["extensions"]["risk"]
    assert risk["verdicts"]["approve"] > 0
    forensics = summary["extensions"]["forensics"]
    assert forensics["sink"] == "parquet" and forensics["undelivered"] == 0
    assert forensics["delivered"] == forensics["enqueued"] > 0

    records = read_run(run_dir)
    by_topic: dict[str, list] = {}
    for stored in records:
        by_topic.setdefault(stored.topic, []).append(stored.record)
    decisions = by_topic["grodt.forensics.decisions"]
    assert {d.strategy_id for d in decisions} == STRATEGY_IDS
    rl = [d for d in decisions if d.strategy_id == "RLEnsembleStrategy-004"]
    assert all(set(d.specialist_actions) == {"bull", "bear", "sideways"} for d in rl)
    # the RL blend follows fitted regimes, not only the neutral prior
    assert any(d.model_versions.get("regime") not in (None, "", "prior") for d in rl)
    allocations = by_topic["grodt.forensics.allocations"]
    assert {a.policy for a in allocations} >= {"bandit"}
    bandit = [a for a in allocations if a.policy == "bandit"]
    assert all(set(a.weights) == STRATEGY_IDS and 0 < a.propensity <= 1 for a in bandit)
    assert len(by_topic["grodt.forensics.regime"]) > 0
    assert (
        len(by_topic["grodt.forensics.risk"])
        == risk["verdicts"]["approve"] + risk["verdicts"]["resize"] + risk["verdicts"]["deny"]
    )
    # decisions carry the allocation that sized them
    traced = {a.trace_id for a in allocations}
    assert any(d.allocation_trace_id in traced for d in decisions)

    output = full_stack_run["output"]
    assert "Tracking: MLflow run" in output and "Benchmark SPX.SAMPLE" in output
    assert (run_dir / "tearsheet.html").is_file()
    sections = {section.key for section in build_sections(load_run(run_dir))}
    assert {"equity", "regime", "allocation", "risk"} <= sections


def test_full_stack_demo_is_deterministic(full_stack_run, sp500_catalog, tmp_path):
    spec = load_backtest_config(FULL_STACK, full_stack_overrides(full_stack_run["specialists"]))
    again = run_backtest(spec, sp500_catalog, tmp_path, quiet=True)
    first_dir = full_stack_run["run_dir"]
    columns = ["client_order_id", "order_side", "last_qty", "last_px", "commission", "ts_event"]
    pd.testing.assert_frame_equal(
        pd.read_csv(first_dir / "fills.csv")[columns], pd.read_csv(again.reports["fills"])[columns]
    )
    first = json.loads((first_dir / "summary.json").read_text())
    assert again.summary["final_equity"] == first["final_equity"]

    def weights(run: Path) -> list[dict[str, float]]:
        return [s.record.weights for s in read_run(run, topics=["grodt.forensics.allocations"])]

    assert weights(first_dir) == weights(tmp_path)
