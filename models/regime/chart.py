"""A self-contained HTML chart of regime probabilities over time (plotly, no network needed)."""

from pathlib import Path

import numpy as np
import pandas as pd

LABEL_COLOURS: dict[str, str] = {
    "bull": "rgba(46, 160, 67, 0.75)",
    "bear": "rgba(218, 54, 51, 0.75)",
    "sideways": "rgba(140, 140, 140, 0.6)",
}


def regime_chart(
    frame: pd.DataFrame,
    close: np.ndarray,
    path: str | Path,
    title: str,
    truth: pd.Series | None = None,
    log_price: bool = True,
) -> Path:
    """Write the price and the stacked regime probabilities to ``path`` (HTML).

    Parameters
    ----------
    frame : pd.DataFrame
        A regime frame (``ts_event`` ns, ``p_bull``, ``p_bear``, ``p_sideways``, ...), N rows.
    close : np.ndarray
        Shape (N,), the bar closes.
    path : str | Path
        Output file (``.html``; the plotly library is embedded, so it opens offline).
    title : str
    truth : pd.Series, optional
        True label per row (synthetic data), drawn as a strip under the probabilities.
    log_price : bool, default True
        Log scale for the price axis.
    """
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    times = pd.to_datetime(frame["ts_event"].to_numpy(), unit="ns", utc=True)
    rows = 3 if truth is not None else 2
    heights = [0.5, 0.4, 0.1] if truth is not None else [0.55, 0.45]
    fig = make_subplots(
        rows=rows,
        cols=1,
        shared_xaxes=True,
        vertical_spacing=0.03,
        row_heights=heights,
    )
    fig.add_trace(
        go.Scatter(x=times, y=close, name="close", line={"color": "#1f4e79", "width": 1}),
        row=1,
        col=1,
    )
    for label in ("bull", "sideways", "bear"):
        fig.add_trace(
            go.Scatter(
                x=times,
                y=frame[f"p_{label}"].to_numpy(),
                name=f"p({label})",
                stackgroup="regime",
                mode="none",
                fillcolor=LABEL_COLOURS[label],
            ),
            row=2,
            col=1,
        )
    if truth is not None:
        for label in ("bull", "sideways", "bear"):
            mask = (truth.to_numpy() == label).astype(float)
            fig.add_trace(
                go.Scatter(
                    x=times,
                    y=mask,
                    name=f"true {label}",
                    stackgroup="truth",
                    mode="none",
                    fillcolor=LABEL_COLOURS[label],
                    showlegend=False,
                ),
                row=3,
                col=1,
            )
        fig.update_yaxes(title_text="truth", showticklabels=False, row=3, col=1)
    fig.update_yaxes(title_text="price", type="log" if log_price else "linear", row=1, col=1)
    fig.update_yaxes(title_text="probability", range=[0, 1], row=2, col=1)
    fig.update_layout(title=title, height=700, hovermode="x unified", template="plotly_white")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.write_html(str(path), include_plotlyjs=True, full_html=True)
    return path
