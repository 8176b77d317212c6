"""One definition, two ways: batch over a catalog equals streaming over the same Nautilus bars
on every bar after warm-up (1e-9), for every feature kind — no train/serve skew."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from features_kit import REFERENCE
from features_kit import SUBJECT
from features_kit import every_kind_set
from features_kit import ingest_csv
from features_kit import minute_bars
from features_kit import regime_frame
from nautilus_trader.common.actor import Actor
from nautilus_trader.config import ActorConfig
from nautilus_trader.model.data import BarType
from nautilus_trader.model.identifiers import InstrumentId
from nautilus_trader.persistence.catalog import ParquetDataCatalog

from catalogs.reader import read_bars_frame
from grodt.core.messages import RegimeProbabilities
from research.features import FEATURE_KINDS
from research.features import FeatureSet
from research.features import FeatureSpec
from research.features import StreamingFeatures
from research.features import compute_batch
from research.features.base import BarValues

N_BARS = 400
DEFAULT_SET = str(Path(__file__).resolve().parents[2] / "node_configs/features/default.yaml")


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    root = tmp_path_factory.mktemp("features-parity")
    catalog = root / "catalog"
    ingest_csv(catalog, minute_bars(N_BARS, seed=1), "FEATA.XTST", "a.csv")
    ingest_csv(catalog, minute_bars(N_BARS, seed=2), "FEATB.XTST", "b.csv")
    return catalog


def _streamed(catalog, feature_set, regimes):
    """Feed the catalog's Nautilus bars (reference first at equal times) and regime records
    (before the bar they belong to) through StreamingFeatures; the subject's values per bar."""
    nautilus = ParquetDataCatalog(str(catalog))
    events = []
    for rank, bar_type in enumerate((REFERENCE, SUBJECT)):
        for bar in nautilus.bars([bar_type]):
            events.append((bar.ts_event, 1 + rank, bar))
    instrument = InstrumentId.from_str("FEATA.XTST")
    for ts, bull, bear, sideways in regimes.itertuples(index=False, name=None):
        record = RegimeProbabilities(
            instrument_id=instrument,
            p_bull=bull,
            p_bear=bear,
            p_sideways=sideways,
            ts_event=int(ts),
            ts_init=int(ts),
        )
        events.append((int(ts), 0, record))
    events.sort(key=lambda event: (event[0], event[1]))
    streaming = StreamingFeatures(feature_set)
    rows, index = [], []
    for ts, _rank, item in events:
        if isinstance(item, RegimeProbabilities):
            streaming.update_regime(item)
            continue
        values = streaming.update(item)
        if item.bar_type == BarType.from_str(SUBJECT):
            rows.append(values)
            index.append(pd.Timestamp(ts, tz="UTC"))
    return pd.DataFrame(rows, index=pd.DatetimeIndex(index, name="ts_event"))


def test_batch_equals_streaming_on_every_bar_after_warm_up_for_every_kind(catalog, tmp_path):
    feature_set = FeatureSet.from_yaml(every_kind_set(tmp_path / "every_kind.yaml"))
    assert {spec.kind for spec in feature_set} == set(FEATURE_KINDS)  # a new kind joins here

    bars = read_bars_frame(catalog, SUBJECT)
    regimes = regime_frame(bars.index, every=3, seed=3)
    batch = compute_batch(
        bars,
        feature_set,
        references={REFERENCE: read_bars_frame(catalog, REFERENCE)},
        regimes=regimes,
    )
    streamed = _streamed(catalog, feature_set, regimes)

    assert len(batch) == len(streamed) == N_BARS
    assert (batch.index == streamed.index).all()
    for spec in feature_set:
        for column in spec.columns:
            warm = spec.warm_up - 1
            left = batch[column].to_numpy()[warm:]
            right = streamed[column].to_numpy()[warm:]
            assert np.isfinite(left).sum() > N_BARS // 2, column  # not trivially NaN = NaN
            np.testing.assert_allclose(
                left, right, rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=column
            )
            # Both sides say "not yet" the same way during the warm-up.
            assert np.isnan(batch[column].to_numpy()[:warm]).all(), column
            assert np.isnan(streamed[column].to_numpy()[:warm]).all(), column


