"""Env/engine parity: a fixed action sequence replayed in the training env
(:class:`models.rl.env.TradingEnv`) and in a real BacktestNode (``RLEnsembleStrategy`` with
``blend_mode: scripted``) gives the same fills and the same PnL.

The shared convention (``models.rl.fills``): the action of bar t sizes the target from the
equity at t's close, ``floor_to_lot(|a| · max_weight · equity / close_t)``, trades the difference
to the held quantity at market, fills at t's close (``fill_at: close``) or at t+1's open
(``next_open``), and pays the instrument's taker fee on the notional, rounded by the venue. The
strategy's ``sizing: notional`` with ``max_notional_fraction`` = the env's ``max_weight``
(``allocation_weight`` 1, regime affinity 1) is that rule; one strategy on the account.

Checked: every fill (bar, signed quantity, price, commission) equal, and the final equity (cash
plus the position marked at the last close) equal to 1e-6 relative. The engine's strategy can
decide only once the base's ATR is warm, so the script starts with zeros and the env episode
starts at ``START``.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from catalogs.ingest import ingest_files
from catalogs.validation import ValidationConfig
from grodt.nodes.backtest import run_backtest
from grodt.test_kit.fill_reference import daily_bars
from models.rl.env import TradingEnv
from models.rl.fills import ExecutionModel
from models.rl.observation import ObservationSpec
from models.rl.safety import RiskLimits
from node_configs.loader import load_backtest_config

INSTRUMENT = "SYN.XNAS"
BAR_TYPE = f"{INSTRUMENT}-1-DAY-LAST-EXTERNAL"
FEE = 0.0001
CASH = 100_000.0
DAYS = 90
START = 20  # first decision bar (the base's ATR(14) is warm by then)
END = DAYS - 1  # the env's window end: decisions on START..END-1, equity marked at END
MAX_WEIGHT = 0.8
SPEC_YAML = f"""\
kind: equity
id: {INSTRUMENT}
currency: USD
price_precision: 2
lot_size: 1
maker_fee: {FEE}
taker_fee: {FEE}
timezone: America/New_York
session_close: "16:00"
"""


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> tuple[pd.DataFrame, Path]:
    root = tmp_path_factory.mktemp("rl-parity")
    bars = daily_bars(days=DAYS, seed=23)
    csv = root / "syn.csv"
    bars.to_csv(csv, date_format="%Y-%m-%d")
    (root / "syn.yaml").write_text(SPEC_YAML)
    ingest_files([csv], root / "syn.yaml", root / "catalog", config=ValidationConfig(label="close"))
    return bars, root / "catalog"


def script(long_only: bool, seed: int = 5) -> list[float]:
    """Zeros before START, then random targets (some flat, some flips, some tiny)."""
    rng = np.random.default_rng(seed)
    actions = rng.uniform(0.0 if long_only else -1.0, 1.0, END - START).round(3)
    actions[::7] = 0.0  # flat now and then: exits through the base
    actions[3::11] = 0.004  # rounds to zero units: an exit too
    return [0.0] * START + [float(a) for a in actions]


def env_replay(
    bars: pd.DataFrame, actions: list[float], account: str, fill_at: str
) -> tuple[list[tuple[int, float, float, float]], float]:
    """The env's fills ``(bar, signed qty, price, commission)`` and final equity."""
    observation = ObservationSpec(("unused",), include_position=True)
    env = TradingEnv(
        features=np.zeros((len(bars), 1)),
        opens=bars["open"].to_numpy(),
        closes=bars["close"].to_numpy(),
        windows=np.array([[START, END]]),
        observation=observation,
        execution=ExecutionModel(
            fee_rate=FEE,
            fill_at=fill_at,  # type: ignore[arg-type]
            account_type=account,  # type: ignore[arg-type]
        ),
        limits=RiskLimits(max_weight=MAX_WEIGHT, allow_short=account == "margin"),
        initial_cash=CASH,
        record_fills=True,
    )
    env.reset(options={"window": (START, END)})
    info: dict[str, Any] = {}
    for t in range(START, END):
        _, _, terminated, truncated, info = env.step(np.array([actions[t]], dtype=np.float32))
        assert not terminated
    assert truncated
    return [(bar, qty, price, fee) for bar, qty, price, fee in env.fills], info["equity"]


def engine_replay(
    catalog: Path, actions: list[float], account: str, fill_at: str, run_dir: Path
) -> tuple[dict[str, Any], pd.DataFrame]:
    """The engine's run summary and fills report."""
    document = {
        "name": f"rl_parity_{account}_{fill_at}",
        "venues": [
            {
                "name": "XNAS",
                "oms_type": "NETTING",
                "account_type": account.upper(),
                "base_currency": "USD",
                "starting_balances": [f"{CASH:.0f} USD"],
                "fill_at": fill_at,
            },
        ],
        "data": [{"bar_types": [BAR_TYPE]}],
        "strategies": [
            {
                "path": "strategies.rl_ensemble:RLEnsembleStrategy",
                "config": {
                    "instrument_id": INSTRUMENT,
                    "bar_type": BAR_TYPE,
                    "blend_mode": "scripted",
                    "scripted_actions": actions,
                    "execution": "target",
                    "sizing": "notional",
                    "max_notional_fraction": MAX_WEIGHT,
                    "allow_short": account == "margin",
                    "close_positions_on_stop": False,  # the env marks the open position
                },
            },
        ],
        "logging": {"level": "ERROR", "file_level": "OFF"},
    }
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / "node.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    outcome = run_backtest(load_backtest_config(path), catalog, run_dir / "run", quiet=True)
    return outcome.summary, pd.read_csv(run_dir / "run" / "fills.csv")


def engine_fills(fills: pd.DataFrame, bars: pd.DataFrame) -> list[tuple[int, float, float, float]]:
    days = {day: i for i, day in enumerate(bars.index)}
    fills = fills.sort_values("ts_event", kind="stable")
    out = []
    for row in fills.itertuples():
        day = pd.Timestamp(row.ts_event).tz_convert("America/New_York").normalize()
        side = 1.0 if row.order_side == "BUY" else -1.0
        out.append(
            (
                days[day.tz_localize(None)],
                side * float(row.last_qty),
                float(row.last_px),
                float(str(row.commission).split()[0]),
            ),
        )
    return out


@pytest.mark.parametrize(
    ("account", "fill_at"),
    [("margin", "close"), ("margin", "next_open"), ("cash", "close")],
)
def test_scripted_actions_give_the_same_fills_and_pnl(account, fill_at, market, tmp_path):
    bars, catalog = market
    actions = script(long_only=account == "cash")
    env_fills, env_equity = env_replay(bars, actions, account, fill_at)
    summary, fills = engine_replay(catalog, actions, account, fill_at, tmp_path)

    assert len(env_fills) > 30  # the script trades most bars (flips and exits included)
    assert engine_fills(fills, bars) == env_fills
    engine_equity = summary["engine_final_equity"]
    assert engine_equity == pytest.approx(env_equity, rel=1e-6)
    assert engine_equity != pytest.approx(CASH, rel=1e-4)  # it did trade
