"""Teacher: the whole class live, stopping runs, students' keys, class settings and message,
assignments."""

from __future__ import annotations

import streamlit as st

from ui.assignment_admin import assignments_tab
from ui.routing import ensure_routed
from ui.state import show_flash
from ui.teacher_view import class_tab, settings_tab, students_tab

ensure_routed()  # first, before anything reads the session: see ui/routing.py

st.title("Teacher")
if not st.session_state.get("teacher"):
    st.error("This page is the teacher's: unlock it with the teacher's code in the sidebar.")
    st.stop()
st.caption("Every student's runs as they train, their names and keys, the settings and "
           "message that apply to the whole class at once, and assignments.")
show_flash()
tabs = st.tabs(["Class", "Students", "Settings and message", "Assignments"],
               key="teacher_tab", on_change="rerun")
for tab, draw in zip(tabs, (class_tab, students_tab, settings_tab, assignments_tab),
                     strict=True):
    with tab:
        if tab.open is not False:
            draw()
