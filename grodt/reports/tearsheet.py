"""Self-contained HTML tearsheet of a backtest run (plotly.js inlined, opens offline).

``render_tearsheet(run_dir)`` reads what a run directory holds — ``summary.json``,
``equity.parquet`` (equity, exposures and ``pnl:<strategy_id>`` at every bar close),
``positions.csv``, ``config.yaml`` and decision-forensics Parquet under ``forensics/`` — and
writes ``tearsheet.html`` with plotly.js inlined (no network needed to open it):

- headline statistics and a per-strategy table (``research.metrics`` conventions);
- equity and drawdown (and the benchmark's buy-and-hold when the run has one);
- monthly returns heat map (rows: years with their annual return; columns: months);
- rolling Sharpe ratio (annualised, window in trading days);
- trade distribution (realised PnL per closed position, per strategy);
- contribution per strategy (cumulative PnL and final contribution to return);
- when forensics records exist: regime probabilities, allocation weights and risk verdicts
  (denials and resizes) over time;
- on request: a policy diff, where a new meta-controller config would have allocated
  differently on the run's logged inputs, and where new rule-strategy configs would have decided
  differently (:mod:`grodt.reports.policy_diff`).

Sections whose data is absent are left out with a note, never drawn empty. Series longer than
``max_points`` are drawn at end-of-day resolution (drawdown at the day's low), so a run over a
million one-minute bars still gives a page of a few MB that opens fast.
"""

import html
import json
import logging
import math
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from actors.forensics.spill import read_spill_dir
from grodt.core.errors import GrodtError
from grodt.reports.figures import Figure
from grodt.reports.figures import allocation_figure
from grodt.reports.figures import contribution_figure
from grodt.reports.figures import decision_diff_figure
from grodt.reports.figures import equity_figure
from grodt.reports.figures import monthly_figure
from grodt.reports.figures import plotly_js
from grodt.reports.figures import policy_diff_figure
from grodt.reports.figures import regime_figure
from grodt.reports.figures import risk_figure
from grodt.reports.figures import rolling_sharpe_figure
from grodt.reports.figures import to_json
from grodt.reports.figures import trades_figure
from grodt.reports.policy_diff import decision_diff
from grodt.reports.policy_diff import decision_diff_summary_html
from grodt.reports.policy_diff import policy_diff
from grodt.reports.policy_diff import policy_diff_summary_html
from node_configs.secrets import redact_yaml_text
from research.benchmark import BENCHMARK_COLUMN
from research.performance import daily_returns
from research.performance import money_to_float

logger = logging.getLogger("grodt.tracking")

RECORD_TYPES = ("regime_update", "allocation", "risk_verdict")
"""The forensics record types the tearsheet draws (the only ones it reads)."""
_HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Total return", "pct"),
    ("cagr", "CAGR", "pct"),
    ("sharpe", "Sharpe", "ratio"),
    ("sortino", "Sortino", "ratio"),
    ("max_drawdown", "Max drawdown", "pct"),
    ("calmar", "Calmar", "ratio"),
    ("annual_volatility", "Annual volatility", "pct"),
    ("win_rate", "Win rate", "pct"),
    ("profit_factor", "Profit factor", "ratio"),
    ("trades", "Trades", "int"),
    ("turnover", "Turnover / year", "ratio"),
    ("exposure", "Mean gross exposure", "pct"),
    ("final_equity", "Final equity", "money"),
)

_BENCHMARK_HEADLINE: tuple[tuple[str, str, str], ...] = (
    ("total_return", "Benchmark return", "pct"),
    ("sharpe", "Benchmark Sharpe", "ratio"),
    ("max_drawdown", "Benchmark max drawdown", "pct"),
    ("alpha", "Alpha (annual)", "pct"),
    ("beta", "Beta", "ratio"),
    ("information_ratio", "Information ratio", "ratio"),
    ("tracking_error", "Tracking error (annual)", "pct"),
)


@dataclass(frozen=True)
class Section:
    """One block of the page: a title, an optional figure (or a note why there is none), and
    ``detail_html`` (built escaped) shown above the figure."""

    key: str
    title: str
    figure: Figure | None = None
    note: str = ""
    height: int = 420
    detail_html: str = ""


