"""The classroom in the app (issue 12), page by page with Streamlit's AppTest: claiming a name,
the class code, the teacher's room, locked fields, the class message, present mode, and share
links that never carry a key. The multi-browser story is tests/browser/test_classroom_browser.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from playground.access import teacher
from playground.classroom import ClassSettings, ClassStore
from playground.identity import IdentityStore
from playground.presets import get_preset
from playground.runs import RunStore, default_db_path
from playground.share import decode_spec
from tests.helpers import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
TEACHER_CODE = "chalk"


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_TEACHER_CODE", TEACHER_CODE)
    monkeypatch.delenv("PLAYGROUND_CLASS_CODE", raising=False)


def _app(query: dict[str, str] | None = None, page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, at.exception
    return at


def _claim(at: AppTest, name: str) -> None:
    at.sidebar.text_input(key="_user_box").input(name).run()
    assert not at.exception, at.exception


def _sidebar_errors(at: AppTest) -> list[str]:
    return [shown(e.value) for e in at.sidebar.error]


def test_a_typed_name_is_claimed_and_only_its_key_opens_it_again() -> None:
    ada = _app()
    _claim(ada, "Ada")
    key = ada.query_params["key"]
    assert ada.session_state["user"] == "Ada" and ada.query_params["user"] == "Ada"
    assert any("The name Ada is yours now" in shown(s.value) for s in ada.success)
    # another browser typing the same name: refused, and no key in its address
    other = _app()
    _claim(other, "ada")
    assert other.session_state["user"] == "" and "key" not in other.query_params
    assert any("the name ada is taken" in e for e in _sidebar_errors(other))
    # the Key box lets the rightful owner in on a new device
    other.sidebar.text_input(key="_key_box").input(key).run()
    assert other.session_state["user"] == "Ada" and other.query_params["key"] == key
    # the bookmarked address opens it directly; a wrong key does not
    assert _app({"user": "Ada", "key": key}).session_state["user"] == "Ada"
    wrong = _app({"user": "Ada", "key": key[:-2]})
    assert wrong.session_state["user"] == "" and _sidebar_errors(wrong)
    assert "user" not in wrong.query_params and "key" not in wrong.query_params


def test_the_class_code_is_needed_to_claim_a_name(monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_CLASS_CODE", "otter")
    at = _app()
    _claim(at, "Ada")
    assert at.session_state["user"] == "" and any("class code" in e
                                                 for e in _sidebar_errors(at))
    # a wrong code keeps the name unclaimed; the right one claims the name already typed
    at.sidebar.text_input(key="_class_code").input("otterr").run()
    assert at.session_state["user"] == "" and "key" not in at.query_params
    assert any("class code" in e for e in _sidebar_errors(at))
    at.sidebar.text_input(key="_class_code").input("otter").run()
    assert at.session_state["user"] == "Ada" and at.query_params["key"]
    assert not _sidebar_errors(at)
    assert not [t for t in at.sidebar.text_input if t.key == "_class_code"]  # asked once
    # a code entered before any name claims nothing and shows no error
    first = _app()
    first.sidebar.text_input(key="_class_code").input("otter").run()
    assert first.session_state["user"] == "" and not _sidebar_errors(first)
    _claim(first, "Grace")
    assert first.session_state["user"] == "Grace" and first.query_params["key"]


def test_the_teacher_page_opens_only_with_the_code_and_gives_a_new_key() -> None:
    student = _app()
    _claim(student, "Ada")
    old = student.query_params["key"]
    at = _app()
    assert at.session_state["teacher"] is False
    at.sidebar.text_input(key="_teacher_box").input("chalk ").run()  # not the code
    assert at.session_state["teacher"] is False
    assert "That is not the teacher's code." in _sidebar_errors(at)
    at.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
    assert at.session_state["teacher"] is True and TEACHER_CODE not in str(at.query_params)
    assert at.session_state["_teacher_box"] == ""  # the code is not kept in the widget
    at.switch_page("pages/teacher.py").run()
    assert not at.exception, at.exception
    at.session_state["teacher_tab"] = "Students"
    at.run()
    at.selectbox(key="t_reset_name").set_value("Ada").run()
    at.button(key="t_reset").click().run()
    [link] = [c.value for c in at.code]
    new = link.split("key=")[1]
    assert "user=Ada" in link and new != old
    assert IdentityStore(default_db_path()).authenticate("Ada", new).name == "Ada"
    assert _app({"user": "Ada", "key": old}).session_state["user"] == ""  # the old one: gone


def test_a_student_cannot_open_the_teacher_page() -> None:
    at = _app()
    _claim(at, "Ada")
    with pytest.raises(ValueError, match="teacher"):  # not in a student's navigation at all
        at.switch_page("pages/teacher.py").run()
    # a session that leaves teacher mode loses the page with it
    at.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
    at.switch_page("pages/teacher.py").run()
    assert any(t.value == "Teacher" for t in at.title)
    at.sidebar.button(key="_teacher_lock").click().run()
    assert not at.exception and not any(t.value == "Teacher" for t in at.title)


def test_locked_fields_and_the_steps_cap_bind_students_on_the_train_page() -> None:
    ClassStore(default_db_path()).save(ClassSettings(
        max_steps=500, datasets=["spirals", "moons"], presets=["mlp_points"],
        locked={"optimizer": "sgd", "lr": 0.05, "batch_size": 32}), by=teacher())
    at = _app({"user": "Ada"}, "pages/train.py")
    for key, value in (("tr_optimizer", "sgd"), ("tr_lr", 0.05), ("tr_batch", 32)):
        widget = at.get("selectbox" if key == "tr_optimizer" else
                        "select_slider" if key == "tr_batch" else "number_input")
        [w] = [w for w in widget if w.key == key]
        assert w.disabled and w.value == value, key
    assert not at.number_input(key="tr_steps").disabled
    assert at.number_input(key="tr_steps").proto.max == 500
    # the cap is in the label: a number typed above it is refused by the browser
    assert at.number_input(key="tr_steps").label == "Steps (at most 500)"
    assert "at most 500 on this server" in at.number_input(key="tr_steps").help
    assert at.selectbox(key="tr_dataset").options == ["Spirals", "Moons"]
    networks = at.selectbox(key="tr_network").options
    assert [n for n in networks if not n.startswith("Design from")] == ["MLP for 2-D points"]
    assert any("Set by the teacher for this class: optimiser = sgd" in shown(c.value)
               for c in at.caption)
    # the teacher's own session is not bound
    at.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
    assert not at.selectbox(key="tr_optimizer").disabled
    assert at.number_input(key="tr_steps").proto.max == 20_000
    assert at.number_input(key="tr_steps").label == "Steps"


def test_the_class_message_is_shown_as_text_with_its_link() -> None:
    message = "Open **this** <script>alert(1)</script> [now](http://evil.example)"
    ClassStore(default_db_path()).save(ClassSettings(
        message=message, message_link="preset:deep_sigmoid_mlp"), by=teacher())
    at = _app({"user": "Ada"})
    [banner] = [m for m in at.markdown if "From the teacher" in m.value]
    assert shown(banner.value).endswith(message)  # escaped: the text exactly, no markup
    at.button(key="_class_link").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Train" for t in at.title)
    assert at.session_state["tr_network"] == "preset:deep_sigmoid_mlp"
    # a link to an experiment opens its suite on Compare's Experiments tab
    ClassStore(default_db_path()).save(ClassSettings(
        message="Run the ladder", message_link="experiment:ladder"), by=teacher())
    time.sleep(1.1)  # another server's change: every page reads the settings at most 1x a second
    at.run()
    at.button(key="_class_link").click().run()
    assert not at.exception, at.exception
    assert any(t.value == "Compare" for t in at.title)
    assert at.session_state["cmp_tab"] == "Experiments"
    assert at.session_state["exp_suite"] == "ladder"
    ClassStore(default_db_path()).save(ClassSettings(), by=teacher())
    time.sleep(1.1)  # another server's change: every page reads the settings at most 1x a second
    at.run()
    assert not [m for m in at.markdown if "From the teacher" in m.value]


def test_present_mode_hides_the_chrome_and_the_editing_widgets() -> None:
    plain = _app()
    assert not [h for h in plain.get("html") if "zoom" in h.proto.body]
    at = _app({"present": "1"})
    [style] = [h.proto.body for h in at.get("html") if "zoom" in h.proto.body]
    assert '[data-testid="stSidebar"]' in style and ".st-key-pg_editing" in style
    assert "display: none" in style


def test_the_share_link_carries_the_design_and_never_the_key() -> None:
    at = _app()
    _claim(at, "Ada")
    assert at.query_params["key"]
    at.session_state["build_tab"] = "Export & share"
    at.run()
    [link] = [c.value for c in at.code if "?d=" in c.value]
    assert "key=" not in link and "user=" not in link and "Ada" not in link
    assert decode_spec(link.split("?d=")[1]).name == at.session_state["spec"].name


def test_the_teacher_sees_the_class_and_stops_a_run() -> None:
    at = _app()  # the server has started (and recovered what an earlier one left queued)
    store = RunStore(default_db_path())
    rid = store.create_run("Ada", "queued run", get_preset("mlp_points").to_dict(),
                           {"dataset": "spirals", "steps": 10})
    at.sidebar.text_input(key="_teacher_box").input(TEACHER_CODE).run()
    at.switch_page("pages/teacher.py").run()
    assert not at.exception, at.exception
    [table] = at.dataframe
    row = table.value.iloc[0]
    assert (row["student"], row["design"], row["params"], row["status"]) == (
        "Ada", "mlp_points", 626, "queued")
    at.button(key="t_stop_all").click().run()
    run = store.get_run(rid)
    assert run.status == "stopped" and run.stopped_by == "the teacher"
