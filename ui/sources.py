"""Where a design comes from: one searchable picker over every preset, every torchvision model,
the user's saved designs and a blank design; picking one opens it at once.

Picker values are source strings, the same ones ``st.session_state.source`` holds:
``preset:<name>``, ``zoo:<torchvision name>``, ``saved:<design name>``, ``scratch``, and, for
a design that came from elsewhere, ``link`` or ``upload``. Labels name their group first
("Classic · VGG-16", "torchvision · resnet50 (224x224)", "Saved · my net") so typing in the box
finds a design by group or by name. The open design is marked "— edited" once it differs from
how it was opened (``ui.state.is_edited``), with a Revert button beside it; picking another
design while edits are unsaved opens the pick anyway and offers Undo, which brings the edited
design back. Also the "Save design" control, which stores the current design under the
sidebar's name.

Option labels are plain text (Streamlit draws selectbox options without markdown); captions
escape every user string with ``md_escape``.
"""

from __future__ import annotations

import functools

import streamlit as st

from playground.access import Actor
from playground.designs import list_designs, load_design, save_design
from playground.errors import PlaygroundError
from playground.presets import GROUPS, PRESETS, list_presets
from playground.spec import NetworkSpec, StageSpec
from playground.zoo import family_of, is_zoo_model, list_zoo, native_input
from ui.state import is_edited, restore, set_spec, snapshot
from ui.text import md_escape

PICK = "design_pick"  # the picker's widget key
PICKER_SHOWS = "_picker_shows"  # what the picker showed in the last full run (source_picker)
SCRATCH = "scratch"
SAVED = "Saved"
ZOO = "torchvision"
EDITED = " — edited"
# Short group names for labels; a group added to presets.GROUPS later shows its full title.
_GROUP_LABEL = {"starter": "Starter", "classic": "Classic", "cifar": "CIFAR",
                "broken": "Broken on purpose"}
_ELSEWHERE = {"link": "Shared link", "upload": "Opened file"}


def _preset_label(name: str) -> str:
    preset = PRESETS.get(name)
    return f"{_GROUP_LABEL.get(preset.group, GROUPS[preset.group])} · {preset.title}"


def _saved_names() -> list[str]:
    user = st.session_state.user
    if not user:
        return []
    try:
        return [d.name for d in list_designs(user)]
    except PlaygroundError:
        return []


@functools.lru_cache(maxsize=1)
def _fixed_choices() -> tuple[tuple[str, str], ...]:
    """Presets and torchvision models, source -> label: the same for every rerun (built once;
    about a hundred labels)."""
    out = {f"preset:{p.name}": _preset_label(p.name) for p in list_presets()}
    for m in list_zoo():
        _, h, w = m.input_shape
        out[f"zoo:{m.name}"] = f"{ZOO} · {m.name} ({h}x{w})"
    return tuple(out.items())


def choices() -> dict[str, str]:
    """Every design the picker offers, source -> label, in the order it lists them."""
    out = dict(_fixed_choices())
    out |= {f"saved:{name}": f"{SAVED} · {name}" for name in _saved_names()}
    out[SCRATCH] = "Blank design (one conv stage)"
    return out


def _label(source: str) -> str:
    """A label for ``source`` without listing everything (for messages)."""
    kind, _, name = source.partition(":")
    if kind == "preset" and name in PRESETS:
        return _preset_label(name)
    if kind == "zoo":
        return f"{ZOO} · {name}"
    if kind == "saved":
        return f"{SAVED} · {name}"
    if source == SCRATCH:
        return "Blank design"
    return f"{_ELSEWHERE.get(source, 'Current design')} · {st.session_state.spec.name}"


def _open(source: str) -> bool:
    """Open ``source`` as the design on Build; False (and a message) when it cannot be."""
    kind, _, name = source.partition(":")
    try:
        if kind == "zoo":
            if not is_zoo_model(name):
                raise PlaygroundError(f"torchvision has no model named {name!r}")
            zoo = {"name": name, "input": native_input(name), "num_classes": 1000}
            st.session_state.zoo = zoo
            st.session_state.origin = dict(zoo)
            st.session_state.source = source
            st.session_state.gen += 1
        elif kind == "saved":
            set_spec(load_design(st.session_state.user, name), source=source)
        elif source == SCRATCH:
            set_spec(NetworkSpec(name="my design", stages=(StageSpec(width=32),)), SCRATCH)
        else:
            set_spec(PRESETS.get(name).spec(), source=source)
    except PlaygroundError as err:
        st.session_state.flash.append(("error", f"Could not open {_label(source)}: {err}"))
        return False
    return True


def _on_pick() -> None:
    """The picker's callback: open the pick at once; keep edits within reach of Undo."""
    choice = st.session_state[PICK]
    if choice is None or choice == st.session_state.source:
        return
    before = None
    if is_edited():
        before = {"state": snapshot(), "label": _label(st.session_state.source),
                  "replaced_by": choice}
    if _open(choice):
        st.session_state.undo = before