@dataclass
class RunData:
    """What the tearsheet reads from a run directory.

    Attributes
    ----------
    summary : dict
        ``summary.json``.
    equity : pd.DataFrame
        ``equity.parquet``: UTC index of bar closes; ``equity``, ``gross_exposure``,
        ``net_exposure`` and ``pnl:<strategy_id>`` columns, account currency.
    positions : pd.DataFrame
        ``positions.csv`` (may be empty).
    forensics : dict[str, pd.DataFrame]
        Records by type (``regime_update``, ``allocation``, ``risk_verdict``, ``decision``).
    config_text : str
        ``config.yaml``, secret values redacted (also in run directories written before the
        node redacted them itself).
    """

    summary: dict[str, Any]
    equity: pd.DataFrame
    positions: pd.DataFrame
    forensics: dict[str, pd.DataFrame]
    config_text: str = ""


# -- reading -------------------------------------------------------------------------------------


_BATCH_ROWS = 16_384
"""Rows read at a time from a forensics Parquet file without a ``record_type`` column."""

DRAWN_FIELDS: dict[str, tuple[str, ...]] = {
    "regime_update": (
        "ts_event",
        "instrument_id",
        "probabilities",
        "p_bull",
        "p_bear",
        "p_sideways",
    ),
    "allocation": ("ts_event", "weights"),
    "risk_verdict": ("ts_event", "verdict", "reason", "strategy_id"),
}
"""The fields each drawn record type's charts read (:func:`regime_series`,
:func:`allocation_series`, :func:`risk_verdicts`): all a tearsheet keeps of a record."""


def _payload_batches(
    root: Path, record_types: tuple[str, ...]
) -> Iterator[tuple[list[str], list[int], list[str], list[str | bytes]]]:
    """``(sessions, seqs, record_types, payloads)`` of the wanted records in every forensics
    Parquet file under ``root`` (the bridge's layout, ``<topic>/part-*.parquet``), a row group at
    a time, so that a long run's payloads are never all in memory.

    Only the rows of ``record_types`` are kept: the filter runs on the ``record_type`` column
    (or, in files without it, on the payload's leading ``{"record_type":"...`` that
    :func:`grodt.core.records.record_to_json` writes)."""
    wanted = pa.array(record_types)
    for path in sorted(root.rglob("*.parquet")):
        if "spill" in path.relative_to(root).parts:
            continue
        try:
            parquet = pq.ParquetFile(path)
            names = parquet.schema_arrow.names
            if "payload" not in names:
                continue
            if "record_type" in names:
                batches = _typed_batches(parquet, wanted)
            else:
                batches = _untyped_batches(parquet, wanted)
            for table in batches:
                if table.num_rows:
                    yield (
                        table["session"].to_pylist(),
                        table["seq"].to_pylist(),
                        table["record_type"].to_pylist(),
                        table["payload"].to_pylist(),
                    )
        except (OSError, ValueError, pa.ArrowException) as e:
            raise GrodtError(f"{path}: unreadable forensics Parquet: {e}") from None


def _typed_batches(parquet: pq.ParquetFile, wanted: pa.Array) -> Iterator[pa.Table]:
    """Per row group, the wanted rows; a row group's payloads are read only when its
    ``record_type`` column holds a wanted type (order and position events never are)."""
    columns = ["session", "seq", "record_type", "payload"]
    for group in range(parquet.num_row_groups):
        mask = pc.is_in(
            parquet.read_row_group(group, columns=["record_type"])["record_type"], value_set=wanted
        )
        if pc.any(mask).as_py():
            yield parquet.read_row_group(group, columns=columns).filter(mask)


def _untyped_batches(parquet: pq.ParquetFile, wanted: pa.Array) -> Iterator[pa.Table]:
    """Files written before the ``record_type`` column: the type is read off each payload's
    leading ``{"record_type":"...`` (:func:`grodt.core.records.record_to_json`)."""
    for batch in parquet.iter_batches(
        batch_size=_BATCH_ROWS, columns=["session", "seq", "payload"]
    ):
        table = pa.Table.from_batches([batch])
        types = pc.extract_regex(table["payload"], r'^\{"record_type":"(?P<t>[a-z_]+)"')
        table = table.append_column("record_type", pc.struct_field(types, [0]))
        yield table.filter(pc.is_in(table["record_type"], value_set=wanted))


