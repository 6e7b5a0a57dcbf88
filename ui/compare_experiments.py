"""The 'Experiments' tab of the Compare page: one-click suites, a custom grid, their results.

Launching goes through the app's runner (``ui.jobs.get_runner().start_run``) as ordinary runs
under the sidebar's name; ``playground.experiments.launch`` starts as many as the owner's
queue allows and ``top_up`` starts the rest as places free up (every rerun of the results
view, about every 2 s while something is queued, running or waiting). Results are read back
from the store only, so a reload or another tab shows the same.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pandas as pd
import streamlit as st

from playground.access import Actor
from playground.compare import gradient_flow
from playground.data import get_dataset_info, list_datasets
from playground.designs import list_designs, load_design
from playground.errors import PlaygroundError
from playground.experiments import (
    EXPERIMENTS,
    RESULT_COLUMNS,
    VARY_FIELDS,
    Batch,
    Variant,
    custom_grid,
    get_suite,
    launch,
    list_batches,
    parse_values,
    results_table,
    scale_steps,
    top_up,
)
from playground.optim import OPTIMIZERS
from playground.presets import PRESETS, list_presets
from playground.runs import ACTIVE_STATUSES, RunStore
from playground.spec import NetworkSpec
from playground.targets import analyse_spec, fit_to_dataset
from playground.train import settings_from_dict
from ui.charts import PALETTE
from ui.compare_state import keep
from ui.compare_view import legend
from ui.jobs import get_runner, get_store
from ui.run_charts import gradient_flow_chart, scalar_chart
from ui.text import md_escape

CUSTOM = "custom"
# 12 for the largest grid. The four extra lines have at least 3:1 contrast (WCAG 1.4.11) on the
# dark theme's background (#0e1117); "#393b79" (Vega's dark indigo) had 1.9:1 and all but vanished.
COLORS = [*PALETTE, "#bcbd22", "#7f7f7f", "#6b6ecf", "#637939"]
SERIES = ("loss", "acc", "val_loss", "val_acc", "grad_norm", "grad_norm_clipped",
          "grad_norm_layer")
RESULT_TITLES = {
    "run": "run", "variant": "variant", "status": "status", "final_val_acc": "final val. acc.",
    "best_val_acc": "best val. acc.", "final_loss": "final loss",
    "grad_first_start": "1st layer grad (start)", "grad_last_start": "last layer grad (start)",
    "grad_first_end": "1st layer grad (end)", "grad_last_end": "last layer grad (end)",
    "act_std_last_start": "last act. std (start)", "dead_end": "dead ReLU (end)",
    "saturated_end": "saturated (end)", "diverged": "diverged", "steps_done": "steps",
    "wall_s": "wall time (s)",
}


# -- choosing and launching ----------------------------------------------------------------------
def _capacity(user: str) -> int:
    runner = get_runner()
    return max(0, int(runner.max_queued) - get_store().count_active(user))


def _variants_table(variants: list[Variant]) -> pd.DataFrame:
    rows = []
    for v in variants:
        s = v.settings
        params = None
        with contextlib.suppress(PlaygroundError):
            params = analyse_spec(v.spec).num_params
        rows.append({"run": v.title, "what": v.note, "parameters": params,
                     "optimiser": s.optimizer, "lr": s.lr, "batch": s.batch_size,
                     "steps": s.total_steps(s.n_train or get_dataset_info(s.dataset).n_train),
                     "clip": s.clip_norm, "schedule": s.schedule})
    return pd.DataFrame(rows)


def _launch(user: str, suite: str, title: str, variants: list[Variant]) -> None:
    try:
        batch = launch(get_runner().start_run, get_store(), user, suite, title, variants,
                       _capacity(user))
    except PlaygroundError as err:
        st.error(f"Could not start the experiment: {md_escape(err)}")
        return
    st.session_state.exp_batch = batch.batch
    st.session_state.pop("_exp_batch", None)
    waiting = len(batch.pending)
    st.toast(f"Queued {len(variants) - waiting} of {len(variants)} runs"
             + (f"; the other {waiting} start as places free up." if waiting else "."))


def _suite_panel(user: str) -> None:
    names = [*EXPERIMENTS, CUSTOM]
    if st.session_state.exp_suite not in names:
        st.session_state.exp_suite = names[0]
    st.session_state._exp_suite = st.session_state.exp_suite
    about, runs = st.columns([4, 7], gap="large")
    about.selectbox("Experiment", names, key="_exp_suite", on_change=keep,
                    args=("_exp_suite", "exp_suite"),
                    format_func=lambda n: "Your own grid" if n == CUSTOM
                    else get_suite(n).title)
    if st.session_state.exp_suite == CUSTOM:
        about.markdown("**Pick one design and vary one or two settings.** Every run uses the "
                       "same data and seed.")
        with runs:
            _grid_builder(user)
        return
    suite = get_suite(st.session_state.exp_suite)
    with about:
        st.markdown(f"**{suite.question}**")
        st.markdown(f"*What to look for:* {suite.look_for}")
        st.caption(f"Scaled down: {suite.scaled_down} Every run uses the same data and seed.")
    with runs:
        variants = suite.variants()
        quick = st.toggle("Quick preview (a fifth of the steps)", key="exp_quick",
                          help="For a first look before class; the numbers are less settled.")
        if quick:
            variants = scale_steps(variants, 0.2)
        st.dataframe(_variants_table(variants), hide_index=True, width="stretch",
                     column_config={
                         "parameters": st.column_config.NumberColumn(format="localized"),
                         "lr": st.column_config.NumberColumn(format="%g"),
                         "clip": st.column_config.NumberColumn(format="%g"),
                         "what": st.column_config.TextColumn(width="medium")})
        if not user:
            st.warning("Enter your name in the sidebar to run experiments: runs are kept "
                       "under it.")
        if st.button(f"Run these {len(variants)} trainings", type="primary",
                     disabled=not user, icon=":material/play_arrow:", key="exp_run"):
            _launch(user, suite.name, suite.title + (" (quick)" if quick else ""), variants)


def _grid_spec(user: str, key: str) -> NetworkSpec:
    kind, _, name = key.partition(":")
    if kind == "build":
        return st.session_state.spec
    if kind == "saved":
        return load_design(user, name)
    return PRESETS.get(name).spec()


def _grid_builder(user: str) -> None:
    nets = {"build:current": f"Design open on Build ({st.session_state.spec.name})"}
    if user:
        with contextlib.suppress(PlaygroundError):
            nets |= {f"saved:{d.name}": f"Saved: {d.name}" for d in list_designs(user)}
    nets |= {f"preset:{p.name}": p.title for p in list_presets()}
    c1, c2 = st.columns(2)
    net = c1.selectbox("Network", list(nets), format_func=nets.get, key="exp_grid_net")
    datasets = {d.name: d.title for d in list_datasets()}
    data = c2.selectbox("Data set", list(datasets), format_func=datasets.get,
                        key="exp_grid_data")
    c3, c4, c5, c6 = st.columns(4)
    opt = c3.selectbox("Optimiser", OPTIMIZERS.names(), index=OPTIMIZERS.names().index("adam"),
                       format_func=lambda n: OPTIMIZERS.get(n).title, key="exp_grid_opt")
    lr = c4.number_input("Learning rate", 1e-6, 100.0, 1e-3, format="%g", key="exp_grid_lr")
    batch = c5.select_slider("Batch", [16, 32, 64, 128, 256], 64, key="exp_grid_batch")
    steps = c6.number_input("Steps", 10, 5000, 200, step=50, key="exp_grid_steps")
    fields = list(VARY_FIELDS)
    title = {n: f.title for n, f in VARY_FIELDS.items()}
    v1, v2 = st.columns(2)
    f1 = v1.selectbox("Vary", fields, format_func=title.get, key="exp_grid_f1")
    t1 = v1.text_input("Values (comma-separated)", VARY_FIELDS[f1].example,
                       key=f"exp_grid_v1_{f1}", help=_values_help(f1))
    f2 = v2.selectbox("and (optional)", ["", *[f for f in fields if f != f1]],
                      format_func=lambda n: "nothing else" if not n else title[n],
                      key="exp_grid_f2")
    t2 = v2.text_input("Values (comma-separated)", VARY_FIELDS[f2].example if f2 else "",
                       key=f"exp_grid_v2_{f2}", disabled=not f2,
                       help=_values_help(f2) if f2 else None)
    try:
        spec, notes = fit_to_dataset(_grid_spec(user, net), data)
        every = max(5, int(steps) // 10)
        base = settings_from_dict({"dataset": data, "optimizer": opt, "lr": lr,
                                   "batch_size": batch, "steps": steps, "eval_every": every,
                                   "stats_every": every})
        vary = {f1: parse_values(f1, t1)}
        if f2:
            vary[f2] = parse_values(f2, t2)
        variants = custom_grid(spec, base, vary)
    except PlaygroundError as err:
        st.error(md_escape(err))
        return
    if notes:
        st.caption("Adapted to the data set: " + md_escape("; ".join(notes)) + ".")
    st.dataframe(_variants_table(variants), hide_index=True, width="stretch")
    if not user:
        st.warning("Enter your name in the sidebar to run experiments: runs are kept under it.")
    if st.button(f"Run these {len(variants)} trainings", type="primary", disabled=not user,
                 icon=":material/play_arrow:", key="exp_grid_run"):
        _launch(user, CUSTOM, f"Grid on {spec.name}", variants)


def _values_help(name: str) -> str:
    f = VARY_FIELDS[name]
    if f.kind == "choice":
        return "One or more of: " + ", ".join(f.choices)
    if f.kind == "float_or_none":
        return "Numbers, or 'none' for off."
    return "Whole numbers." if f.kind == "int" else "Numbers, e.g. 0.001, 0.01, 0.1."


# -- results -------------------------------------------------------------------------------------
@st.cache_data(max_entries=128, show_spinner=False)
def _done_series(store_url: str, run_id: int, finished_at: float) -> dict[str, Any]:
    return RunStore(store_url).get_metrics(run_id, SERIES)


def _series(store: RunStore, run_id: int) -> dict[str, Any]:
    run = store.find_run(run_id)
    if run is None:
        return {}
    if run.status in ACTIVE_STATUSES:
        return store.get_metrics(run_id, SERIES)
    return _done_series(store.url, run_id, run.finished_at or 0.0)


def _batch_label(b: Batch, store: RunStore) -> str:
    started = [r for r in b.run_ids if r is not None]
    runs = [store.find_run(r) for r in started]
    done = sum(1 for r in runs if r is not None and r.status not in ACTIVE_STATUSES)
    when = time.strftime("%d %b %H:%M", time.localtime(b.created))
    return f"{b.title} · {when} · {done}/{len(b.run_ids)} done"


def _launches(user: str) -> None:
    if not user:
        st.info("Your experiments appear here once you have entered a name and started one.")
        return
    store = get_store()
    batches = {b.batch: b for b in list_batches(store, user)}
    if not batches:
        st.info("No experiments yet: pick one on the left and press Run.")
        return
    if st.session_state.exp_batch not in batches:
        st.session_state.exp_batch = next(iter(batches))
    st.session_state._exp_batch = st.session_state.exp_batch
    labels = {k: _batch_label(b, store) for k, b in batches.items()}
    st.selectbox("Results of", list(batches), format_func=labels.get, key="_exp_batch",
                 on_change=keep, args=("_exp_batch", "exp_batch"))
    _batch_view(user, st.session_state.exp_batch)


def _batch_view(user: str, batch_id: str) -> None:
    store = get_store()

    def current() -> Batch | None:
        return next((b for b in list_batches(store, user) if b.batch == batch_id), None)

    first = current()
    if first is None:
        return
    busy = bool(first.pending) or any(
        (r := store.find_run(i)) is not None and r.status in ACTIVE_STATUSES
        for i in first.run_ids if i is not None)

    @st.fragment(run_every=2.0 if busy else None)
    def live() -> None:
        b = current()
        if b is None:
            return
        if b.pending:
            with contextlib.suppress(PlaygroundError):
                if top_up(get_runner().start_run, store, user, _capacity(user)):
                    b = current() or b
        rows = results_table(store, b.run_ids, b.titles)
        active = [r["run"] for r in rows if r["run"] is not None
                  and r["status"] in {"queued", "running"}]
        done = sum(1 for r in rows if r["run"] is not None and r["status"] not in
                   {"queued", "running", "deleted"})
        head, stop = st.columns([5, 1], vertical_alignment="center")
        head.progress(done / len(rows), text=f"{done} of {len(rows)} runs done"
                      + (f", {len(b.pending)} waiting for a free place in your queue "
                         "(keep this page open)" if b.pending else ""))
        if (active or b.pending) and stop.button("Stop all", key=f"exp_stop_{b.batch}",
                                                 icon=":material/stop:"):
            for rid in active:
                with contextlib.suppress(PlaygroundError):
                    get_runner().cancel(rid, by=Actor(user))
            st.toast("Stopping the experiment's runs...")
        _results(rows)
        _charts(store, b)
        if busy and not active and not b.pending:
            st.rerun()  # everything ended: redraw once, without the timer

    live()


def _results(rows: list[dict[str, Any]]) -> None:
    frame = pd.DataFrame(rows).rename(columns=RESULT_TITLES)
    sci = st.column_config.NumberColumn(format="%.2e")
    st.dataframe(
        frame, hide_index=True, width="stretch", key="exp_results",
        column_config={
            "final val. acc.": st.column_config.NumberColumn(format="percent"),
            "best val. acc.": st.column_config.NumberColumn(format="percent"),
            "final loss": st.column_config.NumberColumn(format="%.3f"),
            **{RESULT_TITLES[k]: sci for k in ("grad_first_start", "grad_last_start",
                                               "grad_first_end", "grad_last_end")},
            "last act. std (start)": st.column_config.NumberColumn(format="%.3g"),
            "dead ReLU (end)": st.column_config.NumberColumn(format="percent"),
            "saturated (end)": st.column_config.NumberColumn(format="percent"),
            "wall time (s)": st.column_config.NumberColumn(format="%.1f"),
            "variant": st.column_config.TextColumn(width="medium"),
            **{t: st.column_config.Column(help=RESULT_COLUMNS[k])
               for k, t in RESULT_TITLES.items() if k in ("status", "diverged", "run")},
        })
    st.caption("Gradient norms are of each layer's weights: 'start' is the first update (the "
               "initial weights), 'end' the geometric mean of the last 10 steps. A first "
               "layer far below the last means vanishing gradients.")


def _charts(store: RunStore, b: Batch) -> None:
    items = []
    flows = []
    for i, (rid, title) in enumerate(zip(b.run_ids, b.titles, strict=True)):
        if rid is None:
            continue
        s = _series(store, rid)
        color = COLORS[i % len(COLORS)]
        items.append((title, color, s))
        flows.append((title, color, rid, s.get("grad_norm_layer", {})))
    if not any(s for _, _, s in items):
        st.caption("Charts appear as soon as the first run records its first steps.")
        return
    legend([(title, color) for title, color, _ in items])
    figs = [
        scalar_chart(items, [("loss", "train"), ("val_loss", "validation")], "Loss",
                     "cross-entropy loss (log)", log_y=True, smooth=True),
        scalar_chart(items, [("acc", "train (batch)"), ("val_acc", "validation")], "Accuracy",
                     "accuracy (fraction correct)", smooth=True),
        scalar_chart(items, [("grad_norm", "")], "Total gradient norm (before clipping)",
                     "L2 norm of all gradients (log)", log_y=True),
    ]
    figs[1].update_yaxes(range=[0, 1.02])
    c1, c2 = st.columns(2)
    c3, c4 = st.columns(2)
    for col, fig, name in zip((c1, c2, c3), figs, ("loss", "acc", "gn"), strict=True):
        fig.update_layout(showlegend=False)
        col.plotly_chart(fig, width="stretch", key=f"exp_{name}_{b.batch}")
    with c4:
        when = st.segmented_control("Gradient flow", ["at the start", "at the end"],
                                    default="at the start", key=f"exp_when_{b.batch}")
        lines = []
        for title, color, rid, flow in flows:
            if not flow.get("steps"):
                continue
            at_start = when != "at the end"
            _, values = gradient_flow(flow, flow["steps"][0] if at_start else None,
                                      1 if at_start else 10)
            lines.append((title, color, store.layer_labels(rid), values))
        fig = gradient_flow_chart(lines, f"Gradient flow {when or 'at the start'}")
        fig.update_layout(showlegend=False)
        st.plotly_chart(fig, width="stretch", key=f"exp_flow_{b.batch}")
    st.caption("Solid: training (faint: every batch; bold: moving average); dashed: "
               "validation. Hover a line for its run. Gradient flow: each layer's gradient "
               "norm, input side on the left.")


# -- the tab -------------------------------------------------------------------------------------
def experiments() -> None:
    user = st.session_state.user
    st.subheader("Run an experiment")
    _suite_panel(user)
    st.subheader("Results")
    _launches(user)
