"""Figures and pictures of what a trained network learned, from :mod:`playground.results`.

Conventions: the confusion matrix has the true class down the side (first class at the top)
and the predicted class along the bottom, as scikit-learn's ``ConfusionMatrixDisplay``; its
colour is the row-normalised share, so a class with few examples is as readable as a large one,
and the cells are labelled with counts or percentages. Pictures (validation images, filters,
feature maps, saliency) are numpy arrays in 0..1 enlarged by whole-pixel repetition, so a
32-pixel image stays sharp when shown 128 pixels wide. Class names come from the data set
registry, never from users, but go through :func:`ui.text.plot_text` anyway.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from ui.charts import PALETTE, _fig
from ui.text import plot_text

CLASS_COLOURS = [*PALETTE, "#bcbd22", "#7f7f7f"]


def confusion_figure(ev: Any, normalised: bool) -> go.Figure:
    """The confusion matrix of a :class:`playground.results.EvalResult`."""
    labels = [plot_text(c) for c in ev.labels]
    rows = [plot_text(c) for c in ev.classes]
    counts = np.asarray(ev.confusion)
    share = np.asarray(ev.confusion_norm)
    text = ([[f"{100 * v:.0f}%" if c else "" for v, c in zip(r, rc, strict=True)]
             for r, rc in zip(share, counts, strict=True)] if normalised else
            [[str(int(c)) if c else "" for c in r] for r in counts])
    title = ("Confusion matrix: share of each true class" if normalised
             else "Confusion matrix: counts")
    fig = _fig(title, "predicted class", "true class")
    fig.add_trace(go.Heatmap(
        x=labels, y=rows, z=share.tolist(), zmin=0.0, zmax=1.0, colorscale="Blues",
        text=text, texttemplate="%{text}", customdata=counts.tolist(),
        colorbar={"title": "share"},
        hovertemplate="true %{y}<br>predicted %{x}<br>%{customdata} examples "
                      "(%{z:.1%} of the class)<extra></extra>"))
    side = max(len(labels), len(rows))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_xaxes(type="category", tickangle=-35)
    fig.update_layout(height=max(340, 34 * side + 170), hovermode="closest",
                      margin={"l": 120, "r": 20, "t": 40, "b": 110})
    return fig


def per_class_figure(ev: Any) -> go.Figure:
    """Accuracy of each class (recall), with the overall accuracy as a dashed line."""
    names = [plot_text(c) for c in ev.classes]
    values = [None if ev.per_class[c] is None else 100 * ev.per_class[c] for c in ev.classes]
    fig = _fig("Accuracy per class", "class", "accuracy (%)")
    fig.add_trace(go.Bar(x=names, y=values, marker_color=PALETTE[0],
                         hovertemplate="%{x}: %{y:.1f}%<extra></extra>"))
    fig.add_hline(y=100 * ev.accuracy, line_dash="dash", line_color=PALETTE[1],
                  annotation_text=f"all: {100 * ev.accuracy:.1f}%",
                  annotation_position="top left")
    fig.update_yaxes(range=[0, 105])
    fig.update_xaxes(tickangle=-35)
    fig.update_layout(hovermode="closest", showlegend=False,
                      margin={"l": 60, "r": 20, "t": 40, "b": 110})
    return fig


def boundary_figure(b: Any) -> go.Figure:
    """The decision boundary of a network on a 2-D point set: the predicted class over the
    plane (lighter where the network is less sure) with the validation points on top."""
    fig = _fig("Decision boundary (validation points on top)", "x1", "x2")
    k = max(len(b.labels), 1)
    colours = [CLASS_COLOURS[i % len(CLASS_COLOURS)] for i in range(k)]
    # one discrete colour per class: a stepped colour scale over 0..k-1
    scale: list[list[Any]] = []
    for i, c in enumerate(colours):
        lo, hi = i / k, (i + 1) / k
        scale += [[lo, c], [hi, c]]
    fig.add_trace(go.Heatmap(
        x=np.asarray(b.xs), y=np.asarray(b.ys), z=np.asarray(b.pred), zmin=-0.5,
        zmax=k - 0.5, colorscale=scale, showscale=False, opacity=0.35,
        customdata=np.asarray(b.prob),
        hovertemplate="(%{x:.2f}, %{y:.2f}): class %{z}, p = %{customdata:.2f}"
                      "<extra></extra>"))
    pts = np.asarray(b.points)
    ys = np.asarray(b.y)
    for i, name in enumerate(b.classes):
        mine = ys == i
        fig.add_trace(go.Scatter(
            x=pts[mine, 0].tolist(), y=pts[mine, 1].tolist(), mode="markers",
            name=plot_text(name),
            marker={"color": colours[i], "size": 6, "line": {"width": 0.5, "color": "white"}},
            hovertemplate="(%{x:.2f}, %{y:.2f})<extra>" + plot_text(name) + "</extra>"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    fig.update_layout(hovermode="closest", height=460)
    return fig


def enlarge(image: np.ndarray, side: int) -> np.ndarray:
    """``image`` (H, W[, C]) repeated whole pixels at a time to about ``side`` pixels."""
    h, w = image.shape[:2]
    k = max(1, side // max(h, w, 1))
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def unit_scale(a: np.ndarray) -> np.ndarray:
    """``a`` scaled to 0..1 by its own range (a constant array becomes 0.5)."""
    a = np.asarray(a, dtype=np.float32)
    lo, hi = float(a.min()), float(a.max())
    if not math.isfinite(lo) or not math.isfinite(hi) or hi - lo < 1e-12:
        return np.full_like(a, 0.5)
    return (a - lo) / (hi - lo)


def mosaic(maps: np.ndarray, columns: int = 8, pad: int = 1, each: int = 48) -> np.ndarray:
    """Feature maps (C, H, W) as one grey picture: each map scaled to 0..1 on its own,
    enlarged to about ``each`` pixels, in rows of ``columns`` with a dark gap between."""
    maps = np.asarray(maps, dtype=np.float32)
    tiles = [enlarge(unit_scale(m), each) for m in maps]
    if not tiles:
        return np.zeros((1, 1), dtype=np.float32)
    th, tw = tiles[0].shape
    cols = min(columns, len(tiles))
    rows = math.ceil(len(tiles) / cols)
    out = np.zeros((rows * (th + pad) - pad, cols * (tw + pad) - pad), dtype=np.float32)
    for i, t in enumerate(tiles):
        r, c = divmod(i, cols)
        out[r * (th + pad): r * (th + pad) + th, c * (tw + pad): c * (tw + pad) + tw] = t
    return out


def filter_tiles(images: np.ndarray, each: int = 40) -> list[np.ndarray]:
    """First-layer filters (O, k, k[, 3]) in 0..1 as enlarged tiles."""
    return [enlarge(np.asarray(img, dtype=np.float32), each) for img in images]


def saliency_overlay(image: np.ndarray, sal: np.ndarray, side: int = 192) -> np.ndarray:
    """The image in grey with the saliency map (scaled to 0..1) laid over it in red: bright
    red where the class score is most sensitive to the pixel."""
    img = np.asarray(image, dtype=np.float32)
    grey = img.mean(axis=2) if img.ndim == 3 else img
    s = unit_scale(sal)
    rgb = np.stack([0.45 * grey + 0.55 * s, 0.45 * grey, 0.45 * grey], axis=2)
    return enlarge(np.clip(rgb, 0.0, 1.0), side)


def grid_caption(item: Any) -> str:
    """'✗ circle → square (93%)' for a wrong prediction, '✓ circle (88%)' for a right one."""
    if item.correct:
        return f"✓ {item.true_label} ({item.confidence:.0%})"
    return f"✗ {item.true_label} → {item.pred_label} ({item.confidence:.0%})"


def top_classes(probs: Sequence[float], labels: Sequence[str], k: int = 3
                ) -> list[tuple[str, float]]:
    """The ``k`` most probable classes, most probable first."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])[:k]
    return [(labels[i], float(probs[i])) for i in order]
