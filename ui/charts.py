"""Plotly figures built from plain analysis rows and stored run metrics (never from live state).

Every figure has axis titles with units and hover text; colours are consistent per item.

Theme: figures set no background or grid colour, so ``st.plotly_chart``'s default
``theme="streamlit"`` fills them in from the app's light or dark theme (Streamlit merges its
colours into ``layout.template``; a colour set on the layout itself wins over it, which is how
white charts with near-white text came about in the dark theme). Text is the one colour set
here, and only as Streamlit's placeholder for its theme's body-text colour (:data:`THEME_TEXT`),
which the browser swaps for the real one: Streamlit's own choice for axis labels, a mid grey,
reaches only 3.7:1 contrast on the light theme's white (WCAG asks 4.5:1). Trace colours
(``PALETTE``, Viridis) are mid-tone so they read on either background.

Log axes: :func:`log_ticks` picks tick labels from the data's range (decades, with 2 and 5
only when the axis spans at most two decades); every builder that makes a log axis calls
:func:`fit_log_axes` after adding its traces.
"""

from __future__ import annotations

import copy
import functools
import math
from collections.abc import Iterable, Sequence
from decimal import Decimal
from numbers import Real
from typing import Any

import numpy as np
import plotly.graph_objects as go
from streamlit.elements.lib.streamlit_plotly_theme import GRAY_90

from ui.memo import PerObject

# Streamlit's stand-in for its theme's body-text colour ("#000037"): ``st.plotly_chart``
# replaces it in the browser with the light or dark theme's text colour (the colour of its
# chart legends); outside Streamlit it is near-black, which reads on Plotly's white.
THEME_TEXT = GRAY_90
PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2",
           "#17becf"]
_LAYOUT = {
    "margin": {"l": 60, "r": 20, "t": 40, "b": 100},
    "height": 390,
    "hovermode": "x unified",
    "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "xanchor": "left", "x": 0.0},
    # No background or grid colours: they come from the app's theme (see the module docstring).
    "font": {"size": 14, "color": THEME_TEXT},
    "hoverlabel": {"font": {"color": THEME_TEXT}},
}

# Plotly's own look for a log axis before fit_log_axes has seen the data: powers as 10^-8
# rather than SI's "10n" (a gradient norm has no unit).
_LOG_AXIS = {"type": "log", "exponentformat": "power"}

# Tick density: labelled decades are thinned to every k-th so at most this many show.
MAX_DECADE_LABELS = 13
# Up to this many decades the labels include 2 and 5 (1, 2, 5, 10, 20, 50, 100).
MAX_SPAN_FOR_MINOR_LABELS = 2.0
_SI = {3: "k", 6: "M", 9: "G", 12: "T", 15: "P"}
_MINUS, _TIMES = "\u2212", "\u00d7"  # typographic minus and multiplication sign


@functools.lru_cache(maxsize=256)
def _base_layout(title: str, x_title: str, y_title: str, log_y: bool,
                 log_x: bool) -> dict[str, Any]:
    """The layout of :func:`_fig` as plain, already validated data (built once per title)."""
    fig = go.Figure()
    fig.update_layout(title=title, xaxis_title=x_title, yaxis_title=y_title, **_LAYOUT)
    ink_axes(fig)
    if log_y:
        fig.update_yaxes(**_LOG_AXIS)
    if log_x:
        fig.update_xaxes(**_LOG_AXIS)
    return fig.layout.to_plotly_json()


def _fig(title: str, x_title: str, y_title: str, log_y: bool = False,
         log_x: bool = False) -> go.Figure:
    """An empty figure in the common look; a builder asking for a log axis adds its traces,
    then calls :func:`fit_log_axes`.

    Plotly validates every property it is given: three ``update_*`` calls on an empty figure
    cost about 20 ms, most of a live run view's poll (issue 12). The layout is therefore
    validated once per title (:func:`_base_layout`) and each figure is made from a copy of
    it without validating it again; every later change (traces, ``update_layout``...) is
    validated as usual (:func:`_validating`).
    """
    layout = copy.deepcopy(_base_layout(str(title), str(x_title), str(y_title), log_y, log_x))
    try:
        return _validating(go.Figure(layout=layout, _validate=False))
    except (AttributeError, TypeError):  # another Plotly's internals: validate it again
        return go.Figure(layout=layout)


