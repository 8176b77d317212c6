"""A seeded synthetic regime-switching equity market, with its true regime path.

:func:`generate_market` is pure (parameters + seed → frames + truth); :func:`write_synthetic`
puts the bars into a catalog and the truth beside them at
``<catalog>/truth/synthetic_regimes.parquet``; :func:`load_regime_truth` reads it back.

The model, per 1-minute bar ``t`` (390 bars per weekday session, 14:30-21:00 UTC):

- A regime path over ``bull``, ``bear``, ``sideways``: segments of Gamma-distributed length (mean
  1-2 trading days, so 60 days hold a few dozen transitions), the next regime drawn from a
  transition matrix without self-transitions. A segment is *mixed* with probability
  ``mixed_probability``: its process blends its regime with another one (the dominant regime
  keeps weight ``mixed_weight``). Between segments the weights ramp linearly over
  ``blend_bars``. The truth holds these weights (``p_bull``, ``p_bear``, ``p_sideways``) and the
  dominant label per bar.
- A market factor ``F`` (log price): ``dF = mu + kappa (L - F) + sigma u_i e``, where ``mu`` and
  ``sigma²`` are the weight-blended regime drifts and variances, ``kappa`` the sideways weight ×
  the sideways mean reversion (an Ornstein-Uhlenbeck pull towards the level ``L`` where the
  sideways influence began), ``u_i`` a U-shaped intraday volatility profile (mean square 1), and
  an overnight gap at each session open.
- Instruments: ``log P = log P0 + beta F + I`` with an idiosyncratic part ``I`` (vol a fixed
  fraction of the market vol, mean-reverting over ~2 days), so they are correlated through
  ``F``. OHLC come from ``substeps`` Brownian-bridge steps inside each minute. Volume follows a
  U-shaped intraday profile × the regime's volume level × (1 + sensitivity × |return| / vol) ×
  log-normal noise.

Default regime parameters (per trading day of 390 one-minute bars): bull +0.6 % drift, 0.9 % vol;
bear −0.8 % drift, 1.6 % vol; sideways no drift, 0.5 % vol, mean reversion half-life 45 bars.
Per-bar vol is 2.5e-4 to 8e-4: realistic for liquid 1-minute equity bars, and regimes differ
in drift, vol and autocorrelation without being separable bar by bar.
"""

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from scipy.signal import lfilter

from catalogs.specs import EquitySpec
from catalogs.specs import parse_instrument_spec

REGIMES: tuple[str, ...] = ("bull", "bear", "sideways")
TRUTH_PATH = "truth/synthetic_regimes.parquet"
"""Catalog-relative path of the regime truth."""
VENUE = "XSYN"
"""Venue of the synthetic instruments. Not ``SYNTH``: Nautilus reserves that name for its
synthetic instruments, and a live data engine finds no client for it (no paper trading)."""
BARS_PER_DAY = 390


@dataclass(frozen=True)
class RegimeParams:
    """One regime's generating process.

    Attributes
    ----------
    drift_per_day : float
        Expected log return of the market factor per trading day (390 bars).
    vol_per_day : float
        Standard deviation of the factor's intraday log return per trading day
        (per-bar vol × sqrt(390)).
    half_life_bars : float | None
        Mean-reversion half-life (bars) of the factor towards its level; None = random walk.
    volume_level : float
        Multiplier of the instruments' base volume.
    mean_duration_days : float
        Mean length of a segment of this regime, in trading days.
    """

    drift_per_day: float
    vol_per_day: float
    half_life_bars: float | None
    volume_level: float
    mean_duration_days: float


@dataclass(frozen=True)
class InstrumentParams:
    """One synthetic instrument.

    Attributes
    ----------
    symbol : str
        The instrument id is ``<symbol>.XSYN``.
    start_price : float
    beta : float
        Loading on the market factor.
    idio_vol_ratio : float
        Idiosyncratic per-bar vol as a fraction of the market's per-bar vol.
    base_volume : float
        Mean shares per minute at the regime's volume level 1.
    """

    symbol: str
    start_price: float
    beta: float
    idio_vol_ratio: float
    base_volume: float


