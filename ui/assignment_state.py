"""The student's active assignment: which one, read from the store and from ``?a=<slug>``.

- The assignments are read through :func:`list_assignments`, a two-second ``st.cache_data``
  (as ``ui/jobs.py`` reads the class settings), and only as
  :meth:`~playground.assignments.Assignment.public_dict` data: the hidden test split's seed
  never reaches a page. :func:`as_assignment` rebuilds an ``Assignment`` from that data for
  the budget maths, with a placeholder seed (``0``) that is never used to score anything.
- ``st.session_state.assignment`` holds the active assignment's slug (``""``: none). Only an
  open assignment can be active; one the teacher closes or deletes stops being active on the
  next rerun, with a note (:func:`take_note`).
- ``?a=<slug>`` (the Leaderboard page reads the same parameter) opens an assignment: a value
  differing from the one this session last wrote is taken as a new choice, so a link or a
  page link works, while a page switch (which drops the address's parameters) changes
  nothing. :func:`active_assignment` writes the active slug back on every run of Build and
  Train, beside their own parameters, which it leaves alone (``ui/train_state.py``).
- The Train page's locks: :func:`assignment_rules` merges the assignment's
  :meth:`~playground.assignments.Assignment.training_locks` and its ``max_steps`` into the
  class settings that ``ui/class_rules.py`` applies, so the data set and the locked settings
  are shown and disabled exactly as the teacher's class locks are (and, like those, do not
  bind the teacher). :func:`data_settings` gives the data fields (seed, sizes, noise) the run
  must use whenever the page trains on the assignment's data set, for the teacher too, so a
  run started there is submittable; :func:`lock_training_size` shows the size in its widget.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.access import Actor
from playground.assignments import Assignment, AssignmentStore
from playground.classroom import ClassSettings
from playground.errors import PlaygroundError
from playground.store import default_url
from ui.class_rules import binds
from ui.jobs import get_assignments
from ui.train_state import put_param

PARAM = "a"  # ?a=<slug>
NONE = ""  # the "no assignment" choice
PICK = "_asg_pick"  # the picker's widget key
_SEEN = "_asg_url_seen"  # the ?a= value this session last read or wrote
_NOTE = "_asg_note"  # a one-time note on why the active assignment changed (plain text)


def get_assignment_store() -> AssignmentStore:
    """The assignments and submissions (same database as the runs; one per server)."""
    return get_assignments()


@st.cache_data(ttl=2.0, show_spinner=False)
def _public(url: str) -> list[dict[str, Any]]:  # url: the cache key, one list per store
    return [a.public_dict() for a in get_assignments().list()]


def list_assignments() -> list[dict[str, Any]]:
    """Every assignment as public data (newest first), read at most every two seconds per
    server, so a teacher's open or close reaches each student within two seconds."""
    return _public(default_url())


@st.cache_data(ttl=2.0, show_spinner=False)
def _left(url: str, slug: str, student: str) -> int:
    return get_assignments().submissions_left(slug, student)


def submissions_left(slug: str, student: str) -> int:
    """How many more times ``student`` may submit to ``slug`` (read at most every 2 s)."""
    return _left(default_url(), slug, student)


def forget_cached() -> None:
    """Drop the cached reads (after a submission, so the counts are fresh at once)."""
    _public.clear()
    _left.clear()


def open_assignments() -> list[dict[str, Any]]:
    return [a for a in list_assignments() if a["state"] == "open"]


def _find(slug: str) -> dict[str, Any] | None:
    key = slug.strip().lower()
    return next((a for a in list_assignments() if a["slug"] == key), None)


def as_assignment(public: dict[str, Any]) -> Assignment:
    """The :class:`Assignment` behind public data, for :func:`~playground.assignments.
    budget_report` and :func:`~playground.assignments.run_problems`; ``test_seed`` is a
    placeholder (submissions are scored by the store, from its own copy)."""
    data = {k: v for k, v in public.items() if k != "num_classes"}
    return Assignment.model_validate({**data, "test_seed": 0})


def _note(text: str) -> None:
    st.session_state[_NOTE] = text


def take_note() -> str:
    """The pending note on the active assignment (plain text; ``""`` for none), once."""
    return st.session_state.pop(_NOTE, "") or ""


