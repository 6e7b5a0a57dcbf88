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
