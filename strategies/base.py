"""The base class of grodt's rule strategies: regime-aware, allocation-aware, risk-sized.

A researcher writes a new strategy as one subclass of :class:`RegimeAwareStrategy` (indicators and
an :meth:`~RegimeAwareStrategy.entry_signal`) plus one YAML component file. The base does the rest,
identically in a BacktestNode and a TradingNode:

* **Regime blending.** It listens to the regime actor's
  :class:`~grodt.core.messages.RegimeProbabilities`
  for ``regime_instrument_id`` (default: the traded instrument) — published by the actor, or
  replayed from the catalog with or without metadata — and uses
  :data:`~grodt.core.messages.NEUTRAL_REGIME_PROBABILITIES` until the first record. Its size is
  scaled
  by ``Σ p(regime) · regime_affinity[regime]`` (``regime_gating: soft``) or by 1/0 depending on
  whether the most likely regime has a positive affinity (``hard``).
* **Allocation.** Capital weight from YAML (``allocation_weight``), replaced by the
  meta-controller's :class:`~grodt.core.messages.StrategyAllocation` records addressed to this
  strategy's id.
* **Sizing from risk** (:mod:`strategies.sizing`): ``risk_per_trade`` of the allocated equity over
  the stop distance ``stop_atr_multiple · ATR``, capped at a max notional, rounded down to the
  instrument's lot.
* **Exits.** Every entry is a bracket: market entry, ``STOP_MARKET`` stop loss at the stop distance
  and ``LIMIT`` take profit at ``risk_reward_ratio`` times it. Optional ATR trailing stop
  (chandelier: highest high since entry minus ``trailing_atr_multiple · ATR``, ratcheted by
  modifying the stop order), time stop (``max_holding_bars``), strategy signal exits
  (:meth:`~RegimeAwareStrategy.exit_signal`), flattening before the session close, regime
  rebalancing (scale-out when the regime scale falls), and closing or keeping positions at stop.
* **Per-strategy bookkeeping.** The strategy's ``oms_type`` is ``NETTING``: Nautilus' execution
  engine keeps one position per (instrument, strategy) with id ``{instrument_id}-{strategy_id}``,
  so several strategies on one instrument have their own positions, stops and PnL
  (``portfolio.is_flat()`` is instrument-wide and never used). Simulated venues that host several
  strategies on one instrument must be ``oms_type: HEDGING``: Nautilus 1.221's simulated NETTING
  venue resolves a fill's position as the *first open position of the instrument*, whatever its
  strategy, and clamps one strategy's reduce-only stop to another strategy's position (see
  ``docs/strategies.md``; a test pins the behaviour).
* **Forensics.** Each entry, exit and adjustment builds one
  :class:`~grodt.core.records.DecisionRecord` (inputs, indicator values, regime probabilities,
  signal,
  intended order) and publishes it on :data:`~grodt.core.topics.Topics.DECISIONS`; every order it
  sends carries the decision's ``trace_id=<id>`` tag. Nothing is built on bars without a decision.
* **Target exposure.** ``target_quantity`` (signed units) and ``target_exposure`` (signed notional,
  account currency, at the decision price) say what the strategy is steering to; every change is
  published as :class:`TargetExposure` on :data:`TARGET_EXPOSURE_TOPIC` and recorded in the
  decision's features.

Subclass API (see ``docs/strategies.md``): create indicators in ``__init__`` and register them with
:meth:`~RegimeAwareStrategy.add_indicator`; implement :meth:`~RegimeAwareStrategy.entry_signal`;
optionally :meth:`~RegimeAwareStrategy.exit_signal`, :meth:`~RegimeAwareStrategy.features` and
:meth:`~RegimeAwareStrategy.post_bar`. Do not override ``on_bar``.
"""

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
from grodt.core.records import DecisionRecord
from grodt.core.records import IntendedOrder
from grodt.core.records import Signal
from grodt.core.records import make_trace_id
from grodt.core.records import trace_id_from_tags
from grodt.core.records import trace_tag
from grodt.core.topics import KILL_SWITCH_TOPIC
from grodt.core.topics import TARGET_EXPOSURE_TOPIC
from grodt.core.topics import Topics
from models.regime.gating import regime_scale
from models.regime.gating import validate_affinity
from strategies.indicators import RollingVwap
from strategies.indicators import SessionSchedule
from strategies.indicators import SessionVwap
from strategies.indicators import parse_time_of_day
from strategies.indicators import parse_timezone
from strategies.orders import bracket
from strategies.sizing import SizeBreakdown
from strategies.sizing import floor_to_lot
from strategies.sizing import position_size
from strategies.sizing import round_to_tick

