"""The Leaderboard page: one assignment's rules, its public and private rankings, and the
class's accuracy-against-MACs scatter.

- The assignment is picked in a box; ``?a=<slug or id>`` in the address picks it on arrival
  (a link from the Teacher page), and the page keeps the address on the one shown. Without
  one, the box opens on the student's active assignment (``ui/assignment_state.py``), else
  the newest open one.
- Public ranking (everyone, always): each student's best submission by validation accuracy.
  Private ranking (by test accuracy, with the change of place): for everyone once the teacher
  closes the assignment, and for the teacher at any time behind a toggle. The store decides
  what a viewer may see (:meth:`playground.assignments.AssignmentStore.leaderboard` gives a
  student no test accuracy while the assignment is open); this page only draws less, never
  more: without the private view it drops test accuracies even from the teacher's rows, so a
  projector shows none by accident.
- Names are hidden ("Student 1".."Student N", the store's numbering) behind the teacher's
  "Hide names" toggle, and by default in present mode (``?present=1``); the viewer's own row
  is marked either way.
- Every submission on the scatter (:mod:`ui.leaderboard_charts`); a clicked point offers its
  design on Build. While the assignment takes submissions, "Work on it" makes it the
  student's active assignment (``ui/assignment_state.py``) and opens Build.
- While the assignment is open the rankings and the scatter re-read the store every
  :data:`REFRESH_S` seconds (``st.fragment(run_every=...)``); a close seen by that refresh
  redraws the whole page.

Titles, names and design summaries are user text (:func:`ui.text.md_escape`); the
instructions are the teacher's markdown, drawn as markdown without raw HTML.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import streamlit as st

from playground.access import Actor
from playground.assignments import ASSIGNMENT_LOCKABLE, Assignment
from playground.errors import PlaygroundError
from playground.format import fmt_bytes, fmt_si
from playground.leaderboard import Leaderboard, LeaderboardRow, Submission
from playground.spec import spec_from_dict
from ui.assignment_state import submissions_left
from ui.classroom_view import is_present
from ui.identity import current_actor
from ui.jobs import get_assignments
from ui.leaderboard_charts import Metric, accuracy_macs_figure, selected_submission
from ui.text import md_escape

BUILD_PAGE = "pages/build.py"
REFRESH_S = 5.0
PICK = "lb_pick"  # the assignment box (its slug)
_FROM_URL = "_lb_from_url"  # the last ?a= this session acted on
HIDE = "lb_hide"
PRIVATE = "lb_private"
METRIC = "lb_metric"
CHART = "lb_scatter"
HIGHLIGHT = "background-color: rgba(255, 189, 69, 0.28)"  # the viewer's own row
_COLUMNS = {
    "rank": st.column_config.NumberColumn("rank", width="small"),
    "change": st.column_config.TextColumn("change", width="small",
                                          help="Places gained (▲) or lost (▼) against the "
                                               "public ranking"),
    "params": st.column_config.NumberColumn("params", format="localized"),
    "MACs": st.column_config.NumberColumn("MACs", format="compact"),
    "val acc": st.column_config.NumberColumn("val acc", format="percent"),
    "test acc": st.column_config.NumberColumn("test acc", format="percent"),
    "public rank": st.column_config.NumberColumn("public rank", width="small"),
    "submissions": st.column_config.NumberColumn("submissions", width="small"),
}


# -- time and rules, shared with the Teacher page -------------------------------------------
def local_zone() -> dt.tzinfo | None:
    """The browser's time zone (``st.context.timezone``), else ``None``: the server's."""
    name = st.context.timezone
    try:
        return ZoneInfo(name) if name else None
    except (ZoneInfoNotFoundError, ValueError):
        return None


def fmt_time(ts: float | None, short: bool = False) -> str:
    """A time (Unix seconds) in the viewer's zone, e.g. ``12 Jun 2025 18:00``; ``short``
    leaves out this year (``12 Jun 18:00``); ``""`` for none."""
    if ts is None:
        return ""
    when = dt.datetime.fromtimestamp(ts, local_zone())
    this_year = when.year == dt.datetime.now(local_zone()).year
    return when.strftime("%d %b %H:%M" if short and this_year else "%d %b %Y %H:%M")


def count_text(n: int) -> str:
    """``n`` as :func:`playground.cli_assignments.parse_count` reads it back exactly:
    ``100k``, ``20M``, or ``123,456``."""
    for unit, scale in (("G", 10**9), ("M", 10**6), ("k", 10**3)):
        if n % scale == 0:
            return f"{n // scale}{unit}"
    return f"{n:,}"


def _shape(a: Assignment) -> str:
    return "x".join(map(str, a.input_shape or ()))


def rules_line(a: Assignment) -> str:
    """The assignment's data, locked settings and submission cap as one markdown line
    (escaped)."""
    info = a.info
    parts = [f"Data: **{md_escape(info.title)}**, input {_shape(a)}, {a.num_classes} classes, "
             f"{a.n_train:,} training and {a.n_val:,} validation examples (data seed "
             f"{a.data_seed})"]
    if a.locked:
        fixed = ", ".join(f"{ASSIGNMENT_LOCKABLE[k].lower()} {v}" for k, v in a.locked.items())
        parts.append("Fixed: " + md_escape(fixed))
    parts.append(f"{a.submissions_per_student} submissions per student")
    return " · ".join(parts)


def _state_badge(a: Assignment) -> None:
    if a.state == "closed":
        st.badge("Closed: final ranking", icon=":material/lock:", color="gray")
    elif a.accepts_submissions():
        st.badge("Open for submissions", icon=":material/lock_open:", color="green")
    else:
        st.badge("Deadline passed", icon=":material/timer_off:", color="orange")


def _header(a: Assignment, viewer: Actor) -> None:
    st.header(md_escape(a.title), anchor=False)
    _state_badge(a)
    cols = st.columns(5 if a.max_train_memory_bytes else 4)
    cols[0].metric("Max parameters", fmt_si(a.max_params))
    cols[1].metric("Max MACs", fmt_si(a.max_macs))
    cols[2].metric("Max steps", f"{a.max_steps:,}")
    if a.max_train_memory_bytes:
        cols[3].metric("Max training memory", fmt_bytes(a.max_train_memory_bytes))
    cols[-1].metric("Deadline", fmt_time(a.deadline, short=True) or "none",
                    help=fmt_time(a.deadline) or None)
    st.caption(rules_line(a))
    if a.instructions.strip():
        with st.container(border=True):
            st.markdown(a.instructions)  # the teacher's markdown; no raw HTML
    if viewer.is_staff or not a.accepts_submissions():
        return
    c1, c2 = st.columns([4, 1.5], vertical_alignment="center")
    if viewer.name:
        try:
            left = submissions_left(a.slug, viewer.name)
        except PlaygroundError:
            left = None
        if left is not None:
            c1.caption(f"You have {left} of {a.submissions_per_student} submissions left: "
                       "submit a finished run from the Train page's Results tab.")
    if c2.button("Work on it", icon=":material/construction:", key="lb_work",
                 help="Make this your active assignment: Build and Train show its budgets "
                 "and use its data."):
        st.session_state.assignment = a.slug
        st.switch_page(BUILD_PAGE)


# -- the assignment box and the address -----------------------------------------------------
def _pick(items: list[Assignment]) -> Assignment:
    """The assignment to show: ``?a=`` on arrival (or when the address changes), else the
    box's; the address then names it."""
    by_ref = {a.slug: a for a in items} | {str(a.id): a for a in items}
    wanted = st.query_params.get("a")
    if wanted and wanted != st.session_state.get(_FROM_URL):
        st.session_state[_FROM_URL] = wanted
        found = by_ref.get(wanted.strip().lower())
        if found is not None:
            st.session_state[PICK] = found.slug
        else:
            st.warning(f"There is no assignment {md_escape(wanted)}: showing another one.")
    slugs = [a.slug for a in items]
    if st.session_state.get(PICK) not in slugs:  # the student's active one, else an open one
        active = st.session_state.get("assignment")
        st.session_state[PICK] = active if active in slugs else next(
            (a.slug for a in items if a.state == "open"), slugs[0])
    labels = {a.slug: f"{a.title} ({a.state})" for a in items}
    st.selectbox("Assignment", slugs, format_func=labels.get, key=PICK)
    slug = st.session_state[PICK]
    st.query_params["a"] = slug
    st.session_state[_FROM_URL] = slug
    return by_ref[slug]


