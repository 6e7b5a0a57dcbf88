""""Submit to <assignment>" on the Results tab of an ended run.

The button is offered for the active assignment (``ui/assignment_state.py``) and disabled,
with every reason in one line, when :func:`playground.assignments.run_problems` finds the run
cannot be submitted (status, data, steps, locked settings, budgets, deadline), when it kept no
best weights, when the run's owner has no submissions left, or when it was submitted already.
The page's checks only explain: :meth:`AssignmentStore.submit` re-reads everything from the
store and refuses on its own, and its one-line refusal is shown as text.

After a submission the page shows the validation accuracy (the public score) only; the test
accuracy appears on the Leaderboard once the teacher closes the assignment.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.access import Actor
from playground.assignments import run_problems
from playground.errors import PlaygroundError
from playground.runs import Run
from ui.assignment_state import (
    active_assignment,
    as_assignment,
    forget_cached,
    get_assignment_store,
    submissions_left,
)
from ui.text import md_escape


def _earlier(slug: str, run: Run, actor: Actor) -> Any:
    """This run's submission to ``slug``, if it has one (read with the viewer's rights)."""
    try:
        subs = get_assignment_store().submissions(slug, by=actor, student=run.owner)
    except PlaygroundError:
        return None
    return next((s for s in subs if s.run_id == run.id), None)


def submit_section(run: Run, actor: Actor, has_best: bool) -> None:
    """The Submit button for ``run`` (ended) and the active assignment, with why it is off;
    nothing when no assignment is active. ``has_best``: the run stored its best weights."""
    public = active_assignment()
    if public is None:
        return
    slug, title = public["slug"], public["title"]
    earlier = _earlier(slug, run, actor)
    if earlier is not None:
        st.success(md_escape(f"Submitted to {title}: validation accuracy "
                             f"{earlier.val_acc:.1%}. The test accuracy is revealed when the "
                             "teacher closes the assignment."), icon=":material/task_alt:")
        return
    problems = run_problems(as_assignment(public), run)
    if not has_best:
        problems.append("this run kept no best weights (they are stored when it evaluates)")
    try:
        if submissions_left(slug, run.owner) <= 0:
            problems.append(f"{run.owner} has used all {public['submissions_per_student']} "
                            "submissions")
    except PlaygroundError as err:
        problems.append(str(err))
    clicked = st.button(f"Submit to {md_escape(title)}", type="primary",
                        icon=":material/upload:", disabled=bool(problems),
                        key=f"asg_submit_{run.id}",
                        help="Scores this run's best weights on the validation split (shown "
                             "now) and on a hidden test split (shown when the assignment "
                             "closes).")
    if problems:
        st.caption(md_escape("Cannot be submitted: " + "; ".join(problems) + "."))
        return
    if not clicked:
        return
    try:
        with st.spinner("Scoring the best weights..."):
            sub = get_assignment_store().submit(slug, run.id, by=actor)
    except PlaygroundError as err:
        st.error(md_escape(err))
        return
    finally:
        forget_cached()
    st.success(md_escape(f"Submitted to {title}: validation accuracy {sub.val_acc:.1%}. The "
                         "test accuracy is revealed when the teacher closes the assignment."),
               icon=":material/task_alt:")
