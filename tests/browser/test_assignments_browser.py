"""The hidden test split stays on the server (issue 14), checked in real Chromium against a
real server: a student watches an open assignment's Leaderboard page, and nothing the server
sends that page (every websocket frame: dataframes travel as Arrow, charts as JSON) holds a
test accuracy or the test split's seed. When the teacher closes the assignment, the page's own
refresh brings the private ranking, and the same search then finds the test accuracies in the
frames: the check can fail. A link opens the assignment directly (names hidden in present
mode), and a real click on a point of the scatter opens that submission's design on Build.

The submissions are real: tiny MLPs trained on the spirals in this process
(``jobs.execute_run``) and submitted through :meth:`AssignmentStore.submit` before the page
opens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

import pytest

from playground.access import SYSTEM, teacher
from playground.assignments import Assignment, AssignmentStore
from playground.identity import IdentityStore
from playground.jobs import execute_run
from playground.leaderboard import Submission
from playground.runs import RunStore
from playground.share import decode_spec
from playground.spec import spec_from_dict
from playground.store.engine import dispose_engine
from tests.browser.conftest import _serve, wait_for_app
from tests.test_app_assignments import accuracy_forms as _forms
from tests.test_assignments import _mlp

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]

MAIN = "[data-testid=stMain]"
TEST_SEED = 987_654_321_123
DATA = {"dataset": "spirals", "n_train": 256, "n_val": 128}
RUNS = (("Ada", 12, 0), ("Bob", 8, 1), ("Cara", 4, 1), ("Dan", 16, 2))


# Where a submission's point is on screen: Plotly's axes map its data coordinates to pixels
# (as tests/browser/test_build_browser.py finds a diagram box).
_POINT = """(sid) => {
  const gd = document.querySelector('[data-testid=stMain] .js-plotly-plot');
  const t = gd && (gd._fullData || []).find(d => d.name === 'submissions');
  if (!t) return null;
  const i = [...t.customdata].findIndex(c => c[0] === sid);
  if (i < 0) return null;
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
  const r = gd.getBoundingClientRect();
  return {x: r.left + xa._offset + xa.d2p(t.x[i]), y: r.top + ya._offset + ya.d2p(t.y[i])};
}"""


@dataclass
class Board:
    url: str  # the app's
    store: AssignmentStore
    assignment: Assignment
    bob_key: str


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Board]:
    home = tmp_path_factory.mktemp("assignments")
    db = f"sqlite:///{home / 'runs' / 'playground.sqlite'}"
    (home / "runs").mkdir()
    runs = RunStore(db)
    store = AssignmentStore(db)
    a = store.create({"title": "Spirals under 1k", **DATA, "n_test": 200, "max_params": 1000,
                      "max_macs": 10_000, "max_steps": 300, "test_seed": TEST_SEED,
                      "instructions": "Fewest MACs **wins ties**."}, by=teacher())
    for owner, width, seed in RUNS:
        rid = runs.create_run(owner, f"mlp{width}", _mlp(width), {
            **DATA, "steps": 200, "lr": 0.05, "eval_every": 25, "device": "cpu",
            "optimizer": "adam", "seed": seed})
        assert execute_run(rid, db, device="cpu") == "finished"
        store.submit(a.id, rid, by=SYSTEM)
    key = IdentityStore(db).claim("Bob")
    env = {"PLAYGROUND_DEVICE": "cpu", "PLAYGROUND_RUN_DIR": str(home / "runs"),
           "PLAYGROUND_DB_URL": "", "PLAYGROUND_TEACHER_CODE": "chalk"}
    try:
        with _serve(home, env=env) as url:
            yield Board(url, store, a, key)
    finally:
        dispose_engine(db)


def _hidden(subs: list[Submission]) -> list[float]:
    """Test accuracies sharing no form with any validation accuracy."""
    public = {f for s in subs for f in _forms(s.val_acc)}
    return [t for t in {s.test_acc for s in subs}
            if t is not None and not public.intersection(_forms(t))]


def _found(frames: list[bytes], values: list[float]) -> list[float]:
    return [v for v in values if any(f in frame for frame in frames for f in _forms(v))]


def test_an_open_leaderboard_sends_no_test_accuracy(browser, board: Board) -> None:
    a = board.assignment
    subs = board.store.submissions(a.id, by=SYSTEM)
    hidden = _hidden(subs)
    assert hidden, "every test accuracy equals a validation accuracy: nothing to look for"
    frames: list[bytes] = []

    def record(ws) -> None:
        ws.on("framereceived", lambda payload: frames.append(
            payload if isinstance(payload, bytes) else payload.encode()))

    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.set_default_timeout(120_000)
    try:
        pg = context.new_page()
        pg.on("websocket", record)
        pg.goto(f"{board.url}/leaderboard?a={a.slug}&user=Bob&key={board.bob_key}")
        wait_for_app(pg, "Public ranking: validation accuracy")
        main = pg.locator(MAIN)
        main.locator(".js-plotly-plot").first.wait_for()  # the scatter is drawn
        main.get_by_text("Open for submissions").first.wait_for()
        main.get_by_text("wins ties").first.wait_for()  # the teacher's markdown
        main.get_by_text("You have 4 of 5 submissions left").first.wait_for()
        assert frames, "no websocket frame recorded"
        # nothing the server sent holds a test accuracy or the test split's seed
        assert not _found(frames, hidden)
        assert not [f for f in frames if str(TEST_SEED).encode() in f]
        text = main.inner_text()
        assert "Private ranking" not in text and "test accuracy" not in text.lower()

        # the teacher closes it: the page's own refresh shows the private ranking
        board.store.close(a.id, by=teacher())
        main.get_by_text("Private ranking: test accuracy").first.wait_for(timeout=60_000)
        main.get_by_text("Closed: final ranking").first.wait_for()
        wait_for_app(pg)
        # the search finds them now: the check above could have failed
        assert _found(frames, hidden)
        assert not [f for f in frames if str(TEST_SEED).encode() in f]
    finally:
        context.close()


def test_a_link_opens_the_assignment_directly(browser, board: Board) -> None:
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    try:
        page.goto(f"{board.url}/leaderboard?a={board.assignment.slug}&present=1")
        wait_for_app(page, "Public ranking: validation accuracy")
        main = page.locator(MAIN)
        main.get_by_role("heading", name="Spirals under 1k").first.wait_for()
        assert "a=spirals-under-1k" in page.url
        # the projector hides the names
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length")
        hover = page.evaluate(
            "() => JSON.stringify(document.querySelector('.js-plotly-plot').data)")
        assert "Student 1" in hover and "Ada" not in hover and "Bob" not in hover
        # a real click on Bob's point offers his design, which opens on Build (outside present
        # mode, whose CSS zoom Plotly's pixel maths does not know)
        page.goto(f"{board.url}/leaderboard?a={board.assignment.slug}")
        wait_for_app(page, "Public ranking: validation accuracy")
        main.locator(".js-plotly-plot").first.wait_for()
        bob = next(s for s in board.store.submissions(board.assignment.id, by=SYSTEM)
                   if s.student == "Bob")
        main.locator(".js-plotly-plot").first.scroll_into_view_if_needed()
        where = page.evaluate(_POINT, bob.id)
        assert where is not None, "no point for Bob's submission"
        page.mouse.move(where["x"], where["y"])
        page.mouse.click(where["x"], where["y"])
        main.get_by_role("button", name="Open this design on Build").click()
        wait_for_app(page, "Build a network")
        page.wait_for_function("() => new URLSearchParams(location.search).has('d')")
        link = parse_qs(urlparse(page.url).query)["d"][0]  # Build mirrors its design here
        assert decode_spec(link) == spec_from_dict(bob.spec)
    finally:
        page.close()
