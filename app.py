"""Architecture Playground: `streamlit run app.py`.

The router: shared page config, the sidebar identity field, and st.navigation over the thin
page scripts in pages/. All maths lives in playground/; shared widgets and charts in ui/.
"""

from __future__ import annotations

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from ui.state import init_state, sidebar_identity

# A pages/ folder makes Streamlit emulate its old multipage mode (each file a page at
# /<file name>) before this script runs; st.navigation below is the only router we want, so
# switch the emulation off for every later run in this process. The page files are named
# *_page.py so that even the very first request for /train falls through to this script.
PagesManager.uses_pages_directory = False

st.set_page_config(
    page_title="Architecture Playground",
    page_icon=":material/hub:",
    layout="wide",
    initial_sidebar_state="expanded",
)

init_state()

PAGES = [
    st.Page("pages/build_page.py", title="Build", icon=":material/construction:", default=True,
            url_path="build"),
    st.Page("pages/train_page.py", title="Train", icon=":material/monitoring:", url_path="train"),
    st.Page("pages/compare_page.py", title="Compare", icon=":material/compare:",
            url_path="compare"),
    st.Page("pages/learn_page.py", title="Learn", icon=":material/school:", url_path="learn"),
]

page = st.navigation(PAGES)
sidebar_identity()
page.run()
