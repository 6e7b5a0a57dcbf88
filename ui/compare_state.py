"""Session keys of the Compare and Learn pages (created with the others by ``ui.state``).

Widgets keep their own keys (prefixed ``_``) and copy their value into these plain keys in
their ``on_change`` callbacks, so a choice survives a visit to another page (Streamlit forgets
the state of widgets that were not drawn in a run).
"""

from __future__ import annotations

from typing import Any

import streamlit as st

COMPARE_KEYS: dict[str, Any] = {
    "cmp_items": ["preset:vgg16", "preset:resnet50"],  # Compare: option keys of the items
    "cmp_goto": None,  # Compare: tab to open on the next visit (set by Learn's buttons)
    "exp_suite": "ladder",  # Compare > Experiments: the suite shown
    "exp_batch": None,  # Compare > Experiments: the launch whose results are shown
    "learn_lesson": "gradients",  # Learn: the open lesson
}


def keep(widget_key: str, state_key: str) -> None:
    """``on_change`` callback: copy a widget's value into its persistent key."""
    st.session_state[state_key] = st.session_state[widget_key]
