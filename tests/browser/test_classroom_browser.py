"""A class in real browsers (issue 12): three contexts on one server, a student, a classmate
and the teacher.

- Ada claims her name: her key lands in her address.
- Bob types "Ada" without the key: told the name is taken, and nothing of Ada's opens for him,
  neither by name nor by her run's link.
- The teacher unlocks the Teacher page with the code, sees Ada's run in the class table,
  locks the steps at 300, posts a class message with a link, and stops every run.
- Ada sees the message, the locked steps and her run "stopped ... on request of the teacher".
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from playground.runs import RunStore
from tests.browser.conftest import _serve, choose, start_training, wait_for_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MAIN = "[data-testid=stMain]"
SIDEBAR = "[data-testid=stSidebar]"
TEACHER_CODE = "chalk-and-talk"
MESSAGE = "Everyone: open the Deep sigmoid MLP and press Train <b>now</b>"


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    home = tmp_path_factory.mktemp("classroom")
    env = {"PLAYGROUND_TEACHER_CODE": TEACHER_CODE, "PLAYGROUND_DEVICE": "cpu",
           "PLAYGROUND_MAX_STEPS": "1000000"}
    with _serve(home, env=env) as url:
        yield url, home


def _context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    return context


def _type_name(pg, name: str) -> None:
    box = pg.locator(SIDEBAR).get_by_label("Your name", exact=True)
    box.fill(name)
    box.press("Enter")
    wait_for_app(pg)


def _query(pg) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(pg.url).query).items()}


def test_students_are_kept_apart_and_the_teacher_runs_the_room(browser, classroom) -> None:
    url, home = classroom
    store = RunStore(home / "runs" / "playground.sqlite")
    ada_ctx, bob_ctx, teacher_ctx = _context(browser), _context(browser), _context(browser)
    try:
        # -- Ada claims her name and starts a long run ------------------------------------
        ada = ada_ctx.new_page()
        ada.goto(f"{url}/train")
        wait_for_app(ada, "Start training")
        _type_name(ada, "Ada")
        ada.wait_for_function("() => new URLSearchParams(location.search).has('key')")
        key = _query(ada)["key"]
        assert _query(ada)["user"] == "Ada" and len(key) >= 43
        choose(ada, "Network", "MLP for 2-D points")
        start_training(ada, 200_000)
        ada.locator(MAIN).get_by_role("button", name="Stop training").wait_for()
        [run] = store.list_runs(owner="Ada")

        # -- Bob: Ada's name without the key gets nothing of hers -------------------------
        bob = bob_ctx.new_page()
        bob.goto(f"{url}/train?user=Ada&run={run.id}")
        wait_for_app(bob, "Start training")
        bob.locator(SIDEBAR).get_by_text("is taken").first.wait_for()
        assert bob.locator(MAIN).get_by_role("button", name="Stop training").count() == 0
        assert bob.locator(MAIN).get_by_role("button", name="Start training").is_disabled()
        assert "key" not in _query(bob)
        _type_name(bob, "Bob")  # his own name: still not Ada's run
        bob.goto(f"{url}/train?{'&'.join(f'{k}={v}' for k, v in _query(bob).items())}"
                 f"&run={run.id}")
        wait_for_app(bob, "Start training")
        bob.locator(MAIN).get_by_text(f"The link's run #{run.id} cannot be opened here").wait_for()
        assert bob.locator(MAIN).get_by_role("button", name="Stop training").count() == 0
        assert store.get_run(run.id).is_active and not store.stop_requested(run.id)

        # -- the teacher: unlock, see the class, set the room, stop everything ------------
        t = teacher_ctx.new_page()
        t.goto(url)
        wait_for_app(t, "Build a network")
        assert t.locator(SIDEBAR).get_by_role("link", name="Teacher").count() == 0
        t.locator(SIDEBAR).get_by_text("Teacher", exact=True).click()
        code = t.locator(SIDEBAR).get_by_label("Teacher's code", exact=True)
        code.fill(TEACHER_CODE)
        code.press("Enter")
        wait_for_app(t)
        assert TEACHER_CODE not in t.url
        t.locator(SIDEBAR).get_by_role("link", name="Teacher").click()
        wait_for_app(t, "Every student's runs")
        table = t.locator(f"{MAIN} [data-testid=stDataFrame]").first
        table.wait_for()
        t.locator(MAIN).get_by_text("1 runs").first.wait_for()
        t.get_by_role("tab", name="Settings and message").click()
        wait_for_app(t)
        t.locator(MAIN).get_by_label("Message (shown at the top of every student's page)",
                                     exact=True).fill(MESSAGE)
        link = t.locator(MAIN).get_by_label("Link under the message", exact=True)
        link.click()
        t.keyboard.type("Deep sigmoid MLP")  # a long list: search it, as a teacher would
        t.get_by_role("option", name="Preset: Deep sigmoid MLP (vanishing gradients)",
                      exact=True).click()
        wait_for_app(t)
        lock = t.locator(MAIN).get_by_label("Lock these training settings", exact=True)
        lock.click()
        t.get_by_role("option", name="Steps", exact=True).click()
        t.keyboard.press("Escape")
        wait_for_app(t)
        t.locator(MAIN).get_by_role("button", name="Save for the class").click()
        wait_for_app(t)
        t.get_by_role("tab", name="Class").click()
        wait_for_app(t)
        t.locator(MAIN).get_by_role("button", name="Stop all").click()
        ada_main = ada.locator(MAIN)
        ada_main.get_by_test_id("stProgress").first.filter(has_text="stopped").wait_for()
        stopped = store.get_run(run.id)
        assert stopped.status == "stopped" and stopped.stopped_by == "the teacher"
        assert stopped.message.endswith("on request of the teacher"), stopped.message

        # -- Ada: the message as text, its link, and the locked steps ---------------------
        ada.reload()
        wait_for_app(ada, "From the teacher")
        banner = ada.locator(MAIN).get_by_text(MESSAGE).first  # shown as typed, as text
        assert "From the teacher" in banner.inner_text()
        assert ada.locator(f"{MAIN} b").filter(has_text="now").count() == 0
        ada_main.get_by_text("on request of the teacher").first.wait_for()
        steps = ada_main.get_by_role("spinbutton", name="Steps", exact=True)
        assert steps.is_disabled() and steps.input_value() == "300"
        ada_main.get_by_role("button", name="Open Deep sigmoid MLP").click()
        wait_for_app(ada, "Start training")
        ada.wait_for_function(
            "() => [...document.querySelectorAll('input[role=combobox]')].some(e => "
            "e.getAttribute('aria-label') === 'Network' && e.value.startsWith('Deep sigmoid'))")
        assert _query(ada)["key"] == key  # the key stays in her address throughout
    finally:
        for ctx in (ada_ctx, bob_ctx, teacher_ctx):
            ctx.close()
