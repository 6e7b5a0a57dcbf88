"""Assignments end to end on SQLite and on a real PostgreSQL server: real trainings
(``jobs.execute_run``) submitted through :meth:`AssignmentStore.submit`, which re-checks every
rule from the store itself (the page is bypassed), scores the stored best weights on the
validation split and on the hidden test split (checked against a model rebuilt from the
checkpoint bytes by hand), and ranks students publicly and privately. Runs that only need to
be refused before any evaluation are stored as ended without training."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_safetensors

from playground import checkpoints, cli
from playground.access import SYSTEM, AccessDenied, Actor, teacher
from playground.analysis import training_memory
from playground.assignments import (
    Assignment,
    AssignmentStore,
    SubmissionError,
    assignment_from_dict,
    budget_report,
)
from playground.build import build_model
from playground.errors import ConfigError, PlaygroundError
from playground.holdout import load_test_split
from playground.jobs import execute_run
from playground.leaderboard import (
    EXPORT_COLUMNS,
    Submission,
    pareto_front,
    rank_submissions,
    to_csv,
)
from playground.presets import get_preset, list_presets
from playground.runs import RunStore
from playground.spec import InputSpec, NetworkSpec, StageSpec, spec_from_dict
from playground.store.engine import dispose_engine
from playground.targets import analyse_spec

ROOT = Path(__file__).resolve().parents[1]
ADA, BOB, CARA = Actor("Ada"), Actor("Bob"), Actor("Cara")
TEACHER = teacher("Ms Grace")
DATA = {"dataset": "spirals", "n_train": 256, "n_val": 128}


def _mlp(width: int) -> dict:
    spec = get_preset("mlp_points")
    return spec.model_copy(update={
        "name": f"mlp{width}", "stages": (StageSpec(block="linear", depth=3, width=width),)
    }).to_dict()


def _settings(**kw: object) -> dict:
    return {**DATA, "steps": 40, "lr": 0.05, "eval_every": 10, "device": "cpu",
            "optimizer": "adam", **kw}


def _assignment(title: str, **kw: object) -> dict:
    return {"title": title, **DATA, "n_test": 200, "max_params": 1000, "max_macs": 10_000,
            "max_steps": 50, "locked": {"optimizer": "adam"}, "submissions_per_student": 3,
            "test_seed": 1234, **kw}


@dataclass
class World:
    url: str
    runs: RunStore
    store: AssignmentStore
    ids: dict[str, int]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def world(request, tmp_path_factory):
    """Four real trainings on the spirals: Ada's 16- and 8-wide MLPs, Bob's 16-wide one, and
    Cara's 48-wide one (over the parameter budget)."""
    with pytest.MonkeyPatch.context() as mp:
        home = tmp_path_factory.mktemp("home")
        mp.setenv("PLAYGROUND_HOME", str(home))
        mp.setenv("PLAYGROUND_DEVICE", "cpu")
        mp.delenv("PLAYGROUND_MAX_CHECKPOINT_MB", raising=False)
        if request.param == "sqlite":
            url = f"sqlite:///{home / 'playground.sqlite'}"
        else:
            url = request.getfixturevalue("postgres_server").create_database()
        runs = RunStore(url)
        ids = {}
        for key, owner, width, seed in (("ada16", "Ada", 16, 0), ("ada8", "ada", 8, 1),
                                        ("bob16", "Bob", 16, 2), ("cara48", "Cara", 48, 3)):
            ids[key] = runs.create_run(owner, key, _mlp(width), _settings(seed=seed))
            assert execute_run(ids[key], url) == "finished"
        yield World(url, runs, AssignmentStore(url), ids)
        dispose_engine(url)


def _ended(w: World, owner: str, status: str = "finished", spec: dict | None = None,
           **settings: object) -> int:
    """A run stored as ended without training (no weights): for refusals that come first."""
    rid = w.runs.create_run(owner, "stored", spec or _mlp(16), _settings(**settings))
    if status != "queued":
        w.runs.set_status(rid, status)
    return rid