def active_assignment() -> dict[str, Any] | None:
    """The active assignment's public data, or ``None``; keeps ``?a=`` in the address.

    A new ``?a=`` value (a link) is taken first; then the active slug must still name an open
    assignment. Never raises: a store that cannot be read means no assignment.
    """
    state = st.session_state
    state.setdefault("assignment", NONE)
    url = st.query_params.get(PARAM)
    try:
        if url is not None and url != state.get(_SEEN):
            state[_SEEN] = url
            found = _find(url)
            if found is None:
                _note(f"There is no assignment {url[:60]!r}.")
            elif found["state"] != "open":
                _note(f"The assignment {found['title']} is closed: its results are on the "
                      "Leaderboard page.")
            else:
                state.assignment = found["slug"]
        current = _find(state.assignment) if state.assignment else None
    except PlaygroundError:
        current = None
    if state.assignment and (current is None or current["state"] != "open"):
        title = current["title"] if current else state.assignment
        _note(f"The assignment {title} was closed by the teacher." if current else
              f"The assignment {title} no longer exists.")
        state.assignment = NONE
        current = None
    _mirror(current["slug"] if current else None)
    return current


def _mirror(slug: str | None) -> None:
    put_param(PARAM, slug)
    st.session_state[_SEEN] = slug


def _on_pick() -> None:
    state = st.session_state
    if state.get("assignment") and not state[PICK]:
        state.tr_ntrain = 0  # leaving the assignment's data: the data set's default again
    state.assignment = state[PICK] or NONE


def assignment_picker(container: Any = st) -> None:
    """The "Assignment" box: the open assignments and "None"; the active one selected."""
    opened = {a["slug"]: a["title"] for a in open_assignments()}
    options = [NONE, *opened]
    state = st.session_state
    state[PICK] = state.get("assignment", NONE) if state.get("assignment") in opened else NONE
    container.selectbox(
        "Assignment", options, key=PICK, on_change=_on_pick,
        format_func=lambda s: opened.get(s, "None (free play)"),
        help="An assignment set by the teacher: its budgets are measured on every edit, its "
             "data and locked settings are used on Train, and a finished run can be "
             "submitted from the Results tab.")


def assignment_rules(rules: ClassSettings, actor: Actor | None) -> ClassSettings:
    """The class settings with the active assignment's locks and steps cap merged in, for
    ``ui/class_rules.py`` (the Train page); for the teacher, and without an active
    assignment, ``rules`` unchanged."""
    public = active_assignment()
    if public is None or not binds(actor):
        return rules
    a = as_assignment(public)
    locks = {k: v for k, v in a.training_locks().items() if k in ("dataset", *a.locked)}
    cap = a.max_steps if rules.max_steps is None else min(rules.max_steps, a.max_steps)
    datasets = rules.datasets if rules.datasets is None else [*rules.datasets, a.dataset]
    return rules.model_copy(update={"locked": {**rules.locked, **locks}, "max_steps": cap,
                                    "datasets": datasets})


def lock_training_size(dataset: str) -> bool:
    """When the page trains on the active assignment's data set (for anyone, the teacher
    too: :func:`data_settings` applies then), put its training-set size into the widget
    ``tr_ntrain`` and return True (the widget is then shown disabled)."""
    fields = data_settings(dataset)
    if fields:
        st.session_state.tr_ntrain = int(fields["n_train"] or 0)
    return bool(fields)


def _training_on(dataset: str) -> Assignment | None:
    """The active assignment when the Train page trains on its data set, else ``None``."""
    slug = st.session_state.get("assignment") or NONE
    public = _find(slug) if slug else None
    if public is None or public["dataset"] != dataset:
        return None
    return as_assignment(public)


def assignment_input(dataset: str) -> tuple[int, int, int] | None:
    """The active assignment's network input (C, H, W) when the Train page trains on its data
    set, else ``None``: the input a run must take to be submitted."""
    a = _training_on(dataset)
    shape = a.input_shape if a is not None else None
    return None if shape is None else (int(shape[0]), int(shape[1]), int(shape[2]))


def data_settings(dataset: str) -> dict[str, Any]:
    """The active assignment's data fields (``data_seed``, ``n_train``, ``n_val``, ``noise``)
    when the Train page trains on its data set, else nothing: what makes a run's data the
    assignment's exactly."""
    a = _training_on(dataset)
    if a is None:
        return {}
    return {k: v for k, v in a.data_settings().items() if k != "dataset"}
