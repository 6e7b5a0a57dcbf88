"""Assignments in the app (issue 14) with Streamlit's AppTest: the teacher sets, edits, opens,
closes and exports an assignment on the Teacher page; the Leaderboard page shows a student the
public ranking and no test accuracy anywhere while the assignment is open, the private ranking
with the change of place after the close, and the accuracy-MACs scatter with its Pareto front.

Submissions are real: tiny MLPs trained on the spirals (``jobs.execute_run``) and submitted
through :meth:`AssignmentStore.submit`. The oracles are the store read as the system (which
always sees test accuracies) and brute-force rankings and fronts written here.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.json_format import MessageToDict
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from playground.access import SYSTEM, teacher
from playground.assignments import AssignmentStore
from playground.jobs import execute_run
from playground.leaderboard import EXPORT_COLUMNS, Submission, pareto_front
from playground.runs import RunStore
from playground.share import app_root, page_link
from playground.spec import spec_from_dict
from playground.store import default_url
from playground.store.engine import dispose_engine
from tests.helpers import shown, with_key
from tests.test_app_hardening import RAW, _markdown
from tests.test_assignments import _mlp
from ui.leaderboard_charts import FRONT_NAME, POINTS_NAME, selected_submission
from ui.leaderboard_view import rank_change_text

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TEACHER_CODE = "chalk"
DATA = {"dataset": "spirals", "n_train": 256, "n_val": 128}
# (owner, MLP width, seed): 200 Adam steps give validation accuracies from 0.70 to 0.89 with
# different test accuracies; Ada submits twice.
RUNS = (("Ada", 12, 0), ("Ada", 4, 2), ("Bob", 8, 1), ("Cara", 4, 1), ("Dan", 16, 2))


@dataclass
class World:
    url: str
    runs: RunStore
    store: AssignmentStore
    run_ids: list[int]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Five finished trainings of four students in this module's store."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("home")
        mp.setenv("PLAYGROUND_HOME", str(home))
        mp.setenv("PLAYGROUND_TEACHER_CODE", TEACHER_CODE)
        mp.setenv("PLAYGROUND_DEVICE", "cpu")
        mp.delenv("PLAYGROUND_CLASS_CODE", raising=False)
        mp.delenv("PLAYGROUND_DB_URL", raising=False)
        url = default_url()
        runs = RunStore(url)
        ids = []
        for owner, width, seed in RUNS:
            rid = runs.create_run(owner, f"mlp{width}", _mlp(width), _settings(seed=seed))
            assert execute_run(rid, url) == "finished"
            ids.append(rid)
        yield World(url, runs, AssignmentStore(url), ids)
        dispose_engine(url)


def _settings(**kw: object) -> dict:
    return {**DATA, "steps": 200, "lr": 0.05, "eval_every": 25, "device": "cpu",
            "optimizer": "adam", **kw}


def _assign(w: World, title: str, submit: bool = True, **kw: object) -> Any:
    """A new assignment on the runs' data, with every run submitted (as the system)."""
    a = w.store.create({"title": title, **DATA, "n_test": 200, "max_params": 1000,
                        "max_macs": 10_000, "max_steps": 300, "locked": {"optimizer": "adam"},
                        "submissions_per_student": 3, "test_seed": 1234, **kw}, by=teacher())
    if submit:
        for rid in w.run_ids:
            w.store.submit(a.id, rid, by=SYSTEM)
    return a


def _app(query: dict[str, str] | None = None, page: str = "pages/leaderboard.py",
         teacher_code: bool = False) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in with_key(query or {}).items():
        at.query_params[k] = v
    at.run()
    if teacher_code:
        at.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
    for k, v in (query or {}).items():  # the address a link opens (Build rewrote it)
        if k not in ("user", "key"):
            at.query_params[k] = v
    at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _teacher_tab() -> AppTest:
    at = _app(page="pages/teacher.py", teacher_code=True)
    at.session_state["teacher_tab"] = "Assignments"
    at.run()
    assert not at.exception, at.exception
    return at


