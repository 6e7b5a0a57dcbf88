"""Real Chromium: train a short run, open its Results tab, see the confusion matrix and a
feature map, then upload an image of one's own and see what the network makes of it."""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageDraw

from tests.browser.conftest import ARTIFACTS, choose, start_training, wait_for_app

pytestmark = pytest.mark.browser

MAIN = "[data-testid=stMain]"
CHART_TITLES = (f"() => [...document.querySelectorAll('{MAIN} .js-plotly-plot')]"
                ".map(p => String((p.layout && p.layout.title && p.layout.title.text) || ''))")
CAPTIONS = (f"() => [...document.querySelectorAll('{MAIN} [data-testid=stImageCaption]')]"
            ".map(e => e.innerText)")


def _png() -> bytes:
    """A white square on black, drawn here (tests never download)."""
    img = Image.new("RGB", (120, 90), "black")
    ImageDraw.Draw(img).rectangle((30, 20, 90, 70), fill="white")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def test_results_show_the_confusion_matrix_feature_maps_and_an_upload(page, app_url) -> None:
    page.goto(f"{app_url}/?user=Rita")
    wait_for_app(page, "Build a network")
    page.get_by_role("link", name="Train").click()
    wait_for_app(page, "Start training")
    main = page.get_by_test_id("stMain")
    choose(page, "Network", "Small CNN (starter)")
    start_training(page, 30)
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{MAIN} [data-testid=stProgress]')]"
        ".some(e => e.innerText.startsWith('finished'))", timeout=400_000)
    wait_for_app(page)
    main.get_by_role("tab", name="Results").click()
    # (Streamlit's theme wraps titles in <b>)
    page.wait_for_function(
        f"({CHART_TITLES})().some(t => t.includes('Confusion matrix: counts'))", timeout=180_000)
    page.wait_for_function(f"({CAPTIONS})().some(c => c.startsWith('Feature maps of'))",
                           timeout=120_000)
    # the confusion matrix counts every validation image once
    total = page.evaluate(
        f"() => {{ const p = [...document.querySelectorAll('{MAIN} .js-plotly-plot')].find("
        "q => q.layout.title.text.includes('Confusion matrix: counts'));"
        " return p.data[0].customdata.flat().reduce((a, b) => a + b, 0); }")
    assert total == 2000
    assert main.get_by_role("button", name="Download weights").count() == 1
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1400})
    page.screenshot(path=str(ARTIFACTS / "results-tab.png"), full_page=True)

    # an image of one's own goes through the same views
    main.get_by_text("My own image", exact=True).click()
    wait_for_app(page)
    page.locator(f"{MAIN} [data-testid=stFileUploader] input[type=file]").set_input_files(
        files=[{"name": "square.png", "mimeType": "image/png", "buffer": _png()}])
    page.wait_for_function(
        f"() => ({CAPTIONS})().some(c => c === 'What the network sees')", timeout=120_000)
    wait_for_app(page)
    captions = page.evaluate(CAPTIONS)
    assert any(c.startswith("Saliency for '") for c in captions), captions
    assert any(c.startswith("Feature maps of") for c in captions), captions
    assert page.locator("[data-testid=stException]").count() == 0
