"""The arrays an RL training run needs, built from a catalog and an :class:`RLTrainConfig`.

- the feature matrix of the config's bar types and feature set (:mod:`research.features.matrix`,
  built once, memory-mapped after);
- the observation spec with its normalisation fitted on the **training** rows only;
- the execution terms: the venue YAML (account type, ``fill_at``, slippage, starting cash) and
  the catalog's instrument (taker fee, tick, lot, multiplier);
- causal regime probabilities of every row: one HMM per bar type fitted on its training rows,
  then filtered forward over all rows (never smoothed; test rows use the model fitted on the
  training period only);
- training windows and, per regime label, their sampling weights.
"""

import time
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

import numpy as np
from nautilus_trader.model.data import BarType

from grodt.core.errors import ConfigError
from grodt.core.messages import REGIME_LABELS
from grodt.core.settings import get_settings
from grodt.experiments.rl_config import RLTrainConfig
from grodt.experiments.rl_worker import EnvSpec
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import fit_window
from models.regime.walk_forward import run_walk_forward
from models.rl.episodes import fixed_windows
from models.rl.episodes import regime_window_weights
from models.rl.episodes import session_windows
from models.rl.fills import ExecutionModel
from models.rl.observation import ObservationSpec
from models.rl.rewards import RewardConfig
from models.rl.safety import RiskLimits
from node_configs.loader import load_document
from node_configs.loader import validate_model
from node_configs.schema import VenueSpec
from research.features.matrix import FeatureMatrix
from research.features.matrix import build_feature_matrix
from research.features.spec import FeatureSet

__all__ = ["RLData", "prepare_data"]


@dataclass
class RLData:
    """Prepared arrays of a run (module docstring).

    Attributes
    ----------
    matrix : FeatureMatrix
    env : EnvSpec
    regimes : np.ndarray
        float (n_rows, 3): causal p(bull, bear, sideways) of every row.
    train_segments, test_segments : list[tuple[int, int]]
        Per bar type, its rows (first, last) in the period, after the feature warm-up.
    train_windows : np.ndarray
        int (n_windows, 2).
    weights : dict[str, np.ndarray]
        Regime label → sampling weight of each training window.
    periods_per_year : float
        Bars per year (annualisation), from the bar interval.
    seconds : dict[str, float]
        Wall time of each preparation step (``matrix``: build or open).
    """

    matrix: FeatureMatrix
    env: EnvSpec
    regimes: np.ndarray
    train_segments: list[tuple[int, int]]
    test_segments: list[tuple[int, int]]
    train_windows: np.ndarray
    weights: dict[str, np.ndarray]
    periods_per_year: float
    seconds: dict[str, float] = field(default_factory=dict)


def _instrument_terms(catalog: Path, bar_types: list[str], venue: VenueSpec) -> ExecutionModel:
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    ids = [str(BarType.from_str(name).instrument_id) for name in bar_types]
    found = {str(i.id): i for i in ParquetDataCatalog(str(catalog)).instruments(instrument_ids=ids)}
    missing = [i for i in ids if i not in found]
    if missing:
        raise ConfigError(f"{catalog}: no instrument definition of {missing}")
    if venue.fee_model.kind != "maker_taker":
        raise ConfigError(
            f"venue {venue.name}: fee_model.kind {venue.fee_model.kind!r}; the RL env charges "
            "the instruments' taker fees (maker_taker) only"
        )
    terms = {}
    for instrument_id in ids:
        instrument = found[instrument_id]
        if instrument_id.split(".")[-1] != venue.name:
            raise ConfigError(f"bar_types: {instrument_id} is not on venue {venue.name}")
        terms[instrument_id] = (
            float(instrument.taker_fee),
            float(instrument.price_increment),
            float(instrument.size_increment),
            float(instrument.multiplier),
            str(instrument.quote_currency),
        )
    first = ids[0]
    for instrument_id, value in terms.items():
        same = value[0] == terms[first][0] and value[2:] == terms[first][2:]
        ticks_matter = venue.fill_model.prob_slippage > 0 and value[1] != terms[first][1]
        if not same or ticks_matter:
            raise ConfigError(
                f"bar_types: {instrument_id} (fee, tick, lot, multiplier, currency {value}) "
                f"differs from {first} ({terms[first]}); train instruments with equal terms "
                "together"
            )
    fee, tick, lot, multiplier, currency = terms[first]
    return ExecutionModel(
        fee_rate=fee,
        tick_size=tick,
        lot_size=lot,
        multiplier=multiplier,
        prob_slippage=venue.fill_model.prob_slippage,
        fill_at=venue.fill_at,
        account_type="cash" if venue.account_type == "CASH" else "margin",
        currency=currency,
    )


