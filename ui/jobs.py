"""The server's run store, job runner, identities and class settings, one of each per store
URL (``st.cache_resource``).

The runner (``PLAYGROUND_RUNNER``: local worker processes or Ray) outlives script reruns and
serves every session; this is the one place a server creates it, so ``ray.init`` runs once per
server process, never in a script rerun. On first use the store marks runs that a previous
server left running as interrupted (their metrics stay).
"""

from __future__ import annotations

import streamlit as st

from playground.access import Actor
from playground.assignments import AssignmentStore
from playground.classroom import ClassSettings, ClassStore
from playground.identity import IdentityStore
from playground.runners import Runner, make_runner
from playground.runs import RunStore
from playground.store import default_url

_STARTED: dict[str, Runner] = {}  # the runners _runner made, by store URL


@st.cache_resource(show_spinner=False)
def _store(url: str) -> RunStore:
    store = RunStore(url)
    store.recover_interrupted()
    return store


@st.cache_resource(show_spinner="Starting the training workers...")
def _runner(url: str) -> Runner:
    runner = make_runner(store=_store(url))  # recovered before any new run is queued
    _STARTED[url] = runner
    return runner


def get_store() -> RunStore:
    return _store(default_url())


def get_runner() -> Runner:
    return _runner(default_url())


def started_runner() -> Runner | None:
    """The server's runner if it was started already (asking never starts one)."""
    return _STARTED.get(default_url())


@st.cache_resource(show_spinner=False)
def _identities(url: str) -> IdentityStore:
    return IdentityStore(url)


@st.cache_resource(show_spinner=False)
def _class_store(url: str) -> ClassStore:
    return ClassStore(url)


@st.cache_resource(show_spinner=False)
def _assignment_store(url: str) -> AssignmentStore:
    return AssignmentStore(url)


def get_assignments() -> AssignmentStore:
    """Assignments and their scored submissions (same database as the runs)."""
    return _assignment_store(default_url())


def get_identities() -> IdentityStore:
    """Claimed names and their key hashes (same database as the runs)."""
    return _identities(default_url())


@st.cache_data(ttl=1.0, show_spinner=False)
def _class_settings(url: str) -> ClassSettings:
    return _class_store(url).get()


def get_class_settings() -> ClassSettings:
    """The teacher's class settings, read at most once a second per server (every page of
    every student reads them on each rerun)."""
    return _class_settings(default_url())


def save_class_settings(value: ClassSettings, by: Actor) -> ClassSettings:
    """Store new class settings (the teacher); this server sees them at once."""
    saved = _class_store(default_url()).save(value, by=by)
    _class_settings.clear()
    return saved
