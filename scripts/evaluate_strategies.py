"""Evaluate the rule strategies S1, S2, S3: alone and combined, on the S&P 500 sample and on the
synthetic regime market, and — on the synthetic market — split by the TRUE regime.

Usage::

    .venv/bin/python scripts/evaluate_strategies.py --catalog data/catalog --out runs/evaluation
    .venv/bin/python scripts/evaluate_strategies.py --only s3_sp500 rules_synthetic
    .venv/bin/python scripts/evaluate_strategies.py --regime   # + the regime-actor configs

The catalog must hold the ``sp500`` and ``synthetic`` sample datasets
(``grodt catalog sample --catalog DIR``, or ``catalogs.sample.build_sample_catalog``). Each config
of ``node_configs/backtest/`` is run in a BacktestNode (``grodt.nodes.backtest.run_backtest``) into
``<out>/<config>/``; the script prints Markdown tables and writes ``<out>/evaluation.json`` and
``<out>/evaluation.md``.

Regime split (synthetic market only): the per-bar PnL of each rule (the sum of its instances'
``pnl:<strategy_id>`` columns of ``equity.parquet``, commissions included) over the account
equity of the previous bar is a per-bar return; bars are labelled with the true regime of
``catalogs.synthetic.load_regime_truth``. *In-regime* bars are those whose true label has a
positive affinity for the rule (S1, S3: bull and bear; S2: sideways), *out-of-regime* the others.
Sharpe ratios are annualised with sqrt(252 · 390) (1-minute bars, 390 per session). A rule whose
affinities are right earns a clearly higher Sharpe in its regimes than outside them.
"""

import argparse
import json
import math
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
CONFIG_DIR = REPO / "node_configs" / "backtest"
BASE_CONFIGS: tuple[str, ...] = (
    "s1_sp500",
    "s2_sp500",
    "s3_sp500",
    "rules_sp500",
    "s1_synthetic",
    "s2_synthetic",
    "s3_synthetic",
    "rules_synthetic",
)
REGIME_CONFIGS: tuple[str, ...] = (
    "rules_sp500_regime",
    "rules_synthetic_regime",
    "rules_synthetic_regime_hard",
)
RULES: dict[str, str] = {
    "S1VwapEmaScalper": "S1",
    "S2MeanReversion": "S2",
    "S3Breakout": "S3",
}
MINUTE_BARS_PER_YEAR = 252 * 390
SUMMARY_KEYS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "profit_factor",
    "trades",
    "exposure",
    "time_in_market",
)


def rule_of(strategy_id: str) -> str:
    """``"S1VwapEmaScalper-101"`` → ``"S1"`` (other strategies keep their class name)."""
    name = strategy_id.rsplit("-", 1)[0]
    return RULES.get(name, name)


def affinities_of(spec: Any) -> dict[str, dict[str, float]]:
    """The regime affinity of each rule in a node spec (the first instance's)."""
    import_path = {
        "S1": "strategies.s1_vwap_ema_scalper:S1VwapEmaScalperConfig",
        "S2": "strategies.s2_mean_reversion:S2MeanReversionConfig",
        "S3": "strategies.s3_breakout:S3BreakoutConfig",
    }
    from node_configs.loader import import_object

    found: dict[str, dict[str, float]] = {}
    for component in spec.strategies:
        rule = RULES.get(component.path.rsplit(":", 1)[-1])
        if rule is None or rule in found:
            continue
        if "regime_affinity" in component.config:
            found[rule] = dict(component.config["regime_affinity"])
        else:
            found[rule] = dict(import_object(import_path[rule])().regime_affinity)
    return found


def sharpe(returns: pd.Series, periods_per_year: float) -> float:
    """Annualised Sharpe ratio of per-period returns (NaN with fewer than 2 or zero variance)."""
    returns = returns.dropna()
    if len(returns) < 2:
        return math.nan
    std = float(returns.std(ddof=1))
    if std == 0.0 or not math.isfinite(std):
        return math.nan
    return float(returns.mean()) / std * math.sqrt(periods_per_year)


