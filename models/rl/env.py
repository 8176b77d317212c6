"""A gymnasium trading env over arrays: one instrument's bars per episode, target-position actions.

The caller builds the arrays (``models`` sits below ``research``): the feature matrix of a
research feature set (:mod:`research.features.matrix`, memory-mapped), the bars' opens and
closes, and episode windows (:mod:`models.rl.episodes`), optionally weighted by a regime's
causal probability (:func:`models.rl.episodes.regime_window_weights`).

One step is one decision on bar t (module docstrings of :mod:`models.rl.fills` and
:mod:`models.rl.safety` for the details):

1. The observation of bar t (:class:`~models.rl.observation.ObservationSpec`): the feature row
   t and the held target position.
2. The action → a target in [-1, 1] (:mod:`models.rl.actions`) → projected by the safety layer
   (:class:`~models.rl.safety.RiskLimits`) → weight ``target · max_weight``.
3. Equity at bar t's close: ``cash + quantity · close_t · multiplier``. Order quantity:
   ``floor_to_lot(|weight| · equity / close_t)`` signed, minus the held quantity (CASH
   accounts: buys capped at the cash).
4. **Fill** (the engine's convention, docs/fills.md): ``fill_at: close`` (default) fills the
   order at bar t's close; ``next_open`` at bar t+1's open. Slippage ``prob_slippage`` ticks
   against the order; commission ``Money(Money(|q| · multiplier · price) · taker_fee)``, rounded
   by Nautilus' ``Money`` as the venue rounds it. Cash pays notional and commission.
5. Move to bar t+1; equity at its close; reward from the net return
   ``equity_{t+1} / equity_t − 1`` (:mod:`models.rl.rewards`).

An episode is a window ``(start, end)``: decisions on bars start..end−1, ``truncated`` after the
step that reaches ``end`` (a time limit: the value bootstraps), ``terminated`` when equity is no
longer positive. Positions are not closed at the end of an episode (equity is marked).

A fixed action sequence replayed here and through a BacktestNode (a scripted policy in the
ensemble strategy, the same venue and instrument terms, one strategy on the account, sizing by
:meth:`ExecutionModel.order_quantity`) gives the same fills, hence the same PnL: that is what the
env/engine parity test checks.

``step`` info: ``equity``, ``quantity``, ``position`` (projected target), ``commission`` and
``turnover`` (|traded notional| / equity at the decision) of the step.
"""

from collections.abc import Sequence
from typing import Any
from typing import ClassVar

import gymnasium as gym
import numpy as np

from models.rl.actions import DISCRETE_TARGETS
from models.rl.actions import ActionKind
from models.rl.actions import action_space
from models.rl.actions import check_action_kind
from models.rl.fills import ExecutionModel
from models.rl.observation import ObservationSpec
from models.rl.rewards import RewardConfig
from models.rl.rewards import RewardFunction
from models.rl.safety import RiskLimits

__all__ = ["Fill", "TradingEnv"]

Fill = tuple[int, float, float, float]
"""A fill of the env: (bar index, signed quantity, price, commission)."""


