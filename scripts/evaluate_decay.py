"""Model decay, measured: a regime HMM trained once (static) against the same model retrained
online on a sliding window, month by month after the first training window.

Two markets:

- **synthetic** (``catalogs.synthetic``, one-minute bars of SYNA.XSYN, 390 per session), with
  ``parameter_drift`` (default 0.6: every regime's vol 60 % higher and drift 60 % weaker by the
  last bar) and, as a control, the same seed without drift. Model settings: the shipped
  ``node_configs/components/actors/regime_synthetic.yaml`` (20-session window, temperature 20).
  Static: fitted once on the first 20 sessions. Online: refitted every session (390 bars, warm
  start) on the trailing 20 sessions. Performance: accuracy of the most likely label against the
  generator's dominant regime, per month (21 sessions).
- **S&P 500** daily (``SPX.SAMPLE-1-DAY-LAST-EXTERNAL`` of the sample catalog, 1999-2018), the
  shipped ``regime_spx.yaml`` (750-bar window). No true regimes, so performance is the causal
  one-step predictive log-likelihood per bar (nats, raw feature units, filter untempered: fits
  do not depend on the temperature), per month (21 bars). Static: fitted on the first 750 rows.
  Online: refitted every ``--spx-refit-every`` bars (default 21, the shipped schedule: a refit per
  daily bar would be ~4,300 fits). Bars where a refit happens are left out (that row is in the
  new model's training window).

Beside the label accuracy, what the model is for (:func:`synthetic_usefulness`): the
predictive log-likelihood per bar and the Brier score of the generator's true regime under a
state → regime matching fixed causally when each model is fitted; and the S&P 500 with *daily*
online updates from several start dates (:func:`spx_daily_updates`, part ``spx_daily``).

Decay (``docs/lifecycle.md``): for accuracy, ``decay_k = 1 − perf_k / perf_1`` over months
k = 1, 2, 3 after training; for the Brier score (a loss), ``brier_k / brier_1 − 1``; for
log-likelihood, the drop ``perf_1 − perf_k`` in nats per bar.

    .venv/bin/python scripts/evaluate_decay.py [--months 3] [--seeds 7 8 9] \
        [--parts synthetic spx spx_daily] [--json decay.json]
"""

import argparse
import json
import math
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SYNTHETIC_COMPONENT = REPO / "node_configs" / "components" / "actors" / "regime_synthetic.yaml"
SPX_COMPONENT = REPO / "node_configs" / "components" / "actors" / "regime_spx.yaml"
SPX_BAR_TYPE = "SPX.SAMPLE-1-DAY-LAST-EXTERNAL"
SESSIONS_PER_MONTH = 21


def walk_forward_config(component: Path, **overrides: Any) -> Any:
    from dataclasses import replace

    import msgspec

    from actors.regime_actor import RegimeActorConfig
    from node_configs.loader import load_yaml_document

    settings = dict(load_yaml_document(component)["config"])
    settings["bar_types"] = settings["bar_types"][:1]
    # Each model from the bar its window ends (refit_lag_bars 0), as when the figures of
    # docs/lifecycle.md were measured; the synthetic component's lag is where a node runs its
    # fits.
    settings["walk_forward"] = {**settings.get("walk_forward", {}), "refit_lag_bars": 0}
    return replace(RegimeActorConfig.parse(msgspec.json.encode(settings)).walk_forward, **overrides)


def by_month(values: np.ndarray, start: int, bars_per_month: int, months: int) -> list[float]:
    """Mean of ``values`` (NaN ignored) over consecutive months from row ``start``."""
    out = []
    for k in range(months):
        chunk = values[start + k * bars_per_month : start + (k + 1) * bars_per_month]
        out.append(float(np.nanmean(chunk)) if np.isfinite(chunk).any() else math.nan)
    return out


def synthetic_part(drift: float, months: int, seed: int) -> dict[str, Any]:
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import generate_market
    from models.regime.walk_forward import run_walk_forward

    sessions = 20 + months * SESSIONS_PER_MONTH
    market = generate_market(
        SyntheticParams(days=sessions, seed=seed, parameter_drift=drift),
    )
    frame = market.frames["SYNA.XSYN"]
    closes = frame["close"].to_numpy()
    stamps = market.truth["ts_event"].to_numpy()
    truth = market.truth["label"].to_numpy()
    train = 20 * 390
    out: dict[str, Any] = {"parameter_drift": drift, "bars": len(closes), "seed": seed}
    for name, overrides in (
        ("static", {"min_train_bars": train, "refit_every": 0}),
        ("online", {"min_train_bars": train, "refit_every": 390}),
    ):
        config = walk_forward_config(SYNTHETIC_COMPONENT, **overrides)
        started = time.perf_counter()
        result, engine = run_walk_forward(
            closes, stamps, config, on_warning=lambda _m: None, on_info=lambda _m: None
        )
        hits = (result["most_likely"].to_numpy() == truth).astype(float)
        hits[result["status"].to_numpy() == "prior"] = np.nan
        monthly = by_month(hits, train, SESSIONS_PER_MONTH * 390, months)
        out[name] = {
            "accuracy_by_month": monthly,
            "decay_by_month": [1.0 - a / monthly[0] for a in monthly],
            "fits": len(engine.fits),
            "seconds": time.perf_counter() - started,
            "fit_seconds_mean": float(np.mean([f.seconds for f in engine.fits])),
        }
    return out


