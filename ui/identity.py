"""The sidebar identity: a claimed name and its key, an OpenID login, the teacher's code.

Three ways to be someone (see :mod:`playground.identity` and :mod:`playground.access`):

- **A claimed name** (the default). Typing an unclaimed name claims it: the server makes a
  private key and the page puts ``?user=<name>&key=<key>`` in its address, so a reload or the
  bookmark on another device keeps working. A name claimed by someone else needs its key
  (from that address, or typed into the Key box); the teacher can give a new one.
  ``PLAYGROUND_CLASS_CODE``, when set, is asked for once before a name can be claimed.
- **An OpenID login** (Streamlit's ``st.login``) when ``[auth]`` is configured in
  ``.streamlit/secrets.toml``: the provider's verified e-mail address is the owner (else its
  display name tagged with its subject: :func:`playground.identity.login_owner`), and names
  and keys are not offered (a ``?user=``/``?key=`` in the address is dropped). The first
  login records the owner as a claimed name; with a class code, only after the code.
- **The teacher**: ``PLAYGROUND_TEACHER_CODE`` typed into the Teacher box (compared in constant
  time, never put in the address) makes this session the teacher's until it locks again.

``st.session_state.user`` holds the name only once it is proven (key checked or login);
every page passes :func:`current_actor` to the stores and runner, which check it again.
"""

from __future__ import annotations

import contextlib

import streamlit as st

from playground.access import Actor
from playground.errors import PlaygroundError
from playground.identity import NameTaken, class_code_required, login_owner, teacher_code_ok
from playground.settings import get_settings
from ui.jobs import get_identities
from ui.text import md_escape

_ERROR = "_id_error"  # the last sign-in problem, shown under the boxes
_JOINED = "_login_joined"  # the login owner this session has seen in the class


def current_actor() -> Actor | None:
    """Who this session acts as: the teacher (with their name, if any), a signed-in student,
    or ``None`` (no name yet)."""
    state = st.session_state
    if state.get("teacher"):
        return Actor(state.get("user", ""), "teacher")
    return Actor(state.user) if state.get("user") else None


def auth_configured() -> bool:
    """Whether Streamlit's OpenID login is configured (``[auth]`` in secrets.toml)."""
    try:
        from streamlit.auth_util import get_secrets_auth_section

        return bool(get_secrets_auth_section())
    except Exception:  # no secrets file, or one Streamlit cannot read: no login
        return False


def login_name() -> str:
    """The logged-in user's owner name (:func:`playground.identity.login_owner`), or ``""``."""
    user = st.user
    if not user.get("is_logged_in"):
        return ""
    return login_owner(user.to_dict())


def sign_in(name: str, key: str = "", class_code: str = "") -> bool:
    """Sign this session in as ``name``: with its ``key``, or by claiming an unclaimed name.
    On success the name and key are kept in the session (and so in the address)."""
    state = st.session_state
    state[_ERROR] = ""
    if not name:
        state.user, state.user_key = "", ""
        return False
    ids = get_identities()
    try:
        if key or ids.is_claimed(name):
            actor = ids.authenticate(name, key)
        else:
            key = ids.claim(name, class_code)
            actor = Actor(name)
            state.flash.append(("success", f"The name {name} is yours now. Your key is in this "
                                "page's address: bookmark it to come back, also from another "
                                "device, and keep it to yourself."))
    except PlaygroundError as err:
        state.user, state.user_key = "", ""
        state[_ERROR] = str(err)
        return False
    state.user, state.user_key = actor.name, key
    return True


def restore_identity() -> None:
    """On a session's first run: the login, or the name and key from the address."""
    from ui.state import clean_user

    if auth_configured():
        st.session_state.user = _login_user(login_name())
        return
    params = st.query_params
    name = clean_user(params.get("user", ""))
    if name:
        sign_in(name, params.get("key", "")[:200])


def _on_name() -> None:
    from ui.state import clean_user

    state = st.session_state
    sign_in(clean_user(state["_user_box"]), state.get("_key_box", "") or "",
            state.get("_class_code", "") or "")


def _on_class_code() -> None:
    if (st.session_state.get("_user_box") or "").strip():
        _on_name()


def _on_teacher_code() -> None:
    state = st.session_state
    code = state.get("_teacher_box", "") or ""
    state["_teacher_box"] = ""  # never kept in a widget after use
    state.teacher = teacher_code_ok(code)
    state["_teacher_error"] = "" if state.teacher else "That is not the teacher's code."


def _lock_teacher() -> None:
    st.session_state.teacher = False


def sidebar_identity() -> None:
    """The sidebar's identity boxes; keeps ``?user=`` and ``?key=`` in the address."""
    state = st.session_state
    login = auth_configured()
    with st.sidebar:
        if login:
            _login_box()
        else:
            _name_boxes()
        _teacher_box()
    for param, value in (("user", state.user), ("key", state.user_key if state.user else "")):
        if value and not login:
            if st.query_params.get(param) != value:
                st.query_params[param] = value
        elif param in st.query_params:
            del st.query_params[param]


