"""Plotly figures of the lessons' live figures, from the plain data of ``playground.lessons``.

``LESSON_CHARTS[lesson_id](data)`` returns the lesson's figures (one or two), drawn side by
side by the Learn page. Colours: ``ui.charts.PALETTE`` in the order of the data's lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import plotly.graph_objects as go

from ui.charts import PALETTE, _fig, fit_log_axes
from ui.run_charts import gradient_flow_chart


def _color(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _pos(v: float) -> float | None:
    return v if isinstance(v, int | float) and math.isfinite(v) and v > 0 else None


def gradients(data: dict[str, Any]) -> list[go.Figure]:
    items = [(f"{line['label']} — first/last {line['ratio']:.1e}", _color(i), line["layers"],
              line["grad_norm"]) for i, line in enumerate(data["lines"])]
    return [gradient_flow_chart(items, f"Gradient norm per layer at initialisation "
                                f"({data['depth']} hidden layers)")]


def activations(data: dict[str, Any]) -> list[go.Figure]:
    fig = _fig("Activations (solid) and their slopes (dashed)", "input x", "output / slope")
    for i, c in enumerate(data["curves"]):
        fig.add_trace(go.Scatter(x=data["x"], y=c["y"], name=c["name"], mode="lines",
                                 line={"color": _color(i), "width": 2.5}))
        fig.add_trace(go.Scatter(x=data["x"], y=c["slope"], name=f"slope of {c['name']}",
                                 mode="lines", line={"color": _color(i), "dash": "dash"}))
    fig.update_yaxes(range=[-1.3, 2.2])
    return [fig]


def _std_lines(data: dict[str, Any], title: str) -> go.Figure:
    fig = _fig(title, "layer", "standard deviation of the output (log)", log_y=True)
    for i, line in enumerate(data["lines"]):
        fig.add_trace(go.Scatter(x=list(range(1, len(line["std"]) + 1)),
                                 y=[_pos(v) for v in line["std"]], name=line["label"],
                                 mode="lines+markers", line={"color": _color(i)}))
    fig.update_layout(hovermode="x unified")
    return fit_log_axes(fig)


def init(data: dict[str, Any]) -> list[go.Figure]:
    return [_std_lines(data, f"Signal through {data['depth']} {data['activation']} layers "
                       f"of {data['width']} units")]


def batchnorm(data: dict[str, Any]) -> list[go.Figure]:
    return [_std_lines(data, f"Signal through {data['depth']} ReLU layers, PyTorch's "
                       "default init")]


def residual(data: dict[str, Any]) -> list[go.Figure]:
    items = [(f"{line['label']} — largest/smallest {line['spread']:.0f}x", _color(i),
              line["layers"], line["grad_norm"]) for i, line in enumerate(data["lines"])]
    return [gradient_flow_chart(items, f"Gradient norm per layer at initialisation "
                                f"({data['depth']} layers)")]


def clipping(data: dict[str, Any]) -> list[go.Figure]:
    gn = _fig("Gradient norm before clipping", "step", "L2 norm of all gradients (log)",
              log_y=True)
    loss = _fig("Training loss", "step", "cross-entropy loss", log_y=True)
    for i, run in enumerate(data["runs"]):
        label = f"{run['label']} ({run['status']})"
        gn.add_trace(go.Scatter(x=run["steps"], y=[_pos(v) for v in run["grad_norm"]],
                                name=label, mode="lines+markers", line={"color": _color(i)}))
        loss.add_trace(go.Scatter(x=run["loss_steps"], y=[_pos(v) for v in run["loss"]],
                                  name=label, mode="lines", line={"color": _color(i)}))
    gn.add_hline(y=data["clip"], line_dash="dash", line_color="grey",
                 annotation_text=f"clip at {data['clip']:g}")
    return [fit_log_axes(gn), fit_log_axes(loss)]


def schedules(data: dict[str, Any]) -> list[go.Figure]:
    fig = _fig("Learning-rate schedules", "update", "learning rate")
    for i, c in enumerate(data["curves"]):
        params = ", ".join(f"{k} {v:g}" for k, v in c["params"].items())
        fig.add_trace(go.Scatter(x=data["steps"], y=c["lr"], mode="lines",
                                 name=c["title"] + (f" ({params})" if params else ""),
                                 line={"color": _color(i), "width": 2.5}))
    return [fig]


def optimizers(data: dict[str, Any]) -> list[go.Figure]:
    paths = _fig("Paths on the valley (x² + 10 y²) / 2", "x", "y")
    # one mid grey for every contour line: a white-to-black scale loses half of its lines on
    # either the light or the dark theme's background
    paths.add_trace(go.Contour(x=data["grid_x"], y=data["grid_y"], z=data["grid_z"],
                               showscale=False, line={"color": "rgba(128, 128, 128, 0.6)"},
                               contours={"coloring": "none"}, hoverinfo="skip",
                               ncontours=18))
    loss = _fig("Loss per step", "step", "f(x, y) (log)", log_y=True)
    for i, p in enumerate(data["paths"]):
        label = f"{p['title']} (lr {p['lr']:g})"
        paths.add_trace(go.Scatter(x=p["x"], y=p["y"], mode="lines+markers", name=label,
                                   line={"color": _color(i)}, marker={"size": 4}))
        loss.add_trace(go.Scatter(x=list(range(len(p["loss"]))), y=[_pos(v) for v in p["loss"]],
                                  mode="lines", name=label, line={"color": _color(i)}))
    paths.update_layout(hovermode="closest", showlegend=False)
    paths.update_yaxes(scaleanchor="x", scaleratio=1, range=[-2, 2])
    paths.update_xaxes(range=[-4.5, 4.5])
    return [paths, fit_log_axes(loss)]


def batch(data: dict[str, Any]) -> list[go.Figure]:
    fig = _fig("How noisy is a mini-batch gradient?", "batch size B (log)",
               "||g_B - g|| / ||g|| (log)", log_y=True, log_x=True)
    fig.add_trace(go.Scatter(x=data["sizes"], y=data["rel_error"], mode="lines+markers",
                             name="measured", line={"color": _color(0), "width": 3}))
    fig.add_trace(go.Scatter(x=data["sizes"], y=data["reference"], mode="lines",
                             name="1/√B", line={"color": "grey", "dash": "dash"}))
    return [fit_log_axes(fig)]


def shapes(data: dict[str, Any]) -> list[go.Figure]:
    rows = data["rows"]
    fig = _fig(f"Receptive field through {data['title']}", "layer (conv and pool, in order)",
               "pixels of the input")
    names = [r["layer"] for r in rows]
    fig.add_trace(go.Scatter(x=list(range(1, len(rows) + 1)), y=[r["rf"] for r in rows],
                             mode="lines+markers", name="receptive field (px)", text=names,
                             line={"color": _color(4)},
                             hovertemplate="%{text}<br>RF %{y} px<extra></extra>"))
    fig.add_trace(go.Scatter(x=list(range(1, len(rows) + 1)), y=[r["jump"] for r in rows],
                             mode="lines", name="jump (px)", text=names,
                             line={"color": _color(5), "dash": "dot"},
                             hovertemplate="%{text}<br>jump %{y} px<extra></extra>"))
    side = max(data["input"][1:]) if len(data["input"]) == 3 else 1
    fig.add_hline(y=side, line_dash="dash", line_color="grey",
                  annotation_text=f"input {side} px")
    return [fig]


def costs(data: dict[str, Any]) -> list[go.Figure]:
    models = data["models"]
    labels = [m["label"] for m in models]
    totals = _fig("Parameters and MACs (log)", "", "count (log)", log_y=True)
    totals.add_trace(go.Bar(x=labels, y=[m["params"] for m in models], name="parameters",
                            marker_color=_color(2), hovertemplate="%{x}<br>%{y:,}"))
    totals.add_trace(go.Bar(x=labels, y=[m["macs"] for m in models], name="MACs (fvcore)",
                            marker_color=_color(3), hovertemplate="%{x}<br>%{y:,}"))
    totals.update_layout(barmode="group", hovermode="closest")
    memory = _fig(f"Training memory, batch {data['batch_size']} (Adam)", "", "GiB")
    for i, (key, name) in enumerate((("weights", "weights"), ("gradients", "gradients"),
                                     ("optimizer_state", "Adam state"),
                                     ("activations", "saved activations"))):
        memory.add_trace(go.Bar(x=labels, y=[m["memory"][key] / 2**30 for m in models],
                                name=name, marker_color=_color(i),
                                hovertemplate="%{x}<br>%{y:.2f} GiB"))
    memory.update_layout(barmode="stack", hovermode="closest")
    return [fit_log_axes(totals), memory]


def draw(lesson_id: str, data: dict[str, Any]) -> list[go.Figure]:
    """The figures of lesson ``lesson_id`` for its figure data."""
    return LESSON_CHARTS[lesson_id](data)


LESSON_CHARTS: dict[str, Callable[[dict[str, Any]], list[go.Figure]]] = {
    "gradients": gradients, "activations": activations, "init": init, "batchnorm": batchnorm,
    "residual": residual, "clipping": clipping, "schedules": schedules,
    "optimizers": optimizers, "batch": batch, "shapes": shapes, "costs": costs,
}
