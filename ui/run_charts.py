"""Plotly figures of training runs, built only from stored metric series.

Input format is the run store's: ``{name: {"steps": [...], "values": [...]}}`` where a vector
series has one list per step, ordered like the run's layer labels. Every figure rebuilds from
stored data, so a reload, a second tab or the Compare page draws the same thing. Long series
are thinned to at most ``MAX_POINTS`` points per line (every k-th point, last one kept).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.colors import sample_colorscale

from ui.charts import PALETTE, _fig, fit_log_axes, ink_axes
from ui.text import plot_text

MAX_POINTS = 1500
Series = dict[str, dict[str, list[Any]]]


def _thin(steps: Sequence[int], values: Sequence[Any]) -> tuple[list[int], list[Any]]:
    n = len(steps)
    if n <= MAX_POINTS:
        return list(steps), list(values)
    k = math.ceil(n / MAX_POINTS)
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    return [steps[i] for i in idx], [values[i] for i in idx]


def _finite(v: Any) -> float | None:
    return v if isinstance(v, int | float) and math.isfinite(v) else None


def ema(values: Sequence[float], alpha: float = 0.1) -> list[float | None]:
    """Exponential moving average for noisy per-batch curves (TensorBoard-style smoothing)."""
    out: list[float | None] = []
    acc: float | None = None
    for v in values:
        f = _finite(v)
        if f is not None:
            acc = f if acc is None else (1 - alpha) * acc + alpha * f
        out.append(acc)
    return out


def depth_colors(n: int) -> list[str]:
    """One colour per layer, from early (purple) to late (yellow-green): Viridis from 0.15 to
    0.85, leaving out its darkest and lightest ends, which vanish on a dark or a light
    background."""
    if n <= 1:
        return [PALETTE[0]] * n
    return sample_colorscale("Viridis", [0.15 + 0.7 * i / (n - 1) for i in range(n)])


def scalar_chart(items: Sequence[tuple[str, str, Series]], names: Sequence[tuple[str, str]],
                 title: str, y_title: str, log_y: bool = False, smooth: bool = False
                 ) -> go.Figure:
    """Lines for scalar series of one or more runs.

    ``items``: (run label, colour, metrics); ``names``: (series name, line label) pairs, drawn
    solid, dashed, dotted... in that order. With ``smooth`` the first series is drawn faint and
    its moving average on top.
    """
    fig = _fig(title, "step", y_title, log_y=log_y)
    for run_label, color, metrics in items:
        _add_lines(fig, run_label, color, metrics, names, smooth)
    return fit_log_axes(fig)


def _add_lines(fig: go.Figure, run_label: str, color: str, metrics: Series,
               names: Sequence[tuple[str, str]], smooth: bool = False) -> None:
    """One run's lines of :func:`scalar_chart`."""
    dashes = ["solid", "dash", "dot", "dashdot"]
    for j, (name, line_label) in enumerate(names):
        series = metrics.get(name)
        if not series or not series["steps"]:
            continue
        x, y = _thin(series["steps"], [_finite(v) for v in series["values"]])
        label = plot_text(f"{run_label} {line_label}".strip())  # run titles are user text
        if smooth and j == 0 and len(y) > 20:
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=label + " (per batch)",
                                     line={"color": color, "width": 1}, opacity=0.3,
                                     showlegend=False, hoverinfo="skip"))
            y = ema(y)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers" if len(x) < 40 else "lines",
                                 name=label, line={"color": color, "dash": dashes[j % 4]}))


def loss_chart(items: Sequence[tuple[str, str, Series]]) -> go.Figure:
    return scalar_chart(items, [("loss", "train"), ("val_loss", "validation")],
                        "Loss", "cross-entropy loss", smooth=True)


def accuracy_chart(items: Sequence[tuple[str, str, Series]]) -> go.Figure:
    fig = scalar_chart(items, [("acc", "train (batch)"), ("val_acc", "validation")],
                       "Accuracy", "accuracy (fraction correct)", smooth=True)
    fig.update_yaxes(range=[0, 1.02])
    return fig


def lr_chart(items: Sequence[tuple[str, str, Series]]) -> go.Figure:
    return scalar_chart(items, [("lr", "")], "Learning rate", "learning rate")


def grad_norm_chart(items: Sequence[tuple[str, str, Series]],
                    clipping: Sequence[bool]) -> go.Figure:
    """Total gradient norm of each run; for a run that clips (``clipping[i]``, its
    ``clip_norm`` set) also the norm after clipping, dashed. Without clipping the two series are
    equal, so only one line is drawn and named."""
    fig = _fig("Total gradient norm", "step", "L2 norm of all gradients (log)", log_y=True)
    for (run_label, color, metrics), clips in zip(items, clipping, strict=True):
        names = ([("grad_norm", "before clipping"), ("grad_norm_clipped", "after clipping")]
                 if clips else [("grad_norm", "" if run_label else "gradient norm")])
        _add_lines(fig, run_label, color, metrics, names)
    return fit_log_axes(fig)


