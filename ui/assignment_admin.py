"""The Teacher page's Assignments tab: set an assignment, edit it, open, close and reopen it,
export every submission as CSV, list and remove submissions, and the link that opens it on the
Leaderboard page.

Everything acts as the teacher's :class:`~playground.access.Actor` through
:class:`playground.assignments.AssignmentStore`, which checks the role again and validates the
whole assignment; its refusals are shown as one line. Budgets are typed as the command line
takes them ("100k", "20M", "64MiB": :func:`playground.cli_assignments.parse_count` and
``parse_bytes``); the deadline is a date and a time in the teacher's browser's time zone.
Only data sets that can hold back a hidden test split are offered
(:func:`playground.holdout.holdout_datasets`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from playground.access import Actor
from playground.assignments import (
    ASSIGNMENT_LOCKABLE,
    MAX_INSTRUCTIONS_CHARS,
    MAX_TITLE_CHARS,
    Assignment,
)
from playground.cli_assignments import parse_bytes, parse_count
from playground.data import get_dataset_info, list_datasets
from playground.errors import PlaygroundError
from playground.format import fmt_si
from playground.holdout import holdout_datasets
from playground.share import page_link
from playground.store.schema import name_key
from ui.identity import current_actor
from ui.jobs import get_assignments
from ui.leaderboard_view import count_text, fmt_time, local_zone
from ui.teacher_view import lock_widget
from ui.text import md_escape

PICK = "ta_pick"  # the assignment acted on (its slug)
_NEXT_PICK = "_ta_pick_next"  # a slug to pick on the next run (after create or a new slug)
EDIT = "ta_edit"  # the Edit toggle
_EDIT_OFF = "_ta_edit_off"  # close the edit form on the next run (after a save)
NEW = "ta_new_"  # key prefix of the New assignment form


def _teacher() -> Actor:
    actor = current_actor()
    assert actor is not None and actor.is_staff  # the page stops before any tab otherwise
    return actor


def _flash(text: str) -> None:
    st.session_state.flash.append(("success", text))


# -- the form ---------------------------------------------------------------------------------
def _shape_text(shape: tuple[int, ...] | None) -> str:
    return "x".join(map(str, shape or ()))


def _bytes_text(n: int | None) -> str:
    """``n`` bytes as :func:`parse_bytes` reads it back exactly (``64MiB``), ``""`` for none."""
    if n is None:
        return ""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n % scale == 0:
            return f"{n // scale}{unit}"
    return str(n)


def _deadline_widgets(prefix: str, current: float | None) -> float | None:
    """A Deadline toggle, then a date and a time in the viewer's zone; Unix seconds or None."""
    zone = local_zone()
    on = st.toggle("Deadline", value=current is not None, key=prefix + "has_deadline",
                   help="Submissions are refused after it (the minute itself still counts).")
    if not on:
        return None
    when = (dt.datetime.fromtimestamp(current, zone) if current is not None
            else (dt.datetime.now(zone) + dt.timedelta(days=7)).replace(
                hour=18, minute=0, second=0, microsecond=0))
    c1, c2 = st.columns(2)
    day = c1.date_input("Deadline date", value=when.date(), key=prefix + "date")
    hour = c2.time_input("Deadline time", value=when.time(), key=prefix + "time", step=300)
    moment = dt.datetime.combine(day, hour)
    return (moment.replace(tzinfo=zone) if zone is not None else moment).timestamp()


