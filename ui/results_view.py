"""The Results tab of an ended run: what the trained network learned, from its stored weights.

Everything is computed in this server from the run's checkpoint (:mod:`playground.checkpoints`)
and the validation split rebuilt from the run's stored settings (:mod:`playground.results`),
never by training again. The checkpoint list is read through the store with the viewer's
:class:`~playground.access.Actor` on every draw, so the owner check happens before anything
cached is used; the loaded model, the split and the evaluation are then kept in
``st.cache_resource`` (read-only objects shared by the sessions, keyed by the store, run,
checkpoint and the time it was written) so a class opening the same run evaluates it once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from playground import checkpoints, results
from playground.access import SYSTEM, Actor
from playground.errors import PlaygroundError
from playground.runs import ACTIVE_STATUSES, Run, RunStore
from playground.spec import spec_from_dict
from playground.train import settings_from_dict
from ui.jobs import get_store
from ui.results_charts import (
    boundary_figure,
    confusion_figure,
    enlarge,
    filter_tiles,
    grid_caption,
    mosaic,
    per_class_figure,
    saliency_overlay,
    top_classes,
)
from ui.submit_view import submit_section
from ui.text import md_escape

BUILD_PAGE = "pages/build.py"
GRID = 16  # validation images shown
UPLOAD_TYPES = ["png", "jpg", "jpeg", "gif", "bmp", "webp", "tif", "tiff"]


@st.cache_resource(max_entries=6, show_spinner="Loading the stored weights...")
def _model(url: str, run_id: int, kind: str, stamp: float) -> Any:
    model, _, _ = checkpoints.load_model(RunStore(url), run_id, kind, SYSTEM)
    return model


@st.cache_resource(max_entries=6, show_spinner="Rebuilding the validation split...")
def _data(url: str, run_id: int) -> results.ValidationData:
    run = RunStore(url).get_run(run_id)
    return results.validation_data(spec_from_dict(run.spec), settings_from_dict(run.settings))


@st.cache_resource(max_entries=6, show_spinner="Evaluating the weights on the validation "
                   "split...")
def _evaluation(url: str, run_id: int, kind: str, stamp: float) -> results.EvalResult:
    """The predictions the training's own evaluation stored with the weights (no forward
    pass here), else a new evaluation of the weights (checkpoints stored without them)."""
    store = RunStore(url)
    stored = checkpoints.load_predictions(store, run_id, kind, SYSTEM)
    data = _data(url, run_id)
    if stored is not None and int(stored.pred.shape[0]) == data.n:
        outputs = spec_from_dict(store.get_run(run_id).spec).num_classes
        return results.evaluation_from_predictions(data, stored.pred, stored.conf, outputs,
                                                   stored.val_loss)
    return results.evaluate(_model(url, run_id, kind, stamp), data)


@st.cache_resource(max_entries=6, show_spinner=False)
def _boundary(url: str, run_id: int, kind: str, stamp: float) -> results.Boundary:
    return results.decision_boundary(_model(url, run_id, kind, stamp), _data(url, run_id))


def _kind_label(info: checkpoints.CheckpointInfo) -> str:
    acc = "" if info.val_acc is None else f", {info.val_acc:.1%}"
    what = "Final" if info.kind == "final" else "Best"
    return f"{what} (step {info.step:,}{acc})"


def results_tab(run: Run, actor: Actor) -> None:
    """The Results tab for ``actor`` (the run's owner or the teacher)."""
    if run.status in ACTIVE_STATUSES:
        st.info("Results appear when the run ends: the confusion matrix, the validation "
                "images it gets wrong, its filters and feature maps, from its final weights.")
        return
    store = get_store()
    try:
        infos = {i.kind: i for i in checkpoints.list_checkpoints(store, run.id, actor)}
    except PlaygroundError as err:
        st.warning(md_escape(err))
        return
    submit_section(run, actor, has_best="best" in infos)  # only with an active assignment
    if not infos:
        st.info(md_escape(f"This run has no stored weights: "
                          f"{checkpoints.no_weights_reason(store, run)}."))
        _open_design_button(run)
        return
    key = f"res_kind_{run.id}"
    if st.session_state.get(key) not in infos:
        st.session_state[key] = next(iter(infos))
    kind = st.segmented_control(
        "Weights", list(infos), key=key, required=True,
        format_func=lambda k: _kind_label(infos[k]),
        help="Final: the weights at the end of the run. Best: the weights when the "
             "validation accuracy was highest.")
    info = infos[kind]
    c2, c3, _ = st.columns([1, 1, 1])
    with c2:
        _download_button(store, run, info, actor)
    with c3:
        _open_design_button(run)
    url, stamp = store.url, info.created_at
    try:
        ev = _evaluation(url, run.id, kind, stamp)
        data = _data(url, run.id)
        model = _model(url, run.id, kind, stamp)
    except PlaygroundError as err:
        st.error(md_escape(err))
        return
    same = info.val_acc is not None and ev.accuracy == info.val_acc
    st.caption(f"Validation accuracy {ev.accuracy:.1%} on {ev.n:,} examples of "
               f"{md_escape(data.title)}" + (", as the run recorded it." if same else "."))
    normalised = st.toggle("Show shares of each true class", key=f"res_norm_{run.id}",
                           help="Off: counts. On: each row as percentages of its class.")
    st.plotly_chart(confusion_figure(ev, normalised), width="stretch",
                    key=f"res_confusion_{run.id}")
    st.plotly_chart(per_class_figure(ev), width="stretch", key=f"res_per_class_{run.id}")
    if data.kind == "points":
        st.plotly_chart(boundary_figure(_boundary(url, run.id, kind, stamp)), width="stretch",
                        key=f"res_boundary_{run.id}")
        st.caption("Each colour is the class the network predicts at that point of the plane, "
                   "lighter where it is less sure; the dots are the validation points.")
        return
    _grid(ev, data)
    _filters(model)
    _one_image(run, model, data, ev)


def _download_button(store: RunStore, run: Run, info: checkpoints.CheckpointInfo,
                     actor: Actor) -> None:
    def data() -> bytes:  # read only when the button is pressed
        return checkpoints.checkpoint_bytes(store, run.id, info.kind, actor)[0]

    st.download_button(
        "Download weights", data, file_name=f"run{run.id}_{info.kind}.safetensors",
        mime="application/octet-stream", icon=":material/download:",
        key=f"res_dl_{run.id}_{info.kind}", on_click="ignore",
        help=f"{info.nbytes / 1e6:.2f} MB, safetensors: load with "
             "safetensors.torch.load_file into the design's PyTorch code (Build > Export).")


def _open_design_button(run: Run) -> None:
    if st.button("Open its design", icon=":material/construction:", key=f"res_open_{run.id}",
                 help="Open the design this run trained on the Build page."):
        from ui.state import set_spec

        try:
            set_spec(spec_from_dict(run.spec), source=f"run:{run.id}")
        except PlaygroundError as err:
            st.error(md_escape(err))
            return
        st.switch_page(BUILD_PAGE)


def _grid(ev: results.EvalResult, data: results.ValidationData) -> None:
    st.markdown("##### Validation images, the wrong ones first")
    items = results.prediction_grid(ev, data, GRID)
    wrong = sum(not i.correct for i in results.prediction_grid(ev, None, ev.n))
    st.caption(f"{wrong:,} of {ev.n:,} validation images are classified wrongly; the most "
               "confident mistakes come first. ✗ true → predicted (confidence).")
    cols = st.columns(8)
    for j, item in enumerate(items):
        if item.image is None:
            continue
        with cols[j % 8]:
            st.image(enlarge(item.image, 96), caption=md_escape(grid_caption(item)), clamp=True,
                     width="stretch")


def _filters(model: Any) -> None:
    filt = results.first_layer_filters(model)
    if filt is None:
        return
    st.markdown("##### First-layer filters")
    kind = "in colour (red, green, blue weights)" if filt.rgb else "averaged over the inputs"
    st.caption(md_escape(f"The {len(filt.images)} filters of {filt.name}, {kind}; each scaled "
                         "to its own range. Trained filters often become edge and colour "
                         "detectors."))
    tiles = filter_tiles(filt.images)
    per_row = 16
    for start in range(0, len(tiles), per_row):
        cols = st.columns(per_row)
        for col, tile in zip(cols, tiles[start:start + per_row], strict=False):
            col.image(tile, clamp=True, width="stretch")


def _one_image(run: Run, model: Any, data: results.ValidationData,
               ev: results.EvalResult) -> None:
    st.markdown("##### Inside the network for one image")
    src_key = f"res_src_{run.id}"
    st.session_state.setdefault(src_key, "validation")
    c1, c2 = st.columns([1, 2], vertical_alignment="bottom")
    source = c1.segmented_control("Image", ["validation", "upload"], key=src_key,
                                  required=True,
                                  format_func={"validation": "A validation image",
                                               "upload": "My own image"}.get)
    x = image = None
    truth = ""
    if source == "upload":
        file = c2.file_uploader("An image (PNG, JPEG, ...): resized to the network's input",
                                type=UPLOAD_TYPES, key=f"res_upload_{run.id}")
        invert = st.checkbox("Invert (dark drawing on a light background)",
                             key=f"res_invert_{run.id}",
                             help="The digits data sets are light ink on a dark background.")
        if file is None:
            st.caption("Upload an image to see what the network makes of it.")
            return
        try:
            up = results.prepare_upload(file.getvalue(), data, invert=invert)
        except PlaygroundError as err:
            st.error(md_escape(err))
            return
        x, image = up.x, up.image
    else:
        order = [i.index for i in results.prediction_grid(ev, None, ev.n)]
        pos = c2.number_input(f"Validation image (1 = the most confident mistake, of "
                              f"{ev.n:,})", 1, ev.n, 1, key=f"res_index_{run.id}")
        idx = order[int(pos) - 1]
        x = data.x[idx]
        image = data.images([idx])[0]
        truth = f"true class: {ev.classes[int(ev.true[idx])]}"
    sal = results.saliency(model, x, classes=data.classes)
    pred = sal.prediction
    a, b, c = st.columns([1, 1, 2])
    a.image(enlarge(np.asarray(image), 192), clamp=True, width="stretch",
            caption=md_escape(f"What the network sees{'; ' + truth if truth else ''}"))
    b.image(saliency_overlay(np.asarray(image), sal.saliency), clamp=True, width="stretch",
            caption=md_escape(f"Saliency for '{pred.label}': red pixels change its score "
                              "most"))
    with c:
        st.markdown("**Prediction**")
        for label, p in top_classes(pred.probs, pred.labels):
            st.progress(min(max(p, 0.0), 1.0), text=md_escape(f"{label}: {p:.1%}"))
    maps = results.feature_maps(model, x, which="conv")
    if not maps:
        return
    names = [m.name for m in maps]
    layer_key = f"res_layer_{run.id}"
    if st.session_state.get(layer_key) not in names:
        st.session_state[layer_key] = names[0]
    layer = st.selectbox("Feature maps of", names, key=layer_key,
                         help="Every convolution's output for this image, before its norm and "
                              "activation, in the order the network computes them.")
    fm = next(m for m in maps if m.name == layer)
    ch, h, w = fm.maps.shape
    st.image(mosaic(fm.maps, columns=16 if ch > 32 else 8), clamp=True, width="stretch",
             caption=md_escape(f"Feature maps of {fm.name}: {ch} channels of {h}x{w}, each "
                               "scaled to its own range (bright = strong response)."))