# -- budgets -------------------------------------------------------------------------------
def test_budget_numbers_are_the_analysis_numbers_for_every_preset() -> None:
    a = Assignment(title="budgets", dataset="shapes", max_params=1_000_000, max_macs=50_000_000,
                   max_steps=100, max_train_memory_bytes=200 * 2**20, n_train=300, n_val=100,
                   n_test=100)
    for preset in list_presets():
        spec = preset.spec()
        analysis = analyse_spec(spec)
        report = budget_report(a, spec, {"dataset": "shapes", "batch_size": 16,
                                         "optimizer": "momentum"})
        params, macs, memory = (report.item(k) for k in ("params", "macs", "train_memory"))
        assert params.used == analysis.num_params and params.limit == 1_000_000
        assert macs.used == analysis.macs and macs.limit == 50_000_000
        # momentum SGD keeps one value of state per parameter
        assert memory.used == training_memory(analysis, 16, "sgd_momentum")["total"]
        for item in (params, macs, memory):
            assert item.fraction == item.used / item.limit
            assert item.over == (item.used > item.limit)
        # the parts are the top-level modules: their MACs are fvcore's by_module totals
        for part in report.parts:
            assert part.macs == analysis.macs_by_module[part.key], (preset.name, part.key)
        assert sum(p.params for p in report.parts) == analysis.num_params
        top = max(report.parts, key=lambda p: p.macs)
        assert macs.top_part == top.label and macs.top_share == top.macs / analysis.macs
        assert len([p for p in report.problems if "over the budget" in p]) == sum(
            i.over for i in report.items)


def test_the_gauge_names_the_costly_part_and_what_to_change() -> None:
    a = Assignment(title="g", dataset="shapes", input_shape=(3, 32, 32), max_params=20_000,
                   max_macs=2_000_000, max_steps=100, n_train=300, n_val=100, n_test=100)
    early = NetworkSpec(input=InputSpec(channels=3, height=32, width=32), stages=(
        StageSpec(width=64), StageSpec(width=16, stride=4)))
    report = budget_report(a, early)
    macs = report.item("macs")
    share = analyse_spec(early).macs_by_module["stage1"] / analyse_spec(early).macs
    assert macs.over and macs.top_part == "stage 1"
    assert macs.hint == f"stage 1 holds {round(share * 100)} % of the MACs: add a stride or a " \
        "pool earlier"
    head = NetworkSpec(input=InputSpec(channels=3, height=32, width=32),
                       stages=(StageSpec(width=8, stride=4),),
                       head={"pool": "flatten", "hidden": (64,)})
    params = budget_report(a, head).item("params")
    assert params.over and params.top_part == "the head"
    assert "narrow the head: pool to 1x1 before the classifier" in params.hint
    wrong = budget_report(a, early.model_copy(update={"num_classes": 12,
                                                      "input": InputSpec(channels=1)}))
    assert any("input is 3x32x32; this design takes 1x32x32" in p for p in wrong.problems)
    assert any("Shapes has 10 classes; this design has 12 outputs" in p for p in wrong.problems)


def test_an_assignment_is_validated_in_one_line() -> None:
    with pytest.raises(ConfigError) as err:
        assignment_from_dict({"title": " ", "dataset": "nope", "max_params": 0})
    text = str(err.value)
    assert "\n" not in text and "title" in text and "dataset" in text and "max_params" in text
    with pytest.raises(ConfigError, match="these settings cannot be locked: dataset"):
        assignment_from_dict(_assignment("x", locked={"dataset": "moons"}))
    with pytest.raises(ConfigError, match="locked steps"):
        assignment_from_dict(_assignment("x", locked={"steps": 500}))
    with pytest.raises(ConfigError, match="input shape is 2x1x1"):
        assignment_from_dict(_assignment("x", input_shape=(3, 8, 8)))
    digits = assignment_from_dict({"title": "Digits", "dataset": "digits", "max_params": 10,
                                   "max_macs": 10, "max_steps": 10})
    assert digits.n_train + digits.n_val + digits.n_test == 1797  # the test split fits
    assert digits.slug == "digits" and "test_seed" not in digits.public_dict()


