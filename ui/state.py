"""Session-state keys, set up in one place, and the session's first read of the address.

Who the session is (a claimed name with its key, a login, the teacher) is
:mod:`ui.identity`'s; :func:`clean_user` normalises a typed or linked name as the stores keep it.
"""

from __future__ import annotations

import gc
import sys
from typing import Any

import streamlit as st

from playground.errors import PlaygroundError
from playground.presets import get_preset
from playground.runs import MAX_OWNER_CHARS, normalise_owner
from playground.share import decode_spec
from playground.spec import NetworkSpec
from ui.compare_state import COMPARE_KEYS
from ui.identity import restore_identity
from ui.text import md_escape

DEFAULT_PRESET = "small_cnn"

# Every key the pages share, with its initial value.
KEYS = {
    "user": "",  # the signed-in name (key checked or logged in); "" for none
    "user_key": "",  # the key of that name, kept in the address
    "teacher": False,  # the teacher's code was given in this session
    "spec": None,  # the NetworkSpec being edited (may be invalid)
    "source": "preset:" + DEFAULT_PRESET,  # where the design came from
    "zoo": None,  # {"name": ..., "input": (c, h, w), "num_classes": n} when a zoo model is open
    "gen": 0,  # bumped when the spec is replaced wholesale, to reset widget keys
    "last_good": None,  # last spec that analysed cleanly (set by the Build page)
    "origin": None,  # the design (spec or zoo dict) as it was opened: edits differ from it
    "undo": None,  # a snapshot() of the edited design a pick replaced, while Undo is offered
    "flash": [],  # messages to show once: (kind, plain text), escaped when shown
    "open_stages": set(),  # indices of stage editors the user has expanded
    "assignment": "",  # the active assignment's slug ("" none; ui/assignment_state.py)
    "run_cache": {},  # run id -> {"cursor", "series", "labels"}: metrics read so far
    # Train page widgets (their defaults train the small CNN in well under a minute)
    "tr_network": "__current__",
    "tr_dataset": "shapes",
    "tr_optimizer": "adam",
    "tr_lr": 1e-3,
    "tr_steps": 300,
    "tr_batch": 64,
    "tr_schedule": "constant",
    "tr_clip": 0.0,
    "tr_wd": None,
    "tr_seed": 0,
    "tr_accum": 1,
    "tr_smooth": 0.0,
    "tr_patience": 0,
    "tr_eval": 25,
    "tr_ntrain": 0,
    "tr_augment": False,
    "tr_amp": "off",
    **COMPARE_KEYS,  # Compare and Learn pages
}


_heap_frozen = False


def freeze_heap() -> None:
    """Once per server, after torch and torchvision are imported: one full collection, then
    ``gc.freeze()``, so later collections never walk the ~430,000 objects the imports made.

    A full collection over them costs ~0.3 s of CPU under the GIL; Streamlit's own one after
    every script run is off (``runner.postScriptGC`` in .streamlit/config.toml), and this
    keeps Python's occasional oldest-generation collections as cheap (issue 12). Not in an
    AppTest run, whose process is the test runner's.
    """
    global _heap_frozen
    if _heap_frozen or "torchvision" not in sys.modules or st.get_option("global.appTest"):
        return
    _heap_frozen = True
    gc.collect()
    gc.freeze()


def init_state() -> None:
    """Create missing keys; on a session's first run, restore user and design from the URL."""
    freeze_heap()
    first = "user" not in st.session_state
    for key, value in KEYS.items():
        if key not in st.session_state:
            st.session_state[key] = (type(value)(value) if isinstance(value, list | set | dict)
                                     else value)
    if not first:
        return
    params = st.query_params
    restore_identity()
    link = params.get("d")
    if link:
        try:
            st.session_state.spec = decode_spec(link)
            st.session_state.source = "link"
        except PlaygroundError as err:
            st.session_state.flash.append(
                ("error", f"Could not open the shared design: {err}. Showing the default design.")
            )
    # The fallback numbers are the default design's until the Build page has analysed the
    # design (a shared one included) without an error.
    st.session_state.last_good = get_preset(DEFAULT_PRESET)
    if st.session_state.spec is None:
        st.session_state.spec = st.session_state.last_good
    st.session_state.origin = st.session_state.spec


def set_spec(spec: NetworkSpec, source: str | None = None) -> None:
    """Replace the design wholesale: widgets are re-created. With ``source`` (a preset, a saved
    design, an upload) the design is newly opened and becomes the one edits are measured
    against; without it (a stage reordered or added) it is an edit of the open design."""
    st.session_state.spec = spec
    st.session_state.zoo = None
    st.session_state.open_stages = set()
    if source is not None:
        st.session_state.source = source
        st.session_state.origin = spec
    st.session_state.gen += 1


def is_edited() -> bool:
    """True when the open design (or zoo model's input and classes) differs from how it was
    opened. Changing a value and changing it back is no edit."""
    zoo = st.session_state.zoo
    current = zoo if zoo is not None else st.session_state.spec
    return current != st.session_state.origin


SNAPSHOT_KEYS = ("spec", "zoo", "source", "origin", "last_good")


def snapshot() -> dict[str, Any]:
    """What :func:`restore` needs to bring the open design back exactly, edits included."""
    return {k: st.session_state[k] for k in SNAPSHOT_KEYS}


def restore(saved: dict[str, Any]) -> None:
    """Bring back a :func:`snapshot`; editor widgets are re-created with its values."""
    for k in SNAPSHOT_KEYS:
        st.session_state[k] = saved[k]
    st.session_state.open_stages = set()
    st.session_state.gen += 1


def clean_user(raw: object) -> str:
    """The classroom name from the sidebar box or the URL's ``?user=``, as the stores keep it.

    Unprintable characters (controls, format characters, lone surrogates) become spaces,
    whitespace runs collapse to one space, and the name is cut to ``MAX_OWNER_CHARS``. A name
    with nothing usable left is ``""``: no name.
    """
    text = "".join(ch if ch.isprintable() else " " for ch in str(raw)[:4 * MAX_OWNER_CHARS])
    text = " ".join(text.split())[:MAX_OWNER_CHARS].rstrip()
    try:
        return normalise_owner(text)
    except PlaygroundError:
        return ""


def show_flash() -> None:
    """Show the queued one-time messages, as text (they often quote user input)."""
    for kind, text in st.session_state.flash:
        getattr(st, kind)(md_escape(text))
    st.session_state.flash = []
