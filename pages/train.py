"""Train: pick a network, a data set and settings; Start; watch loss and gradients live."""

from __future__ import annotations

import contextlib

import streamlit as st

from playground.build import validate
from playground.data import get_dataset_info, list_datasets
from playground.designs import list_designs, load_design
from playground.errors import PlaygroundError, SpecError
from playground.format import fmt_int, fmt_si
from playground.optim import OPTIMIZERS, SCHEDULES
from playground.presets import PRESETS, list_presets
from playground.spec import NetworkSpec
from playground.targets import analyse_spec, fit_to_dataset
from playground.train import resolve_device, settings_from_dict
from ui.assignment_state import (
    assignment_input,
    assignment_rules,
    data_settings,
    lock_training_size,
)
from ui.budget_view import budget_panel
from ui.class_rules import (
    apply_locks,
    binds,
    locked,
    locked_summary,
    max_steps,
    offered,
    steps_label,
)
from ui.classroom_view import editing_column, is_present
from ui.identity import current_actor
from ui.jobs import get_class_settings, get_runner
from ui.routing import ensure_routed
from ui.run_list import pick_run
from ui.state import show_flash
from ui.text import md_escape
from ui.train_state import CURRENT, mirror_to_url, restore_from_url
from ui.train_view import run_view

ensure_routed()  # first, before anything reads the session: see ui/routing.py

# Every widget keeps its value for the session (a visit to Build changes nothing); network,
# data set and run also live in the address (ui/train_state.py).
KEEP = "session"
actor = current_actor()
rules = assignment_rules(get_class_settings(), actor)  # an active assignment's locks too
restore_from_url(st.session_state.user, actor)
apply_locks(rules, actor)

st.title("Train")
st.caption(
    "Short trainings on this server's CPU or GPU. Watch the loss, and the gradient of every "
    "layer: vanishing gradients show as a dark band over the first layers of the heatmap."
)
show_flash()
user = st.session_state.user
# present mode (?present=1): the run alone, full width; the settings are drawn but hidden
left, right = (editing_column(), st.container()) if is_present() else \
    st.columns([4, 8], gap="large")

# -- what to train -----------------------------------------------------------------------------


def _network_options() -> dict[str, str]:
    spec: NetworkSpec = st.session_state.spec
    options = {CURRENT: f"Design from Build ({spec.name})"}
    if user:
        with contextlib.suppress(PlaygroundError):
            options.update({f"saved:{d.name}": f"Saved: {d.name}"
                            for d in list_designs(user, by=actor)})
    options.update({f"preset:{p.name}": p.title for p in list_presets()
                    if offered(rules, "presets", p.name, actor)})
    return options


def _on_network() -> None:
    key = st.session_state.tr_network
    if key.startswith("preset:"):
        st.session_state.tr_dataset = PRESETS.get(key.split(":", 1)[1]).dataset


def _on_optimizer() -> None:
    st.session_state.tr_lr = OPTIMIZERS.get(st.session_state.tr_optimizer).default_lr


def _chosen_spec(key: str) -> NetworkSpec:
    if key == CURRENT:
        return st.session_state.spec
    if key.startswith("saved:"):
        return load_design(user, key.split(":", 1)[1], by=actor)
    return PRESETS.get(key.split(":", 1)[1]).spec()


