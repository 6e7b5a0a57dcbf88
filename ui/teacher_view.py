"""The Teacher page's tabs: the class table, students and keys, class settings and message.

Everything acts as the teacher's :class:`~playground.access.Actor`, and the stores and runner
check that role again (:mod:`playground.access`). The class table re-reads the store every two
seconds while any run is active (``st.fragment(run_every=...)``).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import streamlit as st

from playground.access import Actor
from playground.classroom import LOCKABLE, ClassSettings, class_rows, class_settings_from_dict
from playground.data import list_datasets
from playground.errors import PlaygroundError
from playground.experiments import EXPERIMENTS, get_suite
from playground.lessons import LESSONS, get_lesson
from playground.optim import OPTIMIZERS, SCHEDULES
from playground.presets import PRESETS, list_presets
from playground.runners.fair import describe_position
from playground.runs import ACTIVE_STATUSES
from playground.settings import get_settings
from ui.identity import auth_configured, current_actor
from ui.jobs import get_class_settings, get_identities, get_runner, get_store, save_class_settings
from ui.text import md_escape
from ui.train_view import run_view

REFRESH_S = 2.0


def _teacher() -> Actor:
    actor = current_actor()
    assert actor is not None and actor.is_staff  # the page stops before any tab otherwise
    return actor


def _positions(rows: list[dict[str, Any]]) -> dict[int, str]:
    runner = get_runner()
    out = {}
    for r in rows:
        if r["status"] == "queued":
            with contextlib.suppress(PlaygroundError):
                if (where := runner.queue_position(r["run"])) is not None:
                    out[r["run"]] = describe_position(*where)
    return out


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    positions = _positions(rows)
    return pd.DataFrame([{
        "run": r["run"], "student": r["student"], "design": r["design"],
        "params": r["params"], "MACs": r["MACs"], "data set": r["dataset"],
        "status": r["status"].replace("_", " "), "step": f"{r['step'] or 0} / {r['steps']}",
        "accuracy": r["accuracy"], "device / node": r["where"],
        "queue": positions.get(r["run"], ""),
        "started": (time.strftime("%H:%M:%S", time.localtime(r["started"]))
                    if r["started"] else ""),
    } for r in rows])


def class_tab() -> None:
    """The live table of every run, a student filter, stop one or all, and any run's charts."""
    teacher = _teacher()
    store = get_store()
    students = sorted({r.owner for r in store.list_runs(limit=500)}, key=str.lower)
    who = st.multiselect("Students", students, key="t_students", placeholder="Everyone",
                         help="Show only these students' runs.")
    live_now = bool(store.list_runs(statuses=ACTIVE_STATUSES, limit=1))

    @st.fragment(run_every=REFRESH_S if live_now else None)
    def table() -> None:
        rows = [r for owner in (who or [None])
                for r in class_rows(store, owner=owner, by=teacher)]
        active = [r["run"] for r in rows if r["status"] in ACTIVE_STATUSES]
        head, stop = st.columns([4, 1], vertical_alignment="center")
        head.markdown(f"**{len(rows)} runs**, {len(active)} queued or running")
        if active and stop.button("Stop all", icon=":material/stop:", key="t_stop_all",
                                  help="Stop every queued or running run shown here."):
            runner = get_runner()
            for rid in active:
                with contextlib.suppress(PlaygroundError):
                    runner.cancel(rid, by=teacher)
            st.toast(f"Stopping {len(active)} runs...")
        if not rows:
            st.info("No runs yet.")
            return
        st.dataframe(_frame(rows), hide_index=True, width="stretch", key="t_table",
                     column_config={
                         "params": st.column_config.NumberColumn(format="localized"),
                         "MACs": st.column_config.NumberColumn(format="compact"),
                         "accuracy": st.column_config.NumberColumn(format="percent"),
                     })

    table()
    # the run picker needs only the runs, not the table's analysis and metrics
    runs = [r for owner in (who or [None]) for r in store.list_runs(owner=owner, limit=200)]
    if not runs:
        return
    labels = {r.id: f"#{r.id} {r.owner}: {r.spec.get('name') or r.title} ({r.status})"
              for r in sorted(runs, key=lambda r: (r.status not in ACTIVE_STATUSES, -r.id))}
    if st.session_state.get("t_run") not in labels:
        st.session_state.t_run = next(iter(labels))
    st.selectbox("Open a run", list(labels), format_func=labels.get, key="t_run",
                 help="Its live charts; as the teacher you can stop it there.")
    run_view(st.session_state.t_run, teacher)


def students_tab() -> None:
    """Claimed names; a new key for a student who lost theirs. With an OpenID login: who has
    logged in, and no keys."""
    login = auth_configured()
    if login:
        st.info("Students log in with the identity provider set in this server's "
                "secrets.toml ([auth]): each one's verified e-mail address is their name, and "
                "there are no keys to give out or reset.")
    teacher = _teacher()
    ids = get_identities()
    people = ids.list_identities()
    if not people:
        st.info("No student has logged in yet." if login
                else "No student has claimed a name yet.")
        return
    def when(t: float | None) -> str:
        return time.strftime("%d %b %H:%M", time.localtime(t)) if t else ""

    st.dataframe(pd.DataFrame([
        {"student": p.name, "first logged in": when(p.created_at)} if login else
        {"student": p.name, "claimed": when(p.created_at), "key reset": when(p.reset_at)}
        for p in people]), hide_index=True, width="stretch", key="t_people")
    if login:  # no keys to reset
        return
    names = [p.name for p in people]
    c1, c2 = st.columns([3, 1], vertical_alignment="bottom")
    name = c1.selectbox("Student who lost their key", names, key="t_reset_name")
    if c2.button("Give a new key", key="t_reset", icon=":material/key:",
                 help="The old key stops working at once."):
        try:
            key = ids.reset(name, by=teacher)
        except PlaygroundError as err:
            st.error(md_escape(err))
        else:
            st.session_state.t_new_link = (name, key)
    if (new := st.session_state.get("t_new_link")) and new[0] == name:
        st.caption("Give this address to the student (it opens the playground as them):")
        base = (st.context.url or "").split("?")[0].rsplit("/", 1)[0]
        st.code(f"{base}/build?{urlencode({'user': new[0], 'key': new[1]})}", language=None)


