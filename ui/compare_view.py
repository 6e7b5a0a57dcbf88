"""The 'Side by side' tab of the Compare page: pick 2-4 items, see one table and shared charts.

Items are option keys (``preset:vgg16``, ``zoo:resnet50``, ``design:<name>``, ``run:<id>``,
``build:current``) turned into ``playground.compare.CompareItem`` here; every number comes from
``playground.compare``. Colours follow the order of the selection (``ui.charts.PALETTE``) in
the table's legend and in every chart. Below the charts, each design's architecture diagram,
side by side on one scale (``ui/compare_diagrams.py``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pandas as pd
import streamlit as st

from playground.access import Actor
from playground.analysis import OPTIMIZER_STATE_SLOTS
from playground.build import validate
from playground.compare import (
    COLUMNS,
    MAX_ITEMS,
    CompareItem,
    compare_rows,
    design_item,
    gradient_flow,
    item_analysis,
    preset_item,
    rows_to_csv,
    run_item,
    settings_diff,
    spec_diff,
    spec_item,
    stage_breakdown,
    zoo_item,
)
from playground.designs import list_designs
from playground.errors import PlaygroundError
from playground.format import fmt_bytes, fmt_int, fmt_si, fmt_wall
from playground.presets import list_presets
from playground.runs import DONE_STATUSES
from playground.zoo import zoo_names
from ui.charts import PALETTE
from ui.compare_charts import figures_html, layer_bars, stage_bars
from ui.compare_diagrams import diagrams
from ui.compare_state import keep
from ui.identity import current_actor
from ui.jobs import get_store
from ui.run_charts import accuracy_chart, grad_norm_chart, gradient_flow_chart, scalar_chart
from ui.text import html_text, md_escape

RUN_SERIES = ("loss", "acc", "val_loss", "val_acc", "grad_norm", "grad_norm_clipped",
              "grad_norm_layer")
KEY_SETTINGS = ("dataset", "optimizer", "lr", "batch_size", "steps", "schedule", "clip_norm",
                "seed")
# translucent amber: a pale tint under the light theme's dark text, a dark one under the dark
# theme's light text (an opaque pale yellow left light text unreadable)
HIGHLIGHT = "background-color: rgba(255, 196, 0, 0.28)"


# -- options and items ---------------------------------------------------------------------------
def item_options(user: str) -> dict[str, str]:
    """Option key -> label for everything that can be compared."""
    spec = st.session_state.spec
    options: dict[str, str] = {}
    if spec is not None and not st.session_state.zoo and not validate(spec):
        options["build:current"] = f"Build: the design open now ({spec.name})"
    options |= {f"preset:{p.name}": f"Preset: {p.title}" for p in list_presets()}
    options |= {f"zoo:{n}": f"torchvision: {n}" for n in zoo_names()}
    if user:
        with contextlib.suppress(PlaygroundError):
            options |= {f"design:{d.name}": f"Saved: {d.name}" for d in list_designs(user)}
        with contextlib.suppress(PlaygroundError):
            for r in get_store().list_runs(owner=user, statuses=DONE_STATUSES, limit=60):
                options[f"run:{r.id}"] = (f"Run #{r.id}: {r.title[:60]} "
                                          f"({r.status.replace('_', ' ')})")
    return options


def make_item(key: str, user: str) -> CompareItem:
    kind, _, name = key.partition(":")
    if kind == "preset":
        return preset_item(name)
    if kind == "zoo":
        return zoo_item(name)
    if kind == "design":
        return design_item(user, name, by=current_actor() or Actor(""))
    if kind == "run":
        return run_item(get_store(), int(name), current_actor() or Actor(""))  # "": nobody
    if kind == "build":
        spec = st.session_state.spec
        return spec_item(spec, f"Build: {spec.name}")
    raise PlaygroundError(f"unknown item {key!r}")


def _unique_labels(items: list[CompareItem]) -> list[CompareItem]:
    seen: dict[str, int] = {}
    out = []
    for item in items:
        n = seen.get(item.label, 0) + 1
        seen[item.label] = n
        out.append(item if n == 1 else replace(item, label=f"{item.label} ({n})"))
    return out


# -- the table -----------------------------------------------------------------------------------
def _pct(v: Any) -> str:
    return "n/a" if v is None else f"{v:.1%}"


FORMAT: dict[str, Callable[[Any], str]] = {
    "params": fmt_int, "macs": fmt_si, "flops": fmt_si, "depth": fmt_int,
    "receptive_field": lambda v: "n/a" if v is None else f"{v} px",
    "train_memory": fmt_bytes, "final_val_acc": _pct, "best_val_acc": _pct,
    "final_loss": lambda v: "n/a" if v is None else f"{v:.3f}",
    "steps_done": fmt_int, "steps_per_s": lambda v: "n/a" if v is None else f"{v:.1f}",
    "wall_s": fmt_wall,
}


def _show(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                         for k, v in value.items()) or "—"
    return str(value)


def side_by_side_table(items: list[CompareItem], rows: list[dict[str, Any]],
                       memory_label: str) -> tuple[pd.DataFrame, set[str]]:
    """Metrics as rows, items as columns; plus the settings of runs. Returns the frame and the
    row names to highlight (settings that differ between runs)."""
    has_runs = any(i.run is not None for i in items)
    data: dict[str, list[str]] = {}
    for key, col in COLUMNS.items():
        if key in {"item"} or (col.run_only and not has_runs):
            continue
        title = memory_label if key == "train_memory" else col.title
        fmt = FORMAT.get(key, lambda v: "—" if v in (None, "") else str(v))
        data[title] = [fmt(r[key]) if r[key] is not None else "—" for r in rows]
    highlight: set[str] = set()
    runs = [i.run for i in items if i.run is not None]
    if runs:
        differ = settings_diff([r.settings for r in runs])
        for name in dict.fromkeys([*KEY_SETTINGS, *differ]):
            title = f"setting: {name}"
            data[title] = [_show(i.run.settings.get(name)) if i.run is not None else ""
                           for i in items]
            if name in differ:
                highlight.add(title)
    frame = pd.DataFrame(data, index=[i.label for i in items]).T
    return frame, highlight


def legend(pairs: list[tuple[str, str]]) -> None:
    """Coloured chips naming each item once: (label, colour) pairs, in chart order."""
    chips = " ".join(
        f"<span style='white-space:nowrap;margin-right:16px'><span style='display:inline-block;"
        f"width:14px;height:14px;border-radius:3px;background:{color};vertical-align:middle;"
        f"margin-right:6px'></span>{html_text(label)}</span>" for label, color in pairs)
    st.markdown(f"<div style='font-size:1.05rem;line-height:1.9'>{chips}</div>",
                unsafe_allow_html=True)


# -- run metrics ---------------------------------------------------------------------------------
@st.cache_data(max_entries=64, show_spinner=False)
def _finished_series(store_url: str, run_id: int, finished_at: float) -> dict[str, Any]:
    from playground.runs import RunStore

    return RunStore(store_url).get_metrics(run_id, RUN_SERIES)


def run_series(item: CompareItem) -> dict[str, Any]:
    """A finished run's stored series (cached until the run changes)."""
    run = item.run
    assert run is not None
    store = get_store()
    return _finished_series(store.url, run.id, run.finished_at or 0.0)