def layer_lines_chart(metrics: Series, labels: Sequence[str], name: str = "grad_norm_layer",
                      title: str = "Gradient norm per layer",
                      y_title: str = "L2 norm of the weight gradient (log)") -> go.Figure:
    """One line per layer over steps, coloured from first (purple) to last (yellow) layer."""
    fig = _fig(title, "step", y_title, log_y=True)
    series = metrics.get(name)
    if not series or not series["steps"]:
        return fig
    steps, vectors = _thin(series["steps"], series["values"])
    colors = depth_colors(len(labels))
    for i, label in enumerate(labels):
        y = [_positive(v[i]) if i < len(v) else None for v in vectors]
        fig.add_trace(go.Scatter(x=steps, y=y, mode="lines", name=f"{i + 1}. {label}",
                                 line={"color": colors[i], "width": 1.5},
                                 hovertemplate=f"{label}<br>step %{{x}}<br>%{{y:.3g}}"
                                 "<extra></extra>"))
    # colour encodes depth (first layer purple, last yellow); names are in the hover text
    fig.update_layout(hovermode="closest", showlegend=False)
    return fit_log_axes(fig)


def _positive(v: Any) -> float | None:
    f = _finite(v)
    return f if f is not None and f > 0 else None


def layer_heatmap(metrics: Series, labels: Sequence[str], name: str = "grad_norm_layer",
                  title: str = "log10 gradient norm: layer x step") -> go.Figure:
    """Layers (first at the top) against steps; colour = log10 of the value.

    Vanishing gradients show as a dark band over the first layers; exploding ones as a bright
    band spreading from the last layers.
    """
    fig = _fig(title, "step", "layer (first at the top)")
    series = metrics.get(name)
    if not series or not series["steps"]:
        return fig
    steps, vectors = _thin(series["steps"], series["values"])
    z = [[_log10(v[i]) if i < len(v) else None for v in vectors] for i in range(len(labels))]
    fig.add_trace(go.Heatmap(
        x=steps, y=[f"{i + 1}. {label}" for i, label in enumerate(labels)], z=z,
        colorscale="Viridis", colorbar={"title": "log10"},
        hovertemplate="%{y}<br>step %{x}<br>log10 = %{z:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(height=max(300, 22 * len(labels) + 120), hovermode="closest")
    return fig


def _log10(v: Any) -> float | None:
    f = _positive(v)
    return math.log10(f) if f is not None else None


def gradient_flow_chart(items: Sequence[tuple[str, str, Sequence[str], Sequence[float]]],
                        title: str = "Gradient flow: norm per layer") -> go.Figure:
    """Per-layer gradient norm against layer depth for one or more runs (log scale).

    ``items``: (label, colour, layer labels, one value per layer). A line falling steeply to
    the left is the vanishing-gradient picture.
    """
    fig = _fig(title, "layer (input side -> output side)", "gradient norm (log)", log_y=True)
    for raw, color, layer_labels, values in items:
        label = plot_text(raw)  # run titles and design names are user text
        fig.add_trace(go.Scatter(
            x=list(range(1, len(values) + 1)), y=[_positive(v) for v in values],
            mode="lines+markers", name=label, line={"color": color}, text=list(layer_labels),
            hovertemplate="%{text}<br>%{y:.3g}<extra>" + label + "</extra>"))
    fig.update_layout(hovermode="closest")
    return fit_log_axes(fig)


def activation_stats_chart(metrics: Series, labels: Sequence[str]) -> go.Figure:
    """At the latest statistics step, per activation layer (1 = first): dead-ReLU and saturated
    fractions as bars, and the output's standard deviation as a line on the right axis."""
    fig = _fig("Activation health (latest measurement)", "activation layer (1 = first)",
               "fraction of units")
    x = list(range(1, len(labels) + 1))
    latest = None
    for name, label, color in (("act_dead", "dead ReLU units", PALETTE[1]),
                               ("act_saturated", "saturated sigmoid/tanh units", PALETTE[3])):
        series = metrics.get(name)
        if not series or not series["steps"]:
            continue
        last = max(range(len(series["steps"])), key=lambda i: series["steps"][i])
        latest = series["steps"][last]
        fig.add_trace(go.Bar(x=x, y=series["values"][last], name=label, marker_color=color,
                             text=list(labels), hovertemplate="%{text}<br>%{y:.1%}"
                             "<extra>" + label + "</extra>"))
    std = metrics.get("act_std")
    if std and std["steps"]:
        last = max(range(len(std["steps"])), key=lambda i: std["steps"][i])
        fig.add_trace(go.Scatter(x=x, y=std["values"][last], name="output std (right axis)",
                                 mode="lines+markers", yaxis="y2", text=list(labels),
                                 line={"color": PALETTE[0]},
                                 hovertemplate="%{text}<br>std %{y:.3g}<extra></extra>"))
        fig.update_layout(yaxis2={"title": "standard deviation", "overlaying": "y",
                                  "side": "right", "showgrid": False, "rangemode": "tozero"})
        ink_axes(fig)
    fig.update_yaxes(range=[0, 1], selector={"overlaying": None})
    fig.update_layout(yaxis={"range": [0, 1]}, hovermode="closest")
    if latest is not None:
        fig.update_layout(title=f"Activation health at step {latest}")
    return fig