def test_edge_bars_give_defined_values(catalog, tmp_path):
    feature_set = FeatureSet.from_yaml(every_kind_set(tmp_path / "every_kind.yaml"))
    bars = read_bars_frame(catalog, SUBJECT)
    batch = compute_batch(
        bars,
        feature_set,
        references={REFERENCE: read_bars_frame(catalog, REFERENCE)},
        regimes=regime_frame(bars.index, every=3, seed=3),
    )
    # A window of constant volume has no z-score (NaN, not inf).
    assert np.isnan(batch["volume_zscore_10"].iloc[130:150]).all()
    assert np.isfinite(batch["volume_zscore_10"].iloc[200:]).all()
    # Zero-volume bars leave VWAP where it was.
    assert (batch["vwap"].iloc[70:75].diff().dropna() == 0).all()
    # VWAP restarts at the UTC midnight: the first bar of the day is its typical price.
    midnight = int(np.flatnonzero(bars.index.day != bars.index[0].day)[0])
    first = bars.iloc[midnight]
    assert batch["vwap"].iloc[midnight] == pytest.approx(
        (first.close + first.high + first.low) / 3.0, rel=1e-12
    )
    # Regime columns are the latest record at or before each bar.
    assert np.isnan(batch["regime_bull"].iloc[:5]).all()
    assert batch["regime_bull"].iloc[6] == batch["regime_bull"].iloc[5]


def test_the_streaming_side_is_the_nautilus_indicator(catalog):
    # Fed through handle_bar (Nautilus' own path), the indicator gives the feature's values.
    from nautilus_trader.indicators import RelativeStrengthIndex

    stream = FeatureSpec.create("rsi", period=7).definition.stream()
    indicator = RelativeStrengthIndex(7)
    compared = 0
    for bar in ParquetDataCatalog(str(catalog)).bars([SUBJECT]):
        indicator.handle_bar(bar)
        (value,) = stream.update(
            BarValues(
                bar.ts_event,
                bar.open.as_double(),
                bar.high.as_double(),
                bar.low.as_double(),
                bar.close.as_double(),
                bar.volume.as_double(),
            )
        )
        if indicator.initialized:
            assert value == indicator.value
            compared += 1
    assert compared == N_BARS - 6


class FeatureRecorderConfig(ActorConfig, frozen=True):
    bar_type: str
    feature_set: str


class FeatureRecorder(Actor):
    """What a strategy or actor does: StreamingFeatures in on_bar."""

    def __init__(self, config: FeatureRecorderConfig) -> None:
        super().__init__(config)
        self.features = StreamingFeatures(FeatureSet.from_yaml(config.feature_set))
        self.rows: list[dict[str, float]] = []
        self.stamps: list[int] = []

    def on_start(self) -> None:
        self.subscribe_bars(BarType.from_str(self.config.bar_type))

    def on_bar(self, bar) -> None:
        self.rows.append(self.features.update(bar))
        self.stamps.append(bar.ts_event)


def test_an_actor_in_a_backtest_engine_sees_the_batch_values(catalog):
    from nautilus_trader.backtest.engine import BacktestEngine
    from nautilus_trader.backtest.engine import BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.model.currencies import USD
    from nautilus_trader.model.enums import AccountType
    from nautilus_trader.model.enums import OmsType
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money

    nautilus = ParquetDataCatalog(str(catalog))
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(bypass_logging=True)))
    engine.add_venue(
        Venue("XTST"),
        oms_type=OmsType.NETTING,
        account_type=AccountType.CASH,
        starting_balances=[Money(1_000_000, USD)],
        base_currency=USD,
    )
    for instrument in nautilus.instruments():
        engine.add_instrument(instrument)
    engine.add_data(nautilus.bars([SUBJECT]))
    recorder = FeatureRecorder(FeatureRecorderConfig(bar_type=SUBJECT, feature_set=DEFAULT_SET))
    engine.add_actor(recorder)
    try:
        engine.run()
    finally:
        engine.dispose()

    feature_set = FeatureSet.from_yaml(DEFAULT_SET)
    batch = compute_batch(read_bars_frame(catalog, SUBJECT), feature_set)
    streamed = pd.DataFrame(recorder.rows)
    assert len(streamed) == len(batch) == N_BARS
    assert recorder.stamps == list(batch.index.as_unit("ns").asi8)
    for spec in feature_set:
        warm = spec.warm_up - 1
        np.testing.assert_allclose(
            batch[spec.name].to_numpy()[warm:],
            streamed[spec.name].to_numpy()[warm:],
            rtol=1e-9,
            atol=1e-9,
            equal_nan=True,
            err_msg=spec.name,
        )
