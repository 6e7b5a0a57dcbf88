"""The Build page's Diagram tab: the cuboid figure of a design, or the module graph of a
torchvision model, with the formulas of a clicked box and downloads for slides.

Geometry and graphs come from :mod:`playground.diagram` and :mod:`playground.graph`; this
module only draws them and keeps the choices (open stages, graph detail) in the session.

A click on a box reaches the layer table through the session, since the Layers tab is not
drawn while the Diagram tab is open (lazy tabs) and Streamlit cannot select a table's row
from another run:

- ``diagram_pick``: the key of the picked box (set by a click, kept across reruns and tabs);
- ``diagram_pick_shown``: the pick the layer table has already selected. The Layers tab
  (:func:`diagram_selection`) selects the box's main row (:func:`playground.diagram.main_row`)
  once per click, through the table's own selection state (so its formula panel shows that
  row, and the learner can click another row afterwards), and tints all the box's rows while
  the pick lasts; "Clear" ends it.

The chart's click is read from its session state before the chart is drawn, so the run the
click causes already outlines the picked box.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from playground.analysis import Analysis, explain_row
from playground.diagram import Box, Diagram, build_diagram, main_row, to_svg
from playground.errors import PlaygroundError
from ui.diagram import PNG_CONFIG, diagram_figure, selected_key
from ui.tables import HIGHLIGHT, MAIN_COLUMNS, layer_rows
from ui.text import md_escape

PICK = "diagram_pick"
SHOWN = "diagram_pick_shown"
CHART = "diagram_chart"
_EVENT = "_diagram_event"  # the chart's last selection, to tell a new click from an old one


@st.cache_data(max_entries=16, show_spinner="Tracing the model...")
def _zoo_graph(name: str, input_shape: tuple[int, ...], num_classes: int,
               depth: int | None) -> Any:
    """The module graph (:class:`playground.graph.Graph`) of a torchvision model."""
    from playground.graph import module_graph
    from playground.targets import analyse_zoo
    from playground.zoo import build_zoo_model

    analysis = analyse_zoo(name, input_shape, num_classes)
    return module_graph(build_zoo_model(name, num_classes, device="meta"), analysis, depth)


def current_diagram(analysis: Analysis) -> Diagram:
    """The diagram as the Diagram tab draws it: long stages collapsed unless opened."""
    collapsed = build_diagram(analysis).collapsed
    opened = st.session_state.get("diagram_open", [])
    return build_diagram(analysis, expanded=[s for s in opened if s in collapsed])


def diagram_selection(analysis: Analysis) -> tuple[Box | None, int | None]:
    """For the Layers tab: the picked box of this design (None: none, or a key this design
    lacks) and the row index to select in the table now (None: already selected once)."""
    key = st.session_state.get(PICK)
    if key is None:
        return None, None
    box = next((b for b in current_diagram(analysis).boxes if b.key == key), None)
    if box is None or not box.rows:
        return None, None
    select = None
    if st.session_state.get(SHOWN) != key:
        row = main_row(analysis, box)
        select = row.index if row is not None else None
        st.session_state[SHOWN] = key
    return box, select


def _clear_pick() -> None:
    st.session_state[PICK] = None
    st.session_state[SHOWN] = None


def _to_layers() -> None:
    st.session_state.build_tab = "Layers"


def pick_note(box: Box) -> None:
    """Above the layer table: which box's rows are tinted, and a way to stop."""
    c1, c2 = st.columns([5, 1], vertical_alignment="center")
    c1.caption(f"Tinted: the rows of the diagram box **{md_escape(box.label)}** "
               f"({len(box.rows)} row{'s' if len(box.rows) != 1 else ''}).")
    c2.button("Clear", key="diagram_pick_clear", on_click=_clear_pick,
              help="Stop tinting the diagram box's rows.")


