"""Learn: short lessons, each with a figure measured on the spot and a link to try it."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from playground.lessons import LESSONS, get_lesson
from ui.compare_state import keep
from ui.learn_view import lesson_view
from ui.routing import ensure_routed
from ui.state import show_flash
from ui.text import md_escape

ensure_routed()  # first, before anything reads the session: see ui/routing.py

st.title("Learn")
st.caption(
    "Why deep networks train, or don't: a paragraph or two per idea, the formula, and a "
    "figure the playground measures while you read. Each lesson links to a network to open "
    "or an experiment to run."
)
show_flash()

ids = list(LESSONS)
if st.session_state.learn_lesson not in ids:
    st.session_state.learn_lesson = ids[0]
st.session_state._learn_lesson = st.session_state.learn_lesson
left, right = st.columns([3, 9], gap="large")
with left:
    st.radio("Lessons", ids, key="_learn_lesson", on_change=keep,
             args=("_learn_lesson", "learn_lesson"),
             format_func=lambda i: f"{ids.index(i) + 1}. {get_lesson(i).title}")
with right:
    try:
        lesson_view(st.session_state.learn_lesson)
    except PlaygroundError as err:
        st.error(md_escape(err))