DEFAULT_REGIMES: dict[str, RegimeParams] = {
    "bull": RegimeParams(0.006, 0.009, None, 1.0, 2.0),
    "bear": RegimeParams(-0.008, 0.016, None, 1.5, 1.5),
    "sideways": RegimeParams(0.0, 0.005, 45.0, 0.7, 1.5),
}
DEFAULT_TRANSITIONS: dict[str, dict[str, float]] = {
    "bull": {"bear": 0.4, "sideways": 0.6},
    "bear": {"bull": 0.5, "sideways": 0.5},
    "sideways": {"bull": 0.6, "bear": 0.4},
}
DEFAULT_INSTRUMENTS: tuple[InstrumentParams, ...] = (
    InstrumentParams("SYNA", 100.0, 1.2, 0.5, 20_000.0),
    InstrumentParams("SYNB", 50.0, 1.0, 0.6, 35_000.0),
    InstrumentParams("SYNC", 75.0, 0.8, 0.7, 15_000.0),
    InstrumentParams("SYND", 150.0, 0.5, 0.8, 8_000.0),
)


@dataclass(frozen=True)
class SyntheticParams:
    """Size, seed and processes of the synthetic market (defaults build in about a second).

    Attributes
    ----------
    days : int
        Weekday sessions (no holidays).
    seed : int
    start : str
        First session date (moved to the next weekday if needed).
    session_open_utc : str
        ``HH:MM`` UTC of the first bar's open; bars close every minute after it.
    bars_per_day : int
    instruments : tuple[InstrumentParams, ...]
    regimes : Mapping[str, RegimeParams]
        Keys ``bull``, ``bear``, ``sideways``.
    transitions : Mapping[str, Mapping[str, float]]
        Next-regime probabilities (no self-transitions).
    blend_bars : tuple[int, int]
        Range of the linear weight ramp between segments (bars).
    mixed_probability : float
        Chance that a segment blends its regime with a second one.
    mixed_weight : tuple[float, float]
        Range of the dominant regime's weight in a mixed segment.
    overnight_vol_fraction : float
        Overnight gap std as a fraction of the regime's daily vol.
    substeps : int
        Sub-minute steps used to form high and low.
    volume_return_sensitivity : float
        Volume increase per unit of |return| / vol.
    parameter_drift : float
        Drift of the regimes' own parameters over the run (a market whose regimes change, for
        model-decay studies): every regime's vol is scaled by ``1 + parameter_drift × s`` and
        its drift by ``1 − parameter_drift × s``, ``s`` going linearly from 0 at the first bar
        to 1 at the last. 0 (default): constant regimes, the same market as before.
    """

    days: int = 60
    seed: int = 7
    start: str = "2024-01-02"
    session_open_utc: str = "14:30"
    bars_per_day: int = BARS_PER_DAY
    instruments: tuple[InstrumentParams, ...] = DEFAULT_INSTRUMENTS
    regimes: Mapping[str, RegimeParams] = field(default_factory=lambda: dict(DEFAULT_REGIMES))
    transitions: Mapping[str, Mapping[str, float]] = field(
        default_factory=lambda: {k: dict(v) for k, v in DEFAULT_TRANSITIONS.items()}
    )
    blend_bars: tuple[int, int] = (30, 120)
    mixed_probability: float = 0.2
    mixed_weight: tuple[float, float] = (0.55, 0.75)
    overnight_vol_fraction: float = 0.3
    substeps: int = 10
    volume_return_sensitivity: float = 0.5
    parameter_drift: float = 0.0

    def __post_init__(self) -> None:
        if self.days < 1 or self.bars_per_day < 2:
            raise ValueError("days must be >= 1 and bars_per_day >= 2")
        if not -1.0 < self.parameter_drift < 1.0:
            raise ValueError(f"parameter_drift must be in (-1, 1), was {self.parameter_drift}")
        if set(self.regimes) != set(REGIMES) or set(self.transitions) != set(REGIMES):
            raise ValueError(f"regimes and transitions need exactly the keys {REGIMES}")
        for regime, row in self.transitions.items():
            if regime in row or not math.isclose(sum(row.values()), 1.0):
                raise ValueError(f"transitions[{regime}] must sum to 1 without a self-transition")


