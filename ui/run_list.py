"""The Train page's run list: whose runs, which statuses, which group, then one run.

Runs are grouped by ``playground.run_groups``: single runs in one group, every experiment
launch (a suite or a custom grid from Compare) in its own, so a 13-run suite is one entry of
the "Group" box rather than 13 entries of the run box. Filters: status classes and the
group ("All runs" lists every group's runs together). A student sees only their own runs; the
teacher also sees everyone's (*Mine* / *Everyone's*). The store checks it again for every run
read (:mod:`playground.access`).

The run to show is ``st.session_state.tr_run``. Whatever sets it (a ``?run=`` link, Start, a
test) wins over the filters: they widen to show it. Changing a filter clears it, and the
newest active run (else the newest) that the filters let through is shown instead. Every
widget keeps its value for the session (``persist_state="session"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import streamlit as st

from playground.access import AccessDenied, Actor
from playground.run_groups import (
    STATUS_FILTER_TITLES,
    STATUS_FILTERS,
    RunGroup,
    group_runs,
    same_owner,
    statuses_for,
)
from playground.runs import ACTIVE_STATUSES, Run
from ui.jobs import get_store
from ui.text import md_escape

ALL = "__all__"  # the group option "All runs"
WHOSE = {"mine": "Mine", "everyone": "Everyone's"}
LIST_LIMIT = 200  # newest runs read for the list
DEFAULTS = {"tr_whose": "mine", "tr_status": [], "tr_group": None, "tr_run": None}


def _on_filter() -> None:
    """A filter changed: forget the run shown, so the first one the filters pass is shown."""
    st.session_state.tr_run = None


def _default_run(runs: Sequence[Run]) -> Run | None:
    active = [r for r in runs if r.status in ACTIVE_STATUSES]
    return active[0] if active else (runs[0] if runs else None)


def _run_label(run: Run, name: str, user: str) -> str:
    # an active run's label carries no status: the closed box keeps showing the label it was
    # drawn with, and the run view shows the live status anyway
    label = f"#{run.id} {name}"
    if run.status not in ACTIVE_STATUSES:
        label += f" ({run.status.replace('_', ' ')})"
    return label + ("" if user and same_owner(run.owner, user) else f" · {run.owner}")


def _group_label(group: RunGroup) -> str:
    return ("Experiment: " if group.is_experiment else "") + group.describe()


def _wanted(actor: Actor | None) -> Run | None:
    """The run asked for (``tr_run``) if it exists and ``actor`` may read it."""
    state = st.session_state
    if state.tr_run is None:
        return None
    try:
        if actor is None:
            raise AccessDenied("enter your name to open runs")
        return get_store().find_run(state.tr_run, by=actor)
    except AccessDenied as err:
        st.warning(md_escape(f"Run #{state.tr_run} cannot be opened here: {err}."))
        return None


def pick_run(actor: Actor | None) -> Run | None:
    """Draw the filters and the run boxes; return the run to show (``None``: none to show)."""
    state = st.session_state
    for key, value in DEFAULTS.items():
        if key not in state:
            state[key] = list(value) if isinstance(value, list) else value
    store = get_store()
    user = actor.name if actor is not None else ""
    wanted = _wanted(actor)
    if wanted is None:
        state.tr_run = None
    if actor is None or not (user or actor.is_staff):
        st.info("Your runs appear here once you have entered a name and started one.")
        return None
    if not actor.is_staff:
        state.tr_whose = "mine"
    everyone = state.tr_whose == "everyone" or not user
    runs = store.list_runs(owner=None if everyone else user, limit=LIST_LIMIT)
    if wanted is not None and wanted.id not in {r.id for r in runs}:  # someone else's, or old
        runs = sorted([*runs, wanted], key=lambda r: r.id, reverse=True)
    statuses = statuses_for(state.tr_status)
    groups = group_runs(store, runs)
    by_key = {g.key: g for g in groups}

    def passes(run: Run) -> bool:  # the run asked for is listed whatever the filters say
        return statuses is None or run.status in statuses or run.id == state.tr_run

    # the group: the wanted run's (unless "All runs" holds it anyway), else the one chosen,
    # else the group of the run that would be shown first
    if wanted is not None and state.tr_group != ALL:
        state.tr_group = next(g.key for g in groups if wanted.id in g.labels)
    elif state.tr_group != ALL and state.tr_group not in by_key:
        first = _default_run([r for r in runs if passes(r)])
        state.tr_group = next((g.key for g in groups if first is not None
                               and first.id in g.labels), ALL)
    if state.tr_group == ALL:
        shown, names = [r for r in runs if passes(r)], {r.id: r.title for r in runs}
    else:
        chosen = by_key[state.tr_group]
        shown, names = [r for r in chosen.runs if passes(r)], dict(chosen.labels)
    if state.tr_run not in {r.id for r in shown}:
        first = _default_run(shown)
        state.tr_run = first.id if first is not None else None

    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    if actor.is_staff:
        c1.segmented_control("Whose runs", list(WHOSE), format_func=WHOSE.get, key="tr_whose",
                             required=True, on_change=_on_filter, disabled=not user,
                             persist_state="session",
                             help="As the teacher you see and can stop every student's runs.")
    if not runs:
        st.info("No runs yet: choose a network and a data set, then press Start training.")
        return None
    c2.pills("Status", list(STATUS_FILTERS), format_func=STATUS_FILTER_TITLES.get,
             selection_mode="multi", key="tr_status", on_change=_on_filter,
             persist_state="session",
             help="None selected: every status. Running: queued or running; stopped: stopped "
             "or interrupted; failed: diverged or failed.")
    group = by_key.get(state.tr_group)
    own_launch = group is not None and group.is_experiment and bool(user) and all(
        same_owner(r.owner, user) for r in group.runs)
    g1, g2 = st.columns([3, 1], vertical_alignment="bottom") if own_launch else (st, None)
    group_labels = {ALL: f"All runs · {len(runs)}", **{g.key: _group_label(g) for g in groups}}
    g1.selectbox("Group", list(group_labels), format_func=group_labels.get, key="tr_group",
                 on_change=_on_filter, persist_state="session",
                 help="Single runs, or the runs of one experiment launched on Compare.")
    if group is not None and g2 is not None and g2.button(
            "Results", icon=":material/compare:", key="tr_to_compare",
            help="This experiment's results table and charts on Compare."):
        state.exp_batch = group.key  # Compare > Experiments shows this launch
        state.cmp_goto = "Experiments"
        st.switch_page("pages/compare.py")
    if not shown:
        st.selectbox("Run", ["(no run matches)"], disabled=True, key="tr_run_none")
        st.info("No run matches these filters.")
        return None
    by_id = {r.id: r for r in shown}
    st.selectbox("Run", list(by_id), key="tr_run", persist_state="session",
                 format_func=lambda i: _run_label(by_id[i], names.get(i, by_id[i].title), user))
    return by_id[state.tr_run]