def _boards(at: AppTest) -> list[Any]:
    """The leaderboard tables on the page (DataFrames)."""
    return [d.value for d in at.dataframe if "val acc" in d.value.columns]


def _frame(at: AppTest, key: str) -> Any:
    """The private (``lb_private_table``: it has a change column) or the public table."""
    [df] = [d for d in _boards(at) if ("change" in d.columns) == (key == "lb_private_table")]
    return df


def _everything(at: AppTest, root: Any = None) -> bytes:
    """Every element the page sent (serialised protos: dataframes as Arrow, charts as JSON;
    those under ``root`` only, if given) and every session-state value, as bytes to
    search."""
    parts: list[bytes] = []

    def walk(node: Any) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            parts.append(proto.SerializeToString())
            parts.append(json.dumps(MessageToDict(proto)).encode())
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree if root is None else root)
    state = at.session_state.to_dict()
    parts.append(repr(sorted(state.items(), key=lambda kv: str(kv[0]))).encode())
    return b"\n".join(parts)


def accuracy_forms(acc: float) -> list[bytes]:
    """How an accuracy could travel to a page: float64 and float32 (Arrow tables), a number in
    a JSON array (a chart's percent values) and the percent texts pages write (hover text,
    captions). Short decimals alone ("0.66") are left out: they occur in any page."""
    pct = repr(100 * acc).encode()
    return [struct.pack("<d", acc), struct.pack("<f", acc),
            *(a + pct + b for a in (b"[", b",", b", ") for b in (b",", b"]")),
            f"{100 * acc:.2f}&#37;".encode(), f"{100 * acc:.2f}%".encode(),
            f"{100 * acc:.1f}%".encode()]


def _hidden_values(subs: list[Submission]) -> list[float]:
    """Test accuracies that no validation accuracy shares any form with (so finding one of
    their forms on the page can only mean a test accuracy was sent)."""
    public = {f for s in subs for f in accuracy_forms(s.val_acc)}
    return [t for t in {s.test_acc for s in subs}
            if t is not None and not public.intersection(accuracy_forms(t))]


def _best_public(subs: list[Submission]) -> dict[str, Submission]:
    """Brute force: each student's submission with the highest validation accuracy, then
    fewer MACs, then the earlier one."""
    best: dict[str, Submission] = {}
    for s in subs:
        b = best.get(s.student.casefold())
        if b is None or (-s.val_acc, s.macs, s.submitted_at, s.id) < (
                -b.val_acc, b.macs, b.submitted_at, b.id):
            best[s.student.casefold()] = s
    return best