def _box_rows(analysis: Analysis, box: Box, main: int | None) -> None:
    """The box's rows of the layer table, its main row tinted."""
    rows = [r for r in layer_rows(analysis, {}) if r["#"] in set(box.rows)]
    frame = pd.DataFrame(rows, columns=["#", *MAIN_COLUMNS])
    styled = frame.style.apply(
        lambda r: [HIGHLIGHT if r["#"] == main else ""] * len(r), axis=1).format(
        {"params": "{:,}", "MACs": "{:,}", "RF (px)": "{:.0f}"}, na_rep="")
    st.dataframe(styled, hide_index=True, width="stretch", key="diagram_rows",
                 height=min(38 + 35 * len(rows), 280), column_order=list(MAIN_COLUMNS))


def _read_click() -> str | None:
    """The picked box key after the chart's latest click (read before the chart is drawn)."""
    picked = selected_key(st.session_state.get(CHART))
    if picked != st.session_state.get(_EVENT):
        st.session_state[_EVENT] = picked
        if picked is not None:  # a new click: the layer table selects the box afresh
            st.session_state[PICK] = picked
            st.session_state[SHOWN] = None
    return st.session_state.get(PICK)


def diagram_tab(analysis: Analysis, zoo: dict[str, Any] | None, title: str) -> None:
    if zoo:
        _graph_tab(zoo)
        return
    diagram = current_diagram(analysis)
    key = _read_click()
    event = st.plotly_chart(diagram_figure(diagram, selected=key), width="stretch",
                            on_select="rerun", selection_mode="points", key=CHART,
                            config=PNG_CONFIG)
    # a new outline is a new chart with no selection: a click on the same box then counts again
    st.session_state[_EVENT] = selected_key(event)
    st.caption("Each box is a layer or block: its height follows the feature-map side, its "
               "thickness the channels. Orange arcs are skip connections. Hover for the "
               "numbers; click a box for its formulas and its rows in the layer table.")
    collapsible = build_diagram(analysis).collapsed
    if collapsible:
        st.multiselect("Show every block of", collapsible, key="diagram_open",
                       help="Long stages are drawn as one box; open them here.")
    box = next((b for b in diagram.boxes if b.key == key), None)
    if box is not None and box.rows:
        row = main_row(analysis, box)
        if row is not None:
            st.markdown(f"**{md_escape(box.label)}**: {md_escape(row.name)} "
                        f"({md_escape(row.type)})")
            st.code(explain_row(row), language=None, wrap_lines=True)
        _box_rows(analysis, box, row.index if row is not None else None)
        st.button("Show in the layer table", key="diagram_to_layers", on_click=_to_layers,
                  icon=":material/table_rows:",
                  help="Open the Layers tab with this box's rows tinted and its main row "
                  "selected.")
    name = (title or "design").replace(" ", "_")
    st.download_button("Download SVG", to_svg(diagram, title), file_name=f"{name}.svg",
                       mime="image/svg+xml", key="dl_diagram_svg", icon=":material/download:",
                       help="For slides; the camera icon over the figure saves a PNG.")


def _graph_tab(zoo: dict[str, Any]) -> None:
    from playground.graph import to_dot
    from playground.graph import to_svg as graph_svg

    name, shape = zoo["name"], tuple(zoo["input"])
    classes = int(zoo.get("num_classes", 1000))
    depth = st.session_state.get("graph_depth")
    try:
        graph = _zoo_graph(name, shape, classes, depth)
    except PlaygroundError as err:  # the analysis or fx refused the model
        st.info(f"No graph for this model: {md_escape(err)}")
        return
    if graph.max_depth > 1:
        st.slider("Detail", 1, graph.max_depth, graph.depth, key="graph_depth",
                  help="1: the model's top-level parts; higher: open its blocks (skip "
                       "connections show as edges into an addition).")
    dot = to_dot(graph)
    st.graphviz_chart(dot, width="stretch")
    c1, c2 = st.columns(2)
    c1.download_button("Download SVG", lambda: graph_svg(graph, name),
                       file_name=f"{name}.svg", mime="image/svg+xml", key="dl_graph_svg",
                       icon=":material/download:",
                       help="For slides: the same graph laid out top to bottom, skip "
                       "connections as arcs to the side.")
    c2.download_button("Download DOT", dot, file_name=f"{name}.dot", mime="text/vnd.graphviz",
                       key="dl_graph_dot", icon=":material/download:",
                       help="Graphviz source: `dot -Tsvg` turns it into Graphviz's own SVG.")
