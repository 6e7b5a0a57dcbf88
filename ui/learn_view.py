"""One lesson on the Learn page: text, formula, controls, live figure, links, sources.

The figure's data is computed by ``playground.lessons.lesson_figure`` and cached per lesson
and control values (``st.cache_data``); ``ui.learn_charts`` draws it. The buttons open the
lesson's preset on Build (``ui.state.set_spec``) or its experiment on Compare.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from playground.build import conv_out
from playground.experiments import get_suite
from playground.lessons import Lesson, get_lesson, lesson_figure, output_size_table
from playground.presets import PRESETS
from ui.learn_charts import draw
from ui.state import set_spec

BUILD_PAGE = "pages/build.py"
COMPARE_PAGE = "pages/compare.py"


@st.cache_data(max_entries=128, show_spinner="Measuring...")
def figure_data(lesson_id: str, params: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    return lesson_figure(lesson_id, dict(params))


def _controls(lesson: Lesson) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if not lesson.controls:
        return values
    cols = st.columns(max(len(lesson.controls), 2))
    for col, c in zip(cols, lesson.controls, strict=False):
        key = f"learn_{lesson.id}_{c.name}"
        if c.kind == "slider":
            values[c.name] = col.select_slider(c.label, list(c.options), value=c.default,
                                               key=key, help=c.help or None)
        else:
            values[c.name] = col.selectbox(
                c.label, list(c.options), index=list(c.options).index(c.default), key=key,
                format_func=lambda v: PRESETS.get(v).title if isinstance(v, str) and v in
                PRESETS else str(v), help=c.help or None)
    return values


def _extras(lesson: Lesson, data: dict[str, Any]) -> None:
    if lesson.id == "costs":
        for fact in data["facts"]:
            st.markdown(f"- {fact}")
    elif lesson.id == "clipping":
        for run in data["runs"]:
            st.markdown(f"- **{run['label']}**: {run['message']}")
    elif lesson.id == "shapes":
        _calculator()


def _calculator() -> None:
    st.markdown("**Try the formula**")
    c = st.columns(5)
    i = c[0].number_input("input i", 1, 1024, 32, key="learn_calc_i")
    k = c[1].number_input("kernel k", 1, 15, 3, key="learn_calc_k")
    s = c[2].number_input("stride s", 1, 8, 1, key="learn_calc_s")
    p = c[3].number_input("padding p", 0, 10, 1, key="learn_calc_p")
    d = c[4].number_input("dilation d", 1, 8, 1, key="learn_calc_d")
    o = conv_out(int(i), int(k), int(s), int(p), int(d))
    if o >= 1:
        st.success(f"o = ⌊({i} + 2·{p} - {d}·({k} - 1) - 1) / {s}⌋ + 1 = **{o}**")
    else:
        st.error(f"The window ({d * (k - 1) + 1} px with dilation) is larger than the padded "
                 f"input ({i + 2 * p} px): there is no output. Add padding or use a smaller "
                 "kernel.")
    table = pd.DataFrame(output_size_table(int(i))["rows"])
    st.dataframe(table, hide_index=True, width="stretch", key="learn_calc_table")


def _links(lesson: Lesson) -> None:
    if lesson.preset and st.button(
            f"Open {PRESETS.get(lesson.preset).title} on Build", icon=":material/construction:",
            key=f"learn_open_{lesson.id}"):
        spec = PRESETS.get(lesson.preset).spec()
        set_spec(spec, source=f"preset:{lesson.preset}")
        st.switch_page(BUILD_PAGE)
    if lesson.experiment and st.button(
            f"Run the experiment: {get_suite(lesson.experiment).title}",
            icon=":material/science:", key=f"learn_exp_{lesson.id}"):
        st.session_state.exp_suite = lesson.experiment
        st.session_state.cmp_goto = "Experiments"
        st.switch_page(COMPARE_PAGE)


def lesson_view(lesson_id: str) -> None:
    lesson = get_lesson(lesson_id)
    st.header(lesson.title)
    st.markdown(lesson.body)
    for line in lesson.formulas:
        st.latex(line)
    params = _controls(lesson)
    data = figure_data(lesson.id, tuple(sorted(params.items())))
    figures = draw(lesson.id, data)
    cols = st.columns(len(figures)) if len(figures) > 1 else [st.container()]
    for n, (col, fig) in enumerate(zip(cols, figures, strict=True)):
        col.plotly_chart(fig, width="stretch", key=f"learn_fig_{lesson.id}_{n}")
    st.caption(lesson.caption + " Measured just now by the playground's own code.")
    _extras(lesson, data)
    _links(lesson)
    sources = "; ".join(lesson.sources)
    st.caption("Sources: " + sources + ("" if sources.endswith(("?", ".")) else "."))
