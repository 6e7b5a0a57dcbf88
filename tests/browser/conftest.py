"""Fixtures for end-to-end tests: a real `streamlit run app.py` server and Debian's Chromium.

Locally the browser tests skip with a reason when Chromium or Playwright is missing; in CI
(``CI`` or ``PLAYGROUND_REQUIRE_BROWSER`` set) a missing browser is a failure, never a skip.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.app_server import AppServerError, serve_app

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("PLAYGROUND_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]
ARTIFACTS = ROOT / "test-artifacts"


def _must_run() -> bool:
    return bool(os.environ.get("PLAYGROUND_REQUIRE_BROWSER") or os.environ.get("CI"))


def _unavailable(reason: str) -> None:
    if _must_run():
        pytest.fail(f"browser tests must run in CI but cannot: {reason}")
    pytest.skip(reason)


@contextlib.contextmanager
def _serve(home: Path, *extra_args: str, env: dict[str, str] | None = None,
           port: int | None = None, root: Path | None = None) -> Iterator[str]:
    """Start the app exactly as the README does, on a free loopback port; stop it by PID
    (:func:`tests.app_server.serve_app`); yields its URL. ``extra_args`` are further
    ``streamlit run`` options (``--theme.base``, ``dark``); ``env`` adds environment variables
    (``PLAYGROUND_RUNNER``...); ``port`` is one chosen beforehand; ``root`` a folder whose
    ``app.py`` runs instead of the repository's. A server that does not start fails the
    test."""
    with contextlib.ExitStack() as stack:
        try:
            server = stack.enter_context(serve_app(home, *extra_args, env=env, port=port,
                                                   **({"root": root} if root else {})))
        except AppServerError as e:
            pytest.fail(str(e))
        yield server.url


@pytest.fixture(scope="session")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One server for the session's browser tests."""
    with _serve(tmp_path_factory.mktemp("playground-home")) as url:
        yield url


@pytest.fixture()
def fresh_app_url(tmp_path: Path) -> Iterator[str]:
    """A server of its own that no page has been opened on yet (first-request behaviour)."""
    with _serve(tmp_path) as url:
        yield url


@pytest.fixture(scope="package")
def browser() -> Iterator[object]:
    """One Chromium for this package's tests, closed when they are done: Playwright's sync API
    keeps an asyncio loop running in the main thread while it is open, which would break later
    tests elsewhere that run their own loop (asyncio.run, another sync_playwright)."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        _unavailable(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -r "
                     "requirements-dev.txt)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture()
def page(browser, app_url: str, request: pytest.FixtureRequest) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900},
                                  accept_downloads=True)
    context.set_default_timeout(60_000)
    pg = context.new_page()
    yield pg
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, p in enumerate(context.pages):
            p.screenshot(path=str(ARTIFACTS / f"failed-{request.node.name}-{i}.png"))
    context.close()


def wait_for_app(pg, text: str | None = None) -> None:
    """Wait until Streamlit has finished running the script (and ``text`` is visible)."""
    pg.wait_for_selector('[data-testid="stApp"]')
    if text:
        pg.get_by_text(text, exact=False).first.wait_for()
    deadline = time.time() + 60
    while time.time() < deadline:
        running = pg.locator('[data-testid="stStatusWidget"]').count()
        if not running:
            break
        time.sleep(0.2)
    time.sleep(0.3)


def pick_option(pg, open_list: Callable[[], None], option: str) -> None:
    """Open a dropdown with ``open_list()`` and click ``option``, retrying while a rerun
    replaces the widget under the pointer (the list then belongs to a stale widget)."""
    for _ in range(20):
        open_list()
        item = pg.get_by_role("option", name=option, exact=True)
        try:
            item.wait_for(timeout=3_000)
            item.click()
            return
        except Exception:
            pg.keyboard.press("Escape")
            wait_for_app(pg)
    raise AssertionError(f"option {option!r} never appeared")


def choose(pg, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox labelled ``label`` and wait until it shows it."""
    pick_option(pg, lambda: pg.get_by_label(label, exact=True).first.click(), option)
    pg.wait_for_function(
        "([label, option]) => [...document.querySelectorAll('input[role=combobox]')]"
        ".some(e => e.getAttribute('aria-label') === label && e.value === option)",
        arg=[label, option])
    wait_for_app(pg)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Remember each phase's report on the item so fixtures can screenshot failures."""
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


def start_training(pg, steps: int) -> None:
    """On the Train page: set Steps to ``steps`` and press Start training."""
    main = pg.locator("[data-testid=stMain]")
    # "Steps", or "Steps (at most 100)" under a class cap or an assignment's
    box = main.get_by_role("spinbutton", name=re.compile(r"^Steps( \(at most [\d,]+\))?$"))
    # a rerun still drawing (its status widget shows only after a moment) can leave the old
    # box beside the new one: wait until Streamlit has removed the stale one
    deadline = time.time() + 60
    while box.count() != 1 and time.time() < deadline:
        time.sleep(0.2)
    box.fill(str(steps))
    box.press("Enter")
    wait_for_app(pg)
    start = main.get_by_role("button", name="Start training")
    # a rerun that moved the page (a one-time message gone) can leave the old button on
    # screen beside the new one for a moment: wait until Streamlit has removed the stale one
    deadline = time.time() + 60
    while start.count() != 1 and time.time() < deadline:
        time.sleep(0.2)
    start.click()