# -- the tab -------------------------------------------------------------------------------------
def _pick(user: str) -> list[str]:
    options = item_options(user)
    if "_cmp_items" not in st.session_state:
        st.session_state._cmp_items = list(st.session_state.cmp_items)
    if any(k not in options for k in st.session_state._cmp_items):  # e.g. a deleted run
        st.session_state._cmp_items = [k for k in st.session_state._cmp_items if k in options]
    c1, c2, c3 = st.columns([7, 1.6, 1.8], vertical_alignment="bottom")
    c1.multiselect(
        "Compare (two to four)", list(options), format_func=options.get, key="_cmp_items",
        max_selections=MAX_ITEMS, on_change=keep, args=("_cmp_items", "cmp_items"),
        placeholder="Type to search presets, torchvision models, saved designs and runs",
        help="Presets, torchvision models, designs saved under your name and your finished "
        "runs. Colours follow this order in every chart.")
    c2.number_input("Batch for memory", 1, 4096, 32, key="cmp_batch",
                    help="Training memory is estimated at this batch size for every item.")
    c3.selectbox("Optimiser for memory", list(OPTIMIZER_STATE_SLOTS), index=5, key="cmp_opt",
                 help="Adam keeps two values per parameter, momentum SGD one, plain SGD none.")
    return [k for k in st.session_state._cmp_items if k in options]