def lock_widget(field: str, current: Any, prefix: str = "t_lock_") -> Any:
    """One locked training setting's value widget (key ``prefix + field``), showing
    ``current`` (or a usual default); returns the value chosen."""
    label, key = LOCKABLE[field], f"{prefix}{field}"
    if field == "dataset":
        names = [d.name for d in list_datasets()]
        return st.selectbox(label, names, index=names.index(current) if current in names
                            else 0, key=key)
    if field in ("optimizer", "schedule"):
        names = (OPTIMIZERS if field == "optimizer" else SCHEDULES).names()
        return st.selectbox(label, names, index=names.index(current) if current in names
                            else 0, key=key)
    if field == "amp":
        return st.selectbox(label, ["off", "bf16", "fp16"], key=key,
                            index=["off", "bf16", "fp16"].index(current or "off"))
    if field == "augment":
        return st.toggle(label, value=bool(current), key=key)
    if field in ("steps", "batch_size", "seed", "accumulate"):
        default = {"steps": 300, "batch_size": 64, "seed": 0, "accumulate": 1}[field]
        return int(st.number_input(label, 0 if field == "seed" else 1, 2**31 - 1,
                                   int(current if current is not None else default), key=key))
    default = {"lr": 1e-3, "clip_norm": 1.0, "weight_decay": 0.0, "label_smoothing": 0.0}
    return float(st.number_input(label, 0.0, 100.0, float(current if current is not None
                                                         else default[field]),
                                 format="%g", key=key))


def settings_tab() -> None:
    """Class settings (queue limit, steps cap, offered sets and presets, locked fields) and
    the class message; saved for every student at once."""
    teacher = _teacher()
    rules = get_class_settings()
    server = get_settings()
    st.subheader("Message to the class")
    message = st.text_area("Message (shown at the top of every student's page)",
                           value=rules.message, max_chars=500, key="t_message",
                           placeholder="Everyone: open the Deep sigmoid MLP and press Train")
    links = {"": "No link",
             **{f"preset:{p.name}": f"Preset: {p.title}" for p in list_presets()},
             **{f"lesson:{lid}": f"Lesson: {get_lesson(lid).title}" for lid in LESSONS},
             **{f"experiment:{n}": f"Experiment: {get_suite(n).title}" for n in EXPERIMENTS}}
    link = st.selectbox("Link under the message", list(links), format_func=links.get,
                        index=list(links).index(rules.message_link)
                        if rules.message_link in links else 0, key="t_link")

    st.subheader("Limits and choices")
    c1, c2 = st.columns(2)
    queue = c1.number_input(f"Runs per student, queued or running (server: {server.max_queued})",
                            0, server.max_queued, rules.queue_limit or 0, key="t_queue",
                            help="0: the server's limit.")
    steps = c2.number_input(f"Most steps per run (server: {server.max_steps:,})", 0,
                            server.max_steps, rules.max_steps or 0, key="t_steps",
                            help="0: the server's limit.")
    all_sets = [d.name for d in list_datasets()]
    sets = st.multiselect("Data sets offered", all_sets, default=rules.datasets or [],
                          placeholder="All data sets", key="t_sets")
    all_presets = list(PRESETS.names())
    presets = st.multiselect("Presets offered on Train", all_presets,
                             default=rules.presets or [], placeholder="All presets",
                             key="t_presets")
    fields = st.multiselect("Lock these training settings", list(LOCKABLE),
                            default=list(rules.locked), format_func=LOCKABLE.get,
                            key="t_locked", help="Students see the value and cannot change it.")
    values = {}
    cols = st.columns(3)
    for i, field in enumerate(fields):
        with cols[i % 3]:
            values[field] = lock_widget(field, rules.locked.get(field))
    save, clear = st.columns([1, 4])
    if save.button("Save for the class", type="primary", key="t_save",
                   icon=":material/save:"):
        try:
            new = class_settings_from_dict({
                "queue_limit": queue or None, "max_steps": steps or None,
                "datasets": sets or None, "presets": presets or None, "locked": values,
                "message": message.strip(), "message_link": link,
            })
            save_class_settings(new, teacher)
            st.toast("Saved: every student's next page update uses it.")
        except PlaygroundError as err:
            st.error(md_escape(err))
    if clear.button("Clear everything", key="t_clear"):
        save_class_settings(ClassSettings(), teacher)
        for key in ("t_message", "t_link", "t_queue", "t_steps", "t_sets", "t_presets",
                    "t_locked"):
            st.session_state.pop(key, None)
        st.rerun()
