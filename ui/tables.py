"""The per-layer table: one row per layer, selectable, formatted for a projector."""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.format import fmt_bytes, fmt_shape


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
            "output": fmt_shape(r.out_shape),
            "params": r.num_params,
            "MACs": r.macs,
            "RF (px)": max(r.rf) if r.rf else None,
            "stride (px)": max(r.jump) if r.jump else None,
            "activations": fmt_bytes(r.act_bytes),
        })
    return out


def layer_table(analysis: Any, labels: dict[str, Any]) -> Any | None:
    """Draw the table; return the selected row of ``analysis.rows`` (or None)."""
    rows = layer_rows(analysis, labels)
    event = st.dataframe(
        rows,
        hide_index=True,
        width="stretch",
        height=min(38 + 35 * len(rows), 520),
        on_select="rerun",
        selection_mode="single-row",
        key="layer_table",
        column_config={
            "params": st.column_config.NumberColumn("params", format="localized"),
            "MACs": st.column_config.NumberColumn("MACs", format="localized",
                                                  help="fvcore: one multiply-add = one FLOP"),
            "RF (px)": st.column_config.NumberColumn("RF (px)", help="receptive field"),
            "stride (px)": st.column_config.NumberColumn(
                "stride (px)", help="effective stride: input pixels between neighbouring units"),
            "where": st.column_config.TextColumn("where", width="medium"),
        },
    )
    selected = event.selection.rows if event is not None else []
    if selected and selected[0] < len(analysis.rows):
        return analysis.rows[selected[0]]
    return None
