"""The assignment panel on Build and Train: the picker, the active assignment, and the live
budget gauge of the current design.

The gauge is :func:`playground.assignments.budget_report` (parameters and MACs are
:func:`playground.targets.analyse_spec`'s, cached per design, so a redraw on every edit costs
well under a millisecond; MACs as fvcore counts them: one multiply-add = one FLOP). Each
budget is one line of numbers ("626 of 1,000 parameters (63 %)", formatted as Build's top
numbers are) over a bar: green within the budget, red and full past it, with the line in
red too (``st.progress`` draws in the theme's colour only, so the bar is a small HTML element
built from a constant and numbers). Under them: the hint of the costliest part for each
exceeded budget, or for the fullest one ("stage 1 holds 64 % of the MACs: add a stride or a
pool earlier"), and any reason the design would be refused besides the budgets (an input or
an output count that does not fit).

The teacher's strings (title) are shown through :func:`ui.text.md_escape`; the instructions
as plain text.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import streamlit as st
from streamlit.errors import StreamlitAPIException

from playground.assignments import BudgetItem, BudgetReport, budget_report
from playground.errors import PlaygroundError
from playground.format import fmt_bytes, fmt_int, fmt_si
from playground.spec import NetworkSpec
from ui.assignment_state import (
    PARAM,
    active_assignment,
    as_assignment,
    assignment_picker,
    open_assignments,
    submissions_left,
    take_note,
)
from ui.text import md_escape

LEADERBOARD = "pages/leaderboard.py"
ROOT = Path(__file__).resolve().parents[1]
GREEN, RED = "#21c354", "#ff4b4b"  # Streamlit's own green and red
# the bar under a budget's line: numbers and constant colours only
BAR = ('<div style="height:0.45rem;border-radius:0.25rem;background:rgba(128,128,128,0.22);'
       'margin:-0.5rem 0 0.7rem 0"><div style="width:{width:.1f}%;height:100%;'
       'border-radius:0.25rem;background:{colour}"></div></div>')
OVER_PHRASE = " over the budget of "  # how budget_report words an exceeded budget


def amount(item: BudgetItem, value: int) -> str:
    """A budget's number as Build's top numbers show it: parameters exact, MACs with a
    decimal prefix, memory in binary units."""
    if item.key == "params":
        return fmt_int(value)
    if item.key == "macs":
        return fmt_si(value)
    return fmt_bytes(value)


def item_line(item: BudgetItem) -> str:
    """"626 of 1,000 parameters (63 %)" as markdown; in red, marked over budget, when over."""
    text = (f"{amount(item, item.used)} of {amount(item, item.limit)} {item.label} "
            f"({round(item.fraction * 100):,} %)")
    if item.over:
        return f":red[:material/error: **{text}: over budget**]"
    return f"**{text}**"


def bar_html(item: BudgetItem) -> str:
    return BAR.format(width=min(max(item.fraction, 0.0), 1.0) * 100,
                      colour=RED if item.over else GREEN)


def _when(deadline: float, now: float) -> str:
    """"due 3 June 2025, 17:00 (Europe/Berlin), in 2 days" in the browser's time zone."""
    try:
        zone = ZoneInfo(st.context.timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        zone = ZoneInfo("UTC")
    at = dt.datetime.fromtimestamp(deadline, zone)
    left = deadline - now
    if left < 0:
        rel = "passed"
    elif left < 3600:
        rel = f"in {max(1, round(left / 60))} min"
    elif left < 2 * 86400:
        rel = f"in {round(left / 3600)} h"
    else:
        rel = f"in {round(left / 86400)} days"
    return f"due {at.day} {at:%B %Y, %H:%M} ({zone.key}), {rel}"


def _header(public: dict[str, Any]) -> None:
    user = st.session_state.get("user", "")
    parts = [f"**{md_escape(public['title'])}**"]
    if public.get("deadline"):
        parts.append(md_escape(_when(float(public["deadline"]), time.time())))
    if user:
        try:
            left = submissions_left(public["slug"], user)
            parts.append(f"{left} of {public['submissions_per_student']} submissions left")
        except PlaygroundError:
            pass
    else:
        parts.append("enter your name to submit")
    parts.append(f"at most {fmt_int(public['max_steps'])} training steps")
    cols = st.columns([5, 1], vertical_alignment="center")
    cols[0].markdown(" · ".join(parts))
    if (ROOT / LEADERBOARD).exists():
        with contextlib.suppress(StreamlitAPIException):  # not in the router (yet)
            cols[1].page_link(LEADERBOARD, label="Leaderboard", icon=":material/leaderboard:",
                              query_params={PARAM: public["slug"]})
    if public.get("instructions"):
        with st.expander("Instructions"):
            st.text(public["instructions"])


def draw_report(report: BudgetReport) -> None:
    """The budget lines, bars and hints of one report."""
    for item in report.items:
        st.markdown(item_line(item))
        st.markdown(bar_html(item), unsafe_allow_html=True)
    over = [i for i in report.items if i.over]
    if over:
        for item in over:
            st.markdown(f":red[{md_escape(item.hint)}]")
    elif report.items:
        fullest = max(report.items, key=lambda i: i.fraction)
        st.caption(md_escape(f"Costliest: {fullest.hint}."))
    others = [p for p in report.problems if OVER_PHRASE not in p]
    for problem in others:
        st.warning(md_escape(f"Not accepted as it is: {problem}."), icon=":material/block:")
    if report.within:
        st.caption("Within every budget: a finished run of this design can be submitted.")


def budget_panel(spec: NetworkSpec | None, page: Literal["build", "train"] = "build") -> None:
    """The assignment picker and, for the active assignment, its header and the gauge of
    ``spec`` (``None``: the design cannot be analysed). Draws nothing when no assignment is
    open or active. On Train the memory estimate uses the page's batch size and optimiser."""
    public = active_assignment()
    note = take_note()
    if public is None and not open_assignments():
        if note:
            st.info(md_escape(note))
        return
    with st.container(border=True, key=f"asg_panel_{page}"):
        if note:
            st.info(md_escape(note))
        assignment_picker()
        if public is None:
            return
        _header(public)
        if spec is None:
            st.caption("Budgets are measured for a playground design that builds: fix this "
                       "one, or open a preset.")
            return
        settings = None
        if page == "train":
            state = st.session_state
            a = as_assignment(public)
            settings = {**a.training_locks(), "steps": min(int(state.tr_steps), a.max_steps),
                        "batch_size": state.tr_batch, "optimizer": state.tr_optimizer,
                        **a.locked}
        try:
            report = budget_report(as_assignment(public), spec, settings)
        except PlaygroundError as err:
            st.warning(md_escape(f"The budgets cannot be measured: {err}"))
            return
        draw_report(report)