class TradingEnv(gym.Env):
    """Target-position trading over bar arrays (module docstring).

    Parameters
    ----------
    features : np.ndarray
        Shape (n_bars, n_features), the feature rows in ``observation.feature_names`` order
        (raw values; a ``numpy.memmap`` is read row by row, never copied).
    opens, closes : np.ndarray
        Shape (n_bars,), float: the bars' opens and closes.
    windows : np.ndarray
        int, shape (n_windows, 2): episode windows ``(start, end)``, ``end < n_bars``.
    observation : ObservationSpec
        What the policy sees (its normalisation fitted on training rows by the caller).
    action_kind : {"continuous", "discrete"}
    execution : ExecutionModel
        Venue and instrument terms (fees, lot, fill_at, account type).
    limits : RiskLimits
        The safety layer.
    reward : RewardConfig
    weights : np.ndarray, optional
        Shape (n_windows,): sampling probability of each window (default uniform).
    initial_cash : float
        Cash at the start of every episode, currency units.
    record_fills : bool
        Keep the episode's fills in :attr:`fills` (for parity checks).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        features: np.ndarray,
        opens: np.ndarray,
        closes: np.ndarray,
        windows: np.ndarray,
        observation: ObservationSpec,
        action_kind: ActionKind = "continuous",
        execution: ExecutionModel | None = None,
        limits: RiskLimits | None = None,
        reward: RewardConfig | None = None,
        weights: np.ndarray | Sequence[float] | None = None,
        initial_cash: float = 1_000_000.0,
        record_fills: bool = False,
    ) -> None:
        super().__init__()
        check_action_kind(action_kind)
        n_bars = len(closes)
        if features.ndim != 2 or features.shape != (n_bars, observation.n_features):
            raise ValueError(
                f"env: features have shape {features.shape}, expected ({n_bars}, "
                f"{observation.n_features}) for {n_bars} bars and the observation's features"
            )
        if len(opens) != n_bars:
            raise ValueError(f"env: {len(opens)} opens for {n_bars} closes")
        windows = np.asarray(windows, dtype=np.int64).reshape(-1, 2)
        if not len(windows):
            raise ValueError("env: no episode windows")
        bad = np.flatnonzero(
            (windows[:, 0] < 0) | (windows[:, 1] <= windows[:, 0]) | (windows[:, 1] >= n_bars)
        )
        if len(bad):
            raise ValueError(
                f"env: window {int(bad[0])} {tuple(windows[bad[0]].tolist())} is not "
                f"0 ≤ start < end < {n_bars}"
            )
        for name, prices in (("open", opens), ("close", closes)):
            used = np.asarray(prices[windows[:, 0].min() : windows[:, 1].max() + 1])
            if not np.all(np.isfinite(used) & (used > 0)):
                row = int(np.flatnonzero(~(np.isfinite(used) & (used > 0)))[0])
                raise ValueError(
                    f"env: {name} price of bar {row + int(windows[:, 0].min())} is "
                    f"{used[row]!r} (prices must be positive and finite)"
                )
        if weights is not None:
            weights = np.asarray(weights, dtype=np.float64)
            if weights.shape != (len(windows),) or np.any(weights < 0) or not weights.sum() > 0:
                raise ValueError(
                    f"env: weights must be {len(windows)} non-negative numbers with a positive sum"
                )
            weights = weights / weights.sum()
        if not initial_cash > 0:
            raise ValueError(f"env: initial_cash must be positive, was {initial_cash!r}")
        # A plain ndarray view of a memmap: the same mapped pages, without np.memmap's per-index
        # subclass overhead (a third of a step's time).
        self.features = np.asarray(features)
        self.open = np.asarray(opens, dtype=np.float64)
        self.close = np.asarray(closes, dtype=np.float64)
        self.windows = windows
        self.weights = weights
        self.observation_spec = observation
        self.action_kind: ActionKind = action_kind
        self.execution = execution or ExecutionModel()
        self.limits = limits or RiskLimits()
        self.reward_function = RewardFunction(reward or RewardConfig())
        self.initial_cash = float(initial_cash)
        self.record_fills = record_fills
        self.fills: list[Fill] = []
        self.action_space = action_space(action_kind)
        bound = np.float32(max(observation.clip, 1.0))
        self.observation_space = gym.spaces.Box(-bound, bound, (observation.n_obs,), np.float32)
        self._offset = np.asarray(observation.mean or np.zeros(observation.n_features))
        self._inverse = 1.0 / np.asarray(observation.scale or np.ones(observation.n_features))
        self._mask = self.limits.action_mask()
        self._low, self._high = self.limits.bounds()
        self._multiplier = self.execution.multiplier
        self._next_open = self.execution.fill_at == "next_open"
        self._t = 0
        self._end = 0
        self._cash = self.initial_cash
        self._quantity = 0.0
        self._position = 0.0

    # -- state -------------------------------------------------------------------------------------

    @property
    def bar(self) -> int:
        """Index of the bar the next decision is made on."""
        return self._t

    @property
    def cash(self) -> float:
        return self._cash

    @property
    def quantity(self) -> float:
        """Signed quantity held."""
        return self._quantity

    @property
    def position(self) -> float:
        """Held target position (projected), action units."""
        return self._position

    @property
    def equity(self) -> float:
        """Cash plus the position marked at the current bar's close."""
        return self._cash + self._quantity * float(self.close[self._t]) * self._multiplier

    def action_masks(self) -> np.ndarray:
        """Allowed discrete actions (bool, (3,)): MaskablePPO reads this."""
        return self._mask.copy()

    # -- gymnasium ---------------------------------------------------------------------------------

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode: a window drawn by ``weights``, or ``options={"window": (s, e)}``
        (any bars, not necessarily one of :attr:`windows`)."""
        super().reset(seed=seed)
        if options and "window" in options:
            start, end = (int(v) for v in options["window"])
            if not (0 <= start < end < len(self.close)):
                raise ValueError(f"env.reset: window ({start}, {end}) outside the bars")
        else:
            row = self.np_random.choice(len(self.windows), p=self.weights)
            start, end = (int(v) for v in self.windows[row])
        self._t, self._end = start, end
        self._cash = self.initial_cash
        self._quantity = 0.0
        self._position = 0.0
        self.fills = []
        self.reward_function.start_episode()
        return self._observe(), {"equity": self._cash, "window": (start, end)}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        t = self._t
        if self.action_kind == "discrete":
            target = DISCRETE_TARGETS[int(action)]
        else:
            target = float(action[0]) if np.ndim(action) else float(action)
            target = 1.0 if target > 1.0 else (-1.0 if target < -1.0 else target)
        if target > self._high:
            target = self._high
        elif target < self._low:
            target = self._low
        self._position = target
        close = float(self.close[t])
        multiplier = self._multiplier
        equity = self._cash + self._quantity * close * multiplier
        order = self.execution.order_quantity(
            target * self.limits.max_weight, self._quantity, equity, self._cash, close
        )
        t += 1
        self._t = t
        commission = 0.0
        traded = 0.0
        if order != 0.0:
            price = float(self.open[t]) if self._next_open else close
            fill_bar = t if self._next_open else t - 1
            commission, traded = self._fill(fill_bar, order, price)
        new_equity = self._cash + self._quantity * float(self.close[t]) * multiplier
        net_return = new_equity / equity - 1.0 if equity > 0.0 else -1.0
        reward = self.reward_function.reward(net_return)
        terminated = new_equity <= 0.0
        truncated = t >= self._end and not terminated
        if terminated or truncated:
            self.reward_function.end_episode()
        info = {
            "equity": new_equity,
            "quantity": self._quantity,
            "position": target,
            "commission": commission,
            "turnover": traded / equity if equity > 0.0 else 0.0,
        }
        return self._observe(), reward, terminated, truncated, info

    # -- internals ---------------------------------------------------------------------------------

    def _fill(self, bar: int, order: float, market: float) -> tuple[float, float]:
        execution = self.execution
        price = execution.fill_price(order, market)
        commission = execution.commission(order, price)
        notional = order * price * self._multiplier
        self._cash -= notional + commission
        self._quantity += order
        if self.record_fills:
            self.fills.append((bar, order, price, commission))
        return commission, abs(notional)

    def _observe(self) -> np.ndarray:
        spec = self.observation_spec
        row = (self.features[self._t] - self._offset) * self._inverse
        np.clip(row, -spec.clip, spec.clip, out=row)
        row[np.isnan(row)] = 0.0
        if spec.include_position:
            out = np.empty(spec.n_obs, dtype=np.float32)
            out[:-1] = row
            out[-1] = self._position
            return out
        return row.astype(np.float32)
