"""What every page shows of the classroom: the teacher's message, and present mode.

- The class message (:class:`playground.classroom.ClassSettings`) sits at the top of every
  page, shown as text, with its optional link as a button: ``preset:<name>`` opens the preset
  on Train, ``lesson:<id>`` the lesson on Learn, ``experiment:<name>`` the suite on Compare.
- Present mode (``?present=1``), for the projector: no sidebar, no header, no editing column
  on Build and Train, and everything 1.3x larger (CSS ``zoom``, so charts grow with the text).
  Tables keep their usual size: the data grid measures its zoomed width and would be zoomed
  again, 1.3x wider than the page.
"""

from __future__ import annotations

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from playground.classroom import ClassSettings
from playground.errors import PlaygroundError
from playground.experiments import get_suite
from playground.lessons import get_lesson
from playground.presets import PRESETS
from ui.text import md_escape

PRESENT_CSS = """<style>
[data-testid="stSidebar"], [data-testid="stSidebarCollapsedControl"],
[data-testid="stExpandSidebarButton"], header[data-testid="stHeader"] { display: none; }
[data-testid="stMainBlockContainer"] { zoom: 1.3; max-width: 100%; padding-top: 1rem; }
[data-testid="stMainBlockContainer"] [data-testid="stDataFrame"] { zoom: calc(1 / 1.3); }
.st-key-pg_editing { display: none; }
</style>"""


def is_present() -> bool:
    """Whether the page is in present mode (``?present=1`` in the address)."""
    return st.query_params.get("present") == "1"


def present_mode() -> None:
    """Apply present mode's styles when the address asks for it."""
    if is_present():
        st.html(PRESENT_CSS)


def editing_column() -> DeltaGenerator:
    """The container the editing widgets go into in present mode: drawn, but hidden."""
    return st.container(key="pg_editing")


def _open_link(kind: str, name: str) -> None:
    state = st.session_state
    if kind == "preset":
        state.tr_network = f"preset:{name}"
        state.tr_dataset = PRESETS.get(name).dataset
        state.tr_run = None
    elif kind == "experiment":
        state.exp_suite = name
        state.cmp_goto = "Experiments"
    else:
        state.learn_lesson = name


def class_banner(rules: ClassSettings) -> None:
    """The teacher's message at the top of the page (nothing when there is none)."""
    if not rules.message:
        return
    with st.container(border=True):
        cols = st.columns([6, 2], vertical_alignment="center")
        cols[0].markdown(":material/campaign: **From the teacher:** "
                         + md_escape(rules.message))
        kind, _, name = rules.message_link.partition(":")
        try:
            if kind == "preset":
                title, page = PRESETS.get(name).title, "pages/train.py"
            elif kind == "lesson":
                title, page = get_lesson(name).title, "pages/learn.py"
            elif kind == "experiment":
                title, page = get_suite(name).title, "pages/compare.py"
            else:
                return
        except PlaygroundError:  # a preset or lesson gone since the teacher chose it
            return
        if cols[1].button(f"Open {title}", key="_class_link", icon=":material/open_in_new:"):
            _open_link(kind, name)
            st.switch_page(page)
