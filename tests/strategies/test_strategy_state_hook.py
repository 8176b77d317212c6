"""The researcher's state hook: a subclass's ``save_state`` dict goes through the base's sealed
``on_save``/``on_load`` (Nautilus' state bytes) under its own key and back into ``load_state``."""

from typing import Any

from strategies_kit import INSTRUMENT_ID
from strategies_kit import MINUTE_BARS

from strategies.s1_vwap_ema_scalper import S1VwapEmaScalper
from strategies.s1_vwap_ema_scalper import S1VwapEmaScalperConfig


class CountingStrategy(S1VwapEmaScalper):
    """S1 plus state of its own: a counter and a list of ids."""

    def __init__(self, config: S1VwapEmaScalperConfig) -> None:
        super().__init__(config)
        self.counter = 0
        self.ids: list[str] = []
        self.loaded: dict[str, Any] | None = None

    def save_state(self) -> dict[str, Any]:
        return {"counter": self.counter, "ids": self.ids, "held": 0.25}

    def load_state(self, state: dict[str, Any]) -> None:
        self.loaded = state
        self.counter = int(state["counter"])
        self.ids = list(state["ids"])


class BrokenStateStrategy(S1VwapEmaScalper):
    def save_state(self) -> dict[str, Any]:
        return {"not_json": object()}


def _config() -> S1VwapEmaScalperConfig:
    return S1VwapEmaScalperConfig(instrument_id=INSTRUMENT_ID, bar_type=MINUTE_BARS)


def test_save_state_round_trips_through_on_save_and_on_load():
    crashed = CountingStrategy(_config())
    crashed.counter = 41
    crashed.ids = ["O-1", "O-2"]
    saved = crashed.on_save()
    assert all(isinstance(value, bytes) for value in saved.values())
    restarted = CountingStrategy(_config())
    restarted.on_load(saved)
    assert restarted.loaded == {"counter": 41, "ids": ["O-1", "O-2"], "held": 0.25}
    assert (restarted.counter, restarted.ids) == (41, ["O-1", "O-2"])
    # The base's own state is saved beside it, under its own keys.
    assert {"grodt.lifecycle", "grodt.inputs"} < set(saved)


def test_default_hooks_save_nothing_of_their_own():
    saved = S1VwapEmaScalper(_config()).on_save()
    assert set(saved) == {"grodt.lifecycle", "grodt.inputs"}
    S1VwapEmaScalper(_config()).on_load(saved)  # load_state's default: nothing to restore


def test_a_state_that_is_not_json_is_logged_and_left_out():
    saved = BrokenStateStrategy(_config()).on_save()
    assert set(saved) == {"grodt.lifecycle", "grodt.inputs"}
    # A subclass whose load_state fails starts from its defaults; the base's state still loads.
    restarted = CountingStrategy(_config())
    restarted.on_load({**saved, "grodt.strategy": b'{"ids": []}'})
    assert restarted.loaded == {"ids": []} and restarted.counter == 0