# -- the store -----------------------------------------------------------------------------
def test_only_the_teacher_creates_and_changes_assignments(world: World) -> None:
    store = world.store
    with pytest.raises(AccessDenied):
        store.create(_assignment("By a student"), by=ADA)
    a = store.create(_assignment("Teacher's <b>first</b>", instructions="# Go\n*fast*"),
                     by=TEACHER)
    assert store.get(a.id) == a == store.get(a.slug) == store.get(str(a.id))
    assert a.slug == "teacher-s-b-first-b" and a.instructions == "# Go\n*fast*"
    assert a.created_by == "the teacher (Ms Grace)" and a.num_classes == 2
    with pytest.raises(ConfigError, match="exists already"):
        store.create(_assignment("Teacher's <b>first</b>"), by=TEACHER)
    with pytest.raises(AccessDenied):
        store.close(a.id, by=ADA)
    closed = store.close(a.id, by=TEACHER)
    assert closed.state == "closed" and closed.closed_at is not None
    assert store.reopen(a.slug, by=TEACHER).state == "open"
    assert store.update(a.id, {"max_params": 2000}, by=TEACHER).max_params == 2000
    moved = store.update(a.id, {"dataset": "shapes"}, by=TEACHER)  # the new set's defaults
    assert (moved.input_shape, moved.n_train, moved.noise) == ((3, 32, 32), 10_000, None)
    assert moved.test_seed == a.test_seed and store.get(a.id) == moved
    assert a.id in [x.id for x in store.list(state="open")]
    with pytest.raises(PlaygroundError, match="no assignment"):
        store.get("missing")


def test_the_test_score_is_the_checkpoint_on_the_hidden_split(world: World) -> None:
    a = world.store.create(_assignment("Oracle"), by=TEACHER)
    rid = world.ids["ada16"]
    sub = world.store.submit(a.slug, rid, by=ADA)
    assert sub.test_acc is None  # a student does not see it while the assignment is open
    with pytest.raises(ConfigError, match="n_test cannot change: submissions were scored"):
        world.store.update(a.id, {"n_test": 150}, by=TEACHER)
    (stored,) = world.store.submissions(a.id, by=TEACHER)
    # the oracle: the best checkpoint's bytes loaded into a freshly built model by hand
    data, info = checkpoints.checkpoint_bytes(world.runs, rid, "best", SYSTEM)
    spec = spec_from_dict(world.runs.get_run(rid).spec)
    model = build_model(spec)
    model.load_state_dict(load_safetensors(data))
    model.eval()
    test = load_test_split("spirals", test_seed=1234, n_test=200, data_seed=0, n_train=256,
                           n_val=128)
    with torch.no_grad():
        pred = model(test.x.reshape(200, 2, 1, 1)).argmax(1)
    assert stored.test_acc == (pred == test.y).sum().item() / 200
    assert stored.val_acc == info.val_acc  # the public score is what training measured
    assert (stored.params, stored.macs) == (analyse_spec(spec).num_params,
                                            analyse_spec(spec).macs)
    assert stored.steps == 40 and stored.student == "Ada" and stored.run_id == rid
    assert stored.spec == world.runs.get_run(rid).spec
    assert stored.design.startswith("mlp16: linear 16x3")


def test_a_submission_over_budget_is_refused_on_the_server(world: World) -> None:
    a = world.store.create(_assignment("Budget"), by=TEACHER)
    rid = world.ids["cara48"]
    used = analyse_spec(spec_from_dict(world.runs.get_run(rid).spec)).num_params
    assert used > 1000
    with pytest.raises(SubmissionError) as err:
        world.store.submit(a.id, rid, by=CARA)
    assert "parameters, over the budget of 1.00 k" in str(err.value)
    assert "\n" not in str(err.value)
    assert world.store.submissions(a.id, by=TEACHER) == []
    # the same run is fine under a budget that fits it
    b = world.store.create(_assignment("Bigger budget", max_params=used), by=TEACHER)
    assert world.store.submit(b.id, rid, by=CARA).params == used


