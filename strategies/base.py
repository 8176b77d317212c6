"""The base class of grodt's rule strategies: regime-aware, allocation-aware, risk-sized.

A researcher writes a new strategy as one subclass of :class:`RegimeAwareStrategy` (indicators and
an :meth:`~RegimeAwareStrategy.entry_signal`) plus one YAML component file. The base does the rest,
identically in a BacktestNode and a TradingNode:

* **Regime blending.** It listens to the regime actor's
  :class:`~grodt.core.messages.RegimeProbabilities` for ``regime_instrument_id`` (default: the
  traded instrument) — published by the actor, or replayed from the catalog with or without
  metadata — and uses :data:`~grodt.core.messages.NEUTRAL_REGIME_PROBABILITIES` until the first
  record. Its size is scaled by ``Σ p(regime) · regime_affinity[regime]`` (``regime_gating:
  soft``) or by 1/0 depending on whether the most likely regime has a positive affinity
  (``hard``).
* **Allocation.** Capital weight from YAML (``allocation_weight``), replaced by the
  meta-controller's :class:`~grodt.core.messages.StrategyAllocation` records addressed to this
  strategy's id.
* **Sizing from risk** (:mod:`strategies.sizing`): ``risk_per_trade`` of the allocated equity over
  the stop distance ``stop_atr_multiple · ATR``, capped at a max notional, rounded down to the
  instrument's lot.
* **Exits** (:mod:`strategies.lifecycle`). Every entry is a bracket: market entry,
  ``STOP_MARKET`` stop loss at the stop distance and ``LIMIT`` take profit at
  ``risk_reward_ratio`` times it. Optional ATR trailing stop (chandelier: highest high since entry
  minus ``trailing_atr_multiple · ATR``, ratcheted by modifying the stop order), time stop
  (``max_holding_bars``), strategy signal exits (:meth:`~RegimeAwareStrategy.exit_signal`),
  flattening before the session close, regime rebalancing (scale-out when the regime scale
  falls), and closing or keeping positions at stop.
* **Per-strategy bookkeeping.** The strategy's ``oms_type`` is ``NETTING``: Nautilus' execution
  engine keeps one position per (instrument, strategy) with id ``{instrument_id}-{strategy_id}``,
  so several strategies on one instrument have their own positions, stops and PnL
  (``portfolio.is_flat()`` is instrument-wide and never used). Simulated venues that host several
  strategies on one instrument must be ``oms_type: HEDGING``: Nautilus 1.221's simulated NETTING
  venue resolves a fill's position as the *first open position of the instrument*, whatever its
  strategy, and clamps one strategy's reduce-only stop to another strategy's position (see
  ``docs/strategies.md``; a test pins the behaviour).
* **Forensics** (:mod:`strategies.decisions`). Each entry, exit and adjustment builds one
  :class:`~grodt.core.records.DecisionRecord` (inputs, indicator values, regime probabilities,
  signal, intended order) and publishes it on :data:`~grodt.core.topics.Topics.DECISIONS`; every
  order it sends carries the decision's ``trace_id=<id>`` tag. Nothing is built on bars without a
  decision.
* **Target exposure.** ``target_quantity`` (signed units) and ``target_exposure`` (signed notional,
  account currency, at the decision price) say what the strategy is steering to; every change is
  published as :class:`~strategies.decisions.TargetExposure` on
  :data:`~grodt.core.topics.TARGET_EXPOSURE_TOPIC` and recorded in the decision's features.

The researcher's side of the class is listed in :class:`RegimeAwareStrategy`'s docstring (hooks to
implement, tools to call, state to read) and in ``docs/strategies.md``; everything else is the
base's (``_``-prefixed, or in :mod:`strategies.lifecycle` and :mod:`strategies.decisions`). The
Nautilus handlers the base implements (``on_bar``, ``on_start``, the order and position events...)
are sealed: a subclass that overrides one is a ``TypeError`` when its class is defined.
"""

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from decimal import Decimal
from typing import Any
from typing import Literal

import msgspec
from nautilus_trader.config import NonNegativeFloat
from nautilus_trader.config import PositiveFloat
from nautilus_trader.config import PositiveInt
from nautilus_trader.config import StrategyConfig
from nautilus_trader.indicators import AverageTrueRange
from nautilus_trader.indicators import Indicator
from nautilus_trader.indicators import MovingAverageType
from nautilus_trader.model.data import Bar
from nautilus_trader.model.data import BarType
from nautilus_trader.model.enums import AccountType
from nautilus_trader.model.enums import BarAggregation
from nautilus_trader.model.enums import ContingencyType
from nautilus_trader.model.enums import OrderSide
from nautilus_trader.model.enums import TimeInForce
from nautilus_trader.model.events import OrderCanceled
from nautilus_trader.model.events import OrderDenied
from nautilus_trader.model.events import OrderExpired
from nautilus_trader.model.events import OrderFilled
from nautilus_trader.model.events import OrderModifyRejected
from nautilus_trader.model.events import OrderRejected
from nautilus_trader.model.events import OrderUpdated
from nautilus_trader.model.events import PositionChanged
from nautilus_trader.model.events import PositionClosed
from nautilus_trader.model.events import PositionOpened
from nautilus_trader.model.identifiers import ClientOrderId
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.model.instruments import Instrument
from nautilus_trader.model.position import Position
from nautilus_trader.trading.strategy import Strategy

from grodt.core.messages import NEUTRAL_REGIME_PROBABILITIES
from grodt.core.messages import REGIME_LABELS
from grodt.core.messages import RegimeProbabilities
from grodt.core.messages import StrategyAllocation
from grodt.core.messages import allocation_data_type
from grodt.core.messages import regime_data_type
from grodt.core.records import IntendedOrder
from grodt.core.records import Signal
from grodt.core.records import trace_id_from_tags
from grodt.core.records import trace_tag
from grodt.core.topics import KILL_SWITCH_TOPIC
from models.regime.gating import regime_scale
from models.regime.gating import validate_affinity
from strategies.decisions import DECISION_PATHS
from strategies.decisions import DecisionInputs
from strategies.decisions import DecisionRecorder
from strategies.decisions import entry_signal_record
from strategies.decisions import exit_signal_record
from strategies.decisions import hold_signal_record
from strategies.decisions import intended_order
from strategies.indicators import RollingVwap
from strategies.indicators import SessionSchedule
from strategies.indicators import SessionVwap
from strategies.indicators import parse_time_of_day
from strategies.indicators import parse_timezone
from strategies.lifecycle import OrderFailure
from strategies.lifecycle import PositionLifecycle
from strategies.lifecycle import lifecycle_state_from_bytes
from strategies.lifecycle import lifecycle_state_to_bytes
from strategies.lifecycle import same_order
from strategies.orders import TIME_IN_FORCE
from strategies.orders import bracket
from strategies.orders import entry_side
from strategies.orders import exit_pair
from strategies.orders import exit_side
from strategies.sizing import SizeBreakdown
from strategies.sizing import entry_gate
from strategies.sizing import plan_entry
from strategies.sizing import round_to_tick

__all__ = [
    "INTRADAY_AGGREGATIONS",
    "SEALED_HANDLERS",
    "EntrySignal",
    "RegimeAwareStrategy",
    "RegimeAwareStrategyConfig",
    "regime_topics",
    "scheduled_exit",
    "trail_hit",
]

INTRADAY_AGGREGATIONS = frozenset(
    {
        BarAggregation.MILLISECOND,
        BarAggregation.SECOND,
        BarAggregation.MINUTE,
        BarAggregation.HOUR,
    },
)
# The Nautilus handlers that carry the base's own work: a subclass's override would silently skip
# it (no decision, a lost stop, a stale pending order), so none may be overridden.
SEALED_HANDLERS = frozenset(
    {
        "on_start",
        "on_stop",
        "on_save",
        "on_load",
        "on_data",
        "on_bar",
        "on_historical_data",
        "on_order_filled",
        "on_order_updated",
        "on_order_denied",
        "on_order_rejected",
        "on_order_canceled",
        "on_order_expired",
        "on_order_modify_rejected",
        "on_position_opened",
        "on_position_changed",
        "on_position_closed",
    },
)
_NANOS_PER_MINUTE = 60_000_000_000
_STATE_LIFECYCLE = "grodt.lifecycle"
_STATE_INPUTS = "grodt.inputs"
_STATE_SUBCLASS = "grodt.strategy"
"""Keys of the saved state (:meth:`RegimeAwareStrategy.on_save`)."""
_PROBABILITY_TOLERANCE = 1e-6
_TIE_TOLERANCE = 1e-12


