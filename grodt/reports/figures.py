"""The tearsheet's charts as plain plotly.js figure specs (``{"data": [...], "layout": {...}}``).

Building them as dicts instead of ``plotly.graph_objects`` skips the Python package's property
validation, which cost ~1 s per tearsheet on the reference 2-core machine, and lets the page be
written without importing plotly at all: the page passes each spec to ``Plotly.newPlot``.
Subplot grids are laid out here the way ``plotly.subplots.make_subplots`` lays them out (axis
domains, shared x axes, titles as annotations).

Conventions: x values are UTC timestamps written as ISO strings without an offset; NaN becomes
``null`` (a gap); percentages are drawn as percent (×100).
"""

import json
import math
from collections.abc import Sequence
from functools import cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "Figure",
    "allocation_figure",
    "contribution_figure",
    "decision_diff_figure",
    "equity_figure",
    "monthly_figure",
    "plotly_js",
    "policy_diff_figure",
    "regime_figure",
    "risk_figure",
    "rolling_sharpe_figure",
    "to_json",
    "trades_figure",
]

Figure = dict[str, Any]
"""A plotly.js figure spec: ``data`` (traces) and ``layout``."""

REGIME_COLORS = {"bull": "#2ca02c", "bear": "#d62728", "sideways": "#7f7f7f"}
VERDICT_COLORS = {"deny": "#d62728", "resize": "#ff7f0e"}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
BENCHMARK_COLOR = "#7f7f7f"
# ColorBrewer RdYlGn as plotly's Python package expands the name (plotly.js itself only knows a
# few named scales, RdYlGn not among them): losses red, gains green.
RED_YELLOW_GREEN = [
    [index / 10, color]
    for index, color in enumerate(
        (
            "rgb(165,0,38)",
            "rgb(215,48,39)",
            "rgb(244,109,67)",
            "rgb(253,174,97)",
            "rgb(254,224,139)",
            "rgb(255,255,191)",
            "rgb(217,239,139)",
            "rgb(166,217,106)",
            "rgb(102,189,99)",
            "rgb(26,152,80)",
            "rgb(0,104,55)",
        ),
    )
]


def _plotly_dir() -> Path:
    spec = find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("plotly is not installed (the tearsheet inlines its plotly.js)")
    return Path(next(iter(spec.submodule_search_locations)))


@cache
def plotly_js() -> str:
    """The plotly.js bundle shipped with the installed plotly package (read, not imported)."""
    return (_plotly_dir() / "package_data" / "plotly.min.js").read_text(encoding="utf-8")


@cache
def _template() -> dict[str, Any]:
    """The ``plotly_white`` template, as ``plotly.io`` would embed it."""
    path = _plotly_dir() / "package_data" / "templates" / "plotly_white.json"
    return json.loads(path.read_text(encoding="utf-8"))