# -- the teacher's page -----------------------------------------------------------------------
def test_the_teacher_creates_edits_opens_and_closes_an_assignment(world: World) -> None:
    at = _teacher_tab()
    at.text_input(key="ta_new_title").input("Spirals with a <b>tiny</b> budget")
    at.text_area(key="ta_new_instructions").input("Use **at most** three layers.")
    at.selectbox(key="ta_new_dataset").set_value("spirals").run()
    for field, value in (("n_train", 256), ("n_val", 128), ("n_test", 200)):
        at.number_input(key=f"ta_new_{field}_spirals").set_value(value)
    at.text_input(key="ta_new_max_params").input("1k")
    at.text_input(key="ta_new_max_macs").input("not a count")
    at.number_input(key="ta_new_max_steps").set_value(250)
    at.multiselect(key="ta_new_locked").select("optimizer").select("batch_size").run()
    at.selectbox(key="ta_new_lock_optimizer").set_value("adam")
    at.number_input(key="ta_new_lock_batch_size").set_value(32)
    at.number_input(key="ta_new_subs").set_value(4)
    at.toggle(key="ta_new_has_deadline").set_value(True).run()
    day, hour = dt.date(2031, 5, 14), dt.time(17, 30)
    at.date_input(key="ta_new_date").set_value(day)
    at.time_input(key="ta_new_time").set_value(hour)
    at.button(key="ta_create").click().run()
    assert not at.exception, at.exception
    # a budget that does not read: one line, nothing stored
    [err] = [shown(e.value) for e in at.main.error]
    assert "the MAC budget 'not a count' is not a count like 100k" in err and "\n" not in err
    assert not [a for a in world.store.list() if a.title.startswith("Spirals with")]

    at.text_input(key="ta_new_max_macs").input("20k")
    at.button(key="ta_create").click().run()
    assert not at.exception, at.exception
    [a] = [a for a in world.store.list() if a.title.startswith("Spirals with")]
    assert (a.slug, a.dataset, a.n_train, a.n_val, a.n_test) == (
        "spirals-with-a-b-tiny-b-budget", "spirals", 256, 128, 200)
    assert (a.max_params, a.max_macs, a.max_steps, a.max_train_memory_bytes) == (
        1000, 20_000, 250, None)
    assert a.locked == {"optimizer": "adam", "batch_size": 32}
    assert a.submissions_per_student == 4 and a.state == "open"
    assert a.instructions == "Use **at most** three layers."
    # AppTest has no browser time zone: the server's local time
    assert a.deadline == dt.datetime.combine(day, hour).timestamp()
    assert any(f"Created {a.title} (open)" in shown(s.value) for s in at.success)
    # the new assignment is picked, with the link that opens it on the Leaderboard page
    assert at.selectbox(key="ta_pick").value == a.slug
    assert [c.value for c in at.code] == [f"/leaderboard?a={a.slug}"]

    at.button(key=f"ta_state_{a.id}").click().run()
    assert world.store.get(a.slug).state == "closed"
    assert at.button(key=f"ta_state_{a.id}").label == "Reopen"
    at.button(key=f"ta_state_{a.id}").click().run()
    assert world.store.get(a.slug).state == "open"

    at.toggle(key="ta_edit").set_value(True).run()
    prefix = f"ta_e{a.id}_"
    assert at.text_input(key=prefix + "max_params").value == "1k"  # reads back as typed
    at.text_input(key=prefix + "max_params").input("1.5k")
    at.text_input(key=prefix + "max_memory").input("2MiB")
    at.toggle(key=prefix + "has_deadline").set_value(False)
    at.button(key=f"ta_save_{a.id}").click().run()
    assert not at.exception, at.exception
    edited = world.store.get(a.slug)
    assert (edited.max_params, edited.max_train_memory_bytes, edited.deadline) == (
        1500, 2 * 2**20, None)
    assert (edited.max_macs, edited.locked, edited.test_seed) == (20_000, a.locked, a.test_seed)
    assert at.toggle(key="ta_edit").value is False
    # one made closed has never been open: "Open", not "Reopen"
    later = _assign(world, "Made closed", submit=False, state="closed")
    at.run()
    at.selectbox(key="ta_pick").set_value(later.slug).run()
    assert at.button(key=f"ta_state_{later.id}").label == "Open"