def regime_topics(instrument_id: InstrumentId) -> tuple[str, str]:
    """The message-bus topics of ``instrument_id``'s regime records: as the regime actor (or a
    catalog replay with ``metadata: {instrument_id: ...}``) publishes them, and as Nautilus' data
    engine publishes a catalog replay without metadata (keyed by venue and symbol)."""
    keyed = f"data.{regime_data_type(instrument_id).topic}"
    by_symbol = (
        f"data.{RegimeProbabilities.__name__}.{instrument_id.venue}.{instrument_id.symbol.topic()}"
    )
    return keyed, by_symbol


def scheduled_exit(flatten_due: bool, bars_held: int, max_holding_bars: int | None) -> str | None:
    """The base's own exit reasons before the strategy's rule: ``session_close`` when the
    session's flattening is due, ``time_stop`` after ``max_holding_bars`` bars held, else None."""
    if flatten_due:
        return "session_close"
    if max_holding_bars and bars_held >= max_holding_bars:
        return "time_stop"
    return None


def trail_hit(close: float, level: float, tick: Decimal, direction: int) -> bool:
    """The close is at or through the trailing level, within 1.5 ticks: a stop there would
    already be in the market, so the position exits at market instead."""
    margin = 1.5 * float(tick)
    return (close - level if direction > 0 else level - close) < margin


@dataclass(frozen=True, slots=True)
class EntrySignal:
    """What :meth:`RegimeAwareStrategy.entry_signal` returns when it wants to enter.

    Attributes
    ----------
    direction : int
        +1 long, -1 short.
    reason : str
        Short machine-readable reason (``"vwap_ema_pullback"``), recorded in the decision.
    strength : float
        Size multiplier in (0, 1] (1 = full risk-based size).
    features : Mapping[str, float]
        Extra values for the decision record (merged over :meth:`RegimeAwareStrategy.features`).
    stop_distance : float, optional
        Entry-to-stop distance in price units; default ``stop_atr_multiple · ATR``.
    """

    direction: int
    reason: str
    strength: float = 1.0
    features: Mapping[str, float] = field(default_factory=dict)
    stop_distance: float | None = None

    def __post_init__(self) -> None:
        if self.direction not in (1, -1):
            raise ValueError(f"EntrySignal.direction must be +1 or -1, was {self.direction!r}")
        if not (0.0 < self.strength <= 1.0):
            raise ValueError(f"EntrySignal.strength must be in (0, 1], was {self.strength!r}")
        if self.stop_distance is not None and not self.stop_distance > 0.0:
            raise ValueError(f"EntrySignal.stop_distance must be > 0, was {self.stop_distance!r}")


class RegimeAwareStrategyConfig(StrategyConfig, kw_only=True, frozen=True):
    """Configuration shared by every :class:`RegimeAwareStrategy` (all values from YAML).

    Parameters
    ----------
    instrument_id : InstrumentId
        The traded instrument.
    bar_type : BarType
        The bars the strategy trades on (must be of ``instrument_id``).
    regime_affinity : dict[str, float]
        Affinity in [0, 1] per regime label (``bull``, ``bear``, ``sideways``); a missing label
        is 0. Default: 1 for every label (regime-agnostic).
    regime_gating : {"soft", "hard"}, default "soft"
        ``soft``: size × Σ p·affinity. ``hard``: full size only when the most likely regime has
        a positive affinity, else no new entries (and a scale-out to zero when rebalancing).
    regime_instrument_id : InstrumentId, optional
        Whose regime records to follow (default: ``instrument_id``).
    regime_rebalance_threshold : float, optional, default 0.25
        Scale an open position down (never up) when the regime-scaled target falls below the
        held quantity by at least this fraction of the entry quantity; 0 when the target
        reaches zero closes it. ``null`` keeps positions as entered.
    allocation_weight : float, default 1.0
        Capital weight in [0, 1] until the meta-controller publishes one for this strategy.
    risk_per_trade : float, default 0.01
        Fraction of the allocated equity lost when a full-size trade is stopped out.
    atr_period : int, default 14
        ATR period in bars (Wilder smoothing).
    stop_atr_multiple : float, default 2.0
        Stop distance in ATRs (k).
    risk_reward_ratio : float, default 1.5
        Take-profit distance over stop distance.
    max_notional_fraction : float, default 1.0
        Cap on the position notional as a multiple of the allocated equity.
    max_notional : float, optional
        Absolute cap on the position notional, account currency.
    trailing_stop : bool, default False
        Ratchet the stop to ``highest high − trailing_atr_multiple · ATR`` (mirror for shorts).
    trailing_atr_multiple : float, optional
        Trailing distance in ATRs (default ``stop_atr_multiple``).
    max_holding_bars : int, optional
        Exit at market after this many bars in a position.
    allow_short : bool, default False
        Take short entries (needs a MARGIN account).
    close_positions_on_stop : bool, default True
        On stop, cancel this strategy's orders and flatten its position; otherwise leave both.
    bracket_reduce_only : {"auto", "always", "never"}, default "auto"
        Flag the bracket's stop and target reduce-only: ``auto`` = on CASH accounts only
        (see :mod:`strategies.orders` for the two Nautilus behaviours this trades off).
    vwap_mode : {"auto", "session", "rolling"}, default "auto"
        ``session`` VWAP (resets at ``session_start``) or ``rolling`` VWAP over ``vwap_window``
        bars; ``auto`` = session on intraday bars, rolling on daily and coarser bars.
    vwap_window : int, default 20
        Rolling VWAP window, in bars.
    session_timezone : str, default "UTC"
        IANA zone of ``session_start`` / ``session_close``.
    session_start : str, default "00:00"
        Local session start (VWAP reset), ``HH:MM``.
    session_close : str, optional
        Local session close, ``HH:MM`` (needed by the two options below).
    flatten_before_close_minutes : float, optional
        Exit on the first bar closing within this many minutes of ``session_close`` (intraday).
    no_entry_before_close_minutes : float, default 0
        No entries on bars closing within this many minutes of ``session_close``.
    publish_decisions : bool, default True
        Publish decision records on the forensics topic.
    oms_type : str, default "NETTING"
        One position per (instrument, strategy): keep it (see ``docs/strategies.md``).
    """

    instrument_id: InstrumentId
    bar_type: BarType
    regime_affinity: dict[str, float] = msgspec.field(
        default_factory=lambda: dict.fromkeys(REGIME_LABELS, 1.0),
    )
    regime_gating: Literal["soft", "hard"] = "soft"
    regime_instrument_id: InstrumentId | None = None
    regime_rebalance_threshold: NonNegativeFloat | None = 0.25
    allocation_weight: NonNegativeFloat = 1.0
    risk_per_trade: PositiveFloat = 0.01
    atr_period: PositiveInt = 14
    stop_atr_multiple: PositiveFloat = 2.0
    risk_reward_ratio: PositiveFloat = 1.5
    max_notional_fraction: PositiveFloat = 1.0
    max_notional: PositiveFloat | None = None
    trailing_stop: bool = False
    trailing_atr_multiple: PositiveFloat | None = None
    max_holding_bars: PositiveInt | None = None
    allow_short: bool = False
    close_positions_on_stop: bool = True
    bracket_reduce_only: Literal["auto", "always", "never"] = "auto"
    vwap_mode: Literal["auto", "session", "rolling"] = "auto"
    vwap_window: PositiveInt = 20
    session_timezone: str = "UTC"
    session_start: str = "00:00"
    session_close: str | None = None
    flatten_before_close_minutes: NonNegativeFloat | None = None
    no_entry_before_close_minutes: NonNegativeFloat = 0.0
    publish_decisions: bool = True
    oms_type: str | None = "NETTING"

    def __post_init__(self) -> None:
        validate_affinity(self.regime_affinity)
        if self.allocation_weight > 1.0:
            raise ValueError(f"allocation_weight must be in [0, 1], was {self.allocation_weight}")
        if self.risk_per_trade >= 1.0:
            raise ValueError(f"risk_per_trade must be in (0, 1), was {self.risk_per_trade}")
        if self.bar_type.instrument_id != self.instrument_id:
            raise ValueError(
                f"bar_type: {self.bar_type} is not a bar type of instrument_id "
                f"{self.instrument_id}",
            )
        parse_timezone(self.session_timezone, "session_timezone")
        parse_time_of_day(self.session_start, "session_start")
        if self.session_close is not None:
            parse_time_of_day(self.session_close, "session_close")
        intraday = self.bar_type.spec.aggregation in INTRADAY_AGGREGATIONS
        for name in ("flatten_before_close_minutes", "no_entry_before_close_minutes"):
            value = getattr(self, name)
            if value and self.session_close is None:
                raise ValueError(f"{name}: needs session_close")
            if value and not intraday:
                raise ValueError(f"{name}: only applies to intraday bars, not {self.bar_type}")
        if self.vwap_mode == "session" and not intraday:
            raise ValueError(
                f"vwap_mode: a session VWAP on {self.bar_type} would reset every bar; "
                "use 'rolling' (or 'auto')",
            )
        if str(self.oms_type).upper() != "NETTING":
            raise ValueError(
                f"oms_type: RegimeAwareStrategy keeps one position per instrument and needs "
                f"NETTING, was {self.oms_type!r}",
            )