def to_json(value: Any) -> str:
    """JSON for a figure spec (NaN/inf are already ``None`` in the lists built here)."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False)


def _x(index: pd.Index) -> list[Any]:
    if isinstance(index, pd.DatetimeIndex):
        naive = index.tz_convert("UTC").tz_localize(None) if index.tz is not None else index
        return list(np.datetime_as_string(naive.to_numpy(dtype="datetime64[ns]"), unit="s"))
    return [v.item() if isinstance(v, np.generic) else v for v in index]


def _y(values: Any) -> list[float | None]:
    array = np.asarray(values, dtype=float)
    return [v if math.isfinite(v) else None for v in array.tolist()]


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    return {
        "template": _template(),
        "height": height,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
        "legend": {"orientation": "h", "y": -0.15},
        "hovermode": "x unified",
        **extra,
    }


def _hline(y: float, yref: str = "y", **line: Any) -> dict[str, Any]:
    return {
        "type": "line",
        "xref": f"{yref.replace('y', 'x')} domain",
        "x0": 0,
        "x1": 1,
        "yref": yref,
        "y0": y,
        "y1": y,
        "line": line,
    }


def _rows(count: int, spacing: float, heights: list[float] | None = None) -> list[list[float]]:
    """Vertical domains of ``count`` rows, top first (``make_subplots``' arithmetic)."""
    weights = heights or [1.0] * count
    usable = 1.0 - spacing * (count - 1)
    sizes = [usable * w / sum(weights) for w in weights]
    domains, top = [], 1.0
    for size in sizes:
        domains.append([max(top - size, 0.0), top])
        top -= size + spacing
    return domains


def _title(text: str, x: float, y: float) -> dict[str, Any]:
    return {
        "text": text,
        "x": x,
        "y": y,
        "xref": "paper",
        "yref": "paper",
        "xanchor": "center",
        "yanchor": "bottom",
        "showarrow": False,
        "font": {"size": 16},
    }


def equity_figure(
    frame: pd.DataFrame,
    starting_equity: float,
    benchmark: pd.Series | None = None,
    benchmark_name: str = "Benchmark",
) -> Figure:
    """Equity over drawdown (two rows, shared x); ``benchmark``: a second equity line (the
    benchmark's buy-and-hold value of the starting equity, same index)."""
    top, bottom = _rows(2, 0.04, [0.7, 0.3])
    data = [
        {
            "type": "scatter",
            "x": _x(frame.index),
            "y": _y(frame["equity"]),
            "name": "Equity",
            "line": {"color": "#1f77b4"},
            "xaxis": "x",
            "yaxis": "y",
        },
    ]
    if benchmark is not None:
        data.append(
            {
                "type": "scatter",
                "x": _x(benchmark.index),
                "y": _y(benchmark),
                "name": benchmark_name,
                "line": {"color": BENCHMARK_COLOR, "width": 1.2, "dash": "dot"},
                "xaxis": "x",
                "yaxis": "y",
            },
        )
    data.append(
        {
            "type": "scatter",
            "x": _x(frame.index),
            "y": _y(frame["drawdown"] * 100.0),
            "name": "Drawdown",
            "fill": "tozeroy",
            "line": {"color": "#d62728", "width": 1},
            "xaxis": "x2",
            "yaxis": "y2",
        },
    )
    layout = _layout(
        520,
        xaxis={"anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        yaxis={"anchor": "x", "domain": top, "title": {"text": "Equity"}},
        xaxis2={"anchor": "y2", "domain": [0, 1]},
        yaxis2={"anchor": "x2", "domain": bottom, "title": {"text": "Drawdown %"}},
        shapes=[_hline(starting_equity, "y", dash="dot", color="#999")],
    )
    return {"data": data, "layout": layout}


def monthly_figure(table: pd.DataFrame, returns: pd.Series) -> Figure:
    """Heat map of monthly returns (%), one row per year labelled with its annual return."""
    annual = (1.0 + returns).groupby(returns.index.year).prod() - 1.0
    years = list(table.index)
    labels = [f"{year} ({annual.get(year, math.nan) * 100:+.1f}%)" for year in years]
    z = table.to_numpy(dtype=float) * 100.0
    text = [[("" if math.isnan(v) else f"{v:.1f}") for v in row] for row in z]
    limit = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    trace = {
        "type": "heatmap",
        "z": [_y(row) for row in z],
        "x": list(MONTHS),
        "y": labels,
        "text": text,
        "texttemplate": "%{text}",
        "colorscale": RED_YELLOW_GREEN,
        "zmid": 0.0,
        "zmin": -limit,
        "zmax": limit,
        "colorbar": {"title": {"text": "%"}},
        "hovertemplate": "%{y} %{x}: %{z:.2f}%<extra></extra>",
    }
    layout = _layout(
        max(260, 26 * len(years) + 80),
        hovermode="closest",
        yaxis={"autorange": "reversed", "type": "category"},
    )
    return {"data": [trace], "layout": layout}


def rolling_sharpe_figure(series: pd.Series, window: int, overall: float | None) -> Figure:
    """Rolling annualised Sharpe, with zero and the full-period value as reference lines."""
    shapes = [_hline(0.0, color="#999")]
    annotations = []
    if overall is not None and math.isfinite(overall):
        shapes.append(_hline(overall, dash="dash", color="#2ca02c"))
        annotations.append(
            {
                "text": f"full period {overall:.2f}",
                "x": 1,
                "xref": "x domain",
                "xanchor": "right",
                "y": overall,
                "yref": "y",
                "yanchor": "bottom",
                "showarrow": False,
            },
        )
    trace = {
        "type": "scatter",
        "x": _x(series.index),
        "y": _y(series),
        "name": f"Rolling Sharpe ({window}d)",
    }
    layout = _layout(
        340,
        shapes=shapes,
        annotations=annotations,
        yaxis={"title": {"text": "Sharpe (annualised)"}},
    )
    return {"data": [trace], "layout": layout}


def trades_figure(trades: pd.DataFrame) -> Figure:
    """Histogram of realised PnL per closed position, one overlaid series per strategy."""
    data = [
        {
            "type": "histogram",
            "x": _y(group["realized_pnl"]),
            "name": f"{strategy_id} ({len(group)})",
            "opacity": 0.7,
            "nbinsx": min(60, max(10, len(group) // 3)),
        }
        for strategy_id, group in trades.groupby("strategy_id", sort=True)
    ]
    zero = {
        "type": "line",
        "xref": "x",
        "x0": 0.0,
        "x1": 0.0,
        "yref": "y domain",
        "y0": 0,
        "y1": 1,
        "line": {"color": "#333", "dash": "dot"},
    }
    layout = _layout(
        360,
        hovermode="closest",
        barmode="overlay",
        shapes=[zero],
        xaxis={"title": {"text": "Realised PnL per closed position"}},
        yaxis={"title": {"text": "Positions"}},
    )
    return {"data": data, "layout": layout}


def contribution_figure(
    equity: pd.DataFrame, strategies: dict[str, Any], max_points: int
) -> Figure:
    """Cumulative PnL per strategy (left) and each one's final contribution to return (right)."""
    columns = [c for c in equity.columns if c.startswith("pnl:")]
    frame = equity[columns]
    if len(frame) > max_points:
        frame = frame.groupby(frame.index.normalize()).last()
    spacing = 0.2 / 2
    left = 0.72 * (1.0 - spacing)
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": _x(frame.index),
            "y": _y(frame[column]),
            "name": column.removeprefix("pnl:"),
            "xaxis": "x",
            "yaxis": "y",
        }
        for column in columns
    ]
    names = [c.removeprefix("pnl:") for c in columns]
    contributions = [
        float((strategies.get(n) or {}).get("return_contribution", math.nan)) * 100.0 for n in names
    ]
    data.append(
        {
            "type": "bar",
            "x": names,
            "y": _y(contributions),
            "name": "Contribution %",
            "marker": {"color": ["#2ca02c" if v >= 0 else "#d62728" for v in contributions]},
            "showlegend": False,
            "xaxis": "x2",
            "yaxis": "y2",
        },
    )
    layout = _layout(
        420,
        hovermode="closest",
        margin={"l": 60, "r": 20, "t": 60, "b": 40},
        xaxis={"anchor": "y", "domain": [0.0, left]},
        yaxis={"anchor": "x", "domain": [0.0, 1.0], "title": {"text": "PnL"}},
        xaxis2={"anchor": "y2", "domain": [left + spacing, 1.0]},
        yaxis2={"anchor": "x2", "domain": [0.0, 1.0], "title": {"text": "% of starting equity"}},
        annotations=[
            _title("Cumulative PnL", left / 2, 1.0),
            _title("Contribution to return", (left + spacing + 1.0) / 2, 1.0),
        ],
    )
    return {"data": data, "layout": layout}


def regime_figure(series: dict[str, pd.DataFrame]) -> Figure:
    """Stacked regime probabilities, one row per instrument (shared x)."""
    count = len(series)
    domains = _rows(count, 0.08)
    data: list[dict[str, Any]] = []
    layout = _layout(220 * count + 120, margin={"l": 60, "r": 20, "t": 60, "b": 40})
    annotations = []
    for row, ((name, frame), domain) in enumerate(zip(series.items(), domains, strict=True), 1):
        suffix = "" if row == 1 else str(row)
        for label in frame.columns:
            data.append(
                {
                    "type": "scatter",
                    "x": _x(frame.index),
                    "y": _y(frame[label]),
                    "name": str(label),
                    "legendgroup": str(label),
                    "showlegend": row == 1,
                    "stackgroup": f"s{row}",
                    "line": {"shape": "hv", "width": 0.5, "color": REGIME_COLORS.get(str(label))},
                    "xaxis": f"x{suffix}",
                    "yaxis": f"y{suffix}",
                },
            )
        layout[f"xaxis{suffix}"] = {
            "anchor": f"y{suffix}",
            "domain": [0, 1],
            **({"matches": f"x{count if count > 1 else ''}"} if row < count else {}),
            **({"showticklabels": False} if row < count else {}),
        }
        layout[f"yaxis{suffix}"] = {
            "anchor": f"x{suffix}",
            "domain": domain,
            "range": [0, 1],
            "title": {"text": "p"},
        }
        annotations.append(_title(str(name), 0.5, domain[1]))
    layout["annotations"] = annotations
    return {"data": data, "layout": layout}


def allocation_figure(weights: pd.DataFrame) -> Figure:
    """Stacked allocation weights per strategy over time."""
    data = [
        {
            "type": "scatter",
            "x": _x(weights.index),
            "y": _y(weights[column]),
            "name": str(column),
            "stackgroup": "w",
            "line": {"shape": "hv", "width": 0.5},
        }
        for column in weights.columns
    ]
    return {"data": data, "layout": _layout(360, yaxis={"title": {"text": "Weight"}})}


def policy_diff_figure(changes: Sequence[Any]) -> Figure:
    """A policy diff (:class:`grodt.forensics.replay.AllocationChange` per logged decision).

    Top: each strategy's weight change (new − recorded) per decision, as steps. Bottom: the
    largest absolute change of each changed decision, coloured by the regime its context held."""
    index = pd.DatetimeIndex(pd.to_datetime([c.ts_event for c in changes], unit="ns", utc=True))
    names = list(changes[0].new) if changes else []
    top, bottom = _rows(2, 0.08, [2.0, 1.0])
    data: list[dict[str, Any]] = [
        {
            "type": "scatter",
            "x": _x(index),
            "y": _y([c.new[name] - c.recorded[name] for c in changes]),
            "name": name,
            "line": {"shape": "hv", "width": 1},
            "xaxis": "x",
            "yaxis": "y",
        }
        for name in names
    ]
    changed = [c for c in changes if c.changed]
    for regime in sorted({c.regime for c in changed}):
        own = [c for c in changed if c.regime == regime]
        when = pd.DatetimeIndex(pd.to_datetime([c.ts_event for c in own], unit="ns", utc=True))
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": _x(when),
                "y": _y(np.array([c.max_change for c in own])),
                "name": f"largest change ({regime})",
                "marker": {"size": 5, "color": REGIME_COLORS.get(regime, "#1f77b4")},
                "xaxis": "x2",
                "yaxis": "y2",
            },
        )
    layout = _layout(
        460,
        xaxis={"anchor": "y", "matches": "x2", "showticklabels": False},
        yaxis={"anchor": "x", "domain": top, "title": {"text": "New − recorded weight"}},
        xaxis2={"anchor": "y2"},
        yaxis2={
            "anchor": "x2",
            "domain": bottom,
            "title": {"text": "Largest |change|"},
            "rangemode": "tozero",
        },
    )
    return {"data": data, "layout": layout}


