"""Real Chromium against `streamlit run app.py`: presets, table, charts, share URL, download."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from playground.presets import get_preset
from playground.share import encode_spec
from tests.browser.conftest import ARTIFACTS, ROOT, choose, wait_for_app

pytestmark = pytest.mark.browser


def _metric(pg, label: str) -> str:
    box = pg.locator('[data-testid="stMetric"]').filter(has_text=label).first
    return box.locator('[data-testid="stMetricValue"]').inner_text().strip()


def _open_preset(pg, group: str, item_label: str) -> None:
    choose(pg, "Start from", group)
    choose(pg, "Design", item_label)
    pg.get_by_role("button", name="Open", exact=True).and_(
        pg.get_by_test_id("stBaseButton-primary")).click()
    wait_for_app(pg)


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
    _open_preset(page, "Classic networks", "VGG-16")
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stMetricValue]')]"
        ".some(e => e.innerText.includes('138,357,544'))"
    )
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
