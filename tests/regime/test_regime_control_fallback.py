"""The regime actor's control fallback (a monitor's ``fallback`` on ``MODEL_CONTROL_TOPIC``)
lasts ``control_fallback_bars`` bars at most and survives a restart: the actor saves it with its
bar count (``on_save``), a restarted node loads it (``on_load``) and, after the warm-up
(``grodt.nodes.warm_up``), publishes the same records as a node that never stopped."""

import sys
from pathlib import Path

import numpy as np
import pytest
from nautilus_trader.backtest.engine import BacktestEngine
from nautilus_trader.backtest.engine import BacktestEngineConfig
from nautilus_trader.config import LoggingConfig
from nautilus_trader.model.currencies import USD
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import OmsType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.identifiers import Venue
from nautilus_trader.model.objects import Money
from nautilus_trader.persistence.catalog import ParquetDataCatalog
from regime_kit import RegimeRecorder
from regime_kit import RegimeRecorderConfig

from actors.regime_actor import RegimeActor
from actors.regime_actor import RegimeActorConfig
from grodt.nodes.warm_up import warm_up
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import fit_window

sys.path.append(str(Path(__file__).resolve().parents[1] / "lifecycle"))
from lifecycle_kit import ControlInjector
from lifecycle_kit import ControlInjectorConfig

INSTRUMENT = "REG.TEST"
BAR_TYPE = "REG.TEST-1-MINUTE-LAST-EXTERNAL"
REQUEST_BAR = 500
"""The bar (1-based) whose handling starts with the monitor's fallback request."""
FALLBACK_BARS = 40
RESTART_AT = 520
"""Bars the first node sees before it stops, 20 bars into the fallback."""
LAST = 600
WALK_FORWARD = WalkForwardConfig(train_bars=600, min_train_bars=400, n_init=1, n_iter=50)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, series) -> Path:
    """A model fitted on the first 400 bars (the actor starts from it and never refits)."""
    closes = series[0][:400]
    stamps = (np.arange(len(closes), dtype=np.int64) + 1) * 60_000_000_000
    path = tmp_path_factory.mktemp("regime-control") / "model.json"
    fit_window(WALK_FORWARD, closes, stamps).save(path)
    return path


def _engine(
    catalog: Path, model: Path, request_at: int | None
) -> tuple[BacktestEngine, RegimeActor, RegimeRecorder]:
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(
        Venue("TEST"),
        OmsType.NETTING,
        AccountType.CASH,
        base_currency=USD,
        starting_balances=[Money(1_000_000, USD)],
    )
    engine.add_instrument(ParquetDataCatalog(str(catalog)).instruments()[0])
    bar_type = BarType.from_str(BAR_TYPE)
    if request_at is not None:
        # What actors.strategy_monitor publishes on a breach with on_breach: fallback; it
        # starts before the regime actor, so the request comes first on its bar.
        requests = {request_at: ["fallback", None]}
        engine.add_actor(
            ControlInjector(ControlInjectorConfig(bar_type=bar_type, requests=requests))
        )
    actor = RegimeActor(
        RegimeActorConfig(
            bar_types=[bar_type],
            walk_forward=WALK_FORWARD,  # refit_every 0: only the bar count ends the fallback
            model=str(model),
            control_fallback_bars=FALLBACK_BARS,
        ),
    )
    engine.add_actor(actor)
    recorder = RegimeRecorder(
        RegimeRecorderConfig(instrument_id=InstrumentId.from_str(INSTRUMENT), bar_type=bar_type),
    )
    engine.add_strategy(recorder)
    return engine, actor, recorder


def _regime_records(recorder: RegimeRecorder) -> list[tuple]:
    return [e[1:] for e in recorder.events if e[0] == "regime"]


def test_the_fallback_lasts_its_bars_and_survives_a_restart(regime_catalog, model_path):
    bars = ParquetDataCatalog(str(regime_catalog)).bars([BAR_TYPE])[:LAST]

    # The node that never stops: the prior for FALLBACK_BARS bars from the request's bar.
    reference, _, recorder = _engine(regime_catalog, model_path, REQUEST_BAR)
    reference.add_data(bars)
    reference.run()
    expected = _regime_records(recorder)
    reference.dispose()
    versions = [r[-1] for r in expected]
    fallback = [i + 1 for i, v in enumerate(versions) if v.startswith("fallback:")]
    assert fallback == list(range(REQUEST_BAR, REQUEST_BAR + FALLBACK_BARS))
    assert versions[REQUEST_BAR + FALLBACK_BARS - 1] == versions[REQUEST_BAR - 2] != "prior"

    # The node that stops 20 bars into the fallback, saving its state.
    first, crashed, _ = _engine(regime_catalog, model_path, REQUEST_BAR)
    first.add_data(bars[:RESTART_AT])
    first.run()
    health = crashed.health()[BAR_TYPE]
    assert health["control_fallback"] and health["control_fallback_bars"] == RESTART_AT - 499
    saved = crashed.on_save()
    first.dispose()

    # The restarted node (no monitor to ask again): state loaded, components started, the
    # crashed node's bars handed over as history, then the rest of the bars live.
    restarted, actor, recorder = _engine(regime_catalog, model_path, None)
    actor.on_load(saved)
    restarted.add_data(bars[RESTART_AT:])
    at = bars[RESTART_AT].ts_event
    restarted.run(start=at - 2, end=at - 1, streaming=True)
    warm_up(restarted.kernel, bars[:RESTART_AT])
    restarted.run(start=at - 1)
    try:
        assert _regime_records(recorder) == expected[RESTART_AT:]
        resumed = [r[-1] for r in _regime_records(recorder)]
        remaining = REQUEST_BAR + FALLBACK_BARS - 1 - RESTART_AT
        assert all(v.startswith("fallback:") for v in resumed[:remaining])
        assert not any(v.startswith("fallback:") for v in resumed[remaining:])
        assert actor.health()[BAR_TYPE]["control_fallback"] is False
        assert actor.on_save().keys() == {"grodt.regime_sequence"}
    finally:
        restarted.dispose()


def test_a_corrupt_saved_fallback_is_reported_and_left_out(model_path):
    actor = RegimeActor(
        RegimeActorConfig(bar_types=[BarType.from_str(BAR_TYPE)], model=str(model_path)),
    )
    actor.on_load({"grodt.regime_control_fallback": b'{"reason": "x"}'})
    assert actor.health() == {}  # not started: no filters; and no fallback was taken
    assert actor.on_save().keys() == {"grodt.regime_sequence"}