@dataclass(frozen=True)
class SyntheticMarket:
    """Generated bars and the truth.

    Attributes
    ----------
    frames : dict[str, pd.DataFrame]
        Instrument id → bars: UTC DatetimeIndex at the bar close, float columns
        ``open high low close volume`` (prices rounded to cents, whole-share volume).
    truth : pd.DataFrame
        One row per bar close: ``ts_event`` (int64 ns UTC), ``label`` (dominant regime),
        ``p_bull``, ``p_bear``, ``p_sideways`` (mixture weights, summing to 1).
    factor : np.ndarray
        The market factor's log price per bar (float64, shape (n,)), for diagnostics.
    """

    frames: dict[str, pd.DataFrame]
    truth: pd.DataFrame
    factor: np.ndarray


def generate_market(params: SyntheticParams | None = None) -> SyntheticMarket:
    """Generate the synthetic market (deterministic for given parameters and seed)."""
    params = params or SyntheticParams()
    rng = np.random.default_rng(params.seed)
    closes = _bar_closes(params)
    n = closes.size
    weights = _regime_weights(params, n, rng)
    factor, factor_steps, gaps, bar_vol = _market_factor(params, weights, rng)
    volume_level = weights @ np.array([params.regimes[r].volume_level for r in REGIMES])
    index = pd.DatetimeIndex(closes.view("datetime64[ns]")).tz_localize("UTC")
    frames = {}
    for instrument in params.instruments:
        frames[f"{instrument.symbol}.{VENUE}"] = _instrument_bars(
            params, instrument, factor_steps, gaps, bar_vol, volume_level, index, rng
        )
    dominant = np.asarray(REGIMES, dtype=object)[np.argmax(weights, axis=1)]
    truth = pd.DataFrame(
        {
            "ts_event": closes,
            "label": dominant.astype(str),
            "p_bull": weights[:, 0],
            "p_bear": weights[:, 1],
            "p_sideways": weights[:, 2],
        }
    )
    return SyntheticMarket(frames=frames, truth=truth, factor=factor)


def instrument_spec(symbol: str) -> EquitySpec:
    """The Equity spec of a synthetic instrument: USD, cents, lot size 1, 1 bp fees, UTC."""
    spec = parse_instrument_spec(
        {
            "kind": "equity",
            "id": f"{symbol}.{VENUE}",
            "currency": "USD",
            "price_precision": 2,
            "lot_size": 1,
            "maker_fee": "0.0001",
            "taker_fee": "0.0001",
            "timezone": "UTC",
            "session_close": "21:00",
        },
        source=f"synthetic:{symbol}",
    )
    assert isinstance(spec, EquitySpec)
    return spec


def write_synthetic(
    catalog_dir: str | Path,
    params: SyntheticParams | None = None,
    replace: bool = True,
) -> dict[str, Any]:
    """Generate the market and write bars, instruments and truth in one catalog commit.

    Returns
    -------
    dict
        ``{"bar_types": [...], "rows": {bar_type: n}, "truth": path, "transitions": k}``.
    """
    from catalogs.ingest import prepare_frame
    from catalogs.ingest import write_prepared
    from catalogs.validation import ValidationConfig

    market = generate_market(params)
    prepared = [
        prepare_frame(
            frame,
            instrument_spec(instrument_id.split(".")[0]),
            source=f"synthetic:{instrument_id}",
            config=ValidationConfig(label="close"),
        )
        for instrument_id, frame in market.frames.items()
    ]
    truth_table = pa.Table.from_pandas(market.truth, preserve_index=False)
    results = write_prepared(
        catalog_dir, prepared, replace=replace, extra_tables={TRUTH_PATH: truth_table}
    )
    labels = market.truth["label"].to_numpy()
    return {
        "bar_types": [result.bar_type for result in results],
        "rows": {result.bar_type: result.rows_written for result in results},
        "truth": str(Path(catalog_dir) / TRUTH_PATH),
        "transitions": int(np.count_nonzero(labels[1:] != labels[:-1])),
    }


