"""Real Chromium on a server of its own: the very first request is a deep link.

Streamlit emulates its old file-per-page mode until ``app.py`` has run once (it sees the
``pages/`` folder); ``ui.routing.ensure_routed`` must turn that first request into the page
behind the router, without a "Page not found" dialog and with the router's sidebar.
"""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import wait_for_app

pytestmark = pytest.mark.browser


def test_first_request_for_a_deep_link_opens_the_page(browser, fresh_app_url: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    try:
        pg.goto(f"{fresh_app_url}/train?user=Ada")
        wait_for_app(pg, "Start training")
        time.sleep(1.0)  # a "Page not found" dialog would have arrived by now
        assert pg.get_by_text("Page not found").count() == 0
        assert pg.locator("h1").first.inner_text() == "Train"
        # the router's pages (icons are ligature words in lower case, file names would be too)
        nav = pg.locator('[data-testid="stSidebarNav"]').inner_text().split("\n")
        assert [n for n in nav if n[:1].isupper()] == ["Build", "Train", "Compare", "Learn",
                                                      "Leaderboard"]
        assert pg.get_by_label("Your name", exact=True).input_value() == "Ada"
        assert pg.locator('[data-testid="stException"]').count() == 0 and not errors
        # an address that names no page still gets Streamlit's own answer
        pg.goto(f"{fresh_app_url}/nope")
        wait_for_app(pg, "Build a network")
        pg.get_by_text("Page not found").first.wait_for(timeout=10_000)
    finally:
        context.close()


# Collects every page link the sidebar's navigation ever shows, from before the first paint.
_RECORD_NAV = """
window.__navSeen = [];
new MutationObserver(() => {
  for (const a of document.querySelectorAll('[data-testid="stSidebarNav"] a')) {
    const path = new URL(a.href).pathname;
    if (!window.__navSeen.includes(path)) window.__navSeen.push(path);
  }
}).observe(document, {childList: true, subtree: true, characterData: true});
"""


def test_a_cold_servers_first_page_never_lists_the_page_files(browser,
                                                              fresh_app_url: str) -> None:
    """Until app.py reaches st.navigation, Streamlit shows its own menu of the pages/ files
    (app, build, ..., teacher, train): for the seconds the first import of torch took, on the
    first page view of every server. The router now calls st.navigation before it imports
    anything heavy, so that menu is replaced before it is ever painted."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.add_init_script(_RECORD_NAV)
    pg = context.new_page()
    try:
        pg.goto(f"{fresh_app_url}/")
        wait_for_app(pg, "Build a network")
        seen = pg.evaluate("window.__navSeen")
        assert sorted(seen) == ["/", "/compare", "/leaderboard", "/learn", "/train"], seen
    finally:
        context.close()