def test_the_teacher_downloads_every_submission_as_csv(world: World,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    stores: list[MemoryMediaFileStorage] = []  # the media store of each AppTest run
    init = MemoryMediaFileStorage.__init__

    def keep(self: MemoryMediaFileStorage, endpoint: str) -> None:
        init(self, endpoint)
        stores.append(self)

    monkeypatch.setattr(MemoryMediaFileStorage, "__init__", keep)
    a = _assign(world, "CSV export")
    at = _teacher_tab()
    at.selectbox(key="ta_pick").set_value(a.slug).run()
    [button] = [b for b in at.get("download_button") if b.proto.id.endswith(f"ta_csv_{a.id}")]
    file = stores[-1].get_file(button.proto.url.rsplit("/", 1)[1])
    assert file.mimetype == "text/csv" and file.filename == f"{a.slug}.csv"
    rows = list(csv.DictReader(io.StringIO(file.content.decode())))
    subs = world.store.submissions(a.slug, by=SYSTEM)  # the oracle: the store as the system
    assert list(rows[0]) == list(EXPORT_COLUMNS) and len(rows) == len(subs) == len(RUNS)
    for row, s in zip(rows, subs, strict=True):
        assert (int(row["submission"]), row["student"], int(row["run"]), int(row["macs"])) == (
            s.id, s.student, s.run_id, s.macs)
        assert float(row["val_acc"]) == s.val_acc and float(row["test_acc"]) == s.test_acc


def test_the_teacher_removes_a_submission_from_the_assignments_tab(world: World) -> None:
    a = _assign(world, "Remove one")
    subs = world.store.submissions(a.slug, by=SYSTEM)  # the oracle: the store as the system
    at = _teacher_tab()
    at.selectbox(key="ta_pick").set_value(a.slug).run()
    listed = next(d.value for d in at.dataframe if "submission" in d.value.columns)
    assert list(listed["submission"]) == [s.id for s in reversed(subs)]  # newest first
    assert list(listed["test acc."]) == [f"{s.test_acc:.1%}" for s in reversed(subs)]
    victim = subs[1]
    at.selectbox(key=f"ta_rm_pick_{a.id}").set_value(victim.id).run()
    at.button(key=f"ta_rm_{a.id}").click().run()
    assert not at.exception, at.exception
    assert [s.id for s in world.store.submissions(a.slug, by=SYSTEM)] == [
        s.id for s in subs if s.id != victim.id]
    assert any(f"Removed submission #{victim.id} of {victim.student}" in shown(m.value)
               for m in at.success)
    listed = next(d.value for d in at.dataframe if "submission" in d.value.columns)
    assert victim.id not in list(listed["submission"])
    assert world.runs.get_run(victim.run_id, SYSTEM).status == "finished"  # the run is kept


# -- the leaderboard --------------------------------------------------------------------------
def test_a_student_sees_the_public_board_and_no_test_accuracy_while_open(world: World) -> None:
    a = _assign(world, "Open board")
    _assign(world, "Another board", submit=False)
    at = _app({"user": "Bob", "a": a.slug})
    assert at.selectbox(key="lb_pick").value == a.slug and at.query_params["a"] == a.slug
    subs = world.store.submissions(a.slug, by=SYSTEM)
    board = _frame(at, "lb_public_table")
    # the oracle: each student's best public submission, by validation accuracy then MACs
    best = sorted(_best_public(subs).values(),
                  key=lambda s: (-s.val_acc, s.macs, s.submitted_at, s.id))
    assert list(board["student"]) == [s.student + (" (you)" if s.student == "Bob" else "")
                                      for s in best]
    assert list(board["val acc"]) == [s.val_acc for s in best]
    assert list(board["MACs"]) == [s.macs for s in best]
    assert list(board["rank"]) == list(range(1, len(best) + 1))
    assert list(board["submissions"]) == [2 if s.student == "Ada" else 1 for s in best]
    assert len(_boards(at)) == 1 and "test acc" not in board.columns
    assert "Open for submissions" in str([m.value for m in at.markdown])
    assert any("You have 2 of 3 submissions left" in shown(c.value) for c in at.caption)
    # no test accuracy anywhere in what the page sent or keeps, in any form
    hidden = _hidden_values(subs)
    assert hidden, "every test accuracy equals a validation accuracy: the check would be empty"
    sent = _everything(at)
    assert not [t for t in hidden if any(f in sent for f in accuracy_forms(t))]
    assert b"test accuracy" not in sent.lower() and b"test_acc" not in sent
    # the teacher sees them only behind the private toggle, and the projector not even then
    teacher_at = _app({"a": a.slug}, teacher_code=True)
    assert not [t for t in hidden if any(f in _everything(teacher_at) for f in accuracy_forms(t))]
    teacher_at.toggle(key="lb_private").set_value(True).run()
    private = _frame(teacher_at, "lb_private_table")
    assert sorted(private["test acc"]) == sorted(s.test_acc for s in best)
    # the same check finds them once they are on the page: it can fail
    on_board = [t for t in hidden if t in set(private["test acc"])]
    assert on_board and all(any(f in _everything(teacher_at) for f in accuracy_forms(t))
                            for t in on_board)
    # "Work on it" makes it Bob's active assignment on Build (and Train)
    at.button(key="lb_work").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Build a network"]
    assert at.session_state.assignment == a.slug and at.query_params["a"] == a.slug


def test_after_the_close_everyone_sees_the_private_board_with_the_change(
        world: World) -> None:
    a = _assign(world, "Closed board")
    world.store.close(a.slug, by=teacher())
    at = _app({"user": "Cara", "a": a.slug})
    assert "Closed: final ranking" in str([m.value for m in at.markdown])
    assert not [b for b in at.button if b.key == "lb_work"]  # nothing to work on any more
    subs = world.store.submissions(a.slug, by=SYSTEM)
    best = list(_best_public(subs).values())
    public = sorted(best, key=lambda s: (-s.val_acc, s.macs, s.submitted_at, s.id))
    private = sorted(best, key=lambda s: (-(s.test_acc or 0), s.macs, s.submitted_at, s.id))
    board = _frame(at, "lb_private_table")
    assert list(board["student"]) == [s.student + (" (you)" if s.student == "Cara" else "")
                                      for s in private]
    assert list(board["test acc"]) == [s.test_acc for s in private]
    moved = [public.index(s) - private.index(s) for s in private]
    assert list(board["change"]) == [rank_change_text(m) for m in moved]
    assert list(board["public rank"]) == [public.index(s) + 1 for s in private]
    assert _frame(at, "lb_public_table")["student"].iloc[0] == public[0].student
    # the scatter offers the test accuracy now, and draws it by default
    fig = _figure(at)
    points = next(t for t in fig["data"] if t["name"] == POINTS_NAME)
    assert sorted(points["y"]) == sorted(100 * s.test_acc for s in subs)


def test_rank_change_arrows() -> None:
    assert [rank_change_text(c) for c in (2, -1, 0, None)] == ["▲2", "▼1", "=", ""]


def _figure(at: AppTest) -> dict:
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id.endswith("lb_scatter")]
    return json.loads(chart.proto.spec)