def test_someone_elses_run_is_refused(world: World) -> None:
    a = world.store.create(_assignment("Owners"), by=TEACHER)
    with pytest.raises(AccessDenied):
        world.store.submit(a.id, world.ids["ada16"], by=BOB)
    # the teacher may submit for the student: the submission is the run owner's
    sub = world.store.submit(a.id, world.ids["ada16"], by=TEACHER)
    assert sub.student == "Ada" and sub.test_acc is not None


def test_a_closed_or_late_assignment_refuses(world: World) -> None:
    a = world.store.create(_assignment("Closing", state="closed"), by=TEACHER)
    with pytest.raises(SubmissionError, match="is closed"):
        world.store.submit(a.id, world.ids["bob16"], by=BOB)
    world.store.open(a.id, by=TEACHER)
    world.store.update(a.id, {"deadline": time.time() - 1}, by=TEACHER)
    with pytest.raises(SubmissionError, match=r"deadline .* has passed"):
        world.store.submit(a.id, world.ids["bob16"], by=BOB)
    world.store.update(a.id, {"deadline": time.time() + 3600}, by=TEACHER)
    assert world.store.submit(a.id, world.ids["bob16"], by=BOB).run_id == world.ids["bob16"]


@pytest.mark.parametrize(("change", "message"), [
    ({"status": "queued"}, "is queued; only a finished"),
    ({"status": "failed"}, "is failed; only a finished"),
    ({"dataset": "moons"}, "trained on moons; the assignment uses spirals"),
    ({"data_seed": 5}, r"fixes the data \(data_seed 0\); run #\d+ used data_seed 5"),
    ({"n_val": 64}, r"fixes the data \(n_val 128\)"),
    ({"steps": 80}, "trains 80 steps; the assignment allows at most 50"),
    ({"optimizer": "sgd"}, "fixes optimiser at 'adam'; run #\\d+ used 'sgd'"),
    ({"spec": "wide"}, "parameters, over the budget"),
    ({}, "has no best weights"),  # everything fits, but the run kept no checkpoint
])
def test_each_rule_is_checked_from_the_stored_run(world: World, change, message) -> None:
    a = world.store.create(_assignment(f"Rules {len(world.store.list())}"), by=TEACHER)
    change = dict(change)
    status = change.pop("status", "finished")
    spec = _mlp(64) if change.pop("spec", None) else None
    rid = _ended(world, "Ada", status, spec, **change)
    with pytest.raises(PlaygroundError, match=message) as err:
        world.store.submit(a.id, rid, by=ADA)
    assert "\n" not in str(err.value)


def test_submissions_are_capped_per_student(world: World) -> None:
    a = world.store.create(_assignment("Cap", submissions_per_student=2), by=TEACHER)
    world.store.submit(a.id, world.ids["ada16"], by=ADA)
    with pytest.raises(SubmissionError, match="submitted to 'Cap' already"):
        world.store.submit(a.id, world.ids["ada16"], by=ADA)
    assert world.store.submissions_left(a.id, "ada") == 1
    world.store.submit(a.id, world.ids["ada8"], by=ADA)  # "ada" is Ada: one student
    assert world.store.submissions_left(a.id, "ADA") == 0
    with pytest.raises(SubmissionError, match="Ada has used all 2 submissions"):
        world.store.submit(a.id, _ended(world, "Ada"), by=ADA)
    assert world.store.submissions_left(a.id, "Bob") == 2


