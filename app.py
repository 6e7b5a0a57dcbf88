"""Architecture Playground: `streamlit run app.py`.

The router: shared page config, the sidebar identity (names with keys, login, the teacher's
code), st.navigation over the thin page scripts in pages/ (Teacher only once unlocked), the
class message and present mode, and the start of the training workers on the server's first
page view. All maths lives in playground/; shared widgets and charts in ui/.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import streamlit as st
from streamlit import runtime

from ui.routing import stop_page_emulation

# A pages/ folder makes Streamlit emulate its old file-per-page mode until this script has run
# once; st.navigation below is the only router we want, so switch the emulation off for every
# later run in this process (a page started by the emulation reruns through here: see
# ui/routing.py).
stop_page_emulation()

# st.login's Authlib warns, once per server, that it fell back from httpx2 to httpx (which
# streamlit[auth] installs and which works): not a thing for the teacher's terminal. Authlib
# puts an "always" filter for its warnings in front on import, so import it first.
with contextlib.suppress(ImportError):
    import authlib.deprecate  # noqa: F401
warnings.filterwarnings("ignore", message="The httpx module is deprecated")

# A local file (sent inline as a data: URL): a Material or emoji page icon makes every browser
# fetch it from fonts.gstatic.com or a CDN, a request to another host on each page load.
FAVICON = Path(__file__).resolve().parent / "ui" / "favicon.svg"

st.set_page_config(
    page_title="Architecture Playground",
    page_icon=str(FAVICON),
    layout="wide",
    initial_sidebar_state="expanded",
)

PAGES = [
    st.Page("pages/build.py", title="Build", icon=":material/construction:", default=True,
            url_path="build"),
    st.Page("pages/train.py", title="Train", icon=":material/monitoring:", url_path="train"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:",
            url_path="compare"),
    st.Page("pages/learn.py", title="Learn", icon=":material/school:", url_path="learn"),
    st.Page("pages/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:",
            url_path="leaderboard"),
]

if st.session_state.get("teacher"):  # unlocked in this session (ui/identity.py); else hidden
    PAGES.append(st.Page("pages/teacher.py", title="Teacher",
                         icon=":material/supervisor_account:", url_path="teacher"))

# On a server's first page view the emulation above has already sent Streamlit's own menu of
# the pages/ files (app, build, ..., teacher), hidden by showSidebarNavigation = false in
# .streamlit/config.toml; that option also hides st.navigation's menu, so it is switched on
# (for the whole process) before the real menu goes out. The menu goes out before anything
# heavy is imported: on a cold server the imports below take seconds (torch).
# tests/browser/test_routing_browser.py checks that no other menu is ever painted.
if st.get_option("client.showSidebarNavigation") is False:
    st.set_option("client.showSidebarNavigation", True)
page = st.navigation(PAGES)

from playground.errors import PlaygroundError  # noqa: E402
from ui.classroom_view import class_banner, present_mode  # noqa: E402
from ui.identity import sidebar_identity  # noqa: E402
from ui.jobs import get_class_settings, get_runner  # noqa: E402
from ui.state import init_state  # noqa: E402

init_state()
present_mode()
sidebar_identity()
class_banner(get_class_settings())
page.run()

# The training workers start with the server (on its first page view), not on the first Start:
# they take seconds to import torch and prepare the presets' data sets, and do it while the
# user looks around. Creating the runner only spawns the processes (milliseconds), after the
# page is drawn. An AppTest run is no server: its tests start a runner when they need one.
# Only as the script of a running server: not in an AppTest, and not when a spawned process
# re-imports a test process's __main__ (Streamlit leaves the script there) as "__mp_main__".
if __name__ == "__main__" and runtime.exists() and not st.get_option("global.appTest"):
    with contextlib.suppress(PlaygroundError, OSError):  # the Train page reports it on use
        get_runner()
