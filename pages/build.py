"""Build: pick a preset or start from scratch, edit stages, see the analysis redraw at once."""

from __future__ import annotations

import streamlit as st

from playground.analysis import OPTIMIZER_STATE_SLOTS, explain_row, training_memory
from playground.build import validate
from playground.errors import ConfigError, PlaygroundError, Problem, SpecError
from playground.export import EXPORTERS
from playground.format import fmt_bytes, fmt_int, fmt_shape, fmt_si
from playground.presets import PRESETS
from playground.settings import get_settings
from playground.share import encode_spec, share_link
from playground.spec import spec_from_text
from playground.targets import (
    Target,
    analyse_spec,
    analyse_target,
    final_feature_map,
    final_receptive_field,
    layer_labels,
)
from ui import editor
from ui.budget_view import budget_panel
from ui.charts import analysis_figures
from ui.classroom_view import editing_column, is_present
from ui.diagram_view import diagram_selection, diagram_tab, pick_note
from ui.routing import ensure_routed
from ui.sources import picker_outdated, source_picker
from ui.state import set_spec, show_flash
from ui.tables import layer_table
from ui.text import md_escape

ensure_routed()  # first, before anything reads the session: see ui/routing.py

st.title("Build a network")
st.caption(
    "Pick a design in the box (type to search presets, torchvision models and your saved "
    "designs) or edit the stages: the numbers, table and charts redraw at once. "
    "MACs follow fvcore's convention (one multiply-add = one FLOP); FLOPs = 2 x MACs."
)
show_flash()
source_picker()

# -- layers, charts, export -----------------------------------------------------------------
def layers_tab(analysis, zoo: dict | None) -> None:
    labels = layer_labels(st.session_state.last_good) if not zoo else {}
    # a box clicked on the Diagram tab: its rows tinted, its main row selected once
    box, select = diagram_selection(analysis) if not zoo else (None, None)
    if box is not None:
        pick_note(box)
    row = layer_table(analysis, labels, highlight=box.rows if box else (), select=select)
    if row is not None:
        st.markdown(f"**{md_escape(row.name)}** ({md_escape(row.type)})")
        st.code(explain_row(row), language=None, wrap_lines=True)
    else:
        st.caption("Select a row to see the formula behind its numbers.")


def charts_tab(analysis) -> None:
    log = st.session_state.get("bars_log", True)
    fmap, params, macs, rf = analysis_figures(analysis, bool(log))
    st.plotly_chart(fmap, width="stretch")
    st.caption("Each stride or pool shrinks the map; the channels grow to compensate.")
    st.toggle("Log scale", value=True, key="bars_log")
    st.plotly_chart(params, width="stretch")
    st.caption("Parameters per layer. In VGG most sit in the first classifier layer.")
    st.plotly_chart(macs, width="stretch")
    st.caption("Multiply-accumulates per layer for one image: early, large feature maps cost "
               "the most.")
    st.plotly_chart(rf, width="stretch")
    st.caption("How many input pixels one unit sees: it grows with each kernel, faster after "
               "each stride.")


def export_tab(zoo: dict | None) -> None:
    if zoo:
        st.info("Export is for playground designs: open a preset to export it.")
        return
    good = st.session_state.last_good
    st.markdown("**Share** this design with this link. It holds the design only, never your "
                "name or key (your page address holds your key: do not send that one).")
    st.code(share_link(st.context.url, good), language=None, wrap_lines=True)
    name = (good.name or "design").replace(" ", "_")
    cols = st.columns(3)
    for col, (fmt, (fn, ext, mime)) in zip(cols, EXPORTERS.items(), strict=True):
        col.download_button(f"Download {fmt}", fn(good), file_name=name + ext, mime=mime,
                            key=f"dl_{fmt}", icon=":material/download:")
    upload = st.file_uploader("Open a JSON or YAML spec", type=["json", "yaml", "yml"],
                              key="upload")
    if upload is None or st.session_state.get("_upload_id") == upload.file_id:
        return
    st.session_state._upload_id = upload.file_id
    limit = get_settings().max_upload_bytes
    try:
        if upload.size > limit:
            raise ConfigError(f"the file is larger than {limit:,} bytes")
        new = spec_from_text(upload.getvalue(), upload.name)
        found = validate(new)
        if found:
            raise SpecError(found)
    except PlaygroundError as err:
        st.error(f"Could not open {md_escape(upload.name)}: {md_escape(err)}. Nothing was "
                 "changed.")
        return
    set_spec(new, source="upload")
    st.session_state.flash.append(("success", f"Opened {upload.name}."))
    st.rerun()