def regime_split(
    equity: pd.DataFrame,
    truth: pd.DataFrame,
    affinities: dict[str, dict[str, float]],
    commissions: pd.DataFrame | None = None,
) -> dict[str, dict[str, Any]]:
    """Per rule: Sharpe, PnL and bars in and out of its regimes, and per true label; net of
    commissions, and gross (commissions added back) when ``commissions`` is given.

    Parameters
    ----------
    equity : pd.DataFrame
        ``equity.parquet`` of a run: UTC index of bar closes, ``equity`` and ``pnl:<id>``.
    truth : pd.DataFrame
        ``load_regime_truth``: ``ts_event`` (ns) and ``label`` per bar close.
    affinities : dict
        Rule → regime → affinity.
    commissions : pd.DataFrame, optional
        ``ts_event`` (UTC), ``rule``, ``commission`` per fill.
    """
    labels = pd.Series(
        truth["label"].to_numpy(),
        index=pd.to_datetime(truth["ts_event"].to_numpy(), unit="ns", utc=True),
    )
    labels = labels[~labels.index.duplicated()].reindex(equity.index)
    prior_equity = equity["equity"].shift(1).fillna(equity["equity"].iloc[0])
    by_rule: dict[str, list[str]] = {}
    for column in equity.columns:
        if column.startswith("pnl:"):
            by_rule.setdefault(rule_of(column.removeprefix("pnl:")), []).append(column)
    result: dict[str, dict[str, Any]] = {}
    for rule, columns in sorted(by_rule.items()):
        pnl = equity[columns].sum(axis=1)
        step = pnl.diff().fillna(pnl.iloc[0])
        returns = step / prior_equity
        paid = pd.Series(0.0, index=equity.index)
        if commissions is not None and not commissions.empty:
            mine = commissions[commissions["rule"] == rule]
            per_bar = mine.groupby("ts_event")["commission"].sum()
            paid = per_bar.reindex(equity.index, fill_value=0.0)
        gross_step = step + paid
        gross_returns = gross_step / prior_equity
        affinity = affinities.get(rule, {})
        inside = labels.map(lambda label, a=affinity: a.get(label, 0.0) > 0.0).fillna(False)
        entry: dict[str, Any] = {
            "in_regime_sharpe": sharpe(returns[inside], MINUTE_BARS_PER_YEAR),
            "out_of_regime_sharpe": sharpe(returns[~inside], MINUTE_BARS_PER_YEAR),
            "in_regime_pnl": float(step[inside].sum()),
            "out_of_regime_pnl": float(step[~inside].sum()),
            "in_regime_gross_sharpe": sharpe(gross_returns[inside], MINUTE_BARS_PER_YEAR),
            "out_of_regime_gross_sharpe": sharpe(gross_returns[~inside], MINUTE_BARS_PER_YEAR),
            "in_regime_gross_pnl": float(gross_step[inside].sum()),
            "out_of_regime_gross_pnl": float(gross_step[~inside].sum()),
            "in_regime_bars": int(inside.sum()),
            "out_of_regime_bars": int((~inside).sum()),
            "by_label": {},
        }
        for label in ("bull", "bear", "sideways"):
            mask = labels == label
            entry["by_label"][label] = {
                "sharpe": sharpe(returns[mask], MINUTE_BARS_PER_YEAR),
                "gross_sharpe": sharpe(gross_returns[mask], MINUTE_BARS_PER_YEAR),
                "pnl": float(step[mask].sum()),
                "gross_pnl": float(gross_step[mask].sum()),
                "bars": int(mask.sum()),
            }
        result[rule] = entry
    return result


def fill_commissions(fills_csv: Path) -> pd.DataFrame:
    """``ts_event`` (UTC), ``rule`` and ``commission`` of every fill of a run's ``fills.csv``."""
    from research.performance import money_to_float

    columns = ["ts_event", "rule", "commission"]
    if not fills_csv.is_file():
        return pd.DataFrame(columns=columns)
    fills = pd.read_csv(fills_csv)
    if fills.empty:
        return pd.DataFrame(columns=columns)
    return pd.DataFrame(
        {
            "ts_event": pd.to_datetime(fills["ts_event"], utc=True),
            "rule": fills["strategy_id"].astype(str).map(rule_of),
            "commission": fills["commission"].map(money_to_float),
        },
    )


def evaluate(name: str, catalog: Path, out: Path) -> dict[str, Any]:
    """Run one config and collect its figures."""
    from catalogs.synthetic import load_regime_truth
    from grodt.nodes.backtest import run_backtest
    from node_configs.loader import load_backtest_config
    from node_configs.loader import load_yaml_document

    path = CONFIG_DIR / f"{name}.yaml"
    spec = load_backtest_config(path)
    run_dir = out / name
    started = time.perf_counter()
    outcome = run_backtest(spec, catalog, run_dir, document=load_yaml_document(path), quiet=True)
    seconds = time.perf_counter() - started
    summary = outcome.summary
    commissions = fill_commissions(run_dir / "fills.csv")
    fees = commissions.groupby("rule")["commission"].sum().to_dict()
    per_rule: dict[str, dict[str, float]] = {}
    for strategy_id, stats in summary.get("strategies", {}).items():
        rule = rule_of(strategy_id)
        entry = per_rule.setdefault(rule, {"pnl": 0.0, "trades": 0, "instances": 0})
        entry["pnl"] += stats["pnl"]
        entry["trades"] += stats["trades"]
        entry["instances"] += 1
    for rule, entry in per_rule.items():
        entry["commission"] = fees.get(rule, 0.0)
        entry["gross_pnl"] = entry["pnl"] + entry["commission"]
    figures: dict[str, Any] = {
        "config": name,
        "run_dir": str(run_dir),
        "seconds": seconds,
        "bars_processed": summary.get("bars_processed"),
        "summary": {key: summary.get(key) for key in SUMMARY_KEYS},
        "rules": per_rule,
    }
    if any(str(d.bar_types).find(".XSYN-") >= 0 for d in spec.data):
        truth = load_regime_truth(catalog)
        equity = pd.read_parquet(run_dir / "equity.parquet")
        figures["regime_split"] = regime_split(equity, truth, affinities_of(spec), commissions)
    return figures


