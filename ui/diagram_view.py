"""The Build page's Diagram tab: the cuboid figure of a design, or the module graph of a
torchvision model, with the formulas of a clicked box and downloads for slides.

Geometry and graphs come from :mod:`playground.diagram` and :mod:`playground.graph`; this
module only draws them and keeps the choices (open stages, graph detail) in the session.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.analysis import Analysis, explain_row
from playground.diagram import build_diagram, to_svg
from playground.errors import PlaygroundError
from ui.diagram import PNG_CONFIG, diagram_figure, selected_key
from ui.text import md_escape


@st.cache_data(max_entries=16, show_spinner="Tracing the model...")
def _zoo_dot(name: str, input_shape: tuple[int, ...], num_classes: int,
             depth: int | None) -> tuple[str, int, int]:
    """(DOT text, depth used, deepest depth) of a torchvision model's module graph."""
    from playground.graph import module_graph, to_dot
    from playground.targets import analyse_zoo
    from playground.zoo import build_zoo_model

    analysis = analyse_zoo(name, input_shape, num_classes)
    graph = module_graph(build_zoo_model(name, num_classes, device="meta"), analysis, depth)
    return to_dot(graph), graph.depth, graph.max_depth


def _weight_row(analysis: Analysis, rows: tuple[int, ...]) -> Any | None:
    """The box's main weight layer (its first conv or linear), else its first row."""
    picked = [analysis.rows[i] for i in rows if i < len(analysis.rows)]
    for row in picked:
        if row.type.startswith(("Conv", "Linear")) and "shortcut" not in row.name:
            return row
    return picked[0] if picked else None


def diagram_tab(analysis: Analysis, zoo: dict[str, Any] | None, title: str) -> None:
    if zoo:
        _graph_tab(zoo)
        return
    collapsed = build_diagram(analysis).collapsed
    opened = st.session_state.get("diagram_open", [])
    diagram = build_diagram(analysis, expanded=[s for s in opened if s in collapsed])
    key = st.session_state.get("diagram_pick")
    event = st.plotly_chart(diagram_figure(diagram, selected=key), width="stretch",
                            on_select="rerun", selection_mode="points", key="diagram_chart",
                            config=PNG_CONFIG)
    picked = selected_key(event)
    if picked is not None and picked != key:
        st.session_state.diagram_pick = key = picked
    st.caption("Each box is a layer or block: its height follows the feature-map side, its "
               "thickness the channels. Orange arcs are skip connections. Hover for the "
               "numbers, click a box for its formulas.")
    if collapsed:
        st.multiselect("Show every block of", collapsed, key="diagram_open",
                       help="Long stages are drawn as one box; open them here.")
    box = next((b for b in diagram.boxes if b.key == key), None)
    if box is not None and box.rows:
        row = _weight_row(analysis, box.rows)
        if row is not None:
            st.markdown(f"**{md_escape(box.label)}**: {md_escape(row.name)} "
                        f"({md_escape(row.type)})")
            st.code(explain_row(row), language=None, wrap_lines=True)
    name = (title or "design").replace(" ", "_")
    st.download_button("Download SVG", to_svg(diagram, title), file_name=f"{name}.svg",
                       mime="image/svg+xml", key="dl_diagram_svg", icon=":material/download:",
                       help="For slides; the camera icon over the figure saves a PNG.")


def _graph_tab(zoo: dict[str, Any]) -> None:
    name, shape = zoo["name"], tuple(zoo["input"])
    classes = int(zoo.get("num_classes", 1000))
    depth = st.session_state.get("graph_depth")
    try:
        dot, used, deepest = _zoo_dot(name, shape, classes, depth)
    except PlaygroundError as err:  # the analysis or fx refused the model
        st.info(f"No graph for this model: {md_escape(err)}")
        return
    if deepest > 1:
        st.slider("Detail", 1, deepest, used, key="graph_depth",
                  help="1: the model's top-level parts; higher: open its blocks (skip "
                       "connections show as edges into an addition).")
    st.graphviz_chart(dot, width="stretch")
    st.download_button("Download DOT", dot, file_name=f"{name}.dot", mime="text/vnd.graphviz",
                       key="dl_graph_dot", icon=":material/download:",
                       help="Graphviz source: `dot -Tsvg` turns it into an SVG for slides.")
