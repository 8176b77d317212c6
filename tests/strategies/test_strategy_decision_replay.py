"""Decision replay of a rule strategy's records outside the bar's rules: the exit a strategy takes
at its stop (``path: stop``) replays its framework path (side, quantity, type, time in force,
signal) with the recorded reason as the input; its entry replays the S1 rule and the sizing."""

from pathlib import Path

import yaml
from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS
from strategies_kit import make_bars
from strategies_kit import run

from grodt.forensics.decision_replay import replay_decisions
from grodt.forensics.ope_logs import write_records
from strategies.decisions import DECISION_PATHS
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig

VOLUME = 1000.0
UPTREND = [(c - 0.2, c + 0.3, c - 0.3, float(c), VOLUME) for c in range(100, 108)]
PULLBACK = (107.2, 107.3, 106.4, 107.0, VOLUME)  # S1 enters long at its close
HOLD = (107.0, 107.4, 106.9, 107.1, VOLUME)


def test_the_exit_at_the_strategy_stop_replays_its_framework_path(tmp_path: Path):
    values = {
        "instrument_id": str(INSTRUMENT_ID),
        "bar_type": str(MINUTE_BARS),
        "ema_period": 3,
        "atr_period": 3,
        "stop_atr_multiple": 1.0,
        "risk_reward_ratio": 1.5,
    }
    strategy = S1VwapEmaScalper(
        S1VwapEmaScalperConfig(
            **{**values, "instrument_id": INSTRUMENT_ID, "bar_type": MINUTE_BARS},
        ),
    )
    result = run([strategy], make_bars([*UPTREND, PULLBACK, HOLD]))
    actions = [(r.action, r.reason) for r in result.decisions]
    assert actions == [("entry", "vwap_ema_pullback_long"), ("exit", "strategy_stop")]
    assert result.decisions[1].sizing_inputs["path"] == DECISION_PATHS["stop"]
    document = {
        "strategies": [
            {"path": "strategies.s1_vwap_ema_scalper:S1VwapEmaScalper", "config": values}
        ]
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(document))
    write_records(tmp_path, result.decisions, session="0000000000000000001-00000001")
    results, not_replayable, _ = replay_decisions(tmp_path)
    assert not_replayable == []
    assert [(r.policy, r.equal) for r in results] == [
        ("entry", True),
        ("exit, framework only", True),
    ], results
