"""Real Chromium: Compare two presets (table, legend, charts, CSV download); Learn's figure.

Locators are scoped to the page's main content (``stMain``), never the header or sidebar.
"""

from __future__ import annotations

import pytest

from playground.presets import get_preset
from playground.targets import analyse_spec
from tests.browser.conftest import ARTIFACTS, pick_option, wait_for_app

pytestmark = pytest.mark.browser

ITEMS = "Compare (two to four)"
MAIN = "[data-testid=stMain]"


def _main(pg):
    return pg.get_by_test_id("stMain")


def _open(pg, app_url: str, link: str, text: str) -> None:
    """Start at the app's root (the router), then follow the sidebar link, as a user does."""
    pg.goto(app_url + f"/?user=Ada-{link}")  # a name of its own: each claims it afresh
    wait_for_app(pg, "Build a network")
    pg.get_by_role("link", name=link).click()
    wait_for_app(pg, text)


def _remove_all(pg) -> None:
    """Remove the default items one at a time, each time waiting for the server's redraw."""
    _main(pg).get_by_test_id("stDataFrame").first.wait_for()
    pg.wait_for_timeout(1_000)  # let the page's first run settle before editing it
    tags = _main(pg).locator('[data-testid="stMultiSelect"] button[aria-label^="Remove "]'
                             ':visible')
    while (n := tags.count()):
        tags.first.click()
        pg.wait_for_function(
            "(n) => document.querySelectorAll("
            f"'{MAIN} [data-testid=stMultiSelect] button[aria-label^=\"Remove \"]').length < n",
            arg=n)
        wait_for_app(pg)
    pg.wait_for_timeout(500)


def _add(pg, option: str) -> None:
    """Type into the multiselect and pick ``option``."""
    def open_list() -> None:
        box = _main(pg).get_by_role("combobox", name=ITEMS)
        box.click()
        box.fill(option.split(": ", 1)[1][:12])

    pick_option(pg, open_list, option)
    pg.keyboard.press("Escape")
    wait_for_app(pg)


def _cells(pg) -> list[str]:
    return _main(pg).get_by_test_id("stDataFrame").first.locator(
        '[role="gridcell"]').all_text_contents()


def test_compare_two_presets_in_table_and_charts(page, app_url: str, tmp_path) -> None:
    _open(page, app_url, "Compare", "Compare")
    _remove_all(page)
    _add(page, "Preset: Plain-20 (CIFAR, no shortcuts)")
    _add(page, "Preset: ResNet-20 (CIFAR)")
    main = _main(page)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{MAIN} [data-testid=stDataFrame] "
        "[role=columnheader]')].some(e => e.textContent.includes('ResNet-20 (CIFAR)'))")
    headers = main.get_by_test_id("stDataFrame").first.locator(
        '[role="columnheader"]').all_text_contents()
    assert "Plain-20 (CIFAR, no shortcuts)" in headers and "ResNet-20 (CIFAR)" in headers
    params = f"{analyse_spec(get_preset('resnet20_cifar')).num_params:,}"
    cells = _cells(page)
    assert cells[cells.index("parameters") + 1: cells.index("parameters") + 3] == [params] * 2
    # both items in every chart, in the same colours as the legend chips
    main.locator(".js-plotly-plot").nth(3).wait_for()
    charts = main.locator(".js-plotly-plot")
    assert charts.count() >= 4
    for i in range(4):
        names = " ".join(charts.nth(i).locator(".legendtext").all_text_contents())
        assert "Plain-20" in names and "ResNet-20" in names, names
    assert page.locator('[data-testid="stException"]').count() == 0
    # the stage-by-stage diff names the stages whose residual setting changed
    page.wait_for_function(  # the grid fills its cells after it is drawn
        f"() => {{ const t = document.querySelectorAll('{MAIN} [data-testid=stDataFrame]')[1];"
        " return t && [...t.querySelectorAll('[role=gridcell]')]"
        ".some(e => e.textContent.includes('residual False -> True')); }")
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 2400})
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "compare-page.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    with page.expect_download() as info:
        main.get_by_role("button", name="Download the table (CSV)").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    text = target.read_text()
    assert "Plain-20 (CIFAR, no shortcuts)" in text and "ResNet-20 (CIFAR)" in text
    assert str(analyse_spec(get_preset("resnet20_cifar")).num_params) in text


def test_learn_page_draws_a_measured_figure(page, app_url: str) -> None:
    _open(page, app_url, "Learn", "Vanishing and exploding gradients")
    main = _main(page)
    main.locator(".js-plotly-plot").first.wait_for()
    legend = " ".join(main.locator(".js-plotly-plot .legendtext").all_text_contents())
    assert "sigmoid" in legend and "ReLU + batch norm" in legend
    assert page.locator('[data-testid="stException"]').count() == 0
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1500})
    page.wait_for_timeout(800)
    page.screenshot(path=str(ARTIFACTS / "learn-page.png"))
