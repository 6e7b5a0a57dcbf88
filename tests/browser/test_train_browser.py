"""Real Chromium: start a run on the Train page, watch its chart grow live, stop it, reload."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import ARTIFACTS, choose, wait_for_app

pytestmark = pytest.mark.browser

POINTS = ("() => { const p = document.querySelector('.js-plotly-plot');"
          " return p && p.data && p.data.length ? Math.max(...p.data.map(t => (t.x || []).length))"
          " : 0; }")


def _progress(pg) -> str:
    box = pg.locator('[data-testid="stProgress"]')
    return box.first.inner_text() if box.count() else ""


def test_live_training_grows_stops_and_reattaches(page, app_url: str) -> None:
    page.goto(f"{app_url}/?user=Grace")
    wait_for_app(page, "Build a network")
    page.get_by_role("link", name="Train").click()
    wait_for_app(page, "Start training")
    choose(page, "Network", "Small CNN (starter)")
    steps = page.get_by_role("spinbutton", name="Steps", exact=True)
    steps.fill("3000")
    steps.press("Enter")
    wait_for_app(page)
    page.get_by_role("button", name="Start training").click()

    # the first points arrive, then more: the chart updates without any click
    page.wait_for_function(f"({POINTS})() > 0", timeout=90_000)
    first = page.evaluate(POINTS)
    page.wait_for_function(f"({POINTS})() > {first}", timeout=90_000)
    assert "running" in _progress(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.screenshot(path=str(ARTIFACTS / "train-page.png"))

    # the run's Stop, not the header's (Streamlit's own Stop shows while a rerun is under way)
    page.get_by_role("button", name="Stop", exact=True).and_(
        page.get_by_test_id("stBaseButton-secondary")).click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('[data-testid=stProgress]')]"
        ".some(e => e.innerText.startsWith('stopped'))", timeout=60_000)
    stopped_at = _progress(page)
    # the closed run box must not keep a status from when it was drawn ("queued ...")
    label = page.get_by_role("combobox", name="Run").input_value()
    assert "queued" not in label and "running" not in label, label
    # the run's end redraws the page once; wait for the chart to be drawn again
    page.wait_for_function(f"({POINTS})() >= {first}", timeout=60_000)
    points = page.evaluate(POINTS)

    # a reload (a new session) shows the same run and the same points from the store
    page.reload()
    wait_for_app(page, "Start training")
    page.wait_for_function(f"({POINTS})() >= {points}", timeout=60_000)
    time.sleep(0.5)
    assert _progress(page) == stopped_at
