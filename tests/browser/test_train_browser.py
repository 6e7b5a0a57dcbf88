"""Real Chromium: start a run on the Train page, watch its chart grow live, stop it, reload;
a run that finishes shows its end (no "Stop training", the accuracy chart) in one refresh.

Locators are scoped to the page's main content (``stMain``): Streamlit's own header shows a
"Stop" of its own while a script runs.
"""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import pytest

from tests.browser.conftest import ARTIFACTS, choose, wait_for_app

pytestmark = pytest.mark.browser

MAIN = "[data-testid=stMain]"
POINTS = (f"() => {{ const p = document.querySelector('{MAIN} .js-plotly-plot');"
          " return p && p.data && p.data.length ? Math.max(...p.data.map(t => (t.x || []).length))"
          " : 0; }")
# Record the run view as painted, once per animation frame: progress text, whether "Stop
# training" is there, whether the accuracy chart is drawn. Only changes are kept. (Streamlit
# replaces a Plotly chart's DOM node on every update and Plotly draws the new one within the
# same frame, so a per-mutation record would see charts vanish that a person never sees.)
WATCH = f"""() => {{
  window.__views = [];
  const main = document.querySelector('{MAIN}');
  const title = p => String((p.layout && p.layout.title && p.layout.title.text) || '')
                       .replace(/<[^>]*>/g, '');
  const view = () => {{
    const bar = main.querySelector('[data-testid=stProgress]');
    const v = {{
      progress: bar ? bar.innerText.trim() : '',
      stop: [...main.querySelectorAll('button')].some(b => b.innerText.includes('Stop training')),
      accuracy: [...main.querySelectorAll('.js-plotly-plot')]
        .some(p => title(p).startsWith('Accuracy')),
    }};
    const last = window.__views[window.__views.length - 1];
    if (!last || last.progress !== v.progress || last.stop !== v.stop
        || last.accuracy !== v.accuracy) window.__views.push(v);
  }};
  const tick = () => {{ view(); requestAnimationFrame(tick); }};
  tick();
}}"""


def _progress(pg) -> str:
    box = pg.get_by_test_id("stMain").get_by_test_id("stProgress")
    return box.first.inner_text() if box.count() else ""


def _query(pg) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(pg.url).query).items()}


def _open_train(page, app_url: str, user: str) -> None:
    page.goto(f"{app_url}/?user={user}")
    wait_for_app(page, "Build a network")
    page.get_by_role("link", name="Train").click()
    wait_for_app(page, "Start training")


def test_live_training_grows_stops_and_reattaches(page, app_url: str) -> None:
    _open_train(page, app_url, "Grace")
    main = page.get_by_test_id("stMain")
    choose(page, "Network", "Small CNN (starter)")
    steps = main.get_by_role("spinbutton", name="Steps", exact=True)
    steps.fill("3000")
    steps.press("Enter")
    wait_for_app(page)
    main.get_by_role("button", name="Start training").click()

    # the first points arrive, then more: the chart updates without any click
    page.wait_for_function(f"({POINTS})() > 0", timeout=180_000)
    first = page.evaluate(POINTS)
    page.wait_for_function(f"({POINTS})() > {first}", timeout=180_000)
    assert "running" in _progress(page)
    ARTIFACTS.mkdir(exist_ok=True)
    page.set_viewport_size({"width": 1280, "height": 1100})
    page.screenshot(path=str(ARTIFACTS / "train-page.png"))

    main.get_by_role("button", name="Stop training").click()
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{MAIN} [data-testid=stProgress]')]"
        ".some(e => e.innerText.startsWith('stopped'))", timeout=60_000)
    stopped_at = _progress(page)
    # the closed run box must not keep a status from when it was drawn ("queued ...")
    label = main.get_by_role("combobox", name="Run").input_value()
    assert "queued" not in label and "running" not in label, label
    # the run's end redraws the page once; wait for the chart to be drawn again
    page.wait_for_function(f"({POINTS})() >= {first}", timeout=60_000)
    points = page.evaluate(POINTS)
    # the address names the run and the network
    wait_for_app(page)
    query = _query(page)
    run_id = label.split()[0].lstrip("#")
    assert query["run"] == run_id and query["net"] == "preset:small_cnn", query

    # a reload (a new session) shows the same run, network and points from the store
    page.reload()
    wait_for_app(page, "Start training")
    page.wait_for_function(f"({POINTS})() >= {points}", timeout=60_000)
    time.sleep(0.5)
    assert _progress(page) == stopped_at
    assert main.get_by_role("combobox", name="Network").input_value() == "Small CNN (starter)"
    assert main.get_by_role("combobox", name="Run").input_value().startswith(f"#{run_id} ")


def test_a_finished_run_shows_its_end_in_one_refresh(page, app_url: str) -> None:
    _open_train(page, app_url, "Hopper")
    main = page.get_by_test_id("stMain")
    choose(page, "Network", "MLP for 2-D points")
    steps = main.get_by_role("spinbutton", name="Steps", exact=True)
    # long enough (~10 s here) to be watched running with its charts: a run that ends between
    # two polls straight from the queue draws its charts for the first time at its end, and
    # the browser then loads Plotly's code first (Streamlit loads it lazily: 0.2-2 s)
    steps.fill("3000")
    steps.press("Enter")
    wait_for_app(page)
    page.evaluate(WATCH)
    main.get_by_role("button", name="Start training").click()
    page.wait_for_function(
        f"() => [...document.querySelectorAll('{MAIN} [data-testid=stProgress]')]"
        ".some(e => e.innerText.startsWith('finished'))", timeout=240_000)
    wait_for_app(page)
    views = page.evaluate("window.__views")
    ended = [v for v in views if v["progress"].startswith("finished")]
    assert ended, views
    first = views.index(ended[0])
    # it was watched running, with "Stop training" and its accuracy chart
    assert any(v["progress"].startswith("running") and v["stop"] and v["accuracy"]
               for v in views[:first]), views
    # the first view that says "finished" already has the final step, no "Stop training"
    # and the accuracy chart; nothing after it brings the button back or loses the chart
    assert ended[0]["progress"].startswith("finished: step 3,000 of 3,000"), ended[0]
    assert all(not v["stop"] and v["accuracy"] for v in views[first:]), views[first:]