with left:
    st.subheader("Network and data")
    options = _network_options()
    if st.session_state.tr_network not in options:  # e.g. a saved design deleted since
        st.session_state.tr_network = CURRENT
    st.selectbox("Network", list(options), format_func=options.get, key="tr_network",
                 on_change=_on_network, persist_state=KEEP)
    datasets = {d.name: d for d in list_datasets()
                if offered(rules, "datasets", d.name, actor)}
    if st.session_state.tr_dataset not in datasets:
        st.session_state.tr_dataset = next(iter(datasets))
    st.selectbox("Data set", list(datasets), format_func=lambda n: datasets[n].title,
                 key="tr_dataset", persist_state=KEEP, disabled=locked(rules, "tr_dataset", actor))
    info = get_dataset_info(st.session_state.tr_dataset)
    st.caption(info.description + (" Needs files in the data directory (downloaded when "
                                   "online)." if info.needs_download else ""))
    spec = None
    try:
        spec, fit_notes = fit_to_dataset(_chosen_spec(st.session_state.tr_network), info.name,
                                         input_shape=assignment_input(info.name))
        problems = validate(spec)
        if problems:
            raise SpecError(problems)
        a = analyse_spec(spec)
        st.caption(f"{fmt_int(a.num_params)} parameters, {fmt_si(a.macs)} MACs per image"
                   + (f"; {md_escape('; '.join(fit_notes))}" if fit_notes else ""))
    except PlaygroundError as err:
        st.error(f"This network cannot train on {info.title}: {md_escape(err)}")
        spec = None
    budget_panel(spec, page="train")

    st.subheader("Settings")
    c1, c2 = st.columns(2)
    c1.selectbox("Optimiser", OPTIMIZERS.names(), key="tr_optimizer", on_change=_on_optimizer,
                 persist_state=KEEP, format_func=lambda n: OPTIMIZERS.get(n).title,
                 disabled=locked(rules, "tr_optimizer", actor))
    c2.number_input("Learning rate", 1e-6, 100.0, key="tr_lr", format="%g", persist_state=KEEP,
                    disabled=locked(rules, "tr_lr", actor),
                    help="Each optimiser's usual value is filled in when you pick it. Try a "
                    "very large one (e.g. 5 with SGD) to see gradients explode.")
    c3, c4 = st.columns(2)
    cap = max_steps(rules, actor)
    c3.number_input(steps_label(cap), 1, cap, key="tr_steps", step=50,
                    persist_state=KEEP, disabled=locked(rules, "tr_steps", actor),
                    help=f"Optimiser updates, at most {cap:,} on this server. 300 steps of "
                    "the small CNN take well under a minute on a laptop CPU.")
    c4.select_slider("Batch size", [8, 16, 32, 64, 128, 256, 512], key="tr_batch",
                     persist_state=KEEP, disabled=locked(rules, "tr_batch", actor))
    c5, c6 = st.columns(2)
    c5.selectbox("Learning-rate schedule", SCHEDULES.names(), key="tr_schedule",
                 persist_state=KEEP, format_func=lambda n: SCHEDULES.get(n).title,
                 disabled=locked(rules, "tr_schedule", actor))
    c6.number_input("Clip gradient norm at (0 = off)", 0.0, 1e6, key="tr_clip", format="%g",
                    persist_state=KEEP, disabled=locked(rules, "tr_clip", actor),
                    help="Rescale the gradient when its total L2 norm exceeds this.")
    with st.expander("More settings"):
        m1, m2 = st.columns(2)
        m1.number_input("Weight decay (blank = optimiser default)", 0.0, 1.0, value=None,
                        key="tr_wd", format="%g", persist_state=KEEP,
                        disabled=locked(rules, "tr_wd", actor))
        m2.number_input("Seed", 0, 2**31 - 1, key="tr_seed", persist_state=KEEP,
                        disabled=locked(rules, "tr_seed", actor),
                        help="Same seed and settings give the same numbers on CPU.")
        m3, m4 = st.columns(2)
        m3.number_input("Gradient accumulation (micro-batches per step)", 1, 64, key="tr_accum",
                        persist_state=KEEP, disabled=locked(rules, "tr_accum", actor))
        m4.number_input("Label smoothing", 0.0, 0.5, key="tr_smooth", step=0.05,
                        persist_state=KEEP, disabled=locked(rules, "tr_smooth", actor))
        m5, m6 = st.columns(2)
        m5.number_input("Early stopping patience (evaluations, 0 = off)", 0, 100,
                        key="tr_patience", persist_state=KEEP)
        m6.number_input("Evaluate every (steps)", 1, 1000, key="tr_eval",
                          persist_state=KEEP)
        m7, m8 = st.columns(2)
        m7.number_input("Training examples (0 = data set default)", 0, info.max_train,
                        key="tr_ntrain", step=500, persist_state=KEEP,
                        disabled=lock_training_size(info.name))
        m8.toggle("Augment (random crop + flip)", key="tr_augment",
                  disabled=info.kind != "image" or locked(rules, "tr_augment", actor),
                  persist_state=KEEP)
        schedule = SCHEDULES.get(st.session_state.tr_schedule)
        for pname, default in schedule.params.items():
            key = f"tr_sched_{schedule.name}_{pname}"  # each schedule keeps its own values
            st.session_state.setdefault(key, float(default))
            st.number_input(f"Schedule: {pname.replace('_', ' ')}", key=key, format="%g",
                            persist_state=KEEP, help=schedule.param_help.get(pname, ""))
        device = resolve_device("auto")
        st.selectbox("Mixed precision", ["off", "bf16", "fp16"], key="tr_amp",
                     disabled=device.type != "cuda" or locked(rules, "tr_amp", actor),
                     persist_state=KEEP,
                     help="CUDA only. This server trains on " + str(device) + ".")

    def _settings() -> dict:
        sched = st.session_state.tr_schedule
        params = {p: st.session_state.get(f"tr_sched_{sched}_{p}", d)
                  for p, d in SCHEDULES.get(sched).params.items()}
        return {
            "dataset": info.name,
            "n_train": st.session_state.tr_ntrain or None,
            "optimizer": st.session_state.tr_optimizer,
            "lr": st.session_state.tr_lr,
            "weight_decay": st.session_state.tr_wd,
            "schedule": sched,
            "schedule_params": params,
            "clip_norm": st.session_state.tr_clip or None,
            "batch_size": st.session_state.tr_batch,
            "accumulate": st.session_state.tr_accum,
            "steps": st.session_state.tr_steps,
            "label_smoothing": st.session_state.tr_smooth,
            "augment": bool(st.session_state.tr_augment and info.kind == "image"),
            "early_stopping_patience": st.session_state.tr_patience or None,
            "eval_every": st.session_state.tr_eval,
            "amp": st.session_state.tr_amp,
            "seed": st.session_state.tr_seed,
            **data_settings(info.name),  # the active assignment's data, exactly
        }

    if rules.locked and binds(actor):
        st.caption(md_escape("Set by the teacher for this class: " + locked_summary(rules)))
    if not user:
        st.warning("Enter your name in the sidebar to start runs: they are kept under it.")
    if st.button("Start training", type="primary", icon=":material/play_arrow:",
                 disabled=spec is None or not user, key="tr_start"):
        try:
            settings = settings_from_dict(_settings())
            title = f"{spec.name} on {info.title}"
            run_id = get_runner().start_run(actor, title, spec.to_dict(),
                                            settings.model_dump(mode="json"))
            st.session_state.tr_run = run_id
            st.toast(f"Run {run_id} queued.")
        except PlaygroundError as err:
            st.error(md_escape(err))

# -- runs --------------------------------------------------------------------------------------
with right:
    shown = pick_run(actor)
    if shown is not None and actor is not None:
        run_view(shown.id, actor)
mirror_to_url(st.session_state.tr_network, st.session_state.tr_dataset,
              shown.id if shown is not None else None)
