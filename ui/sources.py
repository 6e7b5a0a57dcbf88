"""Where a design comes from: presets (grouped), the torchvision zoo, saved designs, scratch.

Also the "Save design" control, which stores the current design under the sidebar's name.
"""

from __future__ import annotations

import streamlit as st

from playground.designs import list_designs, load_design, save_design
from playground.errors import PlaygroundError
from playground.presets import GROUPS, PRESETS, list_presets
from playground.spec import NetworkSpec, StageSpec
from playground.zoo import FAMILIES, family_of, native_input, zoo_names
from ui.state import set_spec
from ui.text import md_escape

ZOO = "torchvision zoo"
SAVED = "My saved designs"
SCRATCH = "Blank design"


def _options(group: str) -> dict[str, str]:
    """Item key -> label for one group."""
    if group == ZOO:
        available = set(zoo_names())
        return {m: f"{f.title}: {m}" for f in FAMILIES for m in f.members if m in available}
    if group == SAVED:
        user = st.session_state.user
        if not user:
            return {}
        try:
            return {d.name: d.name for d in list_designs(user)}
        except PlaygroundError:
            return {}
    if group == SCRATCH:
        return {"blank": "one conv stage"}
    return {p.name: p.title for p in list_presets() if GROUPS[p.group] == group}


def _open(group: str, key: str) -> None:
    try:
        if group == ZOO:
            st.session_state.zoo = {"name": key, "input": native_input(key), "num_classes": 1000}
            st.session_state.source = f"zoo:{key}"
            st.session_state.gen += 1
            return
        if group == SAVED:
            set_spec(load_design(st.session_state.user, key), source=f"saved:{key}")
        elif group == SCRATCH:
            set_spec(NetworkSpec(name="my design", stages=(StageSpec(width=32),)), "scratch")
        else:
            set_spec(PRESETS.get(key).spec(), source=f"preset:{key}")
    except PlaygroundError as err:
        st.session_state.flash.append(("error", f"Could not open {key}: {err}"))


def source_picker() -> None:
    groups = [*GROUPS.values(), ZOO, SAVED, SCRATCH]
    c1, c2, c3, c4 = st.columns([3, 4, 1.2, 2.8], vertical_alignment="bottom")
    group = c1.selectbox("Start from", groups, index=0, key="src_group")
    options = _options(group)
    if not options:
        c2.selectbox("Design", ["(none saved yet)" if group == SAVED else "(none)"],
                     disabled=True, key="src_item_empty")
        c3.button("Open", disabled=True, key="src_open_disabled")
    else:
        keys = list(options)
        item = c2.selectbox("Design", keys, format_func=options.get, key=f"src_item_{group}")
        c3.button("Open", type="primary", key="src_open", on_click=_open, args=(group, item))
        if group not in {ZOO, SAVED, SCRATCH}:
            st.caption(f"**{PRESETS.get(item).title}**: {PRESETS.get(item).teaches}")
        elif group == ZOO and (family := family_of(item)) is not None:
            st.caption(f"**{family.title}**: {family.teaches}")
    with c4.popover("Save design", icon=":material/save:",
                    disabled=st.session_state.zoo is not None):
        _save_box()


def _save_box() -> None:
    user = st.session_state.user
    if not user:
        st.info("Enter your name in the sidebar first: designs are saved under it.")
        return
    spec: NetworkSpec = st.session_state.spec
    name = st.text_input("Name", value=spec.name if spec.name != "custom" else "", key="save_name")
    if st.button("Save", key="save_btn", type="primary"):
        try:
            saved = save_design(user, name, spec.model_copy(update={"name": name}))
            st.success(f"Saved '{md_escape(saved.name)}' for {md_escape(user)}. It appears "
                       f"under '{SAVED}', on Train and on Compare.")
        except PlaygroundError as err:
            st.error(md_escape(err))
