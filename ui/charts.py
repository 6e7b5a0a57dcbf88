"""Plotly figures built from plain analysis rows and stored run metrics (never from live state).

Every figure has axis titles with units and hover text; colours are consistent per item.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go

PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf"]
_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 100},
    "height": 390,
    "hovermode": "x unified",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
    # No named template: resolving one deep-copies it (~25 ms a figure); set the look directly.
    "plot_bgcolor": "white",
    "paper_bgcolor": "white",
    "font": {"size": 14},
}


# Log axes: every tick in full, "0.5" rather than plotly's bare "5", and powers as 10^-8
# rather than SI's "10n" (a gradient norm has no unit).
LOG_AXIS = {"exponentformat": "power", "minorloglabels": "complete"}


def _fig(title: str, x_title: str, y_title: str, log_y: bool = False) -> go.Figure:
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **_LAYOUT)
    fig.update_xaxes(gridcolor="#e5e5e5", zerolinecolor="#cccccc")
    fig.update_yaxes(gridcolor="#e5e5e5", zerolinecolor="#cccccc")
    if log_y:
        fig.update_yaxes(type="log", **LOG_AXIS)
    return fig


def _spatial(rows: Sequence[Any]) -> list[Any]:
    return [r for r in rows if r.out_shape and len(r.out_shape) == 3]


def feature_map_chart(rows: Sequence[Any]) -> go.Figure:
    """Feature-map side (H x W) and channels per layer: how the network trades space for depth."""
    fig = _fig("Feature map through the layers", "layer (execution order)", "height = width (px)")
    spatial = _spatial(rows)
    x = [r.index for r in spatial]
    names = [r.name for r in spatial]
    fig.add_trace(go.Scatter(
        x=x, y=[r.out_shape[1] for r in spatial], name="height (px)", mode="lines+markers",
        line={"shape": "hv", "color": PALETTE[0]}, text=names,
        hovertemplate="%{text}<br>H = %{y} px<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=x, y=[r.out_shape[0] for r in spatial], name="channels", mode="lines+markers",
        line={"shape": "hv", "color": PALETTE[1]}, yaxis="y2", text=names,
        hovertemplate="%{text}<br>C = %{y}<extra></extra>"))
    fig.update_layout(yaxis2={"title": "channels", "overlaying": "y", "side": "right",
                              "showgrid": False})
    return fig


def per_layer_bars(rows: Sequence[Any], field: str, title: str, y_title: str,
                   log_y: bool = False) -> go.Figure:
    """Parameters or MACs per layer, only layers with a non-zero value."""
    items = [r for r in rows if getattr(r, field)]
    fig = _fig(title, "layer", y_title, log_y=log_y)
    fig.add_trace(go.Bar(
        x=[r.name for r in items], y=[getattr(r, field) for r in items],
        marker_color=PALETTE[2] if field == "num_params" else PALETTE[3],
        hovertemplate="%{x}<br>%{y:,}<extra></extra>"))
    fig.update_layout(hovermode="closest")
    fig.update_xaxes(tickangle=-60, tickfont={"size": 10})
    return fig


def receptive_field_chart(rows: Sequence[Any], input_side: int) -> go.Figure:
    """Receptive field (input pixels one output sees) and effective stride per layer."""
    fig = _fig("Receptive field growth", "layer (execution order)", "pixels of the input")
    items = [r for r in rows if r.rf is not None]
    fig.add_trace(go.Scatter(
        x=[r.index for r in items], y=[max(r.rf) for r in items], name="receptive field (px)",
        mode="lines+markers", line={"color": PALETTE[4]}, text=[r.name for r in items],
        hovertemplate="%{text}<br>RF = %{y} px<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=[r.index for r in items], y=[max(r.jump) for r in items if r.jump is not None],
        name="effective stride (px)", mode="lines", line={"color": PALETTE[5], "dash": "dot"},
        hovertemplate="stride %{y} px<extra></extra>"))
    fig.add_hline(y=input_side, line_dash="dash", line_color="grey",
                  annotation_text=f"input size {input_side} px")
    return fig


def bar_compare(labels: list[str], values: list[float], title: str, y_title: str,
                log_y: bool = False) -> go.Figure:
    fig = _fig(title, "", y_title, log_y=log_y)
    fig.add_trace(go.Bar(x=labels, y=values, marker_color=PALETTE[: len(labels)],
                         hovertemplate="%{x}<br>%{y:,}<extra></extra>"))
    fig.update_layout(hovermode="closest", showlegend=False)
    return fig
