"""Leaderboard: an assignment's rules, its public and private rankings, and every submission's
accuracy against its MACs (ui/leaderboard_view.py)."""

from __future__ import annotations

import streamlit as st

from playground.errors import PlaygroundError
from ui.leaderboard_view import leaderboard_page
from ui.routing import ensure_routed
from ui.state import show_flash
from ui.text import md_escape

ensure_routed()  # first, before anything reads the session: see ui/routing.py

st.title("Leaderboard")
show_flash()
try:
    leaderboard_page()
except PlaygroundError as err:
    st.error(md_escape(err))