def test_the_teacher_removes_a_submission_and_the_student_gets_it_back(world: World) -> None:
    store = world.store
    a = store.create(_assignment("Withdraw", submissions_per_student=1), by=TEACHER)
    ada = store.submit(a.id, world.ids["ada16"], by=ADA)
    bob = store.submit(a.id, world.ids["bob16"], by=BOB)
    assert store.submissions_left(a.id, "Ada") == 0
    for student in (ADA, BOB):  # students cannot, not even their own
        with pytest.raises(AccessDenied, match="only the teacher can remove submissions"):
            store.remove_submission(a.id, ada.id, by=student)
    with pytest.raises(PlaygroundError, match="'Withdraw' has no submission 999999"):
        store.remove_submission(a.id, 999_999, by=TEACHER)
    other = store.create(_assignment("Elsewhere"), by=TEACHER)
    with pytest.raises(PlaygroundError, match="'Elsewhere' has no submission"):
        store.remove_submission(other.id, ada.id, by=TEACHER)  # the id of another's
    before = store.submissions(a.id, by=TEACHER)
    assert [s.id for s in before] == [ada.id, bob.id]

    store.close(a.id, by=TEACHER)  # works on a closed assignment too
    removed = store.remove_submission("withdraw", ada.id, by=TEACHER)
    assert removed == before[0]  # every field, the test accuracy included (the teacher's)
    assert (removed.student, removed.run_id) == ("Ada", world.ids["ada16"])
    assert [s.id for s in store.submissions(a.id, by=TEACHER)] == [bob.id]
    assert [r.student for r in store.leaderboard(a.id, by=TEACHER).rows] == ["Bob"]
    assert "Ada" not in store.export_csv(a.id, by=TEACHER)
    assert store.submissions_left(a.id, "Ada") == 1  # she has it back
    assert world.runs.get_run(world.ids["ada16"], SYSTEM).status == "finished"  # run kept
    store.open(a.id, by=TEACHER)
    again = store.submit(a.id, world.ids["ada16"], by=ADA)  # the same run may come again
    assert again.id != ada.id and again.val_acc == ada.val_acc


def test_the_leaderboard_ranks_and_hides_test_scores_until_close(world: World) -> None:
    store = world.store
    a = store.create(_assignment("Race"), by=TEACHER)
    for key, who in (("ada16", ADA), ("bob16", BOB), ("ada8", ADA)):
        store.submit(a.id, world.ids[key], by=who)
    everything = store.submissions(a.id, by=TEACHER)
    assert len(everything) == 3 and all(s.test_acc is not None for s in everything)

    # oracle: each student's best public submission, ranked by hand
    def public_key(s: Submission) -> tuple:
        return (-s.val_acc, s.macs, s.submitted_at)

    best = {}
    for s in everything:
        if s.student.lower() not in best or public_key(s) < public_key(best[s.student.lower()]):
            best[s.student.lower()] = s
    public = sorted(best.values(), key=public_key)
    private = sorted(public, key=lambda s: (-s.test_acc, s.macs, s.submitted_at))

    board = store.leaderboard(a.id, by=TEACHER, private=True)
    assert [r.submission_id for r in board.rows] == [s.id for s in private]
    for r in board.rows:
        assert r.public_rank == 1 + [s.id for s in public].index(r.submission_id)
        assert r.rank_change == r.public_rank - r.private_rank
    assert board.n_submissions == 3 and board.private_visible

    # a student, while the assignment is open: public order, no test accuracy anywhere
    mine = store.leaderboard(a.id, by=ADA)
    assert [r.submission_id for r in mine.rows] == [s.id for s in public]
    assert not mine.private_visible
    assert all(r.test_acc is None and r.private_rank is None and r.rank_change is None
               for r in mine.rows)
    assert [r.is_you for r in mine.rows] == [s.student.lower() == "ada" for s in public]
    assert all(s.test_acc is None for s in store.submissions(a.id, by=BOB))
    with pytest.raises(AccessDenied, match="when the teacher closes"):
        store.leaderboard(a.id, by=BOB, private=True)
    with pytest.raises(AccessDenied):
        store.export_csv(a.id, by=ADA)

    # after close every student sees the private ranking, names hideable
    store.close(a.id, by=TEACHER)
    after = store.leaderboard(a.id, by=BOB, private=True, anonymise=True)
    assert [(r.submission_id, r.test_acc) for r in after.rows] == [
        (s.id, s.test_acc) for s in private]
    first = sorted(everything, key=lambda s: s.submitted_at)[0].student  # Ada submitted first
    names = {r.submission_id: r.student for r in after.rows}
    assert names[best[first.lower()].id] == "Student 1"
    assert sorted(names.values()) == ["Student 1", "Student 2"]
    # the scatter's points carry the same names, and now the test accuracies
    points = store.submissions(a.id, by=BOB, anonymise=True)
    assert {s.id: s.student for s in points if s.id in names} == names
    assert [s.test_acc for s in points] == [s.test_acc for s in everything]
    bobs = store.submissions(a.id, by=BOB, student="bob", anonymise=True)
    assert [s.student for s in bobs] == ["Student 2"]