# -- rankings ---------------------------------------------------------------------------------
def rank_change_text(change: int | None) -> str:
    """``+2`` -> ``▲2``, ``-1`` -> ``▼1``, ``0`` -> ``=``; ``""`` when unknown."""
    if change is None:
        return ""
    return "=" if change == 0 else (f"▲{change}" if change > 0 else f"▼{-change}")


def board_frame(rows: list[LeaderboardRow], private: bool) -> pd.DataFrame:
    """The table of a ranking; ``private``: with test accuracy, change and public rank."""
    records: list[dict[str, Any]] = []
    for r in rows:
        rec: dict[str, Any] = {"rank": r.rank}
        if private:
            rec["change"] = rank_change_text(r.rank_change)
        rec |= {"student": r.student + (" (you)" if r.is_you else ""), "design": r.design,
                "params": r.params, "MACs": r.macs, "val acc": r.val_acc}
        if private:
            rec |= {"test acc": r.test_acc, "public rank": r.public_rank}
        rec["submissions"] = r.submissions
        records.append(rec)
    return pd.DataFrame.from_records(records)


def _table(board: Leaderboard, key: str) -> None:
    private = board.view == "private"
    frame = board_frame(board.rows, private)
    mine = [r.is_you for r in board.rows]
    styled = frame.style.apply(
        lambda row: [HIGHLIGHT if mine[row.name] else ""] * len(row), axis=1)
    st.dataframe(styled, hide_index=True, width="stretch", key=key,
                 column_config={k: v for k, v in _COLUMNS.items() if k in frame.columns})


