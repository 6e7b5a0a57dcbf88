"""AppTest: the student's side of an assignment. The budget gauge on Build shows
``analyse_spec``'s numbers, turns red past a budget on an edit and names the costliest part;
``?a=`` and the picker choose the assignment; Train locks the assignment's data and settings
and a run started there trains on its data exactly; Submit on the Results tab records a
scored submission and shows the validation accuracy only; an over-budget run's Submit is off
with the reason, and the store refuses the run too when the page is bypassed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.access import SYSTEM, Actor, teacher
from playground.assignments import AssignmentStore, SubmissionError, run_problems
from playground.format import fmt_int, fmt_si
from playground.jobs import execute_run
from playground.presets import get_preset
from playground.runs import RunStore, default_db_path
from playground.spec import InputSpec, StageSpec
from playground.targets import analyse_spec
from tests.helpers import shown, with_key
from ui.budget_view import GREEN, RED
from ui.sources import PICK

APP = str(Path(__file__).resolve().parents[1] / "app.py")
DATA = {"dataset": "spirals", "n_train": 256, "n_val": 128}
SPRINT, TIGHT = "spiral-sprint", "tight-spirals"
INSTRUCTIONS = "Best accuracy with **at most** 1 k parameters ![x](http://evil.example/x.png)"


def _mlp(width: int) -> dict:
    spec = get_preset("mlp_points")
    return spec.model_copy(update={
        "name": f"mlp{width}", "stages": (StageSpec(block="linear", depth=3, width=width),)
    }).to_dict()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("budget_home")


@pytest.fixture(scope="module")
def world(home: Path) -> dict[str, int]:
    """Two open assignments on the spirals (one with budgets mlp_points fits, one without),
    one closed, and two of Ada's finished runs on the assignment's data: a 16-wide MLP (626
    parameters, within) and a 48-wide one (over the parameter budget)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("PLAYGROUND_HOME", str(home))
    mp.setenv("PLAYGROUND_DEVICE", "cpu")
    mp.delenv("PLAYGROUND_MAX_CHECKPOINT_MB", raising=False)
    try:
        store = RunStore(default_db_path())
        assignments = AssignmentStore(store.url)
        common = {**DATA, "n_test": 200, "max_steps": 50, "test_seed": 1234,
                  "locked": {"optimizer": "adam", "lr": 0.05}, "submissions_per_student": 3}
        assignments.create({"title": "Spiral sprint", "slug": SPRINT, "max_params": 1000,
                            "max_macs": 10_000, "instructions": INSTRUCTIONS,
                            "deadline": time.time() + 3 * 86400 + 3600, **common},
                           by=teacher())
        assignments.create({"title": "Tight <b>spirals</b>", "slug": TIGHT, "max_params": 500,
                            "max_macs": 10_000, **common}, by=teacher())
        assignments.create({"title": "Old one", "slug": "old-one", "max_params": 500,
                            "max_macs": 10_000, "state": "closed", **common}, by=teacher())
        settings = {**DATA, "steps": 40, "lr": 0.05, "optimizer": "adam", "eval_every": 10,
                    "device": "cpu"}
        ids = {"within": store.create_run("Ada", "mlp16", _mlp(16), settings),
               "over": store.create_run("Ada", "mlp48", _mlp(48), settings)}
        for run_id in ids.values():
            assert execute_run(run_id, store.url) == "finished"
    finally:
        mp.undo()
    return ids


