"""ui/speedups.py: the widget modules' one-key view of the filtered session state.

The oracle is Streamlit's own ``SessionState.filtered_state``, read in a live session of the
app after real interactions; and the behaviour the widgets' lookup exists for (a key set to
``None`` in Session State starts the widget empty) is checked through the real widgets.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.speedups import WIDGET_MODULES, KeyView, install

ROOT = Path(__file__).resolve().parents[1]


def test_install_patches_every_widget_module_once() -> None:
    install()
    for name in WIDGET_MODULES:
        module = importlib.import_module(name)
        assert getattr(module.get_session_state, "_playground_key_view", False), name
    assert install() == []  # a second call changes nothing


def test_the_key_view_answers_as_the_filtered_state_in_a_live_session(tmp_path,
                                                                      monkeypatch) -> None:
    monkeypatch.setenv("PLAYGROUND_HOME", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params["user"] = "ada"
    at.run()
    at.session_state.open_stages = {0}
    at.run()
    gen = at.session_state.gen
    at.number_input(key=f"g{gen}_s_0_width").set_value(24).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    safe = at.session_state._state  # Streamlit's SafeSessionState of this session
    whole = safe.filtered_state
    view = KeyView(safe)
    assert len(whole) > 50  # settings, designs, widgets of two pages
    for key, value in whole.items():
        assert key in view, key
        assert view[key] == value or (value != value), key  # NaN-safe
    for absent in ("no_such_key", "g999_s_0_width", "", "$$ID-0000-nothing"):
        assert (absent in view) == (absent in whole)
    assert dict(view) == whole and len(view) == len(whole)


def _none_start() -> None:
    import streamlit as st

    from ui.speedups import install

    install()
    if "n" not in st.session_state:
        st.session_state.n = None
        st.session_state.t = None
        st.session_state.c = None
    st.number_input("n", value=5, key="n")
    st.text_input("t", value="hello", key="t")
    st.selectbox("c", ["a", "b"], index=0, key="c")
    st.number_input("m", value=7, key="m")


def test_a_key_set_to_none_still_starts_its_widget_empty() -> None:
    at = AppTest.from_function(_none_start).run()
    assert not at.exception
    assert at.number_input(key="n").value is None
    assert at.text_input(key="t").value is None
    assert at.selectbox(key="c").value is None
    assert at.number_input(key="m").value == 7  # a key Session State does not hold