def side_by_side() -> None:
    user = st.session_state.user
    keys = _pick(user)
    items: list[CompareItem] = []
    for key in keys:
        try:
            items.append(make_item(key, user))
        except PlaygroundError as err:
            st.error(f"Could not open {md_escape(key.partition(':')[2])}: {md_escape(err)}")
    items = _unique_labels(items)
    if len(items) < 2:
        st.info("Pick at least two items to compare: for example VGG-16 and ResNet-50, "
                "Plain-56 and ResNet-56, or two of your runs.")
        if not items:
            return
    batch, opt = int(st.session_state.cmp_batch), st.session_state.cmp_opt
    rows = compare_rows(items, batch, opt)
    for item in items:
        if item.problem:
            st.warning(f"{md_escape(item.label)}: {md_escape(item.problem)}")
    colors = [PALETTE[i % len(PALETTE)] for i in range(len(items))]
    legend([(item.label, c) for item, c in zip(items, colors, strict=True)])
    frame, highlight = side_by_side_table(items, rows, f"training memory (batch {batch})")
    styled = frame.style.apply(
        lambda r: [HIGHLIGHT if r.name in highlight else ""] * len(r), axis=1)
    st.dataframe(styled, width="stretch", height=min(38 + 35 * len(frame), 760),
                 key="cmp_table",
                 column_config={"_index": st.column_config.Column(width="medium")})
    st.caption("MACs as fvcore counts them (one multiply-add = one FLOP); FLOPs = 2 x MACs. "
               "Training memory is an estimate in float32."
               + (" Highlighted: settings that differ between the runs." if highlight else ""))

    figures: list[Any] = []
    analysed = []
    for item, color in zip(items, colors, strict=True):
        with contextlib.suppress(PlaygroundError):
            analysed.append((item, color, item_analysis(item)))
    runs = [(item, color) for item, color in zip(items, colors, strict=True)
            if item.run is not None]
    if runs:
        figures += _run_charts(runs)
    if analysed:
        figures += _design_charts(analysed)
        by_item = {id(item): a for item, _, a in analysed}
        diagrams([(item, color, by_item.get(id(item)))
                  for item, color in zip(items, colors, strict=True)])
    specs = [(item, color) for item, color in zip(items, colors, strict=True)
             if item.spec is not None]
    if len(specs) >= 2:
        _spec_diff(specs)

    c1, c2 = st.columns(2)
    c1.download_button("Download the table (CSV)", rows_to_csv(_csv_rows(items, rows)),
                       file_name="comparison.csv", mime="text/csv", icon=":material/download:",
                       key="cmp_csv")
    c2.download_button("Download the charts (HTML)", lambda: figures_html(figures),
                       file_name="comparison.html", mime="text/html",
                       icon=":material/download:", key="cmp_html", disabled=not figures)
    st.caption("Each chart's camera icon saves it as a PNG.")


def _csv_rows(items: list[CompareItem], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item, row in zip(items, rows, strict=True):
        extra = {}
        if item.run is not None:
            extra = {f"setting_{k}": _show(v) if isinstance(v, dict) else v
                     for k, v in item.run.settings.items()}
        out.append({**row, **extra})
    return out


def _run_charts(runs: list[tuple[CompareItem, str]]) -> list[Any]:
    st.subheader("Training runs")
    series = {item.key: run_series(item) for item, _ in runs}
    chart_items = [(item.label, color, series[item.key]) for item, color in runs]
    figs = [
        scalar_chart(chart_items, [("loss", "train"), ("val_loss", "validation")], "Loss",
                     "cross-entropy loss (log)", log_y=True, smooth=True),
        accuracy_chart(chart_items),
        grad_norm_chart(chart_items, [bool(item.run.settings.get("clip_norm"))
                                      for item, _ in runs if item.run is not None]),
    ]
    for fig in figs:
        fig.update_layout(showlegend=False)
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs[0], width="stretch", key="cmp_loss")
    c2.plotly_chart(figs[1], width="stretch", key="cmp_acc")
    c3, c4 = st.columns(2)
    c3.plotly_chart(figs[2], width="stretch", key="cmp_gn")
    flows = [s.get("grad_norm_layer", {}) for s in series.values()]
    last = max((f["steps"][-1] for f in flows if f.get("steps")), default=0)
    with c4:
        if last >= 1:
            s1, s2 = st.columns([3, 1])
            step = s1.slider("Gradient flow at step", 1, max(last, 2), 1, key="cmp_flow_step",
                             help="Step 1 is the gradient of the initial weights.")
            window = s2.number_input("average over", 1, 500, 1, key="cmp_flow_window",
                                     help="Recorded steps averaged (geometric mean) up to the "
                                     "chosen step.")
            lines = []
            for (item, color), flow in zip(runs, flows, strict=True):
                used, values = gradient_flow(flow, int(step), int(window))
                if used is not None:
                    labels = get_store().layer_labels(int(item.key))
                    lines.append((f"{item.label} (step {used})", color, labels, values))
            fig = gradient_flow_chart(lines, f"Gradient flow at step {step}")
            fig.update_layout(showlegend=False)
            st.plotly_chart(fig, width="stretch", key="cmp_flow")
            figs.append(fig)
        else:
            st.info("These runs recorded no per-layer gradients.")
    st.caption("Colours as in the table. Loss and accuracy: faint lines every batch, solid "
               "the moving average, dashed validation; total gradient norm: solid before "
               "clipping, dashed after (only for runs that clip). Hover a line for its run. "
               "Gradient flow: each layer's gradient norm, input side on the left; a line "
               "falling to the left means vanishing gradients.")
    return figs


