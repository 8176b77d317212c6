"""The gate's limits as closed-form "largest quantity that fits" computations.

For an order that adds ``q`` units on side ``s`` of instrument ``i`` every exposure limit is a
piecewise-linear function of ``q``. Only its *increasing* piece can bind: an order may never end
above a cap, and an order whose increasing piece already sits above its cap gets quantity 0.
Pieces that the order cannot increase (the other side's bound, a breach left by a price move) do
not block it, so an order that leaves a breach no worse than it was stays possible (e.g. a hedge).

Equity-relative caps use the equity *after* the order's estimated commission
(``E − fee × notional``), so a fill at the reference price cannot push a weight over its cap.
CVaR is convex in ``q``: its largest fitting quantity (a multiple of the size increment) is
found by Newton steps on supporting lines from above, and only when the closed-form limits leave
a quantity that breaches it. Far from binding, a subadditive upper bound (the book's CVaR now plus
the order's position alone) settles it without a second CVaR evaluation.

Units: quantities in instrument units; ``unit_value`` and ``entry_value`` in account currency
per unit (price × multiplier × FX); caps as fractions of equity unless named ``*_notional``.
"""

import math
from dataclasses import dataclass

import numpy as np
from nautilus_trader.model.identifiers import InstrumentId

from risk_engine.config import CvarLimit
from risk_engine.config import LimitsConfig
from risk_engine.portfolio_state import Exposure
from risk_engine.portfolio_state import Snapshot

INF = math.inf

FAST_PATH_MARGIN = 1e-6
"""The CVaR limit's shortcut (a subadditive upper bound instead of the second exact evaluation)
is taken only when the bound fits with this fraction of equity to spare: far above the
rounding error of the exact sums (~1e-13 of equity), so both ways give the same answer."""


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The risk-relevant facts of one order (or of the increase a modify asks for).

    Attributes
    ----------
    instrument_id : InstrumentId
        The instrument.
    side : int
        +1 buy, −1 sell.
    quantity : float
        Requested quantity in units (> 0).
    unit_value : float
        Mark value of one unit now (price × multiplier × FX), account currency.
    entry_value : float
        Value of one unit at the order's own price (limit/trigger, else the mark).
    stop_distance : float | None
        Loss per unit if stopped out (|entry − stop| × multiplier × FX), or None without a stop.
    fee_rate : float
        Taker fee as a fraction of notional (commission estimate).
    size_increment : float
        The instrument's quantity step (the bisected CVaR answer snaps to it).
    closing : float
        Units of the order that close the submitting strategy's own position (a flip's closing
        part): they move no bound, so limits and the trade-risk budget apply to the rest.
    """

    instrument_id: InstrumentId
    side: int
    quantity: float
    unit_value: float
    entry_value: float
    stop_distance: float | None
    fee_rate: float
    size_increment: float = 0.0
    closing: float = 0.0


@dataclass(slots=True)
class LimitResult:
    """One limit's answer for an order.

    Attributes
    ----------
    name : str
        Reason code (``max_weight``, ``hrp_band``, ``gross_exposure``, ``net_exposure``,
        ``group:<name>``, ``trade_risk``, ``order_notional``, ``cvar``).
    max_quantity : float
        Largest quantity (units) that keeps the limit; ``inf`` when it does not bind.
    cap : float
        The limit (fraction of equity, or money for ``order_notional``).
    value : float
        The limited measure before the order (same unit as ``cap``).
    """

    name: str
    max_quantity: float
    cap: float
    value: float


def _max_q(cap_const: float, cap_slope: float, start: float, slope: float) -> float:
    """Largest q ≥ 0 with ``start + slope·q ≤ cap_const − cap_slope·q`` (−1 if none)."""
    denominator = slope + cap_slope
    headroom = cap_const - start
    if denominator <= 0.0:
        return INF if headroom >= 0.0 else -1.0
    return headroom / denominator if headroom >= 0.0 else -1.0


def _at_least(max_quantity: float, closing: float) -> float:
    """A limit's largest fitting quantity, never below the order's closing part: closing units
    move no bound (another strategy's position or a price move can hold a bound over its cap,
    and a gate must not trap a position), as under a halt."""
    return closing if closing > 0.0 and max_quantity < closing else max_quantity


def _width(ambiguous: tuple[int, float, float]) -> float:
    """Sort key of an instrument's fill-outcome range (column, low, high): widest first."""
    return ambiguous[1] - ambiguous[2]