class RegimeAwareStrategy(Strategy):
    """Base of grodt's rule strategies; see the module docstring.

    The researcher's side, modelled on freqtrade's ``IStrategy`` (everything else is internal):

    **Hooks to implement** (called by the base, never by the subclass):

    * :meth:`entry_signal` (required): enter at this bar's close? Called only while flat and idle.
    * :meth:`exit_signal`: exit the open position at market now?
    * :meth:`features`: indicator values recorded with every decision.
    * :meth:`pre_bar`: per-bar work before the decision (feed a ``manual`` indicator, derive
      values from this bar).
    * :meth:`post_bar`: per-bar work after the decision and the lagged indicators.
    * ``on_reset`` may be extended (call ``super().on_reset()``) to reset the subclass's fields.
    * :meth:`save_state` / :meth:`load_state`: the subclass's own state a restarted live node
      needs (a JSON-serialisable dict), saved and restored by the sealed ``on_save``/``on_load``
      under their own key. Only state that is not a function of the bars: indicators and
      whatever ``pre_bar``/``post_bar`` derive are rebuilt from the warm-up bars.

    **Tools to call** from ``__init__`` or the hooks: :meth:`add_indicator`, :meth:`create_vwap`,
    :meth:`current_regime_scale`.

    **State to read** (never to assign):

    Attributes
    ----------
    instrument : Instrument or None
        The traded instrument (from the cache, at start).
    atr : AverageTrueRange
        ATR(``atr_period``), Wilder smoothing.
    regime_probabilities : dict[str, float]
        The latest p(regime) (the neutral prior before the first record).
    regime_most_likely : str or None
        The most likely regime label (``None`` before a record, or on a tie).
    allocation_weight : float
        The current capital weight in [0, 1].
    halted : bool
        The kill switch stopped new entries.
    skipped_entries : dict[str, int]
        Entry signals that could not trade, by reason (``regime``, ``size``, ``price``,
        ``short_not_allowed``).
    target_quantity : float
        Signed units the strategy is steering to (0 when flat and not entering).
    target_exposure : float
        ``target_quantity · price · multiplier`` at the last decision, account currency.
    decisions : int
        Decision records built so far.

    The Nautilus handlers the base implements (:data:`SEALED_HANDLERS`, ``on_bar`` among them) are
    the framework's entry points: overriding one raises ``TypeError`` at class definition.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        overridden = sorted(name for name in SEALED_HANDLERS if name in vars(cls))
        if overridden:
            raise TypeError(
                f"{cls.__name__} overrides {', '.join(overridden)} of RegimeAwareStrategy: these "
                "handlers are the framework's entry points. Put per-bar work in pre_bar(bar) or "
                "post_bar(bar), and decisions in entry_signal / exit_signal "
                "(see docs/strategies.md, 'Write your own strategy').",
            )

    def __init__(self, config: RegimeAwareStrategyConfig) -> None:
        super().__init__(config)
        self.instrument: Instrument | None = None
        self.atr = AverageTrueRange(config.atr_period, MovingAverageType.WILDER)
        self._indicators: list[Indicator] = [self.atr]
        self._lagged: list[Indicator] = []
        self._manual: list[Indicator] = []
        self._intraday = config.bar_type.spec.aggregation in INTRADAY_AGGREGATIONS
        self._schedule = SessionSchedule(
            config.session_timezone,
            config.session_start,
            config.session_close,
        )
        self._regime_instrument_id = config.regime_instrument_id or config.instrument_id
        self._affinity = {
            label: float(config.regime_affinity.get(label, 0.0)) for label in REGIME_LABELS
        }
        self._trailing_multiple = config.trailing_atr_multiple or config.stop_atr_multiple
        self._flatten_lead_ns = (
            None
            if config.flatten_before_close_minutes is None
            else int(config.flatten_before_close_minutes * _NANOS_PER_MINUTE)
        )
        self._no_entry_lead_ns = int(config.no_entry_before_close_minutes * _NANOS_PER_MINUTE)
        self._lot = Decimal(1)
        self._reduce_only_children = False
        self._tick = Decimal("0.01")
        self._min_quantity = Decimal(1)
        self._multiplier = 1.0
        self._taker_fee = 0.0
        # What the decision being recorded read besides its features (its record's
        # sizing_inputs), and the lifecycle values the bar's decision may move.
        self._inputs: DecisionInputs | None = None
        self._flatten_due = False
        self._anchor_before = math.nan
        self._stop_before = math.nan
        self._lifecycle = PositionLifecycle()
        self._restored = False  # on_load gave a lifecycle state that on_start checks
        self._recorder = DecisionRecorder(
            config.instrument_id.value,
            publish=self._publish,
            now_ns=self._now_ns,
        )
        self._reset_inputs()

    # == researcher hooks: implement these =========================================================

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        """Decide whether to enter at this bar's close (called only while flat and idle)."""
        raise NotImplementedError(f"{type(self).__name__} must implement entry_signal(bar)")

    def exit_signal(self, bar: Bar, direction: int) -> str | None:
        """A reason to exit the open position (``direction`` +1 long, -1 short) at market now,
        or ``None``. Brackets, trailing, time and session exits are handled by the base."""
        return None

    def save_state(self) -> dict[str, Any]:
        """The subclass's own state a restarted node needs to decide as the crashed one would
        (the policy's held position, a counter, a pending order id): a JSON-serialisable dict,
        saved by :meth:`on_save` under its own key (``{}``, the default: nothing). Indicators and
        what :meth:`pre_bar`/:meth:`post_bar` derive from bars are not needed: a restarted node
        rebuilds them from the bars before its checkpoint (:meth:`on_historical_data`)."""
        return {}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`save_state` returned (called by :meth:`on_load`, before
        ``on_start`` and the warm-up bars; only when a saved state has the key). Default: no-op."""

    def features(self) -> dict[str, float]:
        """Indicator values recorded with every decision (floats); a new dict each call."""
        return {}

    def pre_bar(self, bar: Bar) -> None:
        """Called first on every bar (warm-up included), before any order work and the decision:
        the registered indicators already include this bar, the lagged ones do not. Feed
        ``manual`` indicators here or derive this bar's values that :meth:`entry_signal`,
        :meth:`exit_signal` and :meth:`features` read."""

    def post_bar(self, bar: Bar) -> None:
        """Called at the end of every bar, after the decision and the lagged indicators."""

    # == researcher tools: call these ==============================================================

    def add_indicator(
        self,
        indicator: Indicator,
        lagged: bool = False,
        manual: bool = False,
    ) -> Indicator:
        """Add ``indicator``; the strategy makes no decision until it is initialised.

        By default it is registered for ``bar_type`` and updated with each bar before
        ``entry_signal``. A ``lagged`` indicator is updated *after* the decision on each bar, so
        during ``entry_signal(bar_t)`` it reflects bars up to t-1 (e.g. the prior N-bar high of a
        breakout). A ``manual`` indicator is fed by the subclass itself (e.g. with
        ``update_raw`` of a volume, in :meth:`pre_bar` or :meth:`post_bar`); the base only waits
        for it. Call from ``__init__``.
        """
        if lagged:
            self._lagged.append(indicator)
        elif manual:
            self._manual.append(indicator)
        else:
            self._indicators.append(indicator)
        return indicator

    def create_vwap(self) -> Indicator:
        """The VWAP chosen by ``vwap_mode``: :class:`SessionVwap` (intraday) or
        :class:`RollingVwap` over ``vwap_window`` bars (daily and coarser)."""
        mode = self.config.vwap_mode
        if mode == "auto":
            mode = "session" if self._intraday else "rolling"
        if mode == "session":
            return SessionVwap(self._schedule)
        return RollingVwap(self.config.vwap_window)

    def current_regime_scale(self) -> float:
        """The regime multiplier now (see :func:`models.regime.gating.regime_scale`)."""
        return regime_scale(
            self.regime_probabilities,
            self._affinity,
            self.config.regime_gating,
            self.regime_most_likely,
        )

    @property
    def target_quantity(self) -> float:
        """Signed units the strategy is steering to."""
        return self._recorder.target_quantity

    @property
    def target_exposure(self) -> float:
        """``target_quantity · price · multiplier`` at the last change, account currency."""
        return self._recorder.target_exposure

    @property
    def decisions(self) -> int:
        """Decision records built so far."""
        return self._recorder.decisions

    # == framework entry points (sealed) ===========================================================

    def on_start(self) -> None:
        config = self.config
        self.instrument = self.cache.instrument(config.instrument_id)
        if self.instrument is None:
            self.log.error(f"Instrument {config.instrument_id} not found in the cache; stopping")
            self.stop()
            return
        lot = self.instrument.lot_size or self.instrument.size_increment
        self._lot = lot.as_decimal()
        self._tick = self.instrument.price_increment.as_decimal()
        minimum = self.instrument.min_quantity
        self._min_quantity = max(minimum.as_decimal(), self._lot) if minimum else self._lot
        self._multiplier = float(self.instrument.multiplier)
        self._taker_fee = float(self.instrument.taker_fee)
        # The trader may rename a strategy when it adds it: the id is final only now.
        self._recorder.start(self.id.value, self._multiplier)
        account = self.portfolio.account(config.instrument_id.venue)
        cash = account is not None and account.type == AccountType.CASH
        if config.bracket_reduce_only == "auto":
            self._reduce_only_children = cash
        else:
            self._reduce_only_children = config.bracket_reduce_only == "always"
        if config.allow_short and cash:
            self.log.warning(
                "allow_short is set but the account is CASH: short entries will be rejected",
            )
        for indicator in self._indicators:
            self.register_indicator_for_bars(config.bar_type, indicator)
        self._subscribe_inputs()
        self._recover_position()
        self.subscribe_bars(config.bar_type)

    def on_stop(self) -> None:
        position = self._position()
        if self.config.close_positions_on_stop:
            if position is not None:
                # A recorded exit: cancels the bracket and flattens with a trace id.
                # Stamped at the last bar, not the clock: a replay's clock is the wall clock, and
                # the decision's trace id must be the same in a backtest and a paper node.
                ts = self._last_ts if self._last_ts else self.clock.timestamp_ns()
                self._exit(position, ts, self._last_price, "strategy_stop", path="stop")
            else:
                self._cancel_own_orders()
        elif position is not None:
            self.log.info("Keeping the open position and its stop/target orders at stop")
        self._unsubscribe_inputs()
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        """Reset indicators, inputs, the lifecycle and the decision counters. A subclass that
        extends it calls ``super().on_reset()``."""
        for indicator in (*self._indicators, *self._lagged, *self._manual):
            indicator.reset()
        self._reset_inputs()
        self._lifecycle.reset()
        self._recorder.reset()

    def on_save(self) -> dict[str, bytes]:
        """What a restarted node needs to carry on as this strategy (Nautilus calls it when the
        node saves state: at a graceful stop, and at the live node's checkpoints when it has a
        cache database): the lifecycle (bracket ids, trailing stop, entry sizing, deferred
        work), the regime and allocation inputs and the decision counters. Indicators are not
        saved: a restarted node hands the strategy the bars before its checkpoint
        (:meth:`on_historical_data`; docs/live.md, "Crash and restart")."""
        recorder = self._recorder
        inputs = {
            "regime_probabilities": self.regime_probabilities,
            "regime_most_likely": self.regime_most_likely,
            "regime_model_version": self.regime_model_version,
            "allocation_weight": self.allocation_weight,
            "allocation_model_version": self.allocation_model_version,
            "allocation_trace_id": self.allocation_trace_id,
            "skipped_entries": self.skipped_entries,
            "last_price": self._last_price,
            "last_ts": self._last_ts,
            "decision_sequence": recorder._sequence,
            "decisions": recorder.decisions,
            "target_quantity": recorder.target_quantity,
            "target_exposure": recorder.target_exposure,
        }
        saved = {
            _STATE_LIFECYCLE: lifecycle_state_to_bytes(self._lifecycle.state),
            _STATE_INPUTS: json.dumps(inputs, sort_keys=True).encode(),
        }
        try:
            own = self.save_state()
            if own:
                saved[_STATE_SUBCLASS] = json.dumps(own, sort_keys=True).encode()
        except Exception as e:  # researcher code must not fail the node's checkpoint
            self.log.error(
                f"{type(self).__name__}.save_state failed ({type(e).__name__}: {e}); "
                "its state is not saved at this checkpoint",
            )
        return saved

    def on_load(self, state: dict[str, bytes]) -> None:
        """Restore what :meth:`on_save` saved (called before ``on_start``); ``on_start`` then
        checks the restored position against the cache (:meth:`_recover_position`)."""
        if _STATE_LIFECYCLE in state:
            self._lifecycle.state = lifecycle_state_from_bytes(state[_STATE_LIFECYCLE])
            self._restored = True
        if _STATE_INPUTS in state:
            inputs = json.loads(state[_STATE_INPUTS].decode())
            self.regime_probabilities = {
                k: float(v) for k, v in inputs["regime_probabilities"].items()
            }
            self.regime_most_likely = inputs["regime_most_likely"]
            self.regime_model_version = inputs["regime_model_version"]
            self.allocation_weight = float(inputs["allocation_weight"])
            self.allocation_model_version = inputs["allocation_model_version"]
            self.allocation_trace_id = inputs["allocation_trace_id"]
            self.skipped_entries = {k: int(v) for k, v in inputs["skipped_entries"].items()}
            self._last_price = float(inputs["last_price"])
            self._last_ts = int(inputs["last_ts"])
            recorder = self._recorder
            recorder._sequence = int(inputs["decision_sequence"])
            recorder.decisions = int(inputs["decisions"])
            recorder.target_quantity = float(inputs["target_quantity"])
            recorder.target_exposure = float(inputs["target_exposure"])
        if _STATE_SUBCLASS in state:
            try:
                self.load_state(json.loads(state[_STATE_SUBCLASS].decode()))
            except Exception as e:  # researcher code: start from the subclass's defaults
                self.log.error(
                    f"{type(self).__name__}.load_state failed ({type(e).__name__}: {e}); "
                    "its own state starts from its defaults",
                )
        self.log.info(f"Loaded saved state ({', '.join(sorted(state))})")

    def on_data(self, data: Any) -> None:
        if isinstance(data, RegimeProbabilities):
            self._on_regime(data)
        elif isinstance(data, StrategyAllocation):
            self._on_allocation(data)

    def on_bar(self, bar: Bar) -> None:
        """The bar loop: :meth:`pre_bar`, deferred maintenance, the decision (once every
        indicator is warm), the lagged indicators, :meth:`post_bar`. Sealed."""
        self._last_price = bar.close.as_double()
        self._last_ts = bar.ts_event
        # pre_bar first: a deferred exit records features() of this bar, like the decision.
        self.pre_bar(bar)
        if self._lifecycle.state.deferred:
            self._run_deferred(bar)
        if self._warm or self._warmed_up():
            self._decide(bar)
        for indicator in self._lagged:
            indicator.handle_bar(bar)
        self.post_bar(bar)

    def on_historical_data(self, data: Any) -> None:
        """A bar from before this run of the strategy (a restarted node's warm-up,
        :mod:`grodt.nodes.warm_up`): every indicator, :meth:`pre_bar` and :meth:`post_bar` see it
        as in :meth:`on_bar`, so a restarted strategy's indicators equal the crashed one's; no
        decision, no order (the lifecycle and inputs come from :meth:`on_load`). Sealed.

        It updates the registered indicators itself: Nautilus' ``handle_bars`` (a
        ``request_bars`` response) would update them a second time, so the base never
        requests bars."""
        if not isinstance(data, Bar) or data.bar_type != self.config.bar_type:
            return
        for indicator in self._indicators:
            indicator.handle_bar(data)
        self.pre_bar(data)
        for indicator in self._lagged:
            indicator.handle_bar(data)
        self.post_bar(data)

    # Order and position handlers read only event fields, except on fills (the order is cached by
    # then): OrderInitialized can reach a live strategy before the order is in the cache.

    def on_order_filled(self, event: OrderFilled) -> None:
        order_id = event.client_order_id
        if self._lifecycle.is_pending(order_id):
            order = self.cache.order(order_id)
            if order is None or order.is_closed:
                self._lifecycle.order_done(order_id)

    def on_order_updated(self, event: OrderUpdated) -> None:
        """The risk gate may resize an entry before submission: follow its quantity."""
        lifecycle = self._lifecycle
        if lifecycle.entry_resized(event.client_order_id, event.quantity.as_decimal()):
            state = lifecycle.state
            self._recorder.set_target(
                float(state.entry_quantity) * state.direction,
                self._last_price,
                event.ts_event,
                "entry_resized",
            )

    def on_order_denied(self, event: OrderDenied) -> None:
        self._order_failed(event.client_order_id, f"denied: {event.reason}", event.ts_event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._order_failed(event.client_order_id, f"rejected: {event.reason}", event.ts_event)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        if self._lifecycle.is_pending(event.client_order_id):
            self._order_failed(event.client_order_id, "canceled", event.ts_event)
        else:
            self._stop_lost(event.client_order_id, "canceled")

    def on_order_expired(self, event: OrderExpired) -> None:
        if self._lifecycle.is_pending(event.client_order_id):
            self._order_failed(event.client_order_id, "expired", event.ts_event)
        else:
            self._stop_lost(event.client_order_id, "expired")

    def on_order_modify_rejected(self, event: OrderModifyRejected) -> None:
        state = self._lifecycle.state
        if same_order(event.client_order_id, state.stop_order_id):
            order = self.cache.order(event.client_order_id)
            if order is not None and order.trigger_price is not None:
                state.stop_price = order.trigger_price.as_double()  # the stop did not move
        self.log.warning(f"Modify rejected for {event.client_order_id}: {event.reason}")

    def on_position_opened(self, event: PositionOpened) -> None:
        if event.instrument_id == self.config.instrument_id:
            self._lifecycle.position_opened(
                event.signed_qty,
                event.quantity.as_decimal(),
                event.avg_px_open,
            )

    def on_position_changed(self, event: PositionChanged) -> None:
        if event.instrument_id == self.config.instrument_id:
            self._lifecycle.position_changed()

    def on_position_closed(self, event: PositionClosed) -> None:
        if event.instrument_id != self.config.instrument_id:
            return
        self._lifecycle.position_closed()
        if self._recorder.target_quantity != 0.0:
            self._recorder.set_target(
                0.0,
                event.last_px.as_double(),
                event.ts_event,
                "position_closed",
            )

    # == internals =================================================================================

    # -- inputs: regime, allocation, kill switch ---------------------------------------------------

    def _reset_inputs(self) -> None:
        self.regime_probabilities: dict[str, float] = dict(NEUTRAL_REGIME_PROBABILITIES)
        self.regime_most_likely: str | None = None
        self.regime_model_version = "prior"
        self.allocation_weight: float = float(self.config.allocation_weight)
        self.allocation_model_version = "static"
        self.allocation_trace_id = ""
        self.halted = False
        self.skipped_entries: dict[str, int] = {}
        self._last_price = math.nan
        self._last_ts = 0
        self._warm = False

    def _subscribe_inputs(self) -> None:
        # Only the regime records of regime_instrument_id (proportional fan-out: a record reaches
        # the strategies that follow its instrument, not all of them). Two exact topics carry
        # them: the regime actor's (and a catalog replay's with metadata),
        # ``data.RegimeProbabilities.instrument_id=<id>``, and a catalog replay's without
        # metadata, which Nautilus' data engine keys by venue and symbol. A record published with
        # no metadata at all (topic ``data.RegimeProbabilities*``) names no instrument's topic
        # and is not received: publish with ``regime_data_type(instrument_id)``.
        for topic in regime_topics(self._regime_instrument_id):
            self.msgbus.subscribe(topic=topic, handler=self.handle_data)
        self.subscribe_data(allocation_data_type())
        self.msgbus.subscribe(topic=KILL_SWITCH_TOPIC, handler=self._on_kill_switch)

    def _unsubscribe_inputs(self) -> None:
        for topic in regime_topics(self._regime_instrument_id):
            self.msgbus.unsubscribe(topic=topic, handler=self.handle_data)
        self.unsubscribe_data(allocation_data_type())
        self.msgbus.unsubscribe(topic=KILL_SWITCH_TOPIC, handler=self._on_kill_switch)

    def _on_regime(self, record: RegimeProbabilities) -> None:
        if record.instrument_id != self._regime_instrument_id:
            return
        # Scalars, not the dict's views and generators: 3 strategies per record, every bar.
        bull = record.p_bull
        bear = record.p_bear
        sideways = record.p_sideways
        probabilities = {"bull": bull, "bear": bear, "sideways": sideways}
        total = bull + bear + sideways
        if not (
            math.isfinite(total)
            and abs(total - 1.0) <= _PROBABILITY_TOLERANCE
            and min(bull, bear, sideways) >= 0.0
        ):
            self.log.error(
                f"Ignoring invalid regime record for {record.instrument_id} at {record.ts_event}: "
                f"probabilities {probabilities} must be non-negative and sum to 1",
            )
            return
        self.regime_probabilities = probabilities
        floor = max(bull, bear, sideways) - _TIE_TOLERANCE
        if (bull >= floor) + (bear >= floor) + (sideways >= floor) > 1:
            # A tie (the actor's neutral prior before its first fit): a published label is
            # only a tie-break, so hard gating decides on every tied label, as without records.
            self.regime_most_likely = None
        elif record.most_likely in REGIME_LABELS:
            self.regime_most_likely = record.most_likely
        else:
            self.regime_most_likely = max(probabilities, key=probabilities.__getitem__)
        self.regime_model_version = record.model_version

    def _on_allocation(self, record: StrategyAllocation) -> None:
        if record.strategy_id != self.id.value:
            return
        weight = record.weight
        if not (math.isfinite(weight) and 0.0 <= weight <= 1.0):
            self.log.error(
                f"Ignoring allocation {weight!r} for {record.strategy_id}: must be in [0, 1]",
            )
            return
        self.allocation_weight = float(weight)
        self.allocation_model_version = record.model_version
        self.allocation_trace_id = record.trace_id

    def _on_kill_switch(self, message: Mapping[str, Any]) -> None:
        action = message.get("action") if isinstance(message, Mapping) else None
        if action == "halt":
            self.halted = True
            self.log.warning(f"Kill switch: no new entries ({message.get('reason', '')})")
        elif action == "reset":
            self.halted = False
            self.log.info("Kill switch reset: entries allowed")
        else:
            self.log.error(f"Ignoring kill-switch message without a valid action: {message!r}")

    # -- the decision ------------------------------------------------------------------------------

    def _warmed_up(self) -> bool:
        self._warm = all(
            indicator.initialized for indicator in (*self._indicators, *self._lagged, *self._manual)
        )
        return self._warm

    def _decide(self, bar: Bar) -> None:
        position = self._position()
        lifecycle = self._lifecycle
        ts = bar.ts_event
        flatten_due = entries_blocked = False
        if self._flatten_lead_ns is not None or self._no_entry_lead_ns:
            close_ns = self._schedule.session_close_ns(ts)
            if close_ns is not None:
                flatten_due = (
                    self._flatten_lead_ns is not None and ts >= close_ns - self._flatten_lead_ns
                )
                entries_blocked = flatten_due or ts >= close_ns - self._no_entry_lead_ns
        if position is None:
            if not lifecycle.idle or self.halted or entries_blocked:
                return
            signal = self.entry_signal(bar)
            if signal is not None:
                self._enter(bar, signal)
            return
        bars_held = lifecycle.count_bar()
        if lifecycle.state.pending_exit_id is not None:
            return
        direction = 1 if position.is_long else -1
        # What the trailing stop may move this bar, for the decision records (replay).
        self._flatten_due = flatten_due
        self._anchor_before = lifecycle.state.trail_anchor
        self._stop_before = lifecycle.state.stop_price
        reason = scheduled_exit(flatten_due, bars_held, self.config.max_holding_bars)
        if reason is None:
            reason = self.exit_signal(bar, direction)
        plan = None
        threshold = self.config.regime_rebalance_threshold
        if reason is None and threshold is not None and not lifecycle.state.adopted:
            plan = lifecycle.rebalance_plan(
                position.quantity,
                self.allocation_weight,
                self.current_regime_scale(),
                threshold,
                self._lot,
            )
        if plan is not None and plan[0] < self._min_quantity:
            # A rebalance to nothing is an exit: decided before the trailing stop moves, so no
            # stop modification is in flight when the exit cancels it (live, a modify passes the
            # risk engine and would reach the venue after the cancel).
            reason = plan[1]
        if reason is None and self.config.trailing_stop:
            reason = self._trail(bar, direction)
        if reason is not None:
            self._exit(position, ts, bar.close.as_double(), reason, bar=bar)
            return
        if plan is not None:
            self._rebalance(bar, position, direction, *plan)

    # -- sizing ------------------------------------------------------------------------------------

    def _account_equity(self) -> float:
        """Account equity in the account's currency: balances plus open positions (CASH: their
        market value; MARGIN: their unrealised PnL), over all strategies of the account."""
        venue = self.config.instrument_id.venue
        account = self.portfolio.account(venue)
        if account is None:
            return 0.0
        total = sum(money.as_double() for money in account.balances_total().values())
        if account.type == AccountType.CASH:
            open_values = self.portfolio.net_exposures(venue)
        else:
            open_values = self.portfolio.unrealized_pnls(venue)
        if open_values:
            total += sum(money.as_double() for money in open_values.values())
        return total

    def _free_balance(self) -> float | None:
        """Free cash in the quote currency on a CASH account (the entry's cap), else None."""
        account = self.portfolio.account(self.config.instrument_id.venue)
        if account is None or account.type != AccountType.CASH:
            return None
        assert self.instrument is not None
        free = account.balance_free(self.instrument.quote_currency)
        return None if free is None else free.as_double()

    def _skip(self, reason: str) -> None:
        self.skipped_entries[reason] = self.skipped_entries.get(reason, 0) + 1

    # -- orders: entry, exit, trailing stop, rebalance, re-armed stop ------------------------------

    def _enter(self, bar: Bar, signal: EntrySignal) -> None:
        """Size and send the entry's bracket through :func:`strategies.sizing.plan_entry`, the
        function decision replay recomputes it with."""
        config = self.config
        assert self.instrument is not None
        scale = self.current_regime_scale()
        gate = entry_gate(signal.direction, config.allow_short, scale)
        if gate is not None:  # before reading the account: most gated signals end here
            self._skip(gate)
            return
        price = bar.close.as_double()
        stop_distance = signal.stop_distance or config.stop_atr_multiple * self.atr.value
        equity = self._account_equity()
        free_balance = self._free_balance()
        plan = plan_entry(
            direction=signal.direction,
            strength=signal.strength,
            stop_distance=stop_distance,
            price=price,
            equity=equity,
            allocation_weight=self.allocation_weight,
            risk_per_trade=config.risk_per_trade,
            risk_reward_ratio=config.risk_reward_ratio,
            max_notional_fraction=config.max_notional_fraction,
            max_notional=config.max_notional,
            free_balance=free_balance,
            taker_fee=self._taker_fee,
            regime_scale=scale,
            multiplier=self._multiplier,
            lot=self._lot,
            min_quantity=self._min_quantity,
            tick=self._tick,
            allow_short=config.allow_short,
        )
        if plan.skip is not None:
            self._skip(plan.skip)
            return
        sizing = plan.sizing
        assert sizing is not None and plan.stop_price is not None
        assert plan.target_price is not None
        instrument = self.instrument
        stop_price = instrument.make_price(plan.stop_price)
        target_price = instrument.make_price(plan.target_price)
        trace_id = self._recorder.next_trace_id(bar.ts_event)
        order_list = bracket(
            factory=self.order_factory,
            clock=self.clock,
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=config.instrument_id,
            side=entry_side(signal.direction),
            quantity=instrument.make_qty(sizing.quantity),
            stop_price=stop_price,
            target_price=target_price,
            tags=[trace_tag(trace_id)],
            reduce_only_children=self._reduce_only_children,
        )
        entry, stop_order, target_order = order_list.orders
        self._lifecycle.entry_submitted(
            entry_id=entry.client_order_id,
            stop_id=stop_order.client_order_id,
            target_id=target_order.client_order_id,
            trace_id=trace_id,
            direction=signal.direction,
            quantity=sizing.quantity,
            full_quantity=sizing.base_quantity * signal.strength,
            allocation=self.allocation_weight,
            stop_price=stop_price.as_double(),
        )
        signed = float(sizing.quantity) * signal.direction
        self._recorder.set_target(signed, price, bar.ts_event, "entry")
        if config.publish_decisions:
            features = self._decision_features(price, sizing)
            features.update(signal.features)
            self._inputs = self._decision_inputs(
                bar,
                direction=signal.direction,
                equity=equity,
                free_balance=free_balance,
                max_notional=plan.max_notional,
                signal_stop_distance=signal.stop_distance,
            )
            self._record_decision(
                ts_event=bar.ts_event,
                trace_id=trace_id,
                action="entry",
                reason=signal.reason,
                features=features,
                signal=entry_signal_record(
                    direction=signal.direction,
                    strength=signal.strength,
                    price=price,
                    stop_distance=stop_distance,
                    target_distance=plan.target_distance,
                    horizon_bars=config.max_holding_bars or 0,
                    regime_scale=sizing.regime_scale,
                ),
                intended=intended_order(
                    entry,
                    reduce_only=False,
                    stop_loss=str(stop_price),
                    take_profit=str(target_price),
                ),
            )
        self.submit_order_list(order_list)

    def _exit(
        self,
        position: Position,
        ts_event: int,
        price: float,
        reason: str,
        path: str = "decide",
        bar: Bar | None = None,
    ) -> None:
        """Cancel the bracket and close the position at market (reduce-only). ``path`` and
        ``bar`` say where the decision was taken (:data:`strategies.decisions.DECISION_PATHS`)."""
        trace_id = self._recorder.next_trace_id(ts_event)
        direction = 1 if position.is_long else -1
        order = self.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=exit_side(direction),
            quantity=position.quantity,
            time_in_force=TIME_IN_FORCE,
            reduce_only=True,
            tags=["EXIT", trace_tag(trace_id)],
        )
        self._lifecycle.exit_submitted(order.client_order_id)
        self._recorder.set_target(0.0, price, ts_event, f"exit:{reason}")
        if self.config.publish_decisions:
            self._inputs = self._decision_inputs(
                bar,
                direction=direction,
                path=path,
                position=position,
            )
            self._record_decision(
                ts_event=ts_event,
                trace_id=trace_id,
                action="exit",
                reason=reason,
                features=self._decision_features(price, None),
                signal=exit_signal_record(self.current_regime_scale()),
                intended=intended_order(order, reduce_only=True),
            )
        self._cancel_own_orders()
        self.submit_order(order, position_id=position.id)

    def _cancel_own_orders(self) -> None:
        """Cancel this strategy's open orders on its instrument, one ``CancelOrder`` each.

        Not ``cancel_all_orders``: its ``CancelAllOrders`` command is applied by Nautilus'
        simulated matching engine (and by venues such as Binance) to *every* open order of the
        instrument, whatever its strategy, so it would cancel a sibling strategy's bracket.
        One leg of an OCO pair is enough: the venue (or the order manager) cancels the other.
        """
        covered: set[ClientOrderId] = set()
        # The unfiltered query reads the small open-order index; a filtered one intersects the
        # instrument's and the strategy's indexes of every order ever sent (slower each order).
        for order in self.cache.orders_open():
            if (
                order.strategy_id != self.id
                or order.instrument_id != self.config.instrument_id
                or order.client_order_id in covered
                or order.is_closed
                or order.is_pending_cancel
            ):
                continue
            if order.contingency_type == ContingencyType.OCO:
                covered.update(order.linked_order_ids or ())
            self.cancel_order(order)

    def _trail(self, bar: Bar, direction: int) -> str | None:
        """Ratchet the stop; returns ``"trailing_stop"`` when the close is at or through the
        level (within a tick: a stop there would already be in the market)."""
        lifecycle = self._lifecycle
        state = lifecycle.state
        close = bar.close.as_double()
        level = lifecycle.trail_level(
            bar.high.as_double(),
            bar.low.as_double(),
            self._trailing_multiple * self.atr.value,
            direction,
        )
        if trail_hit(close, level, self._tick, direction):
            return "trailing_stop"
        if not lifecycle.trail_improves(level, direction):
            return None
        assert self.instrument is not None and state.stop_order_id is not None
        new_stop = self.instrument.make_price(round_to_tick(level, self._tick, direction < 0))
        if new_stop.as_double() == state.stop_price:
            return None
        order = self.cache.order(state.stop_order_id)
        if order is None or not order.is_open or order.is_pending_update:
            return None  # not yet accepted (live) or an update is in flight: next bar
        previous = state.stop_price
        state.stop_price = new_stop.as_double()
        if self.config.publish_decisions:
            features = self._decision_features(close, None)
            features["previous_stop"] = previous
            features["trail_anchor"] = state.trail_anchor
            self._inputs = self._decision_inputs(
                bar,
                direction=direction,
                position=self._position(),
                stop_order_quantity=order.quantity.as_double(),
            )
            self._record_decision(
                ts_event=bar.ts_event,
                trace_id=state.entry_trace_id,
                action="adjust",
                reason="trailing_stop",
                features=features,
                signal=hold_signal_record(direction, self.current_regime_scale()),
                intended=intended_order(order, reduce_only=True, stop_loss=str(new_stop)),
            )
        self.modify_order(order, trigger_price=new_stop)
        return None

    def _rebalance(
        self,
        bar: Bar,
        position: Position,
        direction: int,
        desired: Decimal,
        reason: str,
    ) -> None:
        """Reduce the position to ``desired`` (at least one lot) with a reduce-only market order,
        shrinking its stop and target first."""
        assert self.instrument is not None
        held = position.quantity.as_decimal()
        price = bar.close.as_double()
        trace_id = self._recorder.next_trace_id(bar.ts_event)
        order = self.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=exit_side(direction),
            quantity=self.instrument.make_qty(held - desired),
            time_in_force=TIME_IN_FORCE,
            reduce_only=True,
            tags=["ADJUST", trace_tag(trace_id)],
        )
        self._recorder.set_target(
            float(desired) * direction,
            price,
            bar.ts_event,
            f"adjust:{reason}",
        )
        if self.config.publish_decisions:
            features = self._decision_features(price, None)
            features["held_quantity"] = float(held)
            self._inputs = self._decision_inputs(bar, direction=direction, position=position)
            self._record_decision(
                ts_event=bar.ts_event,
                trace_id=trace_id,
                action="adjust",
                reason=reason,
                features=features,
                signal=hold_signal_record(direction, self.current_regime_scale()),
                intended=intended_order(order, reduce_only=True),
            )
        # Shrink the stop and target first (they are not reduce-only, strategies.orders); a denied
        # reduction grows them back on the next bar (deferred bracket sync).
        self._resize_bracket(desired)
        self._lifecycle.exit_submitted(order.client_order_id)
        self.submit_order(order, position_id=position.id)

    def _protect(self, position: Position) -> None:
        """Re-arm a stop at the last stop level if no protective stop is working, with a take
        profit at the last target level (linked OCO) when the lost bracket had one."""
        state = self._lifecycle.state
        order = self.cache.order(state.stop_order_id) if state.stop_order_id else None
        if order is not None and order.is_open:
            return
        if not math.isfinite(state.stop_price) or self.instrument is None:
            return
        # OCO children (strategies.orders): a partial fill of either cancels both, so the rest of
        # the position gets a new pair. A target still working is replaced, never doubled.
        target = self.cache.order(state.target_order_id) if state.target_order_id else None
        target_price = target.price if target is not None and target.has_price else None
        if target is not None and target.is_open and not target.is_pending_cancel:
            self.cancel_order(target)
        exit_side = OrderSide.SELL if position.is_long else OrderSide.BUY
        tags = [trace_tag(state.entry_trace_id)]
        if order is not None and order.filled_qty.as_double() > 0.0:
            # The stop triggered and filled in part before the venue cancelled it: the rest
            # leaves at market, as the stop would have.
            rest = self.order_factory.market(
                instrument_id=position.instrument_id,
                order_side=exit_side,
                quantity=position.quantity,
                time_in_force=TimeInForce.GTC,
                reduce_only=True,
                tags=["STOP_LOSS", *tags],
            )
            self.log.warning(f"Stop {order.client_order_id} cancelled part-filled: rest at market")
            self._lifecycle.exit_submitted(rest.client_order_id)
            self.submit_order(rest, position_id=position.id)
            return
        stop_price = self.instrument.make_price(state.stop_price)
        self.log.warning(f"Re-arming the protective stop at {stop_price}, target {target_price}")
        if target_price is None:
            stop = self.order_factory.stop_market(
                instrument_id=position.instrument_id,
                order_side=exit_side,
                quantity=position.quantity,
                trigger_price=stop_price,
                time_in_force=TimeInForce.GTC,
                reduce_only=self._reduce_only_children,  # see strategies.orders
                tags=["STOP_LOSS", *tags],
            )
            self._lifecycle.stop_rearmed(stop.client_order_id)
            self.submit_order(stop, position_id=position.id)
            return
        pair = exit_pair(
            factory=self.order_factory,
            clock=self.clock,
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=position.instrument_id,
            exit_side=exit_side,
            quantity=position.quantity,
            stop_price=stop_price,
            target_price=target_price,
            tags=tags,
            reduce_only=self._reduce_only_children,
        )
        stop, new_target = pair.orders
        self._lifecycle.stop_rearmed(stop.client_order_id, new_target.client_order_id)
        self.submit_order_list(pair, position_id=position.id)

    def _resize_bracket(self, remaining: Decimal) -> None:
        """Make the stop and target cover exactly ``remaining`` units (after a reduction, a
        denied rebalance, or a venue that does not link them)."""
        assert self.instrument is not None
        state = self._lifecycle.state
        for order_id in (state.stop_order_id, state.target_order_id):
            order = self.cache.order(order_id) if order_id is not None else None
            if order is None or not order.is_open or order.is_pending_update:
                continue
            # An order's quantity includes what it already filled.
            total = order.filled_qty.as_decimal() + remaining
            if total != order.quantity.as_decimal():
                self.modify_order(order, quantity=self.instrument.make_qty(total))

    # -- order failures and deferred maintenance ---------------------------------------------------

    def _order_failed(self, order_id: ClientOrderId, why: str, ts_event: int) -> None:
        """An order will not fill: the lifecycle resets what it held; log and re-target."""
        position = self._position()
        failure = self._lifecycle.order_failed(order_id, position is not None)
        if failure is OrderFailure.ENTRY:
            self.log.warning(f"Entry {order_id} {why}; staying flat")
            if position is None:
                self._recorder.set_target(0.0, self._last_price, ts_event, "entry_failed")
        elif failure is OrderFailure.EXIT:
            self.log.error(f"Exit/adjust order {order_id} {why}; retrying on the next bar")
            if position is not None:
                self._recorder.set_target(
                    float(position.signed_qty),
                    self._last_price,
                    ts_event,
                    "exit_failed",
                )
        elif failure is OrderFailure.STOP:
            self.log.warning(f"Protective stop {order_id} {why}: flattening on the next bar")

    def _stop_lost(self, order_id: ClientOrderId, why: str) -> None:
        if self._lifecycle.stop_lost(order_id, self._position() is not None):
            self.log.warning(f"Protective stop {order_id} {why}: re-arming it on the next bar")

    def _run_deferred(self, bar: Bar) -> None:
        """The maintenance position and order events asked for (see strategies.lifecycle)."""
        position = self._position()
        self._lifecycle.run_deferred(
            position is not None,
            cancel_orders=self._cancel_own_orders,
            flatten=lambda reason: self._exit(
                position,
                bar.ts_event,
                bar.close.as_double(),
                reason,
                path="deferred",
                bar=bar,
            ),
            protect=lambda: self._protect(position),
            sync_bracket=lambda: self._resize_bracket(position.quantity.as_decimal()),
        )

    # -- position ----------------------------------------------------------------------------------

    def _position(self) -> Position | None:
        """This strategy's open position in the instrument (never another strategy's)."""
        positions = self.cache.positions_open(
            instrument_id=self.config.instrument_id,
            strategy_id=self.id,
        )
        return positions[0] if positions else None

    def _recover_position(self) -> None:
        """Adopt a position that is already open at start (live restart) and its stop.

        An adopted position keeps its stop, target, trailing stop and signal exits but is not
        regime-rebalanced; its time stop counts bars from the restart.
        """
        position = self._position()
        lifecycle = self._lifecycle
        if self._restored:
            self._restored = False
            direction = 0 if position is None else (1 if position.is_long else -1)
            if lifecycle.state.direction == direction:
                # The saved lifecycle describes the cached position: this strategy carries on
                # (sizing, allocation and rebalancing as before the restart).
                self.log.info(f"Restored lifecycle state (direction {direction:+d})")
                return
            self.log.warning(
                f"Saved lifecycle state (direction {lifecycle.state.direction:+d}) does not "
                f"match the cached position (direction {direction:+d}): adopting the position",
            )
            lifecycle.reset()
        if position is None:
            return
        lifecycle.adopt(
            1 if position.is_long else -1,
            position.quantity.as_decimal(),
            position.avg_px_open,
        )
        for order in self.cache.orders_open(
            instrument_id=self.config.instrument_id,
            strategy_id=self.id,
        ):
            tags = order.tags or []
            if "STOP_LOSS" in tags and order.trigger_price is not None:
                lifecycle.adopt_stop(
                    order.client_order_id,
                    order.trigger_price.as_double(),
                    trace_id_from_tags(tags) or "",
                )
            elif "TAKE_PROFIT" in tags:
                lifecycle.adopt_target(order.client_order_id)
        self._recorder.adopt_target(float(position.signed_qty))
        self.log.info(f"Recovered open position {position.id} ({position.signed_qty})")

    # -- decision records --------------------------------------------------------------------------

    def _decision_features(self, close: float, sizing: SizeBreakdown | None) -> dict[str, float]:
        state = self._lifecycle.state
        return self._recorder.features(
            self.features(),
            close=close,
            atr=self.atr.value,
            regime_scale=self.current_regime_scale(),
            allocation_weight=self.allocation_weight,
            bars_held=state.bars_held,
            stop_price=state.stop_price,
            sizing=sizing,
        )

    def _record_decision(
        self,
        *,
        ts_event: int,
        trace_id: str,
        action: str,
        reason: str,
        features: dict[str, float],
        signal: Signal,
        intended: IntendedOrder | None,
    ) -> None:
        self._recorder.record(
            ts_event=ts_event,
            trace_id=trace_id,
            action=action,
            reason=reason,
            features=features,
            signal=signal,
            intended=intended,
            regime_probabilities=self.regime_probabilities,
            model_versions={
                "regime": self.regime_model_version,
                "allocation": self.allocation_model_version,
            },
            allocation_weight=self.allocation_weight,
            allocation_trace_id=self.allocation_trace_id,
            regime_most_likely=self.regime_most_likely,
            inputs=self._take_inputs(),
        )

    def _take_inputs(self) -> DecisionInputs | None:
        # Handed over through the instance rather than a parameter: a subclass that records
        # its own decisions (strategies.rl_ensemble) overrides _record_decision's signature.
        inputs, self._inputs = self._inputs, None
        return inputs

    def _decision_inputs(
        self,
        bar: Bar | None,
        *,
        direction: int,
        path: str = "decide",
        position: Position | None = None,
        equity: float = math.nan,
        free_balance: float | None = None,
        max_notional: float = math.nan,
        signal_stop_distance: float | None = None,
        stop_order_quantity: float = math.nan,
    ) -> DecisionInputs:
        """The record's ``sizing_inputs`` (:class:`strategies.decisions.DecisionInputs`)."""
        config = self.config
        state = self._lifecycle.state
        nan = math.nan
        # The values _decide noted before moving them: only this bar's decision on a position.
        ruled = path == "decide" and position is not None
        return DecisionInputs(
            path=DECISION_PATHS[path],
            equity=equity,
            free_balance=nan if free_balance is None else free_balance,
            taker_fee=self._taker_fee,
            multiplier=self._multiplier,
            lot=float(self._lot),
            min_quantity=float(self._min_quantity),
            tick=float(self._tick),
            risk_per_trade=config.risk_per_trade,
            risk_reward_ratio=config.risk_reward_ratio,
            stop_atr_multiple=config.stop_atr_multiple,
            max_notional_fraction=config.max_notional_fraction,
            max_notional=max_notional,
            direction=float(direction),
            signal_stop_distance=nan if signal_stop_distance is None else signal_stop_distance,
            position_quantity=nan if position is None else position.quantity.as_double(),
            entry_quantity=float(state.entry_quantity),
            full_quantity=state.full_quantity,
            entry_allocation=state.entry_allocation,
            adopted=float(state.adopted),
            flatten_due=float(self._flatten_due) if ruled else 0.0,
            trail_anchor=self._anchor_before if ruled else nan,
            stop_price=self._stop_before if ruled else nan,
            stop_order_quantity=stop_order_quantity,
            bar_open=nan if bar is None else bar.open.as_double(),
            bar_high=nan if bar is None else bar.high.as_double(),
            bar_low=nan if bar is None else bar.low.as_double(),
            bar_volume=nan if bar is None else bar.volume.as_double(),
        )

    def _publish(self, topic: str, message: Any) -> None:
        self.msgbus.publish(topic=topic, msg=message)

    def _now_ns(self) -> int:
        return self.clock.timestamp_ns()
