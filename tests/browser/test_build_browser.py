"""Real Chromium against `streamlit run app.py`: presets, table, charts, share URL, download."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from playground.presets import get_preset
from playground.share import encode_spec
from tests.browser.conftest import ARTIFACTS, ROOT, pick_option, wait_for_app

pytestmark = pytest.mark.browser


def _metric(pg, label: str) -> str:
    box = pg.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _pick(pg, typed: str, label: str) -> None:
    """One pick in the Design box, found by typing part of its name (the box searches)."""
    def open_and_type() -> None:
        pg.get_by_label("Design", exact=True).first.click()
        pg.keyboard.type(typed)

    pick_option(pg, open_and_type, label)
    wait_for_app(pg)


def _wait_metric(pg, value: str) -> None:
    pg.wait_for_function(
        "(v) => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
        ".some(e => e.innerText.includes(v))", arg=value)


# Measured in the page: the layer table's box, the columns glide-data-grid lays out in view
# (its accessibility table lists only those) and its scroll area's extent.
_TABLE_FIT = """() => {
  const table = document.querySelector('[data-testid=stDataFrame]');
  const scroller = table && table.querySelector('.dvn-scroller');
  if (!scroller) return null;
  const box = table.getBoundingClientRect();
  return {headers: [...table.querySelectorAll('th[role=columnheader]')].map(e => e.textContent),
          scrollWidth: scroller.scrollWidth, clientWidth: scroller.clientWidth,
          left: box.left, right: box.right, width: box.width, viewport: window.innerWidth};
}"""
LEARNER_COLUMNS = ["layer", "output", "params", "MACs", "RF (px)"]


def test_build_page_from_clean_state(page, app_url: str) -> None:
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    assert _metric(page, "Parameters") == "66,410"
    # the per-layer table and the charts render
    page.get_by_role("tab", name="Layers").click()
    page.locator('[data-testid="stDataFrame"]').first.wait_for()
    page.get_by_role("tab", name="Charts").click()
    page.locator(".js-plotly-plot").first.wait_for()
    assert page.locator(".js-plotly-plot").count() >= 3
    assert page.locator('[data-testid="stException"]').count() == 0


def test_preset_share_url_and_screenshot(page, app_url: str) -> None:
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    _pick(page, "VGG-16", "Classic · VGG-16")
    _wait_metric(page, "138,357,544")
    assert _metric(page, "MACs") == "15.47 G"
    ARTIFACTS.mkdir(exist_ok=True)
    page.get_by_role("tab", name="Charts").click()
    page.locator(".js-plotly-plot").first.wait_for()
    page.set_viewport_size({"width": 1280, "height": 1300})
    page.wait_for_timeout(500)
    page.screenshot(path=str(ARTIFACTS / "build-page.png"))
    page.set_viewport_size({"width": 1280, "height": 900})
    # the address bar now holds the design; a fresh tab opening it shows the same numbers
    expected = encode_spec(get_preset("vgg16"))
    page.wait_for_function(f"() => location.search.includes('d={expected}')")
    shared = page.url
    other = page.context.new_page()
    other.goto(shared)
    wait_for_app(other, "Build a network")
    other.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
        ".some(e => e.innerText.includes('138,357,544'))"
    )
    assert _metric(other, "Receptive field") == "212 px"
    other.close()


def test_download_is_analysable_by_the_cli(page, app_url: str, tmp_path: Path) -> None:
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    page.get_by_role("tab", name="Export & share").click()
    with page.expect_download() as info:
        page.get_by_role("button", name="Download yaml").click()
    target = tmp_path / info.value.suggested_filename
    info.value.save_as(target)
    assert target.suffix == ".yaml"
    out = subprocess.run([sys.executable, "-m", "playground", "analyse", str(target)],
                         capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    assert "66,410" in out.stdout


def _settled_fit(pg, condition: str) -> dict:
    """The table's measurements once the JS ``condition`` over them (``f``) holds, or as they
    stand after 30 s: the grid lays itself out again a moment after each rerun or resize."""
    current = "Math.abs(f.width - f.clientWidth) <= 4"  # the grid has followed its box
    with contextlib.suppress(PlaywrightTimeout):
        pg.wait_for_function(f"() => {{ const f = ({_TABLE_FIT})(); "
                             f"return f && {current} && ({condition}); }}", timeout=30_000)
    fit = pg.evaluate(_TABLE_FIT)
    assert fit is not None, "the layer table (glide-data-grid) was not found"
    assert abs(fit["width"] - fit["clientWidth"]) <= 4, fit
    return fit


def test_layer_table_shows_the_learner_columns_without_scrolling(page, app_url: str) -> None:
    """At 1280x800 with the sidebar open, the table's default columns all fit: no sideways
    scroll, and glide lays out every one of them in view. More columns scroll; 1600 px fits."""
    fits = "f.scrollWidth <= f.clientWidth && f.headers.join() === " + repr(",".join(
        LEARNER_COLUMNS))
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    _pick(page, "VGG-16", "Classic · VGG-16")  # long layer names, 10-digit MACs
    _wait_metric(page, "138,357,544")
    page.get_by_role("tab", name="Layers").click()
    page.locator('[data-testid="stDataFrame"]').first.scroll_into_view_if_needed()
    fit = _settled_fit(page, fits)
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "build-table-1280.png"))
    assert fit["headers"] == LEARNER_COLUMNS, fit
    assert fit["scrollWidth"] <= fit["clientWidth"], fit  # nothing to scroll sideways to
    assert fit["left"] >= 0 and fit["right"] <= fit["viewport"] == 1280, fit

    # the measurement sees overflow: the optional columns need a sideways scroll...
    page.get_by_text("More columns", exact=True).click()
    more = _settled_fit(page, "f.scrollWidth > f.clientWidth && f.headers.includes('type')")
    assert more["scrollWidth"] > more["clientWidth"], more
    assert more["headers"][:5] == LEARNER_COLUMNS, more  # ...and the learner's stay in view
    assert "where" not in more["headers"], more  # laid out beyond the right edge
    wait_for_app(page)
    page.get_by_text("More columns", exact=True).click()
    wait_for_app(page)
    assert _settled_fit(page, fits)["headers"] == LEARNER_COLUMNS

    page.set_viewport_size({"width": 1600, "height": 800})
    # the box grows a moment after the resize: wait for that, not only for the new viewport
    grown = f"f.viewport === 1600 && f.clientWidth > {fit['clientWidth']}"
    wide = _settled_fit(page, f"{grown} && {fits}")
    assert wide["viewport"] == 1600 and wide["clientWidth"] > fit["clientWidth"], wide
    assert wide["headers"] == LEARNER_COLUMNS, wide
    assert wide["scrollWidth"] <= wide["clientWidth"], wide


def test_edit_then_pick_then_undo_in_the_browser(page, app_url: str) -> None:
    """The edited marker shows in the box itself; Undo brings the edited design back."""
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    classes = page.get_by_label("Classes", exact=True).first
    classes.fill("5")
    classes.press("Enter")
    page.wait_for_function(
        "() => [...document.querySelectorAll('input[role=combobox]')]"
        ".some(e => e.getAttribute('aria-label') === 'Design' && e.value.endsWith('edited'))")
    edited = _metric(page, "Parameters")
    assert edited != "66,410"
    _pick(page, "VGG-16", "Classic · VGG-16")
    _wait_metric(page, "138,357,544")
    page.get_by_role("button", name="Undo").click()
    _wait_metric(page, edited)
    page.wait_for_function(
        "() => [...document.querySelectorAll('input[role=combobox]')]"
        ".some(e => e.getAttribute('aria-label') === 'Design' && e.value.endsWith('edited'))")
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0


def test_edits_rerun_the_design_fragment_and_train_this_design_leaves_it(page,
                                                                         app_url: str) -> None:
    """The numbers, editor and tabs are one fragment: a stage edit redraws the numbers and
    the address's design (d=) without a page run; "Train this design", a button inside the
    fragment, still opens Train with the design."""
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    page.get_by_text("Stage 1:", exact=False).first.click()
    wait_for_app(page)
    before = page.url
    width = page.get_by_label("Width", exact=True).first
    width.fill("48")
    width.press("Enter")
    page.wait_for_function("(v) => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
                           ".every(e => !e.innerText.includes(v))", arg="66,410")
    wait_for_app(page)
    assert page.url != before and "d=" in page.url  # the address follows the edit
    width.fill("40")
    width.press("Enter")
    wait_for_app(page)
    assert "48" not in page.get_by_text("Stage 1:", exact=False).first.inner_text()
    page.get_by_role("button", name="Train this design").click()
    page.wait_for_url("**/train**")
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0


# Where a diagram box is on screen: Plotly's own axes map the box marker's data coordinates
# (the invisible marker at each box's centre, customdata = the box key) to pixels.
_BOX_POINT = """(key) => {
  for (const gd of document.querySelectorAll('[data-testid=stMain] .js-plotly-plot')) {
    const t = (gd._fullData || []).find(d => d.name === 'boxes');
    if (!t) continue;
    const i = [...t.customdata].indexOf(key);
    if (i < 0) return null;
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
    const r = gd.getBoundingClientRect();
    return {x: r.left + xa._offset + xa.d2p(t.x[i]), y: r.top + ya._offset + ya.d2p(t.y[i])};
  }
  return null;
}"""
_OUTLINED = """() => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  return gd && gd._fullData.some(d => d.line && d.line.width === 3);
}"""


def _code_text(pg) -> list[str]:
    return [c.strip() for c in pg.locator(
        '[data-testid=stMain] [data-testid="stCode"] code').all_inner_texts()]


def test_clicking_a_diagram_box_selects_its_row_in_the_layer_table(page, app_url: str) -> None:
    """A real mouse click on a box of the Plotly diagram: its formula shows under the
    diagram, and the Layers tab's table has that box's first conv selected, its formula in
    the panel under the table."""
    from playground.analysis import explain_row
    from playground.targets import analyse_spec

    rows = analyse_spec(get_preset("small_cnn")).rows  # the default design
    conv = next(r for r in rows if r.name == "stage2.layer1.conv")
    formula = explain_row(conv).strip()
    page.goto(app_url)
    wait_for_app(page, "Build a network")
    page.get_by_role("tab", name="Diagram").click()
    page.locator("[data-testid=stMain] .js-plotly-plot").first.wait_for()
    wait_for_app(page)
    assert page.evaluate(_OUTLINED) is False  # nothing picked yet
    page.locator("[data-testid=stMain] .js-plotly-plot").first.scroll_into_view_if_needed()
    point = page.evaluate(_BOX_POINT, "stage2.layer1")
    assert point is not None, "the diagram has no box stage2.layer1"
    page.mouse.move(point["x"], point["y"])
    page.mouse.click(point["x"], point["y"])
    page.wait_for_function(
        "(f) => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stCode] code')]"
        ".some(c => c.innerText.trim() === f)", arg=formula)
    wait_for_app(page)
    assert formula in _code_text(page)
    page.wait_for_function(_OUTLINED)  # the run the click caused outlines the box
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "build-diagram-pick.png"), full_page=True)

    page.get_by_role("button", name="Show in the layer table").click()
    wait_for_app(page)
    table = page.locator('[data-testid="stMain"] [data-testid="stDataFrame"]').first
    table.wait_for()
    page.get_by_text("Tinted: the rows of the diagram box", exact=False).wait_for()
    selected = table.locator('tr[role="row"][aria-selected="true"]')
    selected.first.wait_for(state="attached")  # glide's accessibility table: hidden
    assert selected.count() == 1
    assert selected.first.get_attribute("aria-rowindex") == str(conv.index + 2)  # 1: header
    assert conv.name in selected.first.text_content()
    page.wait_for_function(
        "(f) => [...document.querySelectorAll('[data-testid=stMain] [data-testid=stCode] code')]"
        ".some(c => c.innerText.trim() === f)", arg=formula)
    assert _code_text(page) == [formula]  # the table's formula panel shows that row
    page.screenshot(path=str(ARTIFACTS / "build-layers-picked.png"), full_page=True)
    assert page.locator('[data-testid="stException"]').count() == 0


_OVERFLOW = """() => [...document.querySelectorAll('[data-testid=stDataFrame]')].map(e => {
    const r = e.getBoundingClientRect(), p = e.parentElement.getBoundingClientRect();
    return r.right - p.right; })"""


def test_present_mode_keeps_the_layer_table_inside_the_page(page, app_url: str) -> None:
    """On the projector (?present=1, everything 1.3x) the layer table fits its column; before
    the fix the data grid was zoomed twice and ran 1.3x past the right edge."""
    for width in (1400, 1000):
        page.set_viewport_size({"width": width, "height": 900})
        page.goto(f"{app_url}/?present=1")
        wait_for_app(page, "Parameters")
        page.locator("[data-testid=stMain] [data-testid=stDataFrame]").first.wait_for()
        wait_for_app(page)
        over = page.evaluate(_OVERFLOW)
        assert over and max(over) <= 1, (width, over)
        assert page.evaluate("() => document.documentElement.scrollWidth <= innerWidth")
