"""The architecture diagram as a Plotly figure (geometry from :mod:`playground.diagram`).

Each box is three filled polygons (front, top and side faces) plus one invisible marker at
its centre that carries the hover text and the box's key (``customdata``): clicking a box in
``st.plotly_chart(..., on_select="rerun")`` selects that marker, and the page maps its key back
to the box's layer rows. Skip connections are quadratic paths over the boxes. Text colours come
from the app's theme (:data:`ui.charts.THEME_TEXT`); face colours are mid-tone so they read on
light and dark backgrounds. The modebar's camera downloads a PNG; the page offers the SVG of
:func:`playground.diagram.to_svg` for slides.
"""

from __future__ import annotations

import plotly.graph_objects as go

from playground.diagram import MAX_HEIGHT, Diagram, cuboid
from ui.charts import THEME_TEXT
from ui.text import plot_text

FILL = {"input": "#bdbdbd", "conv": "#6baed6", "block": "#4292c6", "stage": "#2171b5",
        "pool": "#fd8d3c", "dense": "#74c476"}
SELECTED = "#e6550d"
ARC = "#e6550d"
PNG_CONFIG = {"displaylogo": False,
              "toImageButtonOptions": {"format": "png", "filename": "architecture", "scale": 2},
              "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def diagram_figure(diagram: Diagram, selected: str | None = None, height: int = 330
                   ) -> go.Figure:
    """The figure of ``diagram``; the box whose key is ``selected`` is outlined."""
    fig = go.Figure()
    for arc in diagram.arcs:
        mid = (arc.x0 + arc.x1) / 2
        fig.add_shape(type="path", path=f"M {arc.x0},0 Q {mid},{2 * arc.top} {arc.x1},0",
                      line={"color": ARC, "width": 2}, layer="below")
    xs, ys, hovers, keys = [], [], [], []
    for box in diagram.boxes:
        colour = FILL.get(box.kind, FILL["conv"])
        edge = SELECTED if box.key == selected else "rgba(40,40,40,0.8)"
        width = 3 if box.key == selected else 1
        faces = cuboid(box)
        for face, opacity in (("side", 0.65), ("top", 0.8), ("front", 1.0)):
            if box.depth == 0 and face != "front":
                continue
            px = [p[0] for p in faces[face]] + [faces[face][0][0]]
            py = [p[1] for p in faces[face]] + [faces[face][0][1]]
            fig.add_trace(go.Scatter(x=px, y=py, mode="lines", fill="toself",
                                     fillcolor=colour, opacity=opacity,
                                     line={"color": edge, "width": width},
                                     hoverinfo="skip", showlegend=False))
        cx, cy = box.centre
        xs.append(cx)
        ys.append(cy)
        hovers.append(plot_text(box.hover()).replace("\n", "<br>"))
        keys.append(box.key)
        crowded = len(diagram.boxes) > 10
        lower = crowded and len(xs) % 2 == 0  # stagger the labels of a long network
        fig.add_annotation(x=cx, y=-MAX_HEIGHT / 2 - (30 if lower else 4),
                           text=f"{plot_text(box.label)}<br>{box.shape_text}",
                           showarrow=False, yanchor="top", font={"size": 10 if crowded else 11})
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=keys,
                             marker={"size": 18, "opacity": 0.01, "color": "#000"},
                             hovertext=hovers, hovertemplate="%{hovertext}<extra></extra>",
                             showlegend=False, name="boxes"))
    fig.update_layout(
        height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False, "range": [-8, diagram.width + 8], "fixedrange": True},
        yaxis={"visible": False, "range": [-MAX_HEIGHT / 2 - 62, diagram.top + 10],
               "scaleanchor": None, "fixedrange": True},
        font={"color": THEME_TEXT}, hoverlabel={"font": {"color": THEME_TEXT}},
        dragmode=False, clickmode="event+select",
    )
    return fig


def selected_key(event: object) -> str | None:
    """The box key of a ``st.plotly_chart`` selection event (None: nothing selected)."""
    try:
        points = event["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        key = point.get("customdata")
        if isinstance(key, list):
            key = key[0] if key else None
        if isinstance(key, str):
            return key
    return None