def _validating(fig: go.Figure) -> go.Figure:
    """Turn validation back on for ``fig`` and every object of its layout (Plotly keeps the
    flag per object: ``_compound_props`` holds the nested ones)."""
    fig._validate = True
    stack: list[Any] = [fig.layout]
    while stack:
        obj = stack.pop()
        obj._validate = True
        stack.extend(obj._compound_props.values())
        for items in obj._compound_array_props.values():
            stack.extend(items or ())
    return fig


def ink_axes(fig: go.Figure) -> go.Figure:
    """Axis labels and titles of every axis ``fig`` has so far in the theme's text colour
    (Streamlit's theme gives them its grey otherwise); call again after adding an axis."""
    fig.update_xaxes(tickfont_color=THEME_TEXT, title_font_color=THEME_TEXT)
    fig.update_yaxes(tickfont_color=THEME_TEXT, title_font_color=THEME_TEXT)
    return fig


def _label(mantissa: Decimal, exponent: int, powers: bool) -> str:
    """A short label for ``mantissa`` x 10^``exponent`` (1 <= mantissa < 10).

    ``powers``: write 10<sup>n</sup> outside 1..999 (for axes reaching below 0.001, where
    "0.00001" would be hard to count); otherwise decimals below 1 and k/M/G/T/P from 1k up.
    """
    m = format(mantissa.normalize(), "f")
    if (powers and not 0 <= exponent <= 2) or exponent > 17:
        sup = "10<sup>" + str(exponent).replace("-", _MINUS) + "</sup>"
        return sup if mantissa == 1 else m + _TIMES + sup
    si = 3 * min(exponent // 3, 5) if exponent >= 3 else 0
    return format(mantissa.scaleb(exponent - si).normalize(), "f") + _SI.get(si, "")


def _split(value: Decimal) -> tuple[Decimal, int]:
    """``value`` as (mantissa in [1, 10), exponent)."""
    exponent = value.adjusted()
    return value.scaleb(-exponent), exponent


def _linear_ticks(lo: float, hi: float) -> list[Decimal]:
    """Evenly spaced round values (step 1, 2 or 5 x 10^k, 4 to 8 of them) over [lo, hi], one
    step beyond each end: for ranges too narrow to hold three of 1, 2, 5 x 10^n."""
    rough = (hi - lo) / 5 if hi > lo else hi / 5
    e = math.floor(math.log10(rough))
    step = next(Decimal(m).scaleb(e) for m in (1, 2, 5, 10) if m * 10.0**e >= rough)
    first = math.floor(lo / float(step)) - 1
    last = math.ceil(hi / float(step)) + 1
    return [k * step for k in range(max(first, 1), last + 1)]


def log_ticks(lo: float, hi: float) -> tuple[list[float], list[str]]:
    """Tick values and labels for a log axis showing data from ``lo`` to ``hi`` (both > 0).

    - more than two decades: decades only (1, 10, 100, 1k ... or 10^-8 ... 1), every k-th
      when more than :data:`MAX_DECADE_LABELS` would show;
    - at most two decades, or too few decades inside the data to read it by: 1, 2 and 5 of
      each decade (1, 2, 5, 10, 20, 50, 100);
    - too narrow for three of those (2.2 to 9): round linear steps (4, 6, 8).

    Ticks run from the decade below ``lo`` to the one above ``hi``; Plotly shows those inside
    the axis range. Labels are decimals down to 0.001 and k/M/G/T/P from 1,000 up; an axis
    reaching below 0.001 is labelled in powers of ten (10^-5) outside 1 to 100.
    """
    if not (0 < lo <= hi and math.isfinite(hi)):
        raise ValueError(f"log axis range must be positive and finite; got {lo}..{hi}")
    a, b = math.log10(lo), math.log10(hi)
    first, last = math.floor(a), math.ceil(b)
    powers = first <= -4
    span = b - a
    decades_inside = math.floor(b + 1e-9) - math.ceil(a - 1e-9) + 1
    if span > MAX_SPAN_FOR_MINOR_LABELS and decades_inside >= 3:
        k = math.ceil((span + 1) / MAX_DECADE_LABELS)
        decades = [n for n in range(first, last + 1) if n % k == 0]
        return ([10.0**n for n in decades],
                [_label(Decimal(1), n, powers) for n in decades])
    values = [Decimal(m).scaleb(n) for n in range(first, last + 1) for m in (1, 2, 5)]
    if sum(lo <= v <= hi for v in values) < 3:
        values = _linear_ticks(lo, hi)
    return [float(v) for v in values], [_label(*_split(v), powers) for v in values]


def log_axis(lo: float, hi: float) -> dict[str, Any]:
    """Layout properties of a log axis showing ``lo`` to ``hi``: the ticks of
    :func:`log_ticks`, written out as an array so Plotly adds no labels of its own."""
    values, labels = log_ticks(lo, hi)
    return {**_LOG_AXIS, "tickmode": "array", "tickvals": values, "ticktext": labels}


def _positive_range(values: Iterable[Any] | None) -> tuple[float, float] | None:
    """Smallest and largest finite positive number in ``values`` (None if there is none)."""
    try:  # numbers and gaps (None -> nan): one vectorised pass over a long series
        arr = np.asarray(values if values is not None else (), dtype=float)
    except (TypeError, ValueError):  # categories: only the numbers among them count
        arr = np.asarray([v for v in values or () if isinstance(v, Real)], dtype=float)
    arr = arr[np.isfinite(arr) & (arr > 0)]
    return (float(arr.min()), float(arr.max())) if arr.size else None


def fit_log_axes(fig: go.Figure) -> go.Figure:
    """Give every log axis of ``fig`` the ticks of :func:`log_axis` for the data drawn on it
    (trace values and horizontal/vertical lines); an axis with no positive value keeps
    Plotly's own ticks. Call after the traces are added."""
    layout = fig.layout
    for letter in ("x", "y"):
        for name in [k for k in layout.to_plotly_json() if k.startswith(f"{letter}axis")]:
            if layout[name].type != "log":
                continue
            ref = letter + name[5:]  # "yaxis2" -> "y2"
            ranges = [_positive_range(getattr(trace, letter, None)) for trace in fig.data
                      if (getattr(trace, f"{letter}axis", None) or letter) == ref]
            ranges += [_positive_range([shape[f"{letter}0"], shape[f"{letter}1"]])
                       for shape in layout.shapes if shape[f"{letter}ref"] == ref]
            ranges = [r for r in ranges if r is not None]
            if ranges:
                layout[name].update(log_axis(min(r[0] for r in ranges),
                                             max(r[1] for r in ranges)))
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
    # Channel ticks at multiples of a power of two (0, 128, 256, 384, 512 for VGG), at most 4
    # steps: left to itself the overlaid axis takes the height axis' tick positions
    # (50, 153, 256, ...). Channel counts are mostly powers of two, so these land on them.
    top = max((r.out_shape[0] for r in spatial), default=1)
    step = 1
    while top > 4 * step:
        step *= 2
    ticks = list(range(0, -(-top // step) * step + 1, step))
    fig.update_layout(yaxis2={"title": "channels", "overlaying": "y", "side": "right",
                              "showgrid": False, "tickmode": "array", "tickvals": ticks,
                              "range": [-0.04 * ticks[-1], 1.06 * ticks[-1]]})
    ink_axes(fig)  # the new right-hand axis too
    # The same margins on the height axis put both zeros on one line.
    side = max((r.out_shape[1] for r in spatial), default=1)
    fig.update_layout(yaxis_range=[-0.04 * side, 1.06 * side])
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
    return fit_log_axes(fig)


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


_ANALYSIS_FIGURES = PerObject(size=32)


def analysis_figures(analysis: Any, log: bool) -> tuple[go.Figure, ...]:
    """The Build page's charts of one analysis: feature map, parameters and MACs per layer
    (log scale or not), receptive field. Built once per analysis and scale and shared by every
    session (``ui/memo.py``): a rerun with the same design sends the same figures."""
    rows = analysis.rows
    side = max(analysis.input_shape[1:]) if len(analysis.input_shape) == 3 else 1
    return _ANALYSIS_FIGURES.get(analysis, log, lambda: (
        feature_map_chart(rows),
        per_layer_bars(rows, "num_params", "Where the parameters live", "parameters", log),
        per_layer_bars(rows, "macs", "Where the compute goes", "MACs (fvcore)", log),
        receptive_field_chart(rows, side)))


def bar_compare(labels: list[str], values: list[float], title: str, y_title: str,
                log_y: bool = False) -> go.Figure:
    fig = _fig(title, "", y_title, log_y=log_y)
    fig.add_trace(go.Bar(x=labels, y=values, marker_color=PALETTE[: len(labels)],
                         hovertemplate="%{x}<br>%{y:,}<extra></extra>"))
    fig.update_layout(hovermode="closest", showlegend=False)
    return fit_log_axes(fig)
