"""Real Chromium: students get no developer chrome ("Deploy", "Clear cache") in the app.

.streamlit/config.toml sets ``client.toolbarMode = "viewer"``. Streamlit's default ("auto")
shows the developer options to anyone opening the app on localhost, which is how these tests
(and a teacher's laptop) open it; a control server started with ``--client.toolbarMode
developer`` shows that the checks below do find them when they are there.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.browser.conftest import _serve, wait_for_app

pytestmark = pytest.mark.browser

DEV_ITEMS = ("Deploy", "Clear cache")


@pytest.fixture(scope="module", params=["app", "developer"])
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(mode, url): the app as configured, or the control with the developer options on."""
    extra = ("--client.toolbarMode", "developer") if request.param == "developer" else ()
    with _serve(tmp_path_factory.mktemp(f"toolbar-{request.param}"), *extra) as url:
        yield request.param, url


def _reachable(browser, url: str) -> tuple[set[str], list[str]]:
    """(developer items visible on the page or in the main menu, the menu's items)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    pg = context.new_page()
    try:
        pg.goto(url + "/?user=ada")
        wait_for_app(pg, "Build a network")
        found = {name for name in DEV_ITEMS
                 if pg.get_by_text(name, exact=True).filter(visible=True).count()}
        menu = pg.get_by_test_id("stMainMenuButton")
        items: list[str] = []
        if menu.count():
            menu.first.click()
            menu_list = pg.get_by_test_id("stMainMenuList")
            menu_list.wait_for()
            items = [t.strip() for t in menu_list.locator(
                "[data-testid^=stMainMenuItem]").all_inner_texts()]
            found |= {name for name in DEV_ITEMS
                      if pg.get_by_text(name, exact=True).filter(visible=True).count()}
        return found, items
    finally:
        context.close()


def test_no_deploy_or_clear_cache_for_students(browser, served: tuple[str, str]) -> None:
    mode, url = served
    found, items = _reachable(browser, url)
    if mode == "developer":  # the control: the same checks see them when they are on
        assert found == set(DEV_ITEMS), (found, items)
    else:
        assert not found, f"developer options reachable from the app: {found} (menu: {items})"
        assert not any(i.startswith(DEV_ITEMS) for i in items), items