def _form(prefix: str, current: Assignment | None) -> dict[str, Any]:
    """The assignment's widgets, filled from ``current`` (a new one: usual defaults); returns
    the raw values for :func:`_data`."""
    raw: dict[str, Any] = {}
    raw["title"] = st.text_input("Title", value=current.title if current else "",
                                 max_chars=MAX_TITLE_CHARS, key=prefix + "title",
                                 placeholder="Best accuracy under 1k parameters")
    raw["slug"] = st.text_input(
        "Link name", value=current.slug if current else "", key=prefix + "slug",
        placeholder="from the title", help="Its name in links and commands: lower-case "
        "letters, digits and dashes. Left empty, it is made from the title.")
    raw["instructions"] = st.text_area(
        "Instructions (markdown)", value=current.instructions if current else "",
        max_chars=MAX_INSTRUCTIONS_CHARS, height=140, key=prefix + "instructions",
        placeholder="Design the most accurate network you can within the budgets...")
    if raw["instructions"].strip():
        with st.expander("Preview the instructions"):
            st.markdown(raw["instructions"])  # the teacher's own markdown; no raw HTML

    names = holdout_datasets()
    titles = {d.name: d.title for d in list_datasets()}
    c1, c2 = st.columns(2)
    ds = c1.selectbox("Data set", names, format_func=lambda n: titles.get(n, n),
                      index=names.index(current.dataset) if current and current.dataset in names
                      else names.index("shapes"), key=prefix + "dataset")
    raw["dataset"] = ds
    info = get_dataset_info(ds)
    same = current is not None and current.dataset == ds
    if info.kind == "points":
        c2.text_input("Input size", value="2x1x1 (2-D points)", disabled=True,
                      key=prefix + "input_points")
        raw["input_shape"] = None
    else:
        shapes = [_shape_text(s) for s in info.input_shapes]
        if same and _shape_text(current.input_shape) not in shapes:  # type: ignore[union-attr]
            shapes.insert(0, _shape_text(current.input_shape))  # type: ignore[union-attr]
        now = _shape_text(current.input_shape) if same else shapes[0]  # type: ignore[union-attr]
        raw["input_shape"] = c2.selectbox("Input size (CxHxW)", shapes,
                                          index=shapes.index(now), key=f"{prefix}input_{ds}")
    with st.expander("Data sizes and seed"):
        d1, d2, d3, d4 = st.columns(4)
        for col, field, label in ((d1, "n_train", "Training examples"),
                                  (d2, "n_val", "Validation examples"),
                                  (d3, "n_test", "Hidden test examples")):
            value = int(getattr(current, field) or 0) if same else 0
            raw[field] = col.number_input(label, 0, 10**7, value, key=f"{prefix}{field}_{ds}",
                                          help="0: the data set's default.")
        raw["data_seed"] = d4.number_input("Data seed", 0, 2**31 - 1,
                                           current.data_seed if current else 0,
                                           key=prefix + "data_seed")

    b1, b2, b3, b4 = st.columns(4)
    raw["max_params"] = b1.text_input("Max parameters", key=prefix + "max_params",
                                      value=count_text(current.max_params) if current else "100k",
                                      help="A count: 100k, 1.5M or 120000.")
    raw["max_macs"] = b2.text_input("Max MACs", key=prefix + "max_macs",
                                    value=count_text(current.max_macs) if current else "20M",
                                    help="Multiply-adds per example, as fvcore counts them: "
                                    "20M, 1G.")
    raw["max_steps"] = b3.number_input("Max training steps", 1, 10**7,
                                       current.max_steps if current else 300,
                                       key=prefix + "max_steps")
    raw["max_memory"] = b4.text_input(
        "Max training memory", key=prefix + "max_memory", placeholder="no limit",
        value=_bytes_text(current.max_train_memory_bytes) if current else "",
        help="Optional: 64MiB, 1GB. The estimate for the run's batch and optimiser.")

    locked = current.locked if current else {}
    fields = st.multiselect("Lock these training settings", list(ASSIGNMENT_LOCKABLE),
                            default=[f for f in locked if f in ASSIGNMENT_LOCKABLE],
                            format_func=ASSIGNMENT_LOCKABLE.get, key=prefix + "locked",
                            help="Every submitted run must use these values.")
    raw["locked"] = {}
    cols = st.columns(3)
    for i, field in enumerate(fields):
        with cols[i % 3]:
            raw["locked"][field] = lock_widget(field, locked.get(field), prefix + "lock_")
    s1, s2 = st.columns(2)
    raw["submissions_per_student"] = s1.number_input(
        "Submissions per student", 1, 1000,
        current.submissions_per_student if current else 5, key=prefix + "subs")
    with s2:
        raw["deadline"] = _deadline_widgets(prefix, current.deadline if current else None)
    return raw


