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
FACE_OPACITY = {"side": 0.65, "top": 0.8, "front": 1.0}
ARC = "#e6550d"
PNG_CONFIG = {"displaylogo": False,
              "toImageButtonOptions": {"format": "png", "filename": "architecture", "scale": 2},
              "modeBarButtonsToRemove": ["select2d", "lasso2d", "autoScale2d"]}


def diagram_figure(diagram: Diagram, selected: str | None = None, height: int = 330, *,
                   x_max: float | None = None, top: float | None = None,
                   labels: bool = True) -> go.Figure:
    """The figure of ``diagram``; the box whose key is ``selected`` is outlined.

    ``x_max`` and ``top`` fix the axes' extent in drawing units (default: this diagram's own),
    so figures of equal size drawn with the same values share one scale. ``labels``: the name
    and shape under each box (off for narrow figures; the hover shows them).

    Faces are grouped into one trace per kind, face and outline (polygons separated by gaps,
    each filled on its own), so a 40-box network is about a dozen traces: Plotly validates
    every trace and annotation it is given, and one per face cost a quarter of a second.
    """
    shapes = [{"type": "path", "path": f"M {a.x0},0 Q {(a.x0 + a.x1) / 2},{2 * a.top} {a.x1},0",
               "line": {"color": ARC, "width": 2}, "layer": "below"} for a in diagram.arcs]
    faces_of: dict[tuple[bool, str, str], tuple[list[float | None], list[float | None]]] = {}
    xs, ys, hovers, keys = [], [], [], []
    label_x, label_y, label_text = [], [], []
    crowded = len(diagram.boxes) > 6  # labels about as wide as the space per box
    for box in diagram.boxes:
        faces = cuboid(box)
        for face in ("side", "top", "front"):
            if box.depth == 0 and face != "front":
                continue
            px, py = faces_of.setdefault((box.key == selected, box.kind, face), ([], []))
            poly = [*faces[face], faces[face][0]]
            px += [p[0] for p in poly] + [None]
            py += [p[1] for p in poly] + [None]
        cx, cy = box.centre
        xs.append(cx)
        ys.append(cy)
        hovers.append(plot_text(box.hover()).replace("\n", "<br>"))
        keys.append(box.key)
        lower = crowded and len(xs) % 2 == 0  # stagger the labels of a long network
        label_x.append(cx)
        label_y.append(-MAX_HEIGHT / 2 - (30 if lower else 4))
        label_text.append(f"{plot_text(box.label)}<br>{box.shape_text}")
    traces = []
    # selected last: its thick outline is drawn over its neighbours' thin ones
    for (chosen, kind, face), (px, py) in sorted(faces_of.items(), key=lambda kv: kv[0][0]):
        traces.append(go.Scatter(
            x=px, y=py, mode="lines", fill="toself", fillcolor=FILL.get(kind, FILL["conv"]),
            opacity=FACE_OPACITY[face], hoverinfo="skip", showlegend=False,
            line={"color": SELECTED if chosen else "rgba(40,40,40,0.8)",
                  "width": 3 if chosen else 1}))
    if labels:
        traces.append(go.Scatter(x=label_x, y=label_y, mode="text", text=label_text,
                                 textposition="bottom center", hoverinfo="skip",
                                 cliponaxis=False,  # the end labels may reach the margins
                                 textfont={"size": 10 if len(xs) > 10 else 11},
                                 showlegend=False, name="labels"))
    traces.append(go.Scatter(x=xs, y=ys, mode="markers", customdata=keys,
                             marker={"size": 18, "opacity": 0.01, "color": "#000"},
                             hovertext=hovers, hovertemplate="%{hovertext}<extra></extra>",
                             showlegend=False, name="boxes"))
    right = diagram.width if x_max is None else x_max
    upper = diagram.top if top is None else top
    return go.Figure(data=traces, layout=dict(
        shapes=shapes, height=height, margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"visible": False, "range": [-8, right + 8], "fixedrange": True},
        yaxis={"visible": False,
               "range": [-MAX_HEIGHT / 2 - (62 if labels else 8), upper + 10],
               "fixedrange": True},
        font={"color": THEME_TEXT}, hoverlabel={"font": {"color": THEME_TEXT}},
        dragmode=False, clickmode="event+select",
    ))


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
