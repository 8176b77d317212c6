"""The regime model on the real S&P 500 sample (package-shipped data, daily 1999-2018)."""

import pandas as pd

from models.regime.catalog_io import load_bars
from models.regime.walk_forward import WalkForwardConfig
from models.regime.walk_forward import run_walk_forward

BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"


def test_the_2008_crash_is_bear_and_2013_is_bull(sp500_catalog):
    bars = load_bars(sp500_catalog, BAR_TYPE)
    config = WalkForwardConfig(train_bars=750, refit_every=126, n_init=2, temperature=20.0)
    frame, regime = run_walk_forward(bars.close, bars.ts_event, config, on_info=lambda _m: None)
    frame.index = pd.to_datetime(frame["ts_event"], unit="ns", utc=True)
    assert regime.failed_fits == 0 and len(regime.fits) >= 30
    crash = frame.loc["2008-10-01":"2009-03-31"]
    calm = frame.loc["2013-01-01":"2013-12-31"]
    assert (crash["most_likely"] == "bear").mean() > 0.8
    assert crash["p_bear"].mean() > 0.7
    assert (calm["most_likely"] == "bull").mean() > 0.6
    assert calm["p_bear"].mean() < 0.2