def _public_only(board: Leaderboard) -> Leaderboard:
    """The board without any test accuracy (the teacher's, when the private view is off)."""
    rows = [replace(r, test_acc=None, private_rank=None, rank_change=None) for r in board.rows]
    return replace(board, rows=rows, private_visible=False)


def _rankings(a: Assignment, viewer: Actor, hide: bool, private: bool) -> list[Submission]:
    """Draw the rankings; returns the submissions the scatter may show (test accuracies only
    when ``private``)."""
    store = get_assignments()
    public = store.leaderboard(a.id or 0, by=viewer, anonymise=hide)
    if not private:
        public = _public_only(public)
    if not public.rows:
        st.info("No submissions yet: submit a finished run of an in-budget design from the "
                "Train page.")
        return []
    students = f"{len(public.rows)} student{'s' if len(public.rows) != 1 else ''}"
    if private:
        board = store.leaderboard(a.id or 0, by=viewer, private=True, anonymise=hide)
        st.subheader("Private ranking: test accuracy", anchor=False)
        st.caption(f"{students}, {board.n_submissions} submissions. Scored on the hidden test "
                   "split nobody saw, with each student's best public submission; ▲/▼: places "
                   "gained or lost against the public ranking. Ties go to fewer MACs.")
        _table(board, "lb_private_table")
    st.subheader("Public ranking: validation accuracy", anchor=False)
    st.caption(f"{students}, {public.n_submissions} submissions. Each student's best "
               "submission by validation accuracy; ties go to fewer MACs, then the earlier "
               "submission.")
    _table(public, "lb_public_table")
    subs = store.submissions(a.id or 0, by=viewer, anonymise=hide)
    if not private:
        subs = [replace(s, test_acc=None) for s in subs]
    return subs


# -- the scatter ------------------------------------------------------------------------------
def _open_design(sub: Submission) -> None:
    try:
        spec = spec_from_dict(sub.spec)
    except PlaygroundError as err:
        st.error(md_escape(err))
        return
    from ui.state import set_spec

    set_spec(spec, source=f"submission:{sub.id}")
    st.switch_page(BUILD_PAGE)


def _scatter(a: Assignment, viewer: Actor, subs: list[Submission], private: bool) -> None:
    metric: Metric = "val"
    if private:
        choice = st.segmented_control(
            "Accuracy", ["Validation (public)", "Test (private)"], key=METRIC,
            default="Test (private)")
        metric = "test" if choice == "Test (private)" else "val"
    mine: set[int] = set()
    if viewer.name and not viewer.is_staff:
        mine = {s.id for s in get_assignments().submissions(a.id or 0, by=viewer,
                                                             student=viewer.name)}
    fig = accuracy_macs_figure(subs, metric, mine)
    event = st.plotly_chart(fig, width="stretch", on_select="rerun", selection_mode="points",
                            key=CHART, config={"displaylogo": False})
    st.caption("Every submission; the orange step line is the Pareto front: the best accuracy "
               "the class reached within each MAC budget." + (" Yours are red." if mine else "")
               + " Click a point to open its design.")
    sid = selected_submission(event)
    sub = next((s for s in subs if s.id == sid), None)
    if sub is None:
        return
    c1, c2 = st.columns([4, 1.5], vertical_alignment="center")
    c1.markdown(f"**{md_escape(sub.student)}**: {md_escape(sub.design)} · {sub.params:,} "
                f"parameters · {fmt_si(sub.macs)} MACs · validation {sub.val_acc:.2%}")
    if c2.button("Open this design on Build", icon=":material/construction:",
                 key=f"lb_open_{sub.id}"):
        _open_design(sub)


# -- the page ---------------------------------------------------------------------------------
def leaderboard_page() -> None:
    """The whole Leaderboard page below its title."""
    viewer = current_actor() or Actor("")
    items = get_assignments().list()
    if not items:
        st.info("No assignments yet: the teacher sets them on the Teacher page.")
        return
    a = _pick(items)
    _header(a, viewer)
    hide, private = is_present(), a.state == "closed"
    if viewer.is_staff:
        c1, c2 = st.columns(2)
        hide = c1.toggle("Hide names", value=is_present(), key=HIDE,
                         help="Show Student 1, 2, ... instead of names (for the projector).")
        if a.state == "open":
            private = c2.toggle("Show the private ranking", value=False, key=PRIVATE,
                                help="Test accuracies, which students see only after you "
                                "close the assignment. Keep it off on the projector.")
    state = a.state

    @st.fragment(run_every=REFRESH_S if state == "open" else None)
    def live() -> None:
        try:
            now = get_assignments().get(a.id or 0)
        except PlaygroundError as err:  # deleted meanwhile
            st.error(md_escape(err))
            return
        if now.state != state:  # closed or reopened meanwhile: the whole page changes
            st.rerun(scope="app")
        subs = _rankings(now, viewer, hide, private)
        if subs:
            _scatter(now, viewer, subs, private)

    live()