def decision_diff_figure(changes: Sequence[Any]) -> Figure:
    """A strategy-decision diff (:class:`grodt.forensics.decision_replay.DecisionChange` per
    logged decision): each changed decision's new / recorded order quantity (0: not taken; a
    cross: the other side), one colour per regime its strategy held."""
    changed = [c for c in changes if c.changed]
    data: list[dict[str, Any]] = []
    for regime in sorted({c.regime for c in changed}):
        own = [c for c in changed if c.regime == regime]
        when = pd.DatetimeIndex(pd.to_datetime([c.ts_event for c in own], unit="ns", utc=True))
        ratios = [
            float(c.new_quantity / c.recorded_quantity)
            if c.new_action is not None and c.new_quantity is not None and c.recorded_quantity
            else 0.0
            for c in own
        ]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "x": _x(when),
                "y": _y(np.array(ratios)),
                "name": regime,
                "text": [f"{c.strategy_id}: {c.kind}" for c in own],
                "marker": {
                    "size": 6,
                    "color": REGIME_COLORS.get(regime, "#1f77b4"),
                    "symbol": ["x" if c.kind == "side" else "circle" for c in own],
                },
            },
        )
    layout = _layout(360, yaxis={"title": {"text": "New / recorded quantity"}})
    return {"data": data, "layout": layout}