def _regime_probabilities(
    matrix: FeatureMatrix, config: RLTrainConfig, train_segments: dict[str, tuple[int, int]]
) -> np.ndarray:
    spec = config.regime
    probabilities = np.full((matrix.n_rows, len(REGIME_LABELS)), 1.0 / len(REGIME_LABELS))
    for bar_type, (start, stop) in matrix.ranges.items():
        closes = np.asarray(matrix.bars["close"][start:stop])
        stamps = np.asarray(matrix.ts[start:stop])
        if bar_type not in train_segments:
            continue
        _first, last = train_segments[bar_type]
        train_rows = last + 1 - start  # every bar of the bar type up to the training period's end
        walk = WalkForwardConfig(
            features=tuple(spec.features),
            n_states=spec.n_states,
            n_init=spec.n_init,
            random_state=spec.random_state,
            train_bars=min(spec.train_bars, train_rows),
            refit_every=0,
        )
        model = fit_window(walk, closes[:train_rows], stamps[:train_rows])
        frame, _engine = run_walk_forward(closes, stamps, walk, model=model)
        probabilities[start:stop] = frame[["p_bull", "p_bear", "p_sideways"]].to_numpy()
    return probabilities


def _periods_per_year(bar_type: str) -> float:
    spec = BarType.from_str(bar_type).spec
    seconds = spec.timedelta.total_seconds()
    if seconds >= 86_400:
        return 252.0 * 86_400 / seconds
    return 252.0 * 6.5 * 3600 / seconds  # exchange-hours bars: 6.5 h sessions


def prepare_data(
    config: RLTrainConfig,
    matrices_dir: str | Path | None = None,
    catalog: str | Path | None = None,
) -> RLData:
    """Build (or open) the feature matrix and derive everything else (module docstring).

    ``matrices_dir`` defaults to ``<runs_dir>/rl_matrices``; ``catalog`` to the config's, then
    GRODT_CATALOG.
    """
    settings = get_settings()
    catalog = Path(catalog or config.catalog or settings.catalog)
    matrices_dir = Path(matrices_dir or Path(settings.runs_dir) / "rl_matrices")
    venue = validate_model(VenueSpec, load_document(config.venue), config.venue)
    feature_set = FeatureSet.from_yaml(config.feature_set)
    execution = _instrument_terms(catalog, config.bar_types, venue)
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    matrix = build_feature_matrix(catalog, feature_set, matrices_dir, config.bar_types)
    seconds["matrix"] = time.perf_counter() - started
    seconds["matrix_built"] = 0.0 if matrix.reused else seconds["matrix"]
    train_by_type: dict[str, tuple[int, int]] = {}
    for bar_type in matrix.ranges:
        found = matrix.segments_between(config.train.start, config.train.end, [bar_type])
        if found:
            train_by_type[bar_type] = found[0]
    train = list(train_by_type.values())
    if not train:
        raise ConfigError(f"train: no bars of {config.bar_types} in the training period")
    test = []
    if config.test is not None:
        test = matrix.segments_between(config.test.start, config.test.end)
    started = time.perf_counter()
    regimes = _regime_probabilities(matrix, config, train_by_type)
    seconds["regimes"] = time.perf_counter() - started
    rows = np.concatenate([np.arange(a, b + 1) for a, b in train])
    observation = ObservationSpec(
        feature_names=matrix.columns,
        feature_set=feature_set.name,
        feature_set_version=feature_set.version,
    ).fit(np.asarray(matrix.features[rows]))
    episodes = config.episodes
    if episodes.sessions:
        windows = session_windows(np.asarray(matrix.ts), episodes.timezone, train)
    else:
        assert episodes.bars is not None
        windows = fixed_windows(matrix.n_rows, episodes.bars, episodes.stride, train)
    if not len(windows):
        raise ConfigError("episodes: the training period holds no complete episode window")
    weights = {
        label: regime_window_weights(regimes[:, REGIME_LABELS.index(label)], windows)
        for label in config.labels
    }
    allow_short = config.limits.allow_short
    if allow_short is None:
        allow_short = venue.account_type == "MARGIN"
    cash = float(venue.starting_balances[0].split()[0])
    env = EnvSpec(
        matrix_path=str(matrix.path),
        observation=observation.to_dict(),
        execution=execution,
        limits=RiskLimits(
            max_weight=config.limits.max_weight,
            gross_exposure=config.limits.gross_exposure,
            allow_short=allow_short,
        ),
        reward=RewardConfig(**config.reward.model_dump()),
        action_kind=config.action,
        initial_cash=cash,
    )
    return RLData(
        matrix=matrix,
        env=env,
        regimes=regimes,
        train_segments=train,
        test_segments=test,
        train_windows=windows,
        weights=weights,
        periods_per_year=_periods_per_year(config.bar_types[0]),
        seconds=seconds,
    )
