"""Audit a finished run against its risk limits, from the reports alone.

Rebuilds the positions of every instrument at every bar close from ``fills.csv``, values them at
the bar closes from the catalog, takes equity from ``equity.parquet``, and checks the run's
``risk:`` limits (max weight, HRP band, gross, net, group caps) at every bar.

Each breach is classified by what caused it:

``order``
    Fills at that bar increased the breaching measure, and the filled order was approved by the
    gate at that same bar: the gate let through something it should not have. Expected: none.
``reducing``
    The fill that made it worse came from a reduce-only order, or one the gate approved as
    risk-reducing. Those always pass (a gate must not trap a position); with several strategies
    holding opposite positions in one instrument, one strategy's exit raises the book's exposure.
``resting``
    As above, but the order was approved at an earlier bar (a resting limit or stop entry) and
    prices moved between approval and fill.
``ungated``
    A fill increased the measure and no gate verdict exists for its order.
``drift``
    No fill made it worse: prices (or equity) moved. The gate limits orders; it does not trade
    to pull a drifting book back under a cap. Bars of one timestamp arrive one instrument at a
    time, so the gate decides on an instrument before the others of that timestamp have moved:
    a breach that disappears when the other instruments are valued at their previous close
    (without a fill there, for portfolio-wide limits) counts as drift too.

The HRP band is checked at bars where a fill increased the instrument's exposure, against the
target recorded in the gate's verdict for that order (``risk_verdicts.csv``).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from grodt.core.errors import ConfigError
from risk_engine.config import RiskConfig
from risk_engine.config import parse_risk_config

RELATIVE_TOLERANCE = 1e-6
"""Breaches smaller than this fraction of the cap are rounding (fees, price precision)."""


@dataclass
class AuditReport:
    """Breaches of one run.

    Attributes
    ----------
    breaches : pd.DataFrame
        One row per (bar, limit, scope) over its cap: ``ts``, ``limit``, ``scope`` (instrument,
        group or ``portfolio``), ``value`` and ``cap`` (fractions of equity), ``cause``.
    bars : int
        Bar closes audited.
    limits : dict[str, Any]
        The limits audited.
    """

    breaches: pd.DataFrame
    bars: int
    limits: dict[str, Any]

    def summary(self) -> dict[str, Any]:
        """Counts by limit and cause, the largest excess, and the order-caused total."""
        frame = self.breaches
        by_limit: dict[str, dict[str, int]] = {}
        for (limit, cause), count in frame.groupby(["limit", "cause"]).size().items():
            by_limit.setdefault(str(limit), {})[str(cause)] = int(count)
        worst = (
            frame.assign(excess=frame["value"] - frame["cap"]).groupby("limit")["excess"].max()
            if not frame.empty
            else pd.Series(dtype=float)
        )
        return {
            "bars": self.bars,
            "order_caused_breaches": int((frame["cause"] == "order").sum()) if len(frame) else 0,
            "breaches_by_limit": by_limit,
            "max_excess": {str(k): float(v) for k, v in worst.items()},
            "limits": self.limits,
        }


def _positions_at(fills: pd.DataFrame, index: pd.DatetimeIndex, instrument: str) -> np.ndarray:
    group = fills[fills["instrument_id"] == instrument]
    if group.empty:
        return np.zeros(len(index))
    fill_ns = group["ts_event"].to_numpy(dtype="datetime64[ns]").astype(np.int64)
    count = np.searchsorted(fill_ns, index.asi8, side="right")
    return np.concatenate(([0.0], np.cumsum(group["signed_qty"].to_numpy(dtype=float))))[count]


def audit_frames(
    config: RiskConfig,
    fills: pd.DataFrame,
    closes: pd.DataFrame,
    equity: pd.Series,
    verdicts: pd.DataFrame | None = None,
    multipliers: dict[str, float] | None = None,
    reduce_only: set[str] | None = None,
) -> AuditReport:
    """Audit positions rebuilt from ``fills`` against ``config``'s limits at every bar.

    Parameters
    ----------
    config : RiskConfig
        The run's risk section.
    fills : pd.DataFrame
        :func:`research.performance.normalise_fills` output.
    closes : pd.DataFrame
        Wide closes (UTC index of bar closes, one column per instrument id), forward-filled.
    equity : pd.Series
        Mark-to-market equity at the same index.
    verdicts : pd.DataFrame, optional
        ``risk_verdicts.csv`` (for causes and HRP targets).
    reduce_only : set[str], optional
        Client order ids of reduce-only orders (from ``orders.csv``).
    multipliers : dict[str, float], optional
        Contract multiplier per instrument (default 1).
    """
    multipliers = multipliers or {}
    index = closes.index
    instruments = list(closes.columns)
    fills = fills.sort_values("ts_event", kind="stable")
    equity = equity.reindex(index).ffill().to_numpy(dtype=float)
    filled_at = np.zeros((len(index), len(instruments)), dtype=bool)
    if not fills.empty:
        fill_bars = np.searchsorted(
            index.asi8,
            fills["ts_event"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
            side="left",
        )
        columns = {instrument: k for k, instrument in enumerate(instruments)}
        for bar, instrument in zip(fill_bars, fills["instrument_id"], strict=True):
            if bar < len(index) and instrument in columns:
                filled_at[bar, columns[instrument]] = True
    value = {}
    value_before = {}
    value_stale = {}  # instruments without a fill at the bar valued at the previous close
    equity_stale = equity.copy()
    equity_all_stale = equity.copy()  # every instrument at the previous close
    moved = {}  # P&L of each instrument's position over the bar
    for k, instrument in enumerate(instruments):
        units = _positions_at(fills, index, instrument)
        price = closes[instrument].to_numpy(dtype=float) * multipliers.get(instrument, 1.0)
        price = np.nan_to_num(price)
        previous_price = np.concatenate((price[:1], price[:-1]))
        value[instrument] = units * price
        previous = np.concatenate(([0.0], units[:-1]))
        value_before[instrument] = previous * price  # positions before this bar's fills
        stale = ~filled_at[:, k]
        value_stale[instrument] = np.where(stale, units * previous_price, value[instrument])
        moved[instrument] = units * (price - previous_price)
        equity_stale -= np.where(stale, moved[instrument], 0.0)
        equity_all_stale -= moved[instrument]

    reducing = set(reduce_only or ())
    verdict_at: dict[str, int] = {}
    target_of: dict[str, float] = {}
    if verdicts is not None and not verdicts.empty:
        has_ids = "order_ids" in verdicts.columns
        for row in verdicts.itertuples(index=False):
            ids = [str(row.client_order_id)]
            if has_ids and isinstance(row.order_ids, str) and row.order_ids:
                ids = row.order_ids.split("|")
            for order_id in ids:
                verdict_at.setdefault(order_id, int(row.ts))
            if str(row.code) == "reducing":
                reducing.add(str(row.client_order_id))
            if "hrp_target" in verdicts.columns and pd.notna(row.hrp_target):
                target_of[str(row.client_order_id)] = float(row.hrp_target)
    fills_by_bar: dict[int, list[Any]] = {}
    if not fills.empty:
        bar_of_fill = np.searchsorted(
            index.asi8,
            fills["ts_event"].to_numpy(dtype="datetime64[ns]").astype(np.int64),
            side="left",
        )
        order_ids = (
            fills["client_order_id"].astype(str).tolist()
            if "client_order_id" in fills.columns
            else [""] * len(fills)
        )
        rows_iter = zip(bar_of_fill, fills.itertuples(index=False), order_ids, strict=True)
        for bar, row, order_id in rows_iter:
            fills_by_bar.setdefault(int(bar), []).append((row, order_id))

    rows: list[tuple[Any, ...]] = []

    def _alone_at_close(instrument: str) -> np.ndarray:
        # An order on `instrument` is decided when its bar arrives: the other instruments of that
        # timestamp may not have moved yet (bars arrive one instrument at a time).
        return np.abs(value[instrument]) / (equity_all_stale + moved[instrument])

    def cause(
        bar: int,
        after: float,
        before: float,
        stale: float,
        cap: float,
        instruments_hit: list[str],
    ) -> str:
        if after <= before * (1 + RELATIVE_TOLERANCE) + 1e-9:
            return "drift"
        if stale <= cap * (1 + RELATIVE_TOLERANCE) + 1e-12:
            return "drift"  # within the cap at the prices the gate could have seen
        ts = int(index.asi8[bar])
        causes = []
        for row, order_id in fills_by_bar.get(bar, []):
            if row.instrument_id not in instruments_hit:
                continue
            approved = verdict_at.get(order_id)
            if order_id in reducing:
                causes.append("reducing")  # reduce-only, or approved as closing: always passes
            elif approved is None:
                causes.append("ungated")
            else:
                causes.append("order" if approved == ts else "resting")
        for label in ("order", "ungated", "resting", "reducing"):
            if label in causes:
                return label
        return "drift"

    def check(
        limit: str,
        scope: str,
        measure: Any,
        cap: float,
        hit: list[str],
        stale_measure: Any = None,
    ) -> None:
        """``measure(values, equity)`` → fraction of equity per bar; ``stale_measure()`` → the
        same at the prices the gate may have decided at (default: instruments without a fill at
        the bar at their previous close)."""
        series = measure(value, equity)
        before = measure(value_before, equity)
        stale = stale_measure() if stale_measure is not None else measure(value_stale, equity_stale)
        over = np.flatnonzero(series > cap * (1 + RELATIVE_TOLERANCE) + 1e-12)
        for bar in over:
            rows.append(
                (
                    index[bar],
                    limit,
                    scope,
                    float(series[bar]),
                    cap,
                    cause(bar, series[bar], before[bar], stale[bar], cap, hit),
                ),
            )

    with np.errstate(invalid="ignore", divide="ignore"):
        limits = config.limits
        if limits.max_weight is not None:
            for instrument in instruments:
                check(
                    "max_weight",
                    instrument,
                    lambda v, e, i=instrument: np.abs(v[i]) / e,
                    limits.max_weight,
                    [instrument],
                    lambda i=instrument: _alone_at_close(i),
                )
        if limits.gross_exposure is not None:
            check(
                "gross_exposure",
                "portfolio",
                lambda v, e: sum(np.abs(x) for x in v.values()) / e,
                limits.gross_exposure,
                instruments,
            )
        if limits.net_exposure is not None:
            check(
                "net_exposure",
                "portfolio",
                lambda v, e: np.abs(sum(v.values())) / e,
                limits.net_exposure,
                instruments,
            )
        for name, group in limits.groups.items():
            members = [m for m in group.members if m in value]
            if not members:
                continue
            check(
                f"group:{name}",
                name,
                lambda v, e, members=members: sum(np.abs(v[m]) for m in members) / e,
                group.max_weight,
                members,
            )
        tolerance = config.hrp.tolerance if config.hrp is not None else None
        if tolerance is not None and target_of:
            for bar, bar_fills in fills_by_bar.items():
                if bar >= len(index):
                    continue
                for row, order_id in bar_fills:
                    target = target_of.get(order_id)
                    instrument = row.instrument_id
                    if target is None or instrument not in value:
                        continue
                    cap = target * (1 + tolerance)
                    after = abs(value[instrument][bar]) / equity[bar]
                    before = abs(value_before[instrument][bar]) / equity[bar]
                    stale = abs(value[instrument][bar]) / (
                        equity_all_stale[bar] + moved[instrument][bar]
                    )
                    if after > cap * (1 + RELATIVE_TOLERANCE) + 1e-12 and after > before:
                        rows.append(
                            (
                                index[bar],
                                "hrp_band",
                                instrument,
                                after,
                                cap,
                                cause(bar, after, before, stale, cap, [instrument]),
                            ),
                        )
    breaches = pd.DataFrame(rows, columns=["ts", "limit", "scope", "value", "cap", "cause"])
    breaches = breaches.drop_duplicates(subset=["ts", "limit", "scope"])
    return AuditReport(breaches=breaches, bars=len(index), limits=limits.model_dump(mode="json"))


def read_fills(path: Path) -> pd.DataFrame:
    """``fills.csv`` → ts_event (UTC), instrument_id, client_order_id, signed_qty (+buy)."""
    raw = pd.read_csv(path, dtype=str)
    columns = ["ts_event", "instrument_id", "client_order_id", "signed_qty"]
    if raw.empty:
        return pd.DataFrame(columns=columns)
    side = np.where(raw["order_side"].astype(str) == "BUY", 1.0, -1.0)
    fills = pd.DataFrame(
        {
            "ts_event": pd.to_datetime(raw["ts_event"], utc=True),
            "instrument_id": raw["instrument_id"].astype(str),
            "client_order_id": raw["client_order_id"].astype(str),
            "signed_qty": side * raw["last_qty"].astype(float).to_numpy(),
        },
    )
    return fills.sort_values("ts_event", kind="stable").reset_index(drop=True)


def audit_run(
    run_dir: str | Path,
    catalog: str | Path,
    config: RiskConfig | None = None,
) -> AuditReport:
    """Audit a backtest (or paper) run directory written by ``grodt backtest``.

    ``config`` overrides the run's own ``risk:`` section, e.g. to see how a run made without
    the gate would have fared against a set of limits.
    """
    from nautilus_trader.persistence.catalog import ParquetDataCatalog

    from catalogs.reader import read_closes

    run_dir = Path(run_dir)
    config_path = run_dir / "config.yaml"
    if not config_path.is_file():
        raise ConfigError(f"{run_dir}: no config.yaml (not a grodt run directory)")
    document = yaml.safe_load(config_path.read_text()) or {}
    if config is None:
        section = document.get("risk")
        if section is None:
            raise ConfigError(
                f"{config_path}: the run has no risk section; give the limits to audit against",
            )
        config = parse_risk_config(section)
    fills = read_fills(run_dir / "fills.csv")
    equity = pd.read_parquet(run_dir / "equity.parquet")["equity"]
    bar_types = [b for data in document.get("data", []) for b in (data.get("bar_types") or [])]
    closes = read_closes(
        Path(catalog), bar_types, int(equity.index[0].value), int(equity.index[-1].value)
    )
    closes = closes.reindex(equity.index).ffill()
    multipliers = {
        str(i.id): float(i.multiplier) for i in ParquetDataCatalog(str(catalog)).instruments()
    }
    verdicts_path = run_dir / "risk_verdicts.csv"
    verdicts = pd.read_csv(verdicts_path, low_memory=False) if verdicts_path.is_file() else None
    reduce_only: set[str] = set()
    orders_path = run_dir / "orders.csv"
    if orders_path.is_file():
        orders = pd.read_csv(orders_path, dtype=str)
        if "is_reduce_only" in orders.columns:
            flags = orders["is_reduce_only"].str.lower() == "true"
            reduce_only = set(orders.loc[flags, "client_order_id"])
    return audit_frames(config, fills, closes, equity, verdicts, multipliers, reduce_only)