def load_forensics(
    run_dir: Path,
    record_types: tuple[str, ...] = RECORD_TYPES,
    fields: Mapping[str, tuple[str, ...]] | None = None,
) -> dict[str, pd.DataFrame]:
    """Forensics records of a run by type (default the ones the tearsheet draws:
    ``regime_update``, ``allocation``, ``risk_verdict``), each a frame of the records' JSON
    fields, or of only ``fields[record_type]`` when given (absent fields are left out). No
    ``forensics/`` → ``{}``.

    Like :func:`grodt.forensics.reader.read_run` (deduplicated on ``(session, seq)``, records
    still in the spill directory included, stream order), but only the wanted record types are
    read and decoded, as JSON without model validation: the order and position events (most of
    a run's records) are never parsed. Each payload is decoded as it is read and only its kept
    fields stay, so memory grows with the kept fields, not with the payloads.
    """
    root = Path(run_dir) / "forensics"
    if not root.is_dir():
        return {}
    found: dict[tuple[str, int], tuple[str, dict[str, Any]]] = {}

    def decode(identity: tuple[str, int], record_type: str, payload: str | bytes) -> tuple:
        try:
            record = json.loads(payload)
        except ValueError as e:
            raise GrodtError(
                f"{root}: record {identity[0]}:{identity[1]} is not JSON: {e}",
            ) from None
        kept = fields.get(record_type) if fields is not None else None
        if kept is not None:
            record = {k: record[k] for k in kept if k in record}
        return record_type, record

    for sessions, seqs, types, payloads in _payload_batches(root, record_types):
        for identity, record_type, payload in zip(
            zip(sessions, seqs, strict=True), types, payloads, strict=True
        ):
            found[identity] = decode(identity, record_type, payload)
    for sub in ("outbox", "overflow"):
        for envelope in read_spill_dir(root / "spill" / sub):
            identity = (envelope.session, envelope.seq)
            if envelope.record_type in record_types and identity not in found:
                found[identity] = decode(identity, envelope.record_type, envelope.value)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for identity in sorted(found):
        record_type, record = found[identity]
        by_type.setdefault(record_type, []).append(record)
    return {k: pd.DataFrame(v) for k, v in by_type.items()}


def load_run(run_dir: Path) -> RunData:
    """Read a run directory (errors name the missing file)."""
    run_dir = Path(run_dir)
    summary_path = run_dir / "summary.json"
    equity_path = run_dir / "equity.parquet"
    for path in (summary_path, equity_path):
        if not path.is_file():
            raise GrodtError(f"{path}: missing; is {run_dir} a finished backtest run directory?")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    equity = pd.read_parquet(equity_path)
    if "equity" not in equity.columns:
        raise GrodtError(f"{equity_path}: no 'equity' column")
    positions_path = run_dir / "positions.csv"
    positions = pd.read_csv(positions_path) if positions_path.is_file() else pd.DataFrame()
    config_path = run_dir / "config.yaml"
    try:
        forensics = load_forensics(run_dir, fields=DRAWN_FIELDS)
    except GrodtError as e:
        logger.warning("tearsheet without forensics charts: %s", e)
        forensics = {}
    return RunData(
        summary=summary,
        equity=equity,
        positions=positions,
        forensics=forensics,
        config_text=(
            redact_yaml_text(config_path.read_text(encoding="utf-8"))
            if config_path.is_file()
            else ""
        ),
    )


# -- series helpers ------------------------------------------------------------------------------