INTRADAY_AGGREGATIONS = frozenset(
    {
        BarAggregation.MILLISECOND,
        BarAggregation.SECOND,
        BarAggregation.MINUTE,
        BarAggregation.HOUR,
    },
)
_NANOS_PER_MINUTE = 60_000_000_000
_PROBABILITY_TOLERANCE = 1e-6
_TIE_TOLERANCE = 1e-12


def _same(order_id: ClientOrderId, other: ClientOrderId | None) -> bool:
    """Identifier equality that tolerates ``None`` (Nautilus identifiers raise on it)."""
    return other is not None and order_id == other


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


@dataclass(frozen=True, slots=True)
class TargetExposure:
    """A strategy's new target, published on :data:`TARGET_EXPOSURE_TOPIC` when it changes.

    Attributes
    ----------
    strategy_id, instrument_id : str
        Who targets what.
    ts_event : int
        Decision (or position event) time, UNIX ns.
    target_quantity : float
        Signed units (+ long, - short, 0 flat).
    target_exposure : float
        ``target_quantity · price · multiplier`` at ``price``, account currency.
    price : float
        Reference price of the change.
    reason : str
        What changed it (``entry``, ``exit:<reason>``, ``adjust:regime``, ``position_closed``,
        ``entry_denied``, ...).
    """

    strategy_id: str
    instrument_id: str
    ts_event: int
    target_quantity: float
    target_exposure: float
    price: float
    reason: str


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

    Attributes
    ----------
    regime_probabilities : dict[str, float]
        The latest p(regime) (the neutral prior before the first record).
    allocation_weight : float
        The current capital weight in [0, 1].
    target_quantity : float
        Signed units the strategy is steering to (0 when flat and not entering).
    target_exposure : float
        ``target_quantity · price · multiplier`` at the last decision, account currency.
    atr : AverageTrueRange
        ATR(``atr_period``), Wilder smoothing.
    decisions : int
        Decision records built so far.
    """

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
        self._reset_state()

    # -- subclass API ------------------------------------------------------------------------

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
        ``update_raw`` of a volume); the base only waits for it. Call from ``__init__``.
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

    def entry_signal(self, bar: Bar) -> EntrySignal | None:
        """Decide whether to enter at this bar's close (called only while flat and idle)."""
        raise NotImplementedError(f"{type(self).__name__} must implement entry_signal(bar)")

    def exit_signal(self, bar: Bar, direction: int) -> str | None:
        """A reason to exit the open position (``direction`` +1 long, -1 short) at market now,
        or ``None``. Brackets, trailing, time and session exits are handled by the base."""
        return None

    def features(self) -> dict[str, float]:
        """Indicator values recorded with every decision (floats)."""
        return {}

    def post_bar(self, bar: Bar) -> None:
        """Called at the end of every bar, after the decision and the lagged indicators."""

    # -- lifecycle ---------------------------------------------------------------------------

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
                self._exit(position, ts, self._last_price, "strategy_stop")
            else:
                self.cancel_own_orders()
        elif position is not None:
            self.log.info("Keeping the open position and its stop/target orders at stop")
        self._unsubscribe_inputs()
        self.unsubscribe_bars(self.config.bar_type)

    def on_reset(self) -> None:
        for indicator in (*self._indicators, *self._lagged, *self._manual):
            indicator.reset()
        self._reset_state()

    def _reset_state(self) -> None:
        self.regime_probabilities: dict[str, float] = dict(NEUTRAL_REGIME_PROBABILITIES)
        self.regime_most_likely: str | None = None
        self.regime_model_version = "prior"
        self.allocation_weight: float = float(self.config.allocation_weight)
        self.allocation_model_version = "static"
        self.allocation_trace_id = ""
        self.target_quantity = 0.0
        self.target_exposure = 0.0
        self.decisions = 0
        self.halted = False
        self.skipped_entries: dict[str, int] = {}
        self._last_price = math.nan
        self._last_ts = 0
        self._adopted = False
        self._warm = False
        self._sequence = 0
        self._pending_entry_id: ClientOrderId | None = None
        self._pending_exit_id: ClientOrderId | None = None
        self._stop_order_id: ClientOrderId | None = None
        self._target_order_id: ClientOrderId | None = None
        self._entry_trace_id = ""
        self._direction = 0
        self._entry_quantity = Decimal(0)
        self._full_quantity = 0.0
        self._entry_allocation = 0.0
        self._stop_price = math.nan
        self._trail_anchor = math.nan
        self._bars_held = 0
        self._deferred = False
        self._deferred_flatten: str | None = None
        self._deferred_protect = False
        self._deferred_sync = False
        self._deferred_cleanup = False

    # -- inputs: regime, allocation, kill switch ---------------------------------------------

    def _subscribe_inputs(self) -> None:
        # DataType(RegimeProbabilities) without metadata subscribes to the wildcard topic
        # ``data.RegimeProbabilities*``: it receives the regime actor's records (published with or
        # without metadata) and catalog replays (with metadata, or keyed by venue/symbol when
        # the data config has none). Records are filtered by instrument in on_data, so each one
        # arrives exactly once whatever its topic.
        self.subscribe_data(regime_data_type())
        self.subscribe_data(allocation_data_type())
        self.msgbus.subscribe(topic=KILL_SWITCH_TOPIC, handler=self._on_kill_switch)

    def _unsubscribe_inputs(self) -> None:
        self.unsubscribe_data(regime_data_type())
        self.unsubscribe_data(allocation_data_type())
        self.msgbus.unsubscribe(topic=KILL_SWITCH_TOPIC, handler=self._on_kill_switch)

    def on_data(self, data: Any) -> None:
        if isinstance(data, RegimeProbabilities):
            self._on_regime(data)
        elif isinstance(data, StrategyAllocation):
            self._on_allocation(data)

    def _on_regime(self, record: RegimeProbabilities) -> None:
        if record.instrument_id != self._regime_instrument_id:
            return
        probabilities = {
            "bull": record.p_bull,
            "bear": record.p_bear,
            "sideways": record.p_sideways,
        }
        total = probabilities["bull"] + probabilities["bear"] + probabilities["sideways"]
        if not (
            math.isfinite(total)
            and abs(total - 1.0) <= _PROBABILITY_TOLERANCE
            and min(probabilities.values()) >= 0.0
        ):
            self.log.error(
                f"Ignoring invalid regime record for {record.instrument_id} at {record.ts_event}: "
                f"probabilities {probabilities} must be non-negative and sum to 1",
            )
            return
        self.regime_probabilities = probabilities
        top = max(probabilities.values())
        if sum(p >= top - _TIE_TOLERANCE for p in probabilities.values()) > 1:
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

    def current_regime_scale(self) -> float:
        """The regime multiplier now (see :func:`models.regime.gating.regime_scale`)."""
        return regime_scale(
            self.regime_probabilities,
            self._affinity,
            self.config.regime_gating,
            self.regime_most_likely,
        )

    # -- the bar loop ------------------------------------------------------------------------

    def on_bar(self, bar: Bar) -> None:
        self._last_price = bar.close.as_double()
        self._last_ts = bar.ts_event
        if self._deferred:
            self._housekeeping(bar)
        if self._warm or self._warmed_up():
            self._decide(bar)
        for indicator in self._lagged:
            indicator.handle_bar(bar)
        self.post_bar(bar)

    def _warmed_up(self) -> bool:
        self._warm = all(
            indicator.initialized for indicator in (*self._indicators, *self._lagged, *self._manual)
        )
        return self._warm

    def _decide(self, bar: Bar) -> None:
        position = self._position()
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
            if self._pending_entry_id is not None or self._pending_exit_id is not None:
                return
            if self.halted or entries_blocked:
                return
            signal = self.entry_signal(bar)
            if signal is not None:
                self._enter(bar, signal)
            return
        self._bars_held += 1
        if self._pending_exit_id is not None:
            return
        direction = 1 if position.is_long else -1
        reason: str | None = None
        if flatten_due:
            reason = "session_close"
        elif self.config.max_holding_bars and self._bars_held >= self.config.max_holding_bars:
            reason = "time_stop"
        else:
            reason = self.exit_signal(bar, direction)
        plan = None
        if (
            reason is None
            and self.config.regime_rebalance_threshold is not None
            and not self._adopted
        ):
            plan = self._rebalance_plan(position)
        if plan is not None and plan[0] < self._min_quantity:
            # A rebalance to nothing is an exit: decided before the trailing stop moves, so no
            # stop modification is in flight when the exit cancels it (live, a modify passes the
            # risk engine and would reach the venue after the cancel).
            reason = plan[1]
        if reason is None and self.config.trailing_stop:
            reason = self._trail(bar, position, direction)
        if reason is not None:
            self._exit(position, ts, bar.close.as_double(), reason)
            return
        if plan is not None:
            self._rebalance(bar, position, direction, *plan)

    # -- entries -----------------------------------------------------------------------------

    def account_equity(self) -> float:
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

    def size(self, price: float, stop_distance: float, strength: float) -> SizeBreakdown:
        """Risk-based size at ``price`` with the current allocation and regime scale."""
        config = self.config
        equity = self.account_equity()
        allocated = max(equity, 0.0) * self.allocation_weight
        max_notional = allocated * config.max_notional_fraction
        if config.max_notional is not None:
            max_notional = min(max_notional, config.max_notional)
        account = self.portfolio.account(config.instrument_id.venue)
        if account is not None and account.type == AccountType.CASH:
            assert self.instrument is not None
            free = account.balance_free(self.instrument.quote_currency)
            fee = float(self.instrument.taker_fee)
            if free is not None:
                max_notional = min(max_notional, free.as_double() / (1.0 + fee) * 0.999)
        return position_size(
            equity=equity,
            allocation_weight=self.allocation_weight,
            risk_per_trade=config.risk_per_trade,
            stop_distance=stop_distance,
            price=price,
            multiplier=self._multiplier,
            max_notional=max(max_notional, 0.0),
            regime_scale=self.current_regime_scale(),
            strength=strength,
            lot=self._lot,
        )

    def _skip(self, reason: str) -> None:
        self.skipped_entries[reason] = self.skipped_entries.get(reason, 0) + 1

    def _enter(self, bar: Bar, signal: EntrySignal) -> None:
        config = self.config
        assert self.instrument is not None
        if signal.direction < 0 and not config.allow_short:
            self._skip("short_not_allowed")
            return
        price = bar.close.as_double()
        stop_distance = signal.stop_distance or config.stop_atr_multiple * self.atr.value
        sizing = self.size(price, stop_distance, signal.strength)
        if sizing.regime_scale <= 0.0:
            self._skip("regime")
            return
        if sizing.quantity < self._min_quantity:
            self._skip("size")
            return
        instrument = self.instrument
        target_distance = config.risk_reward_ratio * stop_distance
        tick = self._tick
        if signal.direction > 0:
            side = OrderSide.BUY
            stop_price = instrument.make_price(round_to_tick(price - stop_distance, tick, False))
            target_price = instrument.make_price(round_to_tick(price + target_distance, tick, True))
        else:
            side = OrderSide.SELL
            stop_price = instrument.make_price(round_to_tick(price + stop_distance, tick, True))
            target_price = instrument.make_price(
                round_to_tick(price - target_distance, tick, False),
            )
        if stop_price.as_double() <= 0.0 or target_price.as_double() <= 0.0:
            self._skip("price")
            return
        quantity = instrument.make_qty(sizing.quantity)
        trace_id = self._next_trace_id(bar.ts_event)
        tag = trace_tag(trace_id)
        order_list = bracket(
            factory=self.order_factory,
            clock=self.clock,
            trader_id=self.trader_id,
            strategy_id=self.id,
            instrument_id=config.instrument_id,
            side=side,
            quantity=quantity,
            stop_price=stop_price,
            target_price=target_price,
            tags=[tag],
            reduce_only_children=self._reduce_only_children,
        )
        entry, stop_order, target_order = order_list.orders
        signed = float(sizing.quantity) * signal.direction
        self._pending_entry_id = entry.client_order_id
        self._stop_order_id = stop_order.client_order_id
        self._target_order_id = target_order.client_order_id
        self._entry_trace_id = trace_id
        self._direction = signal.direction
        self._entry_quantity = sizing.quantity
        self._full_quantity = sizing.base_quantity * signal.strength
        self._entry_allocation = self.allocation_weight
        self._stop_price = stop_price.as_double()
        self._set_target(signed, price, bar.ts_event, "entry")
        if config.publish_decisions:
            features = self._decision_features(price, sizing)
            features.update(signal.features)
            self._publish_decision(
                ts_event=bar.ts_event,
                trace_id=trace_id,
                action="entry",
                reason=signal.reason,
                features=features,
                signal=Signal(
                    strength=max(-1.0, min(1.0, signal.direction * signal.strength)),
                    expected_return=signal.direction * target_distance / price,
                    uncertainty=stop_distance / price,
                    horizon_bars=config.max_holding_bars or 0,
                    confidence=max(0.0, min(1.0, sizing.regime_scale)),
                ),
                intended=IntendedOrder(
                    client_order_id=entry.client_order_id.value,
                    side="BUY" if side == OrderSide.BUY else "SELL",
                    order_type="MARKET",
                    quantity=str(quantity),
                    price=None,
                    stop_loss=str(stop_price),
                    take_profit=str(target_price),
                    reduce_only=False,
                ),
            )
        self.submit_order_list(order_list)

    # -- exits and adjustments ---------------------------------------------------------------

    def _exit(self, position: Position, ts_event: int, price: float, reason: str) -> None:
        """Cancel the bracket and close the position at market (reduce-only)."""
        trace_id = self._next_trace_id(ts_event)
        order = self.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=OrderSide.SELL if position.is_long else OrderSide.BUY,
            quantity=position.quantity,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            tags=["EXIT", trace_tag(trace_id)],
        )
        self._pending_exit_id = order.client_order_id
        self._set_target(0.0, price, ts_event, f"exit:{reason}")
        if self.config.publish_decisions:
            self._publish_decision(
                ts_event=ts_event,
                trace_id=trace_id,
                action="exit",
                reason=reason,
                features=self._decision_features(price, None),
                signal=Signal(
                    strength=0.0,
                    expected_return=0.0,
                    uncertainty=0.0,
                    horizon_bars=0,
                    confidence=max(0.0, min(1.0, self.current_regime_scale())),
                ),
                intended=IntendedOrder(
                    client_order_id=order.client_order_id.value,
                    side="SELL" if position.is_long else "BUY",
                    order_type="MARKET",
                    quantity=str(position.quantity),
                    price=None,
                    stop_loss=None,
                    take_profit=None,
                    reduce_only=True,
                ),
            )
        self.cancel_own_orders()
        self.submit_order(order, position_id=position.id)

    def cancel_own_orders(self) -> None:
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

    def _trail(self, bar: Bar, position: Position, direction: int) -> str | None:
        """Ratchet the stop; returns ``"trailing_stop"`` when the close is at or through the
        level (within a tick: a stop there would already be in the market)."""
        atr = self.atr.value
        close = bar.close.as_double()
        margin = 1.5 * float(self._tick)
        if direction > 0:
            self._trail_anchor = max(self._trail_anchor, bar.high.as_double())
            level = self._trail_anchor - self._trailing_multiple * atr
            if close - level < margin:
                return "trailing_stop"
            improves = level > self._stop_price
        else:
            self._trail_anchor = min(self._trail_anchor, bar.low.as_double())
            level = self._trail_anchor + self._trailing_multiple * atr
            if level - close < margin:
                return "trailing_stop"
            improves = level < self._stop_price
        if not improves or self._stop_order_id is None:
            return None
        assert self.instrument is not None
        new_stop = self.instrument.make_price(round_to_tick(level, self._tick, direction < 0))
        if new_stop.as_double() == self._stop_price:
            return None
        order = self.cache.order(self._stop_order_id)
        if order is None or not order.is_open or order.is_pending_update:
            return None  # not yet accepted (live) or an update is in flight: next bar
        previous = self._stop_price
        self._stop_price = new_stop.as_double()
        if self.config.publish_decisions:
            features = self._decision_features(bar.close.as_double(), None)
            features["previous_stop"] = previous
            features["trail_anchor"] = self._trail_anchor
            self._publish_decision(
                ts_event=bar.ts_event,
                trace_id=self._entry_trace_id,
                action="adjust",
                reason="trailing_stop",
                features=features,
                signal=self._hold_signal(direction),
                intended=IntendedOrder(
                    client_order_id=self._stop_order_id.value,
                    side="SELL" if direction > 0 else "BUY",
                    order_type="STOP_MARKET",
                    quantity=str(order.quantity),
                    price=None,
                    stop_loss=str(new_stop),
                    take_profit=None,
                    reduce_only=True,
                ),
            )
        self.modify_order(order, trigger_price=new_stop)
        return None

    def _rebalance_plan(self, position: Position) -> tuple[Decimal, str] | None:
        """``(desired quantity, reason)`` when the position must shrink, else ``None``.

        Scale down (never up) when allocation × regime scale fell far enough: target = entry's
        full size × (allocation now / at entry) × regime scale now, capped at the entry
        quantity; acts when the held quantity exceeds it by the threshold (a fraction of the
        entry quantity). A desired quantity below one lot means an exit.
        """
        threshold = self.config.regime_rebalance_threshold
        assert threshold is not None
        allocation_ratio = (
            self.allocation_weight / self._entry_allocation if self._entry_allocation > 0 else 1.0
        )
        desired_units = self._full_quantity * allocation_ratio * self.current_regime_scale()
        held_units = position.quantity.as_double()
        entry_units = float(self._entry_quantity)
        # Float pre-check: the common case (nothing to do) costs no Decimal arithmetic.
        if desired_units >= held_units or (
            desired_units >= 1e-12 and held_units - desired_units < threshold * entry_units
        ):
            return None
        desired = min(floor_to_lot(desired_units, self._lot), self._entry_quantity)
        if desired >= position.quantity.as_decimal():
            return None
        return desired, "regime" if allocation_ratio == 1.0 else "rebalance"

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
        reduce = held - desired
        trace_id = self._next_trace_id(bar.ts_event)
        order = self.order_factory.market(
            instrument_id=position.instrument_id,
            order_side=OrderSide.SELL if direction > 0 else OrderSide.BUY,
            quantity=self.instrument.make_qty(reduce),
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            tags=["ADJUST", trace_tag(trace_id)],
        )
        self._set_target(float(desired) * direction, price, bar.ts_event, f"adjust:{reason}")
        if self.config.publish_decisions:
            features = self._decision_features(price, None)
            features["held_quantity"] = float(held)
            self._publish_decision(
                ts_event=bar.ts_event,
                trace_id=trace_id,
                action="adjust",
                reason=reason,
                features=features,
                signal=self._hold_signal(direction),
                intended=IntendedOrder(
                    client_order_id=order.client_order_id.value,
                    side="SELL" if direction > 0 else "BUY",
                    order_type="MARKET",
                    quantity=str(order.quantity),
                    price=None,
                    stop_loss=None,
                    take_profit=None,
                    reduce_only=True,
                ),
            )
        # Shrink the stop and target first (they are not reduce-only, strategies.orders); a denied
        # reduction grows them back on the next bar (_sync_bracket).
        self._resize_bracket(desired)
        self._pending_exit_id = order.client_order_id
        self.submit_order(order, position_id=position.id)

    def _hold_signal(self, direction: int) -> Signal:
        scale = max(0.0, min(1.0, self.current_regime_scale()))
        return Signal(
            strength=float(direction) * scale,
            expected_return=0.0,
            uncertainty=0.0,
            horizon_bars=0,
            confidence=scale,
        )

    # -- order and position events -----------------------------------------------------------
    # Handlers read only event fields, except on fills (the order is cached by then):
    # OrderInitialized can reach a live strategy before the order is in the cache.

    def on_order_filled(self, event: OrderFilled) -> None:
        order_id = event.client_order_id
        if _same(order_id, self._pending_entry_id) or _same(order_id, self._pending_exit_id):
            order = self.cache.order(order_id)
            if order is None or order.is_closed:
                if _same(order_id, self._pending_entry_id):
                    self._pending_entry_id = None
                else:
                    self._pending_exit_id = None

    def on_order_updated(self, event: OrderUpdated) -> None:
        """The risk gate may resize an entry before submission: follow its quantity."""
        if not _same(event.client_order_id, self._pending_entry_id):
            return
        quantity = event.quantity.as_decimal()
        if quantity == self._entry_quantity or self._entry_quantity <= 0:
            return
        self._full_quantity *= float(quantity / self._entry_quantity)
        self._entry_quantity = quantity
        self._set_target(
            float(quantity) * self._direction,
            self._last_price,
            event.ts_event,
            "entry_resized",
        )

    def on_order_denied(self, event: OrderDenied) -> None:
        self._order_failed(event.client_order_id, f"denied: {event.reason}", event.ts_event)

    def on_order_rejected(self, event: OrderRejected) -> None:
        self._order_failed(event.client_order_id, f"rejected: {event.reason}", event.ts_event)

    def on_order_canceled(self, event: OrderCanceled) -> None:
        if self._is_pending(event.client_order_id):
            self._order_failed(event.client_order_id, "canceled", event.ts_event)
        else:
            self._stop_lost(event.client_order_id, "canceled")

    def on_order_expired(self, event: OrderExpired) -> None:
        if self._is_pending(event.client_order_id):
            self._order_failed(event.client_order_id, "expired", event.ts_event)
        else:
            self._stop_lost(event.client_order_id, "expired")

    def _stop_lost(self, order_id: ClientOrderId, why: str) -> None:
        """The protective stop left the market without the strategy asking (an operator, the
        venue, a cancel-all from another client) while the position is open: re-arm it."""
        if (
            _same(order_id, self._stop_order_id)
            and self._pending_entry_id is None
            and self._pending_exit_id is None
            and self._position() is not None
        ):
            self.log.warning(f"Protective stop {order_id} {why}: re-arming it on the next bar")
            self._defer(protect=True)

    def on_order_modify_rejected(self, event: OrderModifyRejected) -> None:
        if _same(event.client_order_id, self._stop_order_id):
            order = self.cache.order(event.client_order_id)
            if order is not None and order.trigger_price is not None:
                self._stop_price = order.trigger_price.as_double()
        self.log.warning(f"Modify rejected for {event.client_order_id}: {event.reason}")

    def _is_pending(self, order_id: ClientOrderId) -> bool:
        return _same(order_id, self._pending_entry_id) or _same(order_id, self._pending_exit_id)

    def _order_failed(self, order_id: ClientOrderId, why: str, ts_event: int) -> None:
        """An order will not fill: reset the pending state it held."""
        if _same(order_id, self._pending_entry_id):
            self.log.warning(f"Entry {order_id} {why}; staying flat")
            self._pending_entry_id = None
            if self._position() is None:
                self._clear_position_state()
                self._set_target(0.0, self._last_price, ts_event, "entry_failed")
        elif _same(order_id, self._pending_exit_id):
            self.log.error(f"Exit/adjust order {order_id} {why}; retrying on the next bar")
            self._pending_exit_id = None
            position = self._position()
            if position is not None:
                self._defer(protect=True)
                self._set_target(
                    float(position.signed_qty),
                    self._last_price,
                    ts_event,
                    "exit_failed",
                )
        elif _same(order_id, self._stop_order_id) and self._pending_entry_id is None:
            position = self._position()
            if position is not None and self._pending_exit_id is None:
                self.log.warning(f"Protective stop {order_id} {why}: flattening on the next bar")
                self._defer(flatten="stop_order_failed")
        elif _same(order_id, self._stop_order_id) or _same(order_id, self._target_order_id):
            # Children of a denied/rejected bracket: the entry's own event resets the state.
            return

    def _protect(self, position: Position) -> None:
        """Re-arm a stop at the last stop level if no protective stop is working."""
        order = self.cache.order(self._stop_order_id) if self._stop_order_id else None
        if order is not None and order.is_open:
            return
        if not math.isfinite(self._stop_price) or self.instrument is None:
            return
        stop = self.order_factory.stop_market(
            instrument_id=position.instrument_id,
            order_side=OrderSide.SELL if position.is_long else OrderSide.BUY,
            quantity=position.quantity,
            trigger_price=self.instrument.make_price(self._stop_price),
            time_in_force=TimeInForce.GTC,
            reduce_only=self._reduce_only_children,  # see strategies.orders
            tags=["STOP_LOSS", trace_tag(self._entry_trace_id)],
        )
        self._stop_order_id = stop.client_order_id
        self._target_order_id = None
        self.log.warning(f"Re-arming the protective stop at {stop.trigger_price}")
        self.submit_order(stop, position_id=position.id)

    def on_position_opened(self, event: PositionOpened) -> None:
        if event.instrument_id != self.config.instrument_id:
            return
        self._bars_held = 0
        if self._direction == 0:  # opened without our entry (external/recovered)
            self._direction = 1 if event.signed_qty > 0 else -1
            self._entry_quantity = event.quantity.as_decimal()
            self._full_quantity = float(self._entry_quantity)
            self._adopted = True
        self._trail_anchor = event.avg_px_open

    def on_position_changed(self, event: PositionChanged) -> None:
        """After a reduction (a rebalance, a partial target fill), the stop and target must not
        exceed the position: checked on the next bar."""
        if event.instrument_id == self.config.instrument_id and self._pending_entry_id is None:
            self._defer(sync_bracket=True)

    def on_position_closed(self, event: PositionClosed) -> None:
        if event.instrument_id != self.config.instrument_id:
            return
        self._pending_exit_id = None
        self._clear_position_state()
        self._defer(cleanup=True)
        if self.target_quantity != 0.0:
            self._set_target(0.0, event.last_px.as_double(), event.ts_event, "position_closed")

    # -- deferred order maintenance -----------------------------------------------------------
    # Position and order events reach the strategy *inside* the venue's fill processing (the
    # backtest matching engine calls back synchronously). Sending orders or modifications from
    # there re-enters the matching engine mid-fill, which Nautilus 1.221 does not survive (a
    # quantity underflow panic). Maintenance is therefore recorded here and done at the start
    # of the next bar, outside any fill, identically in backtest and live.

    def _defer(
        self,
        flatten: str | None = None,
        protect: bool = False,
        sync_bracket: bool = False,
        cleanup: bool = False,
    ) -> None:
        if flatten is not None:
            self._deferred_flatten = flatten
        self._deferred_protect |= protect
        self._deferred_sync |= sync_bracket
        self._deferred_cleanup |= cleanup
        self._deferred = True

    def _housekeeping(self, bar: Bar) -> None:
        self._deferred = False
        position = self._position()
        if self._deferred_cleanup:
            self._deferred_cleanup = False
            if position is None:
                self.cancel_own_orders()
        if position is None or self._pending_exit_id is not None:
            self._deferred_flatten = None
            self._deferred_protect = self._deferred_sync = False
            return
        if self._deferred_flatten is not None:
            reason, self._deferred_flatten = self._deferred_flatten, None
            self._deferred_protect = self._deferred_sync = False
            self._exit(position, bar.ts_event, bar.close.as_double(), reason)
            return
        if self._deferred_protect:
            self._deferred_protect = False
            self._protect(position)
        if self._deferred_sync:
            self._deferred_sync = False
            self._sync_bracket(position)

    def _sync_bracket(self, position: Position) -> None:
        """Make the stop and target cover exactly the position (after a reduction, a denied
        rebalance, or a venue that does not link them)."""
        self._resize_bracket(position.quantity.as_decimal())

    def _resize_bracket(self, remaining: Decimal) -> None:
        assert self.instrument is not None
        for order_id in (self._stop_order_id, self._target_order_id):
            order = self.cache.order(order_id) if order_id is not None else None
            if order is None or not order.is_open or order.is_pending_update:
                continue
            # An order's quantity includes what it already filled.
            total = order.filled_qty.as_decimal() + remaining
            if total != order.quantity.as_decimal():
                self.modify_order(order, quantity=self.instrument.make_qty(total))

    def _clear_position_state(self) -> None:
        self._adopted = False
        self._stop_order_id = None
        self._target_order_id = None
        self._entry_trace_id = ""
        self._direction = 0
        self._entry_quantity = Decimal(0)
        self._full_quantity = 0.0
        self._entry_allocation = 0.0
        self._stop_price = math.nan
        self._trail_anchor = math.nan
        self._bars_held = 0

    # -- helpers -----------------------------------------------------------------------------

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
        if position is None:
            return
        self._direction = 1 if position.is_long else -1
        self._entry_quantity = position.quantity.as_decimal()
        self._full_quantity = float(self._entry_quantity)
        # The regime scale and allocation it was sized at are unknown: rebalancing it against
        # them (the neutral prior right after a restart) would cut it for no reason.
        self._adopted = True
        self._trail_anchor = position.avg_px_open
        for order in self.cache.orders_open(
            instrument_id=self.config.instrument_id,
            strategy_id=self.id,
        ):
            tags = order.tags or []
            if "STOP_LOSS" in tags and order.trigger_price is not None:
                self._stop_order_id = order.client_order_id
                self._stop_price = order.trigger_price.as_double()
                self._entry_trace_id = trace_id_from_tags(tags) or ""
            elif "TAKE_PROFIT" in tags:
                self._target_order_id = order.client_order_id
        self.target_quantity = float(position.signed_qty)
        self.log.info(f"Recovered open position {position.id} ({position.signed_qty})")

    def _next_trace_id(self, ts_event: int) -> str:
        self._sequence += 1
        return make_trace_id(self.id.value, ts_event, self._sequence)

    def _set_target(self, quantity: float, price: float, ts_event: int, reason: str) -> None:
        self.target_quantity = quantity
        self.target_exposure = quantity * price * self._multiplier if quantity else 0.0
        self.msgbus.publish(
            topic=TARGET_EXPOSURE_TOPIC,
            msg=TargetExposure(
                strategy_id=self.id.value,
                instrument_id=self.config.instrument_id.value,
                ts_event=ts_event,
                target_quantity=quantity,
                target_exposure=self.target_exposure,
                price=price,
                reason=reason,
            ),
        )

    def _decision_features(self, price: float, sizing: SizeBreakdown | None) -> dict[str, float]:
        features = self.features()
        features["close"] = price
        features["atr"] = self.atr.value
        features["regime_scale"] = self.current_regime_scale()
        features["allocation_weight"] = self.allocation_weight
        features["target_quantity"] = self.target_quantity
        features["target_exposure"] = self.target_exposure
        features["bars_held"] = float(self._bars_held)
        if math.isfinite(self._stop_price):
            features["stop_price"] = self._stop_price
        if sizing is not None:
            features["equity"] = sizing.equity
            features["allocated_equity"] = sizing.allocated_equity
            features["risk_amount"] = sizing.risk_amount
            features["stop_distance"] = sizing.stop_distance
            features["risk_quantity"] = sizing.risk_quantity
            features["cap_quantity"] = sizing.cap_quantity
            features["base_quantity"] = sizing.base_quantity
            features["signal_strength"] = sizing.strength
        return features

    def _publish_decision(
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
        # Validated construction: measured as fast as model_construct (~50 µs with 20 features,
        # pydantic-core validates in Rust), and a malformed record fails at its source.
        record = DecisionRecord(
            trace_id=trace_id,
            ts_event=ts_event,
            ts_init=self.clock.timestamp_ns(),
            component_id=self.id.value,
            model_versions={
                "regime": self.regime_model_version,
                "allocation": self.allocation_model_version,
            },
            strategy_id=self.id.value,
            instrument_id=self.config.instrument_id.value,
            action=action,
            reason=reason,
            features=features,
            regime_probabilities=dict(self.regime_probabilities),
            signal=signal,
            allocation_weight=self.allocation_weight,
            intended_order=intended,
        )
        self.decisions += 1
        self.msgbus.publish(topic=Topics.DECISIONS, msg=record)
