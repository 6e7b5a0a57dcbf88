"""One measured work-around for a per-widget cost in Streamlit (issue 12).

Streamlit's ``number_input``, ``selectbox``, ``text_input``, ``text_area``, ``radio``,
``slider`` and the date and time inputs each build the whole *filtered* session state (a
fresh dict of every key and widget value in the session: about 80 to 130 entries on these
pages) only to ask whether their own key holds ``None``::

    session_state = get_session_state().filtered_state
    if key is not None and key in session_state and session_state[key] is None: ...

(``streamlit/elements/widgets/*.py``, Streamlit 1.67). Profiled in the server's script
thread, that was a fifth to a third of a Build rerun: ~2 ms per widget, ~25 widgets.

:func:`install` gives those widget modules a ``get_session_state`` whose result answers
``filtered_state`` with :class:`KeyView`, a read-only view that looks one key up when asked
(``in``, ``[]``, ``get``) and builds the whole dict only to be iterated or counted. A user
key is in the filtered state exactly when Session State holds it (both look in the new
session values, the new widget values and the old state, by the key's widget id when it has
one); the values are the same presented values. Everything else is delegated to Streamlit's
own object untouched, and nothing changes for code outside those modules (``st.session_state``
itself, ``to_dict()``). A Streamlit whose widget modules no longer fit is left as it is.
``tests/test_speedups.py`` checks the view against the real filtered state in a live session.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping
from typing import Any

WIDGET_MODULES = (
    "streamlit.elements.widgets.number_input",
    "streamlit.elements.widgets.selectbox",
    "streamlit.elements.widgets.text_widgets",
    "streamlit.elements.widgets.radio",
    "streamlit.elements.widgets.slider",
    "streamlit.elements.widgets.time_widgets",
)
_MARK = "_playground_key_view"


class KeyView(Mapping[str, Any]):
    """The filtered session state, read one key at a time (see the module docstring)."""

    def __init__(self, state: Any):
        self._state = state  # Streamlit's SafeSessionState

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and key in self._state

    def __getitem__(self, key: str) -> Any:
        return self._state[key]

    def _whole(self) -> dict[str, Any]:
        return self._state.filtered_state

    def __iter__(self) -> Iterator[str]:
        return iter(self._whole())

    def __len__(self) -> int:
        return len(self._whole())

    def __repr__(self) -> str:
        return repr(self._whole())


class _StateWithKeyView:
    """Streamlit's session state object, but ``filtered_state`` is a :class:`KeyView`."""

    __slots__ = ("_state",)

    def __init__(self, state: Any):
        self._state = state

    @property
    def filtered_state(self) -> KeyView:
        return KeyView(self._state)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._state, name)


def install() -> list[str]:
    """Patch the widget modules once per process; returns the modules patched."""
    patched = []
    for name in WIDGET_MODULES:
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        original = getattr(module, "get_session_state", None)
        if original is None or getattr(original, _MARK, False):
            continue

        def get_session_state(_original: Any = original) -> _StateWithKeyView:
            return _StateWithKeyView(_original())

        setattr(get_session_state, _MARK, True)
        get_session_state.__wrapped__ = original  # type: ignore[attr-defined]
        module.get_session_state = get_session_state  # type: ignore[attr-defined]
        patched.append(name)
    return patched