@pytest.fixture(autouse=True)
def _home(home: Path, world: dict[str, int], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    monkeypatch.setenv("PLAYGROUND_DEVICE", "cpu")


def _app(query: dict[str, str], page: str | None = None, **state: object) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in with_key(query).items():
        at.query_params[k] = v
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _gauge(at: AppTest) -> list[str]:
    """The gauge's lines (markdown as a reader sees it) and bars (HTML), in page order."""
    return [shown(m.value) for m in at.markdown if "parameters" in m.value or "MACs" in m.value
            or m.value.startswith("<div")]


def _part_share(spec, part: str, field: str) -> int:
    """The percentage of ``field`` held by module ``part``, summed from the analysis rows."""
    rows = analyse_spec(spec).rows
    total = sum(getattr(r, field) for r in rows)
    return round(100 * sum(getattr(r, field) for r in rows if r.name.startswith(part + "."))
                 / total)


def test_the_build_gauge_shows_the_analysis_numbers_and_turns_red_past_a_budget() -> None:
    at = _app({"user": "Ada", "a": SPRINT})
    at.selectbox(key=PICK).select("preset:mlp_points").run()
    assert not at.exception, at.exception
    spec = get_preset("mlp_points")
    a = analyse_spec(spec)
    lines = _gauge(at)
    params = f"{fmt_int(a.num_params)} of 1,000 parameters ({round(a.num_params / 10):,} %)"
    macs = f"{fmt_si(a.macs)} of {fmt_si(10_000)} MACs ({round(a.macs / 100):,} %)"
    assert f"**{params}**" in lines and f"**{macs}**" in lines, lines
    bars = [x for x in lines if x.startswith("<div")]
    assert len(bars) == 2 and all(GREEN in b and RED not in b for b in bars)
    assert f"width:{100 * a.num_params / 1000:.1f}%" in bars[0]
    share = _part_share(spec, "stage1", "num_params")
    hint = f"Costliest: stage 1 holds {share} % of the parameters"
    assert any(shown(c.value).startswith(hint) for c in at.caption), [c.value for c in at.caption]
    assert any("Within every budget" in c.value for c in at.caption)
    # the header: title, deadline (the browser's zone; UTC here), submissions left; the
    # teacher's instructions as plain text
    header = [shown(m.value) for m in at.markdown if "Spiral sprint" in m.value]
    assert header and re.match(r"\*\*Spiral sprint\*\* · due \d+ \w+ \d{4}, \d\d:\d\d "
                               r"\(UTC\), in 3 days · 3 of 3 submissions left", header[0]), header
    assert [t.value for t in at.text] == [INSTRUCTIONS]
    if (Path(APP).parent / "pages" / "leaderboard.py").exists():  # the Leaderboard, same ?a=
        [link] = at.get("page_link")
        assert link.proto.page == "leaderboard" and link.proto.query_string == f"a={SPRINT}"
    # the picker lists the open assignments only; a pick updates ?a= and the gauge
    pick = at.selectbox(key="_asg_pick")
    assert pick.options == ["None (free play)", "Tight <b>spirals</b>", "Spiral sprint"]
    pick.select(TIGHT).run()
    assert at.query_params["a"] == TIGHT
    assert any(shown(m.value).startswith("**Tight <b>spirals</b>** · 3 of 3 submissions left")
               for m in at.markdown)
    over = f":red[:material/error: **{fmt_int(a.num_params)} of 500 parameters " \
           f"({round(a.num_params / 5):,} %): over budget**]"
    assert over in _gauge(at), _gauge(at)
    bars = [x for x in _gauge(at) if x.startswith("<div")]
    assert RED in bars[0] and "width:100.0%" in bars[0] and GREEN in bars[1]
    assert f":red[stage 1 holds {share} % of the parameters: narrow stage 1" in \
        " ".join(_gauge(at) + [shown(m.value) for m in at.markdown])
    # an edit redraws the gauge: a narrower stage fits the tight budget again
    at.session_state.open_stages = {0}
    at.run()
    at.number_input(key=f"g{at.session_state.gen}_s_0_width").set_value(8).run()
    narrow = analyse_spec(spec.model_copy(update={"stages": (
        spec.stages[0].model_copy(update={"width": 8}),)}))
    assert narrow.num_params < 500
    assert f"**{fmt_int(narrow.num_params)} of 500 parameters " \
           f"({round(narrow.num_params / 5):,} %)**" in _gauge(at)
    assert not [x for x in _gauge(at) if x.startswith(":red[")]
    # "None" turns the panel's gauge off and drops ?a=
    at.selectbox(key="_asg_pick").select("").run()
    assert "a" not in at.query_params and not _gauge(at)


def test_a_design_that_does_not_fit_the_assignment_says_why_and_closed_ones_are_refused(
        ) -> None:
    at = _app({"user": "Ada", "a": SPRINT})  # the default design: small_cnn on 3x32x32
    warnings = [shown(w.value) for w in at.warning]
    assert "Not accepted as it is: the assignment's input is 2x1x1; this design takes " \
           "3x32x32." in warnings
    assert "Not accepted as it is: Spirals has 2 classes; this design has 10 outputs." in \
        warnings
    assert any(":red[" in x for x in _gauge(at))  # 66 k parameters: far over
    closed = _app({"user": "Ada", "a": "old-one"})
    assert any("The assignment Old one is closed" in shown(i.value) for i in closed.info)
    assert closed.session_state["assignment"] == "" and "a" not in closed.query_params


def test_train_locks_the_assignment_data_and_settings(world) -> None:
    at = _app({"user": "Bob", "a": SPRINT}, "pages/train.py", tr_network="preset:mlp_points",
              tr_dataset="moons", tr_optimizer="sgd", tr_lr=0.5, tr_steps=300)
    assert at.selectbox(key="tr_dataset").value == "spirals"
    assert at.selectbox(key="tr_dataset").disabled
    assert at.selectbox(key="tr_optimizer").value == "adam"
    assert at.selectbox(key="tr_optimizer").disabled
    assert at.number_input(key="tr_lr").value == 0.05 and at.number_input(key="tr_lr").disabled
    steps = at.number_input(key="tr_steps")
    assert steps.proto.max == 50 and steps.value == 50 and not steps.disabled
    assert at.number_input(key="tr_ntrain").value == 256
    assert at.number_input(key="tr_ntrain").disabled
    assert any("**Spiral sprint**" in m.value for m in at.markdown)
    a = analyse_spec(get_preset("mlp_points"))
    assert f"**{fmt_int(a.num_params)} of 1,000 parameters ({round(a.num_params / 10):,} %)**" \
        in _gauge(at)
    # a run started here trains on the assignment's data exactly: nothing but its status
    # stands between it and a submission
    at.number_input(key="tr_steps").set_value(20).run()
    at.button(key="tr_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = RunStore(default_db_path()).get_run(at.session_state["tr_run"])
    assignment = AssignmentStore(default_db_path()).get(SPRINT)
    problems = run_problems(assignment, run)
    assert all("only a finished" in p for p in problems), problems
    assert run.settings["n_train"] == 256 and run.settings["n_val"] == 128
    # with no assignment, the page is free again
    at.selectbox(key="_asg_pick").select("").run()
    assert not at.selectbox(key="tr_dataset").disabled
    assert not at.selectbox(key="tr_optimizer").disabled
    assert at.number_input(key="tr_ntrain").value == 0
    assert not at.number_input(key="tr_ntrain").disabled


def test_train_fits_the_design_to_the_assignments_input(world) -> None:
    """Build's design takes 3x32x32 (small_cnn); the assignment's input is 1x24x24 on shapes:
    Train trains it at 1x24x24 and says so, so the run can be submitted. The budgets are
    those of the 1x24x24 network (the analysis of the fitted spec is the oracle)."""
    AssignmentStore(default_db_path()).create({
        "title": "Small shapes", "slug": "small-shapes", "dataset": "shapes",
        "input_shape": (1, 24, 24), "n_train": 200, "n_val": 100, "n_test": 100,
        "max_params": 10**6, "max_macs": 10**8, "max_steps": 50, "test_seed": 99,
    }, by=teacher())
    at = _app({"user": "Cy", "a": "small-shapes"}, "pages/train.py", tr_steps=10)
    assert at.selectbox(key="tr_dataset").value == "shapes"
    assert any("input set to 1x24x24 for the assignment" in shown(c.value) for c in at.caption)
    assert not any("the assignment's input" in shown(w.value) for w in at.warning), \
        [w.value for w in at.warning]
    fitted = get_preset("small_cnn").model_copy(
        update={"input": InputSpec(channels=1, height=24, width=24)})
    a = analyse_spec(fitted)
    assert f"**{fmt_int(a.num_params)} of 1,000,000 parameters" in " ".join(_gauge(at))
    at.button(key="tr_start").click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    run = RunStore(default_db_path()).get_run(at.session_state["tr_run"])
    assert run.spec["input"] == {"channels": 1, "height": 24, "width": 24}
    problems = run_problems(AssignmentStore(default_db_path()).get("small-shapes"), run)
    assert all("only a finished" in p for p in problems), problems
    # without the assignment the design keeps its own input (shapes takes 3x32x32 as it is)
    at.selectbox(key="_asg_pick").select("").run()
    assert not any("input set to" in shown(c.value) for c in at.caption)


def _results(run_id: int, slug: str) -> AppTest:
    return _app({"user": "Ada", "run": str(run_id), "a": slug}, "pages/train.py",
                train_tab="Results", tr_network="preset:mlp_points")


def test_submit_records_a_scored_submission_and_shows_no_test_accuracy(world) -> None:
    at = _results(world["within"], SPRINT)
    button = at.button(key=f"asg_submit_{world['within']}")
    assert not button.disabled and shown(button.label) == "Submit to Spiral sprint"
    button.click().run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    [sub] = AssignmentStore(default_db_path()).submissions(SPRINT, by=SYSTEM)
    assert sub.run_id == world["within"] and sub.student == "Ada"
    assert sub.params == analyse_spec(get_preset("mlp_points").model_copy(
        update={"name": "mlp16"})).num_params
    [done] = [shown(s.value) for s in at.success if "Submitted to" in s.value]
    assert re.findall(r"\d+\.\d%", done) == [f"{sub.val_acc:.1%}"]  # the validation score only
    text = " ".join(shown(e.value) for e in [*at.markdown, *at.caption, *at.success, *at.info])
    if f"{sub.test_acc:.1%}" != f"{sub.val_acc:.1%}":
        assert f"{sub.test_acc:.1%}" not in text
    # once submitted, the run is not offered again; the count went down
    at.run()
    assert not [b for b in at.button if b.key == f"asg_submit_{world['within']}"]
    assert any("Submitted to Spiral sprint: validation accuracy" in shown(s.value)
               for s in at.success)
    assert AssignmentStore(default_db_path()).submissions_left(SPRINT, "Ada") == 2
    assert any("2 of 3 submissions left" in m.value for m in at.markdown)


def test_an_over_budget_run_cannot_be_submitted_from_the_page_or_the_store(world) -> None:
    at = _results(world["over"], SPRINT)
    button = at.button(key=f"asg_submit_{world['over']}")
    assert button.disabled
    reasons = " ".join(shown(c.value) for c in at.caption if "Cannot be submitted" in c.value)
    used = analyse_spec(get_preset("mlp_points").model_copy(update={"stages": (
        StageSpec(block="linear", depth=3, width=48),)})).num_params
    assert f"this design uses {fmt_si(used)} parameters, over the budget of 1.00 k" in reasons
    store = AssignmentStore(default_db_path())
    with pytest.raises(SubmissionError, match="over the budget"):
        store.submit(SPRINT, world["over"], by=Actor("Ada"))
    assert not [s for s in store.submissions(SPRINT, by=SYSTEM) if s.run_id == world["over"]]