def _brute_front(points: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """Points that no other point beats: as accurate or more with as few MACs or fewer, and
    better in one."""
    return sorted({p for p in points
                   if not any(q[1] >= p[1] and q[0] <= p[0] and q != p for q in points)})


def test_the_scatter_has_every_submission_and_the_pareto_front(world: World) -> None:
    a = _assign(world, "Scatter")
    at = _app({"user": "Ada", "a": a.slug})
    subs = world.store.submissions(a.slug, by=SYSTEM)
    fig = _figure(at)
    points = next(t for t in fig["data"] if t["name"] == POINTS_NAME)
    front = next(t for t in fig["data"] if t["name"] == FRONT_NAME)
    assert sorted(zip(points["x"], points["y"], strict=True)) == sorted(
        (s.macs, 100 * s.val_acc) for s in subs)
    assert sorted(c[0] for c in points["customdata"]) == sorted(s.id for s in subs)
    assert fig["layout"]["xaxis"]["type"] == "log" and front["line"]["shape"] == "hv"
    drawn = list(zip(front["x"], front["y"], strict=True))
    oracle = _brute_front([(s.macs, s.val_acc) for s in subs])
    assert drawn == [(m, 100 * v) for m, v in oracle]
    assert [subs[i].macs for i in pareto_front([(s.macs, s.val_acc) for s in subs])] == [
        m for m, _ in oracle]
    # Ada's own points are the larger ones
    mine = {s.id for s in subs if s.student == "Ada"}
    sizes = dict(zip((c[0] for c in points["customdata"]), points["marker"]["size"],
                     strict=True))
    assert {sid for sid, size in sizes.items() if size > min(sizes.values())} == mine
    # hovering shows student, design, params, MACs and accuracy (escaped user text)
    bob = next(s for s in subs if s.student == "Bob")
    hover = points["text"][[c[0] for c in points["customdata"]].index(bob.id)]
    assert "<b>Bob</b>" in hover and bob.design in hover and f"{bob.params:,} parameters" in hover
    assert f"{100 * bob.val_acc:.2f}&#37;" in hover and "test" not in hover

    # a click on Bob's point offers his design, which opens on Build
    event = {"selection": {"points": [{"curve_number": 0, "point_number": 0,
                                       "customdata": [bob.id]}],
                           "point_indices": [0], "box": [], "lasso": []}}
    assert selected_submission(event) == bob.id and selected_submission({}) is None
    at.session_state["lb_scatter"] = event
    at.run()
    assert not at.exception, at.exception
    at.button(key=f"lb_open_{bob.id}").click().run()
    assert not at.exception, at.exception
    assert [t.value for t in at.title] == ["Build a network"]
    assert at.session_state.spec == spec_from_dict(bob.spec)
    assert at.session_state.source == f"submission:{bob.id}"


def test_names_hide_for_the_projector_and_the_link_picks_the_assignment(world: World) -> None:
    first = _assign(world, "Names first")
    second = _assign(world, "Names second")
    # present mode: Student 1..N, numbered by first submission; the viewer still marked
    at = _app({"user": "Dan", "a": first.slug, "present": "1"})
    assert at.selectbox(key="lb_pick").value == first.slug
    names = set(_frame(at, "lb_public_table")["student"])
    assert names == {"Student 1", "Student 2", "Student 3", "Student 4 (you)"}
    main = _everything(at, at.main)  # the sidebar's name box says "e.g. Ada"
    assert not [n for n in (b"Ada", b"Bob", b"Cara") if n in main]
    # the teacher's toggle hides them too; the box switches assignment and the address follows
    at = _app({"a": second.slug}, teacher_code=True)
    assert at.selectbox(key="lb_pick").value == second.slug
    assert "Ada" in set(_frame(at, "lb_public_table")["student"])
    at.toggle(key="lb_hide").set_value(True).run()
    assert set(_frame(at, "lb_public_table")["student"]) == {f"Student {i}" for i in range(1, 5)}
    at.selectbox(key="lb_pick").set_value(first.slug).run()
    assert at.query_params["a"] == first.slug
    # without ?a= the box opens on the student's active assignment (the newest open one is
    # the default otherwise)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.session_state["assignment"] = first.slug
    at.switch_page("pages/leaderboard.py").run()
    assert not at.exception, at.exception
    assert at.selectbox(key="lb_pick").value == first.slug != world.store.list()[0].slug
    # an unknown name in the link: one message, another assignment shown
    at = _app({"a": "no-such-thing"})
    assert any("There is no assignment no-such-thing" in shown(w.value) for w in at.warning)
    assert at.query_params["a"] == at.selectbox(key="lb_pick").value


def test_user_text_is_shown_as_text(world: World) -> None:
    hostile = "![x](http://127.0.0.1:9/n.png) <img src=x> :red[r] $x^2$ **b**"
    name = "![u](http://127.0.0.1:9/u.png) :red[u]"
    spec = spec_from_dict(_mlp(4)).model_copy(update={"name": hostile[:60]}).to_dict()
    rid = world.runs.create_run(name, "hostile", spec, _settings(seed=2))
    assert execute_run(rid, world.url) == "finished"
    a = _assign(world, hostile, submit=False)
    world.store.submit(a.id, rid, by=SYSTEM)
    at = _app({"a": a.slug}, teacher_code=True)
    sub = world.store.submissions(a.slug, by=SYSTEM)[0]
    at.session_state["lb_scatter"] = {"selection": {"points": [{"customdata": [sub.id]}]}}
    at.run()
    assert not at.exception, at.exception
    assert not [t for t in _markdown(at) if RAW.search(t)]
    assert any(shown(h.value) == hostile for h in at.header)
    at = _teacher_tab()
    at.selectbox(key="ta_pick").set_value(a.slug).run()
    at.toggle(key="ta_edit").set_value(True).run()
    assert not at.exception, at.exception
    assert not [t for t in _markdown(at) if RAW.search(t)]


def test_links_name_the_app_root() -> None:
    assert app_root("https://school.example/play/build?user=Ada&key=k") == (
        "https://school.example/play/")
    assert page_link("http://h:8501/teacher?x=1", "leaderboard", a="tiny-cnn") == (
        "http://h:8501/leaderboard?a=tiny-cnn")
    assert page_link(None, "leaderboard", a="x y") == "/leaderboard?a=x+y"