def test_the_csv_export_has_every_submission(world: World) -> None:
    store = world.store
    a = store.create(_assignment("Export"), by=TEACHER)
    store.submit(a.id, world.ids["ada16"], by=ADA)
    store.submit(a.id, world.ids["bob16"], by=BOB)
    rows = list(csv.DictReader(io.StringIO(store.export_csv(a.slug, by=TEACHER))))
    assert tuple(rows[0]) == EXPORT_COLUMNS
    subs = store.submissions(a.id, by=TEACHER)
    assert [(int(r["run"]), r["student"], int(r["params"]), int(r["macs"]), int(r["steps"]),
             float(r["val_acc"]), float(r["test_acc"])) for r in rows] == [
        (s.run_id, s.student, s.params, s.macs, s.steps, s.val_acc, s.test_acc) for s in subs]
    assert rows[0]["submitted_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                    time.gmtime(subs[0].submitted_at))


# -- pure ranking, front and CSV -------------------------------------------------------------
def _sub(i: int, student: str, val: float, test: float, macs: int, at: float) -> Submission:
    return Submission(i, 1, student, 100 + i, f"design {i}", {}, 10 * macs, macs, 50, val, test,
                      at)


def test_ties_go_to_fewer_macs_then_the_earlier_submission() -> None:
    subs = [_sub(1, "ann", 0.9, 0.80, 5000, 10.0), _sub(2, "ben", 0.9, 0.85, 3000, 20.0),
            _sub(3, "cat", 0.9, 0.85, 3000, 15.0), _sub(4, "dan", 0.95, 0.70, 9000, 30.0),
            _sub(5, "ann", 0.9, 0.99, 4000, 40.0)]  # ann's better one: same accuracy, fewer MACs
    public = rank_submissions(subs, show_private=True)
    assert [r.student for r in public] == ["dan", "cat", "ben", "ann"]
    assert [r.submission_id for r in public] == [4, 3, 2, 5]
    assert public[3].submissions == 2
    private = rank_submissions(subs, view="private", show_private=True)
    assert [(r.student, r.rank, r.public_rank, r.rank_change) for r in private] == [
        ("ann", 1, 4, 3), ("cat", 2, 2, 0), ("ben", 3, 3, 0), ("dan", 4, 1, -3)]
    hidden = rank_submissions(subs, viewer="Ann")
    assert all(r.test_acc is None and r.rank_change is None for r in hidden)
    assert [r.is_you for r in hidden] == [False, False, False, True]
    with pytest.raises(ValueError):
        rank_submissions(subs, view="private")


def test_the_pareto_front_matches_a_brute_force_check() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(1, 25))
        points = [(float(rng.integers(1, 8)), float(rng.integers(0, 6)) / 5) for _ in range(n)]
        points += points[: int(rng.integers(0, 3))]  # some duplicates

        def dominated(i: int, points: list[tuple[float, float]] = points) -> bool:
            mi, ai = points[i]
            return any(mj <= mi and aj >= ai and (mj, aj) != (mi, ai) for mj, aj in points)

        front = pareto_front(points)
        assert sorted(front) == [i for i in range(len(points)) if not dominated(i)]
        assert [points[i][0] for i in front] == sorted(points[i][0] for i in front)


def test_csv_cells_that_look_like_formulas_stay_text() -> None:
    evil = [replace(_sub(1, "=HYPERLINK(\"http://x\")", 0.5, 0.4, 10, 0.0),
                    design="+cmd|' /C calc'!A0"),
            replace(_sub(2, "@SUM(1)", 0.5, 0.4, 10, 1.0), design="-2+3"),
            replace(_sub(3, "\tTab", 0.5, 0.4, 10, 2.0), design="a\nb, \"quoted\"")]
    rows = list(csv.reader(io.StringIO(to_csv(evil))))[1:]
    assert [r[1] for r in rows] == ["'=HYPERLINK(\"http://x\")", "'@SUM(1)", "'\tTab"]
    assert [r[3] for r in rows] == ["'+cmd|' /C calc'!A0", "'-2+3", "a\nb, \"quoted\""]