def _data(raw: dict[str, Any], current: Assignment | None) -> dict[str, Any]:
    """Assignment fields from the form's raw values (a ``ConfigError`` for a budget that does
    not read)."""
    data: dict[str, Any] = {
        "title": raw["title"], "instructions": raw["instructions"], "dataset": raw["dataset"],
        "data_seed": int(raw["data_seed"]),
        "max_params": parse_count(raw["max_params"], "the parameter budget"),
        "max_macs": parse_count(raw["max_macs"], "the MAC budget"),
        "max_steps": int(raw["max_steps"]), "locked": raw["locked"],
        "submissions_per_student": int(raw["submissions_per_student"]),
        "deadline": raw["deadline"],
        "max_train_memory_bytes": (parse_bytes(raw["max_memory"], "the memory budget")
                                   if raw["max_memory"].strip() else None),
    }
    if raw["slug"].strip() or current is None:
        data["slug"] = raw["slug"].strip()
    if raw["input_shape"]:
        data["input_shape"] = tuple(int(v) for v in raw["input_shape"].split("x"))
    else:
        data["input_shape"] = None
    for field in ("n_train", "n_val", "n_test"):
        data[field] = int(raw[field]) or None  # None: the set's default
    return data


# -- the tab ----------------------------------------------------------------------------------
def _overview(items: list[Assignment], teacher: Actor) -> None:
    store = get_assignments()
    subs = {a.id: store.submissions(a.id or 0, by=teacher) for a in items}
    st.dataframe(pd.DataFrame([{
        "link name": a.slug, "title": a.title, "state": a.state, "data set": a.dataset,
        "params": fmt_si(a.max_params), "MACs": fmt_si(a.max_macs), "steps": a.max_steps,
        "submissions": len(subs[a.id]),
        "students": len({name_key(s.student) for s in subs[a.id]}),
        "deadline": fmt_time(a.deadline),
    } for a in items]), hide_index=True, width="stretch", key="ta_table")


def _actions(a: Assignment, teacher: Actor) -> None:
    """Open/close, edit, CSV export and the link of the assignment picked."""
    store = get_assignments()
    c1, c2, c3 = st.columns([1.2, 1, 1.6], vertical_alignment="center")
    if a.state == "open":
        label, act, icon = "Close", store.close, ":material/lock:"
        tip = "Stop submissions and show the private ranking (test accuracy) to the class."
    else:
        ever_open = a.closed_at is not None and a.closed_at != a.created_at  # not made closed
        label, icon = ("Reopen" if ever_open else "Open"), ":material/lock_open:"
        act = store.reopen
        tip = "Accept submissions; students see no test accuracy until you close it again."
    if c1.button(label, icon=icon, key=f"ta_state_{a.id}", help=tip, type="primary"):
        try:
            act(a.id or 0, by=teacher)
        except PlaygroundError as err:
            st.error(md_escape(err))
        else:
            _flash(f"{a.title}: {'closed' if a.state == 'open' else 'open'}.")
            st.rerun()
    c2.toggle("Edit", key=EDIT)
    try:
        csv = store.export_csv(a.id or 0, by=teacher)
    except PlaygroundError as err:
        st.error(md_escape(err))
    else:
        c3.download_button("Download submissions (CSV)", csv, file_name=f"{a.slug}.csv",
                           mime="text/csv", icon=":material/download:", key=f"ta_csv_{a.id}",
                           on_click="ignore", help="Every submission: student, design, "
                           "params, MACs, steps, validation and test accuracy, submitted at.")
    st.caption("This link opens the assignment on the Leaderboard page (add `&present=1` for "
               "the projector: names hidden):")
    st.code(page_link(st.context.url, "leaderboard", a=a.slug), language=None)
    if st.session_state.get(EDIT):
        _edit(a, teacher)
    _submissions(a, teacher)


