"""The per-layer table: one row per layer, selectable, formatted for a projector.

The columns a learner reads first (layer, output shape, parameters, MACs, receptive field) are
shown by default, with pixel widths that fit the Build page's table at a 1280 px wide window
with the sidebar open (about 490 px); "More columns" adds the layer type, effective stride,
activation memory, place in the design and position after them, to scroll to sideways.

Selection from code: a selection assigned to the table's session key before the table is drawn
is applied as if the user had clicked the row (Streamlit's programmatic dataframe selection,
1.67 here; releases before it refuse the assignment); :func:`layer_table` does that for
``select`` (the Build page's diagram click). ``highlight`` tints other rows (the
clicked box's) through a pandas Styler, built only while a box is picked.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import pyarrow as pa
import streamlit as st

from playground.format import fmt_bytes
from ui.memo import PerObject

# translucent amber (as on Compare): readable under the light and the dark theme's text
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.28)"
TABLE_KEY = "layer_table"

# Column -> width in px. Glide's row-selection column takes about 35 px more; a table wider
# than the sum shares the spare room out among the columns.
MAIN_COLUMNS = {"layer": 128, "output": 84, "params": 82, "MACs": 92, "RF (px)": 52}
MORE_COLUMNS = ("type", "stride (px)", "activations", "where", "#")


def compact_shape(shape: tuple[int, ...] | None) -> str:
    """``128×112×112``: a shape without the spaces of ``fmt_shape``, so it fits its column."""
    return "×".join(str(s) for s in shape) if shape else "n/a"


def layer_rows(analysis: Any, labels: dict[str, Any]) -> list[dict[str, Any]]:
    """Plain dicts for the table (numbers stay numbers so columns sort correctly)."""
    out = []
    for r in analysis.rows:
        entry = labels.get(r.name)
        out.append({
            "#": r.index,
            "layer": r.name,
            "where": entry.where if entry else "",
            "type": r.type,
            "output": compact_shape(r.out_shape),
            "params": r.num_params,
            "MACs": r.macs,
            "RF (px)": max(r.rf) if r.rf else None,
            "stride (px)": max(r.jump) if r.jump else None,
            "activations": fmt_bytes(r.act_bytes),
        })
    return out


_TABLES = PerObject()


def layer_arrow(analysis: Any, labels: dict[str, Any]) -> pa.Table:
    """:func:`layer_rows` as an Arrow table, built once per analysis and labels.

    ``st.dataframe`` given a list of dicts infers its format, builds a pandas frame and converts
    it to Arrow on every rerun (about 30 ms for VGG-19's rows); an Arrow table is sent as it is.
    """
    key = tuple((name, entry.where) for name, entry in labels.items())
    return _TABLES.get(analysis, key,
                       lambda: pa.Table.from_pylist(layer_rows(analysis, labels)))


def highlighted(rows: pa.Table, marked: Collection[int]) -> Any:
    """``rows`` as a pandas Styler tinting the rows whose ``#`` is in ``marked``; numbers keep
    the table's own look (thousands separators, blank for a missing receptive field)."""
    frame = rows.to_pandas()
    marks = set(marked)
    return frame.style.apply(
        lambda r: [HIGHLIGHT if r["#"] in marks else ""] * len(r), axis=1).format(
        {"params": "{:,}", "MACs": "{:,}", "RF (px)": "{:.0f}", "stride (px)": "{:.0f}"},
        na_rep="")


def layer_table(analysis: Any, labels: dict[str, Any], highlight: Collection[int] = (),
                select: int | None = None) -> Any | None:
    """Draw the table; return the selected row of ``analysis.rows`` (or None).

    ``select``: select this row index now, as a click on it would (the user can pick another
    afterwards); ``highlight``: row indices to tint.
    """
    rows = layer_arrow(analysis, labels)
    if select is not None and 0 <= select < rows.num_rows:
        st.session_state[TABLE_KEY] = {"selection": {"rows": [select], "columns": [],
                                                     "cells": []}}
    more = st.toggle("More columns", key="layer_more",
                     help="Also show each layer's position, its place in the design, its type, "
                     "its effective stride and the memory its output takes.")
    # The extra columns come after the main ones, which keep their widths: still in view.
    order = [*MAIN_COLUMNS, *(MORE_COLUMNS if more else ())]
    width = MAIN_COLUMNS
    event = st.dataframe(
        highlighted(rows, highlight) if highlight else rows,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * rows.num_rows, 520),
        on_select="rerun",
        selection_mode="single-row",
        key=TABLE_KEY,
        column_order=order,
        column_config={
            "layer": st.column_config.TextColumn(
                "layer", width=width.get("layer"),
                help="The layer's name in the model (select a row for its formula)"),
            "output": st.column_config.TextColumn(
                "output", width=width.get("output"), help="Output shape (C x H x W)"),
            "params": st.column_config.NumberColumn("params", format="localized",
                                                    width=width.get("params")),
            "MACs": st.column_config.NumberColumn("MACs", format="localized",
                                                  width=width.get("MACs"),
                                                  help="fvcore: one multiply-add = one FLOP"),
            "RF (px)": st.column_config.NumberColumn("RF (px)", width=width.get("RF (px)"),
                                                     help="receptive field"),
            "stride (px)": st.column_config.NumberColumn(
                "stride (px)", help="effective stride: input pixels between neighbouring units"),
            "where": st.column_config.TextColumn("where", width="medium"),
            "activations": st.column_config.TextColumn(
                "activations", help="memory the layer's output takes (float32)"),
        },
    )
    selected = event.selection.rows if event is not None else []
    if selected and selected[0] < len(analysis.rows):
        return analysis.rows[selected[0]]
    return None
