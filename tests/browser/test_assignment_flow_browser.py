"""An assignment from start to private leaderboard, all through the pages (issue 14), in real
Chromium against a real server: a teacher and two students, each in a browser context of
their own.

- The teacher unlocks the Teacher page, sets an assignment on the Assignments tab's form (the
  spirals, under 1k parameters, 10k MACs and 100 steps) and copies its link.
- Ada and Bob open the link, claim their names, press "Work on it", train the MLP for 2-D
  points on Train (the assignment fixes the data set) and submit the finished run from the
  Results tab; each is shown the validation accuracy the store recorded.
- Bob's Leaderboard page ranks both by validation accuracy and shows no test accuracy, nor
  does any websocket frame the server sends it hold one.
- The teacher closes the assignment; Bob's page then shows the private ranking, whose test
  accuracies and rank changes are checked against the store's own submissions (and the
  frames now hold the test accuracies: the frame check could fail).

The store is only read, for the assertions.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from playground.access import SYSTEM
from playground.assignments import AssignmentStore
from playground.leaderboard import Submission
from playground.store.engine import dispose_engine
from tests.browser.conftest import _serve, choose, start_training, wait_for_app
from tests.test_app_assignments import accuracy_forms

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MAIN = "[data-testid=stMain]"
SIDEBAR = "[data-testid=stSidebar]"
TEACHER_CODE = "chalk-and-talk"
TITLE = "Spirals under 1k"
SLUG = "spirals-under-1k"  # made from the title
STUDENTS = (("Ada", 60), ("Bob", 100))  # name, steps: different runs, different scores

# The rows of the ``n``-th dataframe in the main area, as text cells (Glide's accessible grid,
# header row first); null until the grid has filled its cells.
_ROWS = """([main, n]) => {
  const t = document.querySelectorAll(main + ' [data-testid=stDataFrame]')[n];
  if (!t) return null;
  const head = [...t.querySelectorAll('[role=columnheader]')].map(e => e.textContent.trim());
  const rows = [...t.querySelectorAll('[role=row]')]
    .map(r => [...r.querySelectorAll('[role=gridcell]')].map(e => e.textContent.trim()))
    .filter(r => r.length);
  return head.length && rows.length ? [head, ...rows] : null;
}"""


@dataclass
class Classroom:
    url: str
    home: Path
    store: AssignmentStore


@pytest.fixture(scope="module")
def classroom(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Classroom]:
    home = tmp_path_factory.mktemp("assignment-flow")
    (home / "runs").mkdir()
    db = f"sqlite:///{home / 'runs' / 'playground.sqlite'}"
    env = {"PLAYGROUND_TEACHER_CODE": TEACHER_CODE, "PLAYGROUND_DEVICE": "cpu",
           "PLAYGROUND_RUN_DIR": str(home / "runs"), "PLAYGROUND_DB_URL": ""}
    try:
        with _serve(home, env=env) as url:
            yield Classroom(url, home, AssignmentStore(db))
    finally:
        dispose_engine(db)


def _context(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    return context


def _table(pg, n: int) -> list[dict[str, str]]:
    """The ``n``-th dataframe of the main area as one dict per row (column -> shown text)."""
    handle = pg.wait_for_function(_ROWS, arg=[MAIN, n])
    head, *rows = handle.json_value()
    return [dict(zip(head, row, strict=True)) for row in rows]


def _student_rows(pg, n: int, names: set[str]) -> list[dict[str, str]]:
    """The ``n``-th table's rows once it lists every student in ``names`` (the grid fills its
    cells after it is drawn, and a live refresh redraws it)."""
    pg.wait_for_function(
        "([main, n, names]) => { const t = document.querySelectorAll(main + "
        "' [data-testid=stDataFrame]')[n]; if (!t) return false;"
        " const cells = [...t.querySelectorAll('[role=gridcell]')].map(e => e.textContent);"
        " return names.every(s => cells.some(c => c.startsWith(s))); }",
        arg=[MAIN, n, sorted(names)])
    return _table(pg, n)


def _unlock_teacher(pg, url: str) -> None:
    pg.goto(url)
    wait_for_app(pg, "Build a network")
    pg.locator(SIDEBAR).get_by_text("Teacher", exact=True).click()
    code = pg.locator(SIDEBAR).get_by_label("Teacher's code", exact=True)
    code.fill(TEACHER_CODE)
    code.press("Enter")
    wait_for_app(pg)
    pg.locator(SIDEBAR).get_by_role("link", name="Teacher").click()
    wait_for_app(pg, "Every student's runs")
    pg.get_by_role("tab", name="Assignments").click()
    wait_for_app(pg)


def _type(pg, label: str, value: str) -> None:
    box = pg.locator(MAIN).get_by_label(label, exact=True)
    box.fill(value)
    box.press("Enter")
    wait_for_app(pg)


def _create_assignment(t) -> str:
    """Fill the New assignment form and create it; returns the link the page shows."""
    main = t.locator(MAIN)
    main.get_by_text("No assignments yet").first.wait_for()
    _type(t, "Title", TITLE)
    choose(t, "Data set", "Spirals")
    _type(t, "Max parameters", "1k")
    _type(t, "Max MACs", "10k")
    main.get_by_role("spinbutton", name="Max training steps", exact=True).wait_for()
    _type(t, "Max training steps", "100")
    main.get_by_role("button", name="Create assignment").click()
    wait_for_app(t, f"Created {TITLE} (open)")
    code = main.get_by_test_id("stCode").filter(has_text=f"a={SLUG}").first
    code.wait_for()
    link = code.inner_text().strip()
    assert link.startswith("http") and "/leaderboard?" in link, link
    return link


def _train_and_submit(browser, link: str, name: str, steps: int,
                      frames: list[bytes]) -> tuple[object, str]:
    """A student's whole turn in a context of its own; returns the context (still open, on
    the Train page) and the message shown after the submission. Every websocket frame the
    server sends the page is added to ``frames``."""
    context = _context(browser)
    pg = context.new_page()
    pg.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(
        payload if isinstance(payload, bytes) else payload.encode())))
    pg.goto(link)
    wait_for_app(pg, TITLE)  # the link opens the assignment on the Leaderboard page
    box = pg.locator(SIDEBAR).get_by_label("Your name", exact=True)
    box.fill(name)
    box.press("Enter")
    wait_for_app(pg)
    pg.wait_for_function("() => new URLSearchParams(location.search).has('key')")
    main = pg.locator(MAIN)
    main.get_by_role("heading", name=TITLE).first.wait_for()
    main.get_by_text("You have 5 of 5 submissions left").first.wait_for()
    main.get_by_role("button", name="Work on it").click()
    wait_for_app(pg, "Build a network")
    pg.locator(SIDEBAR).get_by_role("link", name="Train").click()
    wait_for_app(pg, "Start training")
    choose(pg, "Network", "MLP for 2-D points")
    # the assignment fixes the data set: the spirals, shown and not to be changed
    pg.wait_for_function(
        "() => [...document.querySelectorAll('input[role=combobox]')].some(e => "
        "e.getAttribute('aria-label') === 'Data set' && e.value === 'Spirals' && e.disabled)")
    start_training(pg, steps)
    pg.wait_for_function(
        f"() => [...document.querySelectorAll('{MAIN} [data-testid=stProgress]')]"
        ".some(e => e.innerText.startsWith('finished'))", timeout=400_000)
    wait_for_app(pg)
    main.get_by_role("tab", name="Results").click()
    wait_for_app(pg)
    main.get_by_role("button", name=f"Submit to {TITLE}").click()
    done = main.get_by_text(f"Submitted to {TITLE}: validation accuracy").first
    done.wait_for()
    return context, done.inner_text()


def _hidden(subs: list[Submission]) -> list[float]:
    """Test accuracies sharing no form with any validation accuracy (as
    tests/browser/test_assignments_browser.py looks for them in the frames)."""
    public = {f for s in subs for f in accuracy_forms(s.val_acc)}
    return sorted(t for t in {s.test_acc for s in subs}
                  if t is not None and not public.intersection(accuracy_forms(t)))


def _found(frames: list[bytes], values: list[float]) -> list[float]:
    return [v for v in values if any(f in frame for frame in frames
                                     for f in accuracy_forms(v))]


def _by_student(subs: list[Submission]) -> dict[str, Submission]:
    assert len({s.student for s in subs}) == len(subs), subs  # one submission each
    return {s.student: s for s in subs}


def test_a_teacher_and_two_students_from_assignment_to_private_ranking(
        browser, classroom: Classroom) -> None:
    teacher_ctx = _context(browser)
    students: dict[str, object] = {}
    try:
        # -- the teacher sets the assignment on the form ----------------------------------
        t = teacher_ctx.new_page()
        _unlock_teacher(t, classroom.url)
        link = _create_assignment(t)
        [made] = classroom.store.list()
        assert (made.slug, made.title, made.state, made.dataset) == (SLUG, TITLE, "open",
                                                                      "spirals")
        assert (made.max_params, made.max_macs, made.max_steps) == (1000, 10_000, 100)

        # -- each student trains and submits through the pages ----------------------------
        shown: dict[str, str] = {}
        frames: dict[str, list[bytes]] = {}
        for name, steps in STUDENTS:
            frames[name] = []
            students[name], shown[name] = _train_and_submit(browser, link, name, steps,
                                                            frames[name])
        subs = _by_student(classroom.store.submissions(made.id, by=SYSTEM))
        assert set(subs) == {"Ada", "Bob"}
        for name, steps in STUDENTS:
            assert subs[name].steps == steps
            assert f"validation accuracy {subs[name].val_acc:.1%}." in shown[name], shown[name]
            assert subs[name].test_acc is not None

        # -- Bob's Leaderboard while it is open: both ranked, no test accuracy ------------
        bob = students["Bob"].pages[0]
        hidden = _hidden(list(subs.values()))
        assert hidden, "every test accuracy equals a validation accuracy: nothing to look for"
        frames["Bob"].clear()  # from here on: what the Leaderboard page is sent
        bob.locator(SIDEBAR).get_by_role("link", name="Leaderboard").click()
        wait_for_app(bob, "Public ranking: validation accuracy")
        main = bob.locator(MAIN)
        main.get_by_text("Open for submissions").first.wait_for()
        public = _student_rows(bob, 0, {"Ada", "Bob (you)"})
        assert sorted(r["student"] for r in public) == ["Ada", "Bob (you)"]
        assert [r["rank"] for r in public] == ["1", "2"]
        for row in public:  # the grid's cells hold the values themselves (shown as percents)
            assert float(row["val acc"]) == subs[row["student"].removesuffix(" (you)")].val_acc
        vals = [float(r["val acc"]) for r in public]
        assert vals == sorted(vals, reverse=True), public
        assert "test acc" not in public[0] and "change" not in public[0]
        text = main.inner_text()
        assert "Private ranking" not in text and "test acc" not in text.lower()
        assert frames["Bob"] and not _found(frames["Bob"], hidden)

        # -- the teacher closes it; Bob's page turns to the private ranking ---------------
        t.get_by_role("tab", name="Assignments").click()
        wait_for_app(t)
        t.locator(MAIN).get_by_role("button", name="Close", exact=True).click()
        wait_for_app(t, f"{TITLE}: closed.")
        assert classroom.store.get(made.id).state == "closed"
        main.get_by_text("Private ranking: test accuracy").first.wait_for(timeout=60_000)
        main.get_by_text("Closed: final ranking").first.wait_for()
        wait_for_app(bob)
        private = _student_rows(bob, 0, {"Ada", "Bob (you)"})
        assert [r["rank"] for r in private] == ["1", "2"]
        for row in private:
            sub = subs[row["student"].removesuffix(" (you)")]
            assert float(row["test acc"]) == sub.test_acc, (row, sub)
            assert float(row["val acc"]) == sub.val_acc, (row, sub)
            change = int(row["public rank"]) - int(row["rank"])
            assert row["change"] == ("=" if change == 0 else
                                     f"▲{change}" if change > 0 else f"▼{-change}"), row
        # the private order is the test accuracies' (ties: same MACs, then the earlier one)
        accs = [subs[r["student"].removesuffix(" (you)")].test_acc for r in private]
        assert accs == sorted(accs, reverse=True), private
        assert main.get_by_text("Public ranking: validation accuracy").count() >= 1
        assert _found(frames["Bob"], hidden) == hidden  # the frame check above could fail
    finally:
        for ctx in (teacher_ctx, *students.values()):
            ctx.close()
