"""The Leaderboard page's figure: every submission's accuracy against its MACs, with the
class's Pareto front.

Conventions
-----------
- x: MACs per example as fvcore counts them (one multiply-add = one FLOP), on a log axis (the
  submissions of a class span decades); y: accuracy in percent, the validation accuracy (the
  public score) unless the test accuracy (the private score) may be shown and is asked for.
- One marker per submission, in one trace whose ``customdata`` holds ``[submission id]``, so a
  click (``st.plotly_chart(on_select=...)``) names the submission: :func:`selected_submission`.
  The viewer's own submissions are drawn larger and in another colour.
- The Pareto front (:func:`playground.leaderboard.pareto_front`: no other submission is as
  accurate or more with as few MACs or fewer) as a step line (``line_shape="hv"``): reading
  it at any MAC budget gives the best accuracy the class reached within that budget.
- Student names and design summaries are user text: they reach Plotly through
  :func:`ui.text.plot_text` only.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Literal

import plotly.graph_objects as go

from playground.format import fmt_si
from playground.leaderboard import Submission, pareto_front
from ui.charts import PALETTE, _fig, fit_log_axes
from ui.text import plot_text

Metric = Literal["val", "test"]
FRONT_NAME = "Pareto front"
POINTS_NAME = "submissions"
_Y_TITLE = {"val": "validation accuracy (%)", "test": "test accuracy (%)"}


def _accuracy(s: Submission, metric: Metric) -> float | None:
    return s.val_acc if metric == "val" else s.test_acc


def _hover(s: Submission, metric: Metric) -> str:
    lines = [f"<b>{plot_text(s.student)}</b>", plot_text(s.design),
             f"{s.params:,} parameters", f"{fmt_si(s.macs)} MACs ({s.macs:,})",
             f"validation accuracy {100 * s.val_acc:.2f}&#37;"]
    if metric == "test" and s.test_acc is not None:
        lines.append(f"test accuracy {100 * s.test_acc:.2f}&#37;")
    lines.append(f"submission {s.id}, run #{s.run_id}")
    return "<br>".join(lines)


def accuracy_macs_figure(submissions: Sequence[Submission], metric: Metric = "val",
                         mine: Collection[int] = ()) -> go.Figure:
    """Accuracy against MACs of ``submissions`` (those without the asked accuracy are left
    out), the Pareto front as a step line; ``mine``: the viewer's own submission ids."""
    subs = [s for s in submissions if _accuracy(s, metric) is not None]
    fig = _fig("Accuracy against compute: every submission", "MACs per example (fvcore, log)",
               _Y_TITLE[metric], log_x=True)
    accs = [100 * float(_accuracy(s, metric) or 0.0) for s in subs]
    own = set(mine)
    fig.add_trace(go.Scatter(
        x=[s.macs for s in subs], y=accs, mode="markers", name=POINTS_NAME,
        customdata=[[s.id] for s in subs], text=[_hover(s, metric) for s in subs],
        hovertemplate="%{text}<extra></extra>",
        marker={"size": [14 if s.id in own else 10 for s in subs],
                "color": [PALETTE[1] if s.id in own else PALETTE[0] for s in subs],
                "line": {"width": 1, "color": "white"}, "opacity": 0.9}))
    front = pareto_front([(float(s.macs), float(_accuracy(s, metric) or 0.0)) for s in subs])
    if front:
        fig.add_trace(go.Scatter(
            x=[subs[i].macs for i in front], y=[accs[i] for i in front], mode="lines",
            name=FRONT_NAME, line={"shape": "hv", "color": PALETTE[3], "width": 2},
            hoverinfo="skip"))
    fig.update_layout(hovermode="closest", clickmode="event+select", dragmode=False,
                      yaxis_range=[max(0.0, min(accs, default=0.0) - 5), 101])
    return fit_log_axes(fig)


def selected_submission(event: object) -> int | None:
    """The submission id of a ``st.plotly_chart`` selection event on
    :func:`accuracy_macs_figure` (None: no submission point selected)."""
    try:
        points = event["selection"]["points"]  # type: ignore[index]
    except (KeyError, TypeError):
        return None
    for point in points or []:
        data = point.get("customdata") if isinstance(point, dict) else None
        if isinstance(data, list) and data:
            data = data[0]
        if isinstance(data, int | float) and not isinstance(data, bool):
            return int(data)
    return None