def _submissions(a: Assignment, teacher: Actor) -> None:
    """The assignment's submissions, newest first, and removing one (the student gets it back;
    the run is kept)."""
    subs = get_assignments().submissions(a.id or 0, by=teacher)[::-1]
    with st.expander(f"Submissions ({len(subs)})", icon=":material/list:"):
        if not subs:
            st.caption("None yet.")
            return
        st.dataframe(pd.DataFrame([{
            "submission": s.id, "student": s.student, "run": s.run_id, "design": s.design,
            "val. acc.": f"{s.val_acc:.1%}",
            "test acc.": "" if s.test_acc is None else f"{s.test_acc:.1%}",
            "submitted": fmt_time(s.submitted_at),
        } for s in subs]), hide_index=True, width="stretch", key=f"ta_subs_{a.id}")
        by_id = {s.id: s for s in subs}
        c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
        sid = c1.selectbox("Submission to remove", list(by_id), key=f"ta_rm_pick_{a.id}",
                           format_func=lambda i: f"#{i}: {by_id[i].student}, run "
                           f"{by_id[i].run_id}, {by_id[i].design}")
        sure = c2.popover("Remove", icon=":material/delete:")
        sure.markdown(md_escape(f"Remove submission #{sid} of {by_id[sid].student}? It leaves "
                                "the leaderboard and the CSV, and the student may submit once "
                                "more. The run itself is kept."))
        if sure.button("Yes, remove it", type="primary", key=f"ta_rm_{a.id}"):
            try:
                gone = get_assignments().remove_submission(a.id or 0, int(sid), by=teacher)
            except PlaygroundError as err:
                st.error(md_escape(err))
            else:
                _flash(f"Removed submission #{gone.id} of {gone.student} (run {gone.run_id}) "
                       f"from {a.title}; they may submit once more.")
                st.rerun()


def _edit(a: Assignment, teacher: Actor) -> None:
    with st.container(border=True):
        st.markdown(f"**Edit {md_escape(a.title)}**")
        prefix = f"ta_e{a.id}_"
        raw = _form(prefix, a)
        if st.button("Save changes", type="primary", icon=":material/save:",
                     key=f"ta_save_{a.id}"):
            try:
                saved = get_assignments().update(a.id or 0, _data(raw, a), by=teacher)
            except PlaygroundError as err:
                st.error(md_escape(err))
                return
            st.session_state[_NEXT_PICK] = saved.slug
            st.session_state[_EDIT_OFF] = True
            _flash(f"Saved {saved.title}.")
            st.rerun()


def _create(teacher: Actor) -> None:
    raw = _form(NEW, None)
    open_now = st.toggle("Open for submissions now", value=True, key=NEW + "open")
    if st.button("Create assignment", type="primary", icon=":material/add:",
                 key="ta_create"):
        try:
            data = _data(raw, None) | {"state": "open" if open_now else "closed"}
            made = get_assignments().create(data, by=teacher)
        except PlaygroundError as err:
            st.error(md_escape(err))
            return
        for key in [k for k in st.session_state if str(k).startswith(NEW)]:
            del st.session_state[key]  # a clean form for the next one
        st.session_state[_NEXT_PICK] = made.slug
        _flash(f"Created {made.title} ({made.state}).")
        st.rerun()


def assignments_tab() -> None:
    """Every assignment with its state and submissions, the actions on one, and a new one."""
    teacher = _teacher()
    if st.session_state.pop(_EDIT_OFF, False):
        st.session_state[EDIT] = False
    items = get_assignments().list()
    if items:
        _overview(items, teacher)
        slugs = [a.slug for a in items]
        if (nxt := st.session_state.pop(_NEXT_PICK, None)) in slugs:
            st.session_state[PICK] = nxt
        if st.session_state.get(PICK) not in slugs:
            st.session_state[PICK] = slugs[0]
        labels = {a.slug: f"{a.title} ({a.slug}, {a.state})" for a in items}
        st.selectbox("Assignment", slugs, format_func=labels.get, key=PICK)
        _actions(next(a for a in items if a.slug == st.session_state[PICK]), teacher)
    else:
        st.info("No assignments yet: create the first one below.")
    with st.expander("New assignment", expanded=not items, icon=":material/add:"):
        _create(teacher)