def _fmt(value: Any, kind: str = "ratio") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    if kind == "pct":
        return f"{value * 100:.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.0f}"
    return f"{value:.2f}"


def markdown(results: Sequence[dict[str, Any]]) -> str:
    """The report tables."""
    lines = [
        "### Summaries",
        "",
        "| config | total return | CAGR | Sharpe | max DD | win rate | PF | trades | exposure |"
        " time in mkt | wall s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        s = r["summary"]
        lines.append(
            f"| {r['config']} | {_fmt(s['total_return'], 'pct')} | {_fmt(s['cagr'], 'pct')} | "
            f"{_fmt(s['sharpe'])} | {_fmt(s['max_drawdown'], 'pct')} | "
            f"{_fmt(s['win_rate'], 'pct')} | {_fmt(s['profit_factor'])} | "
            f"{_fmt(s['trades'], 'int')} | {_fmt(s['exposure'], 'pct')} | "
            f"{_fmt(s['time_in_market'], 'pct')} | {r['seconds']:.0f} |",
        )
    lines += [
        "",
        "### Per rule (net PnL, commissions, gross PnL)",
        "",
        "| config | rule | instances | trades | net PnL | commissions | gross PnL |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        for rule, e in sorted(r["rules"].items()):
            lines.append(
                f"| {r['config']} | {rule} | {e['instances']} | {e['trades']:,} | "
                f"{_fmt(e['pnl'], 'money')} | {_fmt(e['commission'], 'money')} | "
                f"{_fmt(e['gross_pnl'], 'money')} |",
            )
    split = [r for r in results if "regime_split" in r]
    if split:
        lines += [
            "",
            "### Synthetic market by true regime (per-bar Sharpe, annualised sqrt(252*390))",
            "",
            "Net of commissions, and gross (commissions added back) in brackets.",
            "",
            "| config | rule | in-regime Sharpe | out-of-regime Sharpe | in-regime PnL |"
            " out-of-regime PnL | bull Sharpe | bear Sharpe | sideways Sharpe |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for r in split:
            for rule, e in r["regime_split"].items():
                by = e["by_label"]

                def pair(net: Any, gross: Any, kind: str = "ratio") -> str:
                    return f"{_fmt(net, kind)} ({_fmt(gross, kind)})"

                lines.append(
                    f"| {r['config']} | {rule} | "
                    f"{pair(e['in_regime_sharpe'], e['in_regime_gross_sharpe'])} | "
                    f"{pair(e['out_of_regime_sharpe'], e['out_of_regime_gross_sharpe'])} | "
                    f"{pair(e['in_regime_pnl'], e['in_regime_gross_pnl'], 'money')} | "
                    f"{pair(e['out_of_regime_pnl'], e['out_of_regime_gross_pnl'], 'money')} | "
                    + " | ".join(
                        pair(by[label]["sharpe"], by[label]["gross_sharpe"])
                        for label in ("bull", "bear", "sideways")
                    )
                    + " |",
                )
    return "\n".join(lines) + "\n"


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, np.generic):
        return _json_safe(value.item())
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", type=Path, default=None, help="default: GRODT_CATALOG")
    parser.add_argument("--out", type=Path, default=None, help="default: <runs>/evaluation")
    parser.add_argument("--only", nargs="*", default=None, help="config names to run")
    parser.add_argument("--regime", action="store_true", help="also the regime-actor configs")
    args = parser.parse_args(argv)

    from grodt.core.errors import GrodtError
    from grodt.core.settings import get_settings

    settings = get_settings()
    catalog = args.catalog or settings.catalog
    out = args.out or settings.runs_dir / "evaluation"
    names = list(args.only or (BASE_CONFIGS + (REGIME_CONFIGS if args.regime else ())))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        try:
            results.append(evaluate(name, catalog, out))
        except GrodtError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    report = markdown(results)
    (out / "evaluation.json").write_text(json.dumps(_json_safe(results), indent=2) + "\n")
    (out / "evaluation.md").write_text(report)
    print(report)
    print(f"Written: {out / 'evaluation.md'}, {out / 'evaluation.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