def _revert() -> None:
    """Back to the design as it was opened; Undo brings the edits back."""
    before = {"state": snapshot(), "label": _label(st.session_state.source),
              "replaced_by": st.session_state.source}
    origin = st.session_state.origin
    if isinstance(origin, dict):  # a zoo model: only its input and classes were edited
        st.session_state.zoo = dict(origin)
        st.session_state.gen += 1
    else:
        set_spec(origin, source=st.session_state.source)
    st.session_state.undo = before


def _undo() -> None:
    offer = st.session_state.undo
    st.session_state.undo = None
    if offer is not None:
        restore(offer["state"])


def _undo_offer() -> dict | None:
    """The Undo offer, while it still applies: the pick (or revert) it would undo is still
    open and unedited (undoing then would throw new edits away)."""
    offer = st.session_state.undo
    if offer is None:
        return None
    if offer["replaced_by"] != st.session_state.source or is_edited():
        st.session_state.undo = None
        return None
    return offer


def _describe(source: str) -> str:
    """A caption (markdown, escaped) saying what the open design is."""
    kind, _, name = source.partition(":")
    if kind == "preset" and name in PRESETS:
        preset = PRESETS.get(name)
        return f"**{md_escape(preset.title)}**: {md_escape(preset.teaches)}"
    if kind == "zoo" and (family := family_of(name)) is not None:
        note = next((m.note for m in list_zoo() if m.name == name), "")
        text = f"**{md_escape(family.title)}**: {md_escape(family.teaches)}"
        return text + (f" Built {md_escape(note)}." if note else "")
    if kind == "saved":
        return f"Your saved design **{md_escape(name)}**."
    if source == "link":
        return "The design from the shared link in the address."
    if source == "upload":
        return "The design from the file you opened."
    return "Edit the stages below, or type in the box to find a preset or a torchvision model."


def _picker_state() -> tuple[str, bool, bool]:
    """What the picker shows that an edit can change: the source, "edited", the Undo offer."""
    return st.session_state.source, is_edited(), st.session_state.undo is not None


def picker_outdated() -> bool:
    """Whether the picker drawn in this page's last full run no longer fits the design (an
    edit in a fragment made it edited, or undid every edit): the page must rerun whole."""
    return st.session_state.get(PICKER_SHOWS) != _picker_state()


def source_picker() -> None:
    """The design picker, Revert/Undo beside it, the Save control, and a caption."""
    source = st.session_state.source
    edited = is_edited()
    options = choices()
    if source not in options:  # a shared link, an upload, a design since deleted
        options = {source: _label(source), **options}
    # The box shows the open design: set before the widget is drawn, every run.
    st.session_state[PICK] = source
    c1, c2, c3 = st.columns([6, 1.6, 2.4], vertical_alignment="bottom")
    c1.selectbox(
        "Design", list(options), key=PICK, on_change=_on_pick,
        format_func=lambda s: options[s] + (EDITED if edited and s == source else ""),
        help="Type to search every preset, torchvision model and saved design; the one you "
        "pick opens at once. Edits you have not saved stay within reach of Undo.",
    )
    offer = _undo_offer()
    if offer is not None:
        c2.button("Undo", icon=":material/undo:", key="design_undo", on_click=_undo,
                  help=f"Back to your edited {md_escape(offer['label'])}.")
    elif edited:
        c2.button("Revert", icon=":material/restart_alt:", key="design_revert",
                  on_click=_revert, help="Back to the design as it was opened (Undo follows).")
    with c3.popover("Save design", icon=":material/save:",
                    disabled=st.session_state.zoo is not None):
        _save_box()
    caption = _describe(source)
    if offer is not None:
        caption += (f" Your edits to {md_escape(offer['label'])} were set aside: **Undo** "
                    "brings them back.")
    elif edited:
        caption += " **Edited** since it was opened: **Revert** goes back."
    st.caption(caption)
    st.session_state[PICKER_SHOWS] = _picker_state()


def _save_box() -> None:
    user = st.session_state.user
    if not user:
        st.info("Enter your name in the sidebar first: designs are saved under it.")
        return
    spec: NetworkSpec = st.session_state.spec
    name = st.text_input("Name", value=spec.name if spec.name != "custom" else "", key="save_name")
    if st.button("Save", key="save_btn", type="primary"):
        try:
            saved = save_design(user, name, spec.model_copy(update={"name": name}),
                                by=Actor(user))
        except PlaygroundError as err:
            st.error(md_escape(err))
            return
        # The saved design is now the open one: no longer "edited", listed under Saved.
        set_spec(spec.model_copy(update={"name": saved.name}), source=f"saved:{saved.name}")
        st.session_state.flash.append(
            ("success", f"Saved '{saved.name}' for {user}. It appears in the Design box as "
             f"'{SAVED} · {saved.name}', on Train and on Compare."))
        st.rerun()