@st.fragment
def design_view() -> None:
    """Everything below the picker: the numbers, the editor, the tabs. A fragment: an edit
    reruns only this (about half a full rerun of the page with its sidebar and picker; issue
    12), unless the picker must change too (the design became edited or unedited, a message
    waits to be shown): then the whole page reruns."""
    if picker_outdated() or st.session_state.flash:
        st.rerun()
    zoo = st.session_state.zoo
    spec = st.session_state.spec

    # -- analysis ------------------------------------------------------------------------------
    # A design becomes the "last good" one only once it has analysed without an error: a shared
    # link or an upload may hold a design that validates but cannot be built, and the fallback
    # numbers must never come from it.
    problems: list[Problem] = []
    analysis = None
    failure = ""  # why the design could not be analysed, when it is not a list of problems
    try:
        if zoo:
            analysis = analyse_target(Target(zoo["name"], tuple(zoo["input"]),
                                             zoo["num_classes"], zoo=zoo["name"]))
        else:
            problems = validate(spec)
            if not problems:
                analysis = analyse_spec(spec)
                st.session_state.last_good = spec
    except SpecError as err:
        problems = err.problems
    except PlaygroundError as err:
        failure = str(err)
    spec_ok = analysis is not None and not zoo  # the design being edited analysed cleanly
    stale = False
    if zoo:
        if failure or problems:
            st.error(md_escape(failure or "; ".join(str(p) for p in problems)))
    elif analysis is None:
        if st.session_state.last_good is not None:
            try:
                analysis = analyse_spec(st.session_state.last_good)
                stale = True
            except PlaygroundError:  # e.g. a saved design from before today's limits
                st.session_state.last_good = None
        if problems:
            why = (f" ({len(problems)} problem{'s' if len(problems) != 1 else ''}, shown beside "
                   "the stage at fault).")
        else:
            why = f": {md_escape(failure.rstrip('.'))}."
        st.warning("This design cannot be built" + why
                   + (" The numbers below are for the last valid design." if stale else ""),
                   icon=":material/history:")
    if analysis is not None:
        with st.container(border=stale):
            c1, c2, c3, c4 = st.columns(4)
            c1.metric("Parameters", fmt_int(analysis.num_params),
                      help="Learnable weights and biases.")
            c2.metric("MACs", fmt_si(analysis.macs),
                      help="Multiply-accumulates for one image, as fvcore counts them: one "
                      "multiply-add = one FLOP (conv, linear, batch norm at 2 per element, "
                      "adaptive avg-pool); max-pool, ReLU and additions count 0.")
            c3.metric("FLOPs", fmt_si(analysis.flops),
                      help="FLOPs = 2 x MACs: a multiply and an add counted separately, as "
                      "torch.utils.flop_counter does.")
            c4.metric("Depth", fmt_int(analysis.depth),
                      help="Weight layers (convolutions and linear layers).")
            c5, c6, c7, c8 = st.columns(4)
            c5.metric("Final feature map", fmt_shape(final_feature_map(analysis)),
                      help="Output of the last spatial layer before the head (C x H x W).")
            rf = final_receptive_field(analysis)
            c6.metric("Receptive field", f"{max(rf)} px" if rf else "n/a",
                      help="Input pixels one unit of the final feature map can see (it can "
                      "exceed the input: then it sees all of it, padding included).")
            with c8.popover("Memory settings", icon=":material/tune:"):
                batch = st.number_input("Batch size", 1, 4096, 32, key="mem_batch")
                opt = st.selectbox("Optimiser", list(OPTIMIZER_STATE_SLOTS), index=5,
                                   key="mem_opt", help="Adam keeps two values per parameter, "
                                   "momentum SGD one, plain SGD none.")
            mem = training_memory(analysis, int(batch), opt)
            c7.metric(f"Training memory (batch {batch})", fmt_bytes(mem["total"]),
                      help=f"Estimate: weights {fmt_bytes(mem['weights'])} + gradients "
                      f"{fmt_bytes(mem['gradients'])} + optimiser state "
                      f"{fmt_bytes(mem['optimizer_state'])} + saved activations "
                      f"{fmt_bytes(mem['activations'])}, float32.")
            if spec_ok and c8.button("Train this design", icon=":material/play_arrow:",
                                     key="to_train"):
                st.session_state.tr_network = "__current__"
                source = st.session_state.source
                if source.startswith("preset:") and source[7:] in PRESETS:
                    st.session_state.tr_dataset = PRESETS.get(source[7:]).dataset  # its own data
                st.switch_page("pages/train.py")
    budget_panel(spec if spec_ok else None)  # the active assignment's budgets, on every edit


    # present mode (?present=1): the analysis alone, full width; the editor is drawn but hidden
    left, right = (editing_column(), st.container()) if is_present() else \
        st.columns([5, 8], gap="medium")

    # -- editor ------------------------------------------------------------------------------------
    with left:
        if zoo:
            st.subheader(md_escape(zoo["name"]))
            st.info(
                "torchvision models are analysed as torchvision builds them (random weights). "
                "Stage editing is for playground designs: open a preset to edit one."
            )
            editor.zoo_editor()
        else:
            st.subheader("Design")
            general = [p for p in problems if p.stage is None]
            for p in general:
                st.error(editor.problem_text(p))
            with st.expander("Input and classes", expanded=True):
                editor.input_editor()
            box = st.expander("Defaults every stage inherits", key="exp_defaults",
                              on_change="rerun")
            with box:
                if box.open:
                    editor.defaults_editor()
            editor.stem_editor()
            labels = layer_labels(spec) if spec_ok else {}
            for i, stage in enumerate(spec.stages):
                outs = [e.out_shape for e in labels.values() if e.stage == i]
                summary = f"out {fmt_shape(outs[-1])}" if outs else ""
                editor.stage_editor(i, stage, [p for p in problems if p.stage == i], summary)
            editor.add_stage_button()
            box = st.expander("Head (classifier)", key="exp_head", on_change="rerun")
            with box:
                if box.open:
                    editor.head_editor()

    with right:
        if analysis is None:
            st.info("Nothing to analyse yet.")
        else:
            # Lazy tabs: only the open tab runs its code (each chart costs ~20 ms to build).
            tabs = st.tabs(["Layers", "Charts", "Diagram", "Export & share"], key="build_tab",
                           on_change="rerun")
            title = zoo["name"] if zoo else (st.session_state.last_good.name or "design")
            draws = (lambda: layers_tab(analysis, zoo), lambda: charts_tab(analysis),
                     lambda: diagram_tab(analysis, zoo, title), lambda: export_tab(zoo))
            for tab, draw in zip(tabs, draws, strict=True):
                with tab:
                    if tab.open is not False:
                        draw()

    # -- keep the address bar in sync ----------------------------------------------------------
    if spec_ok:
        st.query_params["d"] = encode_spec(spec)
    elif zoo and "d" in st.query_params:
        del st.query_params["d"]


design_view()