def provider_problem(timeout_s: float = 5.0) -> str:
    """Why the login's identity provider cannot be used now (its discovery document at
    ``server_metadata_url`` does not load, or is not OpenID metadata), else ``""``.

    Checked before sending a browser there: otherwise a provider that is down gives the
    student Streamlit's bare "Authentication error" page and the server log a traceback."""
    import json
    import urllib.parse
    import urllib.request

    from streamlit.auth_util import get_secrets_auth_section

    url = str(get_secrets_auth_section().get("server_metadata_url") or "")
    if not url.startswith(("https://", "http://")):
        return ""  # none, or not a web address: st.login's own check says what is wrong
    host = urllib.parse.urlsplit(url).netloc
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as answer:
            metadata = json.loads(answer.read(1_000_000))
        if not isinstance(metadata, dict) or "authorization_endpoint" not in metadata:
            return (f"the sign-in service at {host} did not answer as an OpenID provider: "
                    "tell your teacher")
    except (OSError, ValueError):
        return (f"the sign-in service at {host} does not answer: try again in a moment, or "
                "tell your teacher")
    return ""


def _login() -> None:
    """Send the browser to the identity provider; a broken ``[auth]`` section or a provider
    that does not answer is one line."""
    state = st.session_state
    if problem := provider_problem():
        state[_ERROR] = f"Cannot log in now: {problem}."
        return
    state[_ERROR] = ""
    try:
        st.login()
    except Exception as err:  # StreamlitAuthError: a missing client_id, cookie_secret...
        why = " ".join(str(err).split())  # Streamlit's message spans indented lines
        st.session_state[_ERROR] = f"Log in is not set up right on this server: {why}"


def _login_user(owner: str) -> str:
    """The logged-in ``owner`` (:func:`login_name`) once they have joined the class, else
    ``""``.

    A login joins on its first visit: its owner is recorded as a claimed name (so the
    Teacher's *Students* tab lists who has logged in, and nobody can claim it by typing it if
    the server later runs without the login). With ``PLAYGROUND_CLASS_CODE`` set, joining needs
    the code once, as claiming a name does: a stranger with an account at the same provider
    gets no further than the code box."""
    state = st.session_state
    if not owner or state.get(_JOINED) == owner:
        return owner
    ids = get_identities()
    if not ids.is_claimed(owner):
        if class_code_required():
            return ""
        with contextlib.suppress(NameTaken):  # another tab of theirs joined a moment ago
            ids.claim(owner)
    state[_JOINED] = owner
    return owner


def _on_login_class_code() -> None:
    state = st.session_state
    owner = login_name()
    try:
        get_identities().claim(owner, state.get("_class_code", "") or "")
    except NameTaken:
        pass  # joined already (another tab): the code is not needed again
    except PlaygroundError as err:
        state[_ERROR] = str(err)
        return
    state[_ERROR], state[_JOINED] = "", owner


def _login_box() -> None:
    state = st.session_state
    owner = login_name()
    state.user, state.user_key = _login_user(owner), ""
    if owner:
        st.text(f"Logged in as {owner}")
        if not state.user:  # logged in, not yet in the class: the class code, once
            st.text_input("Class code", key="_class_code", type="password",
                          on_change=_on_login_class_code,
                          help="Your teacher gives it out once; it lets you join the class.")
            if state.get(_ERROR):
                st.error(md_escape(state[_ERROR]))
        st.button("Log out", on_click=st.logout, key="_logout")
        return
    st.button("Log in", on_click=_login, key="_login", type="primary")
    if state.get(_ERROR):
        st.error(md_escape(state[_ERROR]))
    else:
        st.caption("Log in with your school account to save designs and start runs.")


def _name_boxes() -> None:
    state = st.session_state
    if class_code_required() and not state.user:
        # a name typed before the code is claimed as soon as the code is entered
        st.text_input("Class code", key="_class_code", type="password",
                      on_change=_on_class_code,
                      help="Your teacher gives it out once; it lets you claim a name.")
    st.text_input(
        "Your name", value=state.user, key="_user_box", on_change=_on_name,
        placeholder="e.g. Ada",
        help="Your saved designs and runs are kept under this name. The first to use a name "
        "gets a private key in the page address: bookmark it to come back.")
    if state.get(_ERROR):
        st.error(md_escape(state[_ERROR]))
        st.text_input("Key (if this name is yours)", key="_key_box", type="password",
                      on_change=_on_name,
                      help="The key= part of your bookmarked address. Lost it? Ask the teacher "
                      "for a new one.")
    elif state.user:
        st.caption("Your key is in this page's address: bookmark it. Share designs with the "
                   "link on Build's Export & share tab, not with the address.")
    else:
        st.caption("Enter a name to save designs and runs.")


def _teacher_box() -> None:
    state = st.session_state
    if not get_settings().teacher_code:
        return
    if state.get("teacher"):
        st.caption("Teacher mode is on.")
        st.button("Leave teacher mode", on_click=_lock_teacher, key="_teacher_lock")
        return
    with st.expander("Teacher"):
        st.text_input("Teacher's code", key="_teacher_box", type="password",
                      on_change=_on_teacher_code)
        if state.get("_teacher_error"):
            st.error(state["_teacher_error"])