def load_regime_truth(catalog_dir: str | Path) -> pd.DataFrame:
    """The true regime path written by :func:`write_synthetic`.

    Returns
    -------
    pd.DataFrame
        Columns ``ts_event`` (int64 ns UTC bar close), ``label`` (``bull``/``bear``/
        ``sideways``, the dominant regime), ``p_bull``, ``p_bear``, ``p_sideways`` (float64
        mixture weights); one row per bar close, sorted.
    """
    path = Path(catalog_dir) / TRUTH_PATH
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no synthetic truth (build it: grodt catalog sample)")
    return pq.read_table(path).to_pandas()


# -- model ----------------------------------------------------------------------------------------


def _bar_closes(params: SyntheticParams) -> np.ndarray:
    """int64 ns UTC close times of every bar, shape (days × bars_per_day,)."""
    days = pd.bdate_range(pd.Timestamp(params.start), periods=params.days)
    hours, minutes = (int(part) for part in params.session_open_utc.split(":"))
    session_open = days.to_numpy().astype("datetime64[ns]").view(np.int64) + (
        (hours * 60 + minutes) * 60_000_000_000
    )
    offsets = np.arange(1, params.bars_per_day + 1, dtype=np.int64) * 60_000_000_000
    return (session_open[:, None] + offsets[None, :]).ravel()


def _regime_weights(params: SyntheticParams, n: int, rng: np.random.Generator) -> np.ndarray:
    """Mixture weights per bar, shape (n, 3) in :data:`REGIMES` order, rows summing to 1."""
    segments: list[tuple[int, np.ndarray]] = []  # (length in bars, weights)
    regime = int(rng.integers(len(REGIMES)))
    total = 0
    while total < n:
        name = REGIMES[regime]
        mean_bars = params.regimes[name].mean_duration_days * params.bars_per_day
        length = max(params.blend_bars[1], int(rng.gamma(2.0, mean_bars / 2.0)))
        weight = np.zeros(len(REGIMES))
        weight[regime] = 1.0
        if rng.random() < params.mixed_probability:
            other = int(rng.choice([i for i in range(len(REGIMES)) if i != regime]))
            dominant = rng.uniform(*params.mixed_weight)
            weight[regime], weight[other] = dominant, 1.0 - dominant
        segments.append((length, weight))
        total += length
        row = params.transitions[name]
        names = list(row)
        regime = REGIMES.index(names[int(rng.choice(len(names), p=list(row.values())))])
    weights = np.vstack([np.tile(w, (length, 1)) for length, w in segments])[:n]
    # Linear ramps across segment boundaries: the process blends the two regimes while it moves.
    boundary = 0
    for (length, before), (_, after) in itertools.pairwise(segments):
        boundary += length
        ramp = int(rng.integers(params.blend_bars[0], params.blend_bars[1] + 1))
        lo, hi = boundary - ramp // 2, min(boundary + ramp - ramp // 2, n)
        if lo >= n:
            break
        alpha = (np.arange(lo, hi) - lo + 0.5) / ramp
        weights[lo:hi] = (1.0 - alpha)[:, None] * before + alpha[:, None] * after
    return weights


def _intraday_profile(bars_per_day: int, open_boost: float, close_boost: float) -> np.ndarray:
    """A U shape over the session: high after the open, low at midday, rising into the close."""
    i = np.arange(bars_per_day, dtype=np.float64)
    decay = bars_per_day / 13.0
    return 1.0 + open_boost * np.exp(-i / decay) + close_boost * np.exp(-(i[::-1]) / decay)