def _display_frame(equity: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """Equity (last) and drawdown (low) at bar resolution, or per day for long series."""
    drawdown = equity["equity"] / equity["equity"].cummax() - 1.0
    frame = equity.assign(drawdown=drawdown)
    if len(frame) <= max_points:
        return frame
    days = frame.index.normalize()
    daily = frame.groupby(days).last()
    daily["drawdown"] = frame["drawdown"].groupby(days).min()
    return daily


def _returns(data: RunData) -> pd.Series:
    start = float(data.summary.get("starting_equity") or data.equity["equity"].iloc[0])
    return daily_returns(data.equity["equity"], start)


def monthly_returns(returns: pd.Series) -> pd.DataFrame:
    """Compounded monthly returns: rows years, columns 1..12 (NaN where no data)."""
    if returns.empty:
        return pd.DataFrame(columns=range(1, 13))
    index = returns.index.tz_convert("UTC") if returns.index.tz is not None else returns.index
    grouped = (1.0 + returns).groupby([index.year, index.month]).prod() - 1.0
    table = grouped.unstack(level=1).reindex(columns=range(1, 13))
    table.index.name = "year"
    return table


def rolling_sharpe(returns: pd.Series, window: int, periods_per_year: int) -> pd.Series:
    """Annualised rolling Sharpe (ddof=1, risk-free 0), NaN until ``window`` returns exist."""
    mean = returns.rolling(window).mean()
    std = returns.rolling(window).std(ddof=1)
    return (mean / std.replace(0.0, np.nan)) * math.sqrt(periods_per_year)


def closed_trades(positions: pd.DataFrame) -> pd.DataFrame:
    """Closed positions: ``strategy_id``, ``realized_pnl`` (float), ``ts_closed``."""
    if positions.empty or "ts_closed" not in positions.columns:
        return pd.DataFrame(columns=["strategy_id", "realized_pnl", "ts_closed"])
    closed = positions[positions["ts_closed"].notna()]
    return pd.DataFrame(
        {
            "strategy_id": closed["strategy_id"].astype(str),
            "realized_pnl": closed["realized_pnl"].map(money_to_float),
            "ts_closed": pd.to_datetime(closed["ts_closed"], utc=True, format="ISO8601"),
        },
    )


def _mapping(value: Any) -> dict[str, float]:
    """A dict-valued record field that Parquet may hold as a struct, a JSON text, or pairs."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    if isinstance(value, np.ndarray | list):
        # pyarrow map columns come back as [(key, value), ...]
        try:
            return {str(k): float(v) for k, v in value}
        except (TypeError, ValueError):
            return {}
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items() if v is not None}
    return {}


def _wide(frame: pd.DataFrame, field: str) -> pd.DataFrame:
    """Expand a mapping field (``probabilities``, ``weights``) into columns; flat columns named
    ``<field>.<key>`` or ``<field>_<key>`` are accepted as well."""
    if field in frame.columns:
        rows = frame[field].map(_mapping)
        return pd.DataFrame(list(rows), index=frame.index)
    prefixed = [c for c in frame.columns if c.startswith((f"{field}.", f"{field}_"))]
    renamed = {c: c[len(field) + 1 :] for c in prefixed}
    return frame[prefixed].rename(columns=renamed).astype(float)


def _timestamps(frame: pd.DataFrame) -> pd.DatetimeIndex:
    column = frame["ts_event"]
    if pd.api.types.is_datetime64_any_dtype(column):
        return pd.DatetimeIndex(pd.to_datetime(column, utc=True))
    return pd.DatetimeIndex(pd.to_datetime(column.astype("int64"), unit="ns", utc=True))


def regime_series(
    records: pd.DataFrame,
    max_points: int | None = None,
) -> dict[str, pd.DataFrame]:
    """Regime probabilities per instrument: UTC index, one column per label; at most
    ``max_points`` rows each (evenly spaced records, the last one kept) when given."""
    if records is None or records.empty or "ts_event" not in records.columns:
        return {}
    probs = _wide(records, "probabilities")
    if probs.empty:
        labels = [c for c in ("p_bull", "p_bear", "p_sideways") if c in records.columns]
        probs = records[labels].rename(columns=lambda c: c.removeprefix("p_")).astype(float)
    if probs.empty:
        return {}
    probs.index = _timestamps(records)
    instruments = (
        records["instrument_id"].astype(str).to_numpy()
        if "instrument_id" in records.columns
        else np.full(len(records), "all")
    )
    out = {}
    for instrument in sorted(set(instruments)):
        part = probs[instruments == instrument].sort_index()
        part = part[~part.index.duplicated(keep="last")]
        if max_points is not None and len(part) > max_points:
            part = part.iloc[np.linspace(0, len(part) - 1, max_points).round().astype(int)]
        out[instrument] = part
    return out


def allocation_series(records: pd.DataFrame) -> pd.DataFrame:
    """Allocation weights: UTC index, one column per strategy."""
    if records is None or records.empty or "ts_event" not in records.columns:
        return pd.DataFrame()
    weights = _wide(records, "weights")
    if weights.empty:
        return weights
    weights.index = _timestamps(records)
    weights = weights.sort_index()
    return weights[~weights.index.duplicated(keep="last")].fillna(0.0)


def risk_verdicts(records: pd.DataFrame) -> pd.DataFrame:
    """Risk verdicts: ``ts`` (UTC), ``verdict``, ``reason``, ``strategy_id``."""
    if records is None or records.empty or "verdict" not in records.columns:
        return pd.DataFrame(columns=["ts", "verdict", "reason", "strategy_id"])
    return pd.DataFrame(
        {
            "ts": _timestamps(records),
            "verdict": records["verdict"].astype(str),
            "reason": records.get("reason", pd.Series("", index=records.index)).astype(str),
            "strategy_id": records.get("strategy_id", pd.Series("", index=records.index)).astype(
                str,
            ),
        },
    )


# -- sections ------------------------------------------------------------------------------------


def _equity_chart(frame: pd.DataFrame, starting: float, summary: dict[str, Any]) -> Figure:
    """Equity and drawdown, with the benchmark's buy-and-hold as a second line when the run
    has one."""
    if BENCHMARK_COLUMN not in frame.columns:
        return equity_figure(frame, starting)
    bar_type = (summary.get("benchmark") or {}).get("bar_type", "benchmark")
    return equity_figure(
        frame,
        starting,
        benchmark=frame[BENCHMARK_COLUMN],
        benchmark_name=f"{bar_type} (buy and hold)",
    )


def build_sections(
    data: RunData,
    rolling_window: int | None = None,
    max_points: int = 5000,
) -> list[Section]:
    """Every section of the page, in order; absent data gives a note instead of a figure."""
    summary = data.summary
    equity = data.equity.sort_index()
    starting = float(summary.get("starting_equity") or equity["equity"].iloc[0])
    ppy = int(summary.get("periods_per_year") or 252)
    sections = [
        Section(
            "equity",
            "Equity and drawdown",
            _equity_chart(_display_frame(equity, max_points), starting, summary),
            height=520,
        ),
    ]
    returns = _returns(data).dropna()
    if len(returns) >= 2:
        table = monthly_returns(returns)
        sections.append(
            Section("monthly", "Monthly returns (%)", monthly_figure(table, returns)),
        )
    else:
        sections.append(Section("monthly", "Monthly returns (%)", note="Fewer than two days."))
    window = rolling_window or (126 if len(returns) >= 252 else max(len(returns) // 4, 5))
    if len(returns) > window:
        sharpe = rolling_sharpe(returns, window, ppy).dropna()
        overall = summary.get("sharpe")
        sections.append(
            Section(
                "rolling_sharpe",
                f"Rolling Sharpe ({window} trading days)",
                rolling_sharpe_figure(sharpe, window, overall if overall is not None else None),
            ),
        )
    else:
        sections.append(
            Section(
                "rolling_sharpe",
                "Rolling Sharpe",
                note=f"{len(returns)} daily returns: too few for a rolling window.",
            ),
        )
    trades = closed_trades(data.positions)
    if len(trades):
        sections.append(Section("trades", "Trade distribution", trades_figure(trades)))
    else:
        sections.append(Section("trades", "Trade distribution", note="No closed positions."))
    if any(c.startswith("pnl:") for c in equity.columns):
        sections.append(
            Section(
                "contribution",
                "Contribution per strategy",
                contribution_figure(equity, summary.get("strategies") or {}, max_points),
            ),
        )
    else:
        sections.append(
            Section("contribution", "Contribution per strategy", note="No strategy traded."),
        )
    regimes = regime_series(data.forensics.get("regime_update"), max_points)
    if regimes:
        sections.append(
            Section("regime", "Regime probabilities", regime_figure(regimes)),
        )
    weights = allocation_series(data.forensics.get("allocation"))
    if not weights.empty:
        sections.append(Section("allocation", "Allocation weights", allocation_figure(weights)))
    verdicts = risk_verdicts(data.forensics.get("risk_verdict"))
    if len(verdicts):
        sections.append(
            Section("risk", "Risk verdicts: denials and resizes", risk_figure(verdicts)),
        )
    return sections


def policy_diff_section(
    run_dir: Path, overrides: Mapping[str, Any], component_id: str | None = None
) -> Section:
    """The policy diff of ``overrides`` on the run's logged allocation decisions."""
    changes, summary = policy_diff(run_dir, overrides, component_id)
    return Section(
        "policy_diff",
        "Policy diff: the new config on the logged decisions",
        policy_diff_figure(changes) if summary["changed"] else None,
        note="The new config allocates as logged at every decision.",
        height=460,
        detail_html=policy_diff_summary_html(summary, overrides),
    )


def decision_diff_section(run_dir: Path, overrides: Mapping[int, Mapping[str, Any]]) -> Section:
    """The rule strategies' decision diff of ``overrides`` on the run's logged decisions."""
    changes, summary = decision_diff(run_dir, overrides)
    return Section(
        "decision_diff",
        "Strategy diff: the new configs on the logged decisions",
        decision_diff_figure(changes) if summary["changed"] else None,
        note="The new configs decide as logged at every decision.",
        height=360,
        detail_html=decision_diff_summary_html(summary, overrides),
    )


# -- page ----------------------------------------------------------------------------------------


def _fmt(value: Any, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞" if value > 0 else "-∞"
    if kind == "pct":
        return f"{value * 100:,.2f}%"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "money":
        return f"{value:,.2f}"
    return f"{value:,.3f}"


def _tables(summary: dict[str, Any]) -> str:
    cells = "".join(
        f"<div class='stat'><div class='label'>{html.escape(label)}</div>"
        f"<div class='value'>{_fmt(summary.get(key), kind)}</div></div>"
        for key, label, kind in _HEADLINE
    )
    rows = []
    for strategy_id, stats in (summary.get("strategies") or {}).items():
        rows.append(
            "<tr>"
            f"<td>{html.escape(str(strategy_id))}</td>"
            f"<td>{_fmt(stats.get('pnl'), 'money')}</td>"
            f"<td>{_fmt(stats.get('return_contribution'), 'pct')}</td>"
            f"<td>{_fmt(stats.get('sharpe'), 'ratio')}</td>"
            f"<td>{_fmt(stats.get('max_drawdown'), 'pct')}</td>"
            f"<td>{_fmt(stats.get('trades'), 'int')}</td>"
            f"<td>{_fmt(stats.get('win_rate'), 'pct')}</td>"
            f"<td>{_fmt(stats.get('profit_factor'), 'ratio')}</td>"
            "</tr>",
        )
    table = ""
    if rows:
        table = (
            "<table class='strategies'><thead><tr><th>Strategy</th><th>PnL</th>"
            "<th>Contribution</th><th>Sharpe</th><th>Max DD</th><th>Trades</th>"
            "<th>Win rate</th><th>Profit factor</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table>"
        )
    return f"<div class='stats'>{cells}</div>{_benchmark_cells(summary)}{table}"


def _benchmark_cells(summary: dict[str, Any]) -> str:
    """The benchmark's buy-and-hold figures and the run's relative ones (empty without one)."""
    benchmark = summary.get("benchmark")
    if not benchmark:
        return ""
    cells = "".join(
        f"<div class='stat'><div class='label'>{html.escape(label)}</div>"
        f"<div class='value'>{_fmt(benchmark.get(key), kind)}</div></div>"
        for key, label, kind in _BENCHMARK_HEADLINE
    )
    title = html.escape(f"Benchmark: {benchmark.get('bar_type')} (buy and hold)")
    return f"<div class='meta'>{title}</div><div class='stats'>{cells}</div>"


_CSS = """
body { font-family: -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif;
       margin: 0 auto; max-width: 1200px; padding: 16px 24px; color: #222; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.15em; margin: 1.6em 0 0.4em; }
.meta { color: #666; font-size: 0.9em; }
.stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(150px, 1fr)); gap: 8px;
         margin: 16px 0; }
.stat { background: #f6f7f9; border-radius: 6px; padding: 8px 10px; }
.stat .label { font-size: 0.78em; color: #666; } .stat .value { font-size: 1.15em; }
table.strategies { border-collapse: collapse; width: 100%; font-size: 0.9em; }
table.strategies th, table.strategies td { border-bottom: 1px solid #e3e3e3; padding: 4px 8px;
         text-align: right; }
table.strategies th:first-child, table.strategies td:first-child { text-align: left; }
.note { color: #888; font-style: italic; }
pre { background: #f6f7f9; padding: 10px; overflow-x: auto; font-size: 0.85em; }
"""


def _chart(section: Section) -> str:
    """A chart's div and the script that draws it (plotly.js is inlined once in the head)."""
    assert section.figure is not None
    div_id = f"chart-{section.key}"
    height = section.figure["layout"].get("height") or section.height
    config = {"displaylogo": False, "responsive": True}
    return (
        f"<div id='{div_id}' class='plotly-graph-div' style='height:{height}px; width:100%;'>"
        "</div><script type='text/javascript'>"
        f"Plotly.newPlot('{div_id}', {to_json(section.figure['data'])}, "
        f"{to_json(section.figure['layout'])}, {to_json(config)});</script>"
    )


def render_html(data: RunData, sections: list[Section], title: str | None = None) -> str:
    """The page as one HTML string with plotly.js inlined."""
    summary = data.summary
    name = title or str(summary.get("name", "backtest"))
    meta = (
        f"{html.escape(str(summary.get('start', '')))} → {html.escape(str(summary.get('end', '')))}"
        f" · {int(summary.get('bars', 0) or 0):,} bar closes"
        f" · fills at {html.escape(str(summary.get('fill_at', 'close')))}"
        f" · generated {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}"
    )
    body = [f"<h1>{html.escape(name)}</h1><div class='meta'>{meta}</div>", _tables(summary)]
    for section in sections:
        body.append(f"<h2 id='{section.key}'>{html.escape(section.title)}</h2>")
        body.append(section.detail_html)
        if section.figure is None:
            body.append(f"<p class='note'>{html.escape(section.note)}</p>")
            continue
        body.append(_chart(section))
    if data.config_text:
        body.append(
            "<h2 id='config'>Node config</h2><details><summary>config.yaml</summary>"
            f"<pre>{html.escape(data.config_text)}</pre></details>",
        )
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(name)} · grodt tearsheet</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js()}</script></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def render_tearsheet(
    run_dir: Path,
    output: Path | None = None,
    title: str | None = None,
    rolling_window: int | None = None,
    max_points: int = 5000,
    policy_diff_overrides: Mapping[str, Any] | None = None,
    diff_component: str | None = None,
    strategy_diff_overrides: Mapping[int, Mapping[str, Any]] | None = None,
) -> Path:
    """Write the run's tearsheet (default ``<run_dir>/tearsheet.html``) and return its path.

    Parameters
    ----------
    run_dir : Path
        A backtest run directory (``summary.json`` and ``equity.parquet`` required).
    output : Path, optional
        Where to write the page.
    title : str, optional
        Page title (default: the node name).
    rolling_window : int, optional
        Rolling Sharpe window in trading days (default 126, shorter for short runs).
    max_points : int, default 5000
        Longer series are drawn per day.
    policy_diff_overrides : Mapping[str, Any], optional
        New meta-controller config values: adds the policy diff section
        (:func:`grodt.forensics.replay.diff_allocations` over the run's logged inputs;
        ``diff_component`` names the meta-controller when the run has several). Its errors
        (an override the config refuses, no allocation records) are raised.
    strategy_diff_overrides : Mapping[int, Mapping[str, Any]], optional
        New config values of rule strategies by index in the run's config: adds the strategy
        decision diff (:func:`grodt.forensics.decision_replay.diff_decisions`).
    """
    data = load_run(Path(run_dir))
    sections = build_sections(data, rolling_window=rolling_window, max_points=max_points)
    if policy_diff_overrides:
        sections.append(policy_diff_section(Path(run_dir), policy_diff_overrides, diff_component))
    if strategy_diff_overrides:
        sections.append(decision_diff_section(Path(run_dir), strategy_diff_overrides))
    path = Path(output) if output is not None else Path(run_dir) / "tearsheet.html"
    tmp = path.with_suffix(".html.tmp")
    tmp.write_text(render_html(data, sections, title), encoding="utf-8")
    tmp.replace(path)
    return path
