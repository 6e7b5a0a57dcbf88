"""The OpenID login in the app (issue 12) with Streamlit's AppTest: with ``[auth]`` in the
server's secrets the sidebar offers *Log in* instead of names and keys, a logged-in user owns
by their verified e-mail address, an old ``?user=&key=`` address opens nothing, and a broken
``[auth]`` section is one line, not a traceback.

The secrets file is real (Streamlit's ``secrets.files`` option, read again for each test);
``AppTest.user`` stands in for the identity cookie that Streamlit's ``/oauth2callback`` sets.
The whole round trip through a real OpenID provider, in Chromium, is
tests/browser/test_login_browser.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from streamlit import config
from streamlit.runtime.secrets import secrets_singleton
from streamlit.testing.v1 import AppTest

from playground.designs import DesignStore
from playground.identity import IdentityStore
from playground.runs import default_db_path
from tests.helpers import shown

APP = str(Path(__file__).resolve().parents[1] / "app.py")
AUTH = """[auth]
redirect_uri = "http://127.0.0.1:8501/oauth2callback"
cookie_secret = "a-long-random-string-for-the-tests"
client_id = "playground"
client_secret = "s3cret"
server_metadata_url = "http://127.0.0.1:9/.well-known/openid-configuration"
"""
ADA = {"is_logged_in": True, "email": "ada@school.example", "email_verified": True,
       "name": "Ada", "sub": "0923", "iss": "http://127.0.0.1:9"}


def _secrets(tmp_path: Path, text: str) -> Iterator[None]:
    path = tmp_path / "secrets.toml"
    path.write_text(text)
    before = config.get_option("secrets.files")
    config.set_option("secrets.files", [str(path)])
    secrets_singleton._reset()  # read the file again (Streamlit caches it per process)
    try:
        yield
    finally:
        config.set_option("secrets.files", before)
        secrets_singleton._reset()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PLAYGROUND_TEACHER_CODE", "chalk")
    monkeypatch.delenv("PLAYGROUND_CLASS_CODE", raising=False)


@pytest.fixture()
def auth(tmp_path: Path) -> Iterator[None]:
    yield from _secrets(tmp_path, AUTH)


def _app(user: dict | None = None, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120)
    if user is not None:
        at.user = user
    for k, v in (query or {}).items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, at.exception
    return at


def _sidebar_text(at: AppTest) -> str:
    return " ".join([t.value for t in at.sidebar.text] + [shown(c.value)
                                                         for c in at.sidebar.caption])


def test_without_auth_the_sidebar_offers_names_and_no_login() -> None:
    at = _app()
    assert at.sidebar.text_input(key="_user_box")
    assert not [b for b in at.sidebar.button if b.label == "Log in"]


def test_with_auth_the_sidebar_offers_login_and_no_name_or_key(auth) -> None:
    key = IdentityStore(default_db_path()).claim("Ada")  # a key from before the login
    at = _app({"is_logged_in": False}, {"user": "Ada", "key": key})
    assert [b.label for b in at.sidebar.button] == ["Log in"]
    assert not [t for t in at.sidebar.text_input if t.key in ("_user_box", "_key_box")]
    # the old address opens nothing and is taken out of the address
    assert at.session_state["user"] == ""
    assert "user" not in at.query_params and "key" not in at.query_params
    assert "Log in with your school account" in _sidebar_text(at)


def test_a_logged_in_user_owns_by_their_address(auth) -> None:
    at = _app(ADA)
    assert at.session_state["user"] == "ada@school.example"
    assert "Logged in as ada@school.example" in _sidebar_text(at)
    assert [b.label for b in at.sidebar.button] == ["Log out"]
    assert "user" not in at.query_params and "key" not in at.query_params
    # the first login joins the class: the address is a claimed name now
    assert [p.name for p in IdentityStore(default_db_path()).list_identities()] == \
        ["ada@school.example"]
    # a design saved now belongs to the address (the store checks the owner again)
    at.text_input(key="save_name").input("mine").run()
    at.button(key="save_btn").click().run()
    assert not at.exception, at.exception
    store = DesignStore(default_db_path())
    assert [d.name for d in store.list_designs("ada@school.example")] == ["mine"]
    # another login does not see it
    bob = _app({**ADA, "email": "bob@school.example", "sub": "7"})
    assert bob.session_state["user"] == "bob@school.example"
    assert "mine" not in str([o for s in bob.selectbox for o in s.options])


def test_an_unverified_address_is_not_taken_as_the_owner(auth) -> None:
    at = _app({**ADA, "email_verified": False, "name": "Mallory"})
    assert at.session_state["user"].startswith("Mallory #")
    assert at.session_state["user"] != "ada@school.example"


def test_with_a_class_code_a_login_joins_once_with_it(auth, monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_CLASS_CODE", "otter-42")
    at = _app(ADA)
    assert at.session_state["user"] == ""  # logged in, not in the class yet
    assert "Logged in as ada@school.example" in _sidebar_text(at)
    at.sidebar.text_input(key="_class_code").input("otter-4").run()
    assert at.session_state["user"] == ""
    assert [shown(e.value) for e in at.sidebar.error] == [
        "that is not the class code: ask your teacher for it"]
    assert not IdentityStore(default_db_path()).is_claimed("ada@school.example")
    at.sidebar.text_input(key="_class_code").input("otter-42").run()
    assert at.session_state["user"] == "ada@school.example"
    assert not at.sidebar.error and not [t for t in at.sidebar.text_input
                                         if t.key == "_class_code"]
    # her next visit (a new session, the same login) needs no code
    again = _app(ADA)
    assert again.session_state["user"] == "ada@school.example"
    assert not [t for t in again.sidebar.text_input if t.key == "_class_code"]
    # a stranger with an account at the same provider stays at the code box
    assert _app({**ADA, "email": "eve@elsewhere.example", "sub": "9"}).session_state["user"] == ""


def test_the_teacher_sees_who_logged_in_and_gives_no_keys(auth) -> None:
    _app(ADA)
    at = _app({**ADA, "email": "bob@school.example", "sub": "7"})
    at.sidebar.text_input(key="_teacher_box").input("chalk").run()
    at.switch_page("pages/teacher.py").run()
    at.session_state["teacher_tab"] = "Students"
    at.run()
    assert not at.exception, at.exception
    assert any("no keys to give out" in shown(i.value) for i in at.info)
    [table] = at.dataframe
    assert list(table.value["student"]) == ["ada@school.example", "bob@school.example"]
    assert "first logged in" in table.value.columns
    assert not [b for b in at.button if b.key == "t_reset"]


def test_a_provider_that_does_not_answer_is_one_line_on_log_in(auth) -> None:
    at = _app({"is_logged_in": False})  # AUTH's provider: port 9, where nothing listens
    at.sidebar.button(key="_login").click().run()
    assert not at.exception, at.exception
    [error] = [shown(e.value) for e in at.sidebar.error]
    assert error == ("Cannot log in now: the sign-in service at 127.0.0.1:9 does not answer: "
                     "try again in a moment, or tell your teacher.")


def test_a_broken_auth_section_is_one_line_on_log_in(tmp_path: Path) -> None:
    for _ in _secrets(tmp_path, '[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n'):
        at = _app({"is_logged_in": False})
        at.sidebar.button(key="_login").click().run()
        assert not at.exception, at.exception
        [error] = [shown(e.value) for e in at.sidebar.error]
        assert error.startswith("Log in is not set up right on this server:")
        assert "cookie_secret" in error and "  " not in error, error