def _market_factor(
    params: SyntheticParams, weights: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Factor log price, its per-bar steps, the overnight gaps inside those steps (zero except
    at session opens) and the per-bar intraday vol; float64, shape (n,) each."""
    n = weights.shape[0]
    per_bar = params.bars_per_day
    regimes = [params.regimes[r] for r in REGIMES]
    drift = weights @ np.array([r.drift_per_day / per_bar for r in regimes])
    variance = weights @ np.array([(r.vol_per_day / math.sqrt(per_bar)) ** 2 for r in regimes])
    if params.parameter_drift:
        progress = np.linspace(0.0, 1.0, n)
        drift = drift * (1.0 - params.parameter_drift * progress)
        variance = variance * (1.0 + params.parameter_drift * progress) ** 2
    kappa_side = math.log(2.0) / (params.regimes["sideways"].half_life_bars or math.inf)
    kappa = weights[:, REGIMES.index("sideways")] * kappa_side
    shape = _intraday_profile(per_bar, 1.2, 0.5)
    shape /= math.sqrt(np.mean(shape**2))
    bar_vol = np.sqrt(variance) * np.tile(shape, n // per_bar + 1)[:n]
    shocks = rng.standard_normal(n) * bar_vol
    session_start = (np.arange(n) % per_bar) == 0
    session_start[0] = False
    gaps = np.zeros(n)
    gaps[session_start] = (
        rng.standard_normal(int(session_start.sum()))
        * params.overnight_vol_fraction
        * np.sqrt(variance[session_start] * per_bar)
    )
    shocks += gaps
    factor = np.empty(n)
    level = 0.0
    previous = 0.0
    pulling = False
    # Sequential by nature (the pull depends on the previous level): 10^4-10^5 cheap iterations.
    for t in range(n):
        if kappa[t] > 0.0 and not pulling:
            level = previous  # the sideways level is where its influence starts
        pulling = kappa[t] > 0.0
        previous = previous + drift[t] + kappa[t] * (level - previous) + shocks[t]
        factor[t] = previous
    steps = np.diff(factor, prepend=0.0)
    return factor, steps, gaps, bar_vol


def _instrument_bars(
    params: SyntheticParams,
    instrument: InstrumentParams,
    factor_steps: np.ndarray,
    gaps: np.ndarray,
    market_vol: np.ndarray,
    volume_level: np.ndarray,
    index: pd.DatetimeIndex,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = factor_steps.size
    idio_vol = instrument.idio_vol_ratio * market_vol
    # Idiosyncratic part: AR(1) that mean-reverts over ~2 sessions, idio[t] = a idio[t-1] + e[t].
    persistence = 1.0 - math.log(2.0) / (2 * params.bars_per_day)
    idio = lfilter([1.0], [1.0, -persistence], rng.standard_normal(n) * idio_vol)
    log_close = math.log(instrument.start_price) + instrument.beta * np.cumsum(factor_steps) + idio
    # The overnight move happens before the open: a session's first bar opens at the gapped
    # price and then moves like any other minute.
    log_open = np.r_[math.log(instrument.start_price), log_close[:-1]] + instrument.beta * gaps
    bar_vol = np.sqrt((instrument.beta * market_vol) ** 2 + idio_vol**2)
    high, low = _bridge_extremes(log_open, log_close, bar_vol, params.substeps, rng)
    profile = _intraday_profile(params.bars_per_day, 1.5, 0.9)
    profile /= profile.mean()
    day_profile = np.tile(profile, n // params.bars_per_day + 1)[:n]
    move = np.abs(log_close - log_open) / bar_vol
    volume = (
        instrument.base_volume
        * day_profile
        * volume_level
        * (1.0 + params.volume_return_sensitivity * move)
        * rng.lognormal(-0.045, 0.3, n)
    )
    frame = pd.DataFrame(
        {
            "open": np.round(np.exp(log_open), 2),
            "high": np.round(np.exp(high), 2),
            "low": np.round(np.exp(low), 2),
            "close": np.round(np.exp(log_close), 2),
            "volume": np.maximum(np.round(volume), 1.0),
        },
        index=index,
    )
    return frame


def _bridge_extremes(
    start: np.ndarray,
    end: np.ndarray,
    vol: np.ndarray,
    substeps: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Max and min of a Brownian bridge from ``start`` to ``end`` with ``substeps`` steps."""
    n = start.size
    increments = rng.standard_normal((n, substeps)) * (vol / math.sqrt(substeps))[:, None]
    walk = np.cumsum(increments, axis=1)
    fraction = np.arange(1, substeps + 1) / substeps
    bridge = walk - fraction[None, :] * walk[:, -1:]
    path = start[:, None] + fraction[None, :] * (end - start)[:, None] + bridge
    high = np.maximum(np.max(path, axis=1), np.maximum(start, end))
    low = np.minimum(np.min(path, axis=1), np.minimum(start, end))
    return high, low