def _design_charts(analysed: list[tuple[CompareItem, str, Any]]) -> list[Any]:
    st.subheader("Where the parameters and the compute go")
    log = st.toggle("Log scale", value=True, key="cmp_log")
    parts = [(item.label, color, stage_breakdown(a)) for item, color, a in analysed]
    rows = [(item.label, color, a.rows) for item, color, a in analysed]
    figs = [
        stage_bars(parts, "params", "Parameters per stage", "parameters", log),
        stage_bars(parts, "macs", "MACs per stage", "MACs (fvcore)", log),
        layer_bars(rows, "num_params", "Parameters per weight layer", "parameters", log),
        layer_bars(rows, "macs", "MACs per weight layer", "MACs (fvcore)", log),
    ]
    c1, c2 = st.columns(2)
    c1.plotly_chart(figs[0], width="stretch", key="cmp_stage_params")
    c2.plotly_chart(figs[1], width="stretch", key="cmp_stage_macs")
    c3, c4 = st.columns(2)
    c3.plotly_chart(figs[2], width="stretch", key="cmp_layer_params")
    c4.plotly_chart(figs[3], width="stretch", key="cmp_layer_macs")
    st.caption("Stages are the top-level parts of each network (stem, stage1..., head for "
               "playground designs; torchvision's own module names otherwise). In the "
               "per-layer charts, layer 5 of one network and of another are different layers: "
               "hover for names.")
    return figs


def _spec_diff(specs: list[tuple[CompareItem, str]]) -> None:
    st.subheader("What changed, stage by stage")
    labels = [item.label for item, _ in specs]
    c1, c2 = st.columns(2)
    a = c1.selectbox("From", range(len(specs)), format_func=labels.__getitem__, key="cmp_from")
    b = c2.selectbox("To", range(len(specs)), index=1, format_func=labels.__getitem__,
                     key="cmp_to")
    before, after = specs[a][0].spec, specs[b][0].spec
    assert before is not None and after is not None
    diff = spec_diff(before, after)
    for name, (x, y) in diff.general.items():
        show = (lambda v: "auto" if v is None else _show(v)) if name == "defaults.bias" else _show
        st.markdown(f"- **{md_escape(name.replace('defaults.', 'default '))}**: "
                    f"{md_escape(show(x))} → {md_escape(show(y))}")
    if diff.totals:
        (p0, p1), (m0, m1) = diff.totals["params"], diff.totals["macs"]
        st.markdown(f"Parameters {fmt_int(p0)} → {fmt_int(p1)}; MACs {fmt_si(m0)} → "
                    f"{fmt_si(m1)}.")
    table = pd.DataFrame(diff.to_rows())
    changed = {i for i, s in enumerate(diff.stages) if s.change != "same" or s.effect}
    styled = table.style.apply(
        lambda r: [HIGHLIGHT if r.name in changed else ""] * len(r), axis=1).format(
        {c: lambda v: "—" if pd.isna(v) else f"{int(v):,}"
         for c in ("params before", "params after", "MACs before", "MACs after")})
    st.dataframe(styled, hide_index=True, width="stretch", key="cmp_diff",
                 column_config={"what changed": st.column_config.TextColumn(width="large")})
    if a == b:
        st.caption("Pick two different items to see a difference.")