# -- command line ----------------------------------------------------------------------------
def test_cli_creates_submits_and_prints_the_leaderboard(world: World, monkeypatch,
                                                        capsys) -> None:
    monkeypatch.setenv("PLAYGROUND_DB_URL", world.url)
    code = cli.main(["assignment", "create", "--title", "CLI race", "--dataset", "spirals",
                     "--n-train", "256", "--n-val", "128", "--n-test", "100",
                     "--max-params", "1k", "--max-macs", "10k", "--max-steps", "50",
                     "--lock", "optimizer=adam", "--format", "json"])
    created = json.loads(capsys.readouterr().out)
    assert code == 0 and created["max_params"] == 1000 and created["max_macs"] == 10_000
    assert created["locked"] == {"optimizer": "adam"} and "test_seed" not in created
    for key in ("ada16", "bob16"):
        assert cli.main(["assignment", "submit", "cli-race", str(world.ids[key])]) == 0
    capsys.readouterr()
    assert cli.main(["leaderboard", "cli-race", "--format", "json", "--private"]) == 0
    board = json.loads(capsys.readouterr().out)
    expected = world.store.leaderboard("cli-race", by=SYSTEM, private=True)
    assert board == json.loads(json.dumps(expected.to_dict()))
    assert all(r["test_acc"] is not None for r in board["rows"])
    assert cli.main(["leaderboard", "cli-race"]) == 0
    table = capsys.readouterr().out
    assert "test acc*" in table and "* private: scored on the hidden test split" in table
    assert cli.main(["leaderboard", "cli-race", "--format", "csv"]) == 0
    assert capsys.readouterr().out == world.store.export_csv("cli-race", by=SYSTEM)
    bob = next(s for s in world.store.submissions("cli-race", by=SYSTEM) if s.student == "Bob")
    assert cli.main(["assignment", "remove-submission", "cli-race", str(bob.id)]) == 0
    assert capsys.readouterr().out.startswith(
        f"removed submission {bob.id}: run {bob.run_id} of Bob")
    assert [s.student for s in world.store.submissions("cli-race", by=SYSTEM)] == ["Ada"]


def _cli(home: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "PLAYGROUND_DB_URL"}
    env.update(PYTHONPATH=str(ROOT), PLAYGROUND_HOME=str(home), PLAYGROUND_DEVICE="cpu")
    return subprocess.run([sys.executable, "-m", "playground", *argv], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("argv", [
    ("leaderboard", "nothing-here"),
    ("assignment", "create", "--title", "T", "--dataset", "spirals", "--max-params", "lots",
     "--max-macs", "1M", "--max-steps", "10"),
    ("assignment", "create", "--title", "T", "--dataset", "spirals"),
    ("assignment", "create", "--title", "T", "--dataset", "digits", "--max-params", "1k",
     "--max-macs", "1M", "--max-steps", "10", "--n-train", "1500"),
    ("assignment", "submit", "nothing-here", "1"),
    ("assignment", "remove-submission", "nothing-here", "1"),
], ids=["unknown", "bad-count", "missing-budgets", "digits-full", "submit-unknown",
        "remove-unknown"])
def test_cli_errors_are_one_line_and_exit_2(tmp_path, argv) -> None:
    out = _cli(tmp_path, *argv)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert out.stdout == ""


def test_a_deadline_can_be_given_as_iso_time() -> None:
    from playground.cli_assignments import parse_bytes, parse_count, parse_time

    assert parse_time("1700000000") == 1700000000.0
    assert parse_time("2023-11-14T22:13:20+00:00") == 1700000000.0
    assert parse_count("1.5M") == 1_500_000 and parse_count("12_000") == 12_000
    assert parse_bytes("64MiB") == 64 * 2**20
    for bad in ("-3", "1e9", "12 parsecs", "0"):
        with pytest.raises(ConfigError):
            parse_count(bad)
    assert math.isfinite(parse_time("2030-01-01T00:00"))