_CORNER_BITS: dict[int, np.ndarray] = {}


def _corner_bits(n: int) -> np.ndarray:
    """(n, 2^n) booleans: row ``i`` says whether corner ``k`` takes instrument i's high end."""
    bits = _CORNER_BITS.get(n)
    if bits is None:
        bits = ((np.arange(1 << n)[None, :] >> np.arange(n)[:, None]) & 1).astype(bool)
        _CORNER_BITS[n] = bits
    return bits


def _read_only(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


class Scenarios:
    """Historical return scenarios for the CVaR limit.

    The limit applies to the committed book: open positions plus pending orders, whichever of
    them fill — the largest CVaR over the fill outcomes. (Closing positions is not an outcome the
    gate limits: closing orders always pass, even when the leg closed was a hedge.)

    Parameters
    ----------
    instrument_ids : list[InstrumentId]
        Column order of ``returns``.
    returns : np.ndarray
        (n_periods, n_instruments) one-period returns; NaN counts as 0 (no price yet).
    config : CvarLimit
        Limit, confidence and window.
    """

    MAX_EXACT = 4
    """Instruments with pending orders whose fill outcomes are enumerated exactly (2^4 corners);
    the others are bounded by subadditivity."""

    def __init__(
        self,
        instrument_ids: list[InstrumentId],
        returns: np.ndarray,
        config: CvarLimit,
    ) -> None:
        window = np.nan_to_num(np.asarray(returns, dtype=float)[-config.window :])
        self.columns = {instrument_id: k for k, instrument_id in enumerate(instrument_ids)}
        self.returns = np.ascontiguousarray(window)
        self.periods = window.shape[0]
        self.limit = config.limit
        self.ready = self.periods >= config.min_observations
        # ceil((1 − α)·T) worst periods; the epsilon keeps 0.05 × 100 at 5 despite float error.
        self.tail = max(1, math.ceil((1.0 - config.alpha) * self.periods - 1e-9))
        # CVaR per unit of money long / short in each instrument alone (positively homogeneous).
        if self.periods:
            k = max(self.periods - self.tail, 0)
            self.unit_long = np.partition(-window, k, axis=0)[k:].mean(axis=0)
            self.unit_short = np.partition(window, k, axis=0)[k:].mean(axis=0)
        else:
            self.unit_long = self.unit_short = np.zeros(window.shape[1])
        # As Python floats for the per-order loop (indexing numpy arrays costs more).
        self._unit_long = self.unit_long.tolist()
        self._unit_short = self.unit_short.tolist()
        # Per-order work that depends only on ``returns``, which never changes (each HRP update
        # builds a new Scenarios): each instrument's (n_periods, 1) column as a view, and the
        # column subsets the corner tables multiply, copied once per subset instead of per order.
        # Same values, shapes and layout as the fancy indexing they replace: exact.
        # Read-only, as they are shared between calls.
        self._own = [_read_only(self.returns[:, k][:, None]) for k in range(window.shape[1])]
        self._subsets: dict[tuple[int, ...], np.ndarray] = {}

    def vertex_pnls(
        self,
        snapshot: Snapshot,
        instrument_id: InstrumentId,
        side: int,
    ) -> tuple[np.ndarray, np.ndarray, float, float, float]:
        """Scenario P&L (money) at the corners of the fill-outcome box.

        Every instrument's net position ends in [position − pending sells, position + pending
        buys] depending on which pending orders fill; CVaR is convex in the positions, so its
        maximum over that box sits at a corner. The order's instrument is put at its ``side``
        end (where the order adds) and, for the "before" value, at the other end. Up to
        :attr:`MAX_EXACT` other instruments with pending orders are enumerated exactly; the rest
        is bounded by subadditivity (CVaR(a + b) ≤ CVaR(a) + CVaR(b)), which can only overstate
        the risk.

        Returns
        -------
        tuple[np.ndarray, np.ndarray, float, float, float]
            The (n_periods, n_corners) P&L of every instrument but the order's, the order's
            instrument's (n_periods, 1) returns, its value at the order's side end and at the
            other end (money), and the additive CVaR bound of the instruments not enumerated.
        """
        fixed = np.zeros(len(self.columns))
        ambiguous: list[tuple[int, float, float]] = []
        side_value = other_value = 0.0
        own_column = self.columns[instrument_id]
        for other_id, exposure in snapshot.exposures.items():
            column = self.columns.get(other_id)
            value = exposure.unit_value
            if column is None or value != value:  # not in the scenarios, or no price
                continue
            low = (exposure.position - exposure.pending_sell) * value
            high = (exposure.position + exposure.pending_buy) * value
            if other_id == instrument_id:
                side_value, other_value = (high, low) if side > 0 else (low, high)
            elif low == high:
                fixed[column] = low
            else:
                ambiguous.append((column, low, high))
        extra = 0.0
        if len(ambiguous) > self.MAX_EXACT:
            ambiguous.sort(key=_width)  # widest first
            unit_long, unit_short = self._unit_long, self._unit_short
            for column, low, high in ambiguous[self.MAX_EXACT :]:
                # max(_alone(column, low), _alone(column, high)), inlined
                at_low = low * unit_long[column] if low >= 0.0 else -low * unit_short[column]
                at_high = high * unit_long[column] if high >= 0.0 else -high * unit_short[column]
                extra += at_low if at_low >= at_high else at_high
            ambiguous = ambiguous[: self.MAX_EXACT]
        base = self.returns @ fixed
        if ambiguous:
            columns = tuple([a[0] for a in ambiguous])
            subset = self._subsets.get(columns)
            if subset is None:
                subset = _read_only(self.returns[:, np.array(columns, dtype=np.intp)])
                self._subsets[columns] = subset
            table = np.array(ambiguous)
            corners = np.where(_corner_bits(len(ambiguous)), table[:, 2:3], table[:, 1:2])
            base = base[:, None] + subset @ corners
        else:
            base = base[:, None]
        return base, self._own[own_column], side_value, other_value, extra

    def _alone(self, column: int, value: float) -> float:
        """CVaR of a ``value`` (money, signed) position in one instrument alone."""
        return value * self.unit_long[column] if value >= 0.0 else -value * self.unit_short[column]

    def cvar(self, pnl: np.ndarray) -> float:
        """Mean of the worst ``tail`` losses of a (n_periods,) P&L vector, or the largest over
        the columns of a (n_periods, n_corners) matrix (money, positive = loss)."""
        k = self.periods - self.tail
        if k <= 0:
            return float((-pnl).mean(axis=0).max())
        worst = np.partition(-pnl, k, axis=0)[k:]
        return float(worst.sum(axis=0).max()) / self.tail

    def cvar_of_temporary(self, pnl: np.ndarray) -> float:
        """:meth:`cvar` of a P&L array the caller no longer needs: negated and partitioned in
        place, which saves two (n_periods, n_corners) copies per evaluation. The same
        elementwise negation and the same partition of the same values: the same result."""
        k = self.periods - self.tail
        if k <= 0:
            return self.cvar(pnl)
        losses = np.negative(pnl, out=pnl)
        losses.partition(k, axis=0)
        return float(losses[k:].sum(axis=0).max()) / self.tail

    def cvar_and_slope(self, pnl: np.ndarray, own: np.ndarray) -> tuple[float, float]:
        """:meth:`cvar` of ``pnl`` and its slope in the value of the order's instrument (``own``
        its returns): the worst corner's tail periods held fixed, a supporting line of the
        convex CVaR."""
        k = self.periods - self.tail
        losses = -pnl
        if k <= 0:
            means = losses.mean(axis=0)
            return float(means.max()), -float(own.mean())
        worst = np.partition(losses, k, axis=0)[k:]
        sums = worst.sum(axis=0)
        corner = int(sums.argmax())
        rows = np.argpartition(losses[:, corner], k)[k:]
        return float(sums[corner]) / self.tail, -float(own[rows, 0].sum()) / self.tail


class LimitSet:
    """Precomputed limits; :meth:`check` answers one order against all of them."""

    def __init__(self, config: LimitsConfig, band_tolerance: float | None) -> None:
        self.config = config
        self.max_weight = config.max_weight
        self.gross = config.gross_exposure
        self.net = config.net_exposure
        self.trade_risk = config.trade_risk
        self.max_order_notional = config.max_order_notional
        self.band_tolerance = band_tolerance
        self.groups: list[tuple[str, frozenset[InstrumentId], float]] = [
            (name, frozenset(InstrumentId.from_str(m) for m in group.members), group.max_weight)
            for name, group in config.groups.items()
        ]
        self.groups_of: dict[InstrumentId, list[tuple[str, frozenset[InstrumentId], float]]] = {}
        for group in self.groups:
            for member in group[1]:
                self.groups_of.setdefault(member, []).append(group)

    def describe(self) -> dict[str, object]:
        """The configured limit values (for records and summaries)."""
        return {
            "max_weight": self.max_weight,
            "gross_exposure": self.gross,
            "net_exposure": self.net,
            "trade_risk": self.trade_risk,
            "max_order_notional": self.max_order_notional,
            "hrp_band_tolerance": self.band_tolerance,
            "groups": {name: cap for name, _, cap in self.groups},
            "daily_loss": self.config.daily_loss,
            "max_drawdown": self.config.max_drawdown,
            "cvar": self.config.cvar.limit if self.config.cvar else None,
        }

    def check(
        self,
        snapshot: Snapshot,
        exposure: Exposure,
        intent: OrderIntent,
        target: float | None,
        scenarios: Scenarios | None,
    ) -> list[LimitResult]:
        """Every active limit's largest fitting quantity for an exposure-increasing order.

        ``exposure`` is the order's instrument in ``snapshot``; ``target`` its HRP target weight
        (None: no band); ``scenarios`` the CVaR scenarios (None: no CVaR check).
        """
        results: list[LimitResult] = []
        if snapshot.equity <= 0.0:
            return [LimitResult("equity", 0.0, 0.0, snapshot.equity)]
        # Caps are fractions of the equity left after the fill costs (fee + slippage allowance)
        # of every pending order and of this one, less a reserve for orders still to come.
        equity = (
            snapshot.equity * (1.0 - self.config.cost_reserve)
            - intent.fee_rate * snapshot.pending_notional
        )
        uv = intent.unit_value
        side = intent.side
        fee_per_unit = intent.fee_rate * intent.entry_value
        # The order's side bound moves: start = bound·uv in the order's direction, less the
        # units that only close the strategy's own position.
        closing = intent.closing
        moving = (exposure.long_bound if side > 0 else -exposure.short_bound) - closing
        start = moving * uv
        worst_before = exposure.worst
        if self.max_weight is not None:
            results.append(
                LimitResult(
                    "max_weight",
                    _at_least(
                        _max_q(self.max_weight * equity, self.max_weight * fee_per_unit, start, uv),
                        closing,
                    ),
                    self.max_weight,
                    worst_before / equity,
                ),
            )
        if target is not None and self.band_tolerance is not None:
            band = target * (1.0 + self.band_tolerance)
            results.append(
                LimitResult(
                    "hrp_band",
                    _at_least(_max_q(band * equity, band * fee_per_unit, start, uv), closing),
                    band,
                    worst_before / equity,
                ),
            )
        if self.gross is not None or self.groups_of.get(intent.instrument_id):
            others = snapshot.gross - worst_before
            if self.gross is not None:
                results.append(
                    LimitResult(
                        "gross_exposure",
                        _at_least(
                            _max_q(
                                self.gross * equity,
                                self.gross * fee_per_unit,
                                others + start,
                                uv,
                            ),
                            closing,
                        ),
                        self.gross,
                        (others + worst_before) / equity,
                    ),
                )
            for name, members, cap in self.groups_of.get(intent.instrument_id, ()):
                members_others = sum(
                    snapshot.exposures[m].worst
                    for m in members
                    if m != intent.instrument_id and m in snapshot.exposures
                )
                results.append(
                    LimitResult(
                        f"group:{name}",
                        _at_least(
                            _max_q(cap * equity, cap * fee_per_unit, members_others + start, uv),
                            closing,
                        ),
                        cap,
                        (members_others + worst_before) / equity,
                    ),
                )
        if self.net is not None:
            high, low = snapshot.net_high, snapshot.net_low
            moving_net = (high if side > 0 else -low) - closing * uv
            results.append(
                LimitResult(
                    "net_exposure",
                    _at_least(
                        _max_q(self.net * equity, self.net * fee_per_unit, moving_net, uv),
                        closing,
                    ),
                    self.net,
                    max(high, -low) / equity,
                ),
            )
        if self.max_order_notional is not None:
            notional_per_unit = max(intent.entry_value, uv)
            results.append(
                LimitResult(
                    "order_notional",
                    self.max_order_notional / notional_per_unit if notional_per_unit > 0 else INF,
                    self.max_order_notional,
                    intent.quantity * notional_per_unit,
                ),
            )
        if self.trade_risk is not None:
            results.append(self._trade_risk(intent, equity, fee_per_unit))
        if scenarios is not None and scenarios.ready and intent.instrument_id in scenarios.columns:
            ceiling = min([r.max_quantity for r in results if r.max_quantity >= 0.0] + [INF])
            ceiling = min(ceiling, intent.quantity)
            result = self._cvar(snapshot, intent, scenarios, equity, ceiling, fee_per_unit)
            result.max_quantity = _at_least(result.max_quantity, closing)
            results.append(result)
        return results

    def _trade_risk(
        self,
        intent: OrderIntent,
        equity: float,
        fee_per_unit: float,
    ) -> LimitResult:
        assert self.trade_risk is not None
        distance = intent.stop_distance
        if distance is None:
            policy = self.config.missing_stop
            if policy == "ignore":
                return LimitResult("trade_risk", INF, self.trade_risk, math.nan)
            if policy == "deny":
                # Only the closing part may pass without a stop.
                return LimitResult(
                    "trade_risk:no_stop",
                    intent.closing,
                    self.trade_risk,
                    math.nan,
                )
            distance = (self.config.assumed_stop_distance or 0.0) * intent.entry_value
        if distance <= 0.0:
            return LimitResult("trade_risk", INF, self.trade_risk, 0.0)
        # Only the part that opens new exposure is at risk: (q − closing)·distance ≤ k·E.
        closing = intent.closing
        budget = self.trade_risk * equity
        max_q = _at_least(
            _max_q(budget, self.trade_risk * fee_per_unit, -closing * distance, distance),
            closing,
        )
        value = max(intent.quantity - closing, 0.0) * distance / equity
        return LimitResult("trade_risk", max_q, self.trade_risk, value)

    @staticmethod
    def _cvar(
        snapshot: Snapshot,
        intent: OrderIntent,
        scenarios: Scenarios,
        equity: float,
        ceiling: float,
        fee_per_unit: float,
    ) -> LimitResult:
        base, own, side_value, other_value, extra = scenarios.vertex_pnls(
            snapshot,
            intent.instrument_id,
            intent.side,
        )
        per_unit = intent.side * intent.unit_value
        limit = scenarios.limit
        tolerance = 1e-9 * equity

        def risk(q: float) -> float:
            return scenarios.cvar_of_temporary(base + own * (side_value + q * per_unit)) + extra

        if ceiling <= 0.0:
            return LimitResult("cvar", INF, limit, risk(0.0) / equity)
        # Each CVaR evaluation partitions the (periods × corners) P&L: computed once each.
        risk_now = risk(0.0)
        # Far from binding, skip the second evaluation: CVaR is subadditive (the mean of the
        # worst `tail` losses of a sum is at most the sum of the means), so the book after the
        # order risks at most risk_now plus the order's own position alone, CVaR per unit of
        # money (unit_long / unit_short) × its value. When that bound fits with a margin far
        # above rounding error, the exact test below would pass too: same answer, one partition.
        column = scenarios.columns[intent.instrument_id]
        alone = scenarios.unit_long[column] if per_unit > 0.0 else scenarios.unit_short[column]
        bound = risk_now + ceiling * abs(per_unit) * float(alone)
        if bound + FAST_PATH_MARGIN * equity <= limit * (equity - fee_per_unit * ceiling):
            return LimitResult("cvar", INF, limit, risk_now / equity)
        risk_ceiling = risk(ceiling)
        if risk_ceiling <= limit * (equity - fee_per_unit * ceiling) + tolerance:
            return LimitResult("cvar", INF, limit, risk_now / equity)
        # Above the cap: never worse than the worst outcome before the order.
        before = max(risk_now, scenarios.cvar_of_temporary(base + own * other_value) + extra)
        before /= equity
        allowed = max(limit, before)

        def fits(q: float) -> bool:
            return risk(q) <= allowed * (equity - fee_per_unit * q) + tolerance

        if risk_ceiling <= allowed * (equity - fee_per_unit * ceiling) + tolerance:
            return LimitResult("cvar", INF, limit, before)
        if risk_now > allowed * equity + tolerance:
            return LimitResult("cvar", 0.0, limit, before)
        # max over corners of a convex function: convex in q, so the fitting set is [0, q*].
        increment = intent.size_increment
        if increment > 0.0:
            # The answer is floored to the size increment anyway: find the largest fitting
            # multiple directly. Newton steps on the convex excess from above (each step's
            # supporting line never skips past q*), testing the grid point below each.
            high = ceiling
            for _ in range(64):
                grid = math.floor(high / increment + 1e-9) * increment
                if grid >= high:
                    grid -= increment
                if grid <= 0.0:
                    return LimitResult("cvar", 0.0, limit, before)
                value, slope = scenarios.cvar_and_slope(
                    base + own * (side_value + grid * per_unit),
                    own,
                )
                excess = value + extra - allowed * (equity - fee_per_unit * grid) - tolerance
                if excess <= 0.0:
                    return LimitResult("cvar", grid, limit, before)
                rate = slope * per_unit + allowed * fee_per_unit
                if not rate > 0.0:
                    break  # numerically flat: bisect below
                high = min(grid, grid - excess / rate + 1e-6 * increment)
            else:
                grid = high
            ceiling = grid
        low, high = 0.0, ceiling
        while high - low > max(1e-6 * ceiling, 1e-9):
            middle = 0.5 * (low + high)
            if fits(middle):
                low = middle
            else:
                high = middle
        if increment > 0.0:
            on_grid = math.floor(high / increment + 1e-9) * increment
            if on_grid > low and fits(on_grid):
                low = on_grid
        return LimitResult("cvar", low, limit, before)
