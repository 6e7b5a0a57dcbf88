"""The server's run store and job runner, one of each per store path (``st.cache_resource``).

The runner's worker processes outlive script reruns and serve every session. On first use the
store marks runs that a previous server left running as interrupted (their metrics stay).
"""

from __future__ import annotations

import streamlit as st

from playground.jobs import LocalRunner
from playground.runs import RunStore, default_db_path


@st.cache_resource(show_spinner=False)
def _store(path: str) -> RunStore:
    store = RunStore(path)
    store.recover_interrupted()
    return store


@st.cache_resource(show_spinner="Starting the training workers...")
def _runner(path: str) -> LocalRunner:
    _store(path)  # recover before any new run is queued
    return LocalRunner(path)


def get_store() -> RunStore:
    return _store(str(default_db_path()))


def get_runner() -> LocalRunner:
    return _runner(str(default_db_path()))