REGIMES = ("bull", "bear", "sideways")


def _match_states(model: Any, window: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """State → true regime index, fixed when the model is fitted from its own training window
    (past bars only): each state goes to the regime whose bars carry most of its filtered
    probability mass there. Shape (K,)."""
    states = model.filter_proba(window, labels=False)
    onehot = (truth[:, None] == np.array(REGIMES)[None, :]).astype(float)
    return np.argmax(states.T @ onehot, axis=1)


def synthetic_usefulness(drift: float, months: int, seed: int) -> dict[str, Any]:
    """The decay of what the regime model is for, on the synthetic market: per bar, untempered
    (temperature 1: the fits are the same, the filter is the model's own posterior),

    - ``loglik``: the causal one-step predictive log-likelihood (nats/bar, raw feature units);
    - ``brier``: Σ_r (P(regime r) − 1[truth = r])² of the generator's dominant regime, where
      P(regime r) sums the filtered probabilities of the states matched to r when the model was
      fitted (:func:`_match_states`: a causal, fixed label matching, not the drift t-statistic);
    - Brier skill ``1 − brier / brier_climatology`` per month, the climatology forecasting the
      regime frequencies of the first training window.

    Decay of the Brier score (a loss with a natural zero): ``brier_k / brier_1 − 1``, the
    relative increase from month 1 to month k.
    """
    from catalogs.synthetic import SyntheticParams
    from catalogs.synthetic import generate_market
    from models.regime.walk_forward import WalkForwardRegime

    sessions = 20 + months * SESSIONS_PER_MONTH
    market = generate_market(SyntheticParams(days=sessions, seed=seed, parameter_drift=drift))
    closes = market.frames["SYNA.XSYN"]["close"].to_numpy()
    stamps = market.truth["ts_event"].to_numpy()
    truth = market.truth["label"].to_numpy().astype(str)
    train = 20 * 390
    onehot = (truth[:, None] == np.array(REGIMES)[None, :]).astype(float)
    climatology = onehot[:train].mean(axis=0)  # the first training window's regime shares
    out: dict[str, Any] = {"parameter_drift": drift, "seed": seed}
    for name, refit_every in (("static", 0), ("online", 390)):
        config = walk_forward_config(
            SYNTHETIC_COMPONENT, temperature=1.0, min_train_bars=train, refit_every=refit_every
        )
        engine = WalkForwardRegime(config, on_warning=lambda _m: None, on_info=lambda _m: None)
        n = len(closes)
        loglik = np.full(n, np.nan)
        brier = np.full(n, np.nan)
        valid_bars: list[int] = []
        matches: dict[str, np.ndarray] = {}
        started = time.perf_counter()
        for i in range(n):
            forward = engine._filter
            before = forward.log_likelihood if forward is not None else None
            rows_before = engine.rows
            step = engine.update(float(closes[i]), int(stamps[i]))
            if engine.rows > rows_before:
                valid_bars.append(i)
            if step.status == "fitted":
                assert engine.model is not None and engine.training_rows is not None
                window = engine.training_rows
                bars = np.array(valid_bars[-len(window) :])
                matches[engine.model.version_] = _match_states(engine.model, window, truth[bars])
                continue  # this row is in the new model's training window
            if step.status != "filtered":
                continue
            assert engine.model is not None and engine.state is not None
            if forward is engine._filter and before is not None:
                scale = float(np.log(engine.model.scaler_scale_).sum())
                loglik[i] = engine._filter.log_likelihood - before - scale
            regime_p = np.zeros(3)
            np.add.at(regime_p, matches[engine.model.version_], np.asarray(engine.state))
            brier[i] = float(np.sum((regime_p - onehot[i]) ** 2))
        month = SESSIONS_PER_MONTH * 390
        clim = np.sum((climatology[None, :] - onehot) ** 2, axis=1)
        brier_m = by_month(brier, train, month, months)
        clim_m = by_month(clim, train, month, months)
        skill = [1.0 - b / c for b, c in zip(brier_m, clim_m, strict=True)]
        out[name] = {
            "loglik_by_month": by_month(loglik, train, month, months),
            "brier_by_month": brier_m,
            "brier_climatology_by_month": clim_m,
            "brier_skill_by_month": skill,
            "skill_decay_by_month": [1.0 - k / skill[0] for k in skill],
            "brier_decay_by_month": [b / brier_m[0] - 1.0 for b in brier_m],
            "fits": len(engine.fits),
            "seconds": time.perf_counter() - started,
        }
    return out


def spx_part(catalog: Path, refit_every: int) -> dict[str, Any]:
    from models.regime.catalog_io import load_bars
    from models.regime.walk_forward import WalkForwardRegime

    bars = load_bars(catalog, SPX_BAR_TYPE)
    out: dict[str, Any] = {"bars": len(bars.close), "refit_every": refit_every}
    for name, overrides in (
        ("static", {"refit_every": 0}),
        ("online", {"refit_every": refit_every}),
    ):
        config = walk_forward_config(SPX_COMPONENT, temperature=1.0, **overrides)
        engine = WalkForwardRegime(config, on_warning=lambda _m: None, on_info=lambda _m: None)
        loglik = np.full(len(bars.close), np.nan)
        started = time.perf_counter()
        first_fit = None
        for i, (close, ts) in enumerate(zip(bars.close, bars.ts_event, strict=True)):
            forward = engine._filter
            before = forward.log_likelihood if forward is not None else None
            step = engine.update(float(close), int(ts))
            if step.status == "fitted" and first_fit is None:
                first_fit = i
            if step.status == "filtered" and forward is engine._filter and before is not None:
                assert engine.model is not None
                scale = float(np.log(engine.model.scaler_scale_).sum())
                loglik[i] = engine._filter.log_likelihood - before - scale
        start = (first_fit or 0) + 1
        months = (len(loglik) - start) // SESSIONS_PER_MONTH
        monthly = by_month(loglik, start, SESSIONS_PER_MONTH, months)
        month_index = pd.Timestamp(int(bars.ts_event[start]), unit="ns", tz="UTC")
        yearly: dict[str, float] = {}
        for k in range(0, months, 12):
            year = (month_index + pd.DateOffset(months=k)).year
            yearly[str(year)] = float(np.nanmean(monthly[k : k + 12]))
        out[name] = {
            "first_oos_bar": str(month_index),
            "loglik_by_month": monthly,
            "loglik_by_year": yearly,
            "drop_months_1_to_3": [monthly[0] - m for m in monthly[:3]],
            "mean_loglik": float(np.nanmean(loglik)),
            "fits": len(engine.fits),
            "seconds": time.perf_counter() - started,
        }
    return out


def spx_daily_updates(catalog: Path, starts: list[str], months: int) -> dict[str, Any]:
    """Static vs *daily* online updates on the S&P 500, from several start dates (the S&P's
    stand-in for seeds): at each start the model is fitted on the 750 rows before it (the
    shipped window); static keeps that model, online refits it every bar (warm start) on the
    trailing 750 rows. Performance: the causal one-step predictive log-likelihood per bar
    (nats, raw feature units, untempered) by month of 21 bars, each row scored by the model and
    filter state in use before it (so the rows that refit count too)."""
    from models.regime.catalog_io import load_bars
    from models.regime.walk_forward import WalkForwardRegime

    bars = load_bars(catalog, SPX_BAR_TYPE)
    stamps = np.asarray(bars.ts_event, dtype=np.int64)
    out: dict[str, Any] = {"starts": {}}
    for start in starts:
        first = int(np.searchsorted(stamps, pd.Timestamp(start, tz="UTC").value))
        row: dict[str, Any] = {}
        for name, refit_every in (("static", 0), ("online", 1)):
            config = walk_forward_config(
                SPX_COMPONENT, temperature=1.0, refit_every=refit_every, min_train_bars=None
            )
            engine = WalkForwardRegime(config, on_warning=lambda _m: None, on_info=lambda _m: None)
            # The first fit lands on the bar before ``first``: features' warm-up + the window.
            begin = first - config.train_bars - engine.extractor.warmup_bars + 1
            end = min(first + months * SESSIONS_PER_MONTH, len(stamps))
            loglik = np.full(end - begin, np.nan)
            oos = None
            started = time.perf_counter()
            for j, i in enumerate(range(begin, end)):
                # Score row t with the model and filter in use before it (a copy), so a row
                # that also refits (every row, online) is scored out of sample as well.
                model = engine.model
                forward = None
                if engine._filter is not None:
                    forward = engine._filter.clone()
                    forward.reset(prior=engine._filter.probabilities)
                step = engine.update(float(bars.close[i]), int(stamps[i]))
                if step.status == "fitted" and oos is None:
                    oos = j + 1
                if forward is not None and model is not None and engine.last_row is not None:
                    before = forward.log_likelihood
                    forward.update(engine.last_row)
                    scale = float(np.log(model.scaler_scale_).sum())
                    loglik[j] = forward.log_likelihood - before - scale
            assert oos is not None
            row[name] = {
                "first_oos_bar": str(pd.Timestamp(int(stamps[begin + oos]), unit="ns", tz="UTC")),
                "loglik_by_month": by_month(loglik, oos, SESSIONS_PER_MONTH, months),
                "fits": len(engine.fits),
                "seconds": time.perf_counter() - started,
            }
        out["starts"][start] = row
    for name in ("static", "online"):
        table = np.array([out["starts"][s][name]["loglik_by_month"] for s in starts])
        out[f"{name}_mean_by_month"] = table.mean(axis=0).tolist()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--months", type=int, default=3)
    parser.add_argument("--drift", type=float, default=0.6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[7])
    parser.add_argument("--spx-refit-every", type=int, default=21)
    parser.add_argument("--catalog", type=Path, default=None)
    parser.add_argument("--parts", nargs="+", default=["synthetic", "spx", "spx_daily"])
    parser.add_argument(
        "--spx-starts",
        nargs="+",
        default=["2003-01-02", "2006-01-03", "2009-01-02", "2012-01-03", "2015-01-02"],
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    print(
        f"model decay: static vs online regime HMM ({platform.machine()}, {os.cpu_count()} "
        f"CPUs, load average {os.getloadavg()[0]:.1f})",
    )
    report: dict[str, Any] = {}
    if "synthetic" in args.parts:
        report["synthetic"] = []
        for seed in args.seeds:
            for drift in (args.drift, 0.0):
                part = synthetic_part(drift, args.months, seed)
                report["synthetic"].append(part)
                print(f"synthetic seed {seed}, parameter_drift {drift}: {part['bars']:,} bars")
                for name in ("static", "online"):
                    row = part[name]
                    accuracy = " ".join(f"{a:.3f}" for a in row["accuracy_by_month"])
                    decay = " ".join(f"{d:+.1%}" for d in row["decay_by_month"])
                    print(
                        f"  {name:<6} accuracy by month {accuracy}  decay {decay}  "
                        f"({row['fits']} fits, {row['fit_seconds_mean']:.2f} s each)",
                    )
                useful = synthetic_usefulness(drift, args.months, seed)
                report.setdefault("synthetic_usefulness", []).append(useful)
                for name in ("static", "online"):
                    row = useful[name]
                    loglik = " ".join(f"{v:.3f}" for v in row["loglik_by_month"])
                    brier = " ".join(f"{v:.3f}" for v in row["brier_by_month"])
                    skill = " ".join(f"{v:.3f}" for v in row["brier_skill_by_month"])
                    decay = " ".join(f"{d:+.1%}" for d in row["brier_decay_by_month"])
                    print(
                        f"  {name:<6} loglik/bar {loglik}  brier {brier} (vs month 1 {decay})  "
                        f"skill {skill}",
                    )
    if "spx" in args.parts:
        from grodt.core.settings import get_settings

        catalog = args.catalog or get_settings().catalog
        part = spx_part(catalog, args.spx_refit_every)
        report["spx"] = part
        print(f"S&P 500 daily: {part['bars']:,} bars, online refit every {part['refit_every']}")
        for name in ("static", "online"):
            row = part[name]
            first3 = " ".join(f"{v:.3f}" for v in row["loglik_by_month"][:3])
            print(
                f"  {name:<6} from {row['first_oos_bar'][:10]}: mean loglik/bar "
                f"{row['mean_loglik']:.3f}; months 1-3 {first3}; {row['fits']} fits",
            )
        years = list(part["static"]["loglik_by_year"])
        print("  by year      " + " ".join(f"{y:>7}" for y in years))
        for name in ("static", "online"):
            values = part[name]["loglik_by_year"]
            print(f"  {name:<12} " + " ".join(f"{values[y]:7.3f}" for y in years))
    if "spx_daily" in args.parts:
        from grodt.core.settings import get_settings

        catalog = args.catalog or get_settings().catalog
        daily = spx_daily_updates(catalog, args.spx_starts, args.months)
        report["spx_daily"] = daily
        print(f"S&P 500, static vs daily online updates, {args.months} months from each start")
        for start, row in daily["starts"].items():
            for name in ("static", "online"):
                values = " ".join(f"{v:.3f}" for v in row[name]["loglik_by_month"])
                print(
                    f"  {start} {name:<6} loglik/bar by month {values} ({row[name]['fits']} fits)"
                )
        for name in ("static", "online"):
            values = " ".join(f"{v:.3f}" for v in daily[f"{name}_mean_by_month"])
            print(f"  mean       {name:<6} {values}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
