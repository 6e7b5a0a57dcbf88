"""The class settings on the Train page: locked widgets, the options offered, the steps cap.

The runner enforces the same settings when a run starts (:func:`playground.classroom.enforce`);
this module only shows them, so a student never meets the refusal: a locked field shows the
teacher's value and is disabled, data sets and presets not offered are not listed. The
teacher (and a session without a name) sees the page as it is without settings.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from playground.access import Actor
from playground.classroom import LOCKABLE, ClassSettings
from playground.settings import get_settings

# TrainSettings field -> the Train page's widget key
WIDGETS = {
    "dataset": "tr_dataset", "optimizer": "tr_optimizer", "lr": "tr_lr", "steps": "tr_steps",
    "batch_size": "tr_batch", "schedule": "tr_schedule", "clip_norm": "tr_clip",
    "weight_decay": "tr_wd", "seed": "tr_seed", "accumulate": "tr_accum",
    "label_smoothing": "tr_smooth", "augment": "tr_augment", "amp": "tr_amp",
}
assert set(WIDGETS) == set(LOCKABLE), "every lockable field needs its widget"
_FIELD = {key: field for field, key in WIDGETS.items()}


def binds(actor: Actor | None) -> bool:
    return actor is None or not actor.is_staff


def _widget_value(field: str, value: Any) -> Any:
    if field == "clip_norm":
        return float(value or 0.0)
    if field in ("lr", "label_smoothing"):
        return float(value)
    return value


def apply_locks(rules: ClassSettings, actor: Actor | None) -> None:
    """Put the teacher's locked values (and the steps cap) into the widgets' state."""
    if not binds(actor):
        return
    state = st.session_state
    for field, value in rules.locked.items():
        state[WIDGETS[field]] = _widget_value(field, value)
    cap = max_steps(rules, actor)
    if state.get("tr_steps", 0) > cap:
        state.tr_steps = cap


def locked(rules: ClassSettings, key: str, actor: Actor | None) -> bool:
    """Whether the widget ``key`` shows a locked value for this session."""
    return binds(actor) and _FIELD.get(key) in rules.locked


def offered(rules: ClassSettings, kind: str, name: str, actor: Actor | None) -> bool:
    """Whether the data set or preset ``name`` (``kind``: ``datasets``/``presets``) is offered."""
    names = getattr(rules, kind)
    return not binds(actor) or names is None or name in names


def max_steps(rules: ClassSettings, actor: Actor | None) -> int:
    """The most steps this session may ask for."""
    cap = get_settings().max_steps
    if binds(actor) and rules.max_steps is not None:
        cap = min(cap, rules.max_steps)
    return max(1, cap)


def steps_label(cap: int) -> str:
    """The Steps box's label for a box whose maximum is ``cap`` (:func:`max_steps`), naming
    the cap when the teacher or an assignment set one: a number typed above the box's maximum
    is refused by the browser (the box turns red and keeps its last valid value), so the
    student must be able to read the maximum beforehand."""
    return f"Steps (at most {cap:,})" if cap < get_settings().max_steps else "Steps"


def locked_summary(rules: ClassSettings) -> str:
    """"steps = 300, optimiser = adam": the locked fields, as plain text."""
    return ", ".join(f"{LOCKABLE[f].lower()} = {v}" for f, v in rules.locked.items())
