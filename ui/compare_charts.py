"""Plotly figures for the Compare page: several items side by side, one colour per item.

Built from plain data only (analysis rows, ``playground.compare.stage_breakdown`` entries,
stored metric series), so a reload draws the same thing. Run charts reuse
``ui.run_charts``; :func:`figures_html` bundles figures into one offline HTML page.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio

from ui.charts import _fig, fit_log_axes
from ui.text import plot_text

Entry = tuple[str, str, Any]  # (label, colour, data)


def stage_bars(entries: Sequence[Entry], field: str, title: str, y_title: str,
               log_y: bool = False) -> go.Figure:
    """Grouped bars per top-level module (``stem``, ``stage1``..., ``head``): one bar per item.

    ``entries``: (label, colour, stage breakdown list). Stages missing from an item are gaps.
    """
    seen: list[str] = []
    for _, _, parts in entries:
        for p in parts:
            if p["name"] not in seen:
                seen.append(p["name"])
    names = sorted(seen, key=lambda n: _stage_order(n, seen.index(n)))
    fig = _fig(title, "part of the network (execution order)", y_title, log_y=log_y)
    for raw, color, parts in entries:
        label = plot_text(raw)  # design names and run titles are user text
        values = {p["name"]: p[field] for p in parts}
        fig.add_trace(go.Bar(
            x=names, y=[values.get(n) or None for n in names], name=label,
            marker_color=color, hovertemplate="%{x}<br>%{y:,}<extra>" + label + "</extra>"))
    fig.update_layout(barmode="group", hovermode="closest")
    return fit_log_axes(fig)


def _stage_order(name: str, first_seen: int) -> tuple[int, int]:
    """stem, stage1, stage2..., then other modules in the order seen, then head."""
    if name == "stem":
        return (0, 0)
    if name.startswith("stage") and name[5:].isdigit():
        return (1, int(name[5:]))
    return (3, 0) if name == "head" else (2, first_seen)


def layer_bars(entries: Sequence[Entry], field: str, title: str, y_title: str,
               log_y: bool = True) -> go.Figure:
    """Per weight layer (conv, linear) of each item, by its position from input to output.

    ``entries``: (label, colour, analysis rows). Positions line up by depth, not by meaning:
    layer 5 of VGG and of ResNet are different layers (hover shows the names).
    """
    fig = _fig(title, "weight layer (input side -> output side)", y_title, log_y=log_y)
    for raw, color, rows in entries:
        label = plot_text(raw)  # design names and run titles are user text
        layers = [r for r in rows if r.type.startswith("Conv") or r.type == "Linear"]
        fig.add_trace(go.Bar(
            x=list(range(1, len(layers) + 1)), y=[getattr(r, field) or None for r in layers],
            name=label, marker_color=color, text=[r.name for r in layers],
            textposition="none",
            hovertemplate="%{text}<br>%{y:,}<extra>" + label + "</extra>"))
    fig.update_layout(barmode="group", hovermode="closest", bargap=0.1)
    return fit_log_axes(fig)


def figures_html(figures: Sequence[go.Figure], title: str = "Comparison") -> str:
    """One standalone HTML page holding every figure; plotly.js is embedded once (works
    offline, about 4 MB).

    The page is white, so each figure is drawn with Plotly's light ``plotly_white`` template:
    in the app the figures carry no colours of their own (Streamlit's theme supplies them).
    """
    parts = [pio.to_html(go.Figure(f).update_layout(template="plotly_white"), full_html=False,
                         include_plotlyjs=(i == 0))
             for i, f in enumerate(figures)]
    body = "\n".join(f"<div style='margin-bottom:24px'>{p}</div>" for p in parts)
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title></head>"
            f"<body style='font-family:sans-serif'><h1>{title}</h1>{body}</body></html>")
