"""Compare: designs, presets, torchvision models and runs side by side; experiment suites."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from ui.compare_experiments import experiments
from ui.compare_view import side_by_side
from ui.routing import ensure_routed
from ui.state import show_flash
from ui.text import md_escape

ensure_routed()  # first, before anything reads the session: see ui/routing.py

TABS = ["Side by side", "Experiments"]

st.title("Compare")
st.caption(
    "Put two to four networks or runs next to each other, or run a ready-made experiment: "
    "several trainings that differ in one thing, with the same data and seed."
)
show_flash()
if st.session_state.cmp_goto in TABS:  # a Learn page button asked for a tab
    st.session_state.cmp_tab = st.session_state.cmp_goto
st.session_state.cmp_goto = None

# Lazy tabs: only the open one runs its code.
tabs = st.tabs(TABS, key="cmp_tab", on_change="rerun")
for tab, draw in zip(tabs, (side_by_side, experiments), strict=True):
    with tab:
        if tab.open is not False:
            try:
                draw()
            except PlaygroundError as err:
                st.error(md_escape(err))
