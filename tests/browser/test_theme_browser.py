"""Real Chromium: charts follow the app's light and dark theme.

One server per theme (``streamlit run app.py --theme.base light|dark``). For the Build page's
charts and a Learn lesson's figure, the colours the browser actually paints are read back
from the SVG (text fills, the chart's paper and plot-area backgrounds, the page behind them)
and every chart text must reach WCAG's 4.5:1 contrast against both backgrounds. Screenshots
of each page in each theme go to ``test-artifacts/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from tests.browser.conftest import ARTIFACTS, _serve, wait_for_app

pytestmark = pytest.mark.browser

THEMES = ("light", "dark")
MIN_CONTRAST = 4.5  # WCAG 2 AA for normal-size text

# For every Plotly chart on the page: its texts' fill colours, its paper background (the
# <svg>'s own background), its plot-area rectangle's fill and the first opaque background
# of an element around it (what shows through a transparent paper).
_READ_COLOURS = """
() => [...document.querySelectorAll('.js-plotly-plot')].map(plot => {
  const opaque = c => c && c !== 'transparent' && !/^rgba\\(.*,\\s*0\\)$/.test(c);
  let page = null;
  for (let el = plot; el && !page; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (opaque(c)) page = c;
  }
  const svg = plot.querySelector('svg.main-svg');
  const area = plot.querySelector('.bglayer rect.bg');
  const texts = [...plot.querySelectorAll(
      '.xtick text, .ytick text, .g-xtitle text, .g-ytitle text, .gtitle, .legendtext')]
    .filter(t => t.textContent.trim())
    .map(t => ({text: t.textContent, fill: getComputedStyle(t).fill}));
  return {page: page || 'rgb(255, 255, 255)', paper: getComputedStyle(svg).backgroundColor,
          area: area ? getComputedStyle(area).fill : 'rgba(0, 0, 0, 0)', texts};
})
"""


def _rgba(css: str) -> tuple[float, float, float, float]:
    """``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` as four floats (alpha 1 when absent)."""
    nums = [float(v) for v in re.findall(r"[\d.]+", css)]
    assert len(nums) in (3, 4), f"not an rgb colour: {css!r}"
    return (nums[0], nums[1], nums[2], nums[3] if len(nums) == 4 else 1.0)


def _over(top: str, below: tuple[float, float, float]) -> tuple[float, float, float]:
    """``top`` painted over the opaque colour ``below`` (alpha compositing)."""
    r, g, b, a = _rgba(top)
    return (r * a + below[0] * (1 - a), g * a + below[1] * (1 - a), b * a + below[2] * (1 - a))


def _luminance(rgb: tuple[float, float, float]) -> float:
    """WCAG 2 relative luminance of an sRGB colour (0-255 channels)."""
    def lin(c: float) -> float:
        c /= 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    r, g, b = (lin(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _contrast(a: tuple[float, float, float], b: tuple[float, float, float]) -> float:
    """WCAG 2 contrast ratio, 1 (same) to 21 (black on white)."""
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


@pytest.fixture(scope="module", params=THEMES)
def themed_app(request: pytest.FixtureRequest,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(theme, url) of a server started with ``--theme.base <theme>``."""
    theme = request.param
    with _serve(tmp_path_factory.mktemp(f"theme-{theme}"), "--theme.base", theme) as url:
        yield theme, url


@pytest.fixture()
def themed_page(browser, themed_app: tuple[str, str]) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.set_default_timeout(60_000)
    yield context.new_page()
    context.close()


def _check_charts(pg, theme: str, where: str) -> None:
    """Every chart's texts read against its paper and plot area; the page is in ``theme``."""
    pg.locator(".js-plotly-plot .ytick text").first.wait_for()
    charts = pg.evaluate(_READ_COLOURS)
    assert charts, f"{where}: no chart on the page"
    for n, chart in enumerate(charts):
        page_bg = _over(chart["page"], (255.0, 255.0, 255.0))
        # the server's theme is really in force: a dark page in dark, a light one in light
        assert (_luminance(page_bg) < 0.2) == (theme == "dark"), (where, chart["page"])
        paper = _over(chart["paper"], page_bg)
        area = _over(chart["area"], paper)
        assert len(chart["texts"]) >= 3, f"{where} chart {n}: too few texts {chart['texts']}"
        for t in chart["texts"]:
            ink = _over(t["fill"], area)
            for name, bg in (("paper", paper), ("plot area", area)):
                ratio = _contrast(ink, bg)
                assert ratio >= MIN_CONTRAST, (
                    f"{theme} theme, {where} chart {n}: {t['text']!r} in {t['fill']} on the "
                    f"{name} {bg} has contrast {ratio:.2f} < {MIN_CONTRAST}")


def _shoot(pg, name: str) -> None:
    """A screenshot tall enough to hold the page's charts (Streamlit scrolls inside the page,
    so a full-page shot would stop at the window)."""
    ARTIFACTS.mkdir(exist_ok=True)
    pg.set_viewport_size({"width": 1280, "height": 2400})
    pg.wait_for_timeout(800)  # let Plotly redraw at the new size
    pg.screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_build_charts_follow_the_theme(themed_page, themed_app: tuple[str, str]) -> None:
    theme, url = themed_app
    pg = themed_page
    pg.goto(url)
    wait_for_app(pg, "Build a network")
    pg.get_by_role("tab", name="Charts").click()
    pg.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 3")
    wait_for_app(pg)
    _check_charts(pg, theme, "Build")
    _shoot(pg, f"theme-{theme}-build-charts")


def test_learn_figure_follows_the_theme(themed_page, themed_app: tuple[str, str]) -> None:
    theme, url = themed_app
    pg = themed_page
    pg.goto(url)
    wait_for_app(pg, "Build a network")
    pg.get_by_role("link", name="Learn").click()
    wait_for_app(pg, "Why deep networks train")
    pg.locator(".js-plotly-plot").first.wait_for()
    _check_charts(pg, theme, "Learn")
    _shoot(pg, f"theme-{theme}-learn")