def risk_figure(verdicts: pd.DataFrame) -> Figure:
    """Denials and resizes per day (stacked bars by verdict and reason) and cumulative denials
    (right axis)."""
    flagged = verdicts[verdicts["verdict"] != "approve"]
    day = flagged["ts"].dt.normalize()
    data: list[dict[str, Any]] = []
    for (verdict, reason), group in flagged.groupby([flagged["verdict"], flagged["reason"]]):
        counts = group.groupby(day.loc[group.index]).size()
        label = f"{verdict}: {reason}" if reason else str(verdict)
        data.append(
            {
                "type": "bar",
                "x": _x(pd.DatetimeIndex(counts.index)),
                "y": [int(v) for v in counts.to_numpy()],
                "name": label[:80],
                "marker": {"color": VERDICT_COLORS.get(str(verdict), "#7f7f7f")},
                "xaxis": "x",
                "yaxis": "y",
            },
        )
    cumulative = (verdicts["verdict"] == "deny").astype(int).cumsum()
    data.append(
        {
            "type": "scatter",
            "x": _x(pd.DatetimeIndex(verdicts["ts"])),
            "y": [int(v) for v in cumulative.to_numpy()],
            "name": "Denials (cumulative)",
            "line": {"shape": "hv", "color": "#333"},
            "xaxis": "x",
            "yaxis": "y2",
        },
    )
    layout = _layout(
        380,
        barmode="stack",
        xaxis={"anchor": "y", "domain": [0.0, 0.94]},
        yaxis={"anchor": "x", "title": {"text": "Verdicts per day"}, "rangemode": "tozero"},
        yaxis2={
            "anchor": "x",
            "overlaying": "y",
            "side": "right",
            "title": {"text": "Cumulative denials"},
            "rangemode": "tozero",
        },
    )
    return {"data": data, "layout": layout}
