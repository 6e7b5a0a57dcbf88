"""The Compare page's architecture diagrams: one column per item, side by side, one scale.

Each design (a preset, a saved design, the design open on Build, a run's design as it trained)
is drawn as its cuboid diagram (:mod:`playground.diagram`). All of them share one
:class:`~playground.diagram.DiagramScale` and one extent of the axes, so in columns of equal
width a box of the same size means the same feature map, and a longer network is a longer
row of boxes. A torchvision model has no playground design: its column says where its module
graph is drawn instead (the Build page's Diagram tab).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.compare import CompareItem
from playground.diagram import Diagram, build_diagram, diagram_scale
from ui.diagram import PNG_CONFIG, diagram_figure
from ui.text import html_text

HEIGHT = 220  # px: every column's figure has this height


def diagrams(items: list[tuple[CompareItem, str, Any]]) -> list[Any]:
    """Draw the diagrams of ``(item, colour, analysis or None)``, one column each, in order;
    return the figures drawn."""
    drawn: dict[int, Diagram] = {}
    analysed = [(i, a) for i, (item, _, a) in enumerate(items)
                if a is not None and item.spec is not None]
    if not analysed:
        return []
    st.subheader("Architecture diagrams")
    scale = diagram_scale(a for _, a in analysed)
    for i, analysis in analysed:
        drawn[i] = build_diagram(analysis, scale=scale)
    x_max = max(d.width for d in drawn.values())
    top = max(d.top for d in drawn.values())
    figures = []
    for i, (col, (item, color, _)) in enumerate(zip(st.columns(len(items)), items,
                                                    strict=True)):
        with col:
            st.markdown(
                f"<div style='font-weight:600;border-left:6px solid {color};padding-left:8px'>"
                f"{html_text(item.label)}</div>", unsafe_allow_html=True)
            diagram = drawn.get(i)
            if diagram is None:
                st.caption("A torchvision model: its module graph is on the Build page "
                           "(Diagram tab)." if item.zoo else "No design to draw.")
                continue
            fig = diagram_figure(diagram, height=HEIGHT, x_max=x_max, top=top,
                                 labels=False)  # too narrow: the hover names boxes
            st.plotly_chart(fig, width="stretch", key=f"cmp_diagram_{i}", config=PNG_CONFIG)
            figures.append(fig)
    st.caption("One scale for all: box height follows the feature-map side, thickness the "
               "channels, length the number of layers; orange arcs are skip connections. "
               "Hover a box for its numbers.")
    return figures
