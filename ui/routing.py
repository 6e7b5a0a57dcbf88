"""Keep every page behind the router in app.py.

A ``pages/`` folder makes Streamlit emulate its old one-file-per-page mode until ``app.py`` has
run once in the process (``AppTest`` even restarts the emulation on every run): a request for
``/train`` then runs ``pages/train.py`` on its own, without the router's set-up, and a file
name that did not match would be answered with a "Page not found" dialog. ``ensure_routed()``,
the first call of every page, switches the emulation off and runs ``app.py`` in its place, in
the same script run (so a click that started the run still counts): its ``st.navigation``
opens the same page, since both modes name a page by its URL path, the file name.
"""

from __future__ import annotations

import runpy

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx


def stop_page_emulation() -> None:
    """Turn off Streamlit's pages-folder emulation for every later run in this process."""
    PagesManager.uses_pages_directory = False


def ensure_routed() -> None:
    """Run the router instead of this page when the emulation started the page."""
    if not PagesManager.uses_pages_directory:
        return
    stop_page_emulation()
    ctx = get_script_run_ctx()
    if ctx is None:  # not inside a Streamlit run (bare import): nothing to route
        return
    runpy.run_path(str(ctx.pages_manager.main_script_path), run_name="__main__")
    st.stop()  # the router drew the page; do not draw it a second time
