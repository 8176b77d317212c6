"""``walkforward.html``: the stitched out-of-sample curve with fold boundaries, and the fold table.

One self-contained page (plotly.js inlined, :mod:`grodt.reports.figures`): the stitched equity of
the routed runs, the always-on baseline and buy-and-hold on one chart with a dotted vertical line
at every fold's first test bar, the drawdown of each below, then the stitched and per-fold
figures.
"""

import html
import math
from pathlib import Path
from typing import Any

import pandas as pd

from grodt.experiments.results import WalkForwardResult
from grodt.reports.figures import plotly_js
from grodt.reports.figures import to_json

__all__ = ["render_walkforward", "walkforward_figure"]

_LINES = (
    ("equity", "Regime-routed (OOS)", "#1f77b4", "solid"),
    ("baseline_equity", "Always-on baseline", "#ff7f0e", "dash"),
    ("benchmark_equity", "Buy and hold", "#7f7f7f", "dot"),
)
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
    "table{border-collapse:collapse;font-size:13px;margin:8px 0 24px}"
    "td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}th{background:#f4f4f4}"
    ".meta{color:#666;font-size:13px}"
)


def _x(index: pd.Index) -> list[str]:
    return [stamp.strftime("%Y-%m-%d") for stamp in pd.DatetimeIndex(index)]


def _y(values: pd.Series) -> list[float | None]:
    return [float(v) if math.isfinite(float(v)) else None for v in values]


def walkforward_figure(stitched: pd.DataFrame, boundaries: list[pd.Timestamp]) -> dict[str, Any]:
    """A plotly figure spec: stitched equity lines (top) and drawdowns in % (bottom), with a
    dotted vertical line at each of ``boundaries`` (fold test starts)."""
    data: list[dict[str, Any]] = []
    for column, name, color, dash in _LINES:
        if column not in stitched:
            continue
        equity = stitched[column]
        line = {"color": color, "dash": dash, "width": 1.5}
        common = {"type": "scatter", "x": _x(stitched.index), "line": line, "legendgroup": name}
        data.append({**common, "y": _y(equity), "name": name, "xaxis": "x", "yaxis": "y"})
        drawdown = (equity / equity.cummax() - 1.0) * 100.0
        data.append(
            {
                **common,
                "y": _y(drawdown),
                "name": name,
                "showlegend": False,
                "xaxis": "x2",
                "yaxis": "y2",
            },
        )
    shapes = [
        {
            "type": "line",
            "xref": "x",
            "yref": "paper",
            "x0": day,
            "x1": day,
            "y0": 0,
            "y1": 1,
            "line": {"color": "#bbb", "width": 1, "dash": "dot"},
        }
        for day in _x(pd.DatetimeIndex(boundaries))
    ]
    layout = {
        "height": 560,
        "margin": {"l": 60, "r": 20, "t": 30, "b": 40},
        "legend": {"orientation": "h", "y": -0.12},
        "hovermode": "x unified",
        "xaxis": {"anchor": "y", "domain": [0, 1], "matches": "x2", "showticklabels": False},
        "yaxis": {"anchor": "x", "domain": [0.34, 1.0], "title": {"text": "Equity"}},
        "xaxis2": {"anchor": "y2", "domain": [0, 1]},
        "yaxis2": {"anchor": "x2", "domain": [0.0, 0.3], "title": {"text": "Drawdown %"}},
        "shapes": shapes,
    }
    return {"data": data, "layout": layout}


def _cell(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:,.3f}"
    return html.escape(str(value))


def _table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    rows = "".join(
        "<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in row) + "</tr>"
        for row in frame.itertuples(index=False)
    )
    return f"<table><tr>{head}</tr>{rows}</table>"


def render_walkforward(result: WalkForwardResult) -> Path:
    """Write ``<run_dir>/walkforward.html`` and return its path."""
    stitched = {"regime-routed": result.stitched_summary}
    if result.baseline_stitched_summary:
        stitched["always-on baseline"] = result.baseline_stitched_summary
    if result.benchmark_stitched_summary:
        stitched[f"buy and hold {result.benchmark}"] = result.benchmark_stitched_summary
    overview = pd.DataFrame(stitched).T.reset_index(names="stitched OOS")
    folds = result.folds_frame().drop(columns=["models"], errors="ignore")
    for column in ("train_start", "train_end", "test_start", "test_end"):
        folds[column] = folds[column].str.slice(0, 10)
    figure = walkforward_figure(result.stitched, [f.test_start for f in result.folds])
    settings = result.settings
    meta = (
        f"train {settings.get('train')} · test {settings.get('test')} · step "
        f"{settings.get('step')} · {'expanding' if settings.get('expanding') else 'sliding'} · "
        f"{len(result.folds)} folds · fitted per fold: "
        f"{', '.join(settings.get('learning_components') or []) or 'nothing'}"
    )
    body = (
        f"<h1>{html.escape(result.name)}: walk-forward</h1><div class='meta'>{html.escape(meta)}"
        "</div><div id='equity'></div>"
        f"<script>var f={to_json(figure)};Plotly.newPlot('equity',f.data,f.layout);</script>"
        "<h2>Stitched out of sample</h2>" + _table(overview) + "<h2>Folds</h2>" + _table(folds)
    )
    page = (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(result.name)} · walk-forward</title><style>{_CSS}</style>"
        f"<script type='text/javascript'>{plotly_js()}</script></head><body>{body}</body></html>\n"
    )
    path = result.run_dir / "walkforward.html"
    path.write_text(page, encoding="utf-8")
    return path
